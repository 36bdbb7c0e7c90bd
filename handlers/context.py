"""Everything a listener needs, handed over once by bot/app.py: the voice, the services, the store for
read-only lookups, and a background runner. Listeners hold no business rule; they translate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from every8d.limits import DEFAULT_LIMITS, Limits
from handlers.texts import Voice
from services.approval import ApprovalService
from services.audiences import AudienceService, resolver
from services.autoreply import AutoReplyService
from services.budgets import BudgetService, BudgetVerdict
from services.cancel import CancelService
from services.compose import ComposeInput, Preview, prepare
from services.conversations import AnswerService
from services.credit import CreditService
from services.home import HomeReads
from services.optout import OptOutService
from services.policy import Policy
from services.ports import Clock, Runner
from services.reports import ReportService
from services.requests import RequestService
from services.series import SeriesService
from services.summary import RequestLookup
from services.tracking import TrackingService
from storage import Store


@dataclass
class HandlerContext:
    voice: Voice
    store: Store
    policy: Policy
    clock: Clock
    requests: RequestService
    approval: ApprovalService
    cancel: CancelService
    credit: CreditService
    tracking: TrackingService
    answers: AnswerService
    #: `/sms report` and `/sms audit`: figures, the CSV and their audit records.
    reports: ReportService
    runner: Runner
    bot_token: str
    #: The address book and templates (`/sms contacts`, `/sms templates`, the import, the chooser).
    audiences: AudienceService
    #: The opt-out list (`/sms optout`).
    optouts: OptOutService
    #: A request by number or batch id, its summary, the scheduled sends (`/sms status`, `/sms scheduled`, Home).
    lookup: RequestLookup
    #: App Home's other reads (pending, recent summaries, kept reports).
    home: HomeReads
    wake_poster: Callable[[], None] = lambda: None
    limits: Limits = DEFAULT_LIMITS
    file_timeout: float = 5.0
    #: Extra `/sms <word>` subcommands, added by feature modules in their `register(app, ctx)`:
    #: `ctx.subcommands[word] = handler`, called as `handler(ack, call)` (see handlers/commands.py).
    subcommands: dict[str, Callable] = field(default_factory=dict)
    #: Auto-reply rules (`/sms autoreply`); None where the bot has none (tests of other surfaces).
    autoreply: AutoReplyService | None = None
    #: Monthly point budgets (services/budgets.py); None: none are checked.
    budgets: BudgetService | None = None
    #: Recurring sends (services/series.py); None where a tool builds handlers without them.
    series: SeriesService | None = None

    def check(self, compose: ComposeInput, *, requester: str | None = None, channel: str = "") -> Preview:
        """`services.compose.prepare` with everything a Slack user's draft is checked against: the last
        credit, the opt-out list, the address book, the bot's time zone, numbers masked in problems; with
        `requester` (and the `channel` it comes from), the monthly budgets too (BOT_BUDGET_OVER=refuse: a
        draft over one gets a problem)."""
        preview = prepare(compose, clock=self.clock, last_credit=self.store.credit.latest(), limits=self.limits,
                          opted_out=self.store.optouts.among, resolve=resolver(self.store), tz=self.voice.tz,
                          show=self.voice.number, links=self.policy.registered_links)
        if requester is None or not preview.ok:
            return preview
        verdict = self.budget(preview, requester, channel)
        problem = self.budgets.refusal(verdict) if self.budgets is not None and verdict is not None else None
        return replace(preview, problems=[*preview.problems, problem]) if problem else preview

    def budget(self, preview: Preview, requester: str, channel: str) -> BudgetVerdict | None:
        """A checked draft against the budgets of its requester and channel this month (None: no budgets)."""
        if self.budgets is None or preview.quote is None:
            return None
        verdict = self.budgets.check(preview.quote.points, requester=requester, channel=channel)
        return verdict if verdict.applies else None
