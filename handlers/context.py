"""Everything a listener needs, handed over once by bot/app.py: the voice, the services and a background
runner. No database handle: listeners turn Slack events into service calls and render what the services return
(a draft's checks, keeping and submitting are services/drafts.py's; lists and lookups are read services')."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from every8d.limits import DEFAULT_LIMITS, Limits
from handlers.texts import Voice
from services.approval import ApprovalService
from services.audiences import AudienceService
from services.autoreply import AutoReplyService
from services.budgets import BudgetService
from services.cancel import CancelService
from services.conversations import AnswerService
from services.credit import CreditService
from services.drafts import DraftService
from services.home import HomeReads
from services.optout import OptOutService
from services.policy import Policy
from services.ports import Clock, Runner
from services.reports import ReportService
from services.requests import RequestService
from services.series import SeriesService
from services.summary import RequestLookup
from services.tracking import TrackingService


@dataclass
class HandlerContext:
    voice: Voice
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
    #: A person's draft from check to request, the quiet-hours choice, templates (services/drafts.py).
    drafts: DraftService
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
