"""The parts of a request (one EVERY8D call each): planned with the request, claimed one at a time, and
moved between states by conditional updates, so one part is never sent twice whoever retries."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from storage.models import PartPlan, PartState, RequestPart, row_to

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

    def deliverable_texts(self, part: RequestPart) -> tuple[list[tuple[int, str, str, str | None]], int]:
        """Like `deliverable`, with each recipient's position, address-book name and own text (NULL: the
        request's message): what a "param" part sends, read right before the call."""
        cursor = self._store.db.conn.execute(
            "SELECT rr.position, rr.e164, rr.name, rr.message, o.e164 IS NOT NULL FROM request_recipients rr "
            "LEFT JOIN optouts o ON o.e164 = rr.e164 "
            "WHERE rr.request_id = ? AND rr.position BETWEEN ? AND ? ORDER BY rr.position",
            [part.request_id, part.first_position, part.last_position],
        )
        kept: list[tuple[int, str, str, str | None]] = []
        dropped = 0
        for position, e164, name, message, opted_out in cursor:
            if opted_out:
                dropped += 1
            else:
                kept.append((position, e164, name or "", message))
        return kept, dropped

    def texts_from(self, request_id: int, first_position: int) -> list[tuple[str, str | None]]:
        """(number, own text or NULL) of every recipient from `first_position` on, in order (a re-plan)."""
        cursor = self._store.db.conn.execute(
            "SELECT e164, message FROM request_recipients WHERE request_id = ? AND position >= ? ORDER BY position",
            [request_id, first_position],
        )
        return [(e164, message) for e164, message in cursor]

    def replan_from(self, request_id: int, from_part: int, plans: Iterable[PartPlan], *, now: float) -> bool:
        """Replace parts `from_part` onwards by `plans` (numbered from `from_part`), only if none of them was
        ever sent: each is still pending, or `sending` with no answer that could mean it went out (the caller
        holds it and knows). Used when SendParamSMS proves missing before anything of those parts went out."""
        with self._store.immediate() as db:
            states = {row[0] for row in db.conn.execute(
                "SELECT state FROM request_parts WHERE request_id = ? AND part >= ?", [request_id, from_part])}
            if not states <= {PartState.PENDING.value, PartState.SENDING.value}:
                return False
            db.execute("DELETE FROM request_parts WHERE request_id = ? AND part >= ?", [request_id, from_part])
            db.conn.executemany(
                "INSERT INTO request_parts (request_id, part, first_position, last_position, recipient_count, "
                "message, points, mode, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (request_id, from_part + k, p.first_position, p.last_position,
                     p.last_position - p.first_position + 1, p.message, p.points, p.mode, now)
                    for k, p in enumerate(plans)
                ),
            )
        return True

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
