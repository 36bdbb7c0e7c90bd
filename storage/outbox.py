"""What the bot has to tell Slack, written in the same transaction as the state change it reports.

Slack may be down, rate limiting, or the process may die right after a decision: the outbox keeps every
post until Slack has taken it. Rows are delivered in id order; a row that fails waits and blocks the
later rows of its thread (`thread_key`: a request's card, thread posts and summary), so a thread never
reads out of order, while posts of other threads, in the same channel or not, go on. A dedupe key makes
enqueuing idempotent (a reply is announced once however many times EVERY8D reports it).

`posting_at` marks a row whose Slack call has started: if the process dies between Slack taking the post
and the row being marked done, the next attempt first looks for the post in Slack (bot/slack_poster.py).
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from storage.models import OutboxItem

if TYPE_CHECKING:
    from storage.db import Store


class Outbox:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._local = threading.local()

    def added_here(self) -> int:
        """How many rows this thread has inserted so far. A caller that compares it before and after its
        transaction knows whether it queued a post, and wakes the poster only then: waking it for nothing
        cost a callback a third of its time (a query and two thread switches per push)."""
        return getattr(self._local, "added", 0)

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
                    return False  # the usual outcome for a summary: asked on every push, one pending
            thread_key = self._thread_key(ref, channel)
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbox (dedupe_key, kind, ref_json, channel, next_attempt_at, created_at, "
                "thread_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [dedupe_key, kind, ref_json, channel, now, now, thread_key],
            )
            if cursor.rowcount == 1:
                self._local.added = self.added_here() + 1
            return cursor.rowcount == 1

    def _thread_key(self, ref: dict[str, Any], channel: str | None) -> str | None:
        """The order a post keeps: every post about one request (named by its id, one of its batches, or a
        reply to one of them) in one channel. Other posts (credit alerts, stray replies) keep none."""
        request_id = ref.get("request_id")
        if request_id is None and ref.get("batch_id") is not None:
            rows = self._store.rows("SELECT request_id FROM batches WHERE batch_id = ?", [ref["batch_id"]])
            request_id = rows[0]["request_id"] if rows else None
        if request_id is None and ref.get("reply_id") is not None:
            rows = self._store.rows(
                "SELECT b.request_id FROM replies r JOIN batches b ON b.batch_id = r.batch_id WHERE r.id = ?",
                [ref["reply_id"]],
            )
            request_id = rows[0]["request_id"] if rows else None
        return None if request_id is None else f"{channel or ''}#request:{request_id}"

    def due(self, now: float | None = None, limit: int = 50) -> list[OutboxItem]:
        rows = self._store.rows(
            "SELECT id, kind, ref_json, channel, attempts, dedupe_key, thread_key, posting_at FROM outbox "
            "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            [now or time.time(), limit],
        )
        return [
            OutboxItem(r["id"], r["kind"], json.loads(r["ref_json"]), r["channel"], r["attempts"], r["dedupe_key"],
                       r["thread_key"], r["posting_at"])
            for r in rows
        ]

    def deliverable(self, limit: int = 200, now: float | None = None) -> list[OutboxItem]:
        """What is due now, oldest first, minus the posts of threads that wait for a retry: a long queue
        behind one failing thread never hides the posts of other threads from the poster."""
        now = now or time.time()
        rows = self._store.rows(
            "SELECT id, kind, ref_json, channel, attempts, dedupe_key, thread_key, posting_at FROM outbox "
            "WHERE state = 'pending' AND next_attempt_at <= ? AND (thread_key IS NULL OR thread_key NOT IN ("
            "SELECT thread_key FROM outbox WHERE state = 'pending' AND next_attempt_at > ? "
            "AND thread_key IS NOT NULL)) ORDER BY id LIMIT ?",
            [now, now, limit],
        )
        return [
            OutboxItem(r["id"], r["kind"], json.loads(r["ref_json"]), r["channel"], r["attempts"], r["dedupe_key"],
                       r["thread_key"], r["posting_at"])
            for r in rows
        ]

    def pending(self, *, item_id: int | None = None, dedupe_key: str | None = None) -> OutboxItem | None:
        """The post with this id (or dedupe key) if it still waits for Slack; None once delivered or set aside."""
        column, value = ("id", item_id) if item_id is not None else ("dedupe_key", dedupe_key)
        rows = self._store.rows(
            "SELECT id, kind, ref_json, channel, attempts, dedupe_key, thread_key, posting_at FROM outbox "
            f"WHERE state = 'pending' AND {column} = ?",
            [value],
        )
        return next((OutboxItem(r["id"], r["kind"], json.loads(r["ref_json"]), r["channel"], r["attempts"],
                                r["dedupe_key"], r["thread_key"], r["posting_at"]) for r in rows), None)

    def posting(self, item_id: int, now: float | None = None) -> None:
        """The Slack call for this post starts now: until `done`, it may be in Slack already."""
        with self._store.immediate() as db:
            db.execute("UPDATE outbox SET posting_at = ? WHERE id = ?", [now or time.time(), item_id])

    def done(self, item_id: int, now: float | None = None) -> None:
        with self._store.immediate() as db:
            db.execute("UPDATE outbox SET state = 'done', done_at = ? WHERE id = ?", [now or time.time(), item_id])

    def retry_later(
        self, item_id: int, error: str, delay: float, *, give_up: bool = False, not_posted: bool = False
    ) -> None:
        """Try again after `delay` seconds (set aside as `dead` with `give_up`). `not_posted`: Slack answered
        that it refused the post, so no copy of it can be in Slack (no need to look for one next time)."""
        with self._store.immediate() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
                "state = CASE WHEN ? THEN 'dead' ELSE state END, "
                "posting_at = CASE WHEN ? THEN NULL ELSE posting_at END WHERE id = ?",
                [error[:500], time.time() + delay, int(give_up), int(not_posted), item_id],
            )

    def retry_now(self, item_ids: list[int], now: float | None = None) -> int:
        """Make these pending posts due at once (the watchdog re-wakes posts that waited too long)."""
        if not item_ids:
            return 0
        marks = ", ".join("?" for _ in item_ids)
        with self._store.immediate() as db:
            cursor = db.execute(
                f"UPDATE outbox SET next_attempt_at = ? WHERE state = 'pending' AND id IN ({marks})",
                [now or time.time(), *item_ids],
            )
            return cursor.rowcount

    def due_if_later_than(self, horizon: float, now: float | None = None) -> int:
        """Make due at once the pending posts waiting beyond `horizon` (a time no retry waits past): after
        the clock was set back, their waits would have lasted the jump as well."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE state = 'pending' AND next_attempt_at > ?",
                [now or time.time(), horizon],
            )
            return cursor.rowcount

    def revive_dead(self, *, told_prefix: str, now: float | None = None) -> int:
        """Every post set aside goes back in the queue with its tries counted from zero (an admin fixed what
        Slack refused: put the bot back in the channel, granted the scope). Their alerts' keys are released,
        so a post refused for good again is said again. A row whose call may have landed keeps `posting_at`:
        it is looked for in Slack before it is posted. Returns how many."""
        now = now or time.time()
        with self._store.immediate() as db:
            db.execute(
                "UPDATE outbox SET dedupe_key = NULL WHERE dedupe_key IN "
                "(SELECT ? || id FROM outbox WHERE state = 'dead')", [told_prefix])
            cursor = db.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ? WHERE state = 'dead'", [now])
            return cursor.rowcount

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
