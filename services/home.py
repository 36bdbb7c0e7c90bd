"""What App Home reads, as typed values: the requests waiting for a decision, the newest requests' delivery
summaries, and the reports kept aside. The scheduled sends come from `services.summary.RequestLookup`
(the same read as `/sms scheduled`), the credit from services/credit.py, budgets from services/budgets.py.
Who sees which button stays a `services.permissions.may` question asked where the buttons are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.summary import RequestSummary, request_summary
from storage import RequestState, SendRequest, Store
from storage.models import KeptReport


@dataclass(frozen=True)
class PendingRequests:
    """How many requests wait for approval in all, and the oldest `limit` of them."""

    total: int
    requests: list[SendRequest]


class HomeReads:
    """Read-only: nothing here changes the store, so Home can be drawn as often as Slack asks."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def pending(self, limit: int) -> PendingRequests:
        """The requests waiting for approval: the count and the oldest `limit` (first come, first decided)."""
        total = self.store.requests.count_by_state().get(RequestState.PENDING_APPROVAL.value, 0)
        return PendingRequests(total=total,
                               requests=self.store.requests.in_states(RequestState.PENDING_APPROVAL, limit=limit))

    def recent(self, limit: int) -> list[RequestSummary]:
        """The summaries of the `limit` requests with the newest batches, newest first: a request sent in
        parts is one summary over all its batches."""
        summaries = (request_summary(self.store, request_id) for request_id in self.store.batches.recent_requests(limit))
        return [summary for summary in summaries if summary is not None]

    def kept_reports(self, limit: int) -> list[KeptReport]:
        """Reports pushed for batches this bot never sent, or numbers a batch never had, newest first."""
        return self.store.replies.unmatched_reports(limit=limit)
