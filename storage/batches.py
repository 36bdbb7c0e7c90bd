"""EVERY8D batches (one per sent request) and the latest status of each recipient in them.

Statuses only move forward: a row is updated only when the new status ranks higher (scheduled < sent
< final), so polling and callbacks can arrive in any order, any number of times.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from every8d.status import EXPIRED_LOCALLY, Outcome, all_statuses, status_for
from storage.models import Batch, Delivery, row_to

if TYPE_CHECKING:
    from storage.db import Store

_COLUMNS = ", ".join(Batch.__dataclass_fields__.keys())


class Batches:
    """Queries on `batches` and `deliveries`; the only code that writes them."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self,
        *,
        batch_id: str,
        request_id: int,
        kind: str,
        send_at: float | None,
        validity_until: float,
        first_poll_at: float,
        initial_status: int,
        recipients: Iterable[str] | None = None,
        positions: tuple[int, int] | None = None,
        now: float | None = None,
    ) -> None:
        """Record a batch EVERY8D accepted, with one delivery row per recipient in its initial status.

        Without `recipients` the rows are copied from the request's recipients (names included; only
        those at `positions` first..last when the batch is one part of the request) in one statement
        inside SQLite: for 10,000 recipients that is most of the bookkeeping of a send.
        Idempotent: a second call for the same batch id changes nothing."""
        now = now or time.time()
        rank = status_for(initial_status).rank
        with self._store.immediate() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO batches (batch_id, request_id, kind, created_at, send_at, validity_until, "
                "next_poll_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [batch_id, request_id, kind, now, send_at, validity_until, first_poll_at],
            )
            if cursor.rowcount == 0:
                return
            if recipients is None:
                first, last = positions if positions is not None else (0, 2**62)
                db.conn.execute(
                    "INSERT OR IGNORE INTO deliveries (batch_id, mobile, name, status_code, status_rank, updated_at, "
                    "source) SELECT ?, e164, name, ?, ?, ?, 'send' FROM request_recipients WHERE request_id = ? "
                    "AND position BETWEEN ? AND ?",
                    [batch_id, initial_status, rank, now, request_id, first, last],
                )
                return
            db.conn.executemany(
                "INSERT OR IGNORE INTO deliveries (batch_id, mobile, status_code, status_rank, updated_at, source) "
                "VALUES (?, ?, ?, ?, ?, 'send')",
                ((batch_id, mobile, initial_status, rank, now) for mobile in recipients),
            )

    def get(self, batch_id: str) -> Batch | None:
        """One batch by EVERY8D's id, or None for a batch this bot never recorded."""
        rows = self._store.rows(f"SELECT {_COLUMNS} FROM batches WHERE batch_id = ?", [batch_id])
        return row_to(Batch, rows[0]) if rows else None  # type: ignore[return-value]

    def for_request(self, request_id: int) -> Batch | None:
        """The request's first batch (its lead: the one its summary message belongs to), if any."""
        batches = self.of_request(request_id)
        return batches[0] if batches else None

    def of_request(self, request_id: int) -> list[Batch]:
        """Every batch of a request (one per part EVERY8D accepted), oldest first."""
        return [
            row_to(Batch, r)  # type: ignore[misc]
            for r in self._store.rows(
                f"SELECT {_COLUMNS} FROM batches WHERE request_id = ? ORDER BY created_at, rowid", [request_id]
            )
        ]

    def due(self, now: float, limit: int = 100) -> list[Batch]:
        """Batches whose next poll time has come: open ones, and completed ones still inside their reply
        window. Both halves use an index, so the cost grows with recent batches, not with history."""
        return [
            row_to(Batch, r)  # type: ignore[misc]
            for r in self._store.db.query(
                f"SELECT {_COLUMNS} FROM batches WHERE state = 'open' AND next_poll_at <= :now "
                f"UNION ALL SELECT {_COLUMNS} FROM batches WHERE reply_poll_until > :now AND state = 'complete' "
                "AND next_poll_at <= :now ORDER BY next_poll_at LIMIT :limit",
                {"now": now, "limit": limit},
            )
        ]

    def tracked(self, now: float) -> list[str]:
        """Ids of every batch still being read (open, or inside its reply window), whatever its next
        poll time: what a "poll everything now" (tests, the console's /tick) brings forward."""
        return [
            r["batch_id"]
            for r in self._store.db.query(
                "SELECT batch_id FROM batches WHERE state = 'open' "
                "UNION ALL SELECT batch_id FROM batches WHERE reply_poll_until > ? AND state = 'complete'",
                [now],
            )
        ]

    def open_count(self) -> int:
        """How many batches are still polled (for `doctor` and the benchmarks)."""
        rows = list(self._store.db.query("SELECT COUNT(*) AS n FROM batches WHERE state = 'open'"))
        return int(rows[0]["n"])

    def merge(
        self,
        batch_id: str,
        updates: Sequence[tuple[str, int, float | None, str, float]],
        *,
        source: str,
        now: float | None = None,
        strangers: list[tuple[str, int, float | None, str, float]] | None = None,
    ) -> int:
        """Apply (mobile, status_code, status_at, name, cost) updates moving forward only.

        Returns how many rows changed. A mobile the batch never had is NOT added: a push is unsigned, so
        a report for a number nobody sent to would otherwise grow the batch (and its reply and opt-out
        paths); such updates are appended to `strangers` for the caller to keep aside. A real final
        report still replaces the bot's own closing at expiry ("no report", or an unknown code ranked
        final), and a report without a time, name or cost (a push) keeps the ones already known."""
        now = now or time.time()
        changed = 0
        with self._store.immediate() as db:
            conn = db.conn
            for update in updates:
                mobile, code, status_at, name, cost = update
                status = status_for(code)
                rank = status.rank
                replaces_guess = int(rank == 2 and code != EXPIRED_LOCALLY.code)
                # A code no table knows ranks as pending, but it is news: it replaces a plain "sent".
                replaces_sent = int(status.outcome is Outcome.UNKNOWN)
                cursor = conn.execute(
                    "UPDATE deliveries SET status_code = ?, status_rank = ?, status_at = COALESCE(?, status_at), "
                    "name = CASE WHEN ? != '' THEN ? ELSE name END, cost = CASE WHEN ? > 0 THEN ? ELSE cost END, "
                    "updated_at = ?, source = ? "
                    "WHERE batch_id = ? AND mobile = ? AND (status_rank < ? OR (source = 'expiry' AND ?) "
                    "OR (? AND status_rank = 1 AND status_code IN (0, 700)))",
                    [code, rank, status_at, name, name, cost, cost, now, source, batch_id, mobile, rank,
                     replaces_guess, replaces_sent],
                )
                if cursor.rowcount:
                    changed += 1
                    continue
                if strangers is not None and not conn.execute(
                    "SELECT 1 FROM deliveries WHERE batch_id = ? AND mobile = ?", [batch_id, mobile]
                ).fetchone():
                    strangers.append(update)
        return changed

    def has_recipient(self, batch_id: str, mobile: str) -> bool:
        """Whether `mobile` is one of the numbers the batch was sent to (an index lookup)."""
        return bool(self._store.rows(
            "SELECT 1 AS one FROM deliveries WHERE batch_id = ? AND mobile = ? LIMIT 1", [batch_id, mobile]))

    def counts(self, *batch_ids: str) -> dict[int, int]:
        """How many recipients are in each status code, over one batch or the batches of a request."""
        marks = ", ".join("?" for _ in batch_ids)
        return {
            r["status_code"]: r["n"]
            for r in self._store.db.query(
                f"SELECT status_code, COUNT(*) AS n FROM deliveries WHERE batch_id IN ({marks}) GROUP BY status_code",
                list(batch_ids),
            )
        }

    def has_pending(self, batch_id: str) -> bool:
        """Any recipient not final yet? (an index lookup, whatever the batch's size)"""
        return bool(self._store.rows(
            "SELECT 1 AS one FROM deliveries WHERE batch_id = ? AND status_rank < 2 LIMIT 1", [batch_id]))

    def pending_count(self, batch_id: str) -> int:
        """Recipients without a final status yet: zero means the batch can close."""
        rows = list(
            self._store.db.query(
                "SELECT COUNT(*) AS n FROM deliveries WHERE batch_id = ? AND status_rank < 2", [batch_id]
            )
        )
        return int(rows[0]["n"])

    def deliveries(
        self, batch_id: str | Sequence[str], *, codes: Iterable[int] | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Recipient rows of one batch or several (optionally only some status codes), in send order: the
        summary lists failures."""
        ids = [batch_id] if isinstance(batch_id, str) else list(batch_id)
        sql = ("SELECT batch_id, mobile, name, status_code, status_rank, status_at, cost FROM deliveries "
               f"WHERE batch_id IN ({', '.join('?' for _ in ids)})")
        params: list[object] = list(ids)
        if codes is not None:
            codes = list(codes)
            sql += f" AND status_code IN ({', '.join('?' for _ in codes)})"
            params.extend(codes)
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)
        return [row_to(Delivery, r) for r in self._store.db.query(sql, params)]  # type: ignore[misc]

    def expire_pending(self, batch_id: str, now: float | None = None) -> int:
        """Close every non-final recipient once validity plus margin passed. A recipient still "sent"
        (or scheduled) with no report becomes expired ("no report before validity ended"); one whose last
        report carried a code no table knows keeps that code, only ranked final, so the summary and the
        audit CSV still say "unknown code N" rather than "no report". Returns the rows closed."""
        now = now or time.time()
        known = sorted(s.code for s in all_statuses())
        marks = ", ".join("?" for _ in known)
        with self._store.immediate() as db:
            kept = db.execute(
                "UPDATE deliveries SET status_rank = 2, updated_at = ?, source = 'expiry' "
                f"WHERE batch_id = ? AND status_rank < 2 AND status_code NOT IN ({marks})",
                [now, batch_id, *known],
            ).rowcount
            expired = db.execute(
                "UPDATE deliveries SET status_code = ?, status_rank = 2, updated_at = ?, source = 'expiry' "
                "WHERE batch_id = ? AND status_rank < 2",
                [EXPIRED_LOCALLY.code, now, batch_id],
            ).rowcount
            return kept + expired

    def cancel_scheduled(self, batch_id: str, now: float | None = None) -> int:
        """After EVERY8D confirmed a cancel: the recipients still scheduled become cancelled (303)."""
        now = now or time.time()
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE deliveries SET status_code = 303, status_rank = 2, updated_at = ?, source = 'cancel' "
                "WHERE batch_id = ? AND status_rank < 2",
                [now, batch_id],
            )
            return cursor.rowcount

    def complete(
        self, batch_id: str, now: float | None = None, *, reply_poll_until: float | None = None,
        next_poll_at: float | None = None,
    ) -> bool:
        """Close an open batch; True only for the caller that closed it. With `reply_poll_until` it is
        still read for replies until then (at `next_poll_at`, then as `polled` schedules)."""
        now = now or time.time()
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE batches SET state = 'complete', completed_at = ?, reply_poll_until = ?, "
                "next_poll_at = COALESCE(?, next_poll_at) WHERE batch_id = ? AND state = 'open'",
                [now, reply_poll_until, next_poll_at, batch_id],
            )
            return cursor.rowcount == 1

    def polled(self, batch_id: str, *, next_poll_at: float, now: float, failed: bool) -> None:
        """Record a poll attempt: success resets the failure count, failure increments it."""
        with self._store.immediate() as db:
            if failed:
                db.execute(
                    "UPDATE batches SET next_poll_at = ?, poll_failures = poll_failures + 1 WHERE batch_id = ?",
                    [next_poll_at, batch_id],
                )
            else:
                db.execute(
                    "UPDATE batches SET next_poll_at = ?, last_checked_at = ?, poll_failures = 0 WHERE batch_id = ?",
                    [next_poll_at, now, batch_id],
                )

    def shift_polls(self, seconds: float, now: float) -> int:
        """The clock was set back `seconds`: every poll still ahead was timed by the old clock and would
        come that much late; bring each forward by the jump (never before `now`). Returns how many."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE batches SET next_poll_at = MAX(?, next_poll_at - ?) WHERE next_poll_at > ?",
                [now, seconds, now],
            )
            return cursor.rowcount

    def poll_soon(self, batch_id: str, at: float) -> None:
        """Bring the next poll forward (e.g. right after a scheduled batch's send time). A completed batch
        outside its reply window is unaffected: `due` never selects it."""
        with self._store.immediate() as db:
            db.execute(
                "UPDATE batches SET next_poll_at = MIN(next_poll_at, ?) WHERE batch_id = ?",
                [at, batch_id],
            )

    def set_summary(self, batch_id: str, *, ts: str | None = None, digest: str | None = None) -> None:
        """Remember the summary message (its ts, to edit it) and what it last showed (to skip no-op edits)."""
        with self._store.immediate() as db:
            if ts is not None:
                db.execute("UPDATE batches SET summary_ts = ? WHERE batch_id = ?", [ts, batch_id])
            if digest is not None:
                db.execute("UPDATE batches SET summary_digest = ? WHERE batch_id = ?", [digest, batch_id])

    def recent(self, limit: int = 10) -> list[Batch]:
        """Newest batches first (App Home)."""
        return [
            row_to(Batch, r)  # type: ignore[misc]
            for r in self._store.db.query(f"SELECT {_COLUMNS} FROM batches ORDER BY created_at DESC LIMIT ?", [limit])
        ]

    def recent_requests(self, limit: int = 10) -> list[int]:
        """The requests with the newest batches, newest first (App Home shows a request's parts as one)."""
        return [
            int(r["request_id"])
            for r in self._store.rows(
                "SELECT request_id, MAX(created_at) AS newest FROM batches GROUP BY request_id "
                "ORDER BY newest DESC LIMIT ?", [limit])
        ]

    def outcomes_between(self, start: float, end: float) -> list[dict]:
        """(batch_id, created_at, status_code, n) for the batches created in [start, end): the weekly
        report's figures, grouped in SQL so a week of large batches is a few rows."""
        return list(
            self._store.db.query(
                "SELECT b.batch_id, b.created_at, d.status_code, COUNT(*) AS n FROM batches b "
                "JOIN deliveries d ON d.batch_id = b.batch_id WHERE b.created_at >= ? AND b.created_at < ? "
                "GROUP BY b.batch_id, d.status_code",
                [start, end],
            )
        )

    def charged_between(self, start: float, end: float) -> float:
        """Points charged for the batches created in [start, end): EVERY8D's charge (the quote when a
        batch was reconciled without it); a cancelled scheduled batch was refunded and counts nothing."""
        rows = list(
            self._store.db.query(
                "SELECT COALESCE(SUM(COALESCE(r.cost, r.points)), 0) AS points FROM requests r "
                "WHERE r.state != 'cancelled' AND r.id IN (SELECT b.request_id FROM batches b "
                "WHERE b.created_at >= ? AND b.created_at < ? AND b.batch_id = "
                "(SELECT b2.batch_id FROM batches b2 WHERE b2.request_id = b.request_id "
                "ORDER BY b2.created_at, b2.rowid LIMIT 1))",
                [start, end],
            )
        )
        return float(rows[0]["points"])
