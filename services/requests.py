"""Submit: a checked preview becomes a send request waiting for approval, with its card queued for the
approval channel. Auto-approval (under N points) is decided here, by the same conditional transition
an approver's click uses."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from services import notices
from services.budgets import BudgetService, BudgetVerdict
from services.compose import Preview
from services.parts import plan_parts
from services.policy import Policy
from services.ports import Clock
from services.sending import param_sms_usable
from storage import RequestState, Store

log = logging.getLogger("every8d_bot.requests")

AUTO_APPROVER = "auto"
#: Who approved a one-to-one answer that the policy lets skip approval (BOT_ANSWERS_NEED_APPROVAL=false).
ANSWER_POLICY_APPROVER = "answer-policy"
#: Who approved (and asked for) an automatic answer: the auto-reply rule an approver set (services/autoreply.py).
AUTOREPLY_APPROVER = "autoreply"


@dataclass(frozen=True)
class Submitted:
    request_id: int
    auto_approved: bool
    #: The same Slack event was submitted before (Slack redelivered it): nothing new was created.
    duplicate: bool = False


class RequestService:
    def __init__(self, store: Store, policy: Policy, clock: Clock, on_approved,
                 budgets: BudgetService | None = None) -> None:
        """`on_approved(request_id)` starts the send (in the background in the bot). `budgets`: monthly
        budgets (services/budgets.py); a request over one is never approved without an approver's override."""
        self.store = store
        self.policy = policy
        self.clock = clock
        self.on_approved = on_approved
        self.budgets = budgets

    def submit(
        self,
        preview: Preview,
        *,
        requester: str,
        origin_channel: str,
        thread: tuple[str, str] | None = None,
        reply_to: int | None = None,
        source_event: str | None = None,
        approved_by: str | None = None,
        quiet_override: bool = False,
        workflow_execution: str | None = None,
    ) -> Submitted:
        """Store the request and queue its card. For a one-to-one answer: `thread` (channel, ts) is the
        batch thread it was typed in (its card and posts go there), `reply_to` the reply it answers,
        `source_event` the Slack event it came from (submitting that event again returns the first request,
        so a redelivery never sends twice), and `approved_by` set when the policy lets it skip approval
        (approved by the same conditional transition as a click, so the exactly-once send still holds).
        `quiet_override`: the requester chose to send inside quiet hours (audited, shown on the card)."""
        if not preview.ok or preview.quote is None:
            raise ValueError("only a preview without problems can be submitted")
        compose = preview.input
        quote = preview.quote
        now = self.clock()
        approval_channel = thread[0] if thread else self.policy.approval_channel or origin_channel
        skipped = [{"entry": r.entry, "zh": r.zh, "en": r.en} for r in preview.recipients.rejected]
        fields = {
            "now": now,
            "requester": requester,
            "origin_channel": origin_channel,
            "kind": compose.kind,
            "subject": compose.subject,
            "message": compose.message,
            "image_type": preview.image_type,
            "image_name": compose.image_name or None,
            "send_at": compose.send_at.timestamp() if compose.send_at else None,
            "validity_minutes": compose.validity_minutes or 1440,
            "recipient_count": len(preview.recipients.recipients),
            "taiwan_count": quote.taiwan_count,
            "international_count": quote.international_count,
            "skipped_json": json.dumps(skipped, ensure_ascii=False),
            "chars": quote.chars,
            "parts": quote.parts,
            "points": quote.points,
            "estimate": int(quote.estimate),
            "credit_at_request": preview.credit,
            "approval_channel": approval_channel,
            "sandbox": int(self.policy.sandbox),
            "thread_channel": thread[0] if thread else None,
            "thread_ts": thread[1] if thread else None,
            "reply_to": reply_to,
            "source_event": source_event,
            "optout_skipped": len(preview.opted_out),
            "quiet_override": int(quiet_override),
        }
        with self.store.immediate():
            # Checked under the write lock, so two deliveries of one event cannot both pass.
            earlier = self.store.requests.by_source_event(source_event) if source_event else None
            if earlier is not None:
                return Submitted(earlier.id, earlier.auto_approved, duplicate=True)
            # Under the write lock: pending requests count, so two drafts at once cannot both fit the last points.
            verdict = self._budget(quote.points, requester, origin_channel, now)
            numbers, parts = plan_parts(
                [r.e164 for r in preview.recipients.recipients], chunk_size=self.policy.send_chunk_size,
                messages=preview.messages, message=compose.message, price=preview.price_part,
                per_recipient=param_sms_usable(self.store, self.policy, compose.kind, now),
            )
            request_id = self.store.requests.create(
                fields, numbers, image=compose.image, names=preview.names, messages=preview.messages, parts=parts
            )
            self.store.audit.record(requester, "requested", request_id=request_id, now=now, points=quote.points)
            if workflow_execution:  # linked before anything can settle it, so its outcome always finds the step
                self.store.workflow_steps.link(workflow_execution, request_id, now=now)
            if quiet_override:
                self.store.audit.record(requester, "quiet_hours_override", request_id=request_id, now=now)
            if verdict is not None and verdict.over:
                self.store.audit.record(requester, "over_budget", request_id=request_id, now=now,
                                        **verdict.audit_detail())
            notices.card(self.store, request_id, approval_channel)
        auto = self.policy.auto_approve_under is not None and quote.points < self.policy.auto_approve_under
        approver = approved_by or (AUTO_APPROVER if auto else None)
        if approver and verdict is not None and verdict.over:
            approver = None  # never approved automatically over a budget: an approver must override
        if approver and self.store.requests.transition(
            request_id,
            [RequestState.PENDING_APPROVAL],
            RequestState.APPROVED,
            decided_by=approver,
            decided_at=now,
            auto_approved=1,
            now=now,
        ):
            self.store.audit.record(approver, "approved", request_id=request_id, now=now)
            notices.card(self.store, request_id, approval_channel)
            self.on_approved(request_id)
        log.info("request %s submitted by %s (%.1f points, approved by %s)", request_id, requester, quote.points,
                 approver or "nobody yet")
        return Submitted(request_id, approver is not None)

    def _budget(self, points: float, requester: str, channel: str, now: float) -> BudgetVerdict | None:
        if self.budgets is None:
            return None
        return self.budgets.check(points, requester=requester, channel=channel, at=now)
