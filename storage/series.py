"""Recurring sends (series) and what became of each of their occurrences."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.db import Store

#: States a series can be in; `LIVE` ones are listed (`/sms scheduled`, App Home).
PENDING, ACTIVE, PAUSED, STOPPED, FINISHED, REJECTED = "pending", "active", "paused", "stopped", "finished", "rejected"
LIVE = (PENDING, ACTIVE, PAUSED)


@dataclass(frozen=True, slots=True)
class SeriesRow:
    id: int
    created_at: float
    created_by: str
    origin_channel: str
    payload: dict[str, Any]
    image: bytes | None
    rule: dict[str, Any]  # the rule columns, for services.recurrence.Rule.from_columns
    points_per_run: float
    recipient_count: int
    runs_done: int
    state: str
    next_run_at: float | None
    approval_channel: str
    approval_ts: str | None
    approved_by: str | None
    approved_at: float | None
    ended_by: str | None


@dataclass(frozen=True, slots=True)
class SeriesRun:
    series_id: int
    occurrence: float
    number: int
    outcome: str  # requested | refused | missed
    request_id: int | None
    note: str | None


_RULE_COLUMNS = ("rule_kind", "weekdays", "month_day", "time_of_day", "start_date", "until_date", "max_runs",
                 "timezone")


def _row(row: dict[str, Any]) -> SeriesRow:
    return SeriesRow(
        id=row["id"], created_at=row["created_at"], created_by=row["created_by"],
        origin_channel=row["origin_channel"], payload=json.loads(row["payload_json"]), image=row["image"],
        rule={k: row[k] for k in _RULE_COLUMNS}, points_per_run=row["points_per_run"],
        recipient_count=row["recipient_count"], runs_done=row["runs_done"], state=row["state"],
        next_run_at=row["next_run_at"], approval_channel=row["approval_channel"], approval_ts=row["approval_ts"],
        approved_by=row["approved_by"], approved_at=row["approved_at"], ended_by=row["ended_by"],
    )


class SeriesStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, *, now: float, created_by: str, origin_channel: str, payload: dict[str, Any],
               image: bytes | None, rule: dict[str, Any], points_per_run: float, recipient_count: int,
               next_run_at: float, approval_channel: str) -> int:
        """A new series waiting for its approval. Called inside the caller's transaction."""
        fields = {
            "created_at": now, "updated_at": now, "created_by": created_by, "origin_channel": origin_channel,
            "payload_json": json.dumps(payload, ensure_ascii=False), "image": image, **rule,
            "points_per_run": points_per_run, "recipient_count": recipient_count, "state": PENDING,
            "next_run_at": next_run_at, "approval_channel": approval_channel,
        }
        cursor = self._store.db.execute(
            f"INSERT INTO series ({', '.join(fields)}) VALUES ({', '.join('?' for _ in fields)})", list(fields.values()))
        return int(cursor.lastrowid)

    def get(self, series_id: int) -> SeriesRow | None:
        rows = self._store.rows("SELECT * FROM series WHERE id = ?", [series_id])
        return _row(rows[0]) if rows else None

    def live(self, limit: int = 50) -> list[SeriesRow]:
        """Series waiting for approval, running or paused, the next to run first."""
        rows = self._store.rows(
            "SELECT * FROM series WHERE state IN ('pending', 'active', 'paused') "
            "ORDER BY next_run_at IS NULL, next_run_at, id LIMIT ?", [limit])
        return [_row(r) for r in rows]

    def due(self, now: float) -> list[SeriesRow]:
        rows = self._store.rows(
            "SELECT * FROM series WHERE state = 'active' AND next_run_at IS NOT NULL AND next_run_at <= ? "
            "ORDER BY next_run_at, id", [now])
        return [_row(r) for r in rows]

    def move(self, series_id: int, from_states: tuple[str, ...], to_state: str, **fields: Any) -> bool:
        """One conditional UPDATE: True when this caller moved the series (see Store.move_state)."""
        return self._store.move_state("series", {"id": series_id}, from_states, to_state, fields)

    def set_posted(self, series_id: int, ts: str) -> None:
        """Where the series' card landed: its thread holds every run."""
        self._store.db.execute("UPDATE series SET approval_ts = ? WHERE id = ? AND approval_ts IS NULL",
                               [ts, series_id])

    def advance(self, series_id: int, *, expected_next: float, next_run_at: float | None, runs_done: int,
                now: float) -> bool:
        """Move the series past an occurrence, only if nobody did already (the row count says who won);
        with no next occurrence the series is finished. Called inside the caller's transaction."""
        state_sql = "CASE WHEN ? IS NULL THEN 'finished' ELSE state END"
        cursor = self._store.db.execute(
            f"UPDATE series SET next_run_at = ?, runs_done = ?, updated_at = ?, state = {state_sql} "
            "WHERE id = ? AND next_run_at = ? AND state = 'active'",
            [next_run_at, runs_done, now, next_run_at, series_id, expected_next])
        return cursor.rowcount == 1

    def record_run(self, series_id: int, occurrence: float, number: int, outcome: str, *, now: float,
                   request_id: int | None = None, note: str | None = None) -> bool:
        """What became of one occurrence; False if it was already recorded (handled once, ever)."""
        cursor = self._store.db.execute(
            "INSERT OR IGNORE INTO series_runs (series_id, occurrence, number, outcome, request_id, note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", [series_id, occurrence, number, outcome, request_id, note, now])
        return cursor.rowcount == 1

    def runs(self, series_id: int) -> list[SeriesRun]:
        rows = self._store.rows(
            "SELECT series_id, occurrence, number, outcome, request_id, note FROM series_runs "
            "WHERE series_id = ? ORDER BY occurrence", [series_id])
        return [SeriesRun(**r) for r in rows]
