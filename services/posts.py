"""What each outbox post shows, read when it goes out, and where it landed, written once Slack took it.

The renderer (handlers/notifications.py) turns an outbox item into one Slack call. It used to read the
store itself (requests, recipients, parts, batches, replies, series) and write back the message ts of
the cards it posted, so the Slack layer knew the tables. This service is that knowledge in one place:
one typed read model per kind of post, built from the current state (a post delayed by an outage still
shows the truth), and one named method per thing the bot remembers about a posted message.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.budgets import BudgetService, BudgetVerdict
from services.reports import WeeklyReport, weekly_summary
from services.summary import RequestSummary, request_summary
from services.tracking import summary_digest
from storage import Reply, RequestPart, SendRequest, Store
from storage.series import SeriesRow


@dataclass(frozen=True)
class ApprovalCardView:
    """A request's approval card: the request, the first recipients shown, its EVERY8D calls and, with
    budgets, what approving it would leave (or that it needs the override)."""

    request: SendRequest
    recipients: list[str]
    parts: list[RequestPart]
    budget: BudgetVerdict | None


@dataclass(frozen=True)
class SendResultView:
    """The first reply in a request's thread: the request and its parts as sent (or failed)."""

    request: SendRequest
    parts: list[RequestPart]


@dataclass(frozen=True)
class ReplyView:
    """An SMS reply and the request it answers (None: it matched no batch of ours)."""

    reply: Reply
    request: SendRequest | None


class PostService:
    """Read models of the outbox's posts and the records of where they landed in Slack."""

    def __init__(self, store: Store, *, timezone: str, budgets: BudgetService | None = None) -> None:
        self.store = store
        #: The bot's time zone: the weekly report's days are local days.
        self.timezone = timezone
        #: Monthly budgets (None: none are kept, and cards show no budget line).
        self.budgets = budgets

    # -- what a post shows -------------------------------------------------------------------------

    def request(self, request_id: int) -> SendRequest | None:
        """The request a thread post, a direct message or a Workflow Builder outcome is about."""
        return self.store.requests.get(request_id)

    def approval_card(self, request_id: int, *, recipients_shown: int) -> ApprovalCardView | None:
        """What the request's card shows (None: the request is gone, nothing to post)."""
        request = self.store.requests.get(request_id)
        if request is None:
            return None
        budget = self.budgets.check_request(request) if self.budgets is not None else None
        return ApprovalCardView(request, self.store.requests.recipients(request.id)[:recipients_shown],
                                self.store.parts.of_request(request.id), budget)

    def send_result(self, request_id: int) -> SendResultView | None:
        request = self.store.requests.get(request_id)
        if request is None:
            return None
        return SendResultView(request, self.store.parts.of_request(request.id))

    def batch_summary(self, batch_id: str, *, failures_listed: int) -> RequestSummary | None:
        """The summary of the request this batch belongs to: every batch of it counted together (None
        before the request has one, or for a batch that is not ours)."""
        request = self.store.requests.by_batch(batch_id)
        if request is None:
            return None
        return request_summary(self.store, request.id, failures_listed=failures_listed)

    def reply(self, reply_id: int) -> ReplyView | None:
        reply = self.store.replies.get(reply_id)
        if reply is None:
            return None
        request = self.store.requests.by_batch(reply.batch_id) if reply.batch_id else None
        return ReplyView(reply, request)

    def series(self, series_id: int) -> SeriesRow | None:
        """A recurring send, for its card and the notes in its thread."""
        return self.store.series.get(series_id)

    def weekly_report(self, start: float, end: float, label: str) -> WeeklyReport:
        """The figures of a week, counted when its report goes out (a late post counts what came in since)."""
        return weekly_summary(self.store, start, end, timezone=self.timezone, label=label)

    # -- where a post landed -----------------------------------------------------------------------

    def approval_card_posted(self, request_id: int, ts: str) -> None:
        """The card is this message: later changes update it, and answers typed there find the request."""
        self.store.requests.update(request_id, approval_ts=ts)

    def summary_posted(self, summary: RequestSummary, ts: str) -> None:
        """The summary is this message, showing these figures: the poller re-posts it only when they move."""
        self.store.batches.set_summary(summary.lead.batch_id, ts=ts, digest=summary_digest(summary.state, summary.counts))

    def series_card_posted(self, series_id: int, ts: str) -> None:
        """The series' card is this message; its runs and notes go in its thread."""
        self.store.series.set_posted(series_id, ts)
