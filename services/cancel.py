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
from storage import PartState, RequestState, SendRequest, Store

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
        batch_ids = [p.batch_id for p in self.store.parts.of_request(request_id)
                     if p.state is PartState.SENT and p.batch_id]
        deleted, refunded, found = 0, 0.0, 0
        for batch_id in batch_ids:
            try:
                answer = self.gateway.cancel_mms(batch_id) if request.kind == "mms" else self.gateway.cancel_sms(batch_id)
            except Every8dError as exc:
                log.warning("cancel of request %s batch %s failed: %s", request_id, batch_id, exc.describe("en"))
                if found:  # some parts are cancelled already: record them, and say what is left
                    self._record(request, user_id, deleted, refunded, complete=False)
                return CancelOutcome(CancelVerdict.ERROR, deleted, refunded, error=exc)
            if isinstance(answer, CancelResult):
                found += 1
                deleted += answer.deleted
                refunded += answer.refunded
                self._cancelled_batch(batch_id)
        if not found:
            return CancelOutcome(CancelVerdict.NOTHING_FOUND)
        self._record(request, user_id, deleted, refunded, complete=True)
        return CancelOutcome(CancelVerdict.CANCELLED, deleted, refunded)

    def _cancelled_batch(self, batch_id: str) -> None:
        """EVERY8D confirmed: the batch's scheduled recipients are cancelled and the batch is closed."""
        now = self.clock()
        with self.store.immediate():
            self.store.batches.cancel_scheduled(batch_id, now)
            self.store.batches.complete(batch_id, now)

    def _record(self, request: SendRequest, user_id: str, deleted: int, refunded: float, *, complete: bool) -> None:
        """The request is cancelled (every part was), its audit line and the posts; a cancel that stopped
        part way is audited too, and the request stays sent with its cancelled parts shown as such."""
        now = self.clock()
        with self.store.immediate():
            if complete:
                self.store.requests.transition(request.id, [RequestState.SENT], RequestState.CANCELLED, now=now)
            self.store.audit.record(
                user_id, "cancelled" if complete else "cancelled_partly", request_id=request.id, now=now,
                deleted=deleted, refunded=refunded,
            )
            self.store.outbox.enqueue(
                CANCEL_RESULT,
                {"request_id": request.id, "deleted": deleted, "refunded": refunded, "by": user_id},
                channel=request.approval_channel,
                dedupe_key=f"cancel:{request.id}" + ("" if complete else f":{now}"),
            )
            notices.card(self.store, request.id, request.approval_channel)
            if request.batch_id:
                notices.summary(self.store, request.batch_id, request.approval_channel)
