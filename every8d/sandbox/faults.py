"""Fault injection for the sandbox: the failures a real EVERY8D host shows, on demand.

The client's whole error model (credential, provider, unavailable, outcome-unknown) can only be tested if
the server misbehaves exactly when a test says so. Faults are queued: `inject("reset", count=2,
endpoint="sendSMS.ashx")` makes the next two sendSMS calls fail, other endpoints unaffected.

Every code EVERY8D documents can be produced on request:
- an endpoint error code: `inject("-24", endpoint="sendSMS.ashx")` answers `-24, <EVERY8D's text>` (any
  negative number is a kind; nothing is processed);
- a delivery status: `force_status("0912000005", 104)` gives every recipient whose number ends with those
  digits status 104. Negative codes, 301 and 500 are given when the send is accepted (nothing charged, as
  EVERY8D refuses such a recipient up front); every other code (final, pending, or one no table knows) when
  the batch would have been delivered.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from every8d.status import REPLY_CODE

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
    "-N": "any negative number, e.g. -24: answer EVERY8D's `-N, <text>` body, nothing processed",
}


_REFUSAL_KIND = re.compile(r"-\d{1,4}")
#: EVERY8D's own wording of the endpoint codes (delta notes §5); any other code gets a generic sentence.
REFUSAL_TEXTS: dict[int, str] = {
    -1: "關閉連線失敗。",
    -3: "查無此預約簡訊。",
    -4: "簡訊已發送或已刪除。",
    -8: "系統忙碌中，請稍後再試。",
    -24: "The content is empty.",
    -25: "查無此批次代碼。",
    -27: "未輸入收訊人號碼。",
    -41: "no mobile.",
    -98: "0900000001/0900000002",
    -99: "主機端發生不明錯誤，請與廠商窗口聯繫。",
    -100: "帳號或密碼錯誤。",
    -101: "密碼錯誤。",
    -300: "帳號密碼不得為空值。",
    -303: "主旨不得為空。",
    -304: "未上傳圖檔。",
    -305: "圖檔類型不得為空。",
    -306: "收訊人號碼格式錯誤。",
    -314: "檔案大小超過限制。",
}


def refusal_body(kind: str | None) -> str | None:
    """The body answered for a `-N` fault (`-98,<numbers>` for -98, whose tail is numbers, not a message)."""
    if kind is None or not _REFUSAL_KIND.fullmatch(kind):
        return None
    code = int(kind)
    text = REFUSAL_TEXTS.get(code, "發生錯誤。")
    return f"{code},{text}" if code == -98 else f"{code}, {text}"


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
        self._statuses: dict[str, int] = {}
        self._lock = threading.Lock()

    def force_status(self, number_suffix: str, code: int) -> None:
        """Recipients whose number ends with `number_suffix` (digits) get status `code` (any code but 999,
        a reply: use `simulate_reply`). Later calls for the same suffix replace earlier ones; the longest
        matching suffix wins."""
        digits = "".join(c for c in number_suffix if c.isdigit())
        if re.fullmatch(r"09\d{8}", digits):
            digits = digits[1:]  # a whole Taiwan number as typed (0912…): numbers are matched in E.164 (+886912…)
        if not digits:
            raise ValueError("the number suffix must contain digits")
        if int(code) == REPLY_CODE:
            raise ValueError("999 marks a reply; use simulate_reply")
        with self._lock:
            self._statuses[digits] = int(code)

    def forced_status(self, mobile: str) -> int | None:
        """The status forced on `mobile`, or None (the engine asks for each recipient)."""
        if not self._statuses:
            return None
        with self._lock:
            matches = [suffix for suffix in self._statuses if mobile.endswith(suffix)]
            return self._statuses[max(matches, key=len)] if matches else None

    def inject(self, kind: str, count: int = 1, endpoint: str | None = None, *, after: int = 0) -> None:
        """Make the next `count` calls (to `endpoint`, e.g. "sendSMS.ashx" or "MMS/sendMMS.ashx"; None = any)
        fail as `kind` (one of FAULT_KINDS), once `after` matching calls have gone through unharmed (e.g. the
        second part of a send fails: `after=1`)."""
        if after < 0:
            raise ValueError("after must be at least 0")
        if kind not in FAULT_KINDS and not _REFUSAL_KIND.fullmatch(kind):
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)} or -N")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._pending.append(_Pending(kind, count, endpoint.lower() if endpoint else None, after))

    def clear(self) -> None:
        """Drop every queued fault and forced status and reset latency (hang_seconds is kept)."""
        with self._lock:
            self._pending.clear()
            self._statuses.clear()
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
