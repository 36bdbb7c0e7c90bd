"""Pushes status changes and replies to the client's callback URL, as EVERY8D does (spec 2.1).

Why a queue and its own thread: a receiver that is down, slow or answering 500 must never hold up an API
request or the state lock. The engine only enqueues small tuples; this module sends them with HTTP GET,
retrying a non-200 answer (or no answer) at most 10 times after the first push (11 attempts in all: the
original, §2.1, reads "Retry 次數最多 10 次，錯誤超過 10 次後將不再傳送"), with a delay that starts at
`retry_seconds` and doubles up to 5 s. Retries are scheduled on the injected clock, not slept, so a fake
clock drives them in tests and one failing report never delays the others.

Parameters sent: exactly what EVERY8D's real push carries (delta notes §4.11, the push recorded in
minchao/every8d-php's README), with the same names, case and order: BatchID, RM (E.164), RT
(yyyyMMddHHmmss, Taipei), STATUS, SM (the reply on 999, the sent text on every other report), CustID,
UserNo, ST (send time), MR (one per message), SUBJECT (the send's SB; never `SB` in the push), NAME (the
contact name, often empty), USERID (the sending account), SOURCE (empty), CHARGE (points). Values are
form-encoded (`+` for a space, `%2b` for a plus) with lower-case escapes, like the real platform. So the
bot is tested against EVERY8D's shape, never against the shape its own client happens to read.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import logging
import re
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from urllib.parse import urlencode

from every8d.sandbox.engine import CallbackEvent, taipei_time

#: The first push plus EVERY8D's "at most 10" retries.
MAX_RETRIES = 10
MAX_ATTEMPTS = 1 + MAX_RETRIES
MAX_RETRY_DELAY = 5.0
REQUEST_TIMEOUT = 5.0

_log = logging.getLogger(__name__)
_ESCAPE = re.compile(r"%[0-9A-F]{2}")


#: The sandbox account's customer id and user code as pushed (EVERY8D's real values are per account).
CUST_ID = "SANDBOX"
USER_NO = "000000"


def callback_query(event: CallbackEvent) -> str:
    """The query string of one push, encoded and ordered as EVERY8D sends it."""
    query = urlencode(
        [
            ("BatchID", event.batch_id),
            ("RM", event.mobile),
            ("RT", taipei_time(event.at, "%Y%m%d%H%M%S")),
            ("STATUS", str(event.status)),
            ("SM", event.text),
            ("CustID", CUST_ID),
            ("UserNo", USER_NO),
            ("ST", taipei_time(event.sent_at or event.at, "%Y%m%d%H%M%S")),
            ("MR", event.mr or str(event.record_no)),  # SendParamSMS: the Mr given at send
            ("SUBJECT", event.subject),
            ("NAME", event.name),
            ("USERID", event.user_id),
            ("SOURCE", ""),
            ("CHARGE", _points(event.cost)),
        ]
    )
    return _ESCAPE.sub(lambda match: match.group().lower(), query)


def _points(cost: float) -> str:
    """CHARGE as the platform writes it: `0`, `1`, `1.5`."""
    return str(int(cost)) if float(cost).is_integer() else f"{cost:g}"


class CallbackPusher:
    """Queue of pending pushes to one URL. `pump()` sends what is due; `start()` runs it in a thread."""

    def __init__(self, url: str, clock: Callable[[], float], retry_seconds: float = 0.5) -> None:
        self._url = url
        self._separator = "&" if "?" in url else "?"
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._fresh: deque[CallbackEvent] = deque()
        self._retries: list[tuple[float, int, int, CallbackEvent]] = []
        self._sequence = itertools.count()
        self._queue_lock = threading.Lock()
        self._pump_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # urllib, not requests: urllib3 upper-cases percent escapes and the real pushes use lower case.
        # No proxies: the receiver is wherever callback_url says, not behind this process's proxy settings.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def enqueue(self, event: CallbackEvent) -> None:
        """Queue one push (called by the engine under its lock: must stay cheap and never block)."""
        with self._queue_lock:
            self._fresh.append(event)
        self._wake.set()

    @property
    def pending(self) -> int:
        """Pushes not yet delivered nor given up (fresh and waiting for a retry)."""
        with self._queue_lock:
            return len(self._fresh) + len(self._retries)

    def pump(self) -> None:
        """Send every push that is due now, once each; failures are rescheduled, not retried in place."""
        with self._pump_lock:
            now = self._clock()
            while not self._stopping.is_set() and (item := self._next_due(now)) is not None:
                failures, event = item
                if not self._deliver(event):
                    self._retry_later(failures + 1, event)

    def start(self) -> None:
        """Push in a daemon thread until `stop()`."""
        self._thread = threading.Thread(target=self._run, name="every8d-sandbox-callbacks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop pushing; a push in flight to a stuck receiver is abandoned to its daemon thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            self.pump()

    def _next_due(self, now: float) -> tuple[int, CallbackEvent] | None:
        with self._queue_lock:
            if self._fresh:
                return 0, self._fresh.popleft()
            if self._retries and self._retries[0][0] <= now:
                _, _, failures, event = heapq.heappop(self._retries)
                return failures, event
        return None

    def _retry_later(self, failures: int, event: CallbackEvent) -> None:
        if failures >= MAX_ATTEMPTS:
            _log.warning("callback for batch %s gave up after %d attempts", event.batch_id, failures)
            return
        delay = min(self._retry_seconds * 2 ** (failures - 1), MAX_RETRY_DELAY)
        with self._queue_lock:
            heapq.heappush(self._retries, (self._clock() + delay, next(self._sequence), failures, event))

    def _deliver(self, event: CallbackEvent) -> bool:
        url = f"{self._url}{self._separator}{callback_query(event)}"
        try:
            with self._opener.open(url, timeout=REQUEST_TIMEOUT) as response:
                response.read()
                return response.status == 200
        except urllib.error.HTTPError as error:
            error.close()
            return False
        except (OSError, ValueError, http.client.HTTPException) as error:
            _log.debug("callback for batch %s failed: %s", event.batch_id, type(error).__name__)
            return False
