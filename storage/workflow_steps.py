"""Workflow Builder steps: which request a step's execution created (one each way)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.db import Store


class WorkflowSteps:
    def __init__(self, store: Store) -> None:
        self._store = store

    def link(self, execution_id: str, request_id: int, *, now: float) -> None:
        """Record that this execution created this request (a redelivered event links nothing new). Called
        inside the request's own transaction."""
        self._store.db.execute(
            "INSERT OR IGNORE INTO workflow_steps (execution_id, request_id, created_at) VALUES (?, ?, ?)",
            [execution_id, request_id, now],
        )

    def execution_of(self, request_id: int) -> str | None:
        row = self._store.db.conn.execute(
            "SELECT execution_id FROM workflow_steps WHERE request_id = ?", [request_id]).fetchone()
        return row[0] if row else None
