"""Approve or reject a request: one conditional state change decides, whoever clicks and however often.

Twenty approvers clicking at once, a double click, or Slack retrying the action all run the same
`UPDATE … WHERE state = 'pending_approval'`; exactly one caller sees a changed row and starts the send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from services import notices
from services.budgets import BudgetService, BudgetVerdict
from services.crashpoints import crash_point
from services.permissions import Action, may
from services.policy import Policy
from services.ports import Clock
from storage import PartState, RequestState, SendRequest, Store

log = logging.getLogger("every8d_bot.approval")

#: A rejection's reason is kept to this many characters (whitespace collapsed).
MAX_REASON_CHARS = 500


#: A scheduled time further in the past than this is refused by EVERY8D for every recipient (status -4,
#: "預約時間已過 24 小時以上"), so approving such a request would only fail it: the approver is told instead.
STALE_SCHEDULE_SECONDS = 24 * 3600.0


class Verdict(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    NOT_APPROVER = "not_approver"
    SELF_APPROVAL = "self_approval"
    SELF_RESEND = "self_resend"  # Send again on one's own request, with self-approval off
    ALREADY_DECIDED = "already_decided"
    NOT_UNKNOWN = "not_unknown"  # resolve_unknown on a request whose outcome is known
    MARKED_SENT = "marked_sent"
    RESENT = "resent"
    OVER_BUDGET = "over_budget"  # a plain Approve on a request over a monthly budget (services/budgets.py)
    TIME_PASSED = "time_passed"  # its scheduled time is over STALE_SCHEDULE_SECONDS ago: EVERY8D would fail it


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    request: SendRequest | None
    #: The request against its month's budgets, when one was over (OVER_BUDGET, or approved over budget).
    budget: BudgetVerdict | None = None

    @property
    def changed(self) -> bool:
        return self.verdict in (Verdict.APPROVED, Verdict.REJECTED, Verdict.MARKED_SENT, Verdict.RESENT)


class ApprovalService:
    def __init__(self, store: Store, policy: Policy, clock: Clock, on_approved,
                 budgets: BudgetService | None = None) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.on_approved = on_approved
        self.budgets = budgets

    def refusal(self, request_id: int, user_id: str, *, approve: bool) -> Decision | None:
        """Why this person may not take this decision now, or None if they may: asked before the Reject
        window opens, so nobody types a reason for a request that is gone or not theirs to decide."""
        request = self.store.requests.get(request_id)
        refused = self._who_may_not(request, user_id, approve=approve)
        if refused is not None:
            return refused
        if request is not None and request.state is not RequestState.PENDING_APPROVAL:
            return Decision(Verdict.ALREADY_DECIDED, request)
        return None

    def _who_may_not(self, request: SendRequest | None, user_id: str, *, approve: bool) -> Decision | None:
        """The one rule of who may decide: an approver, and not on their own request unless self-approval is
        allowed (rejecting one's own request is always allowed: it sends nothing)."""
        if request is None:
            return Decision(Verdict.NOT_FOUND, None)
        if not may(self.policy, user_id, Action.REJECT, owner=request.requester):
            return Decision(Verdict.NOT_APPROVER, request)
        if approve and not may(self.policy, user_id, Action.APPROVE, owner=request.requester):
            return Decision(Verdict.SELF_APPROVAL, request)
        return None

    def decide(self, request_id: int, user_id: str, *, approve: bool, reason: str = "",
               override_budget: bool = False) -> Decision:
        """`reason` (a rejection's, optional) is kept on the request, shown on the card and told to the
        requester. A request over a monthly budget is approved only with `override_budget` (the card's
        "Approve over budget"; audited as `budget_override`); a plain Approve gets OVER_BUDGET and the card
        is redrawn with the override button (it may have gone over since it was posted)."""
        request = self.store.requests.get(request_id)
        refused = self._who_may_not(request, user_id, approve=approve)
        if refused is not None or request is None:
            return refused or Decision(Verdict.NOT_FOUND, None)
        now = self.clock()
        if approve and request.send_at is not None and now - request.send_at > STALE_SCHEDULE_SECONDS:
            return Decision(Verdict.TIME_PASSED, request)  # nothing changes; Reject (with a reason) still works
        target = RequestState.APPROVED if approve else RequestState.REJECTED
        reason = " ".join(reason.split())[:MAX_REASON_CHARS]
        with self.store.immediate():
            budget = self._over_budget(request_id) if approve else None
            if budget is not None and not override_budget:
                notices.card(self.store, request_id, request.approval_channel)
                return Decision(Verdict.OVER_BUDGET, request, budget)
            won = self.store.requests.transition(
                request_id, [RequestState.PENDING_APPROVAL], target, decided_by=user_id, decided_at=now, now=now,
                decision_reason=reason or None,
            )
            if won:
                self.store.audit.record(user_id, target.value, request_id=request_id, now=now,
                                        **({"reason": reason} if reason else {}))
                if budget is not None:
                    self.store.audit.record(user_id, "budget_override", request_id=request_id, now=now,
                                            **budget.audit_detail())
                notices.card(self.store, request_id, request.approval_channel)
                if user_id != request.requester:
                    notices.requester_update(self.store, request_id, request.requester, target.value)
                notices.workflow_outcome(self.store, request_id, target.value)
        current = self.store.requests.get(request_id)
        if not won:
            return Decision(Verdict.ALREADY_DECIDED, current)
        log.info("request %s %s by %s", request_id, target.value, user_id)
        if approve:
            crash_point("after_approval")
            self.on_approved(request_id)
        return Decision(Verdict.APPROVED if approve else Verdict.REJECTED, current)

    def _over_budget(self, request_id: int) -> BudgetVerdict | None:
        """The budget verdict of a still pending request when it is over a budget (read under the caller's
        write lock, so what it counts cannot change before the decision is written)."""
        if self.budgets is None:
            return None
        current = self.store.requests.get(request_id)
        if current is None or current.state is not RequestState.PENDING_APPROVAL:
            return None
        verdict = self.budgets.check_request(current)
        return verdict if verdict.over else None

    def resolve_unknown(self, request_id: int, user_id: str, *, resend: bool) -> Decision:
        """An approver settles a send whose outcome is unknown: it did go out (mark sent), or it did not
        (send again, explicitly). The decision covers every part in doubt; parts never attempted are
        sent either way (the approval to send still holds for them). Both are recorded in the audit trail.
        Send again is a new decision to send, so it follows Approve's rule: with self-approval off, the
        requester cannot take it on their own request, approver or not (Mark as sent sends nothing new)."""
        request = self.store.requests.get(request_id)
        if request is None:
            return Decision(Verdict.NOT_FOUND, None)
        if not may(self.policy, user_id, Action.MARK_SENT, owner=request.requester):
            return Decision(Verdict.NOT_APPROVER, request)
        if resend and not may(self.policy, user_id, Action.SEND_AGAIN, owner=request.requester):
            return Decision(Verdict.SELF_RESEND, request)
        now = self.clock()
        with self.store.immediate():
            parts = self.store.parts.of_request(request_id)
            still_to_send = resend or any(p.state is PartState.PENDING for p in parts)
            target = RequestState.APPROVED if still_to_send else RequestState.SENT
            won = self.store.requests.transition(request_id, [RequestState.UNKNOWN], target, now=now)
            if won:
                self.store.parts.transition_all(request_id, PartState.UNKNOWN,
                                                PartState.PENDING if resend else PartState.SENT, now=now)
                action = "resend" if resend else "marked_sent"
                self.store.audit.record(user_id, action, request_id=request_id, now=now)
                zh = f"<@{user_id}> 已確認重新發送。" if resend else f"<@{user_id}> 已確認此批次已送出（不再重送）。"
                en = f"<@{user_id}> chose to send again." if resend else f"<@{user_id}> marked this as sent (no resend)."
                notices.thread_note(self.store, request_id, request.approval_channel, zh, en, action)
                notices.card(self.store, request_id, request.approval_channel)
        if not won:
            return Decision(Verdict.NOT_UNKNOWN, self.store.requests.get(request_id))
        if still_to_send:
            self.on_approved(request_id)
        if resend:
            return Decision(Verdict.RESENT, self.store.requests.get(request_id))
        return Decision(Verdict.MARKED_SENT, self.store.requests.get(request_id))
