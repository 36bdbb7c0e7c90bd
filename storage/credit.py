"""Credit readings over time, and small settings such as the low-credit alert's state."""

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

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        rows = list(self._store.db.query("SELECT value FROM settings WHERE key = ?", [key]))
        return rows[0]["value"] if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self._store.immediate() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    def delete_setting(self, key: str) -> bool:
        """Remove a setting; True if it was there."""
        with self._store.immediate() as db:
            return db.execute("DELETE FROM settings WHERE key = ?", [key]).rowcount == 1

    def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every setting whose key starts with `prefix` (keys as stored)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._store.db.query("SELECT key, value FROM settings WHERE key LIKE ? ESCAPE '\\'", [escaped + "%"])
        return {row["key"]: row["value"] for row in rows}

    def swap_setting(self, key: str, expected: str | None, value: str) -> bool:
        """Set `key` to `value` only if it currently holds `expected` (None = absent). True if it changed.

        The low-credit alert uses it so that two checks at once never post two alerts."""
        with self._store.immediate() as db:
            rows = list(db.query("SELECT value FROM settings WHERE key = ?", [key]))
            current = rows[0]["value"] if rows else None
            if current != expected:
                return False
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            return True
