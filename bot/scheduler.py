"""The recurring jobs: poll open batches, read replies (getReplyMessage), check the credit, post the weekly
report. APScheduler 3.11 in
the bot's process.

The truth (which batch to poll when) lives in SQLite, so the jobs are a few fixed ones with stable ids
in a memory job store: nothing to pickle, nothing that grows at each restart, and a kill -9 loses
nothing because the next start reads the same tables. `coalesce` and `max_instances=1` mean a slow
EVERY8D never makes runs pile up or overlap; the tick that finds the job still running is skipped, and
that is logged once per slow run rather than on every tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

if TYPE_CHECKING:
    from bot.slack_poster import SlackPoster
    from handlers.notifications import NotificationRenderer
    from services.reports import WeeklyReport
    from services.weekly_report import WeeklyReportService

log = logging.getLogger("every8d_bot.scheduler")

POLL_JOB = "poll-delivery-status"
CREDIT_JOB = "check-credit"
REPLY_LOOKUP_JOB = "reply-lookup"
WEEKLY_REPORT_JOB = "weekly-report"
WEEKLY_CATCH_UP_JOB = "weekly-report-catch-up"
WATCHDOG_JOB = "watchdog"
#: Recurring sends: each tick runs the occurrences that are due (the truth is the series table).
SERIES_JOB = "recurring-sends"
SERIES_TICK_SECONDS = 60.0
#: The catch-up waits this long after start, so the first poll and credit check go first.
CATCH_UP_DELAY_SECONDS = 30.0
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Every job: runs that fell behind collapse into one, never two at once, and a run up to a minute late
#: still happens (APScheduler's default grace of 1 s would skip it).
JOB_SETTINGS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}


class _SkippedOncePerRun(logging.Filter):
    """APScheduler warns "skipped: maximum number of running instances reached" on every tick that
    finds a job still running. Let the first warning of a slow run through, drop the repeats."""

    def __init__(self) -> None:
        super().__init__()
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass everything but a repeated skip warning of a job already reported in this run."""
        if "maximum number of running instances" not in str(record.msg) or not record.args:
            return True
        job_id = str(getattr(record.args[0], "id", record.args[0]))  # type: ignore[index]
        with self._lock:
            if job_id in self._reported:
                return False
            self._reported.add(job_id)
        return True

    def run_finished(self, job_id: str) -> None:
        """The job's run ended: its next skip (a new slow run) is worth a warning again."""
        with self._lock:
            self._reported.discard(job_id)


_SKIPS = _SkippedOncePerRun()
#: The scheduler's own logger (a child of "apscheduler", so its level settings apply), with the filter.
_SCHEDULER_LOG = logging.getLogger("apscheduler.scheduler.every8d")
_SCHEDULER_LOG.addFilter(_SKIPS)


def build_scheduler(
    *,
    poll: Callable[[], object],
    check_credit: Callable[[], object],
    poll_tick_seconds: float,
    credit_seconds: float,
    weekly_report: Callable[[], object] | None = None,
    weekly_report_at: tuple[str, int, int] = ("mon", 9, 0),
    timezone: str = "UTC",
    weekly_catch_up: Callable[[float], object] | None = None,
    reply_lookup: Callable[[], object] | None = None,
    reply_lookup_seconds: float = 300.0,
    watchdog: Callable[[], object] | None = None,
    watchdog_seconds: float = 60.0,
    series: Callable[[], object] | None = None,
) -> BackgroundScheduler:
    """Two interval jobs with stable ids, both run once right at start (resume open batches at once), and
    the weekly report when given: a cron job at `weekly_report_at` (weekday, hour, minute) in `timezone`.
    `weekly_catch_up(due)` runs once at start with the last report time that has passed: a bot that was
    down for the whole report day still posts that week's report (at most once, as always).
    `reply_lookup` (when given) reads every batch's replies each `reply_lookup_seconds`, from the start: a
    bot without callbacks gets replies that way."""
    scheduler = BackgroundScheduler(timezone=UTC, logger=_SCHEDULER_LOG)
    jobs: list[tuple[str, Callable[[], object], float]] = [
        (POLL_JOB, poll, poll_tick_seconds), (CREDIT_JOB, check_credit, credit_seconds)]
    if reply_lookup is not None:
        jobs.append((REPLY_LOOKUP_JOB, reply_lookup, reply_lookup_seconds))
    if series is not None:  # also right at start: a run missed while the bot was down, within the grace window
        jobs.append((SERIES_JOB, series, SERIES_TICK_SECONDS))
    for job_id, job, seconds in jobs:
        scheduler.add_job(_guard(job, job_id), "interval", seconds=seconds, id=job_id, name=job_id,
                          replace_existing=True, next_run_time=datetime.now(UTC), **JOB_SETTINGS)
    if watchdog is not None:
        add_watchdog(scheduler, watchdog, watchdog_seconds)
    if weekly_report is not None:
        scheduler.add_job(_guard(weekly_report, WEEKLY_REPORT_JOB), weekly_trigger(*weekly_report_at, timezone),
                          id=WEEKLY_REPORT_JOB, name=WEEKLY_REPORT_JOB, replace_existing=True, **JOB_SETTINGS)
        if weekly_catch_up is not None:
            due = last_due(*weekly_report_at, timezone, datetime.now(UTC))
            scheduler.add_job(_guard(lambda: weekly_catch_up(due.timestamp()), WEEKLY_CATCH_UP_JOB),
                              id=WEEKLY_CATCH_UP_JOB, name=WEEKLY_CATCH_UP_JOB, replace_existing=True,
                              next_run_time=datetime.now(UTC) + timedelta(seconds=CATCH_UP_DELAY_SECONDS),
                              **JOB_SETTINGS)
    return scheduler


class WeeklyReportJob:
    """The weekly report job (its ticks and the catch-up): the service queues the week's report once, then
    the post is delivered at once rather than at the poster's next turn, so a tick is also the retry of a
    post Slack refused (the poster retries it on its own as well; its lock means never both)."""

    def __init__(self, service: WeeklyReportService, poster: SlackPoster, renderer: NotificationRenderer) -> None:
        self.service = service
        self.poster = poster
        self.renderer = renderer

    def run(self, now: float | None = None) -> bool:
        """True when this call delivered the report of the last complete week before `now`; False when it
        went out before (or no alert channel is set). Slack's refusal is raised, and the post stays queued."""
        item = self.service.due(now)
        return item is not None and self.poster.deliver_now(item.id)

    @property
    def chart(self) -> Callable[[WeeklyReport], bytes | None]:
        """How the report's chart is drawn (the renderer's; tests replace it)."""
        return self.renderer.chart

    @chart.setter
    def chart(self, draw: Callable[[WeeklyReport], bytes | None]) -> None:
        self.renderer.chart = draw


#: The wall clock moving back by more than this against the monotonic one is a jump (NTP slews smaller errors).
CLOCK_JUMP_SECONDS = 5.0


class ClockWatch:
    """APScheduler 3 waits on the wall clock: when it is set back (a VM restored from a snapshot, NTP
    stepping the time after a boot), each interval job's next run lies that much further ahead, so polling,
    the watchdog, recurring sends and the credit check all stood still, without a word, for as long as the
    jump (an hour back: an hour of nothing). This watch compares the wall clock with the monotonic one each
    second; when the wall clock went back, it makes every interval job due now and calls `on_back(seconds)`
    (the runtime makes the posts waiting for a retry due as well). A jump forward needs nothing: the jobs
    run at once (`coalesce`)."""

    def __init__(self, scheduler: BackgroundScheduler, on_back: Callable[[float], object] = lambda _: None, *,
                 threshold: float = CLOCK_JUMP_SECONDS) -> None:
        self.scheduler = scheduler
        self.on_back = on_back
        self.threshold = threshold
        #: The clocks compared (tests replace `wall` to set the clock back).
        self.wall: Callable[[], float] = time.time
        self.mono: Callable[[], float] = time.monotonic
        self._offset: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> float:
        """How many seconds the wall clock went back since the last check (0.0: it did not), after acting."""
        offset = self.wall() - self.mono()
        back = 0.0 if self._offset is None else self._offset - offset
        self._offset = offset
        if back <= self.threshold:
            return 0.0
        log.warning("the system clock went back %.0f s: the recurring jobs and the posts waiting for a retry run "
                    "now rather than that much later", back)
        now = datetime.now(UTC)
        for job in self.scheduler.get_jobs():
            if isinstance(job.trigger, IntervalTrigger):
                try:
                    job.modify(next_run_time=now)
                except Exception:  # noqa: BLE001 - a job removed meanwhile
                    log.debug("could not reschedule job %s", job.id, exc_info=True)
        self.on_back(back)
        return back

    def start(self) -> None:
        """Check every second in a daemon thread."""
        self.check()
        self._thread = threading.Thread(target=self._loop, name="clock-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watch must outlive a bad moment
                log.exception("checking the clock failed")


def add_watchdog(scheduler: BackgroundScheduler, watchdog: Callable[[], object], seconds: float) -> None:
    """The watchdog (services/watchdog.py), first a little after start (recovery goes first)."""
    scheduler.add_job(_guard(watchdog, WATCHDOG_JOB), "interval", seconds=seconds, id=WATCHDOG_JOB, name=WATCHDOG_JOB,
                      replace_existing=True, next_run_time=datetime.now(UTC) + timedelta(seconds=min(seconds, 10.0)),
                      **JOB_SETTINGS)


def last_due(day: str, hour: int, minute: int, timezone: str, now: datetime) -> datetime:
    """The latest weekly report time (weekday `day`, hour:minute in `timezone`) at or before `now`."""
    local = now.astimezone(ZoneInfo(timezone))
    weekday = WEEKDAYS.index(day.lower()[:3])
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0) - timedelta(
        days=(local.weekday() - weekday) % 7)
    return due if due <= local else due - timedelta(days=7)


def weekly_trigger(day: str, hour: int, minute: int, timezone: str) -> CronTrigger:
    """At the configured time, then at the same minute each following hour of that day: the report job posts
    at most once per week (a database key), so the later ticks only matter when Slack was unreachable or
    the bot was down at the set time."""
    return CronTrigger(day_of_week=day, hour=f"{hour}-23", minute=minute, timezone=timezone)


def _guard(job: Callable[[], object], name: str) -> Callable[[], None]:
    """A job that raises is logged (once per failure streak, with its traceback) and runs again next
    time; APScheduler would log it on every tick without saying which product job it was."""
    failing = threading.Event()

    def run() -> None:
        try:
            job()
        except Exception:  # noqa: BLE001
            if not failing.is_set():
                log.exception("job %s failed; it will run again on its next tick", name)
            failing.set()
        else:
            if failing.is_set():
                log.info("job %s works again", name)
            failing.clear()
        finally:
            _SKIPS.run_finished(name)

    run.__name__ = name
    return run
