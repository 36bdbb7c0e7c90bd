"""Auto-reply rules and their cool-down: which keyword answers with what, and when a rule last answered a
number (so a number gets one automatic answer per rule per cool-down, however often it writes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.db import Store


@dataclass(frozen=True)
class AutoReplyRule:
    """`key`: the normalized keyword (or the out-of-hours rule's key); `body`: the text, or `@template`."""

    key: str
    keyword: str
    body: str
    created_by: str
    created_at: float


class AutoReplies:
    def __init__(self, store: Store) -> None:
        self._store = store

    def put(self, key: str, keyword: str, body: str, *, actor: str, now: float) -> bool:
        """Add or replace a rule; True when it replaced one."""
        with self._store.immediate() as db:
            existed = db.execute("SELECT 1 FROM autoreply_rules WHERE key = ?", [key]).fetchone() is not None
            db.execute(
                "INSERT INTO autoreply_rules (key, keyword, body, created_by, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET keyword = excluded.keyword, body = excluded.body, "
                "created_by = excluded.created_by, created_at = excluded.created_at",
                [key, keyword, body, actor, now],
            )
            return existed

    def remove(self, key: str) -> bool:
        with self._store.immediate() as db:
            return db.execute("DELETE FROM autoreply_rules WHERE key = ?", [key]).rowcount == 1

    def get(self, key: str) -> AutoReplyRule | None:
        row = self._store.db.conn.execute(
            "SELECT key, keyword, body, created_by, created_at FROM autoreply_rules WHERE key = ?", [key]).fetchone()
        return AutoReplyRule(*row) if row else None

    def all(self) -> list[AutoReplyRule]:
        rows = self._store.db.conn.execute(
            "SELECT key, keyword, body, created_by, created_at FROM autoreply_rules ORDER BY created_at").fetchall()
        return [AutoReplyRule(*row) for row in rows]

    def claim(self, key: str, e164: str, *, now: float, cooldown_seconds: float) -> bool:
        """Take this rule's turn for this number: True (and recorded) unless it answered the number within
        the cool-down. One statement, so two replies processed at once cannot both win."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "INSERT INTO autoreply_sent (rule_key, e164, last_at) VALUES (?, ?, ?) "
                "ON CONFLICT(rule_key, e164) DO UPDATE SET last_at = excluded.last_at "
                "WHERE autoreply_sent.last_at <= ?",
                [key, e164, now, now - cooldown_seconds],
            )
            return cursor.rowcount == 1

    def release(self, key: str, e164: str) -> None:
        """Give the turn back (the answer could not be made), so the next reply may get one."""
        with self._store.immediate() as db:
            db.execute("DELETE FROM autoreply_sent WHERE rule_key = ? AND e164 = ?", [key, e164])
