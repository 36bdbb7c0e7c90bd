"""Fault injection for the sandbox: the failures a real EVERY8D host shows, on demand.

The client's whole error model (credential, provider, unavailable, outcome-unknown) can only be tested if
the server misbehaves exactly when a test says so. Faults are queued: `inject("reset", count=2,
endpoint="sendSMS.ashx")` makes the next two sendSMS calls fail, other endpoints unaffected.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: Every kind `inject` accepts, with what the server then does.
FAULT_KINDS: dict[str, str] = {
    "-99": "answer EVERY8D's host-error body, nothing processed",
    "http500": "HTTP 500 with an HTML body, nothing processed",
    "html": "HTTP 200 with an HTML error page, nothing processed",
    "garbage": "HTTP 200 with '???', nothing processed",
    "empty": "HTTP 200 with an empty body, nothing processed",
    "hang": "wait hang_seconds, then answer -99; nothing processed",
    "reset": "close the connection without answering, nothing processed",
    "accept_then_hang": "process the call (a send is charged), then wait hang_seconds before answering",
}


@dataclass(slots=True)
class _Pending:
    kind: str
    remaining: int
    endpoint: str | None
    skip: int = 0


class Faults:
    """Queue of injected faults plus a global latency; safe to change from any thread while serving."""

    def __init__(self) -> None:
        self.latency: float = 0.0
        #: How long "hang" and "accept_then_hang" wait (30 s by default; tests shorten it).
        self.hang_seconds: float = 30.0
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()

    def inject(self, kind: str, count: int = 1, endpoint: str | None = None, *, after: int = 0) -> None:
        """Make the next `count` calls (to `endpoint`, e.g. "sendSMS.ashx" or "MMS/sendMMS.ashx"; None = any)
        fail as `kind` (one of FAULT_KINDS), once `after` matching calls have gone through unharmed (e.g. the
        second part of a send fails: `after=1`)."""
        if after < 0:
            raise ValueError("after must be at least 0")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._pending.append(_Pending(kind, count, endpoint.lower() if endpoint else None, after))

    def clear(self) -> None:
        """Drop every queued fault and reset latency (hang_seconds is kept)."""
        with self._lock:
            self._pending.clear()
            self.latency = 0.0

    def take(self, endpoint: str) -> str | None:
        """The fault the call to `endpoint` must suffer, consuming one use of it; None if none applies.

        The oldest matching injection wins, so faults fire in the order they were injected.
        """
        name = endpoint.lower()
        with self._lock:
            for index, pending in enumerate(self._pending):
                if pending.endpoint is None or pending.endpoint == name:
                    if pending.skip:
                        pending.skip -= 1
                        return None
                    pending.remaining -= 1
                    if pending.remaining == 0:
                        del self._pending[index]
                    return pending.kind
        return None
