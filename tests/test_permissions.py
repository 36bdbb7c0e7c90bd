"""One rule per action (services/permissions.py), and every surface showing it the same way: the card's
Reject and App Home agree that an approver may withdraw (reject) their own request but not approve it."""

from __future__ import annotations

import pytest

from services.permissions import Action, may
from services.policy import Policy
from slackstandin import payloads as p
from tests.harness import SlackUser, button, wait_until

POLICY = Policy(approver_users=frozenset({"U_APPROVER", "U_BOSS"}))


@pytest.mark.parametrize(("user", "action", "owner", "allowed"), [
    ("U_APPROVER", Action.APPROVE, "U_REQUESTER", True),
    ("U_APPROVER", Action.APPROVE, "U_APPROVER", False),  # not one's own
    ("U_APPROVER", Action.SEND_AGAIN, "U_APPROVER", False),  # a new decision to send: the same rule
    ("U_APPROVER", Action.REJECT, "U_APPROVER", True),  # withdrawing sends nothing
    ("U_APPROVER", Action.MARK_SENT, "U_APPROVER", True),
    ("U_REQUESTER", Action.REJECT, "U_REQUESTER", False),
    ("U_REQUESTER", Action.CANCEL, "U_REQUESTER", True),
    ("U_OTHER", Action.CANCEL, "U_REQUESTER", False),
    ("U_BOSS", Action.CANCEL, "U_REQUESTER", True),
    ("U_REQUESTER", Action.MANAGE_LISTS, None, False),
    ("U_BOSS", Action.EXPORT, None, True),
    ("U_REQUESTER", Action.EDIT_TEMPLATE, "U_REQUESTER", True),
    ("U_OTHER", Action.EDIT_TEMPLATE, "U_REQUESTER", False),
])
def test_one_rule_per_action(user, action, owner, allowed):
    assert may(POLICY, user, action, owner=owner) is allowed


def test_self_approval_on_lets_an_approver_approve_their_own():
    policy = Policy(approver_users=frozenset({"U_APPROVER"}), allow_self_approval=True)
    assert may(policy, "U_APPROVER", Action.APPROVE, owner="U_APPROVER")


def test_app_home_offers_an_approver_only_reject_on_their_own_request_as_the_card_allows(product):
    approver = SlackUser(product, "U_APPROVER")
    approver.command("send 0912345678 我自己的申請")
    product.settle()
    approver._post(p.event_callback(p.app_home_opened("U_APPROVER")), content_type=p.JSON_TYPE)
    home = wait_until(lambda: product.standin.home("U_APPROVER"))
    assert button(home, "approve_request") is None and button(home, "reject_request") is not None
    [card] = product.standin.messages("C_APPROVALS")
    approver.click("approve_request", "1", message=card)  # the card refuses the same thing Home hides
    product.settle()
    assert product.store.requests.get(1).state.value == "pending_approval"
