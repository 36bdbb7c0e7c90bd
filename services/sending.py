"""Send an approved request to EVERY8D exactly once.

1. Claim: `approved -> sending` in one conditional update (one winner; a retry or a double click loses).
2. Call EVERY8D. The client retries only when the request surely never left; once it may have reached
   EVERY8D, a lost answer is `OutcomeUnknownError`.
3. Record the outcome with the batch and the posts in one transaction.

A crash between 1 and 3 leaves the request in `sending`; at the next start `recover()` marks it
`unknown` (never re-sent blindly), says so in the thread, and reconciliation or an approver settles it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from every8d.errors import Every8dError, OutcomeUnknownError
from every8d.results import SendResult
from every8d.status import SCHEDULED_CODE
from services import notices
from services.crashpoints import crash_point
from services.policy import Policy
from services.ports import Clock, Gateway
from storage import RequestState, SendRequest, Store

log = logging.getLogger("every8d_bot.sending")


def request_tag(request_id: int) -> str:
    """The tag written into an SMS's subject field (SB, never shown on the phone). EVERY8D echoes SB in
    callbacks, which lets a send of unknown outcome be matched to its batch later."""
    return f"#R{request_id}"


class SendService:
    def __init__(
        self,
        store: Store,
        gateway: Gateway,
        policy: Policy,
        clock: Clock,
        on_credit: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.clock = clock
        self.on_credit = on_credit

    def send(self, request_id: int) -> RequestState | None:
        """Send if this caller wins the claim; returns the final state, or None if someone else sends."""
        request = self.store.requests.get(request_id)
        if request is None or request.state is not RequestState.APPROVED:
            return None
        attempt = request.send_attempts + 1
        if not self.store.requests.transition(
            request_id, [RequestState.APPROVED], RequestState.SENDING, send_attempts=attempt, now=self.clock()
        ):
            return None
        crash_point("after_claim")
        try:
            result = self._call(request)
        except OutcomeUnknownError as exc:
            self._finish_with_error(request, RequestState.UNKNOWN, exc, attempt)
            return RequestState.UNKNOWN
        except Every8dError as exc:
            self._finish_with_error(request, RequestState.FAILED, exc, attempt)
            return RequestState.FAILED
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the request in `sending` forever
            log.exception("unexpected error while sending request %s", request_id)
            unknown = OutcomeUnknownError(
                "發送時發生內部錯誤，無法確定 EVERY8D 是否已收到。",
                "An internal error occurred while sending; EVERY8D may or may not have received it.",
                server_message=type(exc).__name__,
            )
            self._finish_with_error(request, RequestState.UNKNOWN, unknown, attempt)
            return RequestState.UNKNOWN
        crash_point("after_every8d_accepted")
        self._record_success(request, result, attempt)
        crash_point("after_send_recorded")
        if self.on_credit is not None:
            self.on_credit(result.credit)
        return RequestState.SENT

    def _call(self, request: SendRequest) -> SendResult:
        recipients = self.store.requests.recipients(request.id)
        send_at = datetime.fromtimestamp(request.send_at, tz=UTC) if request.send_at else None
        log.info("sending request %s: %s to %d recipients", request.id, request.kind, len(recipients))
        if request.kind == "mms":
            image = self.store.requests.image(request.id) or b""
            return self.gateway.send_mms(
                subject=request.subject,
                message=request.message,
                image=image,
                image_type=request.image_type or "jpg",
                recipients=recipients,
                send_at=send_at,
                validity_minutes=request.validity_minutes,
            )
        subject = f"{request_tag(request.id)} {request.subject}".strip()
        return self.gateway.send_sms(
            message=request.message,
            recipients=recipients,
            subject=subject,
            send_at=send_at,
            validity_minutes=request.validity_minutes,
        )

    def _record_success(self, request: SendRequest, result: SendResult, attempt: int) -> None:
        now = self.clock()
        start = request.send_at or now
        scheduled = request.send_at is not None and request.send_at > now
        with self.store.immediate():
            self.store.requests.transition(
                request.id,
                [RequestState.SENDING],
                RequestState.SENT,
                batch_id=result.batch_id,
                sent_count=result.sent,
                cost=result.cost,
                unsent=result.unsent,
                credit_after=result.credit,
                error_zh=None,
                error_en=None,
                error_note=None,
                now=now,
            )
            self.store.batches.create(
                batch_id=result.batch_id,
                request_id=request.id,
                kind=request.kind,
                send_at=request.send_at,
                validity_until=start + request.validity_minutes * 60,
                first_poll_at=(request.send_at + 5) if scheduled else now + min(self.policy.status_poll_seconds, 10),
                recipients=self.store.requests.iter_recipients(request.id),
                initial_status=SCHEDULED_CODE if scheduled else (700 if request.kind == "mms" else 0),
                now=now,
            )
            self.store.credit.record(result.credit, source="send", now=now)
            self.store.audit.record(
                "bot", "sent", request_id=request.id, now=now, batch_id=result.batch_id, cost=result.cost,
                sent=result.sent, unsent=result.unsent,
            )
            notices.card(self.store, request.id, request.approval_channel)
            notices.send_result(self.store, request.id, request.approval_channel, attempt)
            notices.summary(self.store, result.batch_id, request.approval_channel)
        log.info("request %s sent: batch %s, %d messages, %.1f points", request.id, result.batch_id, result.sent,
                 result.cost)

    def _finish_with_error(
        self, request: SendRequest, state: RequestState, exc: Every8dError, attempt: int
    ) -> None:
        now = self.clock()
        with self.store.immediate():
            self.store.requests.transition(
                request.id,
                [RequestState.SENDING],
                state,
                error_zh=exc.zh,
                error_en=exc.en,
                error_note=exc.support_note(),
                now=now,
            )
            self.store.audit.record("bot", state.value, request_id=request.id, now=now, error=exc.describe("en"))
            notices.card(self.store, request.id, request.approval_channel)
            notices.send_result(self.store, request.id, request.approval_channel, attempt)
        log.warning("request %s %s: %s", request.id, state.value, exc.describe("en"))

    def recover(self) -> list[int]:
        """At start: a request left in `sending` died mid-call, so its outcome is unknown; an approved
        request that never started is sent now. Returns the ids of approved requests to send."""
        for request in self.store.requests.in_states(RequestState.SENDING, limit=10000):
            interrupted = OutcomeUnknownError(
                "機器人在發送途中停止，無法確定 EVERY8D 是否已收到；不會自動重送。",
                "The bot stopped while sending; EVERY8D may or may not have received it. It will not be resent "
                "automatically.",
            )
            self._finish_with_error(request, RequestState.UNKNOWN, interrupted, request.send_attempts)
        return [r.id for r in self.store.requests.in_states(RequestState.APPROVED, limit=10000)]
