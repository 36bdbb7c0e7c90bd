"""Reports: the weekly summary posted to the alert channel, and the audit CSV approvers export.

Plain Python over the store (no Slack), so the figures can be checked without a workspace. Both read
only: the weekly figures are a few grouped queries, and the audit CSV streams one row per recipient from
a single cursor, so a 10,000-recipient request is written row by row, never held as objects in memory.
The chart is drawn with matplotlib when the optional `report` extra is installed; without it the report
is still complete, only the picture is missing.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from every8d.phones import display, mask
from every8d.problems import Problem
from every8d.status import DeliveryStatus, Outcome, status_for
from services.ports import Clock
from storage import Store

log = logging.getLogger("every8d_bot.reports")

#: Replies listed in the weekly report (most frequent first).
TOP_REPLIES = 5
#: The longest range `/sms audit` exports at once.
MAX_AUDIT_DAYS = 366
#: `/sms audit` with no range: this many days back from now.
DEFAULT_AUDIT_DAYS = 30

AUDIT_COLUMNS: tuple[str, ...] = (
    "request_id", "created_at", "requester", "approver", "decided_at", "state", "kind", "batch_id",
    "recipient", "name", "status_code", "status_zh", "status_en", "cost_points",
)
#: A cell starting with one of these is a formula to Excel: such cells get a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_WHITESPACE = re.compile(r"\s+")


# -- the weekly report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureReason:
    """Failed messages with one status code, with the code's meaning in both languages."""

    code: int
    zh: str
    en: str
    count: int


@dataclass(frozen=True)
class TopReply:
    """A reply text (whitespace collapsed, as first seen) and how many replies said the same."""

    text: str
    count: int


@dataclass(frozen=True)
class DayCount:
    """Messages of the batches created on one local day, by outcome (the chart's bars)."""

    day: date
    delivered: int
    failed: int
    pending: int


@dataclass(frozen=True)
class WeeklyReport:
    """What the weekly post says: volume, cost, delivery, failures by reason, what people answered."""

    start: float
    end: float
    label: str
    messages: int
    points: float
    delivered: int
    failed: int
    pending: int
    failures: tuple[FailureReason, ...]
    replies: int
    top_replies: tuple[TopReply, ...]
    days: tuple[DayCount, ...]
    #: Different numbers that replied, and numbers that opted out, in the week (the rates beside delivery).
    repliers: int = 0
    optouts: int = 0

    @property
    def delivery_rate(self) -> float | None:
        """Delivered / sent (cancelled messages are not sent); None for a week without messages."""
        return self.delivered / self.messages if self.messages else None

    @property
    def reply_rate(self) -> float | None:
        """Numbers that replied / messages sent: how many people answered."""
        return self.repliers / self.messages if self.messages else None

    @property
    def optout_rate(self) -> float | None:
        """Numbers that opted out / messages sent: the cost of a campaign in lost recipients."""
        return self.optouts / self.messages if self.messages else None


def previous_week(now: float, timezone: str) -> tuple[float, float, str]:
    """(start, end, `2026-W47`) of the last complete ISO week (Monday to Monday) in `timezone` before `now`:
    a report posted on a Monday morning covers the week that just ended."""
    tz = ZoneInfo(timezone)
    today = datetime.fromtimestamp(now, tz=tz).date()
    monday = today - timedelta(days=today.weekday() + 7)
    year, week, _ = monday.isocalendar()
    return _midnight(monday, tz), _midnight(monday + timedelta(days=7), tz), f"{year}-W{week:02d}"


def weekly_summary(store: Store, start: float, end: float, *, timezone: str, label: str = "") -> WeeklyReport:
    """The figures of the batches created in [start, end) and the replies received then."""
    tz = ZoneInfo(timezone)
    first = datetime.fromtimestamp(start, tz=tz).date()
    last = datetime.fromtimestamp(end - 1, tz=tz).date()
    per_day: dict[date, Counter[str]] = {first + timedelta(days=i): Counter() for i in range((last - first).days + 1)}
    failures: Counter[int] = Counter()
    totals: Counter[str] = Counter()
    for row in store.batches.outcomes_between(start, end):
        outcome = _bucket(row["status_code"])
        if outcome is None:
            continue
        totals[outcome] += row["n"]
        per_day.setdefault(datetime.fromtimestamp(row["created_at"], tz=tz).date(), Counter())[outcome] += row["n"]
        if outcome == "failed":
            failures[row["status_code"]] += row["n"]
    replies, top = _top_replies(store.replies.texts_between(start, end))
    return WeeklyReport(
        start=start, end=end, label=label or f"{first:%Y-%m-%d} – {last:%Y-%m-%d}",
        messages=sum(totals.values()), points=store.batches.charged_between(start, end),
        delivered=totals["delivered"], failed=totals["failed"], pending=totals["pending"],
        failures=tuple(_reason(code, n) for code, n in failures.most_common()),
        replies=replies, top_replies=top,
        days=tuple(DayCount(d, c["delivered"], c["failed"], c["pending"]) for d, c in sorted(per_day.items())),
        repliers=store.replies.repliers_between(start, end), optouts=store.optouts.count_between(start, end),
    )


def _bucket(code: int) -> str | None:
    """delivered / failed / pending for a message that went out; None for one that was cancelled."""
    outcome = status_for(code).outcome
    if outcome is Outcome.CANCELLED:
        return None
    if outcome in (Outcome.DELIVERED, Outcome.SENT):  # an MMS "sent" is all its API ever reports
        return "delivered"
    if outcome is Outcome.FAILED:
        return "failed"
    return "pending"


def _reason(code: int, count: int) -> FailureReason:
    status = status_for(code)
    return FailureReason(code, status.zh, status.en, count)


def _top_replies(texts: Iterator[str], top: int = TOP_REPLIES) -> tuple[int, tuple[TopReply, ...]]:
    """Group replies that say the same thing (case and spacing aside); the most frequent first, and among
    equally frequent ones the latest first, so a week of one-off answers lists the newest."""
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    last_seen: dict[str, int] = {}
    total = 0
    for total, text in enumerate(texts, start=1):
        collapsed = _WHITESPACE.sub(" ", text).strip()
        if not collapsed:  # a reply seen by polling only has no text: counted, never listed as a "top reply"
            continue
        key = collapsed.casefold()
        counts[key] += 1
        shown.setdefault(key, collapsed)
        last_seen[key] = total
    ranked = sorted(counts, key=lambda k: (-counts[k], -last_seen[k]))[:top]
    return total, tuple(TopReply(shown[k], counts[k]) for k in ranked)


def draw_chart(report: WeeklyReport) -> bytes | None:
    """A PNG of messages per day, delivered / failed / pending stacked; None when matplotlib (the optional
    `report` extra) is not installed. The Agg canvas draws off-screen and needs no display; labels are in
    English because matplotlib's bundled font has no Chinese glyphs."""
    figure = chart_figure(report)
    if figure is None:
        return None
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def chart_title(report: WeeklyReport) -> str:
    """`SMS per day, 2026-11-23 – 2026-11-29`: dates people read, not an ISO week number."""
    if not report.days:
        return "SMS per day"
    return f"SMS per day, {report.days[0].day:%Y-%m-%d} – {report.days[-1].day:%Y-%m-%d}"


def chart_figure(report: WeeklyReport) -> Any | None:
    """The chart as a matplotlib Figure (tests measure it); the legend sits right of the plot, outside the
    axes, so it can never cover a bar whatever the week's shape."""
    try:
        import matplotlib  # noqa: F401 - probed first, so a missing package is one clear ImportError
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log.info("weekly report chart skipped: matplotlib is not installed (pip install 'every8d-slack-bot[report]')")
        return None
    figure = Figure(figsize=(8, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [f"{d.day:%a}\n{d.day:%m-%d}" for d in report.days]
    delivered = [d.delivered for d in report.days]
    failed = [d.failed for d in report.days]
    pending = [d.pending for d in report.days]
    axes.bar(labels, delivered, color="#2e7d32", label="Delivered")
    axes.bar(labels, failed, bottom=delivered, color="#c62828", label="Failed")
    axes.bar(labels, pending, bottom=[a + b for a, b in zip(delivered, failed, strict=True)], color="#9e9e9e",
             label="Pending")
    axes.set_title(chart_title(report))
    axes.set_ylabel("messages")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize="small", frameon=False)
    axes.yaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    return figure


# -- the audit export --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    """Whole local days, first to last inclusive, as epoch seconds [start, end)."""

    first: date
    last: date
    start: float
    end: float


def parse_range(text: str, now: float, timezone: str) -> DateRange | Problem:
    """`/sms audit`'s argument: `2026-11-01 2026-11-30` (inclusive, local days), one date (that day),
    `7d` (the last 7 days, today included) or nothing (the last 30 days). A Problem says what is wrong."""
    tz = ZoneInfo(timezone)
    today = datetime.fromtimestamp(now, tz=tz).date()
    words = text.replace("～", " ").replace("~", " ").split()
    if not words or (len(words) == 1 and re.fullmatch(r"\d{1,3}[dD]", words[0])):
        days = int(words[0][:-1]) if words else DEFAULT_AUDIT_DAYS
        if not 1 <= days <= MAX_AUDIT_DAYS:
            return _range_problem(f"天數需介於 1 到 {MAX_AUDIT_DAYS}", f"the number of days must be 1 to {MAX_AUDIT_DAYS}")
        return _days(today - timedelta(days=days - 1), today, tz)
    if len(words) > 2:
        return _range_problem("最多兩個日期（起、迄）", "give at most two dates (from, to)")
    dates = [_date(word) for word in words]
    bad = [word for word, parsed in zip(words, dates, strict=True) if parsed is None]
    if bad:
        shown = bad[0][:20].replace("`", "")
        return _range_problem(f"「{shown}」不是日期，請用 YYYY-MM-DD", f"\"{shown}\" is not a date; use YYYY-MM-DD")
    first, last = dates[0], dates[-1]
    assert first is not None and last is not None
    if last < first:
        return _range_problem("結束日期早於開始日期", "the end date is before the start date")
    if (last - first).days >= MAX_AUDIT_DAYS:
        return _range_problem(f"範圍最長 {MAX_AUDIT_DAYS} 天", f"the range can be at most {MAX_AUDIT_DAYS} days")
    if first > today:
        return _range_problem("開始日期在未來", "the start date is in the future")
    return _days(first, last, tz)


def _date(word: str) -> date | None:
    match = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", word)
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def _days(first: date, last: date, tz: ZoneInfo) -> DateRange:
    return DateRange(first, last, _midnight(first, tz), _midnight(last + timedelta(days=1), tz))


def _midnight(day: date, tz: ZoneInfo) -> float:
    return datetime.combine(day, time(), tzinfo=tz).timestamp()


def _range_problem(zh: str, en: str) -> Problem:
    example = "`/sms audit 2026-11-01 2026-11-30`、`/sms audit 7d`"
    return Problem("range", f"{zh}。例如 {example}", f"{en}, e.g. {example.replace('、', ' or ')}")


def audit_rows(store: Store, start: float, end: float, *, masked: bool, timezone: str) -> Iterator[dict[str, Any]]:
    """One row per recipient of each request created in [start, end), keyed by AUDIT_COLUMNS: who asked,
    who decided (`auto` when auto-approved), the batch, the recipient (masked unless `masked` is False)
    and its final status and cost. Rows come from one cursor, in request then recipient order."""
    tz = ZoneInfo(timezone)
    for row in store.requests.audit_rows(start, end):
        code = row["status_code"]
        status = status_for(code) if code is not None else None
        yield {
            "request_id": row["request_id"],
            "created_at": _local(row["created_at"], tz),
            "requester": row["requester"],
            "approver": row["decided_by"] or "",
            "decided_at": _local(row["decided_at"], tz),
            "state": row["state"],
            "kind": row["kind"],
            "batch_id": row["batch_id"] or "",
            "recipient": mask(row["e164"]) if masked else display(row["e164"]),
            "name": row["name"] or "",
            "status_code": "" if code is None else code,
            "status_zh": status.zh if status else "",
            "status_en": status.en if status else "",
            "cost_points": _cost(row, status),
        }


def _local(epoch: float | None, tz: ZoneInfo) -> str:
    return "" if epoch is None else f"{datetime.fromtimestamp(epoch, tz=tz):%Y-%m-%d %H:%M:%S}"


def _cost(row: dict[str, Any], status: DeliveryStatus | None) -> str:
    """EVERY8D's charge for this recipient; when only a push reported it (no cost in a push), the
    request's charge spread over what was sent. Blank for a recipient never sent; 0 when cancelled."""
    if status is None:
        return ""
    if status.outcome is Outcome.CANCELLED:
        return "0"
    if row["delivery_cost"]:
        return f"{row['delivery_cost']:g}"
    if row["request_cost"] is not None and row["sent_count"]:
        return f"{row['request_cost'] / row['sent_count']:g}"
    return ""


def write_audit_csv(
    store: Store, start: float, end: float, out: IO[bytes], *, masked: bool, timezone: str
) -> int:
    """Write the audit CSV to `out` (UTF-8 with a BOM, so Excel in Taiwan shows Chinese correctly; cells
    that Excel would run as formulas are quoted as text); returns how many recipient rows it wrote."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    header = [f"created_at ({timezone})" if c == "created_at" else c for c in AUDIT_COLUMNS]
    writer.writerow(header)
    rows = 0
    for row in audit_rows(store, start, end, masked=masked, timezone=timezone):
        writer.writerow([_cell(row[c]) for c in AUDIT_COLUMNS])
        rows += 1
    text.flush()
    text.detach()  # leave `out` open for the caller
    return rows


def audit_csv(store: Store, start: float, end: float, *, masked: bool, timezone: str) -> bytes:
    """The audit CSV as bytes (what `files_upload_v2` takes)."""
    out = io.BytesIO()
    write_audit_csv(store, start, end, out, masked=masked, timezone=timezone)
    return out.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# -- the reports people ask for ------------------------------------------------------------------------


class ReportService:
    """`/sms report` and `/sms audit`: the figures or the CSV, handed to the caller's Slack call, and the
    audit record of it written only once that call went through (a refused upload records nothing)."""

    def __init__(self, store: Store, clock: Clock, *, timezone: str) -> None:
        self.store = store
        self.clock = clock
        #: The bot's time zone: ranges are whole local days, CSV times local times.
        self.timezone = timezone

    def post_report(self, actor: str, channel: str, start: float, end: float, label: str,
                    post: Callable[[WeeklyReport], None]) -> WeeklyReport:
        """Count [start, end), let `post` put it in `channel` (what it raises goes to the caller), then
        record who posted it."""
        report = weekly_summary(self.store, start, end, timezone=self.timezone, label=label)
        post(report)
        self.store.audit.record(actor, "report_posted", now=self.clock(), label=label, channel=channel)
        return report

    def export_audit(self, actor: str, channel: str, period: DateRange, upload: Callable[[bytes, int], None], *,
                     masked: bool) -> int:
        """Write the audit CSV of `period` (streamed from the store), let `upload(content, rows)` put it in
        `channel` (what it raises goes to the caller), then record who exported what. Returns the rows."""
        out = io.BytesIO()
        rows = write_audit_csv(self.store, period.start, period.end, out, masked=masked, timezone=self.timezone)
        upload(out.getvalue(), rows)
        self.store.audit.record(actor, "audit_exported", now=self.clock(), first=str(period.first),
                                last=str(period.last), rows=rows, channel=channel)
        return rows
