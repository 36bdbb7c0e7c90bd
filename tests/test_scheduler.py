"""The recurring jobs: fixed ids that survive restarts, intervals from configuration, and a slow EVERY8D
never makes polls overlap or pile up; a failing job is logged once per streak, not on every tick."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES

from bot.scheduler import (
    CREDIT_JOB,
    POLL_JOB,
    REPLY_LOOKUP_JOB,
    SERIES_JOB,
    WATCHDOG_JOB,
    WEEKLY_CATCH_UP_JOB,
    WEEKLY_REPORT_JOB,
    build_scheduler,
)
from tests.harness import SlackUser
from tests.test_tracking import batch_id_of, send_approved


def jobs(product) -> dict:
    return {job.id: job for job in product.runtime.scheduler.get_jobs()}


def test_jobs_have_stable_ids_no_overlap_settings_and_configured_intervals(make_product):
    first = make_product(status_poll_seconds=3.0, credit_poll_seconds=900.0)
    found = jobs(first)
    assert set(found) == {POLL_JOB, CREDIT_JOB, WEEKLY_REPORT_JOB, WEEKLY_CATCH_UP_JOB, REPLY_LOOKUP_JOB, WATCHDOG_JOB,
                          SERIES_JOB}
    for job in found.values():
        assert job.max_instances == 1 and job.coalesce and job.misfire_grace_time == 60
    assert found[POLL_JOB].trigger.interval.total_seconds() == 3.0
    assert found[CREDIT_JOB].trigger.interval.total_seconds() == 900.0
    assert found[REPLY_LOOKUP_JOB].trigger.interval.total_seconds() == 300.0  # BOT_REPLY_POLL_SECONDS
    first.stop()

    restarted = make_product(status_poll_seconds=3.0, credit_poll_seconds=900.0)  # same database
    assert set(jobs(restarted)) == {POLL_JOB, CREDIT_JOB, WEEKLY_REPORT_JOB, WEEKLY_CATCH_UP_JOB, REPLY_LOOKUP_JOB,
                                    WATCHDOG_JOB, SERIES_JOB}


class SlowGateway:
    """The real gateway, but every status query takes `delay` seconds; records overlapping queries."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.active = self.most_active = self.queries = 0
        self._lock = threading.Lock()

    def iter_delivery_status(self, batch_id: str, *, mms: bool = False):
        with self._lock:
            self.active += 1
            self.queries += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.delay)
            yield from self.inner.iter_delivery_status(batch_id, mms=mms)
        finally:
            with self._lock:
                self.active -= 1


def test_a_slow_gateway_never_makes_polls_overlap_and_the_skips_are_logged_once_per_run(make_product, caplog):
    product = make_product(callback_token="", status_poll_seconds=0.01, sandbox_delivery_seconds=3600)
    send_approved(product, "send 0912345678 慢")
    batch_id = batch_id_of(product)
    slow = SlowGateway(product.runtime.gateway, delay=0.25)
    product.runtime.tracking.gateway = slow
    scheduler = build_scheduler(poll=product.runtime.poll_once, check_credit=lambda: None,
                                poll_tick_seconds=0.02, credit_seconds=3600)
    skipped: list[object] = []
    scheduler.add_listener(skipped.append, EVENT_JOB_MAX_INSTANCES)

    with caplog.at_level(logging.WARNING):
        scheduler.start()
        time.sleep(1.1)
        scheduler.shutdown(wait=True)

    assert slow.queries >= 3 and slow.most_active == 1
    warnings = [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]
    assert len(skipped) > slow.queries  # many ticks found the poll still running...
    assert 1 <= len(warnings) <= slow.queries  # ...but that is said once per slow run
    assert product.store.batches.get(batch_id).last_checked_at is not None


def test_a_failing_job_is_logged_once_per_streak_and_runs_again(caplog):
    outcomes = iter([RuntimeError("boom")] * 4 + [None] * 100)
    ran = threading.Event()

    def flaky() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome
        ran.set()

    scheduler = build_scheduler(poll=flaky, check_credit=lambda: None, poll_tick_seconds=0.02, credit_seconds=3600)
    with caplog.at_level(logging.INFO, logger="every8d_bot"):
        scheduler.start()
        assert ran.wait(3)
        scheduler.shutdown(wait=True)

    failures = [r for r in caplog.records if f"job {POLL_JOB} failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert len([r for r in caplog.records if f"job {POLL_JOB} works again" in r.getMessage()]) == 1


def test_a_clock_set_back_an_hour_stalls_no_job_and_no_post_waiting_for_a_retry(make_product):
    """APScheduler waits on the wall clock: set back an hour (a VM restored, NTP stepping after a boot),
    every interval job (polling, the watchdog, recurring sends) and every post in its backoff waited an hour
    more, in silence. The bot's clock watch sees the wall clock go back against the monotonic one and makes
    them due now; the weekly report keeps its calendar time."""
    from datetime import UTC, datetime

    product = make_product()
    send_approved(product, "send 0912345678 颱風停班通知")
    batch_id = product.store.requests.get(1).batch_id  # an open batch, its next poll a few seconds ahead
    product.standin.faults.fail("chat.postMessage", "internal_error", count=1)
    SlackUser(product, "U_OTHER").command("send 0922333444 明早九點停水通知")
    product.settle()
    assert len(product.standin.messages("C_APPROVALS")) == 1  # request 2's card waits for its retry
    runtime = product.runtime
    scheduler = runtime.scheduler
    scheduler.start(paused=True)  # next run times are computed; nothing runs on its own in the test
    watch = runtime.clock_watch
    watch.check()
    # What the jump leaves: every wait set before it now ends an hour later than meant.
    with product.store.immediate() as db:
        db.execute("UPDATE outbox SET next_attempt_at = next_attempt_at + 3600 WHERE state = 'pending'")
        db.execute("UPDATE batches SET next_poll_at = ? WHERE batch_id = ?", [time.time() + 3605, batch_id])
    for job in scheduler.get_jobs():
        job.modify(next_run_time=job.next_run_time + timedelta(hours=1))
    weekly = jobs(product)[WEEKLY_REPORT_JOB].next_run_time

    hour_ago, start = time.time() - 3600, time.monotonic()
    watch.wall = lambda: hour_ago + (time.monotonic() - start)  # the clock set back an hour, then running on
    assert watch.check() > 3500
    soon = datetime.now(UTC) + timedelta(seconds=5)
    for job_id in (POLL_JOB, CREDIT_JOB, WATCHDOG_JOB, SERIES_JOB, REPLY_LOOKUP_JOB):
        assert jobs(product)[job_id].next_run_time <= soon, job_id
    assert jobs(product)[WEEKLY_REPORT_JOB].next_run_time == weekly
    assert product.store.batches.get(batch_id).next_poll_at <= time.time() + 10  # polled soon, not in an hour
    runtime.poster.drain()
    assert len(product.standin.messages("C_APPROVALS")) == 2  # the card, now rather than in an hour
    assert watch.check() == 0.0  # said once per jump
    scheduler.shutdown(wait=False)
