"""SIGTERM (issue 16): the bot, as a real process, stops taking work, lets the EVERY8D call in flight
finish and be recorded, delivers what is queued for Slack, and exits 0; after the restart nothing is lost
and nothing is sent twice. The bot logs in JSON here, so the same run checks BOT_LOG_FORMAT=json end to end.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from every8d.endpoints import CREDIT
from every8d.sandbox import Sandbox
from slackstandin import SlackStandIn
from storage import PartState, RequestState
from tests.faults_support import (
    BotProcess,
    card_in,
    open_store,
    outbox_pending,
    request_row,
    restart_safe_port,
    send_calls,
    settled,
    wait_for,
    watchdog,  # noqa: F401 - fixture
)
from tests.harness import CALLBACK_TOKEN, SIGNING_SECRET, SlackUser

pytestmark = pytest.mark.usefixtures("watchdog")

NUMBERS = ("0912345678", "0922333444", "0933444555")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(delivery_seconds=0.5) as sb:
        yield sb


@pytest.fixture
def bot(standin: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> Iterator[BotProcess]:
    process = BotProcess(standin=standin, db_path=tmp_path / "bot.db", every8d_url=sandbox.base_url,
                         workdir=tmp_path, port=restart_safe_port())
    process.env["BOT_LOG_FORMAT"] = "json"
    process.env["BOT_SEND_CHUNK_SIZE"] = "1"  # one EVERY8D call per recipient: a send of three parts
    yield process
    process.kill()
    print(process.logs())  # shown by pytest only when the test failed


def parts(db_path: Path) -> list[tuple[PartState, str | None]]:
    with open_store(db_path) as store:
        return [(p.state, p.batch_id) for p in store.parts.of_request(1)]


def test_sigterm_mid_send_finishes_the_call_in_flight_and_the_restart_sends_the_rest_once(
    bot: BotProcess, sandbox: Sandbox
) -> None:
    bot.start()
    SlackUser(bot, "U_REQUESTER").command(f"send {','.join(NUMBERS)} 明早九點停水通知")
    card = card_in(bot.standin)
    sandbox.faults.latency = 2.5  # EVERY8D is slow: part 1's call is in flight when SIGTERM comes
    SlackUser(bot, "U_APPROVER").click("approve_request", "1", message=card)
    wait_for(lambda: send_calls(sandbox), timeout=10, what="the first part to reach EVERY8D")
    assert bot.proc is not None
    started = time.monotonic()
    bot.proc.send_signal(signal.SIGTERM)
    # While the call finishes the bot still answers, and says it is going away.
    draining = wait_for(lambda: _readyz(bot), timeout=2, interval=0.05, what="/readyz while shutting down")
    assert "shutting down" in draining["checks"]["accepting"]["detail"], draining
    assert bot.wait_exit(timeout=20) == 0, bot.log_tail()
    took = time.monotonic() - started
    sandbox.faults.latency = 0.0

    # The call in flight finished and was recorded; no new part was started after SIGTERM.
    assert len(send_calls(sandbox)) == 1
    assert parts(bot.db_path) == [(PartState.SENT, parts(bot.db_path)[0][1]),
                                  (PartState.PENDING, None), (PartState.PENDING, None)]
    assert parts(bot.db_path)[0][1]
    assert request_row(bot.db_path, 1).state is RequestState.APPROVED  # resumes at the next start
    assert outbox_pending(bot.db_path) == 0  # what was queued for Slack went out before the exit
    assert took < 10, took

    # Restart: the two remaining parts go out once each; the first is never sent again.
    credit_checks = len([c for c in sandbox.calls if c.endpoint == CREDIT])
    bot.start()
    wait_for(lambda: len([c for c in sandbox.calls if c.endpoint == CREDIT]) > credit_checks, timeout=10,
             what="the restarted bot's first scheduled job")
    row = settled(bot.db_path, 1, states=(RequestState.SENT,))
    tags = [c.params["SB"].partition("@")[0] for c in send_calls(sandbox)]
    assert tags == ["#R1", "#R1.1", "#R1.2"]
    assert row.sent_count == 3
    results = [m for m in bot.standin.thread("C_APPROVALS", card["ts"]) if "已送出 3 則" in m.get("text", "")]
    assert len(results) == 1, results

    logs = bot.logs()
    events = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert any("shutting down" in e["message"] for e in events)
    assert all({"time", "level", "logger", "message"} <= set(e) for e in events)
    for secret in (SIGNING_SECRET, CALLBACK_TOKEN, bot.standin.bot_token):
        assert secret not in logs


def _readyz(bot: BotProcess) -> dict | None:
    """/readyz's body once it says "not accepting" (None before, or when the port does not answer)."""
    try:
        response = requests.get(f"{bot.url}/readyz", timeout=1)
    except requests.RequestException:
        return None
    body = response.json()
    return body if response.status_code == 503 and "accepting" in body["failed"] else None


def test_sigterm_when_idle_exits_at_once_with_zero(bot: BotProcess) -> None:
    bot.start()
    assert bot.proc is not None
    started = time.monotonic()
    bot.proc.send_signal(signal.SIGTERM)
    assert bot.wait_exit(timeout=15) == 0, bot.log_tail()
    assert time.monotonic() - started < 5
