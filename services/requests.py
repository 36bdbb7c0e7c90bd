"""Submit: a checked preview becomes a send request waiting for approval, with its card queued for the
approval channel. Auto-approval (under N points) is decided here, by the same conditional transition
an approver's click uses."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from services import notices
from services.compose import Preview
from services.policy import Policy
from services.ports import Clock
from storage import RequestState, Store

log = logging.getLogger("every8d_bot.requests")

AUTO_APPROVER = "auto"


@dataclass(frozen=True)
class Submitted:
    request_id: int
    auto_approved: bool


class RequestService:
    def __init__(self, store: Store, policy: Policy, clock: Clock, on_approved) -> None:
        """`on_approved(request_id)` starts the send (in the background in the bot)."""
        self.store = store
        self.policy = policy
        self.clock = clock
        self.on_approved = on_approved

    def submit(self, preview: Preview, *, requester: str, origin_channel: str) -> Submitted:
        if not preview.ok or preview.quote is None:
            raise ValueError("only a preview without problems can be submitted")
        compose = preview.input
        quote = preview.quote
        now = self.clock()
        approval_channel = self.policy.approval_channel or origin_channel
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
        }
        with self.store.immediate():
            request_id = self.store.requests.create(
                fields, [r.e164 for r in preview.recipients.recipients], image=compose.image
            )
            self.store.audit.record(requester, "requested", request_id=request_id, now=now, points=quote.points)
            notices.card(self.store, request_id, approval_channel)
        auto = self.policy.auto_approve_under is not None and quote.points < self.policy.auto_approve_under
        if auto and self.store.requests.transition(
            request_id,
            [RequestState.PENDING_APPROVAL],
            RequestState.APPROVED,
            decided_by=AUTO_APPROVER,
            decided_at=now,
            auto_approved=1,
            now=now,
        ):
            self.store.audit.record(AUTO_APPROVER, "approved", request_id=request_id, now=now)
            notices.card(self.store, request_id, approval_channel)
            self.on_approved(request_id)
        log.info("request %s submitted by %s (%.1f points, auto=%s)", request_id, requester, quote.points, auto)
        return Submitted(request_id, auto)
