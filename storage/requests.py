"""Send requests and their recipients: create, read, and move between states with conditional updates."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from storage.models import PartPlan, RequestState, SendRequest, row_to

if TYPE_CHECKING:
    from storage.db import Store

_COLUMNS = ", ".join(SendRequest.__dataclass_fields__.keys())


class SummaryTarget(NamedTuple):
    """Where a batch's summary goes and whether it may go yet (`Requests.summary_target`)."""

    state: RequestState
    batch_id: str | None  # the request's lead batch: its summary message is the one edited
    approval_channel: str


def _to_request(row: dict[str, Any]) -> SendRequest:
    row = dict(row)
    row["state"] = RequestState(row["state"])
    row["estimate"] = bool(row["estimate"])
    row["auto_approved"] = bool(row["auto_approved"])
    row["sandbox"] = bool(row["sandbox"])
    row["quiet_override"] = bool(row["quiet_override"])
    return row_to(SendRequest, row)  # type: ignore[return-value]


class Requests:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self,
        fields: dict[str, Any],
        recipients: Sequence[str],
        *,
        image: bytes | None = None,
        names: Mapping[str, str] | None = None,
        messages: Mapping[str, str] | None = None,
        parts: Sequence[PartPlan] | None = None,
    ) -> int:
        """Insert a request in state pending_approval with its recipients (E.164, in order), from `names`
        each one's address-book name (copied to its delivery row when the batch is created), from
        `messages` each one's personalised text, and its `parts` (default: one part, every recipient)."""
        names = names or {}
        messages = messages or {}
        if not parts:
            parts = [PartPlan(0, max(len(recipients) - 1, 0), None, float(fields.get("points", 0.0)))]
        now = fields.pop("now", None) or time.time()
        row = {
            **fields,
            "image": image,
            "created_at": now,
            "updated_at": now,
            "state": RequestState.PENDING_APPROVAL.value,
        }
        with self._store.immediate() as db:
            cursor = db.execute(
                f"INSERT INTO requests ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                list(row.values()),
            )
            request_id = int(cursor.lastrowid)
            db.conn.executemany(
                "INSERT INTO request_recipients (request_id, position, e164, name, message) VALUES (?, ?, ?, ?, ?)",
                ((request_id, i, e164, names.get(e164, ""), messages.get(e164)) for i, e164 in enumerate(recipients)),
            )
            db.conn.executemany(
                "INSERT INTO request_parts (request_id, part, first_position, last_position, recipient_count, "
                "message, points, mode, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (request_id, k, p.first_position, p.last_position, p.last_position - p.first_position + 1,
                     p.message, p.points, p.mode, now)
                    for k, p in enumerate(parts)
                ),
            )
        return request_id

    def get(self, request_id: int) -> SendRequest | None:
        rows = self._store.rows(f"SELECT {_COLUMNS} FROM requests WHERE id = ?", [request_id])
        return _to_request(rows[0]) if rows else None

    def by_batch(self, batch_id: str) -> SendRequest | None:
        """The request a batch belongs to (any of its parts' batches)."""
        columns = ", ".join(f"requests.{c}" for c in SendRequest.__dataclass_fields__)
        rows = self._store.rows(
            f"SELECT {columns} FROM batches JOIN requests ON requests.id = batches.request_id "
            "WHERE batches.batch_id = ?",
            [batch_id],
        )
        return _to_request(rows[0]) if rows else None

    def summary_target(self, batch_id: str) -> SummaryTarget | None:
        """What a summary update needs of the request a batch belongs to (its state, lead batch and approval
        channel), and nothing more: a push asks for it on every report, and reading the whole request row
        was a fifth of a push's cost."""
        row = self._store.db.conn.execute(
            "SELECT requests.state, requests.batch_id, requests.approval_channel FROM batches "
            "JOIN requests ON requests.id = batches.request_id WHERE batches.batch_id = ?",
            [batch_id],
        ).fetchone()
        return SummaryTarget(RequestState(row[0]), row[1], row[2]) if row else None

    def by_source_event(self, source_event: str) -> SendRequest | None:
        """The request created from this Slack event, if any (Slack redelivers events it thinks were lost)."""
        rows = list(self._store.db.query(f"SELECT {_COLUMNS} FROM requests WHERE source_event = ?", [source_event]))
        return _to_request(rows[0]) if rows else None

    def latest_reply_in_thread(self, channel: str, thread_ts: str) -> int | None:
        """The id of the newest reply posted in this thread: a reply to any batch whose posts live there (the
        card's own batch, or an answer typed in it). A message typed in the thread answers that reply."""
        rows = list(self._store.db.query(
            "SELECT replies.id AS id FROM requests JOIN batches ON batches.request_id = requests.id "
            "JOIN replies ON replies.batch_id = batches.batch_id "
            "WHERE COALESCE(requests.thread_ts, requests.approval_ts) = ? "
            "AND COALESCE(requests.thread_channel, requests.approval_channel) = ? "
            "ORDER BY replies.id DESC LIMIT 1",
            [thread_ts, channel],
        ))
        return int(rows[0]["id"]) if rows else None

    def in_states(self, *states: RequestState, limit: int = 1000) -> list[SendRequest]:
        marks = ", ".join("?" for _ in states)
        return [
            _to_request(r)
            for r in self._store.db.query(
                f"SELECT {_COLUMNS} FROM requests WHERE state IN ({marks}) ORDER BY id LIMIT ?",
                [*(s.value for s in states), limit],
            )
        ]

    def scheduled_not_yet_sent(self, now: float) -> list[SendRequest]:
        """Requests accepted by EVERY8D for a future time that has not come yet (cancellable)."""
        return [
            _to_request(r)
            for r in self._store.db.query(
                f"SELECT {_COLUMNS} FROM requests WHERE state = ? AND send_at IS NOT NULL AND send_at > ? "
                "ORDER BY send_at",
                [RequestState.SENT.value, now],
            )
        ]

    def between(self, start: float, end: float) -> list[SendRequest]:
        return [
            _to_request(r)
            for r in self._store.db.query(
                f"SELECT {_COLUMNS} FROM requests WHERE created_at >= ? AND created_at < ? ORDER BY id",
                [start, end],
            )
        ]

    def recipients(self, request_id: int) -> list[str]:
        """The request's numbers (E.164), in order. Plain tuples, not dicts: a send reads 10,000 of them."""
        cursor = self._store.db.conn.execute(
            "SELECT e164 FROM request_recipients WHERE request_id = ? ORDER BY position", [request_id]
        )
        return [row[0] for row in cursor]

    def personal_texts(self, request_id: int, numbers: Iterable[str]) -> dict[str, str]:
        """{e164: that recipient's own text} for these numbers of a personalised request (empty otherwise)."""
        wanted = list(numbers)
        if not wanted:
            return {}
        cursor = self._store.db.conn.execute(
            f"SELECT e164, message FROM request_recipients WHERE request_id = ? AND message IS NOT NULL "
            f"AND e164 IN ({', '.join('?' for _ in wanted)})", [request_id, *wanted],
        )
        return {row[0]: row[1] for row in cursor}

    def image(self, request_id: int) -> bytes | None:
        rows = list(self._store.db.query("SELECT image FROM requests WHERE id = ?", [request_id]))
        return rows[0]["image"] if rows else None

    def transition(
        self, request_id: int, from_states: Iterable[RequestState], to_state: RequestState, **fields: Any
    ) -> bool:
        """Move a request to `to_state` only if it is in one of `from_states`: one conditional UPDATE whose
        row count says whether this caller won. Extra `fields` are written in the same statement."""
        return self._store.move_state("requests", {"id": request_id}, [s.value for s in from_states], to_state.value,
                                      fields)

    def add_part_outcome(
        self, request_id: int, *, batch_id: str | None, sent: int | None, cost: float | None, unsent: int | None,
        credit: float | None, dropped: int, now: float,
    ) -> None:
        """Add one part's outcome to the request's totals (in the part's own transaction, so the totals
        always equal the sum of the recorded parts). The first part's batch becomes the request's
        `batch_id`: the id people quote, and the batch whose summary message stands for the request."""
        with self._store.immediate() as db:
            db.execute(
                "UPDATE requests SET batch_id = COALESCE(batch_id, ?), "
                "sent_count = CASE WHEN ? IS NULL THEN sent_count ELSE COALESCE(sent_count, 0) + ? END, "
                "cost = CASE WHEN ? IS NULL THEN cost ELSE COALESCE(cost, 0) + ? END, "
                "unsent = CASE WHEN ? IS NULL THEN unsent ELSE COALESCE(unsent, 0) + ? END, "
                "credit_after = COALESCE(?, credit_after), optout_skipped = optout_skipped + ?, updated_at = ? "
                "WHERE id = ?",
                [batch_id, sent, sent, cost, cost, unsent, unsent, credit, dropped, now, request_id],
            )

    def update(self, request_id: int, **fields: Any) -> None:
        """Write fields that are not a state change (e.g. the approval card's ts)."""
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._store.immediate() as db:
            db.execute(f"UPDATE requests SET {assignments} WHERE id = ?", [*fields.values(), request_id])

    def count_by_state(self) -> dict[str, int]:
        return {
            r["state"]: r["n"]
            for r in self._store.db.query("SELECT state, COUNT(*) AS n FROM requests GROUP BY state")
        }

    def audit_rows(self, start: float, end: float) -> Iterator[dict[str, Any]]:
        """Every recipient of every request created in [start, end), with its delivery if the request was
        sent, in request then send order: the audit export. A generator over one cursor, so a
        10,000-recipient request streams instead of being loaded."""
        yield from self._store.db.query(
            "SELECT r.id AS request_id, r.created_at, r.requester, r.decided_by, r.decided_at, r.state, r.kind, "
            "COALESCE(p.batch_id, r.batch_id) AS batch_id, r.cost AS request_cost, r.sent_count, rr.e164, rr.name, "
            "d.status_code, d.cost AS delivery_cost "
            "FROM requests r JOIN request_recipients rr ON rr.request_id = r.id "
            "LEFT JOIN request_parts p ON p.request_id = r.id "
            "AND rr.position BETWEEN p.first_position AND p.last_position "
            "LEFT JOIN deliveries d ON d.batch_id = COALESCE(p.batch_id, r.batch_id) AND d.mobile = rr.e164 "
            "WHERE r.created_at >= ? AND r.created_at < ? ORDER BY r.id, rr.position",
            [start, end],
        )
