"""Tests of the push-callback decoder: form decoding, any-case names, hostile input."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from every8d.callback import parse_callback
from every8d.errors import ValidationError
from every8d.status import Outcome

TAIPEI = ZoneInfo("Asia/Taipei")
BATCH = "220478cc-8506-49b2-93b7-2505f651c12e"


def test_delivery_report_from_the_spec_sample() -> None:
    report = parse_callback(f"BatchID={BATCH}&RM=%2B886961295288&RT=20090210120000&STATUS=100&SM=&MR=7")
    assert report.batch_id == BATCH
    assert report.mobile == "+886961295288"
    assert report.reported_at == datetime(2009, 2, 10, 12, 0, 0, tzinfo=TAIPEI)
    assert report.status.outcome is Outcome.DELIVERED
    assert report.record_no == "7"
    assert not report.is_reply


def test_reply_with_form_encoded_chinese_text() -> None:
    # `+` is a space and the escapes are lower-case, as EVERY8D sends them.
    query = f"BATCHID={BATCH}&RM=%2b886912345678&RT=20240501093000&STATUS=999&SM=%e5%a5%bd%e7%9a%84+OK+%e8%ac%9d%e8%ac%9d"
    report = parse_callback(query)
    assert report.is_reply
    assert report.text == "好的 OK 謝謝"
    assert report.mobile == "+886912345678"


@pytest.mark.parametrize("name", ["BatchID", "BATCHID", "batchid", "bAtChId"])
def test_parameter_names_in_any_case(name: str) -> None:
    report = parse_callback(f"{name}=B1&rm=0912345678&status=0&rt=20240501093000")
    assert report.batch_id == "B1" and report.status.code == 0 and report.mobile == "0912345678"


def test_unknown_parameters_are_kept_in_raw_upper_cased() -> None:
    query = urlencode({"BatchID": "B1", "RM": "+886912345678", "STATUS": "100", "CustID": "42", "Name": "王小明"})
    report = parse_callback("?" + query)
    assert report.raw["CUSTID"] == "42"
    assert report.raw["NAME"] == "王小明"
    assert report.raw["BATCHID"] == "B1"


def test_subject_when_present() -> None:
    report = parse_callback(urlencode({"BatchID": "B1", "RM": "0912", "STATUS": "700", "SB": "週年慶"}))
    assert report.subject == "週年慶"
    assert parse_callback("BatchID=B1&RM=0912&STATUS=700").subject == ""


def test_unencoded_plus_in_number_is_restored() -> None:
    assert parse_callback("BatchID=B1&RM=+886912345678&STATUS=100").mobile == "+886912345678"


@pytest.mark.parametrize("rt", ["", "tomorrow", "20241399250000"])
def test_unreadable_report_time_is_none(rt: str) -> None:
    assert parse_callback(f"BatchID=B1&RM=0912&STATUS=100&RT={rt}").reported_at is None


def test_unknown_status_is_kept() -> None:
    report = parse_callback("BatchID=B1&RM=0912&STATUS=4242")
    assert report.status.code == 4242 and report.status.outcome is Outcome.UNKNOWN


def test_sm_on_a_delivery_report_is_not_a_reply() -> None:
    report = parse_callback("BatchID=B1&RM=0912&STATUS=100&SM=ok")
    assert report.text == "ok" and not report.is_reply


@pytest.mark.parametrize(
    "query",
    [
        "RM=0912&STATUS=100",
        "BatchID=&RM=0912&STATUS=100",
        "BatchID=B1&STATUS=100",
        "BatchID=B1&RM=0912",
        "BatchID=B1&RM=0912&STATUS=delivered",
        "",
    ],
)
def test_missing_or_bad_required_parameters(query: str) -> None:
    with pytest.raises(ValidationError):
        parse_callback(query)


def test_oversized_value_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_callback("BatchID=B1&RM=0912&STATUS=999&SM=" + "A" * 2001)
    assert "SM" in caught.value.en
    assert parse_callback("BatchID=B1&RM=0912&STATUS=999&SM=" + "A" * 2000).text == "A" * 2000


def test_too_many_parameters_are_refused() -> None:
    with pytest.raises(ValidationError):
        parse_callback("BatchID=B1&RM=0912&STATUS=100&" + "&".join(f"X{i}=1" for i in range(200)))


def test_contradictory_repeats_are_refused_identical_ones_accepted() -> None:
    with pytest.raises(ValidationError):
        parse_callback("BatchID=B1&BATCHID=B2&RM=0912&STATUS=100")
    assert parse_callback("BatchID=B1&BATCHID=B1&RM=0912&STATUS=100").batch_id == "B1"
