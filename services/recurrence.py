"""Recurrence rules as pure date math: which local times a series runs at, in the bot's time zone.

A rule is a kind (daily, on chosen weekdays, monthly on a day), a time of day, a first date, and an end
(a last date, a number of occurrences, or both). Occurrences are numbered from the first one on or after
the first date; the count bounds that numbering, so an occurrence refused or missed still counts (the
dates the approver saw on the card are the dates the series keeps). Monthly on day 29-31 runs on the
month's last day in shorter months. No clock is read here: callers pass the moment they mean.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from every8d.problems import Problem

DAILY = "daily"
WEEKDAYS = "weekdays"
MONTHLY = "monthly"
KINDS = (DAILY, WEEKDAYS, MONTHLY)
MON_TO_FRI = frozenset(range(5))
#: The longest a series may run, and the most occurrences it may have (our rule, like MAX_SCHEDULE_DAYS).
MAX_SERIES_DAYS = 366
MAX_COUNT = 366
#: Monday first, as `date.weekday()` numbers them.
WEEKDAY_ZH = ("一", "二", "三", "四", "五", "六", "日")
WEEKDAY_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Rule:
    kind: str
    hour: int
    minute: int
    start: date
    timezone: str
    weekdays: frozenset[int] = field(default_factory=frozenset)
    month_day: int | None = None
    until: date | None = None
    count: int | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def days(self) -> frozenset[int]:
        """The weekdays a weekdays rule runs on (Monday to Friday when none were chosen)."""
        return self.weekdays or MON_TO_FRI

    def to_columns(self) -> dict[str, object]:
        """The series row's rule columns (storage/series.py)."""
        return {
            "rule_kind": self.kind, "time_of_day": f"{self.hour:02d}:{self.minute:02d}",
            "weekdays": ",".join(str(d) for d in sorted(self.weekdays)), "month_day": self.month_day,
            "start_date": self.start.isoformat(), "until_date": self.until.isoformat() if self.until else None,
            "max_runs": self.count, "timezone": self.timezone,
        }

    @classmethod
    def from_columns(cls, row: dict) -> Rule:
        hour, minute = (int(x) for x in row["time_of_day"].split(":"))
        return cls(
            kind=row["rule_kind"], hour=hour, minute=minute, start=date.fromisoformat(row["start_date"]),
            timezone=row["timezone"],
            weekdays=frozenset(int(d) for d in (row["weekdays"] or "").split(",") if d != ""),
            month_day=row["month_day"],
            until=date.fromisoformat(row["until_date"]) if row["until_date"] else None,
            count=row["max_runs"],
        )


def rule_from_first(kind: str, first: datetime, *, weekdays: frozenset[int] = frozenset(),
                    until: date | None = None, count: int | None = None) -> Rule:
    """The rule a person means by "repeat <kind> from this first send": its time of day, its date as the
    start (and, monthly, as the day of the month). `first` is aware, in the bot's time zone."""
    tz = first.tzinfo
    key = getattr(tz, "key", None) or "UTC"
    return Rule(kind=kind, hour=first.hour, minute=first.minute, start=first.date(), timezone=key,
                weekdays=frozenset(weekdays) if kind == WEEKDAYS else frozenset(),
                month_day=first.day if kind == MONTHLY else None, until=until, count=count)


def check(rule: Rule, now: float) -> list[Problem]:
    """What makes this rule unusable, each on the `repeat` field (or `repeat_until` / `repeat_count`)."""
    problems: list[Problem] = []
    if rule.kind not in KINDS:
        problems.append(Problem("repeat", "請選擇重複方式。", "Choose how the send repeats."))
        return problems
    if rule.until is None and rule.count is None:
        problems.append(Problem("repeat_until", "重複發送需要結束日期或次數。",
                                "A repeating send needs an end date or a number of times."))
    if rule.count is not None and not 1 <= rule.count <= MAX_COUNT:
        problems.append(Problem("repeat_count", f"次數需介於 1 到 {MAX_COUNT}。",
                                f"The number of times must be between 1 and {MAX_COUNT}."))
    if rule.until is not None:
        if rule.until < rule.start:
            problems.append(Problem("repeat_until", "結束日期早於第一次發送。", "The end date is before the first send."))
        elif (rule.until - rule.start).days > MAX_SERIES_DAYS:
            problems.append(Problem("repeat_until", f"重複發送最長 {MAX_SERIES_DAYS} 天。",
                                    f"A series may last at most {MAX_SERIES_DAYS} days."))
    if not problems and not upcoming(rule, now, 1):
        problems.append(Problem("repeat", "依這個設定不會有任何一次發送。", "With these settings nothing would ever be sent."))
    return problems


def occurrences(rule: Rule) -> Iterator[tuple[int, float]]:
    """(number, epoch) of every occurrence, in order, from the first date to the end of the rule."""
    tz = rule.tz
    number = 0
    day = rule.start
    last = rule.until or rule.start + timedelta(days=MAX_SERIES_DAYS)
    while day <= last and (rule.count is None or number < rule.count):
        runs = _runs_on(rule, day)
        if runs:
            yield number, datetime.combine(day, time(rule.hour, rule.minute), tzinfo=tz).timestamp()
            number += 1
        day = _next_day(rule, day)


def _runs_on(rule: Rule, day: date) -> bool:
    if rule.kind == DAILY:
        return True
    if rule.kind == WEEKDAYS:
        return day.weekday() in rule.days
    return day.day == min(rule.month_day or rule.start.day, calendar.monthrange(day.year, day.month)[1])


def _next_day(rule: Rule, day: date) -> date:
    """The next day worth looking at (monthly rules jump to the next month's run day)."""
    if rule.kind != MONTHLY:
        return day + timedelta(days=1)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    wanted = rule.month_day or rule.start.day
    return date(year, month, min(wanted, calendar.monthrange(year, month)[1]))


def upcoming(rule: Rule, after: float, n: int) -> list[tuple[int, float]]:
    """The next `n` occurrences strictly after `after` (epoch seconds)."""
    found: list[tuple[int, float]] = []
    for number, epoch in occurrences(rule):
        if epoch > after:
            found.append((number, epoch))
            if len(found) == n:
                break
    return found


def next_after(rule: Rule, after: float) -> tuple[int, float] | None:
    found = upcoming(rule, after, 1)
    return found[0] if found else None


def due_between(rule: Rule, start: float, now: float) -> list[tuple[int, float]]:
    """Occurrences at or after `start` and at or before `now` (what a tick, or a restart, finds due)."""
    return [(n, e) for n, e in occurrences(rule) if start <= e <= now]


def describe(rule: Rule) -> tuple[str, str]:
    """`每週一至五 09:00 重複` and `every Mon-Fri at 09:00`."""
    at = f"{rule.hour:02d}:{rule.minute:02d}"
    if rule.kind == DAILY:
        zh, en = f"每天 {at} 重複", f"every day at {at}"
    elif rule.kind == MONTHLY:
        day = rule.month_day or rule.start.day
        zh = f"每月 {day} 日 {at} 重複" + ("（小月為月底）" if day > 28 else "")
        en = f"monthly on day {day} at {at}" + (" (the last day in shorter months)" if day > 28 else "")
    else:
        days = sorted(rule.days)
        if days == list(range(5)):
            zh, en = f"每週一至五 {at} 重複", f"every Mon-Fri at {at}"
        else:
            zh = "每週" + "、".join(WEEKDAY_ZH[d] for d in days) + f" {at} 重複"
            en = "every " + ", ".join(WEEKDAY_EN[d] for d in days) + f" at {at}"
    if rule.count is not None:
        zh, en = zh + f"，共 {rule.count} 次", en + f", {rule.count} times"
    if rule.until is not None:
        zh, en = zh + f"，至 {rule.until:%Y-%m-%d}", en + f", until {rule.until:%Y-%m-%d}"
    return zh, en


def short_dates(rule: Rule, epochs: list[float]) -> str:
    """`12/04、12/05` style dates of these occurrences, in the rule's zone (`12/04, 12/05` in English)."""
    return "、".join(f"{datetime.fromtimestamp(e, tz=rule.tz):%m/%d}" for e in epochs)
