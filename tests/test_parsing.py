"""Parser tests over every quirk of EVERY8D's plain-text answers, with the real Chinese error texts."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from every8d.codes import error_for, is_transient
from every8d.endpoints import CANCEL_MMS, CREDIT, SEND_MMS, SEND_SMS, STATUS_MMS, STATUS_SMS
from every8d.errors import CredentialError, ProviderError, UnavailableError
from every8d.parsing import (
    parse_cancel,
    parse_credit,
    parse_send_response,
    parse_status_page,
    parse_taipei_time,
)
from every8d.results import CancelResult, NothingToCancel, SendResult
from every8d.status import Outcome

TAIPEI = ZoneInfo("Asia/Taipei")
BATCH = "220478cc-8506-49b2-93b7-2505f651c12e"
HTML_PAGE = (
    "<!DOCTYPE html>\r\n<html><head><title>503 Service Unavailable</title></head>"
    "<body><h1>系統維護中</h1></body></html>"
)


# --- send -------------------------------------------------------------------------------------------


def test_send_five_fields() -> None:
    assert parse_send_response(f"1230.00,4,4.0,0,{BATCH}") == SendResult(1230.0, 4, 4.0, 0, BATCH)


def test_send_spec_four_field_example_without_unsend() -> None:
    result = parse_send_response(f"1230.00,4,4.0,{BATCH}")
    assert result == SendResult(credit=1230.0, sent=4, cost=4.0, unsent=0, batch_id=BATCH)
    assert not result.partly_dropped


def test_send_partly_dropped_for_lack_of_credit() -> None:
    result = parse_send_response(f"0.00,3,3.0,2,{BATCH}\r\n")
    assert result.unsent == 2 and result.partly_dropped


@pytest.mark.parametrize("body", ["-100, 帳號或密碼錯誤。", "-100,帳號或密碼錯誤。", "-100 ，帳號或密碼錯誤。\r\n"])
def test_send_wrong_password_keeps_server_message(body: str) -> None:
    with pytest.raises(CredentialError) as caught:
        parse_send_response(body)
    error = caught.value
    assert error.code == -100
    assert error.server_message == "帳號或密碼錯誤。"
    assert "帳號或密碼錯誤" in error.zh and "password" in error.en
    assert "（EVERY8D -100：帳號或密碼錯誤。）" in error.describe()


def test_send_empty_credentials_is_a_credential_error() -> None:
    with pytest.raises(CredentialError) as caught:
        parse_send_response("-300, 帳號或密碼不得為空。")
    assert caught.value.code == -300 and caught.value.server_message == "帳號或密碼不得為空。"


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ("-27, 未輸入收訊人號碼。", -27, "recipient"),
        ("-306, 收訊人號碼格式錯誤。", -306, "malformed"),
        ("-24, 簡訊內容不得為空。", -24, "empty"),
        ("-4, 預約時間格式錯誤。", -4, "scheduled time"),
        ("-99, 主機端發生不明錯誤，請與廠商窗口聯繫。", -99, "internal error"),
    ],
)
def test_send_refusals_map_to_provider_errors(body: str, code: int, words: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_send_response(body, SEND_MMS)
    error = caught.value
    assert (error.code, error.endpoint) == (code, SEND_MMS)
    assert words in error.en and "nothing was sent" in error.en
    assert error.server_message == body.split(",", 1)[1].strip()


def test_send_bare_minus_99_without_message() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_send_response("-99")
    assert caught.value.code == -99 and caught.value.server_message == ""


def test_unknown_code_keeps_server_message() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_send_response("-42, 某個新的錯誤。")
    error = caught.value
    assert error.zh == "EVERY8D 錯誤代碼 -42" and error.en == "EVERY8D error code -42"
    assert error.server_message == "某個新的錯誤。"
    assert error.describe() == "EVERY8D 錯誤代碼 -42 / EVERY8D error code -42 （EVERY8D -42：某個新的錯誤。）"


@pytest.mark.parametrize(
    "body",
    ["", "   \r\n", HTML_PAGE, "  <html>oops</html>", "???", "1230.00,4,4.0", "abc,4,4.0,0,x", f"1,2,3,4,5,{BATCH}",
     "1230.00,four,4.0,0,x", f"nan,4,4.0,0,{BATCH}", "1230.00,4,4.0,0,"],
)
def test_send_unreadable_answers_are_unavailable(body: str) -> None:
    with pytest.raises(UnavailableError) as caught:
        parse_send_response(body)
    assert caught.value.zh.startswith("EVERY8D 回應了無法辨識的內容")
    assert caught.value.en.startswith("EVERY8D answered something unreadable")


def test_html_answer_names_the_page_title() -> None:
    with pytest.raises(UnavailableError) as caught:
        parse_credit(HTML_PAGE)
    assert "HTML" in caught.value.en
    assert caught.value.server_message == "503 Service Unavailable"


def test_garbage_answer_keeps_a_short_excerpt() -> None:
    with pytest.raises(UnavailableError) as caught:
        parse_credit("Object reference not set to an instance of an object.\n" * 10)
    assert caught.value.server_message.startswith("Object reference not set")
    assert len(caught.value.server_message) <= 80


# --- codes per endpoint -------------------------------------------------------------------------------


def test_same_code_means_different_things_per_endpoint() -> None:
    on_send = error_for(SEND_SMS, -4, "預約時間格式錯誤。")
    on_status = error_for(STATUS_SMS, -4, "x")
    assert "scheduled time" in on_send.en
    assert on_status.en == "EVERY8D error code -4"


def test_minus_99_is_transient_and_credentials_are_not() -> None:
    assert is_transient(STATUS_MMS, -99) and is_transient(CREDIT, -99)
    assert not is_transient(STATUS_SMS, -100) and not is_transient(STATUS_SMS, -25)
    assert not is_transient(STATUS_SMS, None)


# --- status pages -------------------------------------------------------------------------------------


def test_status_page_spec_example() -> None:
    body = (
        "1130\n"
        "Roger\t+886933123123\t2010/03/03 14:25:55\t1.0\t100\n"
        "Peggy\t+886933123122\t2010/03/03 14:26:55\t1.0\t100\n"
        "Larry\t+886933123121\t2010/03/03 14:27:55\t1.0\t103\n"
    )
    total, records = parse_status_page(body)
    assert total == 1130
    assert [r.name for r in records] == ["Roger", "Peggy", "Larry"]
    assert records[0].mobile == "+886933123123"
    assert records[0].sent_at == datetime(2010, 3, 3, 14, 25, 55, tzinfo=TAIPEI)
    assert records[0].sent_at.utcoffset().total_seconds() == 8 * 3600
    assert records[0].cost == 1.0
    assert records[0].status.outcome is Outcome.DELIVERED
    assert records[2].status.code == 103 and records[2].status.final


def test_status_row_with_empty_name_starts_with_a_tab() -> None:
    total, records = parse_status_page("1\n\t0912345678\t2010/03/03 14:25:55\t1.0\t0\n")
    assert total == 1
    assert records[0].name == "" and records[0].mobile == "0912345678"
    assert records[0].status.outcome is Outcome.PENDING


def test_status_first_row_with_empty_name_after_total_and_crlf() -> None:
    body = "2\r\n\t+886911000001\t2010/03/03 14:25:55\t4.0\t700\r\n王小明\t+886911000002\t\t4.0\t303\r\n"
    total, records = parse_status_page(body, STATUS_MMS)
    assert total == 2
    assert [(r.name, r.mobile, r.status.code) for r in records] == [
        ("", "+886911000001", 700),
        ("王小明", "+886911000002", 303),
    ]
    assert records[1].sent_at is None
    assert records[1].status.outcome is Outcome.CANCELLED


def test_status_extra_columns_are_kept() -> None:
    body = "1\nAmy\t0912345678\t2010/03/03 14:25:55\t2.0\t100\t2010/03/03 14:26:01\t好的，謝謝\n"
    (record,) = parse_status_page(body)[1]
    assert record.extra == ("2010/03/03 14:26:01", "好的，謝謝")
    assert record.cost == 2.0


def test_status_reply_record() -> None:
    (record,) = parse_status_page("1\n\t+886912345678\t2010/03/03 15:00:00\t0.0\t999\n")[1]
    assert record.is_reply


@pytest.mark.parametrize("body", ["0", "0\n", "0\r\n", "\ufeff0\r\n"])
def test_empty_batch(body: str) -> None:
    assert parse_status_page(body) == (0, [])


def test_status_unknown_status_code_is_kept_not_crashed() -> None:
    (record,) = parse_status_page("1\n\t0912345678\t\t1.0\t4242\n")[1]
    assert record.status.code == 4242 and record.status.outcome is Outcome.UNKNOWN


def test_status_negative_record_status() -> None:
    (record,) = parse_status_page("1\n\t0912\t2010/03/03 14:25:55\t0\t-3\n")[1]
    assert record.status.code == -3 and record.status.outcome is Outcome.FAILED


def test_status_empty_cost_is_zero() -> None:
    (record,) = parse_status_page("1\n\t0912\t\t\t300\n")[1]
    assert record.cost == 0.0 and record.status.outcome is Outcome.SCHEDULED


def test_status_unknown_batch_is_a_provider_error() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_status_page("-25, 查無此批次代碼。", STATUS_SMS)
    assert caught.value.code == -25 and "no batch" in caught.value.en
    assert caught.value.server_message == "查無此批次代碼。"


def test_status_wrong_password() -> None:
    with pytest.raises(CredentialError):
        parse_status_page("-100, 帳號或密碼錯誤。\r\n")


@pytest.mark.parametrize(
    "body",
    ["", HTML_PAGE, "total\n", "2\nRoger\t0912\n", "1\nRoger\t0912\t2010/03/03\tcheap\t100\n",
     "1\nRoger\t0912\t2010/03/03\t1.0\tdelivered\n", "<?xml version='1.0'?><error/>"],
)
def test_status_unreadable(body: str) -> None:
    with pytest.raises(UnavailableError):
        parse_status_page(body)


# --- send times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2010/03/03 14:25:55", datetime(2010, 3, 3, 14, 25, 55, tzinfo=TAIPEI)),
        ("2010/3/3 14:25:55", datetime(2010, 3, 3, 14, 25, 55, tzinfo=TAIPEI)),
        ("2010-03-03 14:25", datetime(2010, 3, 3, 14, 25, 0, tzinfo=TAIPEI)),
        ("2010/3/3 下午 02:25:55", datetime(2010, 3, 3, 14, 25, 55, tzinfo=TAIPEI)),
        ("2010/3/3 上午 12:05:00", datetime(2010, 3, 3, 0, 5, 0, tzinfo=TAIPEI)),
        ("2010/3/3 2:25:55 PM", datetime(2010, 3, 3, 14, 25, 55, tzinfo=TAIPEI)),
        ("20090210120000", datetime(2009, 2, 10, 12, 0, 0, tzinfo=TAIPEI)),
        ("", None),
        ("   ", None),
        ("yesterday", None),
        ("2010/13/45 25:61:00", None),
    ],
)
def test_taipei_times(text: str, expected: datetime | None) -> None:
    assert parse_taipei_time(text) == expected


def test_unparseable_send_time_does_not_fail_the_page() -> None:
    (record,) = parse_status_page("1\n\t0912\t不明\t1.0\t100\n")[1]
    assert record.sent_at is None and record.status.code == 100


# --- credit -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "value"), [("2310.00", 2310.0), ("2310.00\r\n", 2310.0), ("0", 0.0), ("\ufeff15.5", 15.5)])
def test_credit(body: str, value: float) -> None:
    assert parse_credit(body) == value


def test_credit_negative_is_an_error() -> None:
    with pytest.raises(CredentialError) as caught:
        parse_credit("-101, 帳號或密碼錯誤。", CREDIT)
    assert caught.value.endpoint == CREDIT


@pytest.mark.parametrize("body", ["", "<html><body>Error</body></html>", "2,310.00", "NaN", "inf", "點數"])
def test_credit_unreadable(body: str) -> None:
    with pytest.raises(UnavailableError):
        parse_credit(body)


# --- cancel -------------------------------------------------------------------------------------------


def test_cancel_result() -> None:
    assert parse_cancel("3,3.0", BATCH) == CancelResult(deleted=3, refunded=3.0)
    assert parse_cancel(" 2 , 8 \r\n", BATCH) == CancelResult(deleted=2, refunded=8.0)


@pytest.mark.parametrize("body", ["", "\r\n", "  "])
def test_cancel_empty_means_nothing_to_cancel(body: str) -> None:
    assert parse_cancel(body, BATCH) == NothingToCancel(batch_id=BATCH)


def test_cancel_refusal_and_garbage() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_cancel("-25, 查無此批次代碼。", BATCH, CANCEL_MMS)
    assert caught.value.code == -25 and caught.value.endpoint == CANCEL_MMS
    with pytest.raises(UnavailableError):
        parse_cancel("<html>gateway</html>", BATCH)
    with pytest.raises(UnavailableError):
        parse_cancel("3", BATCH)
