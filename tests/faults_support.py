"""Shared helpers of the fault-injection suite: the bot as a real subprocess (so a crash is a real process
death and a restart a real restart), bounded waiting, reading the bot's database from outside, and a
watchdog so that a hung test fails CI instead of hanging it.

Why a subprocess: a crash point ends the process with `os._exit(137)` (no cleanup, no flush, exactly
what SIGKILL leaves behind), which cannot be done to the test process itself. The EVERY8D sandbox and
the Slack stand-in live in the test process, so they outlive the bot and count calls across restarts.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from every8d.endpoints import SEND_ENDPOINTS
from services import crashpoints
from slackstandin import SlackStandIn
from storage import RequestState, SendRequest, Store
from tests.harness import CALLBACK_TOKEN, SIGNING_SECRET, SlackUser, all_text

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
#: States a request settles in after a send attempt (a crash must never leave it elsewhere).
SETTLED = (RequestState.SENT, RequestState.UNKNOWN, RequestState.FAILED)
#: Words of a Python traceback or exception that must never reach a person in Slack.
PYTHON_LEAKS = ("Traceback", "Exception", "Error(", "requests.exceptions", "urllib3", "File \"", "NoneType")
#: An exception class name as Python prints it: `ReadTimeout: timed out`, `ConnectionError: ...`, `KeyError`.
PYTHON_NAME = re.compile(r"\b(?:[A-Z][a-z]+)+(?:Error|Timeout|Exception)\b")


def restart_safe_port() -> int:
    """A free port outside the kernel's ephemeral range. The bot must get the same port back after a
    restart (the sandbox's callback URL names it); a port from bind(0) could meanwhile be handed to any
    other test's server, whose /healthz would then answer for a bot that failed to start."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except OSError:  # not Linux: 32768 is below the BSD/macOS range (49152-) too
        low = 32768
    for _ in range(200):
        port = random.randrange(max(1024, low - 12_000), low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


def wait_for(predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy; fail the test (never hang) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def watchdog() -> Iterator[None]:
    """Kill the test run with every thread's stack if one test hangs (CI has no pytest-timeout here)."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def send_calls(sandbox: Any) -> list[Any]:
    """The send calls (SMS and MMS) the sandbox received."""
    return [c for c in sandbox.calls if c.endpoint in SEND_ENDPOINTS]


def thread_text(standin: SlackStandIn, channel: str, ts: str) -> str:
    """Everything a person reads in a thread, as one string."""
    return "\n".join(all_text(m) for m in standin.thread(channel, ts))


def assert_no_traceback(text: str) -> None:
    """People never get a stack trace or an exception's repr."""
    leaked = [word for word in PYTHON_LEAKS if word in text]
    assert not leaked, f"Python internals shown to people ({leaked}): {text[:800]}"


def assert_no_python_text(text: str) -> None:
    """People get sentences: no stack trace, no repr, and no exception class name either."""
    assert_no_traceback(text)
    names = PYTHON_NAME.findall(text)
    assert not names, f"Python exception names shown to people ({names}): {text[:800]}"


@contextlib.contextmanager
def open_store(path: Path) -> Iterator[Store]:
    """The bot's database opened from the test process (WAL lets it read while the bot writes)."""
    store = Store(path)
    try:
        yield store
    finally:
        store.close()


def request_row(path: Path, request_id: int) -> SendRequest | None:
    with open_store(path) as store:
        return store.requests.get(request_id)


def outbox_pending(path: Path) -> int:
    with open_store(path) as store:
        return store.outbox.pending_count()


class BotProcess:
    """`python -m bot run --http` as a child process, configured the way a deployment is: environment only.

    `every8d_url` points it at a sandbox in the test process (EVERY8D_UID=sandbox, so the bot treats it as
    the real EVERY8D and does not start its own). The working directory is a fresh folder so a developer's
    `.env` in the repository never leaks into a test.
    """

    def __init__(self, *, standin: SlackStandIn, db_path: Path, every8d_url: str, workdir: Path,
                 port: int | None = None) -> None:
        self.standin = standin
        self.db_path = db_path
        self.workdir = workdir
        self.port = port or restart_safe_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.events_url = f"{self.url}/slack/events"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "SLACK_BOT_TOKEN": standin.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": standin.api_url,
            "BOT_DB_PATH": str(db_path),
            "BOT_APPROVERS": "U_APPROVER,U_APPROVER2",
            "BOT_APPROVAL_CHANNEL": "C_APPROVALS",
            "EVERY8D_UID": "sandbox",
            "EVERY8D_PWD": "sandbox",
            "EVERY8D_BASE_URL": every8d_url,
            "EVERY8D_TIMEOUT_SECONDS": "3",
            "EVERY8D_CALLBACK_TOKEN": CALLBACK_TOKEN,
            "BOT_STATUS_POLL_SECONDS": "1",
            "BOT_LOG_LEVEL": "INFO",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self, *, crash_at: str | None = None, timeout: float = 20.0) -> BotProcess:
        """Start (or restart) the bot on the same port and database; returns once /healthz answers."""
        env = dict(self.env)
        if crash_at:
            env[crashpoints.ENV] = crash_at
        self.runs += 1
        log = (self.workdir / f"bot-run{self.runs}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--http", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            wait_for(self._healthy, timeout=timeout, what="the bot's /healthz")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log:\n{self.log_tail()}") from None
        if self.proc.poll() is not None:  # /healthz answered by something else: this bot did not start
            raise AssertionError(f"the bot exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the bot exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def wait_exit(self, timeout: float = 15.0) -> int:
        """Wait for the process to end on its own (a crash point); returns its exit code."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the bot did not exit within {timeout:.0f} s:\n{self.log_tail()}") from None

    def kill(self) -> None:
        """SIGKILL, then reap: used to end a run and in teardown (never leaves an orphan)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        path = self.workdir / f"bot-run{self.runs}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def logs(self) -> str:
        """Every run's log, for assertions that nothing secret or alarming was printed."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("bot-run*.log")))


def card_in(standin: SlackStandIn, channel: str = "C_APPROVALS", timeout: float = 10.0) -> dict:
    """The first approval card posted in `channel`, once it is there."""
    messages = wait_for(lambda: standin.messages(channel), timeout=timeout, what=f"a card in {channel}")
    return messages[0]


def settled(db_path: Path, request_id: int, *, states: tuple[RequestState, ...] = SETTLED,
            timeout: float = 20.0) -> SendRequest:
    """Wait until the request is in one of `states` and every post has gone to Slack; returns the row."""

    def done() -> SendRequest | None:
        row = request_row(db_path, request_id)
        if row is None or row.state not in states or outbox_pending(db_path):
            return None
        return row

    try:
        return wait_for(done, timeout=timeout, interval=0.1,
                        what=f"request #{request_id} to settle in {states} with the outbox empty")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnosis(db_path, request_id)}") from None


def diagnosis(db_path: Path, request_id: int) -> str:
    """What the database says, for a failure message: the request's state and the posts still queued."""
    with open_store(db_path) as store:
        row = store.requests.get(request_id)
        queued = [(i.id, i.kind, i.attempts) for i in store.outbox.due(now=float("inf"), limit=20)]
        dead = store.outbox.dead()
    return f"state={row.state if row else None} queued={queued} dead={dead}"


def approve_first_card(product: Any, text: str = "send 0912345678 明早九點停水通知") -> dict:
    """In the in-process product: request a send, approve its card, let the send finish; returns the card
    as first posted (its ts is the thread)."""
    SlackUser(product, "U_REQUESTER").command(text)
    product.settle()
    card = product.standin.messages("C_APPROVALS")[0]
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    return card


def without_backoff(product: Any) -> None:
    """Let the EVERY8D client retry status and credit calls without sleeping between attempts: the
    backoff itself is the client's own tested concern, and here it would only slow the suite down."""
    product.runtime.gateway._sleep = lambda _seconds: None


def audit_actions(db_path: Path, request_id: int) -> list[str]:
    with open_store(db_path) as store:
        return [a["action"] for a in store.audit.for_request(request_id)]
