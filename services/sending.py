"""Send an approved request to EVERY8D exactly once.

1. Claim: `approved -> sending` in one conditional update (one winner; a retry or a double click loses).
2. Call EVERY8D. The client retries only when the request surely never left; once it may have reached
   EVERY8D, a lost answer is `OutcomeUnknownError`.
3. Record the outcome with the batch and the posts in one transaction.

A crash between 1 and 3 leaves the request in `sending`; at the next start `recover()` marks it
`unknown` (never re-sent blindly), says so in the thread, and reconciliation or an approver settles it.

Reconciliation has a race this module closes: EVERY8D pushes its first report (status 0, subject `#R<id>`)
the moment it accepts a send, often before its answer reaches us, or while the bot is down after a
crash. Such a report names a batch nobody knows yet, so it is kept aside. When a request then becomes
`unknown`, the reports kept aside are searched for its tag first: if EVERY8D already told us, the
request is settled at once instead of waiting for a report that may never come again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime

from every8d.errors import Every8dError, OutcomeUnknownError, ValidationError
from every8d.results import SendResult
from every8d.status import SCHEDULED_CODE
from services import notices
from services.crashpoints import crash_point
from services.policy import Policy
from services.ports import Clock, Gateway
from storage import RequestState, SendRequest, Store

log = logging.getLogger("every8d_bot.sending")

#: How many reports kept aside are searched for a request's tag (they are few: batches nobody knows).
KEPT_REPORTS_SEARCHED = 1000

#: Adopt a batch EVERY8D reported for a request of unknown outcome (TrackingService.adopt_batch).
Adopt = Callable[[int, str], bool]


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
        adopt: Adopt | None = None,
    ) -> None:
        """`adopt(request_id, batch_id)` settles an unknown send from a report EVERY8D already pushed;
        without it (benchmarks, unit tests) an unknown send waits for the next report or an approver."""
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.clock = clock
        self.on_credit = on_credit
        self.adopt = adopt

    def send(self, request_id: int) -> RequestState | None:
        """Send if this caller wins the claim; returns the final state, or None if someone else sends."""
        request = self.store.requests.get(request_id)
        if request is None or request.state is not RequestState.APPROVED:
            return None
        attempt = request.send_attempts + 1
        claimed_at = self.clock()
        if not self.store.requests.transition(
            request_id, [RequestState.APPROVED], RequestState.SENDING, send_attempts=attempt, now=claimed_at
        ):
            return None
        crash_point("after_claim")
        recipients, dropped = self._deliverable(request)
        # Written only with a sent or failed outcome: a resend after `unknown` starts again from the
        # count taken at submit, so numbers dropped here are never counted twice.
        skipped = request.optout_skipped + dropped
        if not recipients:
            self._finish_with_error(request, RequestState.FAILED, ValidationError(
                f"所有收件人（{dropped} 位）在核准前都已退訂，沒有發送任何簡訊。",
                f"Every recipient ({dropped}) opted out before the send; nothing was sent.",
            ), attempt, optout_skipped=skipped)
            return RequestState.FAILED
        try:
            result = self._call(request, recipients)
        except OutcomeUnknownError as exc:
            return self._mark_unknown(request, exc, attempt, claimed_at)
        except Every8dError as exc:
            self._finish_with_error(request, RequestState.FAILED, exc, attempt)
            return RequestState.FAILED
        except Exception:  # noqa: BLE001 - a bug must not leave the request in `sending` forever
            log.exception("unexpected error while sending request %s", request_id)
            # No server_message: the note would read "EVERY8D：KeyError", blaming EVERY8D in Python words.
            unknown = OutcomeUnknownError(
                "發送時發生內部錯誤，無法確定 EVERY8D 是否已收到。",
                "An internal error occurred while sending; EVERY8D may or may not have received it.",
            )
            return self._mark_unknown(request, unknown, attempt, claimed_at)
        crash_point("after_every8d_accepted")
        self._record_success(request, result, attempt, optout_skipped=skipped)
        crash_point("after_send_recorded")
        if self.on_credit is not None:
            self.on_credit(result.credit)
        return RequestState.SENT

    def _deliverable(self, request: SendRequest) -> tuple[list[str], int]:
        """The request's numbers minus those that opted out since it was composed, and how many those are.
        Read after the claim, so a STOP that arrived while the request waited for approval is honoured."""
        recipients = self.store.requests.recipients(request.id)
        opted_out = self.store.optouts.among(recipients)
        if not opted_out:
            return recipients, 0
        kept = [n for n in recipients if n not in opted_out]
        log.info("request %s: %d recipients opted out since it was composed; skipped", request.id,
                 len(recipients) - len(kept))
        return kept, len(recipients) - len(kept)

    def _call(self, request: SendRequest, recipients: list[str]) -> SendResult:
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

    def _record_success(self, request: SendRequest, result: SendResult, attempt: int, *, optout_skipped: int) -> None:
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
                optout_skipped=optout_skipped,
                now=now,
            )
            self.store.batches.create(
                batch_id=result.batch_id,
                request_id=request.id,
                kind=request.kind,
                send_at=request.send_at,
                validity_until=start + request.validity_minutes * 60,
                first_poll_at=(request.send_at + 5) if scheduled else now + min(self.policy.status_poll_seconds, 10),
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

    def _mark_unknown(
        self, request: SendRequest, exc: OutcomeUnknownError, attempt: int, claimed_at: float
    ) -> RequestState:
        """Say the outcome is unknown (never resend blindly), then settle it at once if EVERY8D's report
        for this attempt arrived while we were still waiting for its answer."""
        self._finish_with_error(request, RequestState.UNKNOWN, exc, attempt)
        batch_id = self._reported_batch(request, since=claimed_at)
        if batch_id is not None and self.adopt is not None and self.adopt(request.id, batch_id):
            log.info("request %s: EVERY8D had already reported batch %s; settled as sent", request.id, batch_id)
            return RequestState.SENT
        return RequestState.UNKNOWN

    def _reported_batch(self, request: SendRequest, *, since: float) -> str | None:
        """The batch of a report kept aside since this attempt was claimed whose subject carries this
        request's tag, if any (an older report could belong to an earlier attempt). Only SMS carry the
        tag (an MMS subject is shown on the phone)."""
        if request.kind != "sms":
            return None
        tag = re.compile(re.escape(request_tag(request.id)) + r"\b")
        for report in self.store.replies.unmatched_reports(limit=KEPT_REPORTS_SEARCHED):
            if report["created_at"] < since:
                continue
            try:
                subject = str(json.loads(report["raw_json"]).get("SB", ""))
            except (ValueError, AttributeError):
                continue
            if tag.search(subject):
                return str(report["batch_id"])
        return None

    def _finish_with_error(
        self, request: SendRequest, state: RequestState, exc: Every8dError, attempt: int, **fields: object
    ) -> None:
        """Record a send that did not succeed (`fields`: more columns written with the transition)."""
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
                **fields,
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
            # Its last change is the claim (a later card-ts update only narrows the search, never widens it).
            self._mark_unknown(request, interrupted, request.send_attempts, claimed_at=request.updated_at)
        return [r.id for r in self.store.requests.in_states(RequestState.APPROVED, limit=10000)]
