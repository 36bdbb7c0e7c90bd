"""Slack's limits: a burst of replies while Slack answers 429 is delivered whole and in order, after the
Retry-After it asked for; and a summary update that races a status change never leaves the summary
showing an old state."""

from __future__ import annotations

import requests

from tests.harness import CALLBACK_TOKEN
from tests.test_tracking import batch_id_of, only_summary, reply_posts, send_approved, wait_for

REPLIES = 12


def test_a_burst_of_replies_under_rate_limits_is_delivered_whole_and_in_order(product):
    card = send_approved(product, "send 0912345678 請大家回覆")
    batch_id = batch_id_of(product)
    wait_for(lambda: product.sandbox.batches[batch_id].records[0].status == 100, what="delivery")
    product.standin.faults.rate_limit_every(10, retry_after=1, methods=["chat.postMessage"])

    for i in range(REPLIES):
        product.sandbox.simulate_reply(batch_id, "0912345678", f"第 {i:02d} 則回覆")
    wait_for(lambda: product.store.replies.count() == REPLIES, what="the replies' callbacks")
    product.settle()

    in_thread, in_channel = reply_posts(product, card)
    expected = [f"第 {i:02d} 則回覆" for i in range(REPLIES)]
    assert [m["blocks"][1]["text"]["text"] for m in in_thread] == expected
    assert [m["blocks"][1]["text"]["text"] for m in in_channel] == expected
    assert product.store.outbox.pending_count() == 0 and product.store.outbox.dead() == []

    posts = product.standin.calls_to("chat.postMessage")
    limited = [i for i, call in enumerate(posts) if call.status == 429]
    assert limited  # Slack did push back...
    for i in limited:  # ...and each retry came after the Retry-After it asked for
        assert posts[i + 1].at - posts[i].at >= 1.0


def test_a_status_change_during_a_summary_update_is_not_lost(make_product):
    product = make_product(sandbox_delivery_seconds=3600)  # only the report pushed below is final
    card = send_approved(product, "send 0912345678 競態")
    batch_id = batch_id_of(product)
    summary_ts = only_summary(product, card)["ts"]
    delivered = {"BatchID": batch_id, "RM": "+886912345678", "RT": "20260105093000", "STATUS": "100"}
    pushed: list[int] = []

    def delivered_while_updating(kind: str, message: dict) -> None:
        # Slack has the update but has not answered yet: the delivery report arrives right now.
        if kind == "message_changed" and message["ts"] == summary_ts and not pushed:
            answer = requests.get(f"{product.url}/every8d/callback/{CALLBACK_TOKEN}", params=delivered, timeout=5)
            pushed.append(answer.status_code)

    product.standin.on_event(delivered_while_updating)
    product.poll()  # the first check updates the summary; the report lands during that update

    assert pushed == [200]
    final = only_summary(product, card)
    assert final["ts"] == summary_ts
    assert "已送達 1" in final["text"] and "已完成" in final["blocks"][0]["text"]["text"]
