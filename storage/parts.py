"""The parts of a request (one EVERY8D call each): planned with the request, claimed one at a time, and
moved between states by conditional updates, so one part is never sent twice whoever retries."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from storage.models import PartState, RequestPart, row_to

if TYPE_CHECKING:
    from storage.db import Store

_COLUMNS = ", ".join(RequestPart.__dataclass_fields__.keys())


def _to_part(row: dict[str, Any]) -> RequestPart:
    row = dict(row)
    row["state"] = PartState(row["state"])
    return row_to(RequestPart, row)  # type: ignore[return-value]


class Parts:
    """Queries on `request_parts`; the only code that writes it (besides the request's creation)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def of_request(self, request_id: int) -> list[RequestPart]:
        """Every part of a request, in send order."""
        rows = self._store.rows(
            f"SELECT {_COLUMNS} FROM request_parts WHERE request_id = ? ORDER BY part", [request_id]
        )
        return [_to_part(r) for r in rows]

    def get(self, request_id: int, part: int) -> RequestPart | None:
        rows = self._store.rows(
            f"SELECT {_COLUMNS} FROM request_parts WHERE request_id = ? AND part = ?", [request_id, part]
        )
        return _to_part(rows[0]) if rows else None

    def by_batch(self, batch_id: str) -> RequestPart | None:
        rows = self._store.rows(f"SELECT {_COLUMNS} FROM request_parts WHERE batch_id = ?", [batch_id])
        return _to_part(rows[0]) if rows else None

    def recipients(self, part: RequestPart) -> list[str]:
        """The part's numbers (E.164), in order: only this part's rows are read, whatever the request's size."""
        cursor = self._store.db.conn.execute(
            "SELECT e164 FROM request_recipients WHERE request_id = ? AND position BETWEEN ? AND ? "
            "ORDER BY position",
            [part.request_id, part.first_position, part.last_position],
        )
        return [row[0] for row in cursor]

    def deliverable(self, part: RequestPart) -> tuple[list[str], int]:
        """The part's numbers that have not opted out (in order), and how many have: one indexed join,
        read right before the part is sent so a STOP that came while it waited for approval counts."""
        cursor = self._store.db.conn.execute(
            "SELECT rr.e164, o.e164 IS NOT NULL FROM request_recipients rr LEFT JOIN optouts o ON o.e164 = rr.e164 "
            "WHERE rr.request_id = ? AND rr.position BETWEEN ? AND ? ORDER BY rr.position",
            [part.request_id, part.first_position, part.last_position],
        )
        kept: list[str] = []
        dropped = 0
        for e164, opted_out in cursor:
            if opted_out:
                dropped += 1
            else:
                kept.append(e164)
        return kept, dropped

    def transition(
        self, request_id: int, part: int, from_states: Iterable[PartState], to_state: PartState, **fields: Any
    ) -> bool:
        """Move one part to `to_state` only if it is in one of `from_states`; True for the caller that won."""
        return self._store.move_state("request_parts", {"request_id": request_id, "part": part},
                                      [s.value for s in from_states], to_state.value, fields)

    def transition_all(
        self, request_id: int, from_state: PartState, to_state: PartState, *, now: float | None = None
    ) -> int:
        """Move every part of a request in `from_state` (an approver's decision covers them all)."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE request_parts SET state = ?, updated_at = ? WHERE request_id = ? AND state = ?",
                [to_state.value, now or time.time(), request_id, from_state.value],
            )
            return cursor.rowcount
