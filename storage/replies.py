"""Inbound replies (STATUS 999) and reports for batches this bot does not know.

A reply is stored once, whoever saw it first (poll or callback): its dedupe key is built from the
batch, the number, the time and the text, so EVERY8D's retries and overlaps collapse into one row.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from storage.models import Reply, row_to

if TYPE_CHECKING:
    from storage.db import Store


_WHITESPACE = re.compile(r"\s+")


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
    ) -> int | None:
        """Store a reply; returns its id, or None when the same reply was already stored."""
        key = reply_key(batch_id or "", mobile, received_at, text)
        with self._store.immediate() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO replies (dedupe_key, batch_id, mobile, received_at, text, source, matched, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [key, batch_id, mobile, received_at, text, source, int(matched), now or time.time()],
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
        self, *, batch_id: str, status_code: int, mobile: str, raw: dict[str, str], now: float | None = None
    ) -> bool:
        """Keep aside a report for a batch this bot never sent (visible to admins, never posted)."""
        payload = json.dumps(raw, ensure_ascii=False, sort_keys=True)
        key = hashlib.sha256(payload.encode("utf-8")).hexdigest()
        with self._store.immediate() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO unmatched_reports (dedupe_key, batch_id, status_code, mobile, raw_json, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [key, batch_id, status_code, mobile, payload, now or time.time()],
            )
            return cursor.rowcount == 1

    def unmatched_reports(self, limit: int = 50) -> list[dict]:
        """Reports kept aside and not yet matched to a batch, newest first: what admins review."""
        return list(
            self._store.db.query(
                "SELECT id, batch_id, status_code, mobile, raw_json, created_at FROM unmatched_reports "
                "WHERE resolved_at IS NULL ORDER BY id DESC LIMIT ?",
                [limit],
            )
        )

    def unmatched_for_batch(self, batch_id: str) -> list[dict]:
        """Reports kept aside for a batch id that has since been matched to a request."""
        return list(
            self._store.db.query(
                "SELECT id, batch_id, status_code, mobile, raw_json FROM unmatched_reports "
                "WHERE resolved_at IS NULL AND batch_id = ? ORDER BY id",
                [batch_id],
            )
        )

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

    def texts_between(self, start: float, end: float) -> Iterator[str]:
        """The text of each reply stored in [start, end), oldest first (the weekly report's top replies)."""
        for r in self._store.db.query(
            "SELECT text FROM replies WHERE created_at >= ? AND created_at < ? ORDER BY id", [start, end]
        ):
            yield r["text"]
