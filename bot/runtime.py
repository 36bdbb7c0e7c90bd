"""Wire the product from configuration: store, EVERY8D gateway (or the built-in sandbox), workflows,
Slack client, Bolt app, the Slack poster, the scheduler and the callback receiver.

`every8d-bot run`, the console and the tests all build the same `Runtime`, so what is tested is what runs.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.app import create_app
from bot.callback_receiver import CallbackReceiver
from bot.config import Config
from bot.health import Health, Limits, ServiceEndpoints
from bot.identity import BotIdentity
from bot.metrics import MeteredEvery8dClient, MeteredWebClient, Metrics
from bot.scheduler import ClockWatch, WeeklyReportJob, build_scheduler
from bot.slack_poster import MAX_BACKOFF, SlackPoster
from handlers.context import HandlerContext
from handlers.notifications import NotificationRenderer
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
from services.ports import Clock
from services.posts import PostService
from services.reply_lookup import ReplyLookupService
from services.reports import ReportService
from services.requests import RequestService
from services.sending import SendService
from services.series import SeriesService
from services.summary import RequestLookup
from services.tracking import TrackingService
from services.watchdog import Watchdog
from services.weekly_report import WeeklyReportService
from storage import StorageError, Store
from storage import watchdog as watchdog_queries
from storage.ops import OpsReads

log = logging.getLogger("every8d_bot")

SANDBOX_UID = "sandbox"
SANDBOX_PWD = "sandbox"
GROUP_CACHE_SECONDS = 300.0


class ExactRetryAfterHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, waiting exactly the Retry-After Slack asked for.

    The stock handler adds up to a second of random jitter to every wait, which spreads many clients
    apart but only slows a single poster that already sends one post at a time: in a burst of 1,000
    replies with one call in five throttled, the jitter alone cost minutes."""

    def prepare_for_next_attempt(self, *, state, request, response=None, error=None) -> None:
        if response is None:
            raise error  # type: ignore[misc]
        state.next_attempt_requested = True
        values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["1"])
        try:
            duration = max(0.0, float(values[0]))
        except (TypeError, ValueError, IndexError):
            duration = 1.0
        time.sleep(duration)
        state.increment_current_attempt()


def slack_client(config: Config, metrics: Metrics | None = None) -> WebClient:
    """A WebClient that honours Slack's rate limits (429 + Retry-After) and retries connection errors;
    with `metrics`, each call is counted and timed (`/metrics`, `/readyz`)."""
    settings = dict(
        token=config.slack_bot_token or None,
        base_url=config.slack_api_url,
        timeout=15,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), ExactRetryAfterHandler(max_retry_count=8)],
    )
    return MeteredWebClient(metrics=metrics, **settings) if metrics is not None else WebClient(**settings)


def require_writable(store: Store) -> None:
    """Refuse to start on a database that cannot be written (read-only file or mount, full disk): the
    bot would otherwise accept Approves whose sends then fail with a log line only. One committed write,
    as `doctor` checks it."""
    try:
        watchdog_queries.heartbeat(store)
    except sqlite3.Error as exc:
        store.close()
        raise StorageError(f"資料庫無法寫入 / the database cannot be written: {store.path} ({exc})") from exc


class _TrackedExecutor(ThreadPoolExecutor):
    """Bolt's listener pool, reporting each task so `Runtime.wait_idle()` also waits for listeners."""

    def __init__(self, track: Callable[[Future], None], **kwargs) -> None:
        super().__init__(**kwargs)
        self._track_future = track

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = super().submit(fn, *args, **kwargs)
        self._track_future(future)
        return future


class _InFlight:
    """Counts runs of the scheduler's jobs in progress, so stopping can wait for them before it closes
    the database (APScheduler's `shutdown(wait=False)` returns while a run goes on)."""

    def __init__(self) -> None:
        self._running = 0
        self._idle = threading.Condition()

    def wrap(self, job: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object) -> object:
            with self._idle:
                self._running += 1
            try:
                return job(*args)
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()

        return run

    def wait(self, timeout: float) -> bool:
        """True once no run is in progress; False if one still is after `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout=timeout)


class Runtime:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = time.time,
        callback_url: str | None = None,
        client: WebClient | None = None,
        workers: int = 4,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = Store(config.db_path)
        require_writable(self.store)
        self.metrics = Metrics(self.store)
        self._stopping = threading.Event()
        self.sandbox = None
        if config.sandbox:
            from every8d.sandbox import Sandbox

            self.sandbox = Sandbox(
                uid=SANDBOX_UID, pwd=SANDBOX_PWD, credit=config.sandbox_credit, seed=config.sandbox_seed,
                delivery_seconds=config.sandbox_delivery_seconds, reply_rate=config.sandbox_reply_rate,
                failure_rates={101: 0.05, 103: 0.03}, callback_url=callback_url, background=True,
                mms_terms=config.mms_terms,
            ).start()
            log.warning("🧪 沙盒模式 sandbox mode: EVERY8D_UID is not set, so the built-in sandbox at %s stands in "
                        "for EVERY8D and nothing is delivered.", self.sandbox.base_url)
            self.gateway = MeteredEvery8dClient(self.sandbox.base_url, SANDBOX_UID, SANDBOX_PWD,
                                                timeout=config.every8d_timeout, metrics=self.metrics)
        else:
            self.gateway = MeteredEvery8dClient(config.every8d_base_url, config.every8d_uid, config.every8d_pwd,
                                                timeout=config.every8d_timeout, metrics=self.metrics)
        self.client = client or slack_client(config, self.metrics)
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self.policy = config.policy(group_members=self._group_members)
        self.voice = Voice(config.language, config.timezone, config.mask_numbers, config.sandbox)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="every8d-work")
        self._futures: set[Future] = set()
        self._futures_lock = threading.Lock()

        self.credit = CreditService(self.store, self.gateway, self.policy, clock)
        self.tracking = TrackingService(self.store, self.gateway, self.policy, clock, resume=self.start_send,
                                        on_reply=self.answer_automatically)
        self.sending = SendService(self.store, self.gateway, self.policy, clock, on_credit=self.credit.observe,
                                   adopt=partial(self.tracking.adopt_batch, actor="reconcile"),
                                   keep_going=lambda: not self._stopping.is_set())
        self.sending.record_patience = config.watchdog_minutes * 60
        self.reply_lookup = ReplyLookupService(self.store, self.gateway, self.tracking, clock,
                                               enabled=config.reply_lookup)
        self.budgets = BudgetService(self.store, self.policy, clock, config.tz)
        self.requests = RequestService(self.store, self.policy, clock, self.start_send, budgets=self.budgets)
        self.approval = ApprovalService(self.store, self.policy, clock, self.start_send, budgets=self.budgets)
        self.cancel = CancelService(self.store, self.gateway, self.policy, clock)
        self.autoreply = AutoReplyService(self.store, self.requests, self.policy, clock, limits=config.limits,
                                          cooldown_seconds=config.autoreply_cooldown_hours * 3600)
        self.answers = AnswerService(self.store, self.requests, self.policy, clock, limits=config.limits)
        self.posts = PostService(self.store, timezone=config.timezone, budgets=self.budgets)
        self.renderer = NotificationRenderer(self.posts, self.voice, clock, self.credit,
                                             thread_answers=config.thread_answers)
        self.poster = SlackPoster(self.store, self.client, self.renderer)
        self.drafts = DraftService(self.store, self.policy, clock, self.requests, limits=config.limits,
                                  tz=self.voice.tz, show=self.voice.number, budgets=self.budgets)
        self.context = HandlerContext(
            voice=self.voice, policy=self.policy, clock=clock, requests=self.requests,
            approval=self.approval, cancel=self.cancel, credit=self.credit, tracking=self.tracking,
            answers=self.answers, drafts=self.drafts, reports=ReportService(self.store, clock, timezone=config.timezone),
            limits=config.limits, autoreply=self.autoreply, budgets=self.budgets,
            runner=self.run_in_background, bot_token=config.slack_bot_token, wake_poster=self.poster.wake,
            audiences=AudienceService(self.store, clock), optouts=OptOutService(self.store, clock),
            lookup=RequestLookup(self.store, clock, poll=self.tracking.poll_batch), home=HomeReads(self.store),
        )
        self.series = SeriesService(self.store, self.policy, clock, self.requests, self.drafts.check,
                                    grace_seconds=config.series_grace_minutes * 60)
        self.context.series = self.series
        self._listeners = _TrackedExecutor(self._track, max_workers=10, thread_name_prefix="bolt-listener")
        self.identity = BotIdentity(self.client, config.slack_bot_token)
        self.app = create_app(self.context, self.client, signing_secret=config.slack_signing_secret,
                              listener_executor=self._listeners, identity=self.identity)
        self.receiver = CallbackReceiver(config.callback_token, self.tracking, self.poster.wake)
        self.watchdog = Watchdog(self.store, self.policy, clock, self.sending, start_send=self.start_send,
                                 wake_poster=self.poster.wake, stale_seconds=config.watchdog_minutes * 60,
                                 alarm=self._alarm)
        self.weekly_report = WeeklyReportJob(
            WeeklyReportService(self.store, self.policy, clock, timezone=config.timezone), self.poster, self.renderer)
        self._jobs = _InFlight()
        self.scheduler = build_scheduler(
            poll=self._jobs.wrap(self.poll_once),
            check_credit=self._jobs.wrap(self.credit.check),
            poll_tick_seconds=max(1.0, min(5.0, config.status_poll_seconds)),
            credit_seconds=config.credit_poll_seconds,
            weekly_report=self._jobs.wrap(self.weekly_report.run) if config.weekly_report else None,
            weekly_catch_up=(self._jobs.wrap(lambda due: self.weekly_report.run(now=due))
                             if config.weekly_report else None),
            weekly_report_at=config.weekly_report_at,
            timezone=config.timezone,
            reply_lookup=self._jobs.wrap(self.lookup_replies_once) if config.reply_lookup else None,
            reply_lookup_seconds=config.reply_poll_seconds,
            watchdog=self._jobs.wrap(self.watchdog.run),
            watchdog_seconds=max(1.0, min(60.0, config.watchdog_minutes * 30)),
            series=self._jobs.wrap(self.run_series_once),
        )
        self.clock_watch = ClockWatch(self.scheduler, on_back=self._clock_went_back)
        self.health = Health(
            OpsReads(self.store), self.metrics, scheduler_running=lambda: bool(self.scheduler.running),
            stopping=self._stopping.is_set,
            limits=Limits(config.ready_every8d_seconds, config.ready_slack_seconds, config.ready_outbox_seconds),
        )
        self.endpoints = ServiceEndpoints(self.health, self.metrics)
        self._started = False

    # -- background work ---------------------------------------------------------------------------

    def run_in_background(self, work: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception:  # noqa: BLE001
                log.exception("background work failed")

        self._track(self._executor.submit(guarded))

    def _track(self, future: Future) -> None:
        with self._futures_lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future) -> None:
        with self._futures_lock:
            self._futures.discard(future)

    def answer_automatically(self, reply_id: int) -> None:
        """A stored reply may trigger an auto-reply rule: decided in the background, never in the push's
        or poll's own path (their answer to EVERY8D must not wait)."""
        self.run_in_background(lambda: self.autoreply.on_reply(reply_id) and self.poster.wake())

    def start_send(self, request_id: int) -> None:
        """Send an approved request in the background (Slack's ack never waits for EVERY8D)."""

        def work() -> None:
            if self._stopping.is_set():
                return  # shutting down: the request stays approved and the next start sends it
            self.metrics.send_finished(self.sending.send(request_id))
            self.poster.wake()

        self.run_in_background(work)

    def _alarm(self, zh: str, en: str) -> bool:
        """Straight to the alert channel, not through the outbox: for when the database (and so the
        outbox) cannot be written. False when Slack did not take it (the watchdog tries again next run)."""
        channel = self.policy.alert_channel
        if not channel:
            return True
        try:
            self.client.chat_postMessage(channel=channel, text=self.voice.t(zh, en), unfurl_links=False,
                                         unfurl_media=False)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not post the alarm to %s: %s (tried again at the watchdog's next run)", channel,
                        type(exc).__name__)
            return False
        return True

    def poll_once(self) -> None:
        self.tracking.poll_due()
        self.poster.wake()

    def lookup_replies_once(self) -> None:
        """The reply-lookup job: replies read with getReplyMessage go to their threads like pushed ones."""
        self.reply_lookup.run()
        self.poster.wake()

    def run_series_once(self) -> None:
        """The recurring-sends job: each due occurrence becomes a request (sent in the background, which
        wakes the poster when done). A tick with nothing due must not wake the poster: the job also runs
        right at start, and an extra drain there changes nothing but the timing of everything else."""
        if self.series.run_due():
            self.poster.wake()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until background work (sends, cancels, answers) is done: for tests and the console."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._futures_lock:
                pending = [f for f in self._futures if not f.done()]
            if not pending:
                return
            time.sleep(0.01)

    def _group_members(self, group_id: str) -> frozenset[str]:
        cached = self._groups.get(group_id)
        now = time.monotonic()
        if cached and now - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        try:
            users = frozenset(self.client.usergroups_users_list(usergroup=group_id).get("users", []))
        except Exception as exc:  # noqa: BLE001 - an unreachable group grants nothing
            log.warning("could not list user group %s: %s", group_id, type(exc).__name__)
            return cached[1] if cached else frozenset()
        self._groups[group_id] = (now, users)
        return users

    # -- life cycle --------------------------------------------------------------------------------

    def start(self, *, scheduler: bool = True, poster: bool = True) -> None:
        """Recover interrupted sends, then start the poster and the scheduler (tests drive them by hand)."""
        for request_id in self.sending.recover():
            self.start_send(request_id)
        if self.cancel.resume_retries():  # cancels promised "again in N min" before a stop
            log.info("cancel retries resumed after a restart")
        self.identity.refresh_in_background()
        if poster:
            self.poster.start()
        if scheduler:
            self.scheduler.start()
            self.clock_watch.start()
        self._started = True

    def begin_shutdown(self) -> None:
        """SIGTERM: take no new work from now on (`/readyz` says so; sends not yet started stay approved
        and the next start sends them)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def shutdown(self, grace: float | None = None, *, stop_serving: Callable[[], None] = lambda: None) -> None:
        """SIGTERM: take no new work, let the EVERY8D call in flight finish and be recorded (a send stops
        between parts; the rest stays approved for the next start), deliver what is queued for Slack for
        what is left of `grace` seconds (BOT_SHUTDOWN_SECONDS), then stop. What does not fit in the time
        stays in the database, as after any stop. `stop_serving` closes the HTTP servers: called after the
        work is done (they answer meanwhile: `/readyz` says so, callbacks are stored) and before the
        database closes."""
        deadline = time.monotonic() + (self.config.shutdown_seconds if grace is None else grace)
        log.info("shutting down: finishing work in flight (at most %.0f s)", deadline - time.monotonic())
        self.begin_shutdown()
        self._stop_scheduler()
        self._finish_work(deadline)
        self._flush_outbox(deadline)
        try:
            stop_serving()
        except Exception:  # noqa: BLE001 - stopping must go on
            log.exception("shutdown: stopping the servers failed")
        self.stop(jobs_timeout=max(1.0, deadline - time.monotonic()))
        log.info("stopped")

    def _clock_went_back(self, seconds: float) -> None:
        """The system clock was set back (bot/scheduler.py ClockWatch): posts waiting for a retry would wait
        `seconds` longer than meant, and hold their threads back meanwhile; they are due now. Delivery polls
        are brought forward by the jump."""
        now = time.time()
        moved = self.store.outbox.due_if_later_than(now + MAX_BACKOFF + 1.0)
        polls = self.store.batches.shift_polls(seconds, now)  # delivery polls too: timed by the old clock
        if moved or polls:
            log.warning("the clock went back %.0f s: %d posts waiting for a retry are due now, %d batch polls "
                        "brought forward", seconds, moved, polls)
        self.poster.wake()

    def _stop_scheduler(self) -> None:
        self.clock_watch.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _finish_work(self, deadline: float) -> None:
        """Wait for sends and other background work in flight (queued sends return at once when stopping)."""
        self.wait_idle(timeout=max(0.0, deadline - time.monotonic()))
        with self._futures_lock:
            unfinished = sum(1 for f in self._futures if not f.done())
        if unfinished:
            log.warning("shutdown: %d background tasks still running at the deadline", unfinished)

    def _flush_outbox(self, deadline: float) -> None:
        """Deliver queued posts until none is due or time is up; between posts, never in the middle of one."""
        self.poster.stop()
        delivered = 0
        while time.monotonic() < deadline:
            try:
                batch = self.poster.drain(limit=10)
            except Exception:  # noqa: BLE001 - what is not delivered stays queued for the next start
                log.exception("shutdown: delivering posts failed")
                break
            delivered += batch
            if batch == 0:
                break
        left = self.store.outbox.pending_count()
        log.info("shutdown: %d posts delivered, %d left for the next start", delivered, left)

    def stop(self, jobs_timeout: float = 30.0) -> None:
        self._stop_scheduler()
        self.poster.stop()
        self._listeners.shutdown(wait=True, cancel_futures=False)
        self._executor.shutdown(wait=True, cancel_futures=False)
        # A scheduled job still running uses its connection: closing the store under it crashes SQLite.
        jobs_done = self._jobs.wait(jobs_timeout)
        self.gateway.close()
        if self.sandbox is not None:
            self.sandbox.stop()
        if jobs_done:
            self.store.close()
        else:
            log.warning("a scheduled job is still running; the database is left to close at exit")
