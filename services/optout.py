"""Opt-out: a recipient who texts back 退訂, 取消訂閱, STOP or UNSUBSCRIBE is never texted again.

Taiwan's anti-spam practice and plain courtesy require honouring "stop" replies without a person
having to notice them: the reply puts the number on the list (storage/optouts.py), the batch thread
says so once, and every later send (compose preview and again at send time, see services/compose.py and
services/sending.py) leaves the number out and says how many were left out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from every8d.phones import display, mask
from services import notices
from services.policy import Policy
from services.ports import Clock
from storage import SendRequest, Store
from storage.models import OptOut

#: The words that mean "stop texting me", keyed by their normalized form (see `normalize`).
KEYWORDS: dict[str, str] = {k.casefold(): k for k in ("退訂", "取消訂閱", "STOP", "UNSUBSCRIBE")}

_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC (full-width ＳＴＯＰ becomes STOP), case-folded, with every space removed ("退 訂", " stop ")."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text)).casefold()


def is_opt_out(text: str) -> str | None:
    """The keyword this reply is (`"STOP"`), or None.

    Only a reply that is *exactly* one keyword counts (any case, with spaces anywhere): a longer sentence
    that merely contains one, such as "please don't stop the reminders", is NOT an opt-out, because
    dropping someone who did not ask to leave would silently lose messages they want.
    """
    return KEYWORDS.get(normalize(text))


def handle_reply(
    store: Store, policy: Policy, *, e164: str, text: str, batch_id: str | None, request: SendRequest | None,
    now: float,
) -> bool:
    """React to a stored reply: if it is an opt-out, list the number and confirm it in the batch's thread
    (once per number: a repeated STOP adds nothing). Runs inside the caller's transaction, so the listing
    and its note are written together with the reply. True when the number was newly listed."""
    keyword = is_opt_out(text)
    if keyword is None:
        return False
    if not store.optouts.add(e164, source="reply", keyword=keyword, actor=e164, batch_id=batch_id, now=now):
        return False
    store.audit.record("reply", "optout_added", request_id=request.id if request else None, now=now,
                       number=e164, keyword=keyword, batch_id=batch_id)
    if request is not None:
        shown = mask(e164) if policy.mask_numbers else display(e164)
        notices.thread_note(
            store, request.id, request.posts_channel,
            f"🚫 已將 {shown} 加入退訂名單，之後的發送會自動略過。",
            f"🚫 {shown} was added to the opt-out list; later sends will skip it.",
            key=f"optout:{e164}",
        )
    return True


def add_number(store: Store, *, actor: str, e164: str, now: float) -> bool:
    """An admin puts a number on the list (with the audit record, in one transaction); False if already there."""
    with store.immediate():
        added = store.optouts.add(e164, source="admin", actor=actor, now=now)
        if added:
            store.audit.record(actor, "optout_added", now=now, number=e164)
    return added


def remove_number(store: Store, *, actor: str, e164: str, now: float) -> bool:
    """An admin takes a number off the list; False if it was not on it."""
    with store.immediate():
        removed = store.optouts.remove(e164)
        if removed:
            store.audit.record(actor, "optout_removed", now=now, number=e164)
    return removed


@dataclass(frozen=True)
class OptOutList:
    """What `/sms optout` lists: how many numbers in all and the newest `limit` entries."""

    total: int
    entries: list[OptOut]


class OptOutService:
    """The opt-out list as the Slack surface reads and changes it (`/sms optout`): the store and the clock
    stay inside, and each change is audited in the same transaction (`add_number`, `remove_number`)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def listing(self, limit: int) -> OptOutList:
        """The count and the newest `limit` entries (an empty list reads no entries)."""
        total = self.store.optouts.count()
        return OptOutList(total=total, entries=self.store.optouts.list(limit=limit) if total else [])

    def add(self, *, actor: str, e164: str) -> bool:
        """An admin puts a number on the list now; False if it was already there."""
        return add_number(self.store, actor=actor, e164=e164, now=self.clock())

    def remove(self, *, actor: str, e164: str) -> bool:
        """An admin takes a number off the list now; False if it was not on it."""
        return remove_number(self.store, actor=actor, e164=e164, now=self.clock())
