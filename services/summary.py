"""A request's delivery summary as one typed read model: the thread's summary message, `/sms status` and
App Home all show the same figures, read the same way (every batch of the request counted together).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from every8d.status import Outcome, status_for
from services.tracking import request_batches
from storage import Batch, BatchState, Delivery, SendRequest, Store


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
