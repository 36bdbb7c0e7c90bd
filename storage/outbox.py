"""What the bot has to tell Slack, written in the same transaction as the state change it reports.

Slack may be down, rate limiting, or the process may die right after a decision: the outbox keeps every
post until Slack has taken it. Rows are delivered in id order; a row that fails waits and blocks the
later rows of its channel, so a thread never reads out of order. A dedupe key makes enqueuing
idempotent (a reply is announced once however many times EVERY8D reports it).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from storage.models import OutboxItem

if TYPE_CHECKING:
    from storage.db import Store


class Outbox:
    def __init__(self, store: Store) -> None:
        self._store = store

    def enqueue(
        self,
        kind: str,
        ref: dict[str, Any],
        *,
        channel: str | None = None,
        dedupe_key: str | None = None,
        collapse: bool = False,
        now: float | None = None,
    ) -> bool:
        """Add a post. `collapse=True`: skip if an identical (kind, ref) post is still pending, because it
        renders the current state when it goes out (summary updates)."""
        now = now or time.time()
        ref_json = json.dumps(ref, sort_keys=True)
        with self._store.immediate() as db:
            if collapse:
                rows = self._store.rows(
                    "SELECT 1 AS one FROM outbox WHERE state = 'pending' AND kind = ? AND ref_json = ? LIMIT 1",
                    [kind, ref_json],
                )
                if rows:
                    return False
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbox (dedupe_key, kind, ref_json, channel, next_attempt_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [dedupe_key, kind, ref_json, channel, now, now],
            )
            return cursor.rowcount == 1

    def due(self, now: float | None = None, limit: int = 50) -> list[OutboxItem]:
        rows = self._store.db.query(
            "SELECT id, kind, ref_json, channel, attempts, dedupe_key FROM outbox "
            "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            [now or time.time(), limit],
        )
        return [
            OutboxItem(r["id"], r["kind"], json.loads(r["ref_json"]), r["channel"], r["attempts"], r["dedupe_key"])
            for r in rows
        ]

    def blocked_channels(self, now: float | None = None) -> set[str]:
        """Channels with a pending post that is waiting for a retry: later posts there must wait too."""
        rows = self._store.db.query(
            "SELECT DISTINCT channel FROM outbox WHERE state = 'pending' AND next_attempt_at > ? AND channel IS NOT NULL",
            [now or time.time()],
        )
        return {r["channel"] for r in rows}

    def done(self, item_id: int, now: float | None = None) -> None:
        with self._store.immediate() as db:
            db.execute("UPDATE outbox SET state = 'done', done_at = ? WHERE id = ?", [now or time.time(), item_id])

    def retry_later(self, item_id: int, error: str, delay: float, *, give_up: bool = False) -> None:
        with self._store.immediate() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
                "state = CASE WHEN ? THEN 'dead' ELSE state END WHERE id = ?",
                [error[:500], time.time() + delay, int(give_up), item_id],
            )

    def pending_count(self) -> int:
        return int(next(iter(self._store.db.query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'")))["n"])

    def dead(self, limit: int = 50) -> list[dict]:
        return list(
            self._store.db.query(
                "SELECT id, kind, ref_json, channel, attempts, last_error FROM outbox WHERE state = 'dead' "
                "ORDER BY id DESC LIMIT ?",
                [limit],
            )
        )
