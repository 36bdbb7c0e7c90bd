"""EVERY8D's push callback (status reports and replies), as a small WSGI app.

The callback is not signed, so its path carries a secret: `/every8d/callback/<EVERY8D_CALLBACK_TOKEN>`.
A wrong or missing secret gets 404 (compared in constant time) and stores nothing. A report is
answered 200 only once it is committed; if it cannot be stored the answer is 503, so EVERY8D retries
(up to 10 times). Nothing here logs the path, the query or a phone number.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Any

from every8d.callback import parse_callback
from every8d.errors import ValidationError
from services.tracking import ReportTooEarly, TrackingService

log = logging.getLogger("every8d_bot.callback")

PREFIX = "/every8d/callback/"
#: A longer query is refused outright (EVERY8D's reports are a few hundred bytes).
MAX_QUERY_BYTES = 16 * 1024

StartResponse = Callable[..., Any]


class CallbackReceiver:
    """WSGI app for EVERY8D's pushes; mounted beside Slack's events (HTTP mode) or alone (Socket Mode)."""

    def __init__(self, token: str, tracking: TrackingService, on_stored: Callable[[], None] = lambda: None) -> None:
        """`on_stored`: called after a push queued a post (the runtime wakes the Slack poster with it)."""
        self._token = token.encode()
        self.tracking = tracking
        self.on_stored = on_stored

    @staticmethod
    def handles(path: str) -> bool:
        """Whether a request path is meant for this receiver (the WSGI router asks)."""
        return path.startswith(PREFIX)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        supplied = path[len(PREFIX):].strip("/").encode() if path.startswith(PREFIX) else b""
        if not self._token or not hmac.compare_digest(supplied, self._token):
            return _answer(start_response, "404 Not Found", "not found")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "POST"):
            return _answer(start_response, "405 Method Not Allowed", "GET only")
        query = _query(environ, method)
        if query is None:
            return _answer(start_response, "413 Payload Too Large", "too large")
        try:
            report = parse_callback(query)
        except ValidationError as exc:
            log.info("refused a malformed callback: %s", exc.en)
            return _answer(start_response, "400 Bad Request", exc.en)
        queued_before = self.tracking.posts_queued_here()
        try:
            outcome = self.tracking.ingest_callback(report)
        except ReportTooEarly:
            log.info("a callback came before its send was recorded; answered 503 so EVERY8D pushes it again")
            return _answer(start_response, "503 Service Unavailable", "retry later")
        except Exception as exc:  # noqa: BLE001 - answer 503 so EVERY8D retries; never lose the report
            # The type only: an exception's text could carry the report's phone number.
            log.error("could not store a callback report (%s); answered 503 so EVERY8D retries",
                      type(exc).__name__)
            log.debug("callback storage failure", exc_info=exc)
            return _answer(start_response, "503 Service Unavailable", "retry later")
        log.debug("callback stored: %s", outcome)
        if self.tracking.posts_queued_here() != queued_before:
            # Most reports only change a count whose summary update is already queued: waking the poster
            # for those made it query the outbox once per push, a third of a push's cost.
            self.on_stored()
        return _answer(start_response, "200 OK", "OK")


def _query(environ: dict[str, Any], method: str) -> str | None:
    """The report's parameters: the query string, plus a form body for POST. None when oversized."""
    query = environ.get("QUERY_STRING", "")
    if method == "POST":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_QUERY_BYTES:
            return None
        body = environ["wsgi.input"].read(length).decode("utf-8", "replace") if length > 0 else ""
        query = "&".join(part for part in (query, body) if part)
    return query if len(query) <= MAX_QUERY_BYTES else None


def _answer(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
