"""Client tests over real HTTP against a small canned-response server on 127.0.0.1.

Like minchao/go-every8d's tests: the exact form fields of every endpoint are asserted as the server received
them, and every error path is driven by what the server answers (HTML, HTTP 500, empty, hang, reset).
"""

from __future__ import annotations

import base64
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests

from every8d.client import Every8dClient
from every8d.errors import (
    CredentialError,
    InsecureTransportError,
    OutcomeUnknownError,
    ProviderError,
    UnavailableError,
    ValidationError,
)
from every8d.results import CancelResult, NothingToCancel, SendResult

UID = "acct01"
PWD = "s3cr3t-Pw&+"
BATCH = "220478cc-8506-49b2-93b7-2505f651c12e"
PREFIX = "/prepaid/API21/HTTP/"
SENT = f"1230.00,2,2.0,0,{BATCH}"
WRONG_LOGIN = "-100, 帳號或密碼錯誤。"
HTML = "<html><head><title>Runtime Error</title></head><body>Server Error in '/' Application.</body></html>"


@dataclass(frozen=True)
class Reply:
    """What the canned server does for one request."""

    body: str = ""
    status: int = 200
    hang: float = 0.0  # seconds to wait before answering (released early at teardown)
    reset: bool = False  # close the connection with a RST instead of answering


@dataclass(frozen=True)
class Received:
    method: str
    endpoint: str
    query: str
    content_type: str
    raw_body: bytes
    peer_port: int

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_body.decode("ascii"), keep_blank_values=True, strict_parsing=True))


class CannedServer:
    """Answers each endpoint from a queue of replies; records every request it receives."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._queues: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self.released = threading.Event()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}{PREFIX.rstrip('/')}"  # no trailing slash

    def queue(self, endpoint: str, *replies: Reply | str) -> None:
        with self._lock:
            self._queues.setdefault(endpoint, []).extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def count(self, endpoint: str) -> int:
        return sum(1 for r in self.received if r.endpoint == endpoint)

    def _next(self, endpoint: str) -> Reply:
        with self._lock:
            queue = self._queues.get(endpoint, [])
            return queue.pop(0) if queue else Reply("", status=404)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: avoid a 40 ms stall

            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def _serve(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                received = Received(
                    self.command, path.removeprefix(PREFIX), query, self.headers.get("Content-Type", ""),
                    self.rfile.read(length), self.client_address[1],
                )
                server.received.append(received)
                reply = server._next(received.endpoint)
                if reply.hang:
                    server.released.wait(reply.hang)
                if reply.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                payload = reply.body.encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> CannedServer:
        self._http.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self._http.shutdown()
        self._http.server_close()


class CountingSession(requests.Session):
    """A real session that counts the requests it was asked to make (for hosts that never answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls += 1
        return super().request(*args, **kwargs)


class RaisingSession(requests.Session):
    """A session whose every request fails with one requests exception, before any network I/O."""

    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls += 1
        raise self.exc


@pytest.fixture
def server() -> Iterator[CannedServer]:
    canned = CannedServer().start()
    yield canned
    canned.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(base_url: str, sleeps: list[float], **kwargs: Any) -> Every8dClient:
    options: dict[str, Any] = {"timeout": 2.0, "connect_timeout": 1.0, "retries": 2, "sleep": sleeps.append}
    options.update(kwargs)
    return Every8dClient(base_url, UID, PWD, **options)


@pytest.fixture
def client(server: CannedServer, sleeps: list[float]) -> Iterator[Every8dClient]:
    with make_client(server.base_url, sleeps) as every8d:
        yield every8d


def status_page(total: int, first: int, count: int) -> str:
    rows = [f"\t+8869{n:08d}\t2024/05/01 09:30:00\t1.0\t100" for n in range(first, first + count)]
    return "\r\n".join([str(total), *rows]) + "\r\n"


def refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert PWD not in text and "s3cr3t" not in text and UID not in text


# --- exact form fields, POST only -----------------------------------------------------------------------


def test_send_sms_posts_exact_form_fields(server: CannedServer, client: Every8dClient) -> None:
    server.queue("sendSMS.ashx", SENT)
    result = client.send_sms(
        message="您好 Hello & 100% ＋測試",
        recipients=["+886912345678", " 0922333444 "],
        subject="週年慶",
        send_at=datetime(2024, 5, 1, 1, 30, 5, tzinfo=UTC),
        validity_minutes=60,
    )
    assert result == SendResult(credit=1230.0, sent=2, cost=2.0, unsent=0, batch_id=BATCH)
    (request,) = server.received
    assert request.method == "POST"
    assert request.endpoint == "sendSMS.ashx"
    assert request.query == ""
    assert request.content_type == "application/x-www-form-urlencoded; charset=utf-8"
    assert request.form == {
        "UID": UID,
        "PWD": PWD,
        "SB": "週年慶",
        "MSG": "您好 Hello & 100% ＋測試",
        "DEST": "+886912345678,0922333444",
        "ST": "20240501093005",  # 01:30:05 UTC is 09:30:05 in Taipei
        "RETRYTIME": "60",
    }
    assert b"%E6%82%A8%E5%A5%BD" in request.raw_body  # 您好, UTF-8 percent-encoded


def test_send_sms_now_sends_empty_schedule_and_no_validity(server: CannedServer, client: Every8dClient) -> None:
    server.queue("sendSMS.ashx", f"1230.00,1,1.0,{BATCH}")
    assert client.send_sms(message="hi", recipients=["0912345678"]).unsent == 0
    assert server.received[0].form == {"UID": UID, "PWD": PWD, "SB": "", "MSG": "hi", "DEST": "0912345678", "ST": ""}


def test_send_at_in_another_zone_is_converted_to_taipei(server: CannedServer, client: Every8dClient) -> None:
    server.queue("sendSMS.ashx", SENT)
    new_york = timezone(timedelta(hours=-4))
    client.send_sms(message="hi", recipients=["0912345678"], send_at=datetime(2024, 4, 30, 21, 0, tzinfo=new_york))
    assert server.received[0].form["ST"] == "20240501090000"


def test_send_mms_posts_attachment_and_type(server: CannedServer, client: Every8dClient) -> None:
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    server.queue("MMS/sendMMS.ashx", f"996.00,1,4.0,0,{BATCH}")
    result = client.send_mms(
        subject="新品上市", message="圖文訊息", image=image, image_type=".PNG", recipients=["0912345678"],
        validity_minutes=30,
    )
    assert result.cost == 4.0
    (request,) = server.received
    assert (request.method, request.endpoint, request.query) == ("POST", "MMS/sendMMS.ashx", "")
    form = request.form
    assert base64.b64decode(form.pop("ATTACHMENT")) == image
    assert form == {
        "UID": UID, "PWD": PWD, "SB": "新品上市", "MSG": "圖文訊息", "DEST": "0912345678", "ST": "",
        "RETRYTIME": "30", "TYPE": "png",
    }


def test_status_page_fields_for_sms_and_mms(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getDeliveryStatus.ashx", status_page(1, 0, 1))
    server.queue("MMS/getDeliveryStatus.ashx", "1\n王小明\t0912345678\t2024/05/01 09:30:00\t4.0\t700\n")
    total, records = client.delivery_status_page(BATCH, 1)
    assert total == 1 and records[0].status.code == 100
    total, records = client.delivery_status_page(f" {BATCH} ", 2, mms=True)
    assert records[0].name == "王小明" and records[0].status.code == 700
    assert [(r.method, r.endpoint, r.query, r.form) for r in server.received] == [
        ("POST", "getDeliveryStatus.ashx", "", {"UID": UID, "PWD": PWD, "BID": BATCH, "PNO": "1"}),
        ("POST", "MMS/getDeliveryStatus.ashx", "", {"UID": UID, "PWD": PWD, "BID": BATCH, "PNO": "2"}),
    ]


def test_credit_fields(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getCredit.ashx", "2310.00")
    assert client.get_credit() == 2310.0
    assert [(r.method, r.endpoint, r.query, r.form) for r in server.received] == [
        ("POST", "getCredit.ashx", "", {"UID": UID, "PWD": PWD})
    ]


def test_cancel_fields_and_results(server: CannedServer, client: Every8dClient) -> None:
    server.queue("eraseBooking.ashx", "2,2.00")
    server.queue("MMS/eraseBooking.ashx", "")
    assert client.cancel_sms(BATCH) == CancelResult(deleted=2, refunded=2.0)
    assert client.cancel_mms(BATCH) == NothingToCancel(batch_id=BATCH)
    assert [(r.method, r.endpoint, r.query, r.form) for r in server.received] == [
        ("POST", "eraseBooking.ashx", "", {"UID": UID, "PWD": PWD, "BID": BATCH}),
        ("POST", "MMS/eraseBooking.ashx", "", {"UID": UID, "PWD": PWD, "BID": BATCH}),
    ]


def test_one_keep_alive_connection_for_many_calls(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getCredit.ashx", *["100.00"] * 5)
    for _ in range(5):
        client.get_credit()
    assert server.count("getCredit.ashx") == 5
    assert len({request.peer_port for request in server.received}) == 1  # one TCP connection, reused


# --- paging ---------------------------------------------------------------------------------------------


def test_iter_delivery_status_pages_lazily(server: CannedServer, client: Every8dClient) -> None:
    server.queue(
        "getDeliveryStatus.ashx", status_page(2500, 0, 1000), status_page(2500, 1000, 1000), status_page(2500, 2000, 500)
    )
    records = client.iter_delivery_status(BATCH)
    assert server.received == []  # nothing is fetched before the first record is asked for
    first = next(records)
    assert first.mobile == "+886900000000"
    assert len(server.received) == 1
    for _ in range(999):
        next(records)
    assert len(server.received) == 1  # page 2 is fetched only when record 1001 is wanted
    assert next(records).mobile == "+886900001000"
    assert len(server.received) == 2
    rest = list(records)
    assert len(rest) == 1499 and rest[-1].mobile == "+886900002499"
    assert [r.form["PNO"] for r in server.received] == ["1", "2", "3"]


def test_iter_stops_at_an_empty_page_even_if_total_says_more(server: CannedServer, client: Every8dClient) -> None:
    server.queue("MMS/getDeliveryStatus.ashx", status_page(5000, 0, 1000), "5000\r\n")
    assert len(list(client.iter_delivery_status(BATCH, mms=True))) == 1000
    assert server.count("MMS/getDeliveryStatus.ashx") == 2


def test_iter_empty_batch_makes_one_call(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getDeliveryStatus.ashx", "0")
    assert list(client.iter_delivery_status(BATCH)) == []
    assert len(server.received) == 1


# --- error paths: repeatable calls ----------------------------------------------------------------------


def test_html_page_on_credit_is_retried_with_backoff(
    server: CannedServer, client: Every8dClient, sleeps: list[float]
) -> None:
    server.queue("getCredit.ashx", HTML, HTML, "2310.00")
    assert client.get_credit() == 2310.0
    assert server.count("getCredit.ashx") == 3
    assert sleeps == [0.5, 1.0]


def test_html_page_until_retries_run_out(server: CannedServer, client: Every8dClient, sleeps: list[float]) -> None:
    server.queue("getCredit.ashx", HTML, HTML, HTML, "2310.00")
    with pytest.raises(UnavailableError) as caught:
        client.get_credit()
    assert "unreadable" in caught.value.en and caught.value.server_message == "Runtime Error"
    assert server.count("getCredit.ashx") == 3  # first try + retries=2
    assert sleeps == [0.5, 1.0]


def test_http_500_on_status_is_retried(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getDeliveryStatus.ashx", Reply(HTML, status=500), status_page(1, 0, 1))
    assert client.delivery_status_page(BATCH, 1)[0] == 1
    assert server.count("getDeliveryStatus.ashx") == 2


def test_http_status_is_named_in_the_error(server: CannedServer, client: Every8dClient) -> None:
    server.queue("eraseBooking.ashx", Reply("", status=503), Reply("", status=503), Reply("", status=503))
    with pytest.raises(UnavailableError) as caught:
        client.cancel_sms(BATCH)
    assert "HTTP 503" in caught.value.en and "HTTP 503" in caught.value.zh


def test_http_404_is_not_retried(server: CannedServer, client: Every8dClient, sleeps: list[float]) -> None:
    with pytest.raises(UnavailableError) as caught:
        client.get_credit()  # nothing queued: the server answers 404
    assert "HTTP 404" in caught.value.en
    assert server.count("getCredit.ashx") == 1 and sleeps == []


def test_empty_body_on_credit_is_retried(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getCredit.ashx", "", "15.00")
    assert client.get_credit() == 15.0
    assert server.count("getCredit.ashx") == 2


def test_timeout_on_status_is_retried(server: CannedServer, sleeps: list[float]) -> None:
    server.queue("getDeliveryStatus.ashx", Reply(status_page(1, 0, 1), hang=5), status_page(1, 0, 1))
    with make_client(server.base_url, sleeps, timeout=0.2) as client:
        total, records = client.delivery_status_page(BATCH, 1)
    assert (total, len(records)) == (1, 1)
    assert server.count("getDeliveryStatus.ashx") == 2 and sleeps == [0.5]


def test_reset_on_credit_is_retried(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getCredit.ashx", Reply(reset=True), "9.00")
    assert client.get_credit() == 9.0
    assert server.count("getCredit.ashx") == 2


def test_minus_99_on_status_is_retried(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getDeliveryStatus.ashx", "-99, 主機端發生不明錯誤，請與廠商窗口聯繫。", "0")
    assert client.delivery_status_page(BATCH, 1) == (0, [])
    assert server.count("getDeliveryStatus.ashx") == 2


def test_unknown_batch_is_not_retried(server: CannedServer, client: Every8dClient, sleeps: list[float]) -> None:
    server.queue("getDeliveryStatus.ashx", "-25, 查無此批次代碼。")
    with pytest.raises(ProviderError) as caught:
        client.delivery_status_page("no-such-batch", 1)
    assert caught.value.code == -25 and caught.value.server_message == "查無此批次代碼。"
    assert server.count("getDeliveryStatus.ashx") == 1 and sleeps == []


@pytest.mark.parametrize(
    ("endpoint", "call"),
    [
        ("getCredit.ashx", lambda c: c.get_credit()),
        ("getDeliveryStatus.ashx", lambda c: c.delivery_status_page(BATCH, 1)),
        ("MMS/eraseBooking.ashx", lambda c: c.cancel_mms(BATCH)),
        ("sendSMS.ashx", lambda c: c.send_sms(message="hi", recipients=["0912345678"])),
        ("MMS/sendMMS.ashx", lambda c: c.send_mms(subject="s", message="m", image=b"x", image_type="jpg",
                                                  recipients=["0912345678"])),
    ],
)
def test_wrong_credentials_are_never_retried(
    server: CannedServer, client: Every8dClient, sleeps: list[float], endpoint: str, call: Any
) -> None:
    server.queue(endpoint, WRONG_LOGIN, "2310.00")
    with pytest.raises(CredentialError) as caught:
        call(client)
    assert caught.value.code == -100 and caught.value.server_message == "帳號或密碼錯誤。"
    assert server.count(endpoint) == 1 and sleeps == []


# --- error paths: sends -----------------------------------------------------------------------------------


def test_timeout_on_send_is_outcome_unknown_after_exactly_one_request(
    server: CannedServer, sleeps: list[float]
) -> None:
    server.queue("sendSMS.ashx", Reply(SENT, hang=5), SENT)
    with make_client(server.base_url, sleeps, timeout=0.2) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            client.send_sms(message="hi", recipients=["0912345678"])
    assert "do not simply send again" in caught.value.en
    assert server.count("sendSMS.ashx") == 1 and sleeps == []


def test_reset_after_send_is_outcome_unknown(server: CannedServer, client: Every8dClient) -> None:
    server.queue("MMS/sendMMS.ashx", Reply(reset=True), SENT)
    with pytest.raises(OutcomeUnknownError):
        client.send_mms(subject="s", message="m", image=b"x", image_type="gif", recipients=["0912345678"])
    assert server.count("MMS/sendMMS.ashx") == 1


@pytest.mark.parametrize("reply", [Reply(HTML, status=500), Reply(HTML, status=502), Reply(HTML), Reply(""), Reply("???")])
def test_unreadable_answer_to_send_is_outcome_unknown(
    server: CannedServer, client: Every8dClient, sleeps: list[float], reply: Reply
) -> None:
    server.queue("sendSMS.ashx", reply, SENT)
    with pytest.raises(OutcomeUnknownError):
        client.send_sms(message="hi", recipients=["0912345678"])
    assert server.count("sendSMS.ashx") == 1 and sleeps == []


def test_minus_99_on_send_is_a_definite_refusal_not_retried(
    server: CannedServer, client: Every8dClient, sleeps: list[float]
) -> None:
    server.queue("sendSMS.ashx", "-99, 主機端發生不明錯誤，請與廠商窗口聯繫。", SENT)
    with pytest.raises(ProviderError) as caught:
        client.send_sms(message="hi", recipients=["0912345678"])
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.code == -99 and "nothing was sent" in caught.value.en
    assert server.count("sendSMS.ashx") == 1 and sleeps == []


def test_connection_refused_on_send_is_retried_then_unavailable(sleeps: list[float]) -> None:
    session = CountingSession()
    base = f"http://127.0.0.1:{refused_port()}/API21/HTTP/"
    with make_client(base, sleeps, session=session) as client:
        with pytest.raises(UnavailableError) as caught:
            client.send_sms(message="hi", recipients=["0912345678"])
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert "nothing was sent" in caught.value.en and "refused" in caught.value.en.lower()
    assert session.calls == 3 and sleeps == [0.5, 1.0]
    assert_no_secret(str(caught.value), caught.value.zh)


def test_connect_timeout_on_send_is_retried(sleeps: list[float]) -> None:
    session = RaisingSession(requests.exceptions.ConnectTimeout("connect timed out"))
    with make_client("https://oms.every8d.com/API21/HTTP/", sleeps, session=session) as client:
        with pytest.raises(UnavailableError):
            client.send_sms(message="hi", recipients=["0912345678"])
    assert session.calls == 3


def test_read_timeout_on_send_is_not_retried(sleeps: list[float]) -> None:
    session = RaisingSession(requests.exceptions.ReadTimeout("read timed out"))
    with make_client("https://oms.every8d.com/API21/HTTP/", sleeps, session=session) as client:
        with pytest.raises(OutcomeUnknownError):
            client.send_sms(message="hi", recipients=["0912345678"])
    assert session.calls == 1 and sleeps == []


def test_redirect_is_not_followed(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getCredit.ashx", Reply("", status=302))
    with pytest.raises(UnavailableError) as caught:
        client.get_credit()
    assert "HTTP 302" in caught.value.en and server.count("getCredit.ashx") == 1


# --- secrets and logs -------------------------------------------------------------------------------------


def test_credentials_never_in_urls_errors_or_logs(
    server: CannedServer, client: Every8dClient, caplog: pytest.LogCaptureFixture
) -> None:
    echo = f"<html><head><title>Bad request UID={UID}&PWD={PWD}</title></head></html>"
    server.queue("getCredit.ashx", echo, echo, echo)
    server.queue("sendSMS.ashx", SENT)
    caplog.set_level(logging.DEBUG, logger="every8d")
    with pytest.raises(UnavailableError) as caught:
        client.get_credit()
    client.send_sms(message="hi", recipients=["+886912345678"])
    error = caught.value
    assert_no_secret(str(error), error.zh, error.en, error.server_message, repr(client))
    assert "***" in error.server_message
    for request in server.received:
        assert request.query == "" and PWD not in request.endpoint
    lines = [record.getMessage() for record in caplog.records if record.name == "every8d"]
    assert len(lines) == 4  # one per HTTP call
    assert "getCredit.ashx" in lines[0] and "elapsed_ms=" in lines[0] and "UnavailableError" in lines[0]
    assert "sendSMS.ashx" in lines[-1] and "outcome=ok" in lines[-1]
    for line in lines:
        assert_no_secret(line)
        assert "912345678" not in line


# --- transport security and local refusals ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.send_mms(subject="s", message="m", image=b"x", image_type="jpg", recipients=["0912345678"]),
        lambda c: c.delivery_status_page(BATCH, 1, mms=True),
        lambda c: c.cancel_mms(BATCH),
    ],
)
def test_mms_over_plain_http_to_a_public_host_is_refused(sleeps: list[float], call: Any) -> None:
    session = RaisingSession(AssertionError("no request may be made"))
    with make_client("http://api.every8d.com/API21/HTTP/", sleeps, session=session) as client:
        with pytest.raises(InsecureTransportError) as caught:
            call(client)
    assert "HTTPS" in caught.value.en and session.calls == 0


def test_mms_over_http_allowed_when_explicitly_insecure_or_private(sleeps: list[float]) -> None:
    failure = requests.exceptions.ConnectTimeout("unreachable")
    for base, insecure in [("http://api.every8d.com/API21/HTTP/", True), ("http://10.1.2.3/API21/HTTP/", False),
                           ("http://localhost:8080/API21/HTTP/", False)]:
        session = RaisingSession(failure)
        with make_client(base, sleeps, session=session, retries=0, allow_insecure_mms=insecure) as client:
            with pytest.raises(UnavailableError):
                client.cancel_mms(BATCH)
        assert session.calls == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"message": "hi", "recipients": []},
        {"message": "hi", "recipients": ["0912345678", " "]},
        {"message": "hi", "recipients": "0912345678"},
        {"message": "  ", "recipients": ["0912345678"]},
        {"message": "hi", "recipients": ["0912345678"], "send_at": datetime(2024, 5, 1, 9, 30)},
        {"message": "hi", "recipients": ["0912345678"], "validity_minutes": 0},
        {"message": "hi", "recipients": ["0912345678"], "validity_minutes": True},
    ],
)
def test_local_refusals_spare_a_call(server: CannedServer, client: Every8dClient, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        client.send_sms(**kwargs)
    assert server.received == []


def test_mms_needs_subject_and_image(server: CannedServer, client: Every8dClient) -> None:
    with pytest.raises(ValidationError):
        client.send_mms(subject=" ", message="m", image=b"x", image_type="jpg", recipients=["0912345678"])
    with pytest.raises(ValidationError):
        client.send_mms(subject="s", message="m", image=b"", image_type="jpg", recipients=["0912345678"])
    with pytest.raises(ValidationError):
        client.delivery_status_page(" ", 1)
    with pytest.raises(ValidationError):
        client.delivery_status_page(BATCH, 0)
    assert server.received == []


def test_base_url_keeps_its_prefix_and_gains_a_slash() -> None:
    assert Every8dClient("https://h.example/prepaid/API21/HTTP", UID, PWD).base_url == (
        "https://h.example/prepaid/API21/HTTP/"
    )
    for bad in ["ftp://h/API21/HTTP/", "h.example/API21", f"https://{UID}:{PWD}@h.example/API21/HTTP/"]:
        with pytest.raises(ValueError) as caught:
            Every8dClient(bad, UID, PWD)
        assert PWD not in str(caught.value)


def test_close_leaves_a_callers_session_open(server: CannedServer, sleeps: list[float]) -> None:
    session = CountingSession()
    server.queue("getCredit.ashx", "1.00", "2.00")
    with make_client(server.base_url, sleeps, session=session) as client:
        assert client.get_credit() == 1.0
    response = session.post(server.base_url + "/getCredit.ashx", data={"UID": UID, "PWD": PWD})
    assert response.text == "2.00"
    session.close()
