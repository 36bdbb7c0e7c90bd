"""Slack misbehaving (issue 7): down (HTTP 503 on every call) or rate limiting (429 + Retry-After) while
the bot posts. Posts wait in the outbox and go out later, in order, each once; and nothing is lost when
the bot is restarted (or killed) while they wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from every8d.endpoints import SEND_SMS
from every8d.sandbox import Sandbox
from storage import RequestState
from tests.faults_support import (
    BotProcess,
    approve_first_card,
    card_in,
    outbox_pending,
    request_row,
    send_calls,
    settled,
    thread_text,
    wait_for,
    watchdog,  # noqa: F401 - fixture
)
from tests.harness import SlackUser, all_text

pytestmark = pytest.mark.usefixtures("watchdog")


def drain_until_empty(product, timeout: float = 15.0) -> None:
    """Run the poster until the outbox is empty, as its thread would (retries wait for their backoff)."""

    def empty() -> bool:
        product.runtime.wait_idle()
        product.runtime.poster.drain()
        return product.store.outbox.pending_count() == 0

    wait_for(empty, timeout=timeout, what="every queued post to reach Slack", interval=0.2)


def posts(standin, method: str = "chat.postMessage") -> list:
    """Successful posts to channels (the requester's direct messages are counted apart: `dms`)."""
    return [c for c in standin.calls_to(method) if c.status == 200 and not c.params.get("channel", "").startswith("U")]


def dms(standin) -> list:
    return [c for c in standin.calls_to("chat.postMessage") if c.status == 200 and c.params.get("channel", "").startswith("U")]


def assert_thread_in_order(standin, card: dict) -> str:
    """The send result comes before the delivery summary, and nothing is posted twice."""
    thread = standin.thread("C_APPROVALS", card["ts"])
    texts = [m["text"] for m in thread]
    assert len(texts) == len(set(texts)), texts
    assert "已送出 1 則" in texts[0], texts
    return "\n".join(all_text(m) for m in thread)


def warm_up(product) -> None:
    """One request while Slack is up, so the bot has learned who it is (auth.test, done off the request
    path since bot/identity.py) before the outage starts."""
    assert SlackUser(product, "U_REQUESTER").command("help").status_code == 200


def test_posts_made_while_slack_is_down_are_delivered_in_order_when_it_is_back(product) -> None:
    requester = SlackUser(product, "U_REQUESTER")
    warm_up(product)
    product.standin.faults.down(True)
    assert requester.command("send 0912345678 颱風停班通知").status_code == 200  # the ack needs no Web API
    product.settle()
    assert product.standin.messages("C_APPROVALS") == []
    assert product.store.outbox.pending_count() == 1

    product.standin.faults.down(False)
    drain_until_empty(product)
    [card] = product.standin.messages("C_APPROVALS")
    product.standin.faults.down(True)
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    assert product.store.requests.get(1).state is RequestState.SENT  # the send does not wait for Slack
    assert product.standin.thread("C_APPROVALS", card["ts"]) == []

    product.standin.faults.down(False)
    drain_until_empty(product)
    thread = assert_thread_in_order(product.standin, card)
    assert product.store.requests.get(1).batch_id in thread
    assert len(posts(product.standin)) == 3  # card, send result, summary: each exactly once
    assert len(dms(product.standin)) == 2  # the requester told: approved, then sent; each once
    assert "核准" in all_text(product.standin.messages("C_APPROVALS")[0])


def test_rate_limited_posts_are_retried_after_retry_after_and_posted_once(product) -> None:
    product.standin.faults.rate_limit_every(2, retry_after=1)
    card = approve_first_card(product)
    drain_until_empty(product)

    limited = [c for c in product.standin.calls if c.status == 429]
    assert limited, "the stand-in should have rate limited some calls"
    assert len(posts(product.standin)) == 3
    assert len(dms(product.standin)) == 2
    assert len(product.standin.messages("C_APPROVALS")) == 1
    assert_thread_in_order(product.standin, card)


def test_posts_queued_while_slack_is_down_survive_a_restart_on_the_same_database(make_product) -> None:
    first = make_product()
    warm_up(first)
    first.standin.faults.down(True)
    SlackUser(first, "U_REQUESTER").command("send 0912345678 颱風停班通知")
    first.settle()
    assert first.standin.messages("C_APPROVALS") == [] and first.store.outbox.pending_count() == 1
    first.stop()

    first.standin.faults.down(False)
    second = make_product()  # same database file, a fresh process state
    drain_until_empty(second)
    [card] = second.standin.messages("C_APPROVALS")
    assert "#1" in all_text(card) and "0912-***-678" in all_text(card)
    assert len(posts(second.standin)) == 1


def test_posts_delayed_by_an_outage_render_the_state_they_find_and_never_say_failed(make_product) -> None:
    """While Slack is down, a send's answer is lost (unknown) and an approver marks it sent (the card's
    button still works: Slack delivers clicks even when its Web API fails). The queued thread post goes
    out later rendering the current state: it must say "marked as sent", never "failed"."""
    product = make_product(every8d_timeout=1.0, callback_token="")
    product.sandbox.faults.hang_seconds = 1.5
    product.sandbox.faults.inject("accept_then_hang", endpoint=SEND_SMS)
    warm_up(product)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 颱風停班通知")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    product.standin.faults.down(True)
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    SlackUser(product, "U_APPROVER2").click("mark_sent", "1", message=card)
    product.settle()
    assert product.store.requests.get(1).state is RequestState.SENT

    product.standin.faults.down(False)
    drain_until_empty(product)
    thread = thread_text(product.standin, "C_APPROVALS", card["ts"])
    assert "已標記為已送出" in thread and "已確認此批次已送出" in thread
    assert "失敗" not in thread and "None" not in thread
    assert len(send_calls(product.sandbox)) == 1


def test_a_command_right_after_a_start_while_slack_is_down_is_not_refused(product) -> None:
    product.standin.faults.down(True)
    response = SlackUser(product, "U_REQUESTER").command("send 0912345678 颱風停班通知")
    assert "reinstall" not in response.text
    assert product.store.requests.get(1) is not None


# -- the real process, killed while Slack is down -------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(delivery_seconds=0.3) as sb:
        yield sb


def test_bot_killed_while_slack_is_down_posts_everything_after_restart(
    standin, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Slack goes down after the card is posted; the approval and the send happen, their posts queue up,
    the process is SIGKILLed, Slack comes back, the bot restarts: the thread is complete, in order."""
    bot = BotProcess(standin=standin, db_path=tmp_path / "bot.db", every8d_url=sandbox.base_url, workdir=tmp_path)
    try:
        bot.start()
        SlackUser(bot, "U_REQUESTER").command("send 0912345678 颱風停班通知")
        card = card_in(standin)
        standin.faults.down(True)
        SlackUser(bot, "U_APPROVER").click("approve_request", "1", message=card)
        wait_for(lambda: (r := request_row(bot.db_path, 1)) and r.state is RequestState.SENT, timeout=10,
                 what="the send to finish while Slack is down")
        wait_for(lambda: any(c.status == 503 for c in standin.calls), timeout=10, what="a failed post")
        assert outbox_pending(bot.db_path) >= 2
        bot.kill()
        assert standin.thread("C_APPROVALS", card["ts"]) == []

        standin.faults.down(False)
        bot.start()
        settled(bot.db_path, 1, states=(RequestState.SENT,), timeout=20)
        assert len(send_calls(sandbox)) == 1
        thread = thread_text(standin, "C_APPROVALS", card["ts"])
        assert "已送出 1 則" in thread and request_row(bot.db_path, 1).batch_id in thread
        assert "核准" in all_text(standin.messages("C_APPROVALS")[0])
    finally:
        bot.kill()
