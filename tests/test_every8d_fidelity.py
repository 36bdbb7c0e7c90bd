"""The sandbox and the client against EVERY8D's documents, where an outside audit found them apart.

Each test names the document line it holds the product to (the seed `every8d-api-2.1.md`, its original
`spec/every8d-http-api-2.1.zh-TW.txt`, and `every8d-api-2021-delta.md`). Everything goes over real HTTP
to the sandbox, with a fake clock and no background threads, so nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
import requests

from every8d.client import Every8dClient
from every8d.errors import CredentialError
from every8d.sandbox import Sandbox
from tests.test_sandbox import FakeClock

TAIPEI = timezone(timedelta(hours=8))
START = datetime(2025, 3, 1, 9, 0, 0, tzinfo=TAIPEI).timestamp()
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def make_sandbox(clock: FakeClock) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def make(**kwargs: object) -> Sandbox:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("background", False)
        kwargs.setdefault("delivery_seconds", 2.0)
        sandbox = Sandbox(**kwargs).start()  # type: ignore[arg-type]
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


def post(sandbox: Sandbox, endpoint: str, **params: str) -> str:
    fields = {"UID": sandbox.uid, "PWD": sandbox.pwd, **params}
    return requests.post(sandbox.base_url + endpoint, data=fields, timeout=10).text


def rows(body: str) -> list[list[str]]:
    """The record lines of a status body, split on TAB without stripping (an empty NAME leads with a TAB)."""
    return [line.split("\t") for line in body.split("\n")[1:] if line]


# --- getDeliveryStatus: the 2021 shape (delta §4.5) --------------------------------------------------------


def test_sms_status_rows_carry_received_time_as_the_sixth_column(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock
) -> None:
    """delta §4.5: [2021] `NAME MOBILE SEND_TIME COST STATUS RECEIVED_TIME` (6 columns); RECEIVED_TIME
    empty until a final carrier report arrives (inferred there)."""
    sandbox = make_sandbox()
    batch_id = post(sandbox, "sendSMS.ashx", SB="", MSG="hi", DEST="0912345678").split(",")[4]
    [pending] = rows(post(sandbox, "getDeliveryStatus.ashx", BID=batch_id, PNO=""))
    assert pending == ["", "+886912345678", "2025/03/01 09:00:00", "1.0", "0", ""]
    clock.now += 3
    sandbox.tick()
    [delivered] = rows(post(sandbox, "getDeliveryStatus.ashx", BID=batch_id, PNO=""))
    assert delivered == ["", "+886912345678", "2025/03/01 09:00:00", "1.0", "100", "2025/03/01 09:00:02"]


def test_mms_status_rows_keep_five_columns(make_sandbox: Callable[..., Sandbox], clock: FakeClock) -> None:
    """delta §4.6: MMS getDeliveryStatus is unchanged in [2021], still 5 columns (no RECEIVED_TIME)."""
    import base64

    sandbox = make_sandbox()
    answer = post(sandbox, "MMS/sendMMS.ashx", SB="s", MSG="m", DEST="0912345678",
                  ATTACHMENT=base64.b64encode(PNG).decode(), TYPE="png")
    clock.now += 3
    sandbox.tick()
    [row] = rows(post(sandbox, "MMS/getDeliveryStatus.ashx", BID=answer.split(",")[4], PNO=""))
    assert row == ["", "+886912345678", "2025/03/01 09:00:00", "3.0", "700"]


def test_a_reply_row_in_delivery_status_carries_no_reply_text(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock
) -> None:
    """Neither revision has a reply-text column in getDeliveryStatus (seed §2.2: five columns; delta §4.5:
    the sixth is RECEIVED_TIME). The text comes by push (SM) or getReplyMessage (CONTENT) only."""
    sandbox = make_sandbox()
    batch_id = post(sandbox, "sendSMS.ashx", SB="", MSG="hi", DEST="0912345678").split(",")[4]
    clock.now += 5
    sandbox.tick()
    sandbox.simulate_reply(batch_id, "0912345678", "好的，收到")
    body = post(sandbox, "getDeliveryStatus.ashx", BID=batch_id, PNO="")
    assert "好的，收到" not in body
    assert rows(body)[1] == ["", "+886912345678", "2025/03/01 09:00:05", "0.0", "999", "2025/03/01 09:00:05"]
    replies = post(sandbox, "getReplyMessage.ashx", BID=batch_id, PNO="1")
    assert replies == "1\n\t+886912345678\t好的，收到\t2025/03/01 09:00:05\n"


def test_the_client_reads_received_time_and_never_a_reply_text_from_status_rows(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock
) -> None:
    sandbox = make_sandbox()
    with Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, retries=0) as client:
        sent = client.send_sms(message="hi", recipients=["0912345678"])
        clock.now += 5
        sandbox.tick()
        sandbox.simulate_reply(sent.batch_id, "0912345678", "好的，收到")
        delivered, reply = client.iter_delivery_status(sent.batch_id)
    assert delivered.received_at == datetime(2025, 3, 1, 9, 0, 2, tzinfo=TAIPEI)
    assert reply.is_reply and reply.received_at == datetime(2025, 3, 1, 9, 0, 5, tzinfo=TAIPEI)
    assert "好的，收到" not in reply.extra


# --- request-level refusals: codes and texts as recorded (delta §2, §5) -----------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"PWD": "wrong"}, "-101, 密碼錯誤。"),  # [WS] -101 wrong password
        ({"UID": "nobody"}, "-100, 帳號或密碼錯誤。"),  # [WS] -100 no such account
        ({"UID": "", "PWD": ""}, "-300, 帳號密碼不得為空值。"),  # [go] tests' exact text
    ],
)
def test_credential_refusals_tell_a_wrong_password_from_an_unknown_account(
    make_sandbox: Callable[..., Sandbox], params: dict[str, str], expected: str
) -> None:
    assert post(make_sandbox(), "getCredit.ashx", **params) == expected


def test_the_client_tells_the_admin_which_setting_is_wrong(make_sandbox: Callable[..., Sandbox]) -> None:
    """A wrong password must not send the admin to fix EVERY8D_UID (and the reverse)."""
    sandbox = make_sandbox()
    with Every8dClient(sandbox.base_url, sandbox.uid, "wrong", retries=0) as client:
        with pytest.raises(CredentialError) as wrong_password:
            client.get_credit()
    with Every8dClient(sandbox.base_url, "nobody", sandbox.pwd, retries=0) as client:
        with pytest.raises(CredentialError) as no_account:
            client.get_credit()
    assert "EVERY8D_PWD" in wrong_password.value.en and "EVERY8D_PWD" in wrong_password.value.zh
    assert "EVERY8D_UID" in no_account.value.en and "EVERY8D_UID" in no_account.value.zh


def test_send_refusals_use_the_recorded_codes(make_sandbox: Callable[..., Sandbox]) -> None:
    """delta §5: -41 `no mobile.` and -24 `The content is empty.` ([go]); -27 is only in the seed's notes."""
    sandbox = make_sandbox()
    assert post(sandbox, "sendSMS.ashx", SB="", MSG="hi", DEST="") == "-41, no mobile."
    assert post(sandbox, "sendSMS.ashx", SB="", MSG="", DEST="0912345678") == "-24, The content is empty."
    assert sandbox.batches == {} and sandbox.credit == 1000.0


# --- DEST: the documented forms only (seed §1.1, delta §2 and §4.1) ---------------------------------------


def test_an_unencoded_plus_in_dest_is_not_a_taiwan_number(make_sandbox: Callable[..., Sandbox]) -> None:
    """DEST takes `+886912345678` or `0912345678`. A `+` sent unencoded arrives as a space (delta §2), so
    `886912345678` is what a client that forgets to encode it sends: the sandbox must not accept it and so
    hide the bug (it used to read it as +886912345678)."""
    sandbox = make_sandbox()
    raw = f"UID={sandbox.uid}&PWD={sandbox.pwd}&SB=&MSG=hi&DEST=+886912345678"
    answer = requests.post(sandbox.base_url + "sendSMS.ashx", data=raw.encode(), timeout=10,
                           headers={"Content-Type": "application/x-www-form-urlencoded"}).text
    assert answer == "-306, 收訊人號碼格式錯誤。"
    assert post(sandbox, "sendSMS.ashx", SB="", MSG="hi", DEST="886912345678") == "-306, 收訊人號碼格式錯誤。"
    assert sandbox.batches == {}


def test_the_client_percent_encodes_the_plus_of_every_number(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(international_enabled=True)
    with Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, retries=0) as client:
        result = client.send_sms(message="hi", recipients=["+886912345678", "0922333444", "+14155550123"])
    assert result.sent == 3
    assert sandbox.calls[-1].params["DEST"] == "+886912345678,0922333444,+14155550123"
    assert [record.mobile for record in sandbox.batches[result.batch_id].records] == [
        "+886912345678", "+886922333444", "+14155550123"
    ]


# --- ST: what the status table says happens to an unusable time (seed §2.2, delta §8 and §9) ---------------


def st(offset_seconds: float) -> str:
    return datetime.fromtimestamp(START + offset_seconds, TAIPEI).strftime("%Y%m%d%H%M%S")


def test_a_send_time_over_24_hours_past_fails_each_recipient_with_minus_4(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock
) -> None:
    """Status -4: "預計發送時間已過去 24 小時以上" (the scheduled time is more than 24 h past), a final
    per-recipient failure; only a time less than 24 h past "is sent at once". Nothing is charged."""
    sandbox = make_sandbox()
    answer = post(sandbox, "sendSMS.ashx", SB="", MSG="hi", DEST="0912345678,0922333444", ST=st(-25 * 3600))
    credit, sent, cost, unsent, batch_id = answer.split(",")
    assert (credit, sent, cost, unsent) == ("1000.00", "0", "0.0", "0")
    clock.now += 60
    sandbox.tick()
    assert [row[4] for row in rows(post(sandbox, "getDeliveryStatus.ashx", BID=batch_id, PNO=""))] == ["-4", "-4"]
    recent = post(sandbox, "sendSMS.ashx", SB="", MSG="hi", DEST="0912345678", ST=st(-23 * 3600)).split(",")
    assert recent[1:3] == ["1", "1.0"]  # less than 24 h past: sent at once


def test_a_malformed_send_time_fails_each_recipient_with_minus_6(make_sandbox: Callable[..., Sandbox]) -> None:
    """[2021] status -6: "DT (scheduled time) format error", a per-recipient status, not a refusal of the call
    (no request-level code for it is documented anywhere)."""
    sandbox = make_sandbox()
    for bad in ("2025-03-01 10:00", "20251301100000"):
        answer = post(sandbox, "sendSMS.ashx", SB="", MSG="hi", DEST="0912345678", ST=bad)
        credit, sent, cost, unsent, batch_id = answer.split(",")
        assert (credit, sent, cost, unsent) == ("1000.00", "0", "0.0", "0")
        assert [row[4] for row in rows(post(sandbox, "getDeliveryStatus.ashx", BID=batch_id, PNO=""))] == ["-6"]


def test_the_client_reports_an_overdue_schedule_as_not_sent(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock
) -> None:
    sandbox = make_sandbox()
    with Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, retries=0) as client:
        result = client.send_sms(message="hi", recipients=["0912345678"],
                                 send_at=datetime.fromtimestamp(START - 30 * 3600, TAIPEI))
        [record] = client.iter_delivery_status(result.batch_id)
    assert (result.sent, result.cost) == (0, 0.0)
    assert record.status.code == -4 and record.status.final and "24 h past" in record.status.en


# --- the cost preview is what EVERY8D charges (seed §1.1, §1.2; delta §6, §7) ----------------------------


@pytest.mark.parametrize("chars", [1, 70, 71, 134, 135, 201, 202, 268, 269, 333, 334, 403, 666, 667, 1000])
def test_the_sms_preview_is_what_the_sandbox_charges_at_every_band_edge(
    make_sandbox: Callable[..., Sandbox], chars: int
) -> None:
    """The approval card promises the exact points (estimate-labelled past 333 characters and for split
    international text): the sandbox, which follows the table, must charge exactly the preview."""
    from every8d.phones import parse_recipients
    from every8d.pricing import quote_sms

    sandbox = make_sandbox(international_enabled=True, credit=100_000.0)
    text = ("台北車站東三門集合\r\n" * 200)[:chars]
    people = parse_recipients(["0912345678", "+886922333444", "+14155550123", "+81312345678"])
    quote = quote_sms(text, people)
    with Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, retries=0) as client:
        result = client.send_sms(message=text, recipients=[r.for_api for r in people.recipients])
    assert result.cost == quote.points


@pytest.mark.parametrize(("terms", "size"), [("2021", 50_000), ("2021", 50_001), ("2021", 300_000), ("2017", 50_000)])
def test_the_mms_preview_is_what_the_sandbox_charges(
    make_sandbox: Callable[..., Sandbox], terms: str, size: int
) -> None:
    from every8d.limits import limits_for_mms_terms
    from every8d.phones import parse_recipients
    from every8d.pricing import quote_mms

    sandbox = make_sandbox(mms_terms=terms)
    message = "圖文"  # 6 UTF-8 bytes
    image = PNG + b"\0" * (size - len(PNG) - len(message.encode()))
    people = parse_recipients(["0912345678", "0922333444"], allow_international=False)
    quote = quote_mms(people, limits_for_mms_terms(terms), message=message, image=image)
    with Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, retries=0) as client:
        result = client.send_mms(subject="s", message=message, image=image, image_type="png",
                                 recipients=[r.for_api for r in people.recipients])
    assert result.cost == quote.points and quote.size_bytes == size


def test_a_status_time_with_date_and_time_run_together_is_read() -> None:
    """delta §4.5: one [2021] example row reads `2021/06/0114:27:55` ("parse dates leniently")."""
    from every8d.parsing import parse_status_page

    body = "1\nRoger\t+886933123123\t2021/06/0114:27:55\t1.0\t100\t2021/06/01 16:56:20\n"
    [record] = parse_status_page(body)[1]
    assert record.sent_at == datetime(2021, 6, 1, 14, 27, 55, tzinfo=TAIPEI)
    assert record.received_at == datetime(2021, 6, 1, 16, 56, 20, tzinfo=TAIPEI)


def test_a_legacy_platform_answers_the_2017_five_column_rows(
    make_sandbox: Callable[..., Sandbox], clock: FakeClock
) -> None:
    """A platform without the 2021 endpoints is a 2017 one: seed §2.2 `NAME MOBILE SEND_TIME COST STATUS`."""
    sandbox = make_sandbox(legacy_platform=True)
    batch_id = post(sandbox, "sendSMS.ashx", SB="", MSG="hi", DEST="0912345678").split(",")[4]
    clock.now += 3
    sandbox.tick()
    assert rows(post(sandbox, "getDeliveryStatus.ashx", BID=batch_id, PNO="")) == [
        ["", "+886912345678", "2025/03/01 09:00:00", "1.0", "100"]
    ]
