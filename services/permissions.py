"""Who may do what: one rule per action, asked by the services that act and by every surface that shows a
button, so a card, App Home and a command never disagree about it.

The rules: approvers (BOT_APPROVERS) approve and reject; nobody approves their own request unless
BOT_ALLOW_SELF_APPROVAL, and "Send again" on a request in doubt is a new decision to send, so it follows
the same rule; rejecting one's own request, or marking it sent, sends nothing and needs only an approver.
A scheduled send is cancelled by its requester or an approver. Lists that shape every send (contacts and
groups, opt-outs, budgets, auto-replies) and exports (audit, reports) are the approvers'. A template is
changed by its author or an approver.
"""

from __future__ import annotations

from enum import StrEnum

from services.policy import Policy


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    SEND_AGAIN = "send_again"
    MARK_SENT = "mark_sent"
    CANCEL = "cancel"
    MANAGE_LISTS = "manage_lists"
    EXPORT = "export"
    EDIT_TEMPLATE = "edit_template"


def may(policy: Policy, user: str, action: Action, *, owner: str | None = None) -> bool:
    """Whether `user` may take `action`. `owner`: the request's requester (approve, reject, send again,
    cancel) or the template's author (edit a template)."""
    approver = policy.is_approver(user)
    if action in (Action.APPROVE, Action.SEND_AGAIN):
        return approver and (policy.allow_self_approval or user != owner)
    if action in (Action.REJECT, Action.MARK_SENT, Action.MANAGE_LISTS, Action.EXPORT):
        return approver
    if action in (Action.CANCEL, Action.EDIT_TEMPLATE):
        return approver or (owner is not None and user == owner)
    return False
