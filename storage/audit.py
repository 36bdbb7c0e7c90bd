"""Who did what and when: every request, decision, send, cancel and override, for the audit export."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.db import Store


class AuditLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self, actor: str, action: str, *, request_id: int | None = None, now: float | None = None, **detail: Any
    ) -> None:
        with self._store.immediate() as db:
            db.execute(
                "INSERT INTO audit (at, actor, action, request_id, detail_json) VALUES (?, ?, ?, ?, ?)",
                [now or time.time(), actor, action, request_id, json.dumps(detail, ensure_ascii=False, default=str)],
            )

    def for_request(self, request_id: int) -> list[dict]:
        return [
            {**r, "detail": json.loads(r["detail_json"])}
            for r in self._store.db.query(
                "SELECT at, actor, action, detail_json FROM audit WHERE request_id = ? ORDER BY id", [request_id]
            )
        ]

    def actions(self, action: str) -> list[dict]:
        return list(
            self._store.db.query("SELECT at, actor, request_id, detail_json FROM audit WHERE action = ? ORDER BY id", [action])
        )
