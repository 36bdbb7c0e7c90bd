"""`/healthz` (alive), `/readyz` (ready for work) and `/metrics`, for orchestrators and dashboards.

`/healthz` answers 200 whenever the process serves HTTP: restarting a bot that answers it would not help.
`/readyz` answers 503 when the bot cannot do its job, with a JSON body naming each failed check:
- `database`: a small write commits within two seconds (read-only file, full disk, a stuck lock fail it);
- `scheduler`: the job scheduler runs (delivery polls, credit checks);
- `every8d`: an EVERY8D call succeeded within BOT_READY_EVERY8D_SECONDS (the credit check calls every
  BOT_CREDIT_POLL_SECONDS, so a healthy bot always has a recent one); counted from start-up until the first;
- `slack`: Slack's last call did not fail, or one succeeded within BOT_READY_SLACK_SECONDS (an idle bot
  makes no Slack calls, so silence alone is not a failure);
- `outbox`: no post has waited for Slack longer than BOT_READY_OUTBOX_SECONDS;
- `accepting`: the bot is not shutting down (SIGTERM).

The bodies hold names, numbers and exception class names only: never a token, a path, or a phone number.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.metrics import CallRecord, Metrics
from storage.ops import OpsReads

log = logging.getLogger("every8d_bot.health")

HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: How long the database write probe may wait for the write lock.
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Limits:
    """How stale each fact may be before the bot is not ready (seconds)."""

    every8d_seconds: float = 1800.0
    slack_seconds: float = 300.0
    outbox_seconds: float = 600.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class Health:
    """The readiness checks of one Runtime, from facts it already has (metered calls, the store, the
    scheduler) plus one write probe."""

    def __init__(
        self,
        reads: OpsReads,
        metrics: Metrics,
        *,
        scheduler_running: Callable[[], bool],
        stopping: Callable[[], bool],
        limits: Limits = Limits(),
        now: Callable[[], float] = time.time,
    ) -> None:
        self.reads = reads
        self.metrics = metrics
        self.scheduler_running = scheduler_running
        self.stopping = stopping
        self.limits = limits
        self.now = now
        self.started_at = now()

    def alive(self) -> dict[str, Any]:
        return {"status": "alive", "uptime_seconds": round(max(0.0, self.now() - self.started_at), 1)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """(ready, body): every check's outcome and the names of those that failed."""
        checks = [self._accepting(), self._database(), self._scheduler(), self._every8d(), self._slack(),
                  self._outbox()]
        failed = [c.name for c in checks if not c.ok]
        body = {
            "status": "ready" if not failed else "not_ready",
            "failed": failed,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        }
        return not failed, body

    # -- the checks --------------------------------------------------------------------------------

    def _accepting(self) -> Check:
        if self.stopping():
            return Check("accepting", False, "shutting down (SIGTERM): finishing work in flight")
        return Check("accepting", True, "taking new work")

    def _database(self) -> Check:
        try:
            self.reads.probe_write(timeout=PROBE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which kind only
            return Check("database", False, f"a test write failed: {type(exc).__name__}")
        return Check("database", True, "writable")

    def _scheduler(self) -> Check:
        if not self.scheduler_running():
            return Check("scheduler", False, "the job scheduler is not running (no delivery polls, no credit checks)")
        return Check("scheduler", True, "running")

    def _every8d(self) -> Check:
        record = self.metrics.every8d
        age = self._age(record)
        limit = self.limits.every8d_seconds
        if age > limit:
            what = "since start-up" if record.last_ok is None else "since the last one"
            failure = f" (last failure: {record.last_failure_kind})" if record.last_failure_kind else ""
            return Check("every8d", False,
                         f"no successful EVERY8D call for {age:.1f} s {what} (limit {limit:g} s){failure}")
        if record.last_ok is None:
            return Check("every8d", True, f"no call yet; {age:.1f} s since start-up (limit {limit:g} s)")
        return Check("every8d", True, f"last successful call {age:.1f} s ago")

    def _slack(self) -> Check:
        record = self.metrics.slack
        failing = record.last_failure is not None and (record.last_ok is None or record.last_failure > record.last_ok)
        age = self._age(record)
        limit = self.limits.slack_seconds
        if failing and age > limit:
            return Check("slack", False, f"Slack calls fail ({record.last_failure_kind}); no success for "
                                         f"{age:.1f} s (limit {limit:g} s)")
        if record.last_ok is None:
            return Check("slack", True, "no failed call" if not failing else "failing, within the limit")
        return Check("slack", True, f"last successful call {age:.1f} s ago" + (", since failing" if failing else ""))

    def _outbox(self) -> Check:
        try:
            depth = self.reads.outbox_depth()
        except Exception as exc:  # noqa: BLE001
            return Check("outbox", False, f"could not read the outbox: {type(exc).__name__}")
        limit = self.limits.outbox_seconds
        if depth.oldest_created_at is None:
            return Check("outbox", True, "empty")
        age = max(0.0, self.now() - depth.oldest_created_at)
        if age > limit:
            return Check("outbox", False, f"{depth.pending} posts wait for Slack, the oldest for {age:.1f} s "
                                          f"(limit {limit:g} s)")
        return Check("outbox", True, f"{depth.pending} posts waiting, the oldest for {age:.1f} s")

    def _age(self, record: CallRecord) -> float:
        """Seconds since the last success, or since start-up before the first one."""
        since = record.last_ok if record.last_ok is not None else self.started_at
        return max(0.0, self.now() - since)


StartResponse = Callable[..., Any]


class ServiceEndpoints:
    """The three service paths as one small WSGI dispatch, mounted beside Slack's events and the callback
    receiver (bot/wsgi.py). Also counts the callback receiver's answers for `/metrics`."""

    def __init__(self, health: Health, metrics: Metrics) -> None:
        self.health = health
        self.metrics = metrics

    @staticmethod
    def handles(path: str) -> bool:
        return path in HEALTH_PATHS

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed", {"error": "GET only"})
        if path == "/metrics":
            return self.metrics.wsgi_app(environ, start_response)
        if path == "/healthz":
            return _json(start_response, "200 OK", self.health.alive())
        try:
            ready, body = self.health.ready()
        except Exception as exc:  # noqa: BLE001 - a check that breaks means "not ready", never a 500 page
            log.exception("readiness check failed")
            ready, body = False, {"status": "not_ready", "failed": ["internal"], "error": type(exc).__name__}
        return _json(start_response, "200 OK" if ready else "503 Service Unavailable", body)

    def count_callback(self, receiver: Callable[..., Iterable[bytes]], environ: dict[str, Any],
                       start_response: StartResponse) -> Iterable[bytes]:
        """Run the callback receiver and count its answer by status (stored, retry, refused)."""

        def counting(status: str, headers: list, exc_info: Any = None) -> Any:
            self.metrics.callback_answered(status)
            return start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)

        return receiver(environ, counting)


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data))),
                            ("Cache-Control", "no-store")])
    return [data]
