"""Monthly point budgets and what each has used: the `budgets` table and the month's use read from requests.

A request counts against the budgets of its channel (`origin_channel`) and of its requester in the month it
was made. What it counts, by state:

- pending approval, approved, sending, unknown: its priced points (reserved: it may still go out);
- sent: the points EVERY8D charged for its parts (`cost`), else its priced points;
- failed: what its parts that did go out cost (nothing when it failed before sending);
- rejected, cancelled (a scheduled send refunded): nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.models import Budget, row_to

if TYPE_CHECKING:
    from storage.db import Store

SCOPES = ("channel", "requester")
#: The column of `requests` each scope's key is matched against.
_KEY_COLUMN = {"channel": "origin_channel", "requester": "requester"}

#: Points one request counts for in its month (see the module docstring).
USED_POINTS = (
    "CASE state WHEN 'rejected' THEN 0 WHEN 'cancelled' THEN 0 WHEN 'failed' THEN COALESCE(cost, 0) "
    "WHEN 'sent' THEN COALESCE(cost, points) ELSE points END"
)


class Budgets:
    def __init__(self, store: Store) -> None:
        self._store = store

    def set(self, scope: str, key: str, points: float, *, actor: str, now: float) -> float | None:
        """Create or change a budget; the points it had before (None: it is new). Joins the caller's
        transaction, so the change and its audit record are written together."""
        with self._store.immediate() as db:
            row = db.conn.execute("SELECT points FROM budgets WHERE scope = ? AND key = ?", [scope, key]).fetchone()
            db.execute(
                "INSERT INTO budgets (scope, key, points, created_by, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (scope, key) DO UPDATE SET points = excluded.points, created_by = excluded.created_by, "
                "updated_at = excluded.updated_at",
                [scope, key, points, actor, now],
            )
        return float(row[0]) if row else None

    def remove(self, scope: str, key: str) -> float | None:
        """Delete a budget; the points it had (None: there was none)."""
        with self._store.immediate() as db:
            row = db.conn.execute("SELECT points FROM budgets WHERE scope = ? AND key = ?", [scope, key]).fetchone()
            db.execute("DELETE FROM budgets WHERE scope = ? AND key = ?", [scope, key])
        return float(row[0]) if row else None

    def get(self, scope: str, key: str) -> Budget | None:
        rows = self._store.rows(
            "SELECT scope, key, points, created_by, updated_at FROM budgets WHERE scope = ? AND key = ?", [scope, key])
        return row_to(Budget, rows[0]) if rows else None  # type: ignore[return-value]

    def applying(self, *, channel: str, requester: str) -> list[Budget]:
        """The budgets a request from this channel by this person counts against (channel first)."""
        rows = self._store.rows(
            "SELECT scope, key, points, created_by, updated_at FROM budgets "
            "WHERE (scope = 'channel' AND key = ?) OR (scope = 'requester' AND key = ?) ORDER BY scope",
            [channel, requester],
        )
        return [row_to(Budget, r) for r in rows]  # type: ignore[misc]

    def list(self) -> list[Budget]:
        rows = self._store.rows("SELECT scope, key, points, created_by, updated_at FROM budgets ORDER BY scope, key")
        return [row_to(Budget, r) for r in rows]  # type: ignore[misc]

    def used(self, scope: str, key: str, start: float, end: float, *, before_request: int | None = None) -> float:
        """Points counted against this budget by requests made in [start, end) (see the module docstring).
        `before_request`: the use as that request sees it when it is decided: without itself, and without the
        requests still waiting that came after it (first come, first served; approved ones always count)."""
        column = _KEY_COLUMN[scope]
        sql = (f"SELECT COALESCE(SUM({USED_POINTS}), 0) FROM requests WHERE {column} = ? AND created_at >= ? "
               "AND created_at < ?")
        params: list = [key, start, end]
        if before_request is not None:
            sql += " AND id != ? AND (id < ? OR state != 'pending_approval')"
            params += [before_request, before_request]
        return float(self._store.db.conn.execute(sql, params).fetchone()[0])
