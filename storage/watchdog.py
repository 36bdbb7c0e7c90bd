"""The watchdog's questions to the database: what has stood still for longer than it should, and can the
database still be written at all. Read-only queries except `heartbeat` (services/watchdog.py decides)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from storage.models import PartState, RequestState

if TYPE_CHECKING:
    from storage.db import Store

#: The settings key the watchdog (and the start) writes to prove the database takes a committed write.
HEARTBEAT_KEY = "watchdog_heartbeat"
#: At most this many findings of one kind per run: a backlog is worked through over a few runs.
BATCH = 200
#: `after` when none is given: no time is that far ahead.
NEVER = 1e18

# Each "not changed since `before`" question also takes `after`: a time later than that was written while
# the clock ran ahead and was then set back; it has stood still for longer than anyone can tell, and the
# row would otherwise be passed by until the clock caught up with it (hours, in silence).


def heartbeat(store: Store, now: float | None = None) -> None:
    """Commit one small write. A rolled-back probe is not enough: on a full disk SQLite keeps an
    uncommitted change in memory, so only a commit proves that the file takes writes."""
    with store.immediate() as db:
        db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [HEARTBEAT_KEY, repr(now or time.time())],
        )


def stale_requests(store: Store, state: RequestState, before: float, after: float = NEVER) -> list[int]:
    """Requests in `state` whose row has not changed since `before` (or carries a time after `after`)."""
    rows = store.rows(
        "SELECT id FROM requests WHERE state = ? AND (updated_at < ? OR updated_at > ?) ORDER BY id LIMIT ?",
        [state.value, before, after, BATCH],
    )
    return [int(r["id"]) for r in rows]


def stuck_in_sending_without_a_part_in_flight(store: Store, before: float, after: float = NEVER) -> list[int]:
    """Requests `sending` since before `before` with no part claimed: stopped between two parts, nothing
    in doubt (the parts not yet sent were never claimed)."""
    rows = store.rows(
        "SELECT r.id FROM requests r WHERE r.state = ? AND (r.updated_at < ? OR r.updated_at > ?) AND NOT EXISTS ("
        "SELECT 1 FROM request_parts p WHERE p.request_id = r.id AND (p.state = ? OR "
        "(p.updated_at >= ? AND p.updated_at <= ?))) ORDER BY r.id LIMIT ?",
        [RequestState.SENDING.value, before, after, PartState.SENDING.value, before, after, BATCH],
    )
    return [int(r["id"]) for r in rows]


def parts_claimed_before(store: Store, before: float, after: float = NEVER) -> list[tuple[int, int]]:
    """(request id, part) of parts claimed (`sending`) before `before` (or after `after`), never recorded since."""
    rows = store.rows(
        "SELECT request_id, part FROM request_parts WHERE state = ? AND (COALESCE(claimed_at, updated_at) < ? "
        "OR COALESCE(claimed_at, updated_at) > ?) ORDER BY request_id, part LIMIT ?",
        [PartState.SENDING.value, before, after, BATCH],
    )
    return [(int(r["request_id"]), int(r["part"])) for r in rows]


def posts_failing_since(store: Store, before: float, after: float = NEVER) -> list[dict[str, Any]]:
    """Pending posts queued before `before` (or after `after`) that Slack refused at least once: id, kind,
    channel, attempts, last_error, created_at, next_attempt_at."""
    return store.rows(
        "SELECT id, kind, channel, attempts, last_error, created_at, next_attempt_at FROM outbox "
        "WHERE state = 'pending' AND attempts > 0 AND (created_at < ? OR created_at > ?) ORDER BY id LIMIT ?",
        [before, after, BATCH],
    )



def posts_set_aside_untold(store: Store, since: float, *, told_prefix: str, skip_kind: str,
                           limit: int = 20) -> list[dict[str, Any]]:
    """Posts set aside (`dead`) since about `since` with no post keyed `told_prefix` + their id yet (the
    alert about them): id, kind, channel, attempts, last_error, request_id (from the post's reference,
    None for posts of no request). Posts of `skip_kind` are left out (the alerts themselves)."""
    return store.rows(
        "SELECT o.id, o.kind, o.channel, o.attempts, o.last_error, json_extract(o.ref_json, '$.request_id') "
        "AS request_id FROM outbox o WHERE o.state = 'dead' AND o.kind != ? AND o.next_attempt_at >= ? "
        "AND NOT EXISTS (SELECT 1 FROM outbox a WHERE a.dedupe_key = ? || o.id) ORDER BY o.id LIMIT ?",
        [skip_kind, since, told_prefix, limit],
    )


def last_set_aside(store: Store, *, kind: str, channel: str, since: float) -> dict[str, Any] | None:
    """The latest post of `kind` to `channel` set aside since about `since` (id, last_error), or None."""
    rows = store.rows(
        "SELECT id, last_error FROM outbox WHERE state = 'dead' AND kind = ? AND channel = ? AND next_attempt_at >= ? "
        "ORDER BY id DESC LIMIT 1",
        [kind, channel, since],
    )
    return rows[0] if rows else None
