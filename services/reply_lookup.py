"""Reply lookup: read each batch's replies with getReplyMessage while it is in its reply window.

Why: replies reach the bot by push callback, but a bot behind a firewall gets no pushes, and
getDeliveryStatus lists a reply only as a 999 row without its text (no revision has a text column). The
2021 revision's getReplyMessage lists a batch's replies, so a scheduled job asks it for every SMS batch still
open or inside BOT_REPLY_WINDOW_HOURS after it completed.

Every reply found goes through `TrackingService.ingest_reply`, the one door replies take whoever reports
them, so the same reply seen by a push, a poll and a lookup is one reply in the thread (same batch, number,
time to the second and text). Rows EVERY8D's line format broke (a TAB or line break in the reply) are
skipped and counted in the log; the push or poll still brings those.

An account whose platform has no getReplyMessage (404, or an answer that is not its format) is reported
once, "not supported by this account's platform", and the job stops calling it (services/capabilities.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from every8d.endpoints import REPLIES
from every8d.errors import CredentialError, Every8dError, UnsupportedEndpointError
from every8d.results import ReplyPage
from services import capabilities
from services.ports import Clock
from services.tracking import TrackingService, normalize_mobile
from storage import Store

log = logging.getLogger("every8d_bot.reply_lookup")

#: After a wrong-login answer the job waits this long (EVERY8D locks an account after repeated failed logins;
#: polling backs off the same way).
CREDENTIAL_PAUSE_SECONDS = 1800.0
#: Batches read per run (the oldest tracked first are not favoured: the list is small in practice).
MAX_BATCHES_PER_RUN = 500


class ReplyGateway(Protocol):
    """The one call this workflow makes (every8d.client.Every8dClient.get_replies)."""

    def get_replies(self, batch_id: str) -> ReplyPage: ...


@dataclass(frozen=True)
class LookupRun:
    """What one run did: batches asked, replies new to the bot, suspect rows skipped, batches that failed,
    and whether the endpoint is (now) known to be missing on this platform."""

    batches: int = 0
    new_replies: int = 0
    suspect: int = 0
    failed: int = 0
    unsupported: bool = False


class ReplyLookupService:
    def __init__(self, store: Store, gateway: object, tracking: TrackingService, clock: Clock,
                 *, enabled: bool = True) -> None:
        """`enabled` is EVERY8D_REPLY_LOOKUP; a gateway without `get_replies` (a test fake) is treated as
        a platform without the endpoint, quietly."""
        self.store = store
        self.gateway = gateway
        self.tracking = tracking
        self.clock = clock
        self.enabled = enabled
        self._failing: set[str] = set()
        #: Suspect rows last seen per batch: a broken row stays in EVERY8D's list, so only new ones are logged.
        self._suspect: dict[str, int] = {}
        self._paused_until = 0.0

    def run(self) -> LookupRun:
        """Ask EVERY8D for the replies of every SMS batch in its reply window, once each."""
        now = self.clock()
        if not self.enabled or capabilities.is_unsupported(self.store, REPLIES, now):
            return LookupRun(unsupported=self.enabled)
        if now < self._paused_until:
            return LookupRun()
        lookup = getattr(self.gateway, "get_replies", None)
        if lookup is None:
            return LookupRun(unsupported=True)
        batches = new = suspect = failed = 0
        for batch_id in self.store.batches.tracked(now)[:MAX_BATCHES_PER_RUN]:
            batch = self.store.batches.get(batch_id)
            if batch is None or batch.kind != "sms":
                continue  # getReplyMessage is an SMS endpoint; MMS replies come by push or poll
            batches += 1
            try:
                page: ReplyPage = lookup(batch_id)
            except UnsupportedEndpointError as exc:
                capabilities.mark_unsupported(self.store, REPLIES, exc, self.clock())
                return LookupRun(batches, new, suspect, failed, unsupported=True)
            except CredentialError as exc:  # never hammer a wrong login: pause the job
                self._paused_until = self.clock() + CREDENTIAL_PAUSE_SECONDS
                log.warning("reply lookup paused for %.0f min: %s", CREDENTIAL_PAUSE_SECONDS / 60, exc.describe("en"))
                return LookupRun(batches, new, suspect, failed + 1)
            except Every8dError as exc:
                failed += 1
                self._failed(batch_id, exc)
                continue
            self._works(batch_id)
            new += self._ingest(batch_id, page)
            suspect += page.suspect
            if page.suspect > self._suspect.get(batch_id, 0):
                log.warning("reply lookup: batch %s has %d reply rows with an unexpected field count (a TAB or line "
                            "break in a reply); skipped, push or polling still delivers them", batch_id, page.suspect)
            if page.suspect:
                self._suspect[batch_id] = page.suspect
        if batches and not failed:
            capabilities.mark_supported(self.store, REPLIES)
        if new:
            log.info("reply lookup: %d new replies from %d batches", new, batches)
        return LookupRun(batches, new, suspect, failed)

    def _ingest(self, batch_id: str, page: ReplyPage) -> int:
        stored = 0
        for reply in page.replies:
            at = reply.received_at.timestamp() if reply.received_at else None
            if self.tracking.ingest_reply(batch_id, normalize_mobile(reply.mobile), at, reply.text, source="lookup"):
                stored += 1
        return stored

    def _failed(self, batch_id: str, exc: Every8dError) -> None:
        """Logged once per failure streak of a batch, not every run."""
        if batch_id not in self._failing:
            self._failing.add(batch_id)
            log.warning("reply lookup for batch %s failed, will retry next run: %s", batch_id, exc.describe("en"))

    def _works(self, batch_id: str) -> None:
        self._failing.discard(batch_id)
