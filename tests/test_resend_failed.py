"""Resend to failed: the finished summary offers a new request for the recipients worth another try,
checked, priced and approved as usual; numbers that cannot receive SMS are left out and said so."""

from __future__ import annotations

import time

from tests.harness import SlackUser, all_text, button, wait_until
from tests.test_tracking import against, approve, external_sandbox, only_summary, send_approved

__all__ = ["external_sandbox"]


def finished_with_failures(make_product, external_sandbox, text="send 0912345678,0922333444,0933444555 通知"):
    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], background=False,
                               failing_numbers={"0922333444": 103, "0933444555": 101})
    product = make_product(**against(sandbox))
    card = send_approved(product, text)
    now[0] += 10
    product.poll()
    return product, card, sandbox


def test_the_finished_summary_offers_a_resend_only_to_the_failures_worth_another_try(make_product, external_sandbox):
    product, card, sandbox = finished_with_failures(make_product, external_sandbox)
    summary = only_summary(product, card)
    resend = button(summary, "resend_failed")
    assert resend is not None and resend["value"] == "1" and "1 位" in all_text(summary)

    marketer = SlackUser(product, "U_OTHER", channel="C_APPROVALS")
    marketer.click("resend_failed", "1", message=summary)
    told = wait_until(lambda: "\n".join(all_text(e) for e in marketer.ephemerals()))
    assert "#2" in told and "等待核准" in told and "另有 1 位未送達者不會重送" in told
    second = product.store.requests.get(2)
    assert second.requester == "U_OTHER" and second.state.value == "pending_approval"
    assert product.store.requests.recipients(2) == ["+886933444555"]  # not the number that does not exist
    assert second.message == "通知" and second.points == 1.0

    product.settle()
    card2 = next(c for c in product.standin.messages("C_APPROVALS") if (button(c, "approve_request") or {}).get("value") == "2")
    approve(product, card2, 2)
    sends = [c.params["DEST"] for c in sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]
    assert sends == ["+886912345678,+886922333444,+886933444555", "+886933444555"]


def test_a_second_press_finds_the_first_resend(make_product, external_sandbox):
    product, card, _ = finished_with_failures(make_product, external_sandbox)
    summary = only_summary(product, card)
    for user in ("U_OTHER", "U_REQUESTER"):
        SlackUser(product, user, channel="C_APPROVALS").click("resend_failed", "1", message=summary)
    told = wait_until(lambda: "\n".join(all_text(e) for e in SlackUser(product, "U_REQUESTER").ephemerals()))
    assert "已經為申請 #1 建立過重送申請 #2" in told
    assert product.store.requests.get(3) is None


def test_no_button_while_pending_or_when_nothing_can_be_retried(make_product, external_sandbox):
    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], background=False, failing_numbers={"0922333444": 103})
    product = make_product(**against(sandbox))
    card = send_approved(product, "send 0912345678,0922333444 通知")
    assert button(only_summary(product, card), "resend_failed") is None  # still pending
    now[0] += 10
    product.poll()
    summary = only_summary(product, card)
    assert "未送達 1" in all_text(summary) and button(summary, "resend_failed") is None  # 103 is not retried


def test_a_personalised_send_is_resent_with_each_recipients_own_text(make_product, external_sandbox):
    from tests.test_compose_modal import open_compose, values
    from tests.test_personalise import with_audience

    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], background=False, failing_numbers={"0933444555": 101})
    product = make_product(**against(sandbox))
    user = SlackUser(product, "U_REQUESTER")
    rows = "姓名,手機\n王小明,0912345678\n陳小華,0933444555\n"
    answer = user.submit(open_compose(product, user),
                         with_audience(values(recipients="", message="{name} 您好"), product, rows.encode())).json()
    user.submit(answer["view"], {})
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    approve(product, card, 1)
    now[0] += 10
    product.poll()
    summary = only_summary(product, card)
    SlackUser(product, "U_REQUESTER", channel="C_APPROVALS").click("resend_failed", "1", message=summary)
    product.settle()
    assert product.store.requests.get(2).message == "陳小華 您好"  # one recipient: one text, no {variable}
    assert product.store.requests.recipients(2) == ["+886933444555"]
