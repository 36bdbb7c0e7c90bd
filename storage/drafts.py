"""Compose drafts between the modal's steps (compose -> preview -> request approval).

A modal's private_metadata holds 3,000 characters; a draft with thousands of numbers or an image
does not fit, so it lives here and the modal carries only its id."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.db import Store

#: Drafts older than this are removed when new ones are saved (a modal left open for a day is stale).
DRAFT_TTL_SECONDS = 24 * 3600


class Drafts:
    def __init__(self, store: Store) -> None:
        self._store = store

    def save(self, user_id: str, payload: dict[str, Any], *, image: bytes | None = None) -> str:
        draft_id = uuid.uuid4().hex
        now = time.time()
        with self._store.immediate() as db:
            db.execute("DELETE FROM drafts WHERE created_at < ?", [now - DRAFT_TTL_SECONDS])
            db.execute(
                "INSERT INTO drafts (id, user_id, created_at, payload_json, image) VALUES (?, ?, ?, ?, ?)",
                [draft_id, user_id, now, json.dumps(payload, ensure_ascii=False), image],
            )
        return draft_id

    def load(self, draft_id: str, user_id: str) -> tuple[dict[str, Any], bytes | None] | None:
        """The draft, only for the user who made it."""
        rows = list(
            self._store.db.query(
                "SELECT payload_json, image FROM drafts WHERE id = ? AND user_id = ?", [draft_id, user_id]
            )
        )
        if not rows:
            return None
        return json.loads(rows[0]["payload_json"]), rows[0]["image"]

    def delete(self, draft_id: str) -> None:
        with self._store.immediate() as db:
            db.execute("DELETE FROM drafts WHERE id = ?", [draft_id])

    def answer_of(self, user_id: str, channel: str, ts: str) -> str | None:
        """The id of `user_id`'s kept thread answer for the message `ts` in `channel` (services/drafts.py
        `keep_answer`), or None."""
        rows = list(self._store.db.query(
            "SELECT id FROM drafts WHERE user_id = ? AND json_extract(payload_json, '$.channel') = ? "
            "AND json_extract(payload_json, '$.ts') = ? AND json_extract(payload_json, '$.reply_id') IS NOT NULL "
            "ORDER BY created_at DESC LIMIT 1", [user_id, channel, ts]))
        return str(rows[0]["id"]) if rows else None

