"""The EVERY8D sandbox: a real HTTP server answering every API 2.1 endpoint in EVERY8D's own formats.

Why a real server and not a mock: the client's hardest code is about the wire (form encoding, comma and TAB
bodies, HTML error pages, resets, timeouts after a send was accepted). Only a socket exercises it. The
sandbox serves the bot's console, end-to-end tests and benchmarks; account rules live in `engine`, faults in
`faults`, pushes in `callbacks`.

Requests may be GET or POST (query string and form body are both read, the body winning), parameter names
are case-insensitive, and any path prefix before `API21/HTTP/` is accepted (enterprise hosts use
`/prepaid/API21/HTTP/`). SendParamSMS reads a JSON body and answers JSON (`Result`, `Status`, `Msg`);
`legacy_platform=True` makes the 2021 endpoints (SendParamSMS, getReplyMessage) answer 404, as a platform
without them does, and its SMS status rows have the 2017 five columns (no RECEIVED_TIME). The request log
never holds a password and nothing is printed per request: the standard request line would carry a GET's PWD.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, unquote

from every8d.sandbox.callbacks import CallbackPusher
from every8d.sandbox.engine import (
    BAD_PARAMETER,
    HOST_ERROR,
    Engine,
    ParamEntry,
    Refusal,
    SandboxBatch,
    SandboxRecord,
    taipei_time,
)
from every8d.sandbox.faults import Faults, refusal_body

_log = logging.getLogger(__name__)

_API_ROOT = "/api21/http/"
#: lower-cased path after API21/HTTP/ -> (canonical endpoint name, action, kind)
_ENDPOINTS: dict[str, tuple[str, str, str]] = {
    "sendsms.ashx": ("sendSMS.ashx", "send", "sms"),
    "mms/sendmms.ashx": ("MMS/sendMMS.ashx", "send", "mms"),
    "getdeliverystatus.ashx": ("getDeliveryStatus.ashx", "status", "sms"),
    "mms/getdeliverystatus.ashx": ("MMS/getDeliveryStatus.ashx", "status", "mms"),
    "getcredit.ashx": ("getCredit.ashx", "credit", "sms"),
    "erasebooking.ashx": ("eraseBooking.ashx", "erase", "sms"),
    "mms/erasebooking.ashx": ("MMS/eraseBooking.ashx", "erase", "mms"),
    "sendparamsms.ashx": ("SendParamSMS.ashx", "param", "sms"),
    "getreplymessage.ashx": ("getReplyMessage.ashx", "replies", "sms"),
}
#: Endpoints of the 2021 revision, absent on a legacy platform.
_ENDPOINTS_2021 = frozenset({"SendParamSMS.ashx", "getReplyMessage.ashx"})

_PLAIN = "text/plain; charset=utf-8"
_JSON = "application/json; charset=utf-8"
_HTML = "text/html; charset=utf-8"
_HOST_ERROR_BODY = f"{HOST_ERROR[0]}, {HOST_ERROR[1]}"
_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Runtime Error</title></head>"
    "<body><h1>Server Error in '/API21' Application.</h1><p>Runtime Error</p></body></html>"
)
#: Faults answered with a fixed response and no processing: kind -> (HTTP status, body, content type).
_CANNED: dict[str, tuple[int, str, str]] = {
    "-99": (200, _HOST_ERROR_BODY, _PLAIN),
    "http500": (500, _ERROR_PAGE, _HTML),
    "html": (200, _ERROR_PAGE, _HTML),
    "garbage": (200, "???", _PLAIN),
    "empty": (200, "", _PLAIN),
}


@dataclass(frozen=True, slots=True)
class SandboxCall:
    """One request as received: canonical endpoint (e.g. "MMS/sendMMS.ashx"), method, decoded parameters
    with PWD replaced by "***"."""

    endpoint: str
    method: str
    params: dict[str, str]
    #: A JSON call's body as received (SendParamSMS), PWD masked; None for form calls.
    document: dict | None = None


def _decode_form(text: str) -> dict[str, str]:
    return dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"))


def _masked(params: Mapping[str, str]) -> dict[str, str]:
    return {name: ("***" if name.upper() == "PWD" else value) for name, value in params.items()}


def _endpoint_for(path: str) -> tuple[str, str, str] | None:
    lowered = unquote(path).lower()
    start = lowered.find(_API_ROOT)
    if start < 0:
        return None
    return _ENDPOINTS.get(lowered[start + len(_API_ROOT) :])


def _page_number(text: str) -> int:
    """PNO is 1-based; empty (or anything not a positive number) means the first page."""
    text = text.strip()
    return int(text) if text.isdigit() and int(text) > 0 else 1


def format_reply_row(record: SandboxRecord) -> str:
    """`NAME<TAB>MOBILE<TAB>CONTENT<TAB>SEND_TIME` as EVERY8D prints it: the reply text as typed, so a TAB or
    line break in it breaks the row exactly as it would on the real platform."""
    return "\t".join([record.name, record.mobile, record.text, taipei_time(record.sent_at, "%Y/%m/%d %H:%M:%S")])


def _json_document(raw: str) -> dict | None:
    try:
        document = json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _param_answer(result: bool, status: str, msg: str) -> str:
    return json.dumps({"Result": result, "Status": status, "Msg": msg}, ensure_ascii=False)


def format_row(record: SandboxRecord, received_column: bool = True) -> str:
    """`NAME<TAB>MOBILE<TAB>SEND_TIME<TAB>COST<TAB>STATUS`, plus RECEIVED_TIME when `received_column` (SMS rows
    of the 2021 revision, delta notes §4.5: empty until the carrier's final report; the MMS table and a
    2017 platform keep five columns).

    A reply (999) row carries no reply text: neither revision has such a column (the text comes by push
    or getReplyMessage), so the sandbox never invents one for the client to read."""
    columns = [
        record.name,
        record.mobile,
        taipei_time(record.sent_at, "%Y/%m/%d %H:%M:%S"),
        f"{record.cost:.1f}",
        str(record.status),
    ]
    if received_column:
        columns.append(taipei_time(record.received_at, "%Y/%m/%d %H:%M:%S") if record.received_at else "")
    return "\t".join(columns)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        super().__init__(address, _Handler)
        self.sandbox = sandbox

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out or hang up mid-answer are normal here (faults do it on purpose).
        _log.debug("sandbox connection from %s ended abnormally", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle plus delayed ACK stall every
    # keep-alive call by ~40 ms on loopback.
    disable_nagle_algorithm = True
    server_version = "Microsoft-IIS/10.0"  # what EVERY8D's hosts announce; clients must not care
    sys_version = ""
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: object) -> None:
        """Silenced: the default prints the request line, and a GET's request line carries PWD."""

    def _serve(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        params = _decode_form(query)
        raw = ""
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", errors="replace")
        sandbox = self.server.sandbox
        endpoint = _endpoint_for(path)
        document = _json_document(raw) if endpoint and endpoint[1] == "param" else None
        if document is None:
            params.update(_decode_form(raw))
        sandbox._record_call(endpoint[0] if endpoint else path, method, params, document)
        if endpoint is None or (sandbox.legacy_platform and endpoint[0] in _ENDPOINTS_2021):
            self._answer(404, "Not Found", _PLAIN)
            return
        fault = sandbox.faults.take(endpoint[0])
        sandbox._pause(sandbox.faults.latency)
        if fault == "reset":
            self._reset()
        elif fault == "hang":
            sandbox._pause(sandbox.faults.hang_seconds)
            self._answer(200, _HOST_ERROR_BODY, _PLAIN)
        elif fault == "-99" and endpoint[1] == "param":  # the JSON endpoint refuses in its own shape
            self._answer(200, _param_answer(False, str(HOST_ERROR[0]), HOST_ERROR[1]), _JSON)
        elif fault in _CANNED:
            self._answer(*_CANNED[fault])
        elif (refusal := refusal_body(fault)) is not None:
            if endpoint[1] == "param":  # the JSON endpoint refuses in its own shape
                code, _, text = refusal.partition(",")
                self._answer(200, _param_answer(False, code, text.strip()), _JSON)
            else:
                self._answer(200, refusal, _PLAIN)
        elif endpoint[1] == "param":
            body = sandbox._dispatch_param(document, raw)
            if fault == "accept_then_hang":
                sandbox._pause(sandbox.faults.hang_seconds)
            self._answer(200, body, _JSON)
        else:
            body = sandbox._dispatch(endpoint[1], endpoint[2], params)
            if fault == "accept_then_hang":
                sandbox._pause(sandbox.faults.hang_seconds)
            self._answer(200, body, _PLAIN)

    def _answer(self, status: int, body: str, content_type: str) -> None:
        payload = body.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client gave up (after a hang): nothing to answer to

    def _reset(self) -> None:
        """Abort the TCP connection (RST) without a byte of answer."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


class Sandbox:
    """A local EVERY8D: one account, real HTTP, deterministic under `seed`, time from `clock`.

    See the sandbox API brief for every argument; `contacts` ({number: name}) additionally fills the NAME
    column and callback parameter, as the portal's address book does.
    """

    def __init__(
        self,
        uid: str = "sandbox",
        pwd: str = "sandbox",
        credit: float = 1000.0,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        delivery_seconds: float = 2.0,
        failure_rates: Mapping[int, float] | None = None,
        failing_numbers: Mapping[str, int] | None = None,
        international_enabled: bool = False,
        callback_url: str | None = None,
        callback_retry_seconds: float = 0.5,
        reply_rate: float = 0.0,
        background: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        contacts: Mapping[str, str] | None = None,
        mms_terms: str = "2021",
        legacy_platform: bool = False,
    ) -> None:
        self.uid = uid
        #: Answer 404 on the 2021 endpoints (SendParamSMS, getReplyMessage), like a platform without them.
        self.legacy_platform = legacy_platform
        self.pwd = pwd
        self.faults = Faults()
        self._clock = clock or time.time
        self._pusher = CallbackPusher(callback_url, self._clock, callback_retry_seconds) if callback_url else None
        self._engine = Engine(
            uid=uid,
            pwd=pwd,
            credit=credit,
            seed=seed,
            clock=self._clock,
            delivery_seconds=delivery_seconds,
            failure_rates=failure_rates,
            failing_numbers=failing_numbers,
            international_enabled=international_enabled,
            reply_rate=reply_rate,
            contacts=contacts,
            emit=self._pusher.enqueue if self._pusher else None,
            mms_terms=mms_terms,
            forced_status=self.faults.forced_status,
        )
        self._background = background
        self._address = (host, port)
        self._calls: list[SandboxCall] = []
        self._calls_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind and serve in daemon threads (plus the ticker and the callback pusher when background)."""
        self._server = _Server(self._address, self)
        self._spawn(self._server.serve_forever, "every8d-sandbox-http", 0.02)
        if self._background:
            self._spawn(self._tick_forever, "every8d-sandbox-ticker")
            if self._pusher is not None:
                self._pusher.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still hanging on a fault are released at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._pusher is not None:
            self._pusher.stop()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/API21/HTTP/`; endpoints hang off it."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/API21/HTTP/"

    # --- state for tests and tools -------------------------------------------------------------------

    @property
    def credit(self) -> float:
        return self._engine.credit

    def set_credit(self, value: float) -> None:
        self._engine.set_credit(value)

    @property
    def batches(self) -> dict[str, SandboxBatch]:
        """Snapshot of the batch index; each SandboxBatch (and its records) is live."""
        return self._engine.batches()

    @property
    def calls(self) -> list[SandboxCall]:
        """Every request received, in order, PWD masked (the live list: `sb.calls.clear()` works)."""
        return self._calls

    @property
    def pending_callbacks(self) -> int:
        """Pushes queued or awaiting a retry (0 without a callback_url): lets tests wait for delivery."""
        return self._pusher.pending if self._pusher is not None else 0

    def tick(self) -> None:
        """Progress statuses and push due callbacks now (what the background threads do continuously)."""
        self._engine.advance()
        if self._pusher is not None:
            self._pusher.pump()

    def simulate_reply(self, batch_id: str, mobile: str, text: str, at: float | datetime | None = None) -> None:
        """A recipient answers: a 999 record in the batch and a callback with SM = text (pushed by the
        background pusher, or at the next `tick()`). `at` (epoch or aware datetime) defaults to now."""
        when = at.timestamp() if isinstance(at, datetime) else at
        self._engine.simulate_reply(batch_id, mobile, text, when)

    # --- request handling (called by the handler threads) --------------------------------------------

    def _record_call(
        self, endpoint: str, method: str, params: Mapping[str, str], document: dict | None = None
    ) -> None:
        masked = None if document is None else _masked(document)
        with self._calls_lock:
            self._calls.append(SandboxCall(endpoint, method, _masked(params), masked))

    def _dispatch_param(self, document: dict | None, raw: str) -> str:
        """SendParamSMS: the JSON answer for one call; a refusal is `Result:false` with its code as Status."""
        try:
            if document is None:
                raise Refusal(*BAD_PARAMETER)
            fields = {str(name).upper(): value for name, value in document.items()}
            self._engine.authenticate(str(fields.get("UID", "")), str(fields.get("PWD", "")))
            recipients = fields.get("RECIPIENTDATALIST")
            if not isinstance(recipients, list) or not all(isinstance(r, dict) for r in recipients):
                raise Refusal(*BAD_PARAMETER)
            entries = []
            for recipient in recipients:
                values = {str(name).upper(): str(value if value is not None else "") for name, value in recipient.items()}
                entries.append(ParamEntry(values.get("MOBILE", ""), values.get("PARAM", ""), values.get("NAME", ""),
                                          values.get("MR", ""), values.get("SENDTIME", "")))
            outcome = self._engine.send_param(
                subject=str(fields.get("SB", "") or ""), template=str(fields.get("MSG", "") or ""), entries=entries,
                validity=str(fields.get("RETRYTIME", "") or ""),
            )
        except Refusal as refusal:
            return _param_answer(False, str(refusal.code), refusal.message)
        except Exception:
            _log.exception("sandbox failed on a SendParamSMS call")
            return _param_answer(False, str(HOST_ERROR[0]), HOST_ERROR[1])
        msg = f"{outcome.credit:.2f},{outcome.sent},{outcome.cost:.1f},{outcome.unsent},{outcome.batch_id}"
        return _param_answer(True, "0", msg)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _dispatch(self, action: str, kind: str, params: Mapping[str, str]) -> str:
        """The plain-text body for one authenticated call; any internal error answers -99 like the host."""
        fields = {name.upper(): value for name, value in params.items()}
        try:
            self._engine.authenticate(fields.get("UID", ""), fields.get("PWD", ""))
            return self._perform(action, kind, fields)
        except Refusal as refusal:
            return refusal.body
        except Exception:
            _log.exception("sandbox failed on a %s call", action)
            return _HOST_ERROR_BODY

    def _perform(self, action: str, kind: str, fields: Mapping[str, str]) -> str:
        if action == "send":
            outcome = self._engine.send(
                kind,
                subject=fields.get("SB", ""),
                message=fields.get("MSG", ""),
                dest=fields.get("DEST", ""),
                send_time=fields.get("ST", ""),
                validity=fields.get("RETRYTIME", ""),
                attachment=fields.get("ATTACHMENT", ""),
                attachment_type=fields.get("TYPE", ""),
            )
            return f"{outcome.credit:.2f},{outcome.sent},{outcome.cost:.1f},{outcome.unsent},{outcome.batch_id}"
        if action == "status":
            total, rows = self._engine.status_page(kind, fields.get("BID", ""), _page_number(fields.get("PNO", "")))
            with_received = kind == "sms" and not self.legacy_platform
            return "".join(f"{line}\n" for line in [str(total), *(format_row(row, with_received) for row in rows)])
        if action == "replies":
            total, rows = self._engine.reply_page(fields.get("BID", ""), _page_number(fields.get("PNO", "")))
            return "".join(f"{line}\n" for line in [str(total), *map(format_reply_row, rows)])
        if action == "credit":
            return f"{self._engine.credit:.2f}"
        cancelled = self._engine.erase_booking(kind, fields.get("BID", ""))
        return "" if cancelled is None else f"{cancelled[0]},{cancelled[1]:.1f}"

    def _spawn(self, target: Callable[..., object], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _tick_forever(self) -> None:
        while not self._stopping.wait(0.1):
            self._engine.advance()


def run_forever(host: str = "127.0.0.1", port: int = 8008, **sandbox_kwargs: object) -> None:
    """Serve a sandbox until Ctrl-C (what `every8d-bot sandbox --port N` runs); prints where and as whom."""
    sandbox = Sandbox(host=host, port=port, **sandbox_kwargs).start()  # type: ignore[arg-type]
    print(f"EVERY8D sandbox at {sandbox.base_url}  UID={sandbox.uid}  PWD={sandbox.pwd}  (Ctrl-C stops)", flush=True)
    stopping = threading.Event()
    # Explicit handlers: a shell that starts us in the background makes Python inherit SIGINT as ignored,
    # so Ctrl-C (or a supervisor's SIGTERM) would otherwise never stop the sandbox.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
