"""Monthly point budgets per channel or per requester.

Approvers set them (`/sms budget`); every change is audited. A draft is checked against the budgets of
its channel and its requester before it is submitted (the preview says what is left), and a request again
when it is decided, under the write lock, so two approvals at once cannot both spend the last points:

- within every budget: nothing changes;
- over one: BOT_BUDGET_OVER=`approve` (default) lets it wait for an approver who must choose "Approve over
  budget" (the plain Approve refuses with a word, auto-approval never approves it); `refuse` stops the
  draft in the preview instead (a request that still goes over, e.g. a race between two drafts, waits for
  that override like in `approve` mode: nothing over a budget ever goes out without a person choosing it).

Months are calendar months in BOT_TIMEZONE; a request counts in the month it was made (storage/budgets.py
says what it counts for in each state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from every8d.problems import Problem
from services.permissions import Action, may
from services.policy import Policy
from services.ports import Clock
from storage import SendRequest, Store
from storage.budgets import SCOPES
from storage.models import Budget

#: BOT_BUDGET_OVER values.
OVER_APPROVE = "approve"
OVER_REFUSE = "refuse"
#: The largest budget accepted (a typo such as 50000000 is refused rather than silently lifting every cap).
MAX_POINTS = 10_000_000


@dataclass(frozen=True)
class BudgetUse:
    """A budget and the points counted against it this month (before the request being checked)."""

    budget: Budget
    used: float

    @property
    def left(self) -> float:
        return self.budget.points - self.used


@dataclass(frozen=True)
class BudgetVerdict:
    """What a cost does to the budgets that apply: `uses` (channel's, requester's), each with its use."""

    cost: float
    uses: list[BudgetUse] = field(default_factory=list)

    @property
    def applies(self) -> bool:
        return bool(self.uses)

    @property
    def tightest(self) -> BudgetUse | None:
        """The budget with the fewest points left (the one that decides)."""
        return min(self.uses, key=lambda u: u.left, default=None)

    @property
    def left_after(self) -> float | None:
        tightest = self.tightest
        return None if tightest is None else tightest.left - self.cost

    @property
    def over_by(self) -> float:
        """Points over the tightest budget (0: within every budget)."""
        after = self.left_after
        return 0.0 if after is None or after >= 0 else round(-after, 1)

    @property
    def over(self) -> bool:
        return self.over_by > 0

    def audit_detail(self) -> dict:
        tightest = self.tightest
        assert tightest is not None
        return {"scope": tightest.budget.scope, "key": tightest.budget.key, "budget": tightest.budget.points,
                "used": round(tightest.used, 1), "points": self.cost, "over_by": self.over_by}


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    REMOVED = "removed"
    NOT_FOUND = "not_found"
    NOT_APPROVER = "not_approver"
    BAD_POINTS = "bad_points"


@dataclass(frozen=True)
class ChangeResult:
    change: Change
    previous: float | None = None


class BudgetService:
    def __init__(self, store: Store, policy: Policy, clock: Clock, tz: ZoneInfo) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.tz = tz

    @property
    def refuse(self) -> bool:
        """BOT_BUDGET_OVER=refuse: a draft over a budget is refused in the preview."""
        return self.policy.budget_over == OVER_REFUSE

    # -- the month -------------------------------------------------------------------------------------

    def month(self, at: float | None = None) -> tuple[float, float]:
        """[start, end) of the calendar month holding `at` (default now), in BOT_TIMEZONE, as epoch seconds."""
        local = datetime.fromtimestamp(self.clock() if at is None else at, tz=self.tz)
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start.timestamp(), end.timestamp()

    # -- checking -------------------------------------------------------------------------------------

    def check(self, cost: float, *, requester: str, channel: str, at: float | None = None,
              before_request: int | None = None) -> BudgetVerdict:
        """`cost` points asked by `requester` from `channel` in the month of `at` (default now), against the
        budgets that apply, with what each has used (as `before_request` sees it: storage/budgets.py)."""
        budgets = self.store.budgets.applying(channel=channel, requester=requester)
        if not budgets:
            return BudgetVerdict(cost)
        start, end = self.month(at)
        uses = [BudgetUse(b, self.store.budgets.used(b.scope, b.key, start, end, before_request=before_request))
                for b in budgets]
        return BudgetVerdict(cost, uses)

    def check_request(self, request: SendRequest) -> BudgetVerdict:
        """A stored request against its month's budgets: what is spent or approved, and the requests waiting
        ahead of it (a later request never makes an earlier one over budget)."""
        return self.check(request.points, requester=request.requester, channel=request.origin_channel,
                          at=request.created_at, before_request=request.id)

    def refusal(self, verdict: BudgetVerdict) -> Problem | None:
        """In refuse mode, the problem that stops a draft over a budget (shown under its recipients). Worded
        without mentions: a modal's field error shows text literally."""
        tightest = verdict.tightest
        if not (self.refuse and verdict.over) or tightest is None:
            return None
        zh, en = ("此頻道", "this channel's") if tightest.budget.scope == "channel" else ("您", "your")
        left = max(tightest.left, 0)
        return Problem(
            "recipients",
            f"超出{zh}的本月預算 {verdict.over_by:,.1f} 點（剩餘 {left:,.1f} 點），無法送出；請減少收件人或內容，"
            "或請核准者調整預算（/sms budget）。",
            f"This is {verdict.over_by:,.1f} points over {en} budget for this month ({left:,.1f} left) and cannot "
            "be sent; send to fewer people or a shorter text, or ask an approver to change the budget (/sms budget).",
        )

    # -- managing --------------------------------------------------------------------------------------

    def set(self, actor: str, scope: str, key: str, points: float) -> ChangeResult:
        """Create or change a budget (approvers only; audited)."""
        if not may(self.policy, actor, Action.MANAGE_LISTS):
            return ChangeResult(Change.NOT_APPROVER)
        if scope not in SCOPES or not (0 < points <= MAX_POINTS):
            return ChangeResult(Change.BAD_POINTS)
        now = self.clock()
        with self.store.immediate():
            previous = self.store.budgets.set(scope, key, points, actor=actor, now=now)
            self.store.audit.record(actor, "budget_set", now=now, scope=scope, key=key, points=points,
                                    previous=previous)
        return ChangeResult(Change.CREATED if previous is None else Change.UPDATED, previous)

    def remove(self, actor: str, scope: str, key: str) -> ChangeResult:
        """Delete a budget (approvers only; audited)."""
        if not may(self.policy, actor, Action.MANAGE_LISTS):
            return ChangeResult(Change.NOT_APPROVER)
        now = self.clock()
        with self.store.immediate():
            previous = self.store.budgets.remove(scope, key)
            if previous is not None:
                self.store.audit.record(actor, "budget_removed", now=now, scope=scope, key=key, previous=previous)
        return ChangeResult(Change.NOT_FOUND if previous is None else Change.REMOVED, previous)

    def uses(self) -> list[BudgetUse]:
        """Every budget with its use this month (the list and App Home)."""
        start, end = self.month()
        return [BudgetUse(b, self.store.budgets.used(b.scope, b.key, start, end)) for b in self.store.budgets.list()]

