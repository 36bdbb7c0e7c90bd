"""Cancel a scheduled send before it goes out (eraseBooking), and show the refunded points."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from every8d.errors import Every8dError
from every8d.results import CancelResult
from services import notices
from services.notices import CANCEL_RESULT
from services.policy import Policy
from services.ports import Clock, Gateway
from storage import RequestState, Store

log = logging.getLogger("every8d_bot.cancel")


class CancelVerdict(StrEnum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"
    NOT_SCHEDULED = "not_scheduled"
    NOTHING_FOUND = "nothing_found"  # EVERY8D had nothing to cancel (already went out)
    ERROR = "error"


@dataclass(frozen=True)
class CancelOutcome:
    verdict: CancelVerdict
    deleted: int = 0
    refunded: float = 0.0
    error: Every8dError | None = None


class CancelService:
    def __init__(self, store: Store, gateway: Gateway, policy: Policy, clock: Clock) -> None:
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.clock = clock

    def cancel(self, request_id: int, user_id: str) -> CancelOutcome:
        """The requester or an approver may cancel a scheduled send that has not gone out yet."""
        request = self.store.requests.get(request_id)
        if request is None:
            return CancelOutcome(CancelVerdict.NOT_FOUND)
        if user_id != request.requester and not self.policy.is_approver(user_id):
            return CancelOutcome(CancelVerdict.NOT_ALLOWED)
        if (
            request.state is not RequestState.SENT
            or request.batch_id is None
            or request.send_at is None
            or request.send_at <= self.clock()
        ):
            return CancelOutcome(CancelVerdict.NOT_SCHEDULED)
        try:
            if request.kind == "mms":
                answer = self.gateway.cancel_mms(request.batch_id)
            else:
                answer = self.gateway.cancel_sms(request.batch_id)
        except Every8dError as exc:
            log.warning("cancel of request %s failed: %s", request_id, exc.describe("en"))
            return CancelOutcome(CancelVerdict.ERROR, error=exc)
        if not isinstance(answer, CancelResult):
            return CancelOutcome(CancelVerdict.NOTHING_FOUND)
        now = self.clock()
        with self.store.immediate():
            self.store.requests.transition(request_id, [RequestState.SENT], RequestState.CANCELLED, now=now)
            self.store.batches.cancel_scheduled(request.batch_id, now)
            self.store.batches.complete(request.batch_id, now)
            self.store.audit.record(
                user_id, "cancelled", request_id=request_id, now=now, deleted=answer.deleted, refunded=answer.refunded
            )
            self.store.outbox.enqueue(
                CANCEL_RESULT,
                {"request_id": request_id, "deleted": answer.deleted, "refunded": answer.refunded, "by": user_id},
                channel=request.approval_channel,
                dedupe_key=f"cancel:{request_id}",
            )
            notices.card(self.store, request_id, request.approval_channel)
            notices.summary(self.store, request.batch_id, request.approval_channel)
        return CancelOutcome(CancelVerdict.CANCELLED, answer.deleted, answer.refunded)
