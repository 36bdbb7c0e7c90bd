"""Delivery tracking: poll open batches, merge what EVERY8D reports, announce replies, close batches.

Polling and push callbacks feed the same `ingest_*` functions, so it does not matter which one sees a
report first or how often EVERY8D repeats it: statuses only move forward and replies are stored once.
Only open batches whose poll time has come are read, so the cost of a cycle grows with open batches,
never with history. A report for a batch this bot does not know is kept aside (never posted); when
the batch turns out to be ours after all (a push that raced the send's own bookkeeping, or a send of
unknown outcome reconciled later) the kept reports are merged like any other. A report or reply for a
number the batch never had is kept aside too: the push is unsigned, so it never grows a batch, is never
posted and never opts a number out. Only a push tagged with this deployment settles a send in doubt, and
the parts still to send are resumed after that push's transaction committed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial

from every8d.callback import audit_json
from every8d.endpoints import REPLIES
from every8d.errors import CredentialError, Every8dError
from every8d.phones import parse_phone
from every8d.results import CallbackReport, DeliveryRecord
from every8d.status import REPLY_CODE, SCHEDULED_CODE
from services import capabilities, notices, optout
from services.policy import Policy
from services.ports import Clock, Gateway
from services.sending import deployment_tag, parse_tag, request_state, tag_is_ours
from storage import Batch, BatchState, PartState, RequestState, Store

log = logging.getLogger("every8d_bot.tracking")
#: A recipient's status meaning EVERY8D refused the account or password (2021 document): said to a person.
CREDENTIALS_REFUSED = -2

#: Rows merged per transaction while paging a large batch (one EVERY8D page).
MERGE_CHUNK = 1000
#: Longest wait between polls of a batch whose polls keep failing.
MAX_BACKOFF_SECONDS = 1800.0


_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class ReportTooEarly(Exception):
    """A push for a send of ours whose answer is not recorded yet: answered 503, so EVERY8D pushes it again."""


def normalize_mobile(mobile: str) -> str:
    """EVERY8D writes `+886933123123`; be tolerant of `0933123123` too, so both merge into one row.
    E.164 as EVERY8D sends it is taken as is (parsing every report cost more than storing it)."""
    mobile = mobile.strip()
    if _E164.match(mobile):
        return mobile
    parsed = parse_phone(mobile)
    return getattr(parsed, "e164", mobile.strip())


def summary_digest(state: str, counts: Mapping[int, int]) -> str:
    """What a batch summary shows, in short: it is re-posted only when this changes."""
    return f"{state}|" + ",".join(f"{code}:{n}" for code, n in sorted(counts.items()))


def _digest_has_scheduled(digest: str | None) -> bool:
    if not digest or "|" not in digest:
        return False
    return any(part.split(":")[0] == str(SCHEDULED_CODE) for part in digest.split("|", 1)[1].split(","))


#: A request whose parts are still going out: its thread's summary waits until the send result is posted.
_STILL_SENDING = (RequestState.APPROVED, RequestState.SENDING)


@dataclass(frozen=True)
class RequestBatches:
    """A request's batches seen as one (its thread has one summary): the lead batch holds the summary
    message; `state` is `complete` only when every batch is and no part is still to be sent."""

    lead: Batch
    batch_ids: list[str]
    state: BatchState


def request_batches(store: Store, request_id: int) -> RequestBatches | None:
    """The batches of a request, or None before its first part was accepted."""
    batches = store.batches.of_request(request_id)
    if not batches:
        return None
    settled = all(p.state not in (PartState.PENDING, PartState.SENDING) for p in store.parts.of_request(request_id))
    complete = settled and all(b.state is BatchState.COMPLETE for b in batches)
    return RequestBatches(batches[0], [b.batch_id for b in batches],
                          BatchState.COMPLETE if complete else BatchState.OPEN)


@dataclass(frozen=True)
class PollCycle:
    """What one scheduler tick did: batches polled, rows changed, batches closed, polls that failed."""

    polled: int
    changed: int
    completed: int
    failed: int


class TrackingService:
    """Everything that keeps a sent batch's records, summary and replies true, whoever reports first."""

    def __init__(
        self, store: Store, gateway: Gateway, policy: Policy, clock: Clock,
        resume: Callable[[int], None] | None = None,
        on_reply: Callable[[int], None] | None = None,
    ) -> None:
        """`resume(request_id)` sends the parts still pending once a reconciled part settles a request
        (in the bot: the same background send an approval starts)."""
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.clock = clock
        self.resume = resume
        #: Called with a newly stored reply's id after its transaction (auto-replies, in the bot).
        self.on_reply = on_reply
        self.deployment = deployment_tag(store)
        self._local = threading.local()

    # -- polling -----------------------------------------------------------------------------------

    def poll_due(self, limit: int = 100) -> PollCycle:
        """Poll every open batch whose time has come. One failing batch (EVERY8D down, or a bug on one
        odd answer) is backed off and never keeps the others from being polled."""
        polled = changed = completed = failed = 0
        for batch in self.store.batches.due(self.clock(), limit=limit):
            polled += 1
            try:
                delta, done = self.poll_batch(batch)
            except Exception as exc:  # noqa: BLE001 - back off this batch, go on with the others
                failed += 1
                self._poll_failed(batch, exc)
                continue
            changed += delta
            completed += int(done)
        return PollCycle(polled, changed, completed, failed)

    def poll_batch(self, batch: Batch) -> tuple[int, bool]:
        """Read every page of one batch; returns (rows changed, batch completed)."""
        changed = 0
        chunk: list[DeliveryRecord] = []
        for record in self.gateway.iter_delivery_status(batch.batch_id, mms=batch.kind == "mms"):
            chunk.append(record)
            if len(chunk) >= MERGE_CHUNK:
                changed += self.ingest_records(batch.batch_id, chunk, source="poll")
                chunk = []
        if chunk:
            changed += self.ingest_records(batch.batch_id, chunk, source="poll")
        first_poll = batch.last_checked_at is None
        if first_poll:
            changed += self._absorb_kept_reports(batch.batch_id)
        now = self.clock()
        if batch.poll_failures:
            log.info("polling batch %s works again", batch.batch_id)
        interval = self.policy.reply_poll_seconds if batch.state is BatchState.COMPLETE else self.policy.status_poll_seconds
        self.store.batches.polled(batch.batch_id, next_poll_at=now + interval, now=now, failed=False)
        done = self._maybe_complete(batch.batch_id)
        if not done:
            self._announce(batch.batch_id, force=first_poll)
        return changed, done

    def _poll_failed(self, batch: Batch, exc: Exception) -> None:
        """Back off (doubling, capped) and log once per failure streak, not on every tick."""
        failures = batch.poll_failures + 1
        delay = min(self.policy.status_poll_seconds * (2 ** min(failures, 10)), MAX_BACKOFF_SECONDS)
        if isinstance(exc, CredentialError):
            delay = MAX_BACKOFF_SECONDS
        if batch.poll_failures == 0:
            if isinstance(exc, Every8dError):
                log.warning("polling batch %s failed, will retry: %s", batch.batch_id, exc.describe("en"))
            else:
                log.error("polling batch %s failed (%s), will retry", batch.batch_id, type(exc).__name__,
                          exc_info=exc)
        now = self.clock()
        self.store.batches.polled(batch.batch_id, next_poll_at=now + delay, now=now, failed=True)
        self._maybe_complete(batch.batch_id)

    # -- one merge for polls and callbacks ---------------------------------------------------------

    def _reply_text_cannot_come(self) -> bool:
        """No push is configured and getReplyMessage is off or missing on this platform: a reply's text
        will never arrive, so a polled reply row is posted as it is."""
        if self.policy.reply_text_by_push:
            return False
        return not self.policy.reply_lookup or capabilities.is_unsupported(self.store, REPLIES, self.clock())

    def ingest_records(self, batch_id: str, records: Iterable[DeliveryRecord], *, source: str) -> int:
        """Merge status rows (forward only) and store the replies among them; returns rows changed.
        Rows for numbers the batch never had are kept aside, never added (see `_keep_strangers`)."""
        updates = []
        for record in records:
            mobile = normalize_mobile(record.mobile)
            at = record.sent_at.timestamp() if record.sent_at else None
            if record.is_reply:
                # getDeliveryStatus has no reply-text column in either revision (its sixth column is
                # RECEIVED_TIME, delta notes §4.5): the text comes by push or getReplyMessage. Where neither
                # can bring it, the poll's row is the only sign of the reply: post it without its text
                # (and say why) rather than lose it.
                if self._reply_text_cannot_come():
                    self.ingest_reply(batch_id, mobile, at, "", source=source)
                continue
            updates.append((mobile, record.status.code, at, record.name, record.cost))
        if not updates:
            return 0
        strangers: list[tuple[str, int, float | None, str, float]] = []
        with self.store.immediate():
            changed = self.store.batches.merge(batch_id, updates, source=source, now=self.clock(),
                                               strangers=strangers)
            self._keep_strangers(batch_id, strangers)
            if changed and any(code == CREDENTIALS_REFUSED for _, code, *_ in updates):
                self._alert_credentials(batch_id)
        return changed

    def _alert_credentials(self, batch_id: str) -> None:
        """EVERY8D reported recipients as refused for a wrong account or password (-2): no retry helps and the
        next sends will fail the same way, so a person is told once per batch, in the alert channel (delta
        notes §10: authentication failures are surfaced, never retried)."""
        request = self.store.requests.by_batch(batch_id)
        notices.alert_note(
            self.store, self.policy.alert_channel,
            f"🔑 EVERY8D 回報帳號或密碼錯誤（-2），批次 `{_inert(batch_id[:64])}` 的部分收件人未發送。請檢查 EVERY8D_UID 與 "
            "EVERY8D_PWD（連續登入失敗可能鎖住帳號），修正後再重新申請。",
            f"🔑 EVERY8D reports a wrong account or password (-2) for recipients of batch `{_inert(batch_id[:64])}`; "
            "they were not sent. Check EVERY8D_UID and EVERY8D_PWD (repeated failed logins can lock the account), "
            "then send a new request.",
            key=f"credentials:{batch_id}", request_id=request.id if request else None,
        )

    def _keep_strangers(self, batch_id: str, strangers: Iterable[tuple[str, int, float | None, str, float]],
                        report: CallbackReport | None = None, *, text: str = "", record_no: str = "") -> None:
        """Reports for numbers the batch never had: kept aside as unmatched ("number"), never added to the
        batch. A push is unsigned: trusting it would let anyone grow a batch with numbers of their choice."""
        for mobile, code, at, _name, _cost in strangers:
            self.store.replies.keep_unmatched_report(
                batch_id=batch_id, status_code=code, mobile=mobile, reported_at=at, now=self.clock(), reason="number",
                text=report.text if report else text, record_no=report.record_no if report else record_no,
                subject=report.subject if report else "", audit_json=audit_json(report.raw) if report else "{}",
            )

    def ingest_callback(self, report: CallbackReport) -> str:
        """Store one push report in one transaction. Returns what happened: "reply", "status",
        "duplicate", "unmatched". Raises only if it could not be stored (the receiver answers 503).

        Work that must see the report committed (resuming a request whose part it settled: the send runs
        on another thread and connection, which would still read the request as `unknown`) is run only
        after the transaction committed; if it rolled back, that work is dropped with it."""
        self._local.after_commit = []
        try:
            outcome = self._ingest_callback(report)
        except BaseException:
            self._local.after_commit = None
            raise
        after, self._local.after_commit = self._local.after_commit, None
        for work in after:
            work()
        return outcome

    def posts_queued_here(self) -> int:
        """How many posts this thread has queued so far: compared around `ingest_callback`, it says whether
        the push queued one, so the poster is woken only for something to post."""
        return self.store.outbox.added_here()

    def write_turn_if_free(self, wait: float = 0.0) -> contextlib.AbstractContextManager[bool]:
        """This process's write lock if it comes free within `wait` seconds, else False (storage/db.py): for
        the HTTP server's loop thread, which answers a push itself only when it will not queue behind a
        long write."""
        return self.store.write_turn_if_free(wait)

    def _after_commit(self, work: Callable[[], None]) -> None:
        """Run `work` once the current transaction of `ingest_callback` committed, or now outside one."""
        pending = getattr(self._local, "after_commit", None)
        if pending is not None and self.store.db.conn.in_transaction:
            pending.append(work)
        else:
            work()

    def _ingest_callback(self, report: CallbackReport) -> str:
        mobile = normalize_mobile(report.mobile)
        at = report.reported_at.timestamp() if report.reported_at else None
        with self.store.immediate():
            batch = self.store.batches.get(report.batch_id)
            if batch is None and self._reconcile_from_subject(report):
                batch = self.store.batches.get(report.batch_id)
            if batch is None and self._call_being_recorded(report):
                raise ReportTooEarly(report.batch_id)
            if batch is None:
                self.store.replies.keep_unmatched_report(
                    batch_id=report.batch_id, status_code=report.status.code, mobile=mobile, reported_at=at,
                    text=report.text, record_no=report.record_no, subject=report.subject,
                    audit_json=audit_json(report.raw), now=self.clock(),
                )
                return "unmatched"
            if report.is_reply:
                return self._store_reply(batch.batch_id, mobile, at, report.text, source="callback",
                                         record_no=report.record_no, report=report)
            strangers: list[tuple[str, int, float | None, str, float]] = []
            changed = self.store.batches.merge(
                batch.batch_id, [(mobile, report.status.code, at, "", 0.0)], source="callback", now=self.clock(),
                strangers=strangers,
            )
            if strangers:
                self._keep_strangers(batch.batch_id, strangers, report)
                return "unmatched"
            if not changed:
                return "duplicate"
            if report.status.code == CREDENTIALS_REFUSED:
                self._alert_credentials(batch.batch_id)
            # Only a final report can close the batch; otherwise queue a summary update without
            # counting the batch now: the summary is counted once, when it is rendered.
            if not (report.status.final and self._maybe_complete(batch.batch_id, batch)):
                self._announce_soon(batch.batch_id)
            return "status"

    def ingest_reply(self, batch_id: str, mobile: str, at: float | None, text: str, *, source: str,
                     record_no: str = "", report: CallbackReport | None = None) -> bool:
        """Store a reply once and queue its posts (thread of its batch, and the replies channel), in the
        same transaction; an opt-out reply (STOP, 退訂) also lists the number there. False when it was
        already stored (same content, or same batch and MR `record_no`), or when the batch never had the
        number: such a reply is kept aside as unmatched, never posted (anyone could answer it by SMS) and
        never an opt-out."""
        return self._store_reply(batch_id, mobile, at, text, source=source, record_no=record_no,
                                 report=report) == "reply"

    def _store_reply(self, batch_id: str, mobile: str, at: float | None, text: str, *, source: str,
                     record_no: str = "", report: CallbackReport | None = None) -> str:
        """`ingest_reply`, saying what happened: "reply", "duplicate" or "unmatched"."""
        request = self.store.requests.by_batch(batch_id)
        with self.store.immediate():
            if not self.store.batches.has_recipient(batch_id, mobile):
                self._keep_strangers(batch_id, [(mobile, REPLY_CODE, at, "", 0.0)], report, text=text,
                                     record_no=record_no)
                return "unmatched"
            reply_id = self.store.replies.add(
                batch_id=batch_id, mobile=mobile, received_at=at, text=text, source=source,
                matched=request is not None, now=self.clock(), record_no=record_no,
            )
            if reply_id is None:
                return "duplicate"
            notices.reply(
                self.store,
                reply_id,
                request.approval_channel if request else None,
                self.policy.replies_channel,
            )
            optout.handle_reply(self.store, self.policy, e164=mobile, text=text, batch_id=batch_id,
                                request=request, now=self.clock())
            if request is not None and request.state not in _STILL_SENDING and request.batch_id:
                # the summary's reply and opt-out rates move with each new reply
                notices.summary(self.store, request.batch_id, request.approval_channel)
        if request is not None and self.on_reply is not None:
            # auto-replies read the reply on another thread: only once it is committed (a push's
            # transaction is still open here; `_after_commit` waits for it)
            self._after_commit(partial(self.on_reply, reply_id))
        return "reply"

    def _absorb_kept_reports(self, batch_id: str) -> int:
        """Merge the reports kept aside while this batch was unknown (statuses and replies), then mark
        them resolved; those for numbers the batch never had stay kept aside ("number"). Returns the rows
        changed."""
        kept = self.store.replies.unmatched_for_batch(batch_id)
        if not kept:
            return 0
        updates = []
        handled, strangers = [], []
        for row in kept:
            if not self.store.batches.has_recipient(batch_id, row.mobile):
                strangers.append(row.id)
                continue
            handled.append(row.id)
            if row.status_code == REPLY_CODE:
                self.ingest_reply(batch_id, row.mobile, row.reported_at, row.text, source="callback",
                                  record_no=row.record_no.strip())
            else:
                updates.append((row.mobile, row.status_code, row.reported_at, "", 0.0))
        changed = self.store.batches.merge(batch_id, updates, source="callback", now=self.clock()) if updates else 0
        self.store.replies.resolve_unmatched(handled, self.clock())
        self.store.replies.reclassify_unmatched(strangers, "number")
        return changed

    # -- completion and posts ----------------------------------------------------------------------

    def _maybe_complete(self, batch_id: str, batch: Batch | None = None) -> bool:
        """Close the batch when nothing is pending, or when validity plus the margin has passed (what is
        still pending is then marked expired). Returns True if it closed now. `batch`: its row as read in
        the caller's transaction, if it has it (a push reads it once, not twice)."""
        batch = batch if batch is not None else self.store.batches.get(batch_id)
        if batch is None or batch.state is not BatchState.OPEN:
            return False
        now = self.clock()
        pending = self.store.batches.has_pending(batch_id)
        if pending and now < batch.validity_until + self.policy.expiry_margin_seconds:
            return False
        if pending:
            expired = self.store.batches.expire_pending(batch_id, now)
            log.info("batch %s: %d recipients had no report before validity ended; marked expired", batch_id,
                     expired)
        if self.store.batches.complete(batch_id, now, reply_poll_until=now + self.policy.reply_window_seconds,
                                       next_poll_at=now + self.policy.reply_poll_seconds):
            self._announce(batch_id, force=True)
            return True
        return False

    def _announce_soon(self, batch_id: str) -> None:
        """Queue a summary update (collapsed: one pending per request, rendered from the state when it
        goes out)."""
        target = self.store.requests.summary_target(batch_id)
        if target is not None and target.state not in _STILL_SENDING:
            notices.summary(self.store, target.batch_id or batch_id, target.approval_channel)

    def _announce(self, batch_id: str, *, force: bool = False) -> None:
        """Queue a summary update when the counts changed since the last one (or when forced). When the
        last scheduled recipient went out, the request's card is refreshed too (its Cancel is moot)."""
        request = self.store.requests.by_batch(batch_id)
        if request is None or request.state in _STILL_SENDING:
            return  # the send's own result comes first in the thread; its end queues the summary
        with self.store.immediate():
            seen = request_batches(self.store, request.id)
            if seen is None:
                return
            digest = summary_digest(seen.state, self.store.batches.counts(*seen.batch_ids))
            if not force and digest == seen.lead.summary_digest:
                return
            self.store.batches.set_summary(seen.lead.batch_id, digest=digest)
            notices.summary(self.store, seen.lead.batch_id, request.approval_channel)
            if _digest_has_scheduled(seen.lead.summary_digest) and not _digest_has_scheduled(digest):
                notices.card(self.store, request.id, request.approval_channel)

    # -- reconciliation ----------------------------------------------------------------------------

    def _call_being_recorded(self, report: CallbackReport) -> bool:
        """The report names (in its subject's tag) a part of ours whose EVERY8D call is still in flight: EVERY8D
        can push an immediate failure (-5, -41, …) before our send has recorded its answer. Refusing it with a
        503 makes EVERY8D push it again a moment later, when the batch is known; kept aside, it would be
        shown as a stranger's report and the status would wait for the next poll."""
        tag = parse_tag(report.subject)
        if tag is None or not tag_is_ours(tag, self.deployment):
            return False
        part = self.store.parts.get(tag[0], tag[1])
        return part is not None and part.state is PartState.SENDING

    def _reconcile_from_subject(self, report: CallbackReport) -> bool:
        """A report for an unknown batch whose subject carries `#R<id>` (or `#R<id>.<part>`) of a part in
        `unknown` state: that part did reach EVERY8D. Adopt the batch, so it is tracked like any other."""
        tag = parse_tag(report.subject)
        if tag is None or not tag_is_ours(tag, self.deployment):
            # Not a send of this bot (another deployment on the same EVERY8D account), or a bare `#R<id>`
            # anyone could write: it stays kept aside, visible, and settles nothing.
            return False
        request_id, part_no, _ = tag
        part = self.store.parts.get(request_id, part_no)
        if part is None or part.state is not PartState.UNKNOWN:
            return False
        return self.adopt_batch(request_id, report.batch_id, part_no, actor="reconcile")

    def adopt_batch(self, request_id: int, batch_id: str, part: int = 0, *, actor: str) -> bool:
        """Record that a part of unknown outcome did reach EVERY8D as `batch_id`, and track it. The request
        is settled with it: sent when nothing else is in doubt, or (parts still to send) approved again
        and handed to `resume`, since the approver's decision to send covers them."""
        request = self.store.requests.get(request_id)
        found = self.store.parts.get(request_id, part)
        if request is None or found is None:
            return False
        now = self.clock()
        start = request.send_at or request.updated_at
        with self.store.immediate():
            if not self.store.parts.transition(
                request_id, part, [PartState.UNKNOWN], PartState.SENT, batch_id=batch_id, now=now
            ):
                return False
            self.store.requests.add_part_outcome(request_id, batch_id=batch_id, sent=None, cost=None, unsent=None,
                                                 credit=None, dropped=0, now=now)
            resume = self._settle_after_adopt(request_id, now)
            self.store.batches.create(
                batch_id=batch_id, request_id=request_id, kind=request.kind, send_at=request.send_at,
                validity_until=start + request.validity_minutes * 60, first_poll_at=now,
                initial_status=0, positions=(found.first_position, found.last_position), now=now,
            )
            self.store.audit.record(actor, "reconciled", request_id=request_id, now=now, batch_id=batch_id)
            shown = _inert(batch_id)  # the id a push named: it must not become a mention or a link
            notices.thread_note(
                self.store, request_id, request.approval_channel,
                f"已確認：EVERY8D 確實收到此發送申請（批次代碼 {shown}），不需重送。",
                f"Confirmed: EVERY8D did receive this send (batch id {shown}); no resend needed.",
                "reconciled" if part == 0 else f"reconciled.{part}",
            )
            notices.card(self.store, request_id, request.approval_channel)
        # Reports kept aside while the batch was unknown count now (replies included).
        self._absorb_kept_reports(batch_id)
        log.info("request %s part %s reconciled with batch %s", request_id, part, batch_id)
        if resume and self.resume is not None:
            self._after_commit(partial(self.resume, request_id))
        return True

    def _settle_after_adopt(self, request_id: int, now: float) -> bool:
        """After a part was adopted: the request leaves `unknown` once no part is in doubt. Returns True
        when parts are still to be sent (the request was approved again)."""
        state = request_state([p.state for p in self.store.parts.of_request(request_id)])
        if state is RequestState.UNKNOWN:
            return False
        clear = {"error_zh": None, "error_en": None, "error_note": None} if state is RequestState.SENT else {}
        moved = self.store.requests.transition(request_id, [RequestState.UNKNOWN], state, now=now, **clear)
        return moved and state is RequestState.APPROVED


def _inert(text: str) -> str:
    """A value from a push made inert in a thread note (which is mrkdwn): `&`, `<` and `>` escaped, the
    only characters Slack needs to form a mention, a broadcast or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
