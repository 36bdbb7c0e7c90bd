"""Send an approved request to EVERY8D exactly once, part by part.

A request is one or more parts (services/parts.py): one EVERY8D call each, at most BOT_SEND_CHUNK_SIZE
numbers, one text. For the request and then for each part:

1. Claim: `approved -> sending` (the request), then `pending -> sending` (each part), each one
   conditional update (one winner; a retry or a double click loses).
2. Call EVERY8D. The client retries only when the request surely never left; once it may have reached
   EVERY8D, a lost answer is `OutcomeUnknownError`.
3. Record the part's outcome with its batch and the posts in one transaction; the request's totals
   (messages, points, credit) grow with each recorded part.

The first part that fails or whose outcome is unknown stops the send: the parts already sent stay sent
(and tracked), the rest wait. The request then settles as `failed` or `unknown` with what was and was
not sent. A crash mid-call leaves a part in `sending`; at the next start `recover()` marks that part
`unknown` (never re-sent blindly) and says so in the thread; reconciliation or an approver settles it.
A crash between two parts loses nothing: the request is simply resumed with the parts still pending.

A "param" part (personalised texts, services/parts.py) is one SendParamSMS call carrying each recipient's
own text, read from request_recipients when the part is sent, so recovery, reconciliation and Send again
send exactly the texts that were approved. It is claimed, recorded and reconciled like any other part
(the `#R<id>.<part>@<deployment>` tag goes in SB). If the platform answers 404 for SendParamSMS (or it was
found missing earlier, or EVERY8D_PARAM_SMS is off), nothing was sent, so that part and the ones after it
are re-planned as one-call-per-text parts over the same recipients and the send goes on. Any other
failure (a refusal, a lost answer) is handled as for sendSMS: never a fallback after an ambiguous answer.

Reconciliation has a race this module closes: EVERY8D pushes its first report (status 0, subject
`#R<id>` or `#R<id>.<part>`) the moment it accepts a send, often before its answer reaches us, or while
the bot is down after a crash. Such a report names a batch nobody knows yet, so it is kept aside. When a
part then becomes `unknown`, the reports kept aside are searched for its tag first: if EVERY8D already
told us, the part is settled at once instead of waiting for a report that may never come again.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from every8d.endpoints import SEND_PARAM
from every8d.errors import Every8dError, OutcomeUnknownError, UnsupportedEndpointError, ValidationError
from every8d.phones import Recipient, parse_phone
from every8d.pricing import quote_sms
from every8d.results import ParamRecipient, SendResult
from every8d.status import SCHEDULED_CODE
from services import capabilities, notices
from services.crashpoints import crash_point
from services.parts import PARAM, replan_text_parts
from services.policy import Policy
from services.ports import Clock, Gateway
from storage import PartState, RequestPart, RequestState, SendRequest, Store

log = logging.getLogger("every8d_bot.sending")

#: How many reports kept aside are searched for a part's tag (they are few: batches nobody knows).
KEPT_REPORTS_SEARCHED = 1000

#: How long a send waits for a database that refused to record a part EVERY8D accepted (disk full, read
#: only) before it leaves the part to the watchdog; it retries the write every few seconds meanwhile.
RECORD_PATIENCE_SECONDS = 300.0
RECORD_RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)

#: Adopt a batch EVERY8D reported for a part of unknown outcome (TrackingService.adopt_batch):
#: (request id, batch id, part) -> adopted.
Adopt = Callable[[int, str, int], bool]

_TAG = re.compile(r"#R(\d+)(?:\.(\d+))?(?:@([0-9a-f]{4}))?(?![\w.@])")
#: The settings key of this deployment's tag (`store.credit` holds the settings).
DEPLOYMENT_KEY = "deployment_tag"


def request_tag(request_id: int, part: int = 0, deployment: str = "") -> str:
    """The tag written into an SMS's subject field (SB, never shown on the phone). EVERY8D echoes it in
    callbacks (as `SUBJECT`), which lets a send of unknown outcome be matched to its batch later: `#R<id>`, `.<part>`
    for the parts after the first, and `@<deployment>` so that two bots sharing one EVERY8D account (a
    staging and a production one, whose reports reach one callback URL) never settle each other's sends."""
    tag = f"#R{request_id}" if part == 0 else f"#R{request_id}.{part}"
    return f"{tag}@{deployment}" if deployment else tag


def parse_tag(subject: str) -> tuple[int, int, str | None] | None:
    """(request id, part, deployment or None for a tag without one) from a subject, or None."""
    match = _TAG.search(subject or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0), match.group(3)


def deployment_tag(store: Store) -> str:
    """This database's deployment tag (4 hex digits), made at first use and kept in its settings."""
    current = store.settings.get(DEPLOYMENT_KEY)
    if current is None:
        store.settings.swap(DEPLOYMENT_KEY, None, secrets.token_hex(2))
        current = store.settings.get(DEPLOYMENT_KEY)
    return current or ""


def param_sms_usable(store: Store, policy: Policy, kind: str, now: float) -> bool:
    """Whether personalised SMS should be planned as SendParamSMS parts: SMS only (MMS has no such
    endpoint), allowed by EVERY8D_PARAM_SMS, and not found missing on this platform."""
    return kind == "sms" and policy.param_sms and not capabilities.is_unsupported(store, SEND_PARAM, now)


def _sms_points(text: str, numbers: list[str]) -> float:
    """Points of one text to these numbers (a re-plan keeps each part's price as the preview showed it)."""
    people = [found for found in map(parse_phone, numbers) if isinstance(found, Recipient)]
    return quote_sms(text, people).points


#: Longest recipient name sent with SendParamSMS (the Web Services API limits NAME to 50; the HTTP one is silent).
PARAM_NAME_LIMIT = 50


class _UseTextParts(Exception):
    """A param part cannot go out as SendParamSMS (off, or missing on the platform); nothing was sent."""

    def __init__(self, error: Every8dError) -> None:
        super().__init__(error.describe("en"))
        self.error = error


def tag_is_ours(tag: tuple[int, int, str | None], deployment: str) -> bool:
    """Only a tag naming this deployment may settle a send. A bare `#R<id>` (no `@<deployment>`) is
    refused: anyone can forge one, and another bot on the same EVERY8D account writes the same ids, so
    trusting it would mark as sent a send EVERY8D never got (and take its Send again button away). Such a
    report stays kept aside as unmatched, where an approver can still see it."""
    return bool(deployment) and tag[2] == deployment


class SendService:
    def __init__(
        self,
        store: Store,
        gateway: Gateway,
        policy: Policy,
        clock: Clock,
        on_credit: Callable[[float], None] | None = None,
        adopt: Adopt | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> None:
        """`adopt(request_id, batch_id, part)` settles an unknown part from a report EVERY8D already pushed;
        without it (benchmarks, unit tests) an unknown send waits for the next report or an approver.
        `keep_going()` false (the bot is shutting down) stops a send between two parts: the request goes
        back to approved and the next start sends the parts still pending."""
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.clock = clock
        self.on_credit = on_credit
        self.adopt = adopt
        self.keep_going = keep_going
        self.deployment = deployment_tag(store)
        self.record_patience = RECORD_PATIENCE_SECONDS
        self._active: set[int] = set()
        self._active_lock = threading.Lock()

    def active(self) -> frozenset[int]:
        """Requests this process is sending right now (the watchdog leaves their parts alone)."""
        with self._active_lock:
            return frozenset(self._active)

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
        with self._active_lock:
            self._active.add(request_id)
        try:
            return self._send_claimed(request, attempt)
        finally:
            with self._active_lock:
                self._active.discard(request_id)

    def _send_claimed(self, request: SendRequest, attempt: int) -> RequestState | None:
        request_id = request.id
        crash_point("after_claim")
        error: Every8dError | None = None
        replanned = True
        while replanned:  # again over the new parts when param parts were re-planned as text parts
            replanned = False
            for part in self.store.parts.of_request(request_id):
                if part.state is not PartState.PENDING:
                    continue
                if not self.keep_going():
                    break
                outcome, error = self._send_part(request, part)
                if outcome is PartState.PENDING and error is not None:
                    replanned = True
                    error = None
                    break
                if outcome not in (PartState.SENT, PartState.SKIPPED):
                    break
        state = self._settle(request, attempt, error)
        if state is RequestState.APPROVED:
            # Nothing in doubt and parts left: go on, unless stopping (the next start resumes).
            return self.send(request_id) if self.keep_going() else state
        crash_point("after_send_recorded")
        if state is RequestState.UNKNOWN:
            return self._reconcile_now(request)
        return state

    # -- one part ----------------------------------------------------------------------------------

    def _send_part(self, request: SendRequest, part: RequestPart) -> tuple[PartState, Every8dError | None]:
        """Claim, call and record one part; returns its state and, when it did not go out, why.
        (PENDING with an error: the part was re-planned as text parts; the caller reads the parts again.)"""
        if not self.store.parts.transition(
            request.id, part.part, [PartState.PENDING], PartState.SENDING, attempts=part.attempts + 1,
            claimed_at=self.clock(), now=self.clock(),
        ):
            return PartState.PENDING, None
        crash_point("after_part_claimed")
        people: list[tuple[int, str, str, str | None]] = []
        if part.mode == PARAM:
            people, dropped = self.store.parts.deliverable_texts(part)
            recipients = [e164 for _, e164, _, _ in people]
        else:
            recipients, dropped = self._deliverable(part)
        if not recipients:
            now = self.clock()
            with self.store.immediate():
                self.store.parts.transition(request.id, part.part, [PartState.SENDING], PartState.SKIPPED,
                                            optout_dropped=dropped, now=now)
                self.store.requests.add_part_outcome(request.id, batch_id=None, sent=None, cost=None, unsent=None,
                                                     credit=None, dropped=dropped, now=now)
            return PartState.SKIPPED, None
        try:
            result = self._call(request, part, recipients, people)
        except _UseTextParts as fallback:
            if self._replan(request, part, fallback.error):
                return PartState.PENDING, fallback.error
            self._part_not_sent(request, part, PartState.FAILED, fallback.error)
            return PartState.FAILED, fallback.error
        except OutcomeUnknownError as exc:
            self._part_not_sent(request, part, PartState.UNKNOWN, exc)
            return PartState.UNKNOWN, exc
        except Every8dError as exc:
            self._part_not_sent(request, part, PartState.FAILED, exc)
            return PartState.FAILED, exc
        except Exception:  # noqa: BLE001 - a bug must not leave the part in `sending` forever
            log.exception("unexpected error while sending request %s part %s", request.id, part.part)
            # No server_message: the note would read "EVERY8D：KeyError", blaming EVERY8D in Python words.
            unknown = OutcomeUnknownError(
                "發送時發生內部錯誤，無法確定 EVERY8D 是否已收到。",
                "An internal error occurred while sending; EVERY8D may or may not have received it.",
            )
            self._part_not_sent(request, part, PartState.UNKNOWN, unknown)
            return PartState.UNKNOWN, unknown
        crash_point("after_every8d_accepted")
        try:
            self._record_part(request, part, result, dropped)
        except sqlite3.Error as exc:
            self._record_when_writable(request, part, result, dropped, exc)
        crash_point("after_part_recorded")
        if self.on_credit is not None:
            self.on_credit(result.credit)
        return PartState.SENT, None

    def _deliverable(self, part: RequestPart) -> tuple[list[str], int]:
        """The part's numbers minus those that opted out since it was composed, and how many those are.
        Read after the claim, so a STOP that arrived while the request waited for approval is honoured."""
        kept, dropped = self.store.parts.deliverable(part)
        if dropped:
            log.info("request %s part %s: %d recipients opted out since it was composed; skipped", part.request_id,
                     part.part, dropped)
        return kept, dropped

    def _call(
        self, request: SendRequest, part: RequestPart, recipients: list[str],
        people: list[tuple[int, str, str, str | None]],
    ) -> SendResult:
        send_at = datetime.fromtimestamp(request.send_at, tz=UTC) if request.send_at else None
        if part.mode == PARAM:
            return self._call_param(request, part, people, send_at)
        message = part.message if part.message is not None else request.message
        log.info("sending request %s part %s: %s to %d recipients", request.id, part.part, request.kind,
                 len(recipients))
        if request.kind == "mms":
            image = self.store.requests.image(request.id) or b""
            return self.gateway.send_mms(
                subject=request.subject,
                message=message,
                image=image,
                image_type=request.image_type or "jpg",
                recipients=recipients,
                send_at=send_at,
                validity_minutes=request.validity_minutes,
            )
        subject = f"{request_tag(request.id, part.part, self.deployment)} {request.subject}".strip()
        return self.gateway.send_sms(
            message=message,
            recipients=recipients,
            subject=subject,
            send_at=send_at,
            validity_minutes=request.validity_minutes,
        )

    def _call_param(
        self, request: SendRequest, part: RequestPart, people: list[tuple[int, str, str, str | None]],
        send_at: datetime | None,
    ) -> SendResult:
        """One SendParamSMS call with each recipient's stored text; `Mr` is the recipient's position (1-based),
        unique within the call, echoed in EVERY8D's pushes."""
        now = self.clock()
        send_param = getattr(self.gateway, "send_param_sms", None)
        if not param_sms_usable(self.store, self.policy, request.kind, now) or send_param is None:
            raise _UseTextParts(UnsupportedEndpointError(
                "此帳號不使用 SendParamSMS，改為每種內容各發送一次", "SendParamSMS is not in use for this account; "
                "sending one call per text instead", endpoint=SEND_PARAM))
        entries = [ParamRecipient(e164, message if message is not None else request.message,
                                  name=name[:PARAM_NAME_LIMIT], mr=str(position + 1))
                   for position, e164, name, message in people]
        subject = f"{request_tag(request.id, part.part, self.deployment)} {request.subject}".strip()
        log.info("sending request %s part %s: personalised SMS to %d recipients in one SendParamSMS call",
                 request.id, part.part, len(entries))
        try:
            return send_param(recipients=entries, subject=subject, send_at=send_at,
                              validity_minutes=request.validity_minutes)
        except UnsupportedEndpointError as exc:  # a 404: nothing was sent
            capabilities.mark_unsupported(self.store, SEND_PARAM, exc, self.clock())
            raise _UseTextParts(exc) from None

    def _replan(self, request: SendRequest, part: RequestPart, why: Every8dError) -> bool:
        """Turn this part (claimed, not sent) and the ones after it into one-call-per-text parts over the
        same recipients, with their texts as stored. False if a later part had already gone out."""
        texts = [(e164, message if message is not None else request.message)
                 for e164, message in self.store.parts.texts_from(request.id, part.first_position)]
        plans = replan_text_parts(part.first_position, texts, chunk_size=self.policy.send_chunk_size,
                                  price=_sms_points)
        now = self.clock()
        with self.store.immediate():
            if not self.store.parts.replan_from(request.id, part.part, plans, now=now):
                return False
            self.store.audit.record("bot", "parts_replanned", request_id=request.id, now=now, part=part.part,
                                    parts=len(plans), error=why.describe("en"))
            notices.card(self.store, request.id, request.approval_channel)
        log.warning("request %s: parts from %s re-planned as %d one-text parts (%s)", request.id, part.part,
                    len(plans), why.describe("en"))
        return True

    def _record_part(self, request: SendRequest, part: RequestPart, result: SendResult, dropped: int) -> None:
        """The part, its batch (one delivery row per recipient), the request's totals, the credit, the audit
        line and the summary post: one transaction, so a crash leaves all of it or none."""
        now = self.clock()
        start = request.send_at or now
        scheduled = request.send_at is not None and request.send_at > now
        with self.store.immediate():
            self.store.parts.transition(
                request.id, part.part, [PartState.SENDING], PartState.SENT, batch_id=result.batch_id,
                sent_count=result.sent, cost=result.cost, unsent=result.unsent, optout_dropped=dropped, now=now,
            )
            self.store.requests.add_part_outcome(
                request.id, batch_id=result.batch_id, sent=result.sent, cost=result.cost, unsent=result.unsent,
                credit=result.credit, dropped=dropped, now=now,
            )
            self.store.batches.create(
                batch_id=result.batch_id,
                request_id=request.id,
                kind=request.kind,
                send_at=request.send_at,
                validity_until=start + request.validity_minutes * 60,
                first_poll_at=(request.send_at + 5) if scheduled else now + min(self.policy.status_poll_seconds, 10),
                initial_status=SCHEDULED_CODE if scheduled else (700 if request.kind == "mms" else 0),
                positions=(part.first_position, part.last_position),
                now=now,
            )
            self.store.credit.record(result.credit, source="send", now=now)
            self.store.audit.record(
                "bot", "sent", request_id=request.id, now=now, batch_id=result.batch_id, cost=result.cost,
                sent=result.sent, unsent=result.unsent, part=part.part,
            )
            # The card shows the parts sent so far; the thread's summary waits for the send result (`_settle`).
            notices.card(self.store, request.id, request.approval_channel)
        log.info("request %s part %s sent: batch %s, %d messages, %.1f points", request.id, part.part,
                 result.batch_id, result.sent, result.cost)

    # -- the database refused to record a part EVERY8D accepted (disk full, read-only) ---------------------

    def _record_when_writable(self, request: SendRequest, part: RequestPart, result: SendResult, dropped: int,
                              error: sqlite3.Error) -> None:
        """EVERY8D took the part but the database refused its record. The part stays claimed (`sending`),
        so nothing can send it again; keep retrying the same one transaction until the database takes
        it, then say in the thread what happened. Past `record_patience` give up (raise): the watchdog
        marks the part "outcome unknown" and says so once the database can be written again."""
        log.error("EVERY8D accepted request %s part %s (batch %s) but the database could not record it: %s; "
                  "retrying until it can (the part will not be sent again)", request.id, part.part,
                  result.batch_id, error)
        deadline = time.monotonic() + self.record_patience
        waits = iter(RECORD_RETRY_SECONDS)
        while True:
            wait = next(waits, RECORD_RETRY_SECONDS[-1])
            time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
            try:
                self._record_part(request, part, result, dropped)
            except sqlite3.Error as exc:
                error = exc
            else:
                with contextlib.suppress(sqlite3.Error):  # the record is what matters; the note is a courtesy
                    self._note_recorded_late(request, part, result)
                log.warning("request %s part %s: batch %s recorded once the database took writes again",
                            request.id, part.part, result.batch_id)
                return
            if time.monotonic() >= deadline:
                break
        log.error("request %s part %s: batch %s still cannot be recorded (%s); the watchdog will mark it "
                  "outcome unknown", request.id, part.part, result.batch_id, error)
        raise error

    def _note_recorded_late(self, request: SendRequest, part: RequestPart, result: SendResult) -> None:
        """One line in the thread: the send was held up by the database, nothing was sent twice."""
        notices.thread_note(
            self.store, request.id, request.approval_channel,
            f"資料庫曾無法寫入（磁碟已滿或唯讀），EVERY8D 已收到的批次 {result.batch_id} 於恢復後才記錄；未重複發送。",
            f"The database could not be written (disk full or read-only) when EVERY8D accepted batch "
            f"{result.batch_id}; it was recorded once writes worked again. Nothing was sent twice.",
            f"recorded_late:{part.part}:{part.attempts + 1}",
        )

    def _part_not_sent(self, request: SendRequest, part: RequestPart, state: PartState, exc: Every8dError) -> None:
        now = self.clock()
        with self.store.immediate():
            self.store.parts.transition(request.id, part.part, [PartState.SENDING], state, now=now)
            self.store.audit.record("bot", f"part_{state.value}", request_id=request.id, now=now, part=part.part,
                                    error=exc.describe("en"))
        log.warning("request %s part %s %s: %s", request.id, part.part, state.value, exc.describe("en"))

    # -- the request as a whole --------------------------------------------------------------------

    def _settle(self, request: SendRequest, attempt: int, error: Every8dError | None) -> RequestState:
        """Move the request from `sending` to what its parts add up to, with its card and thread post.
        Read and decided in one transaction, so a report adopting a part at the same moment is either
        seen here or sees the request settled. Parts still pending with nothing failed or in doubt (such
        a report settled the part that stopped the send) put the request back to `approved`: go on."""
        now = self.clock()
        with self.store.immediate():
            states = [p.state for p in self.store.parts.of_request(request.id)]
            state = request_state(states)
            if state is RequestState.APPROVED:
                self.store.requests.transition(request.id, [RequestState.SENDING], state, now=now)
                return state
            if all(s is PartState.SKIPPED for s in states):
                error = ValidationError(
                    f"所有收件人（{request.recipient_count} 位）在核准前都已退訂，沒有發送任何簡訊。",
                    f"Every recipient ({request.recipient_count}) opted out before the send; nothing was sent.",
                )
            if state is RequestState.SENT:
                error = None
            elif error is None:
                error = OutcomeUnknownError("部分批次尚未發送。", "Some parts have not been sent.")
            errors = ({"error_zh": None, "error_en": None, "error_note": None} if error is None else
                      {"error_zh": error.zh, "error_en": error.en, "error_note": error.support_note()})
            self.store.requests.transition(request.id, [RequestState.SENDING], state, now=now, **errors)
            if state is RequestState.SENT:
                current = self.store.requests.get(request.id)
                self.store.audit.record("bot", "send_complete", request_id=request.id, now=now,
                                        cost=current.cost if current else None)
            else:
                self.store.audit.record("bot", state.value, request_id=request.id, now=now,
                                        error=error.describe("en") if error else "")
            notices.card(self.store, request.id, request.approval_channel)
            notices.send_result(self.store, request.id, request.approval_channel, attempt)
            if request.reply_to is None:  # an answer's author sees its result in the thread they typed in
                notices.requester_update(self.store, request.id, request.requester, state.value, attempt)
            notices.workflow_outcome(self.store, request.id, state.value)
            settled = self.store.requests.get(request.id)
            if settled is not None and settled.batch_id:
                notices.summary(self.store, settled.batch_id, request.approval_channel)
        if state is RequestState.SENT:
            log.info("request %s sent", request.id)
        else:
            log.warning("request %s %s: %s", request.id, state.value, error.describe("en") if error else "")
        return state

    def _reconcile_now(self, request: SendRequest) -> RequestState:
        """Settle the unknown parts at once if EVERY8D's report for them arrived while we were still
        waiting for its answer (or while the bot was down)."""
        if self.adopt is not None:
            for part in self.store.parts.of_request(request.id):
                if part.state is not PartState.UNKNOWN:
                    continue
                batch_id = self._reported_batch(request, part)
                if batch_id is not None and self.adopt(request.id, batch_id, part.part):
                    log.info("request %s part %s: EVERY8D had already reported batch %s; settled as sent",
                             request.id, part.part, batch_id)
        current = self.store.requests.get(request.id)
        return current.state if current is not None else RequestState.UNKNOWN

    def _reported_batch(self, request: SendRequest, part: RequestPart) -> str | None:
        """The batch of a report kept aside since this part was claimed whose subject carries its tag, if
        any (an older report could belong to an earlier attempt). Only SMS carry the tag (an MMS subject
        is shown on the phone)."""
        if request.kind != "sms":
            return None
        since = part.claimed_at or 0.0
        for report in self.store.replies.unmatched_reports(limit=KEPT_REPORTS_SEARCHED):
            if report.created_at < since:
                continue
            tag = parse_tag(report.subject)
            if tag is not None and tag[:2] == (request.id, part.part) and tag_is_ours(tag, self.deployment):
                return report.batch_id
        return None

    # -- the watchdog's remedies (services/watchdog.py) ---------------------------------------------------

    def resume_stopped(self, request_id: int) -> bool:
        """A request left `sending` with no part claimed (its sender died between two parts, or before the
        first): nothing is in doubt, so it goes back to `approved` to be sent. False if it is being sent
        here right now or moved meanwhile (the conditional update decides)."""
        if request_id in self.active():
            return False
        parts = self.store.parts.of_request(request_id)
        if any(p.state is PartState.SENDING for p in parts):
            return False
        return self.store.requests.transition(request_id, [RequestState.SENDING], RequestState.APPROVED,
                                              now=self.clock())

    def abandon_parts(self, request_id: int, parts: list[int], stood_minutes: float) -> list[int]:
        """Parts claimed long ago whose call is not in flight in this process (its sender died, or the
        database refused its record): they may have reached EVERY8D, so their outcome is unknown. Never
        resent; the request settles as `unknown` with its card offering Mark as sent / Send again.
        Returns the parts this call moved (a conditional update each)."""
        request = self.store.requests.get(request_id)
        if request is None or request_id in self.active():
            return []
        abandoned = OutcomeUnknownError(
            f"發送途中停住超過 {stood_minutes:g} 分鐘，無法確定 EVERY8D 是否已收到；不會自動重送。",
            f"The send stood still for over {stood_minutes:g} minutes; EVERY8D may or may not have received it. "
            "It will not be resent automatically.",
        )
        moved = []
        now = self.clock()
        for part in self.store.parts.of_request(request_id):
            if part.part not in parts or part.state is not PartState.SENDING:
                continue
            with self.store.immediate():
                if self.store.parts.transition(request_id, part.part, [PartState.SENDING], PartState.UNKNOWN,
                                               now=now):
                    self.store.audit.record("watchdog", "part_unknown", request_id=request_id, now=now,
                                            part=part.part, error=abandoned.describe("en"))
                    moved.append(part.part)
        if moved and request.state is RequestState.SENDING:
            self._settle(request, request.send_attempts, abandoned)
            self._reconcile_now(request)
        elif moved:
            notices.card(self.store, request_id, request.approval_channel)
        return moved

    def recover(self) -> list[int]:
        """At start: a part left in `sending` died mid-call, so its outcome is unknown; a request that
        stopped between parts, or approved and never started, is sent now. Returns the ids to send."""
        for request in self.store.requests.in_states(RequestState.SENDING, limit=10000):
            parts = self.store.parts.of_request(request.id)
            if not any(p.state is PartState.SENDING for p in parts):
                # Stopped between two parts (or before the first): nothing is in doubt; resume.
                self.store.requests.transition(request.id, [RequestState.SENDING], RequestState.APPROVED,
                                               now=self.clock())
                continue
            interrupted = OutcomeUnknownError(
                "機器人在發送途中停止，無法確定 EVERY8D 是否已收到；不會自動重送。",
                "The bot stopped while sending; EVERY8D may or may not have received it. It will not be resent "
                "automatically.",
            )
            for part in parts:
                if part.state is PartState.SENDING:
                    self._part_not_sent(request, part, PartState.UNKNOWN, interrupted)
            self._settle(request, request.send_attempts, interrupted)
            self._reconcile_now(request)
        return [r.id for r in self.store.requests.in_states(RequestState.APPROVED, limit=10000)]


def request_state(states: list[PartState]) -> RequestState:
    """What a request whose send stopped is, from its parts: sent when every part went out (or had
    nobody left to send to; all of them: failed), unknown while one is in doubt, failed when one was
    refused, and approved again when the rest is simply still to send."""
    if all(s is PartState.SKIPPED for s in states):
        return RequestState.FAILED
    if all(s in (PartState.SENT, PartState.SKIPPED) for s in states):
        return RequestState.SENT
    if PartState.UNKNOWN in states or PartState.SENDING in states:
        return RequestState.UNKNOWN
    if PartState.FAILED in states:
        return RequestState.FAILED
    return RequestState.APPROVED
