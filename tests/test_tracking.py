"""Delivery tracking end to end: a sent batch is polled (every page), its one summary message in the
thread is edited in place as statuses progress, replies are posted once, batches close (delivered,
failed or expired), scheduled batches show their time and Cancel until they go out, and a restart in
the middle of a batch resumes it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
import requests

from every8d.client import Every8dClient
from every8d.sandbox import Sandbox
from every8d.status import EXPIRED_LOCALLY
from tests.harness import Product, SlackUser, all_text, button, wait_until

SUMMARY_MARK = "發送狀態"


# -- helpers shared by the tracking test files -------------------------------------------------------


def wait_for(condition: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `condition` until true (the sandbox delivers and pushes in the background)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def send_approved(product: Product, text: str, request_id: int = 1) -> dict:
    """`/sms send …` by U_REQUESTER, approved by U_APPROVER; returns the approval card (thread parent)."""
    SlackUser(product, "U_REQUESTER").command(text)
    product.settle()
    card = next(c for c in product.standin.messages("C_APPROVALS") if button(c, "approve_request")
                and button(c, "approve_request")["value"] == str(request_id))
    approve(product, card, request_id)
    assert product.store.requests.get(request_id).state == "sent"
    return card


def approve(product: Product, card: dict, request_id: int = 1) -> None:
    """Click Approve and wait for the send: Bolt acks before its listener has started the send, so
    `settle()` alone could look before there is anything to wait for."""
    SlackUser(product, "U_APPROVER").click("approve_request", str(request_id), message=card)
    wait_for(lambda: product.store.requests.get(request_id).state not in ("pending_approval", "approved", "sending"),
             what="the send")
    product.settle()


def batch_id_of(product: Product, request_id: int = 1) -> str:
    batch_id = product.store.requests.get(request_id).batch_id
    assert batch_id
    return batch_id


def thread(product: Product, card: dict) -> list[dict]:
    return product.standin.thread("C_APPROVALS", card["ts"])


def summaries(product: Product, card: dict) -> list[dict]:
    """The summary messages in a request's thread (there must only ever be one)."""
    return [m for m in thread(product, card) if SUMMARY_MARK in m.get("text", "")]


def only_summary(product: Product, card: dict) -> dict:
    found = summaries(product, card)
    assert len(found) == 1, f"expected one summary message, found {len(found)}"
    return found[0]


def summary_updates(product: Product, ts: str) -> list:
    return [c for c in product.standin.calls_to("chat.update") if c.params.get("ts") == ts and c.status == 200]


def reply_posts(product: Product, card: dict) -> tuple[list[dict], list[dict]]:
    """(reply posts in the batch thread, reply posts in the replies channel)."""
    in_thread = [m for m in thread(product, card) if "回覆" in m.get("text", "")]
    return in_thread, product.standin.messages("C_REPLIES")


def status_pages(sandbox: Sandbox) -> list[str]:
    return [c.params.get("PNO", "") for c in sandbox.calls if c.endpoint.endswith("getDeliveryStatus.ashx")]


@pytest.fixture
def external_sandbox() -> Callable[..., Sandbox]:
    """A standalone sandbox (it outlives a product restart) started with the given arguments."""
    started: list[Sandbox] = []

    def start(**kwargs) -> Sandbox:
        sandbox = Sandbox(**kwargs).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


def against(sandbox: Sandbox) -> dict:
    """Configuration overrides pointing the product at a standalone sandbox (no callbacks)."""
    return {"every8d_uid": "sandbox", "every8d_pwd": "sandbox", "every8d_base_url": sandbox.base_url,
            "callback_token": ""}


# -- status progress and the summary -----------------------------------------------------------------


def test_statuses_progress_and_the_one_summary_is_edited_in_place(make_product):
    product = make_product(callback_token="")
    card = send_approved(product, "send 0912345678,0922333444 明天上午十點開會")
    batch_id = batch_id_of(product)

    first = only_summary(product, card)
    assert "等待回報 2" in all_text(first) and batch_id in all_text(first)
    assert "已完成" not in all_text(first)

    wait_for(lambda: all(r.status == 100 for r in product.sandbox.batches[batch_id].records), what="delivery")
    product.poll()

    final = only_summary(product, card)
    assert final["ts"] == first["ts"]  # edited, not re-posted
    text = all_text(final)
    assert "已送達 2" in text and "等待回報 0" in text and "已完成" in text and "100%" in text
    assert summary_updates(product, first["ts"])
    assert product.store.batches.get(batch_id).state == "complete"
    assert product.store.batches.due(time.time() + 10**9) == []  # no longer polled


def test_summary_is_not_touched_when_nothing_changed(make_product):
    product = make_product(callback_token="", sandbox_delivery_seconds=3600)
    card = send_approved(product, "send 0912345678 尚未送達")
    summary = only_summary(product, card)
    product.poll()  # the first check is shown
    updates = len(summary_updates(product, summary["ts"]))
    product.poll()
    product.poll()
    assert len(summary_updates(product, summary["ts"])) == updates
    assert len(summaries(product, card)) == 1


def test_failures_are_listed_in_the_one_summary_by_masked_number_and_reason(make_product, external_sandbox):
    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], background=False,
                               failing_numbers={"0922333444": 103, "0933444555": 101})
    product = make_product(**against(sandbox))
    card = send_approved(product, "send 0912345678,0922333444,0933444555 通知")
    now[0] += 10
    product.poll()

    text = all_text(only_summary(product, card))
    assert "未送達 2" in text and "已送達 1" in text
    assert "0922-***-444" in text and "無此手機號碼" in text and "no such number" in text
    assert "0933-***-555" in text and "手機端因素未能送達" in text and "not delivered: handset" in text
    assert "0922333444" not in text and "0933444555" not in text
    posts = [m for m in thread(product, card) if "0922-***-444" in all_text(m)]
    assert len(posts) == 1  # one message, not one per recipient


def test_a_2500_recipient_batch_is_read_page_by_page(make_product, external_sandbox):
    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], background=False, credit=5000.0)
    product = make_product(send_chunk_size=5000, **against(sandbox))  # one batch, three status pages
    numbers = ",".join(f"0912{i:06d}" for i in range(2500))
    card = send_approved(product, f"send {numbers} 全體通知")
    batch_id = batch_id_of(product)
    product.poll()
    assert status_pages(sandbox) == ["1", "2", "3"]  # still pending: every page read
    assert product.store.batches.get(batch_id).state == "open"
    now[0] += 10
    sandbox.calls.clear()

    product.poll()

    assert status_pages(sandbox) == ["1", "2", "3"]
    assert product.store.batches.counts(batch_id) == {100: 2500}
    text = all_text(only_summary(product, card))
    assert "已送達 2500" in text and "已完成" in text


# -- replies -----------------------------------------------------------------------------------------


def test_a_reply_seen_by_poll_and_callback_is_posted_once_in_thread_and_replies_channel(make_product):
    # The batch stays open (no final report yet), so polls read its pages and see the reply as well.
    product = make_product(sandbox_delivery_seconds=3600)
    card = send_approved(product, "send 0912345678 明天開會，請回覆")
    batch_id = batch_id_of(product)

    product.sandbox.simulate_reply(batch_id, "0912345678", "好的\n我會準時到")
    wait_for(lambda: product.sandbox.pending_callbacks == 0 and product.store.replies.count() == 1,
             what="the reply's callback")
    product.poll()  # the status page lists a 999 row too, without its text (delta notes §4.5)
    product.poll()
    product.settle()

    in_thread, in_channel = reply_posts(product, card)
    assert len(in_thread) == 1 and len(in_channel) == 1
    for post in (in_thread[0], in_channel[0]):
        text = all_text(post)
        assert "0912-***-678" in text and "0912345678" not in text
        assert "我會準時到" in text
    assert "#1" in all_text(in_channel[0])  # the replies channel says which request it answers
    assert product.store.replies.count() == 1


def test_reply_text_cannot_ping_mention_or_link(product):
    card = send_approved(product, "send 0912345678 問卷")
    batch_id = batch_id_of(product)
    hostile = "<!channel> <!here> <@U_APPROVER> *免費* <https://evil.example|點我領獎>"
    product.sandbox.simulate_reply(batch_id, "0912345678", hostile)
    wait_for(lambda: product.store.replies.count() == 1, what="the reply")
    product.settle()

    in_thread, in_channel = reply_posts(product, card)
    for post in (in_thread[0], in_channel[0]):
        assert "<!channel>" not in post["text"] and "<!here>" not in post["text"] and "<@U_APPROVER>" not in post[
            "text"]
        assert "&lt;!channel&gt;" in post["text"]
        [shown] = [b for b in post["blocks"] if b["type"] == "section" and "channel" in b["text"]["text"]]
        assert shown["text"]["type"] == "plain_text" and shown["text"]["text"] == hostile
        assert shown["text"].get("emoji") is False
    posted = [c for c in product.standin.calls_to("chat.postMessage") if "回覆" in c.params.get("text", "")]
    assert posted and all(not c.params.get("link_names") for c in posted)


# -- forward-only merge, expiry ----------------------------------------------------------------------


def test_expiry_marks_recipients_without_a_report_after_validity_and_margin(make_product):
    product = make_product(sandbox_delivery_seconds=3600, expiry_margin_minutes=10)
    card = send_approved(product, "send 0912345678,0922333444 無回報")
    batch_id = batch_id_of(product)
    product.poll()
    assert product.store.batches.get(batch_id).state == "open"

    validity_until = product.store.batches.get(batch_id).validity_until
    tracking = product.runtime.tracking
    tracking.clock = lambda: validity_until + 9 * 60  # inside the margin: still waiting
    product.poll()
    assert product.store.batches.get(batch_id).state == "open"

    tracking.clock = lambda: validity_until + 10 * 60 + 1
    product.poll()

    assert product.store.batches.get(batch_id).state == "complete"
    assert product.store.batches.pending_count(batch_id) == 0
    text = all_text(only_summary(product, card))
    assert "已完成" in text and "逾時未回報" in text and "no report before validity ended" in text
    assert "0912-***-678" in text and "0922-***-444" in text

    # EVERY8D's own final word, however late, replaces the guess (and a late "sent" does not).
    for status in ("100", "0"):
        report = {"BatchID": batch_id, "RM": "+886912345678", "RT": "20260105093000", "STATUS": status}
        assert requests.get(product.callback_url, params=report, timeout=5).status_code == 200
    product.settle()
    assert product.store.batches.counts(batch_id) == {100: 1, EXPIRED_LOCALLY.code: 1}
    assert "已送達 1" in all_text(only_summary(product, card))


# -- scheduled batches -------------------------------------------------------------------------------


def test_scheduled_batch_shows_send_time_and_cancel_until_it_goes_out(make_product, external_sandbox):
    from datetime import UTC, datetime

    from services.compose import ComposeInput, prepare

    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], delivery_seconds=1.0, background=False)
    product = make_product(**against(sandbox))
    send_at = datetime.fromtimestamp(int(now[0]) + 3600, tz=UTC)
    preview = prepare(ComposeInput(kind="sms", recipients_text="0912345678", message="預約通知", send_at=send_at),
                      clock=time.time, last_credit=None)
    product.runtime.requests.submit(preview, requester="U_REQUESTER", origin_channel="C_GENERAL")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    approve(product, card)

    summary = only_summary(product, card)
    text = all_text(summary)
    assert "預約中 1" in text and product.runtime.voice.time(send_at.timestamp()) in text
    assert button(summary, "cancel_scheduled") is not None
    product.poll()  # still scheduled: nothing changes
    assert button(only_summary(product, card), "cancel_scheduled") is not None

    now[0] += 3600 + 5  # the send time passes; EVERY8D sends it
    product.poll()
    gone_out = only_summary(product, card)
    assert gone_out["ts"] == summary["ts"]
    assert button(gone_out, "cancel_scheduled") is None and "預約中" not in all_text(gone_out)

    now[0] += 5
    product.poll()
    assert "已送達 1" in all_text(only_summary(product, card))


# -- restart -----------------------------------------------------------------------------------------


def test_a_restart_in_the_middle_of_a_batch_resumes_polling_it(make_product, external_sandbox):
    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], delivery_seconds=60.0, background=False)
    first = make_product(**against(sandbox))
    card = send_approved(first, "send 0912345678,0922333444 重啟測試")
    batch_id = batch_id_of(first)
    summary = only_summary(first, card)
    first.stop()  # the bot goes away with the batch still open

    now[0] += 120  # meanwhile EVERY8D delivers
    second = make_product(**against(sandbox))
    assert [b.batch_id for b in second.store.batches.due(time.time() + 10**9)] == [batch_id]
    second.poll()

    assert second.store.batches.get(batch_id).state == "complete"
    resumed = only_summary(second, card)
    assert resumed["ts"] == summary["ts"] and "已送達 2" in all_text(resumed)


# -- polling failures --------------------------------------------------------------------------------


def test_a_failing_poll_is_logged_once_per_streak_backed_off_and_recovers(make_product, caplog):
    product = make_product(callback_token="")
    send_approved(product, "send 0912345678 故障測試")
    batch_id = batch_id_of(product)
    sandbox = product.sandbox
    # No client-side retries, so each poll is one failing call (the retry pause is the client's business).
    product.runtime.tracking.gateway = Every8dClient(sandbox.base_url, "sandbox", "sandbox", retries=0)
    wait_for(lambda: sandbox.batches[batch_id].records[0].status == 100, what="delivery")

    sandbox.faults.inject("http500", count=3)
    with caplog.at_level(logging.INFO, logger="every8d_bot"):
        for _ in range(3):
            product.poll()
        batch = product.store.batches.get(batch_id)
        assert batch.state == "open" and batch.poll_failures == 3
        assert batch.next_poll_at > time.time() + product.runtime.policy.status_poll_seconds  # backed off
        product.poll()

    failures = [r for r in caplog.records if "failed, will retry" in r.getMessage()]
    assert len(failures) == 1 and failures[0].levelno == logging.WARNING
    assert len([r for r in caplog.records if "works again" in r.getMessage()]) == 1
    assert product.store.batches.get(batch_id).state == "complete"


def test_a_reply_after_the_batch_completed_is_still_found_by_polling_in_the_reply_window(make_product):
    """Without callbacks, a recipient answering after the last delivery report must still reach the thread."""
    product = make_product(callback_token="", reply_poll_seconds=1.0)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 晚點回覆")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    batch_id = wait_until(lambda: product.store.requests.get(1).batch_id)
    time.sleep(0.5)
    assert wait_until(lambda: (product.poll(), product.store.batches.get(batch_id).state == "complete")[1], timeout=10)
    product.sandbox.simulate_reply(batch_id, "+886912345678", "收到，謝謝")
    product.poll()  # a 999 row carries no text in getDeliveryStatus: getReplyMessage reads it
    product.runtime.lookup_replies_once()
    product.settle()
    thread = product.standin.thread("C_APPROVALS", card["ts"])
    assert any("收到，謝謝" in all_text(m) for m in thread)
    assert len([m for m in product.standin.messages("C_REPLIES") if "收到，謝謝" in all_text(m)]) == 1


def test_batches_past_their_reply_window_are_not_polled(make_product):
    product = make_product(callback_token="")
    store = product.store
    request_id = store.requests.create(
        dict(requester="U_REQUESTER", origin_channel="C_GENERAL", kind="sms", message="old", validity_minutes=1440,
             recipient_count=1, taiwan_count=1, international_count=0, chars=3, parts=1, points=1,
             approval_channel="C_APPROVALS"), ["+886912345678"])
    store.batches.create(batch_id="old-batch", request_id=request_id, kind="sms", send_at=None, validity_until=0,
                         first_poll_at=0, recipients=["+886912345678"], initial_status=100)
    store.batches.complete("old-batch", time.time() - 10 * 86400, reply_poll_until=time.time() - 7 * 86400)
    assert store.batches.due(time.time() + 3600) == []


def test_the_summary_shows_reply_and_opt_out_rates_and_moves_with_each_reply(make_product, external_sandbox):
    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], background=False)
    product = make_product(**against(sandbox))
    card = send_approved(product, "send 0912345678,0922333444,0933444555,0955666777 週年慶")
    now[0] += 10
    product.poll()
    assert "回覆率 0.0%（0 位）" in all_text(only_summary(product, card))
    batch_id = batch_id_of(product)
    sandbox.simulate_reply(batch_id, "0912345678", "好，我要")
    sandbox.simulate_reply(batch_id, "0922333444", "退訂")
    product.poll()
    product.runtime.lookup_replies_once()  # the texts come from getReplyMessage, not the status rows
    product.settle()
    text = all_text(only_summary(product, card))
    assert "送達率 100.0%" in text and "回覆率 50.0%（2 位）" in text and "退訂率 25.0%（1 位）" in text
    assert "reply rate 50.0% (2) · opt-out rate 25.0% (1)" in text
