"""A request's delivery summary as one typed read model: the thread's summary message, `/sms status` and
App Home all show the same figures, read the same way (every batch of the request counted together).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from every8d.status import Outcome, status_for
from services.ports import Clock
from services.tracking import request_batches
from storage import Batch, BatchState, Delivery, SendRequest, Store

#: `#12`, `R12`, `12`: a request number (anything else is read as a batch id).
_REQUEST_NUMBER = re.compile(r"#?R?\d+", flags=re.IGNORECASE)
#: Open batches read live for `/sms status` (a request of many parts shows the rest as last polled).
LIVE_POLLS = 5

log = logging.getLogger("every8d_bot.services")


@dataclass(frozen=True)
class RequestSummary:
    """What a request's summary shows. `lead` is its first batch (the one whose message holds the summary),
    carrying the state of all its batches together; `failures` are the first failed recipients."""

    request: SendRequest
    lead: Batch
    batch_ids: list[str]
    counts: dict[int, int]
    failures: list[Delivery]
    replied: int
    opted_out: int

    @property
    def state(self) -> BatchState:
        return self.lead.state

    @property
    def batch_count(self) -> int:
        return len(self.batch_ids)


def request_summary(store: Store, request_id: int, *, failures_listed: int = 0) -> RequestSummary | None:
    """The summary of a request, or None before any of its parts was accepted (no batch yet)."""
    request = store.requests.get(request_id)
    seen = request_batches(store, request_id) if request is not None else None
    if request is None or seen is None:
        return None
    counts = store.batches.counts(*seen.batch_ids)
    failed = [code for code in counts if status_for(code).outcome is Outcome.FAILED]
    failures = (store.batches.deliveries(seen.batch_ids, codes=failed, limit=failures_listed)
                if failed and failures_listed else [])
    return RequestSummary(
        request=request, lead=replace(seen.lead, state=seen.state), batch_ids=seen.batch_ids, counts=counts,
        failures=failures, replied=store.replies.repliers(seen.batch_ids),
        opted_out=store.optouts.from_batches(seen.batch_ids),
    )


@dataclass(frozen=True)
class RequestStatus:
    """What `/sms status` shows for a request: its summary once a part was accepted (a batch exists), else
    only the request (and so its state)."""

    request: SendRequest
    summary: RequestSummary | None


class RequestLookup:
    """The reads `/sms status`, `/sms scheduled` and App Home share: a request found by what people type,
    its batches, its summary, and the scheduled sends not gone out yet. One place, so the command and
    Home cannot list different things. `poll` reads a batch's reports from EVERY8D now
    (`TrackingService.poll_batch`); without it `status` shows what is stored."""

    def __init__(self, store: Store, clock: Clock, *, poll: Callable[[Batch], object] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.poll = poll

    def status(self, ref: str, *, failures_listed: int = 0, live_polls: int = LIVE_POLLS) -> RequestStatus | None:
        """The request `ref` names (see `find`) with its summary, its first `live_polls` open batches read
        live first; None when nothing matches. When EVERY8D cannot be reached, what is stored is shown:
        a status question never fails because the platform is slow. Calls EVERY8D: run it off the ack."""
        request = self.find(ref)
        if request is None:
            return None
        batches = self.batches(request.id)
        if not batches:
            return RequestStatus(request, None)
        try:
            for batch in [b for b in batches if b.state is BatchState.OPEN][:live_polls]:
                if self.poll is not None:
                    self.poll(batch)
        except Exception as exc:  # noqa: BLE001 - show what is stored when EVERY8D cannot be reached
            log.info("live status check failed: %s", type(exc).__name__)
        return RequestStatus(request, self.summary(request.id, failures_listed=failures_listed))

    def find(self, ref: str) -> SendRequest | None:
        """The request a reference names: a number (`#12`, `R12`, `12`) or any of its batches' ids."""
        if _REQUEST_NUMBER.fullmatch(ref):
            return self.store.requests.get(int(re.sub(r"\D", "", ref)))
        return self.store.requests.by_batch(ref)

    def batches(self, request_id: int) -> list[Batch]:
        """Every batch of the request (one per part EVERY8D accepted), oldest first."""
        return self.store.batches.of_request(request_id)

    def summary(self, request_id: int, *, failures_listed: int = 0) -> RequestSummary | None:
        """`request_summary` over this store."""
        return request_summary(self.store, request_id, failures_listed=failures_listed)

    def scheduled(self) -> list[SendRequest]:
        """Requests EVERY8D holds for a time still to come (cancellable), the soonest first."""
        return self.store.requests.scheduled_not_yet_sent(self.clock())
