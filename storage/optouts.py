"""The opt-out list: numbers (E.164) that asked not to be texted again. Every send skips them."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from storage.models import OptOut, row_to

if TYPE_CHECKING:
    from storage.db import Store

#: SQLite allows a bounded number of `?` per statement; look numbers up in chunks of this size.
_CHUNK = 500


class OptOuts:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, e164: str, *, source: str, keyword: str = "", actor: str = "", batch_id: str | None = None,
            now: float | None = None) -> bool:
        """Put a number on the list; False if it was already there (the first reason is kept)."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO optouts (e164, at, source, keyword, actor, batch_id) VALUES (?, ?, ?, ?, ?, ?)",
                [e164, now or time.time(), source, keyword, actor, batch_id],
            )
            return cursor.rowcount == 1

    def remove(self, e164: str) -> bool:
        with self._store.immediate() as db:
            return db.execute("DELETE FROM optouts WHERE e164 = ?", [e164]).rowcount == 1

    def among(self, numbers: Iterable[str]) -> set[str]:
        """Which of these numbers opted out (fast for 10,000 numbers)."""
        numbers = list(dict.fromkeys(numbers))
        found: set[str] = set()
        for start in range(0, len(numbers), _CHUNK):
            chunk = numbers[start:start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            found.update(r["e164"] for r in self._store.db.query(
                f"SELECT e164 FROM optouts WHERE e164 IN ({marks})", chunk))
        return found

    def list(self, limit: int = 200) -> list[OptOut]:
        return [
            row_to(OptOut, r)  # type: ignore[misc]
            for r in self._store.db.query(
                "SELECT e164, at, source, keyword, actor FROM optouts ORDER BY at DESC LIMIT ?", [limit])
        ]

    def from_batches(self, batch_ids: Iterable[str]) -> int:
        """How many numbers opted out by answering these batches (the summary's opt-out rate)."""
        ids = list(batch_ids)
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        return int(self._store.db.conn.execute(
            f"SELECT COUNT(*) FROM optouts WHERE batch_id IN ({marks})", ids).fetchone()[0])

    def count_between(self, start: float, end: float) -> int:
        """How many numbers were put on the list in [start, end) (the weekly report's opt-out rate)."""
        return int(self._store.db.conn.execute(
            "SELECT COUNT(*) FROM optouts WHERE at >= ? AND at < ?", [start, end]).fetchone()[0])

    def count(self) -> int:
        return int(next(iter(self._store.db.query("SELECT COUNT(*) AS n FROM optouts")))["n"])
