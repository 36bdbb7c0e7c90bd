"""Message templates with `{variable}` placeholders, by name."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from storage.models import Template, row_to

if TYPE_CHECKING:
    from storage.db import Store


class Templates:
    def __init__(self, store: Store) -> None:
        self._store = store

    def save(self, name: str, body: str, *, actor: str = "", now: float | None = None) -> bool:
        """Create or replace; True if it was new."""
        now = now or time.time()
        with self._store.immediate() as db:
            existed = bool(list(db.query("SELECT 1 FROM templates WHERE name = ?", [name])))
            db.execute(
                "INSERT INTO templates (name, body, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                [name, body, actor, now, now],
            )
            return not existed

    def get(self, name: str) -> Template | None:
        rows = list(self._store.db.query(
            "SELECT name, body, created_by, updated_at FROM templates WHERE name = ?", [name]))
        return row_to(Template, rows[0]) if rows else None  # type: ignore[return-value]

    def remove(self, name: str) -> bool:
        with self._store.immediate() as db:
            return db.execute("DELETE FROM templates WHERE name = ?", [name]).rowcount == 1

    def list(self, limit: int = 100) -> list[Template]:
        return [row_to(Template, r) for r in self._store.db.query(  # type: ignore[misc]
            "SELECT name, body, created_by, updated_at FROM templates ORDER BY name LIMIT ?", [limit])]
