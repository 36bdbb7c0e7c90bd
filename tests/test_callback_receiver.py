"""EVERY8D's push callbacks, sent over HTTP to the running product: the secret path, decoding, exactly
one post per report however often it is repeated, forward-only statuses, reports for unknown batches
kept aside, and 503 (so EVERY8D retries) when a report cannot be stored."""

from __future__ import annotations

import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.harness import CALLBACK_TOKEN
from tests.test_tracking import (
    batch_id_of,
    only_summary,
    reply_posts,
    send_approved,
    summary_updates,
    wait_for,
)

REPLY_TIME = "20260105093000"  # Taipei wall clock, as EVERY8D writes RT
REPLY_AT = datetime(2026, 1, 5, 9, 30, tzinfo=ZoneInfo("Asia/Taipei")).timestamp()  # the same moment


def push(product, params: dict[str, str] | str, *, token: str = CALLBACK_TOKEN) -> requests.Response:
    """One GET as EVERY8D sends it (form-encoded, lower-case escapes) to the product's callback path."""
    query = params if isinstance(params, str) else urlencode(params)
    return requests.get(f"{product.url}/every8d/callback/{token}?{query}", timeout=5)


def reply_report(batch_id: str, text: str = "收到，謝謝") -> dict[str, str]:
    return {"BatchID": batch_id, "RM": "+886912345678", "RT": REPLY_TIME, "STATUS": "999", "SM": text, "MR": "1"}


def nothing_stored(product) -> bool:
    return (product.store.replies.count() == 0 and not product.store.replies.unmatched_reports()
            and product.store.outbox.pending_count() == 0)


@pytest.fixture
def delivered(make_product):
    """A product (its sandbox pushing callbacks) with request #1 sent to 0912345678 and delivered."""
    product = make_product()
    card = send_approved(product, "send 0912345678 請回覆")
    batch_id = batch_id_of(product)
    wait_for(lambda: product.store.batches.get(batch_id).state == "complete", what="the delivery callback")
    wait_for(lambda: product.sandbox.pending_callbacks == 0, what="the sandbox's pushes")
    product.poll()  # absorbs pushes that raced the send's bookkeeping
    product.settle()
    return product, card, batch_id


def test_ten_identical_reply_callbacks_give_one_post_each_place(delivered):
    product, card, batch_id = delivered
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: push(product, reply_report(batch_id)), range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    product.settle()
    product.poll()

    in_thread, in_channel = reply_posts(product, card)
    assert len(in_thread) == 1 and len(in_channel) == 1
    assert "收到，謝謝" in in_thread[0]["blocks"][1]["text"]["text"]
    assert product.store.replies.count() == 1


def test_ten_identical_status_callbacks_change_the_summary_once(make_product):
    product = make_product(sandbox_delivery_seconds=3600)  # the sandbox itself reports nothing final
    card = send_approved(product, "send 0912345678 狀態")
    batch_id = batch_id_of(product)
    summary = only_summary(product, card)
    before = len(summary_updates(product, summary["ts"]))
    report = {"BatchID": batch_id, "RM": "+886912345678", "RT": REPLY_TIME, "STATUS": "100", "MR": "1"}

    for _ in range(10):
        assert push(product, report).status_code == 200
        product.settle()

    assert product.store.batches.counts(batch_id) == {100: 1}
    assert len(summary_updates(product, summary["ts"])) == before + 1
    assert "已送達 1" in only_summary(product, card)["text"]


def test_parameter_names_in_any_case_form_decoding_and_unknown_parameters(delivered):
    product, card, batch_id = delivered
    # `+` is a space, `%2b` a plus, escapes in lower case, names in any case, extra parameters ignored.
    query = (f"batchid={batch_id}&rm=%2b886912345678&Rt={REPLY_TIME}&status=999&sm=%e5%a5%bd+%e7%9a%84"
             "&CUSTOMER_ID=42&charge=0.0")
    assert push(product, query).status_code == 200
    product.settle()
    [reply] = product.store.replies.for_batch(batch_id)
    assert reply.text == "好 的" and reply.mobile == "+886912345678"
    assert len(reply_posts(product, card)[0]) == 1


def test_wrong_or_missing_secret_is_404_and_stores_nothing_and_logs_no_secret(make_product, caplog):
    product = make_product()
    report = reply_report("4c8b8a5e-0000-4000-8000-000000000000")
    with caplog.at_level(logging.DEBUG):
        wrong = push(product, report, token="not-the-secret-0123456789")
        close = push(product, report, token=CALLBACK_TOKEN[:-1])
        missing = requests.get(f"{product.url}/every8d/callback/?{urlencode(report)}", timeout=5)
        bare = requests.get(f"{product.url}/every8d/callback?{urlencode(report)}", timeout=5)
        longer = push(product, report, token=CALLBACK_TOKEN + "/x")
        right = push(product, report)
    assert [r.status_code for r in (wrong, close, missing, bare, longer)] == [404] * 5
    assert right.status_code == 200  # the same report with the right secret is taken (kept aside)
    # What the product logs (the test's own HTTP client, urllib3, logs the URLs it requests).
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("urllib3"))
    assert "callback stored" in logged
    assert CALLBACK_TOKEN not in logged and "912345678" not in logged


def test_wrong_secret_stores_nothing(make_product):
    product = make_product(sandbox_delivery_seconds=3600)
    send_approved(product, "send 0912345678 測試")
    batch_id = batch_id_of(product)
    wait_for(lambda: product.sandbox.pending_callbacks == 0)
    product.poll()
    counts, outbox = product.store.batches.counts(batch_id), product.store.outbox.pending_count()

    for status in ("100", "999"):
        report = {**reply_report(batch_id), "STATUS": status}
        assert push(product, report, token="wrong-secret-0123456789abcdef").status_code == 404

    assert product.store.batches.counts(batch_id) == counts == {0: 1}
    assert product.store.replies.count() == 0 and not product.store.replies.unmatched_reports()
    assert product.store.outbox.pending_count() == outbox


def test_a_report_that_cannot_be_stored_is_answered_503_then_taken_on_retry(delivered, monkeypatch):
    product, card, batch_id = delivered
    real_add = product.store.replies.add

    def disk_full(**kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(product.store.replies, "add", disk_full)
    assert push(product, reply_report(batch_id)).status_code == 503
    assert product.store.replies.count() == 0

    monkeypatch.setattr(product.store.replies, "add", real_add)
    assert push(product, reply_report(batch_id)).status_code == 200  # EVERY8D's retry
    product.settle()
    assert len(reply_posts(product, card)[0]) == 1


def test_malformed_report_is_refused_with_400(product):
    assert push(product, {"BatchID": "x", "STATUS": "abc", "RM": "+886912345678"}).status_code == 400
    assert push(product, {"STATUS": "100"}).status_code == 400
    assert nothing_stored(product)


def test_a_report_for_an_unknown_batch_is_kept_aside_and_not_posted(product):
    unknown = "0f0e0d0c-0000-4000-8000-000000000000"
    assert push(product, reply_report(unknown, "陌生回覆")).status_code == 200
    assert push(product, {**reply_report(unknown), "STATUS": "100"}).status_code == 200
    assert push(product, reply_report(unknown, "陌生回覆")).status_code == 200  # a retry
    product.settle()

    kept = product.store.replies.unmatched_reports()
    assert sorted(r.status_code for r in kept) == [100, 999]
    assert all(r.batch_id == unknown for r in kept)
    assert product.store.replies.count() == 0
    assert product.standin.messages("C_REPLIES") == []
    assert product.standin.calls_to("chat.postMessage") == []


def test_a_late_sent_report_after_delivered_does_not_regress(delivered):
    product, card, batch_id = delivered
    summary = only_summary(product, card)
    updates = len(summary_updates(product, summary["ts"]))
    late = {"BatchID": batch_id, "RM": "+886912345678", "RT": "20260105080000", "STATUS": "0", "MR": "1"}

    assert push(product, late).status_code == 200
    product.settle()

    assert product.store.batches.counts(batch_id) == {100: 1}
    assert product.store.batches.get(batch_id).state == "complete"
    assert len(summary_updates(product, summary["ts"])) == updates
    assert "已送達 1" in only_summary(product, card)["text"]


def test_pushes_that_arrive_before_the_batch_is_recorded_are_absorbed_by_its_first_poll(make_product):
    product = make_product(sandbox_delivery_seconds=3600)
    card = send_approved(product, "send 0912345678 搶先")
    batch_id = batch_id_of(product)
    # What a push racing the send's bookkeeping leaves behind: a report kept aside for the batch id.
    product.store.replies.keep_unmatched_report(
        batch_id=batch_id, status_code=999, mobile="+886912345678", reported_at=REPLY_AT, text="早到的回覆",
    )
    product.poll()

    assert product.store.replies.unmatched_reports() == []
    in_thread, in_channel = reply_posts(product, card)
    assert len(in_thread) == 1 and len(in_channel) == 1 and "早到的回覆" in in_thread[0]["blocks"][1]["text"]["text"]
