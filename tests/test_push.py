"""EVERY8D's push as it really is, sent over HTTP to the running bot: the recorded real push (fixture, byte
for byte from delta notes §4.11), the sandbox pushing exactly that shape, reconciliation from `SUBJECT`
alone, only this deployment's tag settling a send, the rest of a request sent at once after a push settled
its lost part, replies de-duplicated by MR, reports for numbers a batch never had kept aside, kept reports
capped and expired, push values inert in Slack, and failure or unknown codes shown as what they are."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import pytest
import requests

import storage.replies
from every8d.callback import parse_callback
from every8d.sandbox.callbacks import callback_query
from every8d.sandbox.engine import CallbackEvent
from services.compose import ComposeInput, prepare
from services.reports import audit_rows
from storage import PartState, RequestState
from tests.harness import SlackUser, all_text
from tests.test_callback_receiver import push, reply_report
from tests.test_parts import SEND, compose, sends, tags
from tests.test_tracking import (
    approve,
    batch_id_of,
    external_sandbox,  # noqa: F401 - fixture
    only_summary,
    reply_posts,
    send_approved,
    thread,
    wait_for,
)

TAIPEI = ZoneInfo("Asia/Taipei")
REAL_PUSH = (Path(__file__).parent / "fixtures" / "every8d_push_real.txt").read_text(encoding="ascii")
REAL_ORDER = ["BatchID", "RM", "RT", "STATUS", "SM", "CustID", "UserNo", "ST", "MR", "SUBJECT", "NAME", "USERID",
              "SOURCE", "CHARGE"]
GUID = "0f0e0d0c-1111-4000-8000-000000000000"


def names(query: str) -> list[str]:
    return [pair.partition("=")[0] for pair in query.split("&")]


def with_params(query: str, **values: str) -> str:
    """The real push with some values replaced, keeping its names, order and encoding."""
    out = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        out.append(f"{name}={urlencode({'v': values[name]})[2:]}" if name in values else pair)
    return "&".join(out)


def kept(product) -> list[dict]:
    return product.store.replies.unmatched_reports(limit=100_000)


# -- the real push ---------------------------------------------------------------------------------------


def test_the_real_push_is_read_with_every_parameter_typed():
    assert names(REAL_PUSH) == REAL_ORDER  # the fixture is the recorded push, in its order
    report = parse_callback(REAL_PUSH)
    assert (report.batch_id, report.mobile, report.status.code) == (
        "220478cc-8506-49b2-93b7-2505f651c12e", "+886987654321", 100)
    assert report.reported_at == datetime(2018, 1, 1, 12, 0, 2, tzinfo=TAIPEI)
    assert report.sent_at == datetime(2018, 1, 1, 12, 0, 1, tzinfo=TAIPEI)
    assert report.text == "Hello, 世界" and report.record_no == "1" and report.subject == ""
    assert (report.cust_id, report.user_no, report.name, report.user_id, report.source, report.charge) == (
        "CUSTID", "000000", "NAME", "USERNAME", "", 0.0)
    assert (report.msg_id, report.kind) == ("", "")
    later = parse_callback(REAL_PUSH + "&MSGID=m-1&TYPE=sms&SB=%23R9")
    assert (later.msg_id, later.kind, later.subject) == ("m-1", "SMS", "#R9")  # SB accepted without SUBJECT
    both = parse_callback(with_params(REAL_PUSH, SUBJECT="#R1@abcd") + "&SB=%23R2")
    assert both.subject == "#R1@abcd"  # SUBJECT wins


def test_the_sandbox_pushes_exactly_every8ds_shape():
    sent_at = datetime(2018, 1, 1, 4, 0, 1, tzinfo=UTC).timestamp()
    event = CallbackEvent("220478cc-8506-49b2-93b7-2505f651c12e", "+886987654321", sent_at + 1, 100, "Hello, 世界", 1,
                          "", "NAME", sent_at=sent_at, cost=0.0, user_id="USERNAME")
    query = callback_query(event)
    assert names(query) == REAL_ORDER and "SB" not in names(query)
    assert not re.search(r"%[0-9a-f]?[A-F]", query)  # lower-case escapes, `+` for a space
    ours = dict(parse_qsl(query, keep_blank_values=True))
    real = dict(parse_qsl(REAL_PUSH, keep_blank_values=True))
    assert {k: v for k, v in ours.items() if k not in ("CustID", "USERID")} == {
        k: v for k, v in real.items() if k not in ("CustID", "USERID")}
    assert query.split("&")[4] == "SM=Hello%2c+%e4%b8%96%e7%95%8c"  # byte for byte as EVERY8D writes it


def test_the_real_push_sent_to_the_running_bot(make_product):
    product = make_product(sandbox_delivery_seconds=3600)  # the sandbox reports nothing final itself
    unknown = requests.get(f"{product.callback_url}?{REAL_PUSH}", timeout=5)
    assert unknown.status_code == 200
    [aside] = kept(product)
    raw = json.loads(aside.audit_json)
    assert aside.batch_id == "220478cc-8506-49b2-93b7-2505f651c12e" and aside.reason == "batch"
    assert (aside.subject, aside.text, aside.record_no) == ("", "Hello, 世界", "1")  # typed, for the services
    assert raw["SUBJECT"] == "" and raw["CUSTID"] == "CUSTID" and raw["SM"] == "Hello, 世界"

    card = send_approved(product, "send 0987654321 Hello, 世界")
    batch_id = batch_id_of(product)
    ours = REAL_PUSH.replace("220478cc-8506-49b2-93b7-2505f651c12e", batch_id)
    assert requests.get(f"{product.callback_url}?{ours}", timeout=5).status_code == 200
    product.settle()
    assert product.store.batches.counts(batch_id) == {100: 1}
    assert "已送達 1" in all_text(only_summary(product, card))


# -- reconciliation ----------------------------------------------------------------------------------------


def test_a_push_with_only_subject_settles_a_lost_part_and_the_rest_goes_out_at_once(
    make_product, external_sandbox  # noqa: F811
):
    """Chunk size 1: part 2's answer is lost, EVERY8D's push for it arrives afterwards, shaped as EVERY8D
    sends it (SUBJECT, no SB). It settles part 2 and part 3 goes out without a restart: the resume waits
    for the push's transaction to commit."""
    sandbox = external_sandbox(delivery_seconds=0.2)  # no callback URL: the test pushes, after the loss
    sandbox.faults.hang_seconds = 3
    product = make_product(send_chunk_size=1, every8d_timeout=1, every8d_uid="sandbox", every8d_pwd="sandbox",
                           every8d_base_url=sandbox.base_url)
    card = compose(product, "send 0912000001,0912000002,0912000003 明天上午停水")
    sandbox.faults.inject("accept_then_hang", endpoint=SEND, after=1)
    approve(product, card)
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    assert [p.state for p in product.store.parts.of_request(1)] == [PartState.SENT, PartState.UNKNOWN,
                                                                     PartState.PENDING]

    [batch] = [b for b in sandbox.batches.values() if b.subject.startswith("#R1.1@")]
    record = batch.records[0]
    event = CallbackEvent(batch.batch_id, record.mobile, time.time(), 0, batch.message, record.record_no,
                          batch.subject, record.name, sent_at=batch.created_at, cost=record.cost, user_id="sandbox")
    query = callback_query(event)
    assert "SUBJECT" in names(query) and "SB" not in names(query)
    assert requests.get(f"{product.callback_url}?{query}", timeout=5).status_code == 200

    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=10,
             what="part 3 sent after the push settled part 2")
    product.settle()
    assert tags(sandbox) == ["#R1", "#R1.1", "#R1.2"] and len(sends(sandbox)) == 3
    assert [p.state for p in product.store.parts.of_request(1)] == [PartState.SENT] * 3
    assert product.store.parts.get(1, 1).batch_id == batch.batch_id


def test_a_push_that_comes_before_its_send_is_recorded_is_refused_for_a_retry_not_kept_aside(
    make_product, external_sandbox  # noqa: F811
):
    """EVERY8D may push an immediate failure while our send still waits for its answer: 503 (EVERY8D pushes
    it again), not a stranger's report kept aside; once the part is recorded (here: unknown, its answer
    lost) the same push settles it."""
    sandbox = external_sandbox(delivery_seconds=3600)  # no callback URL: the test pushes
    sandbox.faults.hang_seconds = 3
    product = make_product(every8d_timeout=2, every8d_uid="sandbox", every8d_pwd="sandbox",
                           every8d_base_url=sandbox.base_url)
    card = compose(product, "send 0912000001 明天上午停水")
    sandbox.faults.inject("accept_then_hang", endpoint=SEND)
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    wait_for(lambda: sandbox.batches, what="EVERY8D to accept the send")
    [batch] = sandbox.batches.values()
    assert product.store.parts.get(1, 0).state is PartState.SENDING  # its answer has not come yet
    record = batch.records[0]
    event = CallbackEvent(batch.batch_id, record.mobile, time.time(), -5, batch.message, record.record_no,
                          batch.subject, record.name, sent_at=batch.created_at, cost=record.cost, user_id="sandbox")
    url = f"{product.callback_url}?{callback_query(event)}"
    assert requests.get(url, timeout=5).status_code == 503
    assert kept(product) == []

    wait_for(lambda: product.store.requests.get(1).state is RequestState.UNKNOWN, timeout=10, what="the lost answer")
    assert requests.get(url, timeout=5).status_code == 200  # EVERY8D's retry
    product.settle()
    assert product.store.requests.get(1).batch_id == batch.batch_id and kept(product) == []
    assert product.store.batches.counts(batch.batch_id) == {-5: 1}


def unknown_send(make_product):
    """Request #1 approved, its send reset before EVERY8D answered: outcome unknown."""
    product = make_product(every8d_timeout=1.0)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.settle()
    product.sandbox.faults.inject("reset", endpoint=SEND)
    card = product.standin.messages("C_APPROVALS")[0]
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    wait_for(lambda: product.store.requests.get(1).state is RequestState.UNKNOWN, what="the unknown send")
    product.settle()
    return product, card


def test_only_a_tag_naming_this_deployment_settles_a_send(make_product):
    product, card = unknown_send(make_product)
    bare = with_params(REAL_PUSH, BatchID=GUID, RM="+886912345678", STATUS="0", SUBJECT="#R1")
    assert requests.get(f"{product.callback_url}?{bare}", timeout=5).status_code == 200
    product.settle()
    request = product.store.requests.get(1)
    assert request.state is RequestState.UNKNOWN and request.batch_id is None  # Send again still offered
    assert [r.batch_id for r in kept(product)] == [GUID]  # visible as unmatched

    ours = with_params(REAL_PUSH, BatchID="1f0e0d0c-2222-4000-8000-000000000000", RM="+886912345678", STATUS="0",
                       SUBJECT=f"#R1@{product.runtime.sending.deployment} 停水")
    assert requests.get(f"{product.callback_url}?{ours}", timeout=5).status_code == 200
    product.settle()
    assert product.store.requests.get(1).state is RequestState.SENT
    assert product.store.requests.get(1).batch_id == "1f0e0d0c-2222-4000-8000-000000000000"


# -- replies and numbers -----------------------------------------------------------------------------------


@pytest.fixture
def delivered(make_product):
    product = make_product(sandbox_delivery_seconds=3600)
    card = send_approved(product, "send 0912345678 請回覆")
    batch_id = batch_id_of(product)
    for report in ({"STATUS": "100", "MR": "1"},):
        assert push(product, {**reply_report(batch_id), **report, "SM": "請回覆"}).status_code == 200
    product.settle()
    return product, card, batch_id


def test_the_same_mr_twice_is_one_reply_a_new_mr_is_another(delivered):
    product, card, batch_id = delivered
    first = {**reply_report(batch_id, "好"), "MR": "7", "RT": "20260105093000"}
    retry = {**first, "RT": "20260105093005"}  # EVERY8D's retry with a later report time
    another = {**first, "MR": "8", "RT": "20260105094000"}
    for report in (first, retry, first, another):
        assert push(product, report).status_code == 200
    product.settle()
    assert [r.text for r in product.store.replies.for_batch(batch_id)] == ["好", "好"]
    in_thread, in_channel = reply_posts(product, card)
    assert len(in_thread) == 2 and len(in_channel) == 2


def test_reports_and_replies_for_numbers_the_batch_never_had_are_kept_aside(delivered):
    product, card, batch_id = delivered
    stranger = "+886933000111"
    status = {**reply_report(batch_id), "RM": stranger, "STATUS": "100"}
    stop = {**reply_report(batch_id, "退訂 STOP"), "RM": stranger, "MR": "9"}
    assert push(product, status).status_code == 200 and push(product, stop).status_code == 200
    product.poll()

    assert product.store.batches.counts(batch_id) == {100: 1}  # not added to the batch
    assert product.store.replies.for_batch(batch_id) == []  # not a reply
    assert product.standin.messages("C_REPLIES") == [] and reply_posts(product, card)[0] == []
    assert product.store.optouts.among([stranger]) == set()  # no opt-out from a stranger
    assert sorted((r.status_code, r.reason) for r in kept(product)) == [(100, "number"), (999, "number")]
    summary = all_text(only_summary(product, card))
    assert "已送達 1" in summary and "等待回報 0" in summary and "未送達 0" in summary  # the stranger counts nowhere


def test_reports_kept_aside_are_capped_bounded_and_expired(make_product, monkeypatch):
    product = make_product()
    monkeypatch.setattr(storage.replies, "MAX_KEPT_REPORTS", 20)
    for n in range(30):
        report = {**reply_report(GUID), "RM": f"+8869330{n:05d}", "STATUS": "100"}
        assert push(product, report).status_code == 200
    rows = kept(product)
    assert len(rows) == 20 and product.store.replies.kept_count() == 20
    assert rows[0].mobile == "+886933000029"  # the newest are kept, the oldest went

    # Only EVERY8D's parameters are kept, each bounded; unknown ones are only counted.
    big = {**reply_report(GUID), "RM": "+886933999999", "SM": "長" * 1100,
           **{f"X{i}": "x" * 2000 for i in range(2)}}
    assert push(product, big).status_code == 200
    raw = json.loads(kept(product)[0].audit_json)
    assert len(raw["SM"]) == 1000 and raw["_OTHER_PARAMETERS"] == 2 and not any(k.startswith("X") for k in raw)

    # Older than KEPT_REPORTS_DAYS: deleted when the next one comes in.
    old = time.time() - (storage.replies.KEPT_REPORTS_DAYS * 86400 + 60)
    product.store.replies.keep_unmatched_report(batch_id=GUID, status_code=0, mobile="+886933888888", now=old)
    assert any(r.mobile == "+886933888888" for r in kept(product))
    assert push(product, {**reply_report(GUID), "RM": "+886933777777", "STATUS": "0"}).status_code == 200
    assert not any(r.mobile == "+886933888888" for r in kept(product))


# -- Slack sees push values as text ------------------------------------------------------------------------


@pytest.mark.parametrize("batch_id", ["<!channel>", "x<https://evil.example|click>", "a" * 65, "a&b", "<@U1>"])
def test_a_batch_id_not_shaped_like_one_is_refused_at_the_edge(product, batch_id: str):
    assert push(product, {**reply_report(GUID), "BatchID": batch_id}).status_code == 400
    assert push(product, {**reply_report(GUID), "RM": "<!here>"}).status_code == 400
    assert kept(product) == [] and product.store.outbox.pending_count() == 0


def test_a_batch_id_that_reaches_slack_is_escaped_in_card_note_and_summary(make_product):
    product, card = unknown_send(make_product)
    hostile = "x<!channel>&<https://evil.example|y>"
    assert product.runtime.tracking.adopt_batch(1, hostile, 0, actor="test")
    product.settle()
    texts = [all_text(m) for m in thread(product, card)] + [all_text(product.standin.messages("C_APPROVALS")[0])]
    joined = "\n".join(texts)
    assert "<!channel>" not in joined and "<https://evil" not in joined
    assert "x&lt;!channel&gt;&amp;&lt;https://evil.example|y&gt;" in joined


# -- codes through the bot -----------------------------------------------------------------------------------


def test_a_failure_code_closes_the_recipient_as_failed_at_once_with_its_reason(make_product):
    product = make_product(sandbox_delivery_seconds=3600)  # nobody else gets a final report
    product.sandbox.faults.force_status("0912000005", -5)
    card = send_approved(product, "send 0912000001,0912000005 很長的內容")
    batch_id = batch_id_of(product)
    wait_for(lambda: product.store.batches.counts(batch_id) == {0: 1, -5: 1}, what="the -5 report")
    product.poll()
    assert product.store.batches.pending_count(batch_id) == 1  # -5 is final, only the other one waits
    text = all_text(only_summary(product, card))
    assert "未送達 1" in text and "等待回報 1" in text
    assert "未發送：簡訊內容超過長度上限 not sent: text longer than allowed (-5): 1" in text


def test_a_code_no_table_knows_stays_visible_after_expiry_in_summary_and_audit(make_product):
    product = make_product(sandbox_delivery_seconds=0.3, expiry_margin_minutes=10)
    product.sandbox.faults.force_status("0912000005", 4242)
    card = send_approved(product, "send 0912000001,0912000005 新代碼")
    batch_id = batch_id_of(product)
    wait_for(lambda: product.store.batches.counts(batch_id) == {100: 1, 4242: 1}, what="the reports")
    product.poll()
    assert product.store.batches.get(batch_id).state == "open"
    assert "未知代碼 4242：1" in all_text(only_summary(product, card))

    validity_until = product.store.batches.get(batch_id).validity_until
    product.runtime.tracking.clock = lambda: validity_until + 10 * 60 + 1
    product.poll()
    assert product.store.batches.get(batch_id).state == "complete"
    assert product.store.batches.counts(batch_id) == {100: 1, 4242: 1}
    text = all_text(only_summary(product, card))
    assert "未知代碼 4242：1" in text and "unknown code 4242: 1" in text and "逾時未回報" not in text
    rows = list(audit_rows(product.store, 0, time.time() + 60, masked=False, timezone="Asia/Taipei"))
    forced = [r for r in rows if str(r["status_code"]) == "4242"]
    assert forced and (forced[0]["status_zh"], forced[0]["status_en"]) == ("未知代碼 4242", "unknown code 4242")
    # EVERY8D's own final word, however late, still replaces it.
    late = {**reply_report(batch_id), "RM": "+886912000005", "STATUS": "103"}
    assert push(product, late).status_code == 200
    assert product.store.batches.counts(batch_id) == {100: 1, 103: 1}


def scheduled_and_approved(product) -> dict:
    """Request #1, scheduled an hour ahead, approved and sent to EVERY8D (as a booking); returns its card."""
    send_at = datetime.fromtimestamp(int(time.time()) + 3600, tz=UTC)
    preview = prepare(ComposeInput(kind="sms", recipients_text="0912345678", message="預約通知", send_at=send_at),
                      clock=time.time, last_credit=None)
    product.runtime.requests.submit(preview, requester="U_REQUESTER", origin_channel="C_GENERAL")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    approve(product, card)
    return card


def test_a_cancel_refused_with_minus_8_is_retried_later_and_said_in_the_thread(make_product):
    product = make_product()
    product.runtime.cancel.retry_seconds = 0.2
    card = scheduled_and_approved(product)
    product.sandbox.faults.inject("-8", count=4, endpoint="eraseBooking.ashx")  # every try of the first cancel

    requester = SlackUser(product, "U_REQUESTER")
    requester.click("cancel_scheduled", "1", message=product.standin.messages("C_APPROVALS")[0])
    wait_for(lambda: product.store.requests.get(1).state is RequestState.CANCELLED, timeout=15,
             what="the cancel retried later")
    product.settle()
    told = "\n".join(all_text(m) for m in requester.ephemerals())
    assert "暫時無法取消" in told and "try again" in told
    notes = "\n".join(all_text(m) for m in thread(product, card))
    assert "機器人將於約 1 分鐘後自動再試" in notes and "已取消預約" in notes
    erases = [c for c in product.sandbox.calls if c.endpoint == "eraseBooking.ashx"]
    assert len(erases) == 5  # four refused (the client's own retries), then the service's retry


def test_a_cancel_retry_promised_before_a_restart_still_happens_after_it(make_product, external_sandbox):  # noqa: F811
    from tests.test_tracking import against

    sandbox = external_sandbox()
    product = make_product(**against(sandbox))
    product.runtime.cancel.retry_seconds = 600  # far beyond the test: only the restart can bring it back
    scheduled_and_approved(product)
    sandbox.faults.inject("-8", count=4, endpoint="eraseBooking.ashx")
    SlackUser(product, "U_REQUESTER").click("cancel_scheduled", "1", message=product.standin.messages("C_APPROVALS")[0])
    wait_for(lambda: product.store.settings.get("cancel_retry:1") is not None, what="the promised retry")
    saved = json.loads(product.store.settings.get("cancel_retry:1"))
    product.store.settings.set("cancel_retry:1", json.dumps({**saved, "due": time.time() - 1}))  # due while down
    product.stop()

    again = make_product(**against(sandbox))  # same database, same EVERY8D
    wait_for(lambda: again.store.requests.get(1).state is RequestState.CANCELLED, timeout=15,
             what="the retry resumed after the restart")
    assert again.store.settings.get("cancel_retry:1") is None
