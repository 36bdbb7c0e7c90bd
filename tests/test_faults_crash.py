"""The bot killed at each step of a send, then restarted (issue 7; issue 3's crash requirement).

The bot runs as a real process (`python -m bot run --http`); `EVERY8D_BOT_CRASH_AT=<point>` makes it exit
with `os._exit(137)` at that point, which leaves the same state as SIGKILL. The EVERY8D sandbox and the
Slack stand-in live in the test process, so they see every call of both runs. After the restart:
never a second send, the request ends in a true state, and the thread says which.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from every8d.endpoints import CREDIT, SEND_SMS
from every8d.sandbox import Sandbox
from services.crashpoints import EXIT_CODE, POINTS
from slackstandin import SlackStandIn
from storage import RequestState
from tests.faults_support import (
    REPO,
    BotProcess,
    assert_no_python_text,
    audit_actions,
    card_in,
    request_row,
    send_calls,
    settled,
    thread_text,
    wait_for,
    watchdog,  # noqa: F401 - fixture
)
from tests.harness import CALLBACK_TOKEN, SIGNING_SECRET, SlackUser, all_text, button

pytestmark = pytest.mark.usefixtures("watchdog")

SENT_WORDS = "已送出 1 則"
UNKNOWN_WORDS = "無法確定 EVERY8D 是否收到"


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, bot_port: int) -> Iterator[Sandbox]:
    """A standalone EVERY8D sandbox; parametrized indirectly with "callbacks" it pushes reports to the bot
    (retrying while the bot is down, as EVERY8D does)."""
    callback_url = None
    if getattr(request, "param", None) == "callbacks":
        callback_url = f"http://127.0.0.1:{bot_port}/every8d/callback/{CALLBACK_TOKEN}"
    with Sandbox(delivery_seconds=0.5, callback_url=callback_url, callback_retry_seconds=0.3) as sb:
        yield sb


@pytest.fixture
def bot(standin: SlackStandIn, sandbox: Sandbox, tmp_path: Path, bot_port: int) -> Iterator[BotProcess]:
    process = BotProcess(standin=standin, db_path=tmp_path / "bot.db", every8d_url=sandbox.base_url,
                         workdir=tmp_path, port=bot_port)
    yield process
    process.kill()
    print(process.logs())  # shown by pytest only when the test failed


def request_and_crash(bot: BotProcess, point: str) -> dict:
    """Start the bot armed to crash at `point`, ask for a send, approve it, and wait for the death."""
    bot.start(crash_at=point)
    requester = SlackUser(bot, "U_REQUESTER")
    assert requester.command("send 0912345678 明早九點停水通知").status_code == 200
    card = card_in(bot.standin)
    try:
        SlackUser(bot, "U_APPROVER").click("approve_request", "1", message=card)
    except requests.ConnectionError:
        pass  # the process may die before its ack is written: Slack would show a timeout, nothing else
    assert bot.wait_exit() == EXIT_CODE, bot.log_tail()
    return card


def restart(bot: BotProcess, sandbox: Sandbox) -> None:
    """Start again without the crash point and wait until the restarted bot's scheduler has run (its first
    credit check reached EVERY8D), so that a resend by a background job would be seen too."""
    credit_checks = len([c for c in sandbox.calls if c.endpoint == CREDIT])
    bot.start()
    wait_for(lambda: len([c for c in sandbox.calls if c.endpoint == CREDIT]) > credit_checks, timeout=10,
             what="the restarted bot's first scheduled job")


@pytest.mark.parametrize(
    ("point", "sends", "state", "words"),
    [
        ("after_approval", 1, RequestState.SENT, SENT_WORDS),
        # Claimed but no part claimed yet: nothing can have reached EVERY8D, so the send simply resumes.
        ("after_claim", 1, RequestState.SENT, SENT_WORDS),
        ("after_part_claimed", 0, RequestState.UNKNOWN, UNKNOWN_WORDS),
        ("after_every8d_accepted", 1, RequestState.UNKNOWN, UNKNOWN_WORDS),
        ("after_part_recorded", 1, RequestState.SENT, SENT_WORDS),
        ("after_send_recorded", 1, RequestState.SENT, SENT_WORDS),
    ],
)
def test_a_kill_at_each_step_never_sends_twice_and_the_thread_tells_the_truth(
    bot: BotProcess, sandbox: Sandbox, point: str, sends: int, state: RequestState, words: str
) -> None:
    card = request_and_crash(bot, point)
    assert len(send_calls(sandbox)) == (0 if point in ("after_approval", "after_claim") else sends)
    restart(bot, sandbox)
    row = settled(bot.db_path, 1)

    assert [c.endpoint for c in send_calls(sandbox)] == [SEND_SMS] * sends
    assert row.state is state, f"{point}: {row.state}"
    thread = thread_text(bot.standin, "C_APPROVALS", card["ts"])
    assert words in thread, f"{point}: thread says {thread[:800]}"
    assert_no_python_text(thread)
    card_now = bot.standin.messages("C_APPROVALS")[0]
    if state is RequestState.UNKNOWN:
        # Flagged for reconciliation: the card says so and offers the two ways to settle it.
        assert "結果不明" in all_text(card_now)
        assert button(card_now, "mark_sent") is not None and button(card_now, "resend_request") is not None
    else:
        assert row.batch_id and row.batch_id in thread
    logs = bot.logs()
    assert "Traceback" not in logs, logs[-3000:]
    assert SIGNING_SECRET not in logs and bot.standin.bot_token not in logs


def test_after_a_kill_before_the_call_send_again_sends_exactly_once(bot: BotProcess, sandbox: Sandbox) -> None:
    """Killed after the part's claim (EVERY8D never called, but the bot cannot know that): unknown, nothing
    sent; an approver's "Send again" then sends exactly one, and the thread records who chose it."""
    card = request_and_crash(bot, "after_part_claimed")
    restart(bot, sandbox)
    settled(bot.db_path, 1, states=(RequestState.UNKNOWN,))
    assert send_calls(sandbox) == []

    card_now = bot.standin.messages("C_APPROVALS")[0]
    assert SlackUser(bot, "U_APPROVER2").click("resend_request", "1", message=card_now).status_code == 200
    row = settled(bot.db_path, 1, states=(RequestState.SENT,))
    assert len(send_calls(sandbox)) == 1
    thread = thread_text(bot.standin, "C_APPROVALS", card["ts"])
    assert "U_APPROVER2" in thread and "重新發送" in thread
    assert row.batch_id in thread and SENT_WORDS in thread
    assert "resend" in audit_actions(bot.db_path, 1)


@pytest.mark.parametrize("sandbox", ["callbacks"], indirect=True)
def test_kill_between_every8d_call_and_database_write_is_settled_by_every8d_report(
    bot: BotProcess, sandbox: Sandbox
) -> None:
    """Issue 3: a kill between the EVERY8D call and the database write gives no second send after the
    restart; EVERY8D's push report (subject tag #R1) then confirms the send and the thread says so."""
    card = request_and_crash(bot, "after_every8d_accepted")
    [batch_id] = list(sandbox.batches)
    restart(bot, sandbox)
    row = settled(bot.db_path, 1, states=(RequestState.SENT,), timeout=30)

    assert len(send_calls(sandbox)) == 1
    assert row.batch_id == batch_id
    thread = thread_text(bot.standin, "C_APPROVALS", card["ts"])
    assert f"已確認：EVERY8D 確實收到此發送申請（批次代碼 {batch_id}）" in thread
    assert_no_python_text(thread)
    assert "reconciled" in audit_actions(bot.db_path, 1)


def test_every_crash_point_is_placed_in_the_code_and_no_call_uses_an_unknown_name() -> None:
    """A typo in a name would make its crash test pass without ever crashing there."""
    source = "\n".join(p.read_text() for folder in ("services", "bot") for p in (REPO / folder).glob("*.py"))
    called = re.findall(r'crash_point\("(\w+)"\)', source)
    assert sorted(called) == sorted(POINTS)


def test_sigterm_during_a_send_lets_it_finish_and_exits_cleanly(bot: BotProcess, sandbox: Sandbox) -> None:
    """`docker stop` sends SIGTERM: the bot stops serving, lets the send in flight finish and record it,
    and exits 0. Nothing is left `unknown`, and the restart posts what was still queued."""
    bot.start()
    SlackUser(bot, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    card = card_in(bot.standin)
    sandbox.faults.latency = 1.0  # EVERY8D is slow: the send is still in flight when SIGTERM comes
    SlackUser(bot, "U_APPROVER").click("approve_request", "1", message=card)
    wait_for(lambda: send_calls(sandbox), timeout=10, what="the send to reach EVERY8D")
    assert bot.proc is not None
    bot.proc.send_signal(signal.SIGTERM)
    assert bot.wait_exit(timeout=15) == 0, bot.log_tail()
    sandbox.faults.latency = 0.0

    assert request_row(bot.db_path, 1).state is RequestState.SENT
    restart(bot, sandbox)
    row = settled(bot.db_path, 1, states=(RequestState.SENT,))
    assert len(send_calls(sandbox)) == 1
    assert row.batch_id in thread_text(bot.standin, "C_APPROVALS", card["ts"])


def test_a_kill_between_two_parts_resumes_with_the_rest_and_never_resends_the_first(
    bot: BotProcess, sandbox: Sandbox
) -> None:
    """One recipient per EVERY8D call: killed after part 1 is recorded, the restart sends part 2 only,
    and the thread gets one send result for the whole request."""
    bot.env["BOT_SEND_CHUNK_SIZE"] = "1"
    bot.start(crash_at="after_part_recorded")
    assert SlackUser(bot, "U_REQUESTER").command("send 0912345678,0922333444 明早九點停水通知").status_code == 200
    card = card_in(bot.standin)
    try:
        SlackUser(bot, "U_APPROVER").click("approve_request", "1", message=card)
    except requests.ConnectionError:
        pass
    assert bot.wait_exit() == EXIT_CODE, bot.log_tail()
    assert len(send_calls(sandbox)) == 1
    restart(bot, sandbox)
    row = settled(bot.db_path, 1, states=(RequestState.SENT,))

    assert [c.params["SB"].partition("@")[0] for c in send_calls(sandbox)] == ["#R1", "#R1.1"]
    assert row.sent_count == 2
    results = [m for m in bot.standin.thread("C_APPROVALS", card["ts"]) if "已送出 2 則" in m.get("text", "")]
    assert len(results) == 1, results
