"""Prometheus metrics (`/metrics`) with the official client library, one registry per Runtime.

Two kinds of figures:
- events counted as they happen in this process (calls to EVERY8D and Slack with their latency, parts and
  sends by outcome, points spent, callbacks, watchdog findings): counters and histograms that start at
  zero with the process, as Prometheus expects of `_total` series;
- the database's state read at scrape time (requests and parts by state, credit, poll lag, outbox depth
  and age) by a custom collector, so a restart never shows a false drop or a stale gauge.

A registry per Runtime, not the library's global one: tests build several runtimes in one process, and
the global registry refuses a second metric of the same name.

The calls are measured by thin subclasses of the EVERY8D client and of slack_sdk's WebClient (their one
choke point each: `_call` and `api_call`); the same measurements give `/readyz` the time of the last
successful call (bot/health.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from every8d.client import Every8dClient
from every8d.endpoints import SEND_ENDPOINTS
from every8d.errors import (
    CredentialError,
    Every8dError,
    InsecureTransportError,
    OutcomeUnknownError,
    ProviderError,
    UnavailableError,
    ValidationError,
)
from every8d.results import SendResult
from storage import Store
from storage.ops import OpsReads

log = logging.getLogger("every8d_bot.metrics")

PREFIX = "every8d_bot"
#: Latency buckets (seconds) for calls that take from a few milliseconds (sandbox) to EVERY8D's timeout.
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Request states and part states always exposed (0 when none), so a dashboard's series never vanish.
REQUEST_STATES = ("pending_approval", "approved", "sending", "sent", "failed", "unknown", "rejected", "cancelled")
PART_STATES = ("pending", "sending", "sent", "failed", "unknown", "skipped")

_ERROR_RESULTS: tuple[tuple[type[Every8dError], str], ...] = (
    (OutcomeUnknownError, "outcome_unknown"),
    (CredentialError, "credential_error"),
    (UnavailableError, "unavailable"),
    (InsecureTransportError, "insecure_transport"),
    (ValidationError, "invalid"),
    (ProviderError, "refused"),
)


@dataclass
class CallRecord:
    """When calls to one service last succeeded and last failed (wall-clock seconds; None: not yet).
    `/readyz` reads it; written by the metered clients from whatever thread made the call."""

    last_ok: float | None = None
    last_failure: float | None = None
    last_failure_kind: str | None = None

    def ok(self, at: float) -> None:
        self.last_ok = at

    def failed(self, at: float, kind: str) -> None:
        self.last_failure, self.last_failure_kind = at, kind


class Metrics:
    """Every metric of one Runtime, in its own registry. `wsgi_app` serves them (content negotiation and
    gzip by the library)."""

    def __init__(self, store: Store | None, *, clock: Callable[[], float] = time.time, process: bool = True) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.every8d_calls = Counter(f"{PREFIX}_every8d_calls", "EVERY8D API calls (retries included in one call), "
                                     "by endpoint and result", ["endpoint", "result"], registry=r)
        self.every8d_latency = Histogram(f"{PREFIX}_every8d_call_duration_seconds", "Time of one EVERY8D API call, "
                                         "retries included", ["endpoint"], buckets=CALL_BUCKETS, registry=r)
        self.slack_calls = Counter(f"{PREFIX}_slack_calls", "Slack Web API calls by the bot's poster and runtime, by "
                                   "method and result", ["method", "result"], registry=r)
        self.slack_latency = Histogram(f"{PREFIX}_slack_call_duration_seconds", "Time of one Slack Web API call, "
                                       "rate-limit waits included", ["method"], buckets=CALL_BUCKETS, registry=r)
        self.parts = Counter(f"{PREFIX}_parts", "Parts (one EVERY8D send call each) by outcome: sent, failed, "
                             "unknown", ["outcome"], registry=r)
        self.sends = Counter(f"{PREFIX}_sends", "Send attempts of whole requests by the state they ended in",
                             ["outcome"], registry=r)
        self.points = Counter(f"{PREFIX}_points_spent", "EVERY8D points charged for accepted sends", registry=r)
        self.callbacks = Counter(f"{PREFIX}_callbacks", "EVERY8D push callbacks by answer: stored (200), "
                                 "retry (503, EVERY8D tries again), refused (4xx)", ["result"], registry=r)
        self.watchdog_findings = Counter(f"{PREFIX}_watchdog_findings", "Problems the watchdog found, by kind",
                                         ["kind"], registry=r)
        for outcome in ("sent", "failed", "unknown"):
            self.parts.labels(outcome)
        for result in ("stored", "retry", "refused"):
            self.callbacks.labels(result)
        if store is not None:
            r.register(StoreCollector(OpsReads(store), clock))
        if process:
            ProcessCollector(registry=r)
        self.every8d = CallRecord()
        self.slack = CallRecord()
        self.wsgi_app = make_wsgi_app(r)
        _set_current(self)

    # -- events ------------------------------------------------------------------------------------

    def every8d_call(self, endpoint: str, seconds: float, error: BaseException | None, result: Any = None) -> None:
        """One EVERY8D call ended: count it by result, time it, and for a send count the part and points."""
        kind = "ok" if error is None else every8d_result(error)
        self.every8d_calls.labels(endpoint, kind).inc()
        self.every8d_latency.labels(endpoint).observe(seconds)
        if error is None:
            self.every8d.ok(self.clock())
        else:
            self.every8d.failed(self.clock(), kind)
        if endpoint in SEND_ENDPOINTS:
            outcome = "sent" if error is None else "unknown" if isinstance(error, OutcomeUnknownError) else "failed"
            self.parts.labels(outcome).inc()
            if isinstance(result, SendResult) and result.cost > 0:
                self.points.inc(result.cost)

    def slack_call(self, method: str, seconds: float, error: BaseException | None) -> None:
        kind = "ok" if error is None else slack_result(error)
        self.slack_calls.labels(method, kind).inc()
        self.slack_latency.labels(method).observe(seconds)
        if error is None:
            self.slack.ok(self.clock())
        else:
            self.slack.failed(self.clock(), kind)

    def send_finished(self, state: str | None) -> None:
        """A send attempt of a request ended in `state` (None: another worker had it; not counted)."""
        if state is not None:
            self.sends.labels(str(state)).inc()

    def callback_answered(self, status: str) -> None:
        """The callback receiver answered with HTTP `status` ("200 OK", "503 ...", "404 ...")."""
        code = status[:3]
        self.callbacks.labels("stored" if code == "200" else "retry" if code.startswith("5") else "refused").inc()

    def watchdog_finding(self, kind: str) -> None:
        """The watchdog found a problem of `kind` (a short fixed word, e.g. "stuck_sending")."""
        self.watchdog_findings.labels(kind).inc()


def every8d_result(error: BaseException) -> str:
    """A short, bounded label for an EVERY8D failure (never its text: it may hold a number)."""
    for cls, label in _ERROR_RESULTS:
        if isinstance(error, cls):
            return label
    return "error"


def slack_result(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        response = error.response
        if response is not None and response.status_code == 429:
            return "ratelimited"
        return "error"
    return "unreachable"


# -- the watchdog's entry point ---------------------------------------------------------------------

_current: weakref.ReferenceType[Metrics] | None = None
_current_lock = threading.Lock()


def _set_current(metrics: Metrics) -> None:
    global _current
    with _current_lock:
        _current = weakref.ref(metrics)


def record_watchdog_finding(kind: str, metrics: Metrics | None = None) -> None:
    """Count a watchdog finding in `metrics`, or in the newest Runtime's metrics of this process when not
    given (the bot runs one Runtime). Never raises: counting must not break the watchdog."""
    target = metrics or (_current() if _current is not None else None)
    if target is not None:
        target.watchdog_finding(kind)


# -- the database's state at scrape time ------------------------------------------------------------


class StoreCollector(Collector):
    """Gauges read from the database when Prometheus scrapes (storage/ops.py owns the SQL)."""

    def __init__(self, reads: OpsReads, clock: Callable[[], float]) -> None:
        self.reads = reads
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the registry must not read the database while a Runtime is being built."""
        return []

    def collect(self) -> Iterator[Metric]:
        readable = GaugeMetricFamily(f"{PREFIX}_database_readable", "1 when the scrape could read the database")
        try:
            families = list(self._families())
        except (sqlite3.Error, OSError) as exc:
            log.warning("metrics: could not read the database: %s", type(exc).__name__)
            readable.add_metric([], 0)
            yield readable
            return
        readable.add_metric([], 1)
        yield readable
        yield from families

    def _families(self) -> Iterator[Metric]:
        now = self.clock()
        yield _by_label(f"{PREFIX}_requests", "Requests by state", "state", REQUEST_STATES,
                        self.reads.requests_by_state())
        yield _by_label(f"{PREFIX}_request_parts", "Parts of requests (one EVERY8D call each) by state", "state",
                        PART_STATES, self.reads.parts_by_state())
        latest = self.reads.latest_credit()
        if latest is not None:
            credit, at = latest
            yield GaugeMetricFamily(f"{PREFIX}_credit_points", "EVERY8D credit at the last reading", value=credit)
            yield GaugeMetricFamily(f"{PREFIX}_credit_reading_age_seconds", "Age of the last credit reading",
                                    value=max(0.0, now - at))
        yield GaugeMetricFamily(f"{PREFIX}_open_batches", "Batches still tracked for delivery reports or replies",
                                value=self.reads.open_batches())
        yield GaugeMetricFamily(f"{PREFIX}_poll_lag_seconds", "How long the most overdue open batch has waited "
                                "for its delivery poll", value=self.reads.poll_lag(now))
        depth = self.reads.outbox_depth()
        yield GaugeMetricFamily(f"{PREFIX}_outbox_pending", "Posts waiting to be delivered to Slack",
                                value=depth.pending)
        yield GaugeMetricFamily(f"{PREFIX}_outbox_dead", "Posts set aside after permanent Slack errors",
                                value=depth.dead)
        oldest = 0.0 if depth.oldest_created_at is None else max(0.0, now - depth.oldest_created_at)
        yield GaugeMetricFamily(f"{PREFIX}_outbox_oldest_age_seconds", "Age of the oldest post waiting for Slack "
                                "(0 when none waits)", value=oldest)


def _by_label(name: str, documentation: str, label: str, known: Iterable[str], counts: Mapping[str, int]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value in sorted({*known, *counts}):
        family.add_metric([value], counts.get(value, 0))
    return family


# -- metered clients -----------------------------------------------------------------------------------


class MeteredEvery8dClient(Every8dClient):
    """The EVERY8D client, timing and counting each call (its retries included) into `metrics`."""

    def __init__(self, *args: Any, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metrics = metrics

    def _call(self, endpoint, fields, parse):  # type: ignore[override]
        started = time.perf_counter()
        try:
            result = super()._call(endpoint, fields, parse)
        except BaseException as exc:
            self._metrics.every8d_call(endpoint, time.perf_counter() - started, exc)
            raise
        self._metrics.every8d_call(endpoint, time.perf_counter() - started, None, result)
        return result


class MeteredWebClient(WebClient):
    """slack_sdk's WebClient, timing and counting each Web API call into `metrics`. (Bolt builds a plain
    client per incoming request for listeners; those calls answer a person and are not counted here.)"""

    def __init__(self, *args: Any, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metrics = metrics

    def api_call(self, api_method: str, **kwargs: Any):  # type: ignore[override]
        started = time.perf_counter()
        try:
            response = super().api_call(api_method, **kwargs)
        except BaseException as exc:
            self._metrics.slack_call(api_method, time.perf_counter() - started, exc)
            raise
        self._metrics.slack_call(api_method, time.perf_counter() - started, None)
        return response
