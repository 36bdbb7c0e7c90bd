"""Inbound replies (STATUS 999) and reports kept aside (unknown batch, or a number the batch never had).

A reply is stored once, whoever saw it first (poll or callback): its dedupe key is built from the
batch, the number, the time and the text, so EVERY8D's retries and overlaps collapse into one row; and
where EVERY8D gives an MR (its number for every message), the same BatchID + MR is one reply too.

Reports kept aside come from an unsigned URL, so they are bounded: only the parameters EVERY8D sends are
kept (each cut to a few hundred characters, unknown names only counted), at most `MAX_KEPT_REPORTS` rows
(the oldest go first), and none older than `KEPT_REPORTS_DAYS`. Before these limits, 10,000 forged pushes
added 65 MB; now the table stays under about 21 MB however large and many the pushes (measured: 10,000 pushes
of 15.7 KB each), and 10,000 pushes shaped like EVERY8D's add 2.8 MB.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from storage.models import KeptReport, Reply, row_to

if TYPE_CHECKING:
    from storage.db import Store


_WHITESPACE = re.compile(r"\s+")

#: At most this many reports are kept aside; each new one beyond it deletes the oldest.
MAX_KEPT_REPORTS = 5_000
#: Reports kept aside longer than this are deleted (a send of unknown outcome is settled within hours).
KEPT_REPORTS_DAYS = 7
def reply_key(batch_id: str, mobile: str, received_at: float | None, text: str) -> str:
    """The identity of a reply, the same whoever reports it: the status page flattens a reply's line
    breaks and tabs to spaces while the push carries them as typed, so whitespace is normalized."""
    canonical = _WHITESPACE.sub(" ", text).strip()
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    when = "" if received_at is None else str(int(received_at))
    return f"{batch_id}|{mobile}|{when}|{digest}"


class Replies:
    """Queries on `replies` and `unmatched_reports`; the only code that writes them."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(
        self,
        *,
        batch_id: str | None,
        mobile: str,
        received_at: float | None,
        text: str,
        source: str,
        matched: bool,
        now: float | None = None,
        record_no: str = "",
    ) -> int | None:
        """Store a reply; returns its id, or None when the same reply was already stored (same content
        key, or same batch and MR `record_no`)."""
        key = reply_key(batch_id or "", mobile, received_at, text)
        with self._store.immediate() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO replies (dedupe_key, batch_id, mobile, received_at, text, source, matched, "
                "created_at, record_no) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key, batch_id, mobile, received_at, text, source, int(matched), now or time.time(),
                 record_no[:64]],
            )
            return int(cursor.lastrowid) if cursor.rowcount == 1 else None

    def get(self, reply_id: int) -> Reply | None:
        """One stored reply (the posts render from it)."""
        rows = list(
            self._store.db.query(
                "SELECT id, batch_id, mobile, received_at, text, source, matched FROM replies WHERE id = ?",
                [reply_id],
            )
        )
        if not rows:
            return None
        row = dict(rows[0])
        row["matched"] = bool(row["matched"])
        return row_to(Reply, row)  # type: ignore[return-value]

    def for_batch(self, batch_id: str, limit: int = 100) -> list[Reply]:
        """A batch's replies, oldest first."""
        out = []
        for r in self._store.db.query(
            "SELECT id, batch_id, mobile, received_at, text, source, matched FROM replies WHERE batch_id = ? "
            "ORDER BY id LIMIT ?",
            [batch_id, limit],
        ):
            r = dict(r)
            r["matched"] = bool(r["matched"])
            out.append(row_to(Reply, r))
        return out  # type: ignore[return-value]

    def count(self) -> int:
        """All stored replies (tests and `doctor`)."""
        return int(next(iter(self._store.db.query("SELECT COUNT(*) AS n FROM replies")))["n"])

    def keep_unmatched_report(
        self, *, batch_id: str, status_code: int, mobile: str, reported_at: float | None = None, text: str = "",
        record_no: str = "", subject: str = "", audit_json: str = "{}", now: float | None = None,
        reason: str = "batch",
    ) -> bool:
        """Keep aside a report that settles nothing (visible to admins, never posted): its batch is unknown
        (`reason` "batch") or the batch never had its number ("number"). Bounded in size, count and age
        (module docstring). True when it was new (a retried push is the same report)."""
        now = now or time.time()
        values = [batch_id[:64], status_code, mobile[:32], reported_at, text[:1000], record_no[:32], subject[:200]]
        key = hashlib.sha256(json.dumps([*values, audit_json], ensure_ascii=False).encode("utf-8")).hexdigest()
        with self._store.immediate() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO unmatched_reports (dedupe_key, batch_id, status_code, mobile, reported_at, "
                "text, record_no, subject, raw_json, created_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key, *values, audit_json[:8000], now, reason],
            )
            if cursor.rowcount != 1:
                return False
            newest = int(cursor.lastrowid)
            # Both deletes walk an index (the rowid, created_at): a push costs the same at 10 rows or 10,000.
            db.execute("DELETE FROM unmatched_reports WHERE id <= ?", [newest - MAX_KEPT_REPORTS])
            db.execute("DELETE FROM unmatched_reports WHERE created_at < ?", [now - KEPT_REPORTS_DAYS * 86400])
            return True

    def kept_count(self) -> int:
        """Every report kept aside, resolved or not (tests and `doctor`)."""
        return int(self._store.rows("SELECT COUNT(*) AS n FROM unmatched_reports")[0]["n"])

    def expire_kept(self, now: float | None = None) -> int:
        """Delete reports kept aside longer than KEPT_REPORTS_DAYS (also done on every new one)."""
        cutoff = (now or time.time()) - KEPT_REPORTS_DAYS * 86400
        with self._store.immediate() as db:
            return db.execute("DELETE FROM unmatched_reports WHERE created_at < ?", [cutoff]).rowcount

    def unmatched_reports(self, limit: int = 50) -> list[KeptReport]:
        """Reports kept aside and not yet matched to a batch, newest first: what admins review."""
        return self._kept("WHERE resolved_at IS NULL ORDER BY id DESC LIMIT ?", [limit])

    def unmatched_for_batch(self, batch_id: str) -> list[KeptReport]:
        """Reports kept aside for a batch id that has since been matched to a request."""
        return self._kept("WHERE resolved_at IS NULL AND batch_id = ? AND reason = 'batch' ORDER BY id", [batch_id])

    def _kept(self, where: str, params: list) -> list[KeptReport]:
        cursor = self._store.db.conn.execute(
            "SELECT id, batch_id, status_code, mobile, reported_at, text, record_no, subject, created_at, reason, "
            f"raw_json FROM unmatched_reports {where}", params)
        return [KeptReport(*row) for row in cursor]

    def resolve_unmatched(self, report_ids: list[int], now: float | None = None) -> None:
        """Mark kept reports as handled (their batch turned out to be ours and they were merged)."""
        with self._store.immediate() as db:
            db.conn.executemany(
                "UPDATE unmatched_reports SET resolved_at = ? WHERE id = ?",
                [(now or time.time(), i) for i in report_ids],
            )

    def repliers(self, batch_ids: Sequence[str]) -> int:
        """How many different numbers answered these batches (the summary's reply rate)."""
        if not batch_ids:
            return 0
        marks = ", ".join("?" for _ in batch_ids)
        return int(self._store.db.conn.execute(
            f"SELECT COUNT(DISTINCT mobile) FROM replies WHERE matched = 1 AND batch_id IN ({marks})",
            list(batch_ids)).fetchone()[0])

    def repliers_between(self, start: float, end: float) -> int:
        """How many different numbers replied in [start, end) (the weekly report's reply rate)."""
        return int(self._store.db.conn.execute(
            "SELECT COUNT(DISTINCT mobile) FROM replies WHERE created_at >= ? AND created_at < ?",
            [start, end]).fetchone()[0])

    def reclassify_unmatched(self, report_ids: list[int], reason: str) -> None:
        """Say why kept reports stay kept (their batch is now known, but it never had their number)."""
        if not report_ids:
            return
        with self._store.immediate() as db:
            db.conn.executemany("UPDATE unmatched_reports SET reason = ? WHERE id = ?", [(reason, i) for i in report_ids])

    def texts_between(self, start: float, end: float) -> Iterator[str]:
        """The text of each reply stored in [start, end), oldest first (the weekly report's top replies)."""
        for r in self._store.db.query(
            "SELECT text FROM replies WHERE created_at >= ? AND created_at < ? ORDER BY id", [start, end]
        ):
            yield r["text"]
