"""Reads for running the bot as a service: the figures `/metrics` shows and `/readyz` checks, and the
write probe that tells whether the database still takes writes.

They are read at scrape time (not kept in counters) so they are the database's truth after a restart,
and each is one indexed aggregate, cheap enough for a scrape every few seconds.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.db import Store

#: The `settings` key the write probe touches (a single row, overwritten at each probe).
PROBE_KEY = "ops.write_probe"


@dataclass(frozen=True, slots=True)
class OutboxDepth:
    """Posts waiting for Slack, posts set aside after permanent errors, and when the oldest waiting one
    was queued (None when nothing waits)."""

    pending: int
    dead: int
    oldest_created_at: float | None


class OpsReads:
    def __init__(self, store: Store) -> None:
        self._store = store

    def requests_by_state(self) -> dict[str, int]:
        """How many requests are in each state (every state ever used, absent ones not listed)."""
        rows = self._store.rows("SELECT state, COUNT(*) AS n FROM requests GROUP BY state")
        return {r["state"]: int(r["n"]) for r in rows}

    def parts_by_state(self) -> dict[str, int]:
        """How many parts (one EVERY8D call each) are in each state."""
        rows = self._store.rows("SELECT state, COUNT(*) AS n FROM request_parts GROUP BY state")
        return {r["state"]: int(r["n"]) for r in rows}

    def outbox_depth(self) -> OutboxDepth:
        rows = self._store.rows(
            "SELECT SUM(state = 'pending') AS pending, SUM(state = 'dead') AS dead, "
            "MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldest "
            "FROM outbox WHERE state IN ('pending', 'dead')"
        )
        row = rows[0]
        return OutboxDepth(int(row["pending"] or 0), int(row["dead"] or 0), row["oldest"])

    def latest_credit(self) -> tuple[float, float] | None:
        """(credit, at) of the newest credit reading, or None before the first one."""
        rows = self._store.rows("SELECT credit, at FROM credit_history ORDER BY id DESC LIMIT 1")
        return (rows[0]["credit"], rows[0]["at"]) if rows else None

    def open_batches(self) -> int:
        return int(self._store.rows("SELECT COUNT(*) AS n FROM batches WHERE state = 'open'")[0]["n"])

    def poll_lag(self, now: float | None = None) -> float:
        """How far behind the delivery polls are: seconds since the most overdue open batch was due
        (0 when none is due). Grows when the scheduler is stuck or EVERY8D answers slowly."""
        now = time.time() if now is None else now
        rows = self._store.rows(
            "SELECT MIN(next_poll_at) AS due FROM batches WHERE state = 'open' AND next_poll_at <= ?", [now]
        )
        due = rows[0]["due"]
        return max(0.0, now - due) if due is not None else 0.0

    def probe_write(self, timeout: float = 2.0, now: float | None = None) -> None:
        """Write and commit one small row on a connection of its own, waiting at most `timeout` for the
        write lock. Raises sqlite3.Error or OSError when the database does not take writes (read-only
        file, full disk, a lock held too long). Its own connection, so a probe never joins or waits
        behind this process's transactions for longer than `timeout`."""
        conn = sqlite3.connect(self._store.path, timeout=timeout)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [PROBE_KEY, repr(time.time() if now is None else now)],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
