"""The recurring jobs: poll open batches, check the credit. APScheduler 3.11 in the bot's process.

The truth (which batch to poll when) lives in SQLite, so the jobs are a few fixed ones with stable ids
in a memory job store: nothing to pickle, nothing that grows at each restart, and a kill -9 loses
nothing because the next start reads the same tables. `coalesce` and `max_instances=1` mean a slow
EVERY8D never makes runs pile up or overlap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("every8d_bot.scheduler")

POLL_JOB = "poll-delivery-status"
CREDIT_JOB = "check-credit"


def build_scheduler(
    *,
    poll: Callable[[], object],
    check_credit: Callable[[], object],
    poll_tick_seconds: float,
    credit_seconds: float,
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
    )
    scheduler.add_job(_guard(poll, POLL_JOB), "interval", seconds=poll_tick_seconds, id=POLL_JOB,
                      replace_existing=True, next_run_time=datetime.now(UTC))
    scheduler.add_job(_guard(check_credit, CREDIT_JOB), "interval", seconds=credit_seconds, id=CREDIT_JOB,
                      replace_existing=True, next_run_time=datetime.now(UTC))
    return scheduler


def _guard(job: Callable[[], object], name: str) -> Callable[[], None]:
    """A job that raises is logged and runs again next time (APScheduler would only log it too, but
    without saying which product job it was)."""

    def run() -> None:
        try:
            job()
        except Exception:  # noqa: BLE001
            log.exception("job %s failed; it will run again on its next tick", name)

    run.__name__ = name
    return run
