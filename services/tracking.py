"""Delivery tracking: poll open batches, merge what EVERY8D reports, announce replies, close batches.

Polling and push callbacks feed the same `ingest_*` functions, so it does not matter which one sees a
report first or how often EVERY8D repeats it: statuses only move forward and replies are stored once.
Only open batches whose poll time has come are read, so the cost of a cycle grows with open batches,
never with history.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from every8d.errors import CredentialError, Every8dError
from every8d.phones import parse_phone
from every8d.results import CallbackReport, DeliveryRecord
from services import notices
from services.policy import Policy
from services.ports import Clock, Gateway
from storage import Batch, RequestState, Store

log = logging.getLogger("every8d_bot.tracking")

#: Rows merged per transaction while paging a large batch (one EVERY8D page).
MERGE_CHUNK = 1000
#: Longest wait between polls of a batch whose polls keep failing.
MAX_BACKOFF_SECONDS = 1800.0


def normalize_mobile(mobile: str) -> str:
    """EVERY8D writes `+886933123123`; be tolerant of `0933123123` too, so both merge into one row."""
    parsed = parse_phone(mobile)
    return getattr(parsed, "e164", mobile.strip())


@dataclass(frozen=True)
class PollCycle:
    polled: int
    changed: int
    completed: int
    failed: int


class TrackingService:
    def __init__(self, store: Store, gateway: Gateway, policy: Policy, clock: Clock) -> None:
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.clock = clock

    # -- polling -----------------------------------------------------------------------------------

    def poll_due(self, limit: int = 100) -> PollCycle:
        polled = changed = completed = failed = 0
        for batch in self.store.batches.due(self.clock(), limit=limit):
            polled += 1
            try:
                delta, done = self.poll_batch(batch)
            except Every8dError as exc:
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
        now = self.clock()
        if batch.poll_failures:
            log.info("polling batch %s works again", batch.batch_id)
        self.store.batches.polled(
            batch.batch_id, next_poll_at=now + self.policy.status_poll_seconds, now=now, failed=False
        )
        done = self._maybe_complete(batch.batch_id)
        if not done:
            self._announce(batch.batch_id, force=batch.last_checked_at is None)
        return changed, done

    def _poll_failed(self, batch: Batch, exc: Every8dError) -> None:
        failures = batch.poll_failures + 1
        delay = min(self.policy.status_poll_seconds * (2 ** min(failures, 10)), MAX_BACKOFF_SECONDS)
        if isinstance(exc, CredentialError):
            delay = MAX_BACKOFF_SECONDS
        if batch.poll_failures == 0:  # log once per failure streak, not on every tick
            log.warning("polling batch %s failed, will retry: %s", batch.batch_id, exc.describe("en"))
        self.store.batches.polled(batch.batch_id, next_poll_at=self.clock() + delay, now=self.clock(), failed=True)
        self._maybe_complete(batch.batch_id)

    # -- one merge for polls and callbacks ---------------------------------------------------------

    def ingest_records(self, batch_id: str, records: Iterable[DeliveryRecord], *, source: str) -> int:
        updates = []
        for record in records:
            mobile = normalize_mobile(record.mobile)
            at = record.sent_at.timestamp() if record.sent_at else None
            if record.is_reply:
                text = record.extra[0] if record.extra else ""
                self.ingest_reply(batch_id, mobile, at, text, source=source)
                continue
            updates.append((mobile, record.status.code, at, record.name, record.cost))
        changed = self.store.batches.merge(batch_id, updates, source=source, now=self.clock()) if updates else 0
        return changed

    def ingest_callback(self, report: CallbackReport) -> str:
        """Store one push report. Returns what happened: "reply", "status", "duplicate", "unmatched",
        "reconciled". Raises only if it could not be stored (the receiver then answers 503)."""
        mobile = normalize_mobile(report.mobile)
        at = report.reported_at.timestamp() if report.reported_at else None
        batch = self.store.batches.get(report.batch_id)
        if batch is None:
            if self._reconcile_from_subject(report):
                batch = self.store.batches.get(report.batch_id)
            else:
                kept = self.store.replies.keep_unmatched_report(
                    batch_id=report.batch_id, status_code=report.status.code, mobile=mobile, raw=report.raw,
                    now=self.clock(),
                )
                if report.is_reply and kept:
                    self.ingest_reply(None, mobile, at, report.text, source="callback")
                return "unmatched"
        assert batch is not None
        if report.is_reply:
            stored = self.ingest_reply(batch.batch_id, mobile, at, report.text, source="callback")
            return "reply" if stored else "duplicate"
        changed = self.store.batches.merge(
            batch.batch_id, [(mobile, report.status.code, at, "", 0.0)], source="callback", now=self.clock()
        )
        if not changed:
            return "duplicate"
        if not self._maybe_complete(batch.batch_id):
            self._announce(batch.batch_id)
        return "status"

    def ingest_reply(self, batch_id: str | None, mobile: str, at: float | None, text: str, *, source: str) -> bool:
        """Store a reply once and queue its posts (thread of its batch, and the replies channel)."""
        request = self.store.requests.by_batch(batch_id) if batch_id else None
        with self.store.immediate():
            reply_id = self.store.replies.add(
                batch_id=batch_id, mobile=mobile, received_at=at, text=text, source=source,
                matched=request is not None, now=self.clock(),
            )
            if reply_id is None:
                return False
            notices.reply(
                self.store,
                reply_id,
                request.approval_channel if request else None,
                self.policy.replies_channel,
            )
        return True

    # -- completion and posts ----------------------------------------------------------------------

    def _maybe_complete(self, batch_id: str) -> bool:
        """Close the batch when nothing is pending, or when validity plus the margin has passed (what is
        still pending is then marked expired). Returns True if it closed now."""
        batch = self.store.batches.get(batch_id)
        if batch is None or batch.state != "open":
            return False
        now = self.clock()
        pending = self.store.batches.pending_count(batch_id)
        if pending and now < batch.validity_until + self.policy.expiry_margin_seconds:
            return False
        if pending:
            self.store.batches.expire_pending(batch_id, now)
        if self.store.batches.complete(batch_id, now):
            self._announce(batch_id, force=True)
            return True
        return False

    def _announce(self, batch_id: str, *, force: bool = False) -> None:
        """Queue a summary update when the counts changed since the last one (or when forced)."""
        request = self.store.requests.by_batch(batch_id)
        batch = self.store.batches.get(batch_id)
        if request is None or batch is None:
            return
        digest = f"{batch.state}|" + ",".join(f"{k}:{v}" for k, v in sorted(self.store.batches.counts(batch_id).items()))
        if not force and digest == batch.summary_digest:
            return
        with self.store.immediate():
            self.store.batches.set_summary(batch_id, digest=digest)
            notices.summary(self.store, batch_id, request.approval_channel)

    def refresh_summary(self, batch_id: str) -> None:
        """Re-render the summary (e.g. to update the last-check time shown) without a change."""
        self._announce(batch_id, force=True)

    # -- reconciliation ----------------------------------------------------------------------------

    def _reconcile_from_subject(self, report: CallbackReport) -> bool:
        """A report for an unknown batch whose subject carries `#R<id>` of a request in `unknown` state:
        that send did reach EVERY8D. Adopt the batch, so it is tracked like any other."""
        subject = report.subject or report.raw.get("SB", "")
        match = re.search(r"#R(\d+)\b", subject)
        if not match:
            return False
        request_id = int(match.group(1))
        request = self.store.requests.get(request_id)
        if request is None or request.state is not RequestState.UNKNOWN:
            return False
        return self.adopt_batch(request_id, report.batch_id, actor="reconcile")

    def adopt_batch(self, request_id: int, batch_id: str, *, actor: str) -> bool:
        request = self.store.requests.get(request_id)
        if request is None:
            return False
        now = self.clock()
        start = request.send_at or request.updated_at
        with self.store.immediate():
            if not self.store.requests.transition(
                request_id, [RequestState.UNKNOWN], RequestState.SENT, batch_id=batch_id, now=now
            ):
                return False
            self.store.batches.create(
                batch_id=batch_id, request_id=request_id, kind=request.kind, send_at=request.send_at,
                validity_until=start + request.validity_minutes * 60, first_poll_at=now,
                recipients=self.store.requests.iter_recipients(request_id), initial_status=0, now=now,
            )
            self.store.audit.record(actor, "reconciled", request_id=request_id, now=now, batch_id=batch_id)
            notices.thread_note(
                self.store, request_id, request.approval_channel,
                f"已確認：EVERY8D 確實收到此發送申請（批次代碼 {batch_id}），不需重送。",
                f"Confirmed: EVERY8D did receive this send (batch id {batch_id}); no resend needed.",
                "reconciled",
            )
            notices.card(self.store, request_id, request.approval_channel)
        # Status reports kept aside while the batch was unknown count now.
        kept = self.store.replies.unmatched_for_batch(batch_id)
        updates = [(r["mobile"], r["status_code"], None, "", 0.0) for r in kept if r["status_code"] != 999]
        if updates:
            self.store.batches.merge(batch_id, updates, source="callback", now=now)
        self.store.replies.resolve_unmatched([r["id"] for r in kept], now)
        log.info("request %s reconciled with batch %s", request_id, batch_id)
        return True
