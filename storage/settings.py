"""Small settings the bot keeps between runs, each a key and a text value: the low-credit alert's state,
which week's report went out, the platform's missing endpoints, promised cancel retries, the deployment
tag. `swap` is a compare-and-set, so two workers never both take the same turn."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.db import Store


class Settings:
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key: str, default: str | None = None) -> str | None:
        rows = list(self._store.db.query("SELECT value FROM settings WHERE key = ?", [key]))
        return rows[0]["value"] if rows else default

    def set(self, key: str, value: str) -> None:
        with self._store.immediate() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    def delete(self, key: str) -> bool:
        """Remove a setting; True if it was there."""
        with self._store.immediate() as db:
            return db.execute("DELETE FROM settings WHERE key = ?", [key]).rowcount == 1

    def with_prefix(self, prefix: str) -> dict[str, str]:
        """Every setting whose key starts with `prefix` (keys as stored)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._store.db.query("SELECT key, value FROM settings WHERE key LIKE ? ESCAPE '\\'", [escaped + "%"])
        return {row["key"]: row["value"] for row in rows}

    def swap(self, key: str, expected: str | None, value: str) -> bool:
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
