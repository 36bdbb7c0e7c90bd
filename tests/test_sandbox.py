"""The EVERY8D sandbox over real HTTP: wire formats, pricing, status progression, paging, scheduling,
credit, callbacks, replies, faults, determinism and password hygiene.

Everything goes through sockets with plain `requests`, as the real client does, and asserts the exact
bodies EVERY8D answers. Time is a fake clock and the sandbox runs with background=False unless a test is
about the background threads, so nothing sleeps.
"""

from __future__ import annotations

import base64
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from every8d.sandbox import Sandbox

TAIPEI = timezone(timedelta(hours=8))
START = datetime(2025, 3, 1, 9, 0, 0, tzinfo=TAIPEI).timestamp()
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
CHINESE = "今天下午三點在台北車站東三門集合，請準時出席並攜帶身分證件，謝謝大家的配合。"


def chinese_text(length: int) -> str:
    """Real Chinese text of exactly `length` characters."""
    return (CHINESE * (length // len(CHINESE) + 1))[:length]


def numbers(count: int) -> list[str]:
    return [f"09{index:08d}" for index in range(count)]


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_sandbox(clock: FakeClock) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def make(**kwargs: object) -> Sandbox:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("background", False)
        sandbox = Sandbox(**kwargs).start()  # type: ignore[arg-type]
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sb(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return make_sandbox()


def call(sandbox: Sandbox, endpoint: str, method: str = "POST", **params: str) -> requests.Response:
    """One API call, credentials added unless given; POST sends a form body as the real client does."""
    fields = {"UID": sandbox.uid, "PWD": sandbox.pwd, **params}
    if method == "GET":
        return requests.get(sandbox.base_url + endpoint, params=fields, timeout=10)
    return requests.post(sandbox.base_url + endpoint, data=fields, timeout=10)


def send(sandbox: Sandbox, dest: str, msg: str = "測試訊息", endpoint: str = "sendSMS.ashx", **extra: str) -> list[str]:
    body = call(sandbox, endpoint, SB="subject", MSG=msg, DEST=dest, **extra).text
    assert re.fullmatch(rf"\d+\.\d\d,\d+,\d+\.\d,\d+,{GUID}", body), body
    return body.split(",")


def status(sandbox: Sandbox, batch_id: str, page: str = "", mms: bool = False) -> tuple[int, list[list[str]]]:
    endpoint = "MMS/getDeliveryStatus.ashx" if mms else "getDeliveryStatus.ashx"
    body = call(sandbox, endpoint, BID=batch_id, PNO=page).text
    assert body.endswith("\n")
    total, *rows = body[:-1].split("\n")
    return int(total), [row.split("\t") for row in rows]


def statuses(sandbox: Sandbox, batch_id: str, mms: bool = False) -> list[str]:
    return [row[4] for row in status(sandbox, batch_id, mms=mms)[1]]


class Receiver:
    """A client's callback endpoint: records every push, answers the given HTTP codes in turn, then 200."""

    def __init__(self, answers: list[int] | None = None, always: int | None = None) -> None:
        self.raw: list[str] = []
        self.answers = list(answers or [])
        self.always = always
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                receiver.raw.append(urlsplit(self.path).query)
                code = receiver.always or (receiver.answers.pop(0) if receiver.answers else 200)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/every8d/report?token=s3"

    @property
    def reports(self) -> list[dict[str, str]]:
        return [{k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()} for raw in self.raw]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


# --- wire formats ---------------------------------------------------------------------------------------


def test_send_sms_answers_credit_sent_cost_unsend_batch_and_logs_fields(sb: Sandbox) -> None:
    response = call(sb, "sendSMS.ashx", SB="週會", MSG="明天開會", DEST="+886912345678", ST="", RETRYTIME="60")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    credit, sent, cost, unsent, batch_id = response.text.split(",")
    assert (credit, sent, cost, unsent) == ("999.00", "1", "1.0", "0")
    assert re.fullmatch(GUID, batch_id)
    assert call(sb, "getCredit.ashx").text == "999.00"
    assert sb.calls[0].endpoint == "sendSMS.ashx" and sb.calls[0].method == "POST"
    assert sb.calls[0].params == {
        "UID": "sandbox", "PWD": "***", "SB": "週會", "MSG": "明天開會", "DEST": "+886912345678",
        "ST": "", "RETRYTIME": "60",
    }
    batch = sb.batches[batch_id]
    assert (batch.kind, batch.subject, batch.message, batch.validity_minutes) == ("sms", "週會", "明天開會", 60)


def test_status_page_rows_are_tab_separated_with_taipei_send_time(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(contacts={"0912345678": "王小明"})
    batch_id = send(sandbox, "0912345678,0922333444")[4]
    total, rows = status(sandbox, batch_id)
    assert total == 2
    assert rows == [
        ["王小明", "+886912345678", "2025/03/01 09:00:00", "1.0", "0", ""],
        ["", "+886922333444", "2025/03/01 09:00:00", "1.0", "0", ""],
    ]


def test_get_requests_and_any_prefix_before_api21_are_served(sb: Sandbox) -> None:
    root = sb.base_url.replace("/API21/HTTP/", "")
    prefixed = requests.get(f"{root}/prepaid/API21/HTTP/getCredit.ashx", params={"UID": "sandbox", "PWD": "sandbox"})
    assert prefixed.text == "1000.00"
    assert call(sb, "getCredit.ashx", method="GET").text == "1000.00"
    assert send(sb, "0912345678")[1] == "1"
    assert requests.get(f"{root}/API21/HTTP/nothing.ashx").status_code == 404


@pytest.mark.parametrize(
    ("endpoint", "params", "expected"),
    [
        # -101 wrong password, -100 no such account (SOAP document, go-every8d); texts as recorded (delta §5)
        ("sendSMS.ashx", {"PWD": "wrong", "MSG": "x", "DEST": "0912345678"}, "-101, 密碼錯誤。"),
        ("getCredit.ashx", {"PWD": "wrong"}, "-101, 密碼錯誤。"),
        ("getDeliveryStatus.ashx", {"PWD": "wrong", "BID": "x"}, "-101, 密碼錯誤。"),
        ("MMS/eraseBooking.ashx", {"PWD": "wrong", "BID": "x"}, "-101, 密碼錯誤。"),
        ("getCredit.ashx", {"UID": "nobody"}, "-100, 帳號或密碼錯誤。"),
        ("getCredit.ashx", {"UID": "", "PWD": ""}, "-300, 帳號密碼不得為空值。"),
        ("sendSMS.ashx", {"MSG": "x", "DEST": " , "}, "-41, no mobile."),
        ("sendSMS.ashx", {"MSG": "x", "DEST": "12345,0812345678"}, "-306, 收訊人號碼格式錯誤。"),
        ("sendSMS.ashx", {"MSG": "", "DEST": "0912345678"}, "-24, The content is empty."),
        # A malformed ST is no refusal of the call: each recipient gets status -6 (test_every8d_fidelity.py).
        ("getDeliveryStatus.ashx", {"BID": "no-such-batch"}, "-25, 查無此批次代碼。"),
        ("eraseBooking.ashx", {"BID": "no-such-batch"}, ""),
    ],
)
def test_refusals_answer_code_and_chinese_message(sb: Sandbox, endpoint: str, params: dict[str, str], expected: str) -> None:
    assert call(sb, endpoint, **params).text == expected
    assert sb.credit == 1000.0 and not sb.batches


def test_destination_forms_and_a_malformed_entry_that_does_not_stop_the_batch(sb: Sandbox) -> None:
    # DEST's documented forms are +886912345678 and 0912345678 (seed §1.1); 886933444555 is malformed.
    credit, sent, cost, unsent, batch_id = send(sb, "+886912345678, 0922333444,886933444555,,09-1234")
    assert (credit, sent, cost, unsent) == ("998.00", "2", "2.0", "0")
    rows = status(sb, batch_id)[1]
    assert [(row[1], row[3], row[4]) for row in rows] == [
        ("+886912345678", "1.0", "0"),
        ("+886922333444", "1.0", "0"),
        ("886933444555", "0.0", "-3"),
        ("09-1234", "0.0", "-3"),
    ]


# --- pricing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chars", "points"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4), (268, 4), (269, 5), (333, 5),
     (334, 6), (666, 10), (667, 11)],
)
def test_taiwan_sms_priced_by_character_tiers(sb: Sandbox, chars: int, points: int) -> None:
    credit, sent, cost, _, _ = send(sb, "0912345678,0922333444", msg=chinese_text(chars))
    assert (sent, cost, credit) == ("2", f"{2 * points}.0", f"{1000 - 2 * points}.00")


def test_crlf_counts_as_one_character(sb: Sandbox) -> None:
    assert send(sb, "0912345678", msg="測\r\n" * 35)[2] == "1.0"  # 70 characters, not 105
    assert send(sb, "0912345678", msg="測\r\n" * 35 + "a")[2] == "2.0"


def test_international_costs_three_times_per_70_character_part(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(international_enabled=True)
    assert send(sandbox, "+85291234567", msg=chinese_text(70))[2] == "3.0"
    credit, sent, cost, _, batch_id = send(sandbox, "+85291234567,0912345678", msg=chinese_text(71))
    assert (credit, sent, cost) == ("989.00", "2", "8.0")  # HK: 2 parts x 3; Taiwan: long SMS, 2 points
    assert [row[3] for row in status(sandbox, batch_id)[1]] == ["6.0", "2.0"]


def test_international_without_the_option_ends_in_500_free(sb: Sandbox, clock: FakeClock) -> None:
    credit, sent, cost, unsent, batch_id = send(sb, "+85291234567,0912345678")
    assert (credit, sent, cost, unsent) == ("999.00", "1", "1.0", "0")
    clock.advance(2)
    assert [(row[1], row[3], row[4]) for row in status(sb, batch_id)[1]] == [
        ("+85291234567", "0.0", "500"),
        ("+886912345678", "1.0", "100"),
    ]


# --- status progression ----------------------------------------------------------------------------------


def test_sent_records_become_final_after_delivery_seconds(make_sandbox: Callable[..., Sandbox], clock: FakeClock) -> None:
    sandbox = make_sandbox(delivery_seconds=2.0, failing_numbers={"0922000103": 103, "+886922000101": 101})
    batch_id = send(sandbox, "0912345678,0922000103,0922000101")[4]
    assert statuses(sandbox, batch_id) == ["0", "0", "0"]
    clock.advance(1.9)
    assert statuses(sandbox, batch_id) == ["0", "0", "0"]
    clock.advance(0.1)
    assert statuses(sandbox, batch_id) == ["100", "103", "101"]


def test_failure_rates_draw_the_configured_codes(make_sandbox: Callable[..., Sandbox], clock: FakeClock) -> None:
    sandbox = make_sandbox(credit=500, failure_rates={101: 0.3, 107: 0.2})
    batch_id = send(sandbox, ",".join(numbers(400)))[4]
    clock.advance(2)
    codes = statuses(sandbox, batch_id)
    assert set(codes) == {"100", "101", "107"}
    assert 140 < codes.count("100") < 260 and 80 < codes.count("101") < 160


def test_mms_costs_four_ends_at_700_as_documented_and_stays_on_mms_endpoints(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock
) -> None:
    sb = make_sandbox(mms_terms="2017")
    credit, sent, cost, unsent, batch_id = send(
        sb, "0912345678,0922333444", endpoint="MMS/sendMMS.ashx", ATTACHMENT="aGVsbG8=", TYPE="jpg"
    )
    assert (credit, sent, cost, unsent) == ("992.00", "2", "8.0", "0")
    assert [(row[3], row[4]) for row in status(sb, batch_id, mms=True)[1]] == [("4.0", "700"), ("4.0", "700")]
    assert call(sb, "getDeliveryStatus.ashx", BID=batch_id).text == "-25, 查無此批次代碼。"
    clock.advance(2)
    assert statuses(sb, batch_id, mms=True) == ["700", "700"]  # the MMS table has no delivered state
    assert (sb.batches[batch_id].kind, sb.batches[batch_id].attachment_type) == ("mms", "jpg")


def mms_call(sb: Sandbox, image_bytes: int, msg: str = "好", **fields: str) -> requests.Response:
    """One sendMMS whose raw image is `image_bytes` bytes (base64 on the wire, as EVERY8D takes it)."""
    attachment = base64.b64encode(b"\xff" * image_bytes).decode()
    params = {"SB": "新品", "MSG": msg, "DEST": "0912345678", "ATTACHMENT": attachment, "TYPE": "jpg", **fields}
    return call(sb, "MMS/sendMMS.ashx", **params)


@pytest.mark.parametrize(
    ("image_bytes", "points"), [(50_000 - 3, "3.0"), (50_000 - 2, "5.0"), (300_000 - 3, "5.0")],
    ids=["exactly-50KB", "one-byte-over-50KB", "exactly-300KB"],
)
def test_2021_mms_is_charged_3_points_up_to_50_kb_and_5_above(sb: Sandbox, image_bytes: int, points: str) -> None:
    body = mms_call(sb, image_bytes).text  # "好" is 3 bytes of UTF-8: image plus text lands on the bound
    assert body.split(",")[2] == points, body
    assert sb.credit == 1000.0 - float(points)


@pytest.mark.parametrize(("terms", "over"), [("2021", 300_000 - 2), ("2017", 50_000 - 2)])
def test_an_mms_over_the_terms_limit_is_refused_with_minus_314(
    make_sandbox: Callable[..., Sandbox], terms: str, over: int
) -> None:
    sb = make_sandbox(mms_terms=terms)
    assert mms_call(sb, over).text == "-314, 多媒體簡訊大小超過上限。"
    assert sb.batches == {} and sb.credit == 1000.0
    assert mms_call(sb, over - 1).text.split(",")[1] == "1"


@pytest.mark.parametrize(
    ("fields", "body"),
    [
        ({"SB": " "}, "-303, 多媒體簡訊主旨不得為空。"),
        ({"ATTACHMENT": ""}, "-304, 未上傳圖檔。"),
        ({"ATTACHMENT": "not base64!"}, "-304, 未上傳圖檔。"),
        ({"TYPE": ""}, "-305, 圖檔類型不得為空。"),
    ],
    ids=["empty-subject", "no-image", "not-base64", "empty-type"],
)
def test_an_incomplete_mms_is_refused_as_a_whole(sb: Sandbox, fields: dict[str, str], body: str) -> None:
    assert mms_call(sb, 1_000, **fields).text == body
    assert sb.batches == {} and sb.credit == 1000.0


def test_2017_terms_accept_up_to_50_kb_at_4_points_flat(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(mms_terms="2017")
    assert mms_call(sb, 50_000 - 3).text.split(",")[2] == "4.0"
    assert mms_call(sb, 100).text.split(",")[2] == "4.0"


def test_unknown_mms_terms_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="mms_terms"):
        Sandbox(mms_terms="2019")


# --- paging and size ---------------------------------------------------------------------------------------


def test_status_pages_hold_1000_rows_pno_one_based(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(credit=3000)
    dest = numbers(2500)
    batch_id = send(sandbox, ",".join(dest))[4]
    pages = {page: status(sandbox, batch_id, page) for page in ("", "1", "2", "3", "4")}
    assert {page: (total, len(rows)) for page, (total, rows) in pages.items()} == {
        "": (2500, 1000), "1": (2500, 1000), "2": (2500, 1000), "3": (2500, 500), "4": (2500, 0),
    }
    assert pages[""] == pages["1"]
    assert pages["2"][1][0][1] == "+886" + dest[1000][1:]
    assert pages["3"][1][-1][1] == "+886" + dest[2499][1:]


def test_a_100000_recipient_batch_is_accepted_and_paged(make_sandbox: Callable[..., Sandbox], clock: FakeClock) -> None:
    sandbox = make_sandbox(credit=200_000)
    dest = numbers(100_000)
    answer = send(sandbox, ",".join(dest), msg="hi")
    assert answer[:4] == ["100000.00", "100000", "100000.0", "0"]
    clock.advance(2)
    total, rows = status(sandbox, answer[4], "100")
    assert (total, len(rows), rows[-1][1], rows[-1][4]) == (100_000, 1000, "+886" + dest[-1][1:], "100")


# --- scheduling and cancellation --------------------------------------------------------------------------


def st(offset_seconds: float) -> str:
    return datetime.fromtimestamp(START + offset_seconds, TAIPEI).strftime("%Y%m%d%H%M%S")


def test_scheduled_batch_waits_as_300_and_cancelling_refunds(sb: Sandbox, clock: FakeClock) -> None:
    credit, sent, cost, _, batch_id = send(sb, "0912345678,0922333444", msg=chinese_text(100), ST=st(3600))
    assert (credit, sent, cost) == ("996.00", "2", "4.0")
    assert status(sb, batch_id)[1][0][2:] == ["2025/03/01 10:00:00", "2.0", "300", ""]
    assert call(sb, "MMS/eraseBooking.ashx", BID=batch_id).text == ""  # an SMS batch is not an MMS booking
    assert call(sb, "eraseBooking.ashx", BID=batch_id).text == "2,4.0"
    assert call(sb, "getCredit.ashx").text == "1000.00"
    assert statuses(sb, batch_id) == ["303", "303"]
    assert call(sb, "eraseBooking.ashx", BID=batch_id).text == ""
    clock.advance(7200)
    assert statuses(sb, batch_id) == ["303", "303"]
    assert sb.batches[batch_id].send_at == START + 3600


def test_scheduled_batch_goes_out_at_its_time_and_can_no_longer_be_cancelled(sb: Sandbox, clock: FakeClock) -> None:
    batch_id = send(sb, "0912345678", ST=st(600))[4]
    clock.advance(599)
    assert statuses(sb, batch_id) == ["300"]
    clock.advance(1)
    assert statuses(sb, batch_id) == ["0"]
    assert call(sb, "eraseBooking.ashx", BID=batch_id).text == ""
    clock.advance(2)
    assert statuses(sb, batch_id) == ["100"]
    assert sb.credit == 999.0


def test_a_send_time_already_past_sends_at_once(sb: Sandbox) -> None:
    batch_id = send(sb, "0912345678", ST=st(-60))[4]
    assert statuses(sb, batch_id) == ["0"] and sb.batches[batch_id].send_at is None


def test_credit_running_out_mid_batch_leaves_the_rest_unsent(sb: Sandbox, clock: FakeClock) -> None:
    sb.set_credit(2)
    credit, sent, cost, unsent, batch_id = send(sb, ",".join(numbers(5)))
    assert (credit, sent, cost, unsent) == ("0.00", "2", "2.0", "3")
    clock.advance(2)
    assert [(row[3], row[4]) for row in status(sb, batch_id)[1]] == [("1.0", "100")] * 2 + [("0.0", "301")] * 3
    assert call(sb, "getCredit.ashx").text == "0.00"
    assert send(sb, "0912345678")[:4] == ["0.00", "0", "0.0", "1"]


# --- callbacks and replies --------------------------------------------------------------------------------


def test_every_status_change_is_pushed_with_every8d_parameters(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock, receiver: Receiver
) -> None:
    sandbox = make_sandbox(callback_url=receiver.url, contacts={"0912345678": "王 小明"})
    batch_id = send(sandbox, "0912345678")[4]
    sandbox.tick()
    clock.advance(2)
    sandbox.tick()
    # EVERY8D's real push (delta notes §4.11): SM carries the sent text, the subject is SUBJECT (never SB).
    common = {"token": "s3", "BatchID": batch_id, "RM": "+886912345678", "SM": "測試訊息", "CustID": "SANDBOX",
              "UserNo": "000000", "ST": "20250301090000", "MR": "1", "SUBJECT": "subject", "NAME": "王 小明",
              "USERID": "sandbox", "SOURCE": "", "CHARGE": "1"}
    assert receiver.reports == [
        {**common, "RT": "20250301090000", "STATUS": "0"},
        {**common, "RT": "20250301090002", "STATUS": "100"},
    ]
    assert "RM=%2b886912345678" in receiver.raw[0] and "NAME=%e7%8e%8b+%e5" in receiver.raw[0]


def test_a_callback_answered_500_is_retried_with_backoff_until_200(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock, receiver: Receiver
) -> None:
    sandbox = make_sandbox(callback_url=receiver.url, callback_retry_seconds=0.5)
    receiver.answers = [500, 500]
    send(sandbox, "0912345678")
    sandbox.tick()
    assert len(receiver.raw) == 1
    clock.advance(0.4)
    sandbox.tick()
    assert len(receiver.raw) == 1  # not before 0.5 s
    clock.advance(0.1)
    sandbox.tick()
    clock.advance(0.9)
    sandbox.tick()
    assert len(receiver.raw) == 2  # the second delay is 1 s
    clock.advance(0.1)
    sandbox.tick()
    assert len(receiver.raw) == 3 and sandbox.pending_callbacks == 0
    assert len(set(receiver.raw)) == 1  # the same report each time


def test_a_callback_is_given_up_after_the_first_push_and_10_retries(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock, receiver: Receiver
) -> None:
    # §2.1: "Retry 次數最多 10 次，錯誤超過 10 次後將不再傳送" (at most 10 retries, stop after more than 10
    # errors): the first push and 10 retries, 11 requests in all.
    sandbox = make_sandbox(callback_url=receiver.url, delivery_seconds=3600)
    receiver.always = 503
    send(sandbox, "0912345678")
    for _ in range(20):
        sandbox.tick()
        clock.advance(5)
    assert len(receiver.raw) == 11 and sandbox.pending_callbacks == 0


def test_background_threads_progress_and_push_without_tick(make_sandbox: Callable[..., Sandbox], receiver: Receiver) -> None:
    sandbox = make_sandbox(clock=time.time, background=True, delivery_seconds=0.05, callback_url=receiver.url)
    batch_id = send(sandbox, "0912345678")[4]
    deadline = time.monotonic() + 5
    while len(receiver.raw) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [report["STATUS"] for report in receiver.reports] == ["0", "100"]
    assert statuses(sandbox, batch_id) == ["100"]


def test_a_stuck_callback_receiver_never_slows_the_api(make_sandbox: Callable[..., Sandbox]) -> None:
    black_hole = socket.socket()  # accepts connections (backlog) but never answers
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(64)
    with black_hole:
        url = f"http://127.0.0.1:{black_hole.getsockname()[1]}/report"
        sandbox = make_sandbox(clock=time.time, background=True, delivery_seconds=0.01, callback_url=url)
        began = time.monotonic()
        for _ in range(20):
            send(sandbox, "0912345678,0922333444")
        assert time.monotonic() - began < 3
        assert call(sandbox, "getCredit.ashx").text == "960.00"
        assert sandbox.pending_callbacks > 0


def test_simulated_reply_is_a_999_row_with_its_text_and_a_callback(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock, receiver: Receiver
) -> None:
    sandbox = make_sandbox(callback_url=receiver.url)
    batch_id = send(sandbox, "0912345678,0922333444")[4]
    clock.advance(5)
    sandbox.simulate_reply(batch_id, "0922333444", "好，我會準時到\t謝謝")
    sandbox.tick()
    total, rows = status(sandbox, batch_id)
    assert total == 3
    # No reply-text column in getDeliveryStatus (delta notes §4.5): the sixth is RECEIVED_TIME.
    assert rows[2] == ["", "+886922333444", "2025/03/01 09:00:05", "0.0", "999", "2025/03/01 09:00:05"]
    reply = receiver.reports[-1]
    # A reply is a message of its own: its MR is its own record number (3), not the original's (2), so two
    # replies from one recipient are never taken for one (replies are de-duplicated by BatchID + MR).
    assert (reply["STATUS"], reply["SM"], reply["RM"], reply["MR"]) == ("999", "好，我會準時到\t謝謝", "+886922333444", "3")
    with pytest.raises(ValueError):
        sandbox.simulate_reply(batch_id, "0933000000", "not a recipient")


def test_reply_rate_makes_delivered_recipients_answer_later(make_sandbox: Callable[..., Sandbox], clock: FakeClock) -> None:
    sandbox = make_sandbox(reply_rate=1.0)
    batch_id = send(sandbox, "0912345678,0922333444")[4]
    clock.advance(2)
    assert status(sandbox, batch_id)[0] == 2
    clock.advance(5)
    total, rows = status(sandbox, batch_id)
    assert total == 4 and [row[4] for row in rows[2:]] == ["999", "999"] and all(row[5] for row in rows[2:])


# --- faults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "body"),
    [
        ("-99", 200, "-99, 主機端發生不明錯誤，請與廠商窗口聯繫。"),
        ("garbage", 200, "???"),
        ("empty", 200, ""),
    ],
)
def test_text_faults_answer_without_processing(sb: Sandbox, kind: str, code: int, body: str) -> None:
    sb.faults.inject(kind, endpoint="sendSMS.ashx")
    response = call(sb, "sendSMS.ashx", MSG="x", DEST="0912345678")
    assert (response.status_code, response.text) == (code, body)
    assert not sb.batches and sb.credit == 1000.0
    assert send(sb, "0912345678")[1] == "1"  # one injection, one failure


@pytest.mark.parametrize(("kind", "code"), [("http500", 500), ("html", 200)])
def test_html_faults(sb: Sandbox, kind: str, code: int) -> None:
    sb.faults.inject(kind)
    response = call(sb, "getCredit.ashx")
    assert response.status_code == code
    assert response.headers["Content-Type"].startswith("text/html") and response.text.startswith("<!DOCTYPE html>")


def test_faults_target_an_endpoint_and_count(sb: Sandbox) -> None:
    sb.faults.inject("garbage", count=2, endpoint="MMS/getDeliveryStatus.ashx")
    assert call(sb, "getCredit.ashx").text == "1000.00"
    assert [call(sb, "MMS/getDeliveryStatus.ashx", BID="x").text for _ in range(3)] == [
        "???", "???", "-25, 查無此批次代碼。",
    ]
    sb.faults.inject("empty", count=5)
    sb.faults.clear()
    assert call(sb, "getCredit.ashx").text == "1000.00"
    with pytest.raises(ValueError):
        sb.faults.inject("teapot")


def test_reset_closes_the_connection_without_an_answer(sb: Sandbox) -> None:
    with requests.Session() as session:  # a kept-alive connection, as the real client uses
        assert session.post(sb.base_url + "getCredit.ashx", data={"UID": "sandbox", "PWD": "sandbox"}).ok
        sb.faults.inject("reset")
        with pytest.raises(requests.ConnectionError):
            session.post(sb.base_url + "sendSMS.ashx", data={"UID": "sandbox", "PWD": "sandbox", "MSG": "x",
                                                            "DEST": "0912345678"})
    assert not sb.batches


def test_hang_times_the_client_out_and_processes_nothing(sb: Sandbox) -> None:
    sb.faults.hang_seconds = 1.0
    sb.faults.inject("hang")
    with pytest.raises(requests.Timeout):
        requests.post(sb.base_url + "sendSMS.ashx", data={"UID": "sandbox", "PWD": "sandbox", "MSG": "x",
                                                         "DEST": "0912345678"}, timeout=0.2)
    assert not sb.batches and sb.credit == 1000.0


def test_accept_then_hang_charges_the_send_but_the_answer_never_comes(sb: Sandbox) -> None:
    sb.faults.hang_seconds = 1.0
    sb.faults.inject("accept_then_hang", endpoint="sendSMS.ashx")
    with pytest.raises(requests.Timeout):
        requests.post(sb.base_url + "sendSMS.ashx", data={"UID": "sandbox", "PWD": "sandbox", "MSG": "x",
                                                         "DEST": "0912345678"}, timeout=0.2)
    assert len(sb.batches) == 1 and sb.credit == 999.0


def test_latency_delays_every_answer(sb: Sandbox) -> None:
    sb.faults.latency = 0.2
    began = time.monotonic()
    assert call(sb, "getCredit.ashx").text == "1000.00"
    assert time.monotonic() - began >= 0.2


# --- determinism, concurrency, secrets ------------------------------------------------------------------------


def test_same_seed_gives_same_batch_ids_and_outcomes(clock: FakeClock) -> None:
    def run(seed: int) -> list[tuple[str, list[str]]]:
        with Sandbox(seed=seed, clock=clock, background=False, failure_rates={101: 0.4, 103: 0.2}) as sandbox:
            batch_ids = [send(sandbox, ",".join(numbers(30)))[4] for _ in range(3)]
            clock.advance(2)
            return [(batch_id, statuses(sandbox, batch_id)) for batch_id in batch_ids]

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert [batch_id for batch_id, _ in first] != [batch_id for batch_id, _ in other]
    assert first[0][1] != first[1][1]  # outcomes differ per batch, not only per number


def test_concurrent_sends_charge_exactly_and_get_distinct_batches(sb: Sandbox) -> None:
    results: list[list[str]] = []

    def worker() -> None:
        with requests.Session() as session:
            for _ in range(5):
                response = session.post(sb.base_url + "sendSMS.ashx", data={
                    "UID": "sandbox", "PWD": "sandbox", "MSG": "x", "DEST": "0912345678,0922333444"})
                results.append(response.text.split(","))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({result[4] for result in results}) == 80
    assert sorted(float(result[0]) for result in results)[0] == 840.0 and sb.credit == 840.0


def test_the_password_never_reaches_the_call_log_or_the_console(
    make_sandbox: Callable[..., Sandbox], capfd: pytest.CaptureFixture[str]
) -> None:
    sandbox = make_sandbox(pwd="s3cret-Pw!")
    call(sandbox, "getCredit.ashx", method="GET")
    call(sandbox, "sendSMS.ashx", MSG="x", DEST="0912345678")
    call(sandbox, "getCredit.ashx", method="GET", PWD="wrong-s3cret")
    assert [c.params["PWD"] for c in sandbox.calls] == ["***", "***", "***"]
    captured = capfd.readouterr()
    for secret in ("s3cret-Pw!", "s3cret-Pw%21", "wrong-s3cret"):
        assert secret not in repr(sandbox.calls) and secret not in captured.out + captured.err


def test_run_forever_prints_where_it_serves_and_stops_on_ctrl_c() -> None:
    script = "from every8d.sandbox import run_forever; run_forever(port=0, uid='demo', pwd='demo-pw')"
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        match = re.search(r"(http://127\.0\.0\.1:\d+/API21/HTTP/)", line)
        assert match and "UID=demo" in line and "PWD=demo-pw" in line, line
        answer = requests.post(match.group(1) + "getCredit.ashx", data={"UID": "demo", "PWD": "demo-pw"}, timeout=5)
        assert answer.text == "1000.00"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()


def test_configuration_mistakes_fail_loudly() -> None:
    with pytest.raises(ValueError):
        Sandbox(failure_rates={1001: 0.1})  # not an EVERY8D final status
    with pytest.raises(ValueError):
        Sandbox(failure_rates={101: 0.7, 103: 0.5})  # more than certain
    with pytest.raises(ValueError):
        Sandbox(failing_numbers={"12345": 101})
