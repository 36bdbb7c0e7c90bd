"""The Workflow Builder step "Send SMS (EVERY8D)": a `function_executed` event becomes a normal request
(approval as configured) and the step is ended by the request's outcome, completed or failed, once."""

from __future__ import annotations

from slackstandin import payloads as p
from tests.harness import SlackUser, button, wait_until
from tests.test_send_flow import reject_with_reason


def run_step(product, inputs: dict, execution_id: str = "Fx0001") -> int:
    body = p.function_executed("send_sms", inputs, execution_id=execution_id,
                               bot_access_token=product.standin.bot_token)
    return SlackUser(product, "U_REQUESTER")._post(body, content_type=p.JSON_TYPE).status_code


STEP = {"recipients": "0912345678,0922333444", "message": "颱風停班，明日照常上班請留意公告", "requested_by": "U_REQUESTER"}


def test_the_step_makes_a_request_and_completes_when_it_is_sent(product):
    assert run_step(product, STEP) == 200
    product.settle()
    request = product.store.requests.get(1)
    assert request.requester == "U_REQUESTER" and request.state.value == "pending_approval"
    assert product.standin.function_result("Fx0001") is None  # still running while it waits for approval
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    result = wait_until(lambda: product.standin.function_result("Fx0001"))
    assert result == {"ok": True, "outputs": {"request_id": "1", "outcome": "sent",
                                              "batch_id": product.store.requests.get(1).batch_id}}
    assert len([c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]) == 1


def test_a_rejected_request_fails_the_step_with_the_reason(product):
    run_step(product, STEP)
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    reject_with_reason(product, SlackUser(product, "U_APPROVER"), card, "請先給法務確認")
    result = wait_until(lambda: product.standin.function_result("Fx0001"))
    assert result["ok"] is False and "#1" in result["error"] and "請先給法務確認" in result["error"]


def test_bad_inputs_fail_the_step_at_once_and_make_no_request(product):
    run_step(product, {**STEP, "recipients": "02-2345-6789"}, execution_id="Fx0002")
    result = wait_until(lambda: product.standin.function_result("Fx0002"))
    assert result["ok"] is False and "市話" in result["error"]
    run_step(product, {**STEP, "requested_by": ""}, execution_id="Fx0003")
    assert "Requested by" in wait_until(lambda: product.standin.function_result("Fx0003"))["error"]
    product.settle()
    assert product.store.requests.get(1) is None


def test_a_redelivered_event_makes_one_request_and_ends_the_step_once(make_product):
    product = make_product(auto_approve_under=100.0)
    for _ in range(3):
        run_step(product, STEP, execution_id="Fx0004")
    product.settle()
    assert product.store.requests.get(2) is None
    result = wait_until(lambda: product.standin.function_result("Fx0004"))
    assert result["ok"] is True and result["outputs"]["outcome"] == "sent"
    ends = [c for c in product.standin.calls if c.method.startswith("functions.complete")]
    assert len(ends) == 1
    assert button(product.standin.messages("C_APPROVALS")[0], "approve_request") is None  # auto-approved
