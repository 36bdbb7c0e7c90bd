"""Credit readings over time (the balance, its trend and burn rate). Small settings live in storage/settings.py."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.db import Store


class CreditLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    def record(self, credit: float, *, source: str, now: float | None = None) -> None:
        with self._store.immediate() as db:
            db.execute(
                "INSERT INTO credit_history (at, credit, source) VALUES (?, ?, ?)",
                [now or time.time(), credit, source],
            )

    def latest(self) -> tuple[float, float] | None:
        """(credit, at) of the newest reading, or None before the first one."""
        rows = list(self._store.db.query("SELECT credit, at FROM credit_history ORDER BY id DESC LIMIT 1"))
        return (rows[0]["credit"], rows[0]["at"]) if rows else None

    def since(self, start: float) -> list[tuple[float, float]]:
        """(at, credit) readings since `start`, oldest first (trend and burn rate)."""
        return [
            (r["at"], r["credit"])
            for r in self._store.db.query(
                "SELECT at, credit FROM credit_history WHERE at >= ? ORDER BY id", [start]
            )
        ]
