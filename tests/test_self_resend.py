"""Send again on one's own request (issue 12): with BOT_ALLOW_SELF_APPROVAL=false, a requester who is also
an approver cannot press Send again on their own "outcome unknown" request, the same rule as Approve.
Driven through signed block_actions requests to the running product, with the sandbox losing the answer."""

from __future__ import annotations

import pytest

from every8d.endpoints import SEND_SMS
from storage import RequestState
from tests.faults_support import send_calls, watchdog  # noqa: F401 - fixture
from tests.harness import SlackUser, all_text, button

pytestmark = pytest.mark.usefixtures("watchdog")


def unknown_own_request(make_product, **overrides):
    """U_APPROVER asks, U_APPROVER2 approves, EVERY8D takes the send and never answers: outcome unknown."""
    product = make_product(every8d_timeout=1.0, callback_token="", **overrides)
    product.sandbox.faults.hang_seconds = 1.5
    product.sandbox.faults.inject("accept_then_hang", endpoint=SEND_SMS)
    SlackUser(product, "U_APPROVER").command("send 0912345678 明早九點停水通知")
    product.settle()
    card = product.standin.messages("C_APPROVALS")[0]
    SlackUser(product, "U_APPROVER2").click("approve_request", "1", message=card)
    product.settle()
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    assert len(send_calls(product.sandbox)) == 1
    card_now = product.standin.messages("C_APPROVALS")[0]
    assert button(card_now, "resend_request") is not None
    return product, card_now


def test_the_requester_cannot_send_their_own_request_again(make_product) -> None:
    product, card = unknown_own_request(make_product)
    requester = SlackUser(product, "U_APPROVER")
    assert requester.click("resend_request", "1", message=card).status_code == 200
    product.settle()
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    assert len(send_calls(product.sandbox)) == 1
    assert any("不能對自己提出的申請按「重新發送」" in all_text(m) for m in requester.ephemerals())
    assert "resend" not in [a["action"] for a in product.store.audit.for_request(1)]

    SlackUser(product, "U_APPROVER2").click("resend_request", "1", message=card)  # another approver may
    product.settle()
    assert product.store.requests.get(1).state is RequestState.SENT
    assert len(send_calls(product.sandbox)) == 2


def test_with_self_approval_on_the_requester_may_send_again(make_product) -> None:
    product, card = unknown_own_request(make_product, allow_self_approval=True)
    SlackUser(product, "U_APPROVER").click("resend_request", "1", message=card)
    product.settle()
    assert product.store.requests.get(1).state is RequestState.SENT
    assert len(send_calls(product.sandbox)) == 2


def test_the_requester_may_still_mark_their_own_request_as_sent(make_product) -> None:
    """Mark as sent sends nothing new: it is not a decision to send, so the rule does not apply."""
    product, card = unknown_own_request(make_product)
    SlackUser(product, "U_APPROVER").click("mark_sent", "1", message=card)
    product.settle()
    assert product.store.requests.get(1).state is RequestState.SENT
    assert len(send_calls(product.sandbox)) == 1
