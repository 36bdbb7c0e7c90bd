"""The client end to end against the EVERY8D sandbox: every endpoint, SMS and MMS, paging, every status the
sandbox can produce, scheduled send and cancel with refund, fault injection, and pushes decoded by
`parse_callback`. Time is a fake clock driven by the tests (no background ticker), so nothing sleeps."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from every8d.callback import parse_callback
from every8d.client import Every8dClient
from every8d.errors import CredentialError, OutcomeUnknownError, ProviderError, UnavailableError
from every8d.results import CallbackReport, CancelResult, DeliveryRecord, NothingToCancel
from every8d.sandbox import Sandbox
from every8d.status import Outcome

START = datetime(2024, 5, 1, 1, 0, 0, tzinfo=UTC).timestamp()  # 09:00 in Taipei
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(credit=10_000.0, clock=clock, background=False, delivery_seconds=2.0) as sb:
        sb.faults.hang_seconds = 2.0
        yield sb


@pytest.fixture
def sleeps() -> list[float]:
    return []


def connect(sandbox: Sandbox, sleeps: list[float], **kwargs: Any) -> Every8dClient:
    options: dict[str, Any] = {"timeout": 2.0, "connect_timeout": 1.0, "retries": 2, "sleep": sleeps.append}
    options.update(kwargs)
    return Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, **options)


@pytest.fixture
def client(sandbox: Sandbox, sleeps: list[float]) -> Iterator[Every8dClient]:
    with connect(sandbox, sleeps) as every8d:
        yield every8d


def later(clock: FakeClock, sandbox: Sandbox, seconds: float) -> None:
    clock.now += seconds
    sandbox.tick()


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"09{n:08d}" for n in range(start, start + count)]


def statuses(records: list[DeliveryRecord]) -> dict[str, int]:
    return {record.mobile: record.status.code for record in records}


def calls_to(sandbox: Sandbox, endpoint: str) -> int:
    return sum(1 for call in sandbox.calls if call.endpoint == endpoint)


# --- every endpoint -------------------------------------------------------------------------------------


def test_sms_end_to_end(sandbox: Sandbox, client: Every8dClient, clock: FakeClock) -> None:
    result = client.send_sms(message="您好，明天 10 點開會。", recipients=["0912345678", "+886922333444"], subject="會議")
    assert (result.sent, result.cost, result.unsent) == (2, 2.0, 0)
    assert result.credit == sandbox.credit == 9998.0
    assert sandbox.calls[-1].method == "POST"
    assert sandbox.calls[-1].params == {
        "UID": "sandbox", "PWD": "***", "SB": "會議", "MSG": "您好，明天 10 點開會。",
        "DEST": "0912345678,+886922333444", "ST": "",
    }
    total, records = client.delivery_status_page(result.batch_id, 1)
    assert total == 2 and set(statuses(records).values()) == {0}
    assert records[0].sent_at == datetime(2024, 5, 1, 1, 0, 0, tzinfo=UTC)
    later(clock, sandbox, 3)
    assert statuses(list(client.iter_delivery_status(result.batch_id))) == {
        "+886912345678": 100, "+886922333444": 100,
    }
    assert client.get_credit() == 9998.0


def test_mms_end_to_end(sandbox: Sandbox, client: Every8dClient, clock: FakeClock) -> None:
    result = client.send_mms(
        subject="新品", message="看看新品", image=PNG, image_type="PNG", recipients=["0912345678", "0922333444"],
        validity_minutes=120,
    )
    assert (result.sent, result.cost) == (2, 6.0)  # 2021 terms (the default): 3 points up to 50 KB
    batch = sandbox.batches[result.batch_id]
    assert (batch.kind, batch.subject, batch.validity_minutes) == ("mms", "新品", 120)
    assert base64.b64decode(batch.attachment) == PNG and batch.attachment_type == "png"
    assert set(statuses(client.delivery_status_page(result.batch_id, 1, mms=True)[1]).values()) == {700}
    later(clock, sandbox, 3)
    records = list(client.iter_delivery_status(result.batch_id, mms=True))
    assert {r.status.code for r in records} == {700} and {r.cost for r in records} == {3.0}  # MMS ends at 700
    assert sandbox.calls[-1].endpoint == "MMS/getDeliveryStatus.ashx"


def test_mms_batch_is_unknown_to_the_sms_status_endpoint(client: Every8dClient) -> None:
    batch_id = client.send_mms(subject="s", message="m", image=PNG, image_type="png", recipients=["0912345678"]).batch_id
    with pytest.raises(ProviderError) as caught:
        client.delivery_status_page(batch_id, 1)
    assert caught.value.code == -25 and caught.value.server_message == "查無此批次代碼。"


def test_paging_past_two_thousand_records(sandbox: Sandbox, client: Every8dClient) -> None:
    result = client.send_sms(message="週年慶", recipients=numbers(2500))
    assert result.sent == 2500
    sandbox.calls.clear()
    records = client.iter_delivery_status(result.batch_id)
    seen = [next(records)]
    assert calls_to(sandbox, "getDeliveryStatus.ashx") == 1
    seen.extend(records)
    assert len(seen) == 2500
    assert len({r.mobile for r in seen}) == 2500
    assert [call.params["PNO"] for call in sandbox.calls] == ["1", "2", "3"]


# --- every status code path ----------------------------------------------------------------------------


def test_every_status_the_sandbox_produces(clock: FakeClock, sleeps: list[float]) -> None:
    failing = {f"09110001{code - 100:02d}": code for code in range(101, 108)}
    with Sandbox(credit=100.0, clock=clock, background=False, failing_numbers=failing) as sandbox:
        with connect(sandbox, sleeps) as client:
            sent = client.send_sms(
                message="hi", recipients=[*failing, "0912345678", "+14155550123", "0912-abc", "0933000000"]
            )
            scheduled = client.send_sms(
                message="hi", recipients=["0955000001", "0955000002"],
                send_at=datetime.fromtimestamp(clock.now + 3600, UTC),
            )
            mms = client.send_mms(subject="s", message="m", image=PNG, image_type="gif", recipients=["0966000000"])
            seen = set(statuses(list(client.iter_delivery_status(sent.batch_id))).values())
            seen |= set(statuses(client.delivery_status_page(scheduled.batch_id, 1)[1]).values())
            seen |= set(statuses(client.delivery_status_page(mms.batch_id, 1, mms=True)[1]).values())
            later(clock, sandbox, 3)
            sandbox.simulate_reply(sent.batch_id, "0912345678", "好的，收到")
            records = list(client.iter_delivery_status(sent.batch_id))
            seen |= {r.status.code for r in records}
            assert isinstance(client.cancel_sms(scheduled.batch_id), CancelResult)
            seen |= set(statuses(client.delivery_status_page(scheduled.batch_id, 1)[1]).values())
            sandbox.set_credit(0.0)
            broke = client.send_sms(message="hi", recipients=["0977000000"])
            seen |= set(statuses(client.delivery_status_page(broke.batch_id, 1)[1]).values())
    assert seen == {0, 100, 101, 102, 103, 104, 105, 106, 107, 300, 301, 303, 500, 700, 999, -3}
    reply = next(r for r in records if r.is_reply)
    # A 999 row has no reply-text column in either revision (delta notes §4.5): its sixth column is
    # RECEIVED_TIME; the text comes by push or getReplyMessage.
    assert reply.mobile == "+886912345678" and "好的，收到" not in reply.extra
    assert reply.received_at is not None
    assert broke.unsent == 1 and broke.partly_dropped
    by_mobile = {r.mobile: r.status for r in records if not r.is_reply}
    assert by_mobile["+14155550123"].outcome is Outcome.FAILED and by_mobile["0912-abc"].code == -3


def test_refusals_map_to_typed_errors(sandbox: Sandbox, client: Every8dClient, sleeps: list[float]) -> None:
    with pytest.raises(ProviderError) as caught:
        client.send_sms(message="hi", recipients=["12345", "abc"])
    assert caught.value.code == -306 and "malformed" in caught.value.en
    with pytest.raises(ProviderError) as caught:
        client.send_sms(message="hi", recipients=[","])
    assert caught.value.code == -41 and caught.value.server_message == "no mobile."
    with pytest.raises(ProviderError) as caught:
        client.delivery_status_page("00000000-0000-4000-8000-000000000000", 1, mms=True)
    assert caught.value.code == -25
    assert sandbox.batches == {} and sandbox.credit == 10_000.0
    assert sleeps == []


@pytest.mark.parametrize(
    ("uid", "pwd", "code"), [("sandbox", "wrong", -101), ("nobody", "sandbox", -100), ("", "sandbox", -300)]
)
def test_bad_credentials_are_never_retried(
    sandbox: Sandbox, sleeps: list[float], uid: str, pwd: str, code: int
) -> None:
    with Every8dClient(sandbox.base_url, uid, pwd, retries=3, sleep=sleeps.append) as client:
        for call in (client.get_credit, lambda: client.send_sms(message="hi", recipients=["0912345678"])):
            with pytest.raises(CredentialError) as caught:
                call()
            assert caught.value.code == code
            if pwd == "wrong":
                assert "wrong" not in str(caught.value)
    assert len(sandbox.calls) == 2 and sleeps == [] and sandbox.batches == {}


# --- scheduled send and cancel ---------------------------------------------------------------------------


def test_scheduled_sms_cancelled_with_refund(sandbox: Sandbox, client: Every8dClient, clock: FakeClock) -> None:
    send_at = datetime.fromtimestamp(clock.now + 2 * 3600, UTC)  # 11:00 in Taipei
    message = "長" * 100  # 2 points each
    result = client.send_sms(message=message, recipients=numbers(3), send_at=send_at)
    assert sandbox.calls[-1].params["ST"] == "20240501110000"
    assert (result.cost, client.get_credit()) == (6.0, 9994.0)
    assert set(statuses(client.delivery_status_page(result.batch_id, 1)[1]).values()) == {300}
    assert client.cancel_sms(result.batch_id) == CancelResult(deleted=3, refunded=6.0)
    assert client.get_credit() == 10_000.0
    assert set(statuses(client.delivery_status_page(result.batch_id, 1)[1]).values()) == {303}
    assert client.cancel_sms(result.batch_id) == NothingToCancel(batch_id=result.batch_id)
    later(clock, sandbox, 3 * 3600)
    assert set(statuses(client.delivery_status_page(result.batch_id, 1)[1]).values()) == {303}


def test_scheduled_mms_cancelled_and_too_late_to_cancel(
    sandbox: Sandbox, client: Every8dClient, clock: FakeClock
) -> None:
    send_at = datetime.fromtimestamp(clock.now + 600, UTC)
    first = client.send_mms(subject="s", message="m", image=PNG, image_type="jpg", recipients=numbers(2), send_at=send_at)
    second = client.send_mms(subject="s", message="m", image=PNG, image_type="jpg", recipients=numbers(1), send_at=send_at)
    assert client.cancel_sms(first.batch_id) == NothingToCancel(batch_id=first.batch_id)  # wrong kind
    assert client.cancel_mms(first.batch_id) == CancelResult(deleted=2, refunded=6.0)
    later(clock, sandbox, 601)
    assert client.cancel_mms(second.batch_id) == NothingToCancel(batch_id=second.batch_id)
    assert set(statuses(client.delivery_status_page(second.batch_id, 1, mms=True)[1]).values()) == {700}
    assert client.get_credit() == 10_000.0 - 3.0


# --- fault injection -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["-99", "http500", "html", "garbage", "empty", "reset"])
def test_repeatable_calls_survive_one_fault(
    sandbox: Sandbox, client: Every8dClient, sleeps: list[float], kind: str
) -> None:
    batch_id = client.send_sms(message="hi", recipients=["0912345678"]).batch_id
    for endpoint in ("getCredit.ashx", "getDeliveryStatus.ashx", "eraseBooking.ashx"):
        sandbox.faults.inject(kind, endpoint=endpoint)
    assert client.get_credit() == 9999.0
    assert client.delivery_status_page(batch_id, 1)[0] == 1
    assert client.cancel_sms(batch_id) == NothingToCancel(batch_id=batch_id)
    assert calls_to(sandbox, "getCredit.ashx") == calls_to(sandbox, "getDeliveryStatus.ashx") == 2
    if kind == "empty":
        # An empty body is eraseBooking's documented "nothing found": indistinguishable, taken at its word.
        assert calls_to(sandbox, "eraseBooking.ashx") == 1 and sleeps == [0.5, 0.5]
    else:
        assert calls_to(sandbox, "eraseBooking.ashx") == 2 and sleeps == [0.5, 0.5, 0.5]


def test_persistent_fault_gives_up_after_the_retries(sandbox: Sandbox, client: Every8dClient) -> None:
    sandbox.faults.inject("http500", count=5, endpoint="getCredit.ashx")
    with pytest.raises(UnavailableError) as caught:
        client.get_credit()
    assert "HTTP 500" in caught.value.en
    assert calls_to(sandbox, "getCredit.ashx") == 3


def test_hang_on_status_times_out_and_is_retried(sandbox: Sandbox, sleeps: list[float]) -> None:
    with connect(sandbox, sleeps, timeout=0.2) as client:
        batch_id = client.send_sms(message="hi", recipients=["0912345678"]).batch_id
        sandbox.faults.inject("hang", endpoint="getDeliveryStatus.ashx")
        assert client.delivery_status_page(batch_id, 1)[0] == 1
    assert calls_to(sandbox, "getDeliveryStatus.ashx") == 2 and sleeps == [0.5]


def test_hang_on_every_try_ends_unavailable(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.faults.inject("hang", count=3, endpoint="getCredit.ashx")
    with connect(sandbox, sleeps, timeout=0.2) as client, pytest.raises(UnavailableError) as caught:
        client.get_credit()
    assert "timed out" in caught.value.en.lower() or "timeout" in caught.value.en.lower()
    assert calls_to(sandbox, "getCredit.ashx") == 3


@pytest.mark.parametrize("kind", ["http500", "html", "garbage", "empty", "reset", "hang"])
def test_send_fault_is_outcome_unknown_and_not_repeated(sandbox: Sandbox, sleeps: list[float], kind: str) -> None:
    sandbox.faults.inject(kind, endpoint="sendSMS.ashx")
    with connect(sandbox, sleeps, timeout=0.2) as client, pytest.raises(OutcomeUnknownError):
        client.send_sms(message="hi", recipients=["0912345678"])
    assert calls_to(sandbox, "sendSMS.ashx") == 1 and sleeps == []


def test_minus_99_on_send_is_a_definite_refusal(sandbox: Sandbox, client: Every8dClient, sleeps: list[float]) -> None:
    sandbox.faults.inject("-99", endpoint="MMS/sendMMS.ashx")
    with pytest.raises(ProviderError) as caught:
        client.send_mms(subject="s", message="m", image=PNG, image_type="png", recipients=["0912345678"])
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.code == -99 and caught.value.server_message == "主機端發生不明錯誤，請與廠商窗口聯繫。"
    assert calls_to(sandbox, "MMS/sendMMS.ashx") == 1 and sandbox.batches == {} and sleeps == []


@pytest.mark.parametrize(("terms", "image_bytes"), [("2021", 300_000), ("2017", 50_000)])
def test_an_mms_over_the_terms_limit_is_refused_with_minus_314_and_costs_nothing(
    clock: FakeClock, sleeps: list[float], terms: str, image_bytes: int
) -> None:
    """Image plus text one byte over the account's limit (300 KB in 2021, 50 KB in 2017; 1000-byte KB)."""
    with Sandbox(credit=100.0, clock=clock, background=False, mms_terms=terms) as sandbox, \
            connect(sandbox, sleeps) as client:
        image = PNG + b"\x00" * (image_bytes - len(PNG) - len("好".encode()) + 1)
        with pytest.raises(ProviderError) as caught:
            client.send_mms(subject="s", message="好", image=image, image_type="png", recipients=["0912345678"])
        assert caught.value.code == -314 and not isinstance(caught.value, OutcomeUnknownError)
        assert sandbox.batches == {} and sandbox.credit == 100.0 and sleeps == []
        at_limit = client.send_mms(subject="s", message="好", image=image[:-1], image_type="png",
                                   recipients=["0912345678"])
        assert at_limit.cost == {"2021": 5.0, "2017": 4.0}[terms]


def test_accept_then_hang_is_outcome_unknown_with_exactly_one_batch(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.faults.inject("accept_then_hang", endpoint="sendSMS.ashx")
    with connect(sandbox, sleeps, timeout=0.3) as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            client.send_sms(message="hi", recipients=["0912345678", "0922333444"])
        assert client.get_credit() == 9998.0  # it was charged: reconcile, never resend blindly
    assert "check the batch or the credit" in caught.value.en
    assert calls_to(sandbox, "sendSMS.ashx") == 1
    (batch,) = sandbox.batches.values()
    assert len(batch.records) == 2


# --- pushes ---------------------------------------------------------------------------------------------


class _Receiver:
    """Collects the query strings the sandbox pushes, answering 200."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        received = self.queries

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                received.append(self.path.partition("?")[2])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/every8d/report"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def test_sandbox_pushes_decode_into_callback_reports(clock: FakeClock, sleeps: list[float]) -> None:
    receiver = _Receiver()
    try:
        with Sandbox(clock=clock, background=False, callback_url=receiver.url) as sandbox:
            with connect(sandbox, sleeps) as client:
                batch_id = client.send_sms(message="hi", recipients=["0912345678"], subject="週年 慶").batch_id
            later(clock, sandbox, 3)
            sandbox.simulate_reply(batch_id, "0912345678", "好的 OK，謝謝")
            sandbox.tick()
    finally:
        receiver.close()
    reports: list[CallbackReport] = [parse_callback(query) for query in receiver.queries]
    assert [r.status.code for r in reports] == [0, 100, 999]
    assert {r.batch_id for r in reports} == {batch_id}
    assert {r.mobile for r in reports} == {"+886912345678"}
    assert all(r.subject == "週年 慶" for r in reports)
    # MR is per message (EVERY8D generates one for every message): the reply has its own.
    assert [r.record_no for r in reports] == ["1", "1", "2"]
    assert reports[0].text == "hi" and reports[0].user_id == "sandbox" and reports[0].charge == 1.0
    assert reports[1].reported_at == datetime(2024, 5, 1, 1, 0, 2, tzinfo=UTC)  # delivered 2 s after sending
    assert reports[2].is_reply and reports[2].text == "好的 OK，謝謝"
    assert "NAME" in reports[0].raw
