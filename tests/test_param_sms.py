"""Personalised sends with SendParamSMS: a CSV audience with one text per recipient goes out in calls of
BOT_SEND_CHUNK_SIZE whatever the texts, each part claimed, sent, recorded and reconciled once with the texts
stored at approval; a platform without the endpoint (404) falls back to one call per text before anything
was sent. Driven through signed Slack requests against the sandbox and the Slack stand-in."""

from __future__ import annotations

import json
import math

from every8d.endpoints import SEND_PARAM
from every8d.sandbox import Sandbox
from services import capabilities
from services.parts import PARAM, TEXT, plan_parts, replan_text_parts
from storage import PartState, RequestState
from tests.harness import SlackUser, all_text, button
from tests.test_compose_modal import open_compose, values
from tests.test_personalise import with_audience
from tests.test_tracking import (
    against,
    approve,
    external_sandbox,  # noqa: F401 - fixture
    wait_for,
)

PARAM_CALL = "SendParamSMS.ashx"


def audience(count: int) -> bytes:
    rows = "\n".join(f"客戶{n},09120000{n:02d},A{n:03d}" for n in range(1, count + 1))
    return f"姓名,手機,訂單\n{rows}\n".encode()


def text_for(n: int) -> str:
    return f"客戶{n} 您好，訂單 A{n:03d} 已出貨"


def submit_csv(product, count: int) -> dict:
    """A CSV audience of `count` rows, each with its own text, submitted; returns the approval card."""
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    state = with_audience(values(recipients="", message="{name} 您好，訂單 {訂單} 已出貨"), product, audience(count))
    answer = user.submit(view, state).json()
    assert answer["response_action"] == "push", answer
    user.submit(answer["view"], {})
    product.settle()
    return next(c for c in product.standin.messages("C_APPROVALS") if button(c, "approve_request"))


def param_calls(sandbox: Sandbox) -> list[dict]:
    return [c.document for c in sandbox.calls if c.endpoint == PARAM_CALL and c.document is not None]


def sms_calls(sandbox: Sandbox) -> list[dict[str, str]]:
    return [c.params for c in sandbox.calls if c.endpoint == "sendSMS.ashx"]


def sent_texts(document: dict) -> list[tuple[str, str]]:
    return [(r["Mobile"], r["Param"]) for r in document["RecipientDataList"]]


def untagged(subject: str) -> str:
    return subject.partition("@")[0]


def test_a_personalised_csv_goes_out_in_calls_of_the_chunk_size_with_each_recipients_text(make_product):
    product = make_product(send_chunk_size=2)
    card = submit_csv(product, 5)
    assert "個人化訊息" in all_text(card)
    approve(product, card)

    request = product.store.requests.get(1)
    assert request.state is RequestState.SENT
    documents = param_calls(product.sandbox)
    plain = sms_calls(product.sandbox)
    assert len(documents) + len(plain) == math.ceil(5 / 2)  # not one call per text (5)
    assert len(documents) == 2 and len(plain) == 1  # the last part holds one recipient: a plain sendSMS
    assert sent_texts(documents[0]) == [("+886912000001", text_for(1)), ("+886912000002", text_for(2))]
    assert sent_texts(documents[1]) == [("+886912000003", text_for(3)), ("+886912000004", text_for(4))]
    assert (plain[0]["DEST"], plain[0]["MSG"]) == ("+886912000005", text_for(5))
    assert [untagged(d["SB"]) for d in documents] + [untagged(plain[0]["SB"])] == ["#R1", "#R1.1", "#R1.2"]
    assert [r["Mr"] for r in documents[1]["RecipientDataList"]] == ["3", "4"]  # positions: unique per call
    assert [r["Name"] for r in documents[0]["RecipientDataList"]] == ["客戶1", "客戶2"]
    parts = product.store.parts.of_request(1)
    assert [p.mode for p in parts] == [PARAM, PARAM, TEXT]
    assert all(p.state is PartState.SENT for p in parts) and len({p.batch_id for p in parts}) == 3
    # Charged per text like sendSMS (every text here is one point), and recorded once per part.
    assert request.cost == 5.0 and request.sent_count == 5
    texts = {r.mobile: product.sandbox._engine.text_of(b, r) for b in product.sandbox.batches.values()
             for r in b.records}
    assert texts == {f"+88691200000{n}": text_for(n) for n in range(1, 6)}


def test_a_lost_answer_on_a_param_part_stays_unknown_and_reconciles_by_its_tag(make_product):
    """With callbacks: part 2's SendParamSMS reached EVERY8D but its answer was lost. EVERY8D's push (SB
    `#R1.1@…`) settles it, and part 3 then goes out; nothing is sent twice."""
    product = make_product(send_chunk_size=2, every8d_timeout=1)
    product.sandbox.faults.hang_seconds = 3
    card = submit_csv(product, 6)
    product.sandbox.faults.inject("accept_then_hang", endpoint=PARAM_CALL, after=1)
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=15,
             what="part 2 reconciled from its report and part 3 sent")
    product.settle()
    documents = param_calls(product.sandbox)
    assert [untagged(d["SB"]) for d in documents] == ["#R1", "#R1.1", "#R1.2"]  # each part sent once
    assert "reconciled" in [a["action"] for a in product.store.audit.for_request(1)]
    assert "part_unknown" in [a["action"] for a in product.store.audit.for_request(1)]
    assert len(product.sandbox.batches) == 3


def test_send_again_after_a_lost_param_answer_sends_the_same_stored_texts(make_product, external_sandbox):  # noqa: F811
    sandbox = external_sandbox(delivery_seconds=0.2)
    sandbox.faults.hang_seconds = 3
    product = make_product(send_chunk_size=2, every8d_timeout=1, **against(sandbox))  # no callbacks
    card = submit_csv(product, 4)
    sandbox.faults.inject("accept_then_hang", endpoint=PARAM_CALL, after=1)
    approve(product, card)
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    assert [p.state for p in product.store.parts.of_request(1)] == [PartState.SENT, PartState.UNKNOWN]

    SlackUser(product, "U_APPROVER").click("resend_request", "1",
                                           message=product.standin.messages("C_APPROVALS")[0])
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, what="the resend")
    documents = param_calls(sandbox)
    assert [untagged(d["SB"]) for d in documents] == ["#R1", "#R1.1", "#R1.1"]
    assert sent_texts(documents[2]) == sent_texts(documents[1]) == [("+886912000003", text_for(3)),
                                                                    ("+886912000004", text_for(4))]


def test_a_platform_without_sendparamsms_falls_back_to_one_call_per_text_before_anything_is_sent(
        make_product, external_sandbox):  # noqa: F811
    sandbox = external_sandbox(delivery_seconds=0.2, legacy_platform=True)
    product = make_product(send_chunk_size=2, **against(sandbox))
    card = submit_csv(product, 5)
    approve(product, card)

    request = product.store.requests.get(1)
    assert request.state is RequestState.SENT and request.sent_count == 5 and request.cost == 5.0
    assert len([c for c in sandbox.calls if c.endpoint == PARAM_CALL]) == 1  # the 404, then never again
    plain = sms_calls(sandbox)
    assert sorted((c["DEST"], c["MSG"]) for c in plain) == [(f"+88691200000{n}", text_for(n)) for n in range(1, 6)]
    assert [untagged(c["SB"]) for c in plain] == ["#R1", "#R1.1", "#R1.2", "#R1.3", "#R1.4"]
    parts = product.store.parts.of_request(1)
    assert [p.mode for p in parts] == [TEXT] * 5 and all(p.state is PartState.SENT for p in parts)
    assert sum(p.points for p in parts) == 5.0
    assert "parts_replanned" in [a["action"] for a in product.store.audit.for_request(1)]
    assert SEND_PARAM in capabilities.unsupported_endpoints(product.store)

    # The next personalised request is planned one call per text at once: no second 404.
    SlackUser(product, "U_REQUESTER")
    card2 = submit_csv(product, 3)
    approve(product, card2, request_id=2)
    assert len([c for c in sandbox.calls if c.endpoint == PARAM_CALL]) == 1
    assert [p.mode for p in product.store.parts.of_request(2)] == [TEXT] * 3


def test_a_refused_param_call_fails_the_part_without_falling_back(make_product, external_sandbox):  # noqa: F811
    sandbox = external_sandbox(delivery_seconds=0.2)
    product = make_product(send_chunk_size=2, **against(sandbox))
    card = submit_csv(product, 4)
    sandbox.faults.inject("-99", endpoint=PARAM_CALL)
    approve(product, card)
    assert product.store.requests.get(1).state is RequestState.FAILED
    assert sms_calls(sandbox) == [] and len(param_calls(sandbox)) == 1  # refused: no fallback, no retry
    assert sandbox.batches == {}
    assert capabilities.unsupported_endpoints(product.store) == {}


def test_ten_thousand_personal_texts_plan_as_ten_calls():
    numbers = [f"+8869{n:08d}" for n in range(10_000)]
    messages = {number: f"您好 {number[-4:]}，本月帳單 {n} 元" for n, number in enumerate(numbers)}
    ordered, plans = plan_parts(numbers, chunk_size=1000, messages=messages, per_recipient=True,
                                price=lambda text, chunk: float(len(chunk)))
    assert len(plans) == 10 and all(p.mode == PARAM for p in plans)
    assert ordered == numbers and sum(p.points for p in plans) == 10_000.0
    _, per_text = plan_parts(numbers, chunk_size=1000, messages=messages)
    assert len(per_text) == 10_000


def test_the_param_body_never_logs_the_password(make_product):
    product = make_product(send_chunk_size=3)
    approve(product, submit_csv(product, 3))
    [document] = param_calls(product.sandbox)
    assert document["PWD"] == "***" and "sandbox" not in json.dumps(document["PWD"])


def test_mixed_parts_keep_the_text_order_and_a_replan_covers_the_same_positions():
    numbers = ["+886912000001", "+886912000002", "+886912000003", "+886912000004", "+886912000005"]
    texts = dict(zip(numbers, ["A", "B", "A", "C", "B"], strict=True))
    ordered, plans = plan_parts(numbers, chunk_size=3, messages=texts, per_recipient=True,
                                price=lambda text, chunk: float(len(chunk)))
    assert [texts[n] for n in ordered] == ["A", "A", "B", "B", "C"]
    assert [(p.first_position, p.last_position, p.mode) for p in plans] == [(0, 2, PARAM), (3, 4, PARAM)]
    replanned = replan_text_parts(3, [(n, texts[n]) for n in ordered[3:]], chunk_size=3,
                                  price=lambda text, chunk: float(len(chunk)))
    assert [(p.first_position, p.last_position, p.message, p.mode, p.points) for p in replanned] == [
        (3, 3, "B", TEXT, 1.0), (4, 4, "C", TEXT, 1.0)]
