"""The fault suite (issue 12): random SIGKILLs while requests are sent in several parts, then a restart
and time to settle. Seeded, so a failure can be replayed; about 20-30 s, run by `make test` like every
test (marked `slow` only to say so).

Whatever the moments of the kills: each part reaches EVERY8D at most once (the sandbox records every
call, across the restarts), every request ends in a state that says something in its thread (sent,
failed, or "outcome unknown" with Mark as sent / Send again), and no post appears twice in Slack (each
carries its outbox row's id in its metadata).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from every8d.sandbox import Sandbox
from services.sending import parse_tag
from slackstandin import SlackStandIn
from storage import RequestState
from tests.faults_support import (
    SETTLED,
    BotProcess,
    assert_no_python_text,
    open_store,
    send_calls,
    thread_text,
    wait_for,
    watchdog,  # noqa: F401 - fixture
)
from tests.harness import CALLBACK_TOKEN, SlackUser, all_text, button

pytestmark = [pytest.mark.usefixtures("watchdog"), pytest.mark.slow]

SEED = int(os.environ.get("FAULT_SEED", "12"))
KILLS = 5
REQUESTS = (
    "send 0912345678,0922333444,0933444555 明早九點停水通知",
    "send 0912000111,0922000222,0933000333 颱風停班通知",
    "send 0912555666,0922555666 社區大會改期",
)


@pytest.fixture
def sandbox(bot_port: int) -> Iterator[Sandbox]:
    """EVERY8D pushing its reports to the bot (retrying while it is down), so parts in doubt get settled."""
    callback_url = f"http://127.0.0.1:{bot_port}/every8d/callback/{CALLBACK_TOKEN}"
    with Sandbox(delivery_seconds=0.3, callback_url=callback_url, callback_retry_seconds=0.3) as sb:
        yield sb


@pytest.fixture
def bot(standin: SlackStandIn, sandbox: Sandbox, tmp_path: Path, bot_port: int) -> Iterator[BotProcess]:
    process = BotProcess(standin=standin, db_path=tmp_path / "bot.db", every8d_url=sandbox.base_url,
                         workdir=tmp_path, port=bot_port)
    process.env.update({"BOT_SEND_CHUNK_SIZE": "1", "BOT_WATCHDOG_MINUTES": "0.05",
                        "BOT_ALERT_CHANNEL": "C_ALERTS"})
    yield process
    process.kill()
    print(process.logs())  # shown by pytest only when the test failed


def all_settled(bot: BotProcess) -> bool:
    with open_store(bot.db_path) as store:
        rows = [store.requests.get(i + 1) for i in range(len(REQUESTS))]
        return all(r is not None and r.state in SETTLED for r in rows) and store.outbox.pending_count() == 0


def bot_posts(standin: SlackStandIn) -> list[dict]:
    """Every message the bot posted, in every channel and thread."""
    found = []
    for channel in ("C_APPROVALS", "C_ALERTS"):
        for top in standin.messages(channel):
            found.append(top)
            found += standin.thread(channel, top["ts"])
    found += standin.messages("U_REQUESTER")  # the requester's direct messages
    return [m for m in found if m.get("user") == standin.bot_user_id]


def test_random_kills_during_sends_in_parts_never_send_twice_leave_nothing_silent_or_doubled(
    bot: BotProcess, sandbox: Sandbox, standin: SlackStandIn
) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    bot.start()
    for text in REQUESTS:
        assert SlackUser(bot, "U_REQUESTER").command(text).status_code == 200
    cards = wait_for(lambda: len(standin.messages("C_APPROVALS")) == len(REQUESTS) and
                     standin.messages("C_APPROVALS"), timeout=15, what="every card")
    sandbox.faults.latency = 0.25  # each EVERY8D call takes a while: kills land mid-call too
    for card in cards:
        SlackUser(bot, "U_APPROVER").click("approve_request", _request_id(card), message=card)

    for _ in range(KILLS):
        time.sleep(rng.uniform(0.05, 0.9))
        bot.kill()
        bot.start()
    sandbox.faults.latency = 0.0

    wait_for(lambda: all_settled(bot), timeout=45, interval=0.3, what="every request to settle and be said")

    # 1. Each part reached EVERY8D at most once.
    tags = Counter(parse_tag(c.params.get("SB", ""))[:2] for c in send_calls(sandbox))
    assert tags and max(tags.values()) == 1, tags

    # 2. No request is left silent: each thread says how it ended; a doubt offers the approver's two ways.
    with open_store(bot.db_path) as store:
        rows = [store.requests.get(i + 1) for i in range(len(REQUESTS))]
    for row, card in zip(rows, cards, strict=True):
        thread = thread_text(standin, "C_APPROVALS", card["ts"])
        assert thread, f"request #{row.id} ({row.state}) said nothing in its thread"
        assert_no_python_text(thread)
        if row.state is RequestState.UNKNOWN:
            card_now = next(m for m in standin.messages("C_APPROVALS") if m["ts"] == card["ts"])
            assert "結果不明" in all_text(card_now)
            assert button(card_now, "mark_sent") is not None and button(card_now, "resend_request") is not None
        elif row.state is RequestState.SENT:
            assert row.batch_id in thread

    # 3. No post doubled: each outbox row is at most one message, and no thread repeats itself.
    ids = Counter(m["metadata"]["event_payload"]["outbox_id"] for m in bot_posts(standin) if m.get("metadata"))
    assert not ids or max(ids.values()) == 1, ids
    for card in cards:
        texts = Counter(m["text"] for m in standin.thread("C_APPROVALS", card["ts"]))
        assert not texts or max(texts.values()) == 1, texts
    assert len(standin.messages("C_APPROVALS")) == len(REQUESTS)
    with open_store(bot.db_path) as store:
        actions = Counter(a["action"] for i in range(len(REQUESTS)) for a in store.audit.for_request(i + 1))
    print(f"kill loop: seed {SEED}, {len(send_calls(sandbox))} sends, states {[r.state.value for r in rows]}, "
          f"audit {dict(actions)}, {time.monotonic() - started:.1f} s")


def _request_id(card: dict) -> str:
    approve = button(card, "approve_request")
    assert approve is not None
    return str(approve["value"])
