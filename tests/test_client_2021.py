"""The 2021 endpoints of the client (SendParamSMS, getReplyMessage): the exact JSON and form fields sent, as
a canned server receives them, every answer shape (success, Result:false, §2 error body, 404, garbage), and
both endpoints end to end against the sandbox over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from every8d.callback import parse_callback
from every8d.client import Every8dClient
from every8d.errors import (
    CredentialError,
    OutcomeUnknownError,
    ProviderError,
    UnsupportedEndpointError,
    ValidationError,
)
from every8d.parsing import parse_reply_page
from every8d.results import ParamRecipient, ReplyMessage, SendResult
from every8d.sandbox import Sandbox
from every8d.sandbox.callbacks import callback_query
from every8d.sandbox.engine import CallbackEvent
from tests.test_client import BATCH, PWD, UID, CannedServer, Reply, make_client
from tests.test_client import server as server  # noqa: F401 - fixture
from tests.test_client import sleeps as sleeps  # noqa: F401 - fixture

PARAM_OK = json.dumps({"Result": True, "Status": "0", "Msg": f"56.00,2,3,0,{BATCH}"})


@pytest.fixture
def client(server: CannedServer, sleeps: list[float]) -> Iterator[Every8dClient]:  # noqa: F811
    with make_client(server.base_url, sleeps) as every8d:
        yield every8d


# --- SendParamSMS: exact JSON ------------------------------------------------------------------------------


def test_send_param_sms_posts_exact_json(server: CannedServer, client: Every8dClient) -> None:
    server.queue("SendParamSMS.ashx", PARAM_OK)
    result = client.send_param_sms(
        recipients=[
            ParamRecipient("+886912345678", "王小明 您好，訂單 A1 已出貨", name="王小明", mr="r1"),
            ParamRecipient("0922333444", "Amy, order B2 & 100% shipped", mr="r2"),
        ],
        subject="#R7@abcd",
        send_at=datetime(2024, 5, 1, 1, 30, 5, tzinfo=UTC),
        validity_minutes=60,
    )
    assert result == SendResult(credit=56.0, sent=2, cost=3.0, unsent=0, batch_id=BATCH)
    (request,) = server.received
    assert request.method == "POST" and request.endpoint == "SendParamSMS.ashx" and request.query == ""
    assert request.content_type == "application/json; charset=utf-8"
    assert json.loads(request.raw_body.decode("utf-8")) == {
        "UID": UID,
        "PWD": PWD,
        "SB": "#R7@abcd",
        "MSG": "",
        "RETRYTIME": 60,
        "RecipientDataList": [
            {"Name": "王小明", "Mobile": "+886912345678", "Email": "", "SendTime": "20240501093005",
             "Param": "王小明 您好，訂單 A1 已出貨", "Mr": "r1"},
            {"Name": "", "Mobile": "0922333444", "Email": "", "SendTime": "20240501093005",
             "Param": "Amy, order B2 & 100% shipped", "Mr": "r2"},
        ],
    }
    assert "王小明".encode() in request.raw_body  # UTF-8 as is, not \\u escapes


def test_send_param_sms_now_omits_retrytime_and_sends_empty_sendtime(server: CannedServer,
                                                                      client: Every8dClient) -> None:
    server.queue("SendParamSMS.ashx", PARAM_OK)
    client.send_param_sms(recipients=[ParamRecipient("0912345678", "hi")])
    document = json.loads(server.received[0].raw_body)
    assert "RETRYTIME" not in document
    assert document["RecipientDataList"][0]["SendTime"] == ""


def test_send_param_sms_refusal_is_result_false_with_status(server: CannedServer, client: Every8dClient) -> None:
    server.queue("SendParamSMS.ashx", json.dumps({"Result": False, "Status": "-28", "Msg": "發送時間格式錯誤"}),
                 json.dumps({"Result": False, "Status": "-100", "Msg": "帳號或密碼錯誤"}), "-99, 主機端發生不明錯誤")
    with pytest.raises(ProviderError) as refused:
        client.send_param_sms(recipients=[ParamRecipient("0912345678", "hi")])
    assert refused.value.code == -28 and refused.value.server_message == "發送時間格式錯誤"
    with pytest.raises(CredentialError):
        client.send_param_sms(recipients=[ParamRecipient("0912345678", "hi")])
    with pytest.raises(ProviderError) as host:
        client.send_param_sms(recipients=[ParamRecipient("0912345678", "hi")])
    assert host.value.code == -99
    assert server.count("SendParamSMS.ashx") == 3  # a send is never retried


def test_send_param_sms_404_is_unsupported_and_not_retried(server: CannedServer, client: Every8dClient) -> None:
    server.queue("SendParamSMS.ashx", Reply("<html>404</html>", status=404))
    with pytest.raises(UnsupportedEndpointError) as missing:
        client.send_param_sms(recipients=[ParamRecipient("0912345678", "hi")])
    assert "not supported by this account's platform" in missing.value.en
    assert server.count("SendParamSMS.ashx") == 1


def test_send_param_sms_unreadable_answer_is_outcome_unknown(server: CannedServer, client: Every8dClient) -> None:
    server.queue("SendParamSMS.ashx", '{"Result": true}', Reply("oops", status=500))
    for _ in range(2):
        with pytest.raises(OutcomeUnknownError):
            client.send_param_sms(recipients=[ParamRecipient("0912345678", "hi")])
    assert server.count("SendParamSMS.ashx") == 2


def test_send_param_sms_refuses_locally(server: CannedServer, client: Every8dClient) -> None:
    for recipients in ([], [ParamRecipient("", "hi")], [ParamRecipient("0912345678", " ")],
                       [ParamRecipient("0912345678", "a", mr="x"), ParamRecipient("0922333444", "b", mr="x")]):
        with pytest.raises(ValidationError):
            client.send_param_sms(recipients=recipients)
    with pytest.raises(ValidationError):
        client.send_param_sms(recipients=[ParamRecipient("0912345678", "Amy|x")], template="Hi %field1%")
    assert server.received == []


# --- getReplyMessage: exact form, paging, suspect rows ----------------------------------------------------


def replies_page(total: int, rows: list[str]) -> str:
    return "\r\n".join([str(total), *rows]) + "\r\n"


def test_reply_page_posts_exact_form_and_parses_rows(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getReplyMessage.ashx", replies_page(2, ["Roger\t+886933123123\t回覆簡訊內容 01\t2010/03/03 14:25:55",
                                                          "\t+886933000111\tOK\t2010/3/3 下午 02:26:01"]))
    page = client.reply_page(f" {BATCH} ", 1)
    (request,) = server.received
    assert request.endpoint == "getReplyMessage.ashx"
    assert request.content_type == "application/x-www-form-urlencoded; charset=utf-8"
    assert request.form == {"UID": UID, "PWD": PWD, "BID": BATCH, "PNO": "1"}
    assert page.total == 2 and page.suspect == 0
    assert page.replies[0] == ReplyMessage("Roger", "+886933123123", "回覆簡訊內容 01",
                                           datetime(2010, 3, 3, 6, 25, 55, tzinfo=UTC))
    assert page.replies[1].name == "" and page.replies[1].received_at == datetime(2010, 3, 3, 6, 26, 1, tzinfo=UTC)


def test_rows_with_an_unexpected_field_count_are_skipped_and_counted() -> None:
    body = replies_page(3, ["A\t+886933123123\tfirst line", "second line\t2010/03/03 14:25:55",
                            "B\t+886933000111\twith\ttab\t2010/03/03 14:25:56",
                            "C\t+886933000222\tfine\t2010/03/03 14:25:57"])
    page = parse_reply_page(body)
    assert [r.text for r in page.replies] == ["fine"]
    assert page.suspect == 3


def test_get_replies_reads_every_page_of_ten(server: CannedServer, client: Every8dClient) -> None:
    rows = [f"\t+8869{n:08d}\treply {n}\t2024/05/01 09:30:{n:02d}" for n in range(23)]
    server.queue("getReplyMessage.ashx", replies_page(23, rows[:10]), replies_page(23, rows[10:20]),
                 replies_page(23, rows[20:]))
    everything = client.get_replies(BATCH)
    assert [r.text for r in everything.replies] == [f"reply {n}" for n in range(23)]
    assert [r.form["PNO"] for r in server.received] == ["1", "2", "3"]


def test_reply_lookup_errors(server: CannedServer, client: Every8dClient) -> None:
    server.queue("getReplyMessage.ashx", Reply("Not Found", status=404), "Hello, this is not the format",
                 "-25, 查無此批次代碼。")
    with pytest.raises(UnsupportedEndpointError):
        client.reply_page(BATCH, 1)
    with pytest.raises(UnsupportedEndpointError):
        client.reply_page(BATCH, 1)
    with pytest.raises(ProviderError) as unknown:
        client.reply_page(BATCH, 1)
    assert unknown.value.code == -25
    assert server.count("getReplyMessage.ashx") == 3  # none of these is retried


# --- both endpoints against the sandbox --------------------------------------------------------------------

START = datetime(2024, 5, 1, 1, 0, 0, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def test_param_send_and_reply_lookup_against_the_sandbox() -> None:
    clock = FakeClock()
    pushes: list[CallbackEvent] = []
    with Sandbox(credit=100.0, clock=clock, background=False, delivery_seconds=2.0) as sandbox:
        sandbox._engine._emit = pushes.append  # see the pushes the sandbox would send
        with Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, timeout=2.0) as client:
            long_text = "長" * 80  # 2 points
            result = client.send_param_sms(recipients=[ParamRecipient("0912345678", "短訊", mr="m1"),
                                                       ParamRecipient("+886922333444", long_text, mr="m2")],
                                           subject="#R1@abcd")
            assert (result.sent, result.cost, result.credit) == (2, 3.0, 97.0)
            batch = sandbox.batches[result.batch_id]
            assert batch.texts == ["短訊", long_text] and batch.subject == "#R1@abcd"
            (call,) = [c for c in sandbox.calls if c.endpoint == "SendParamSMS.ashx"]
            assert call.document is not None and call.document["PWD"] == "***"
            assert [r["Mr"] for r in call.document["RecipientDataList"]] == ["m1", "m2"]
            # Mr is echoed as MR in the pushes.
            report = parse_callback(callback_query(pushes[0]))
            assert report.record_no == "m1" and report.batch_id == result.batch_id

            clock.now += 3
            sandbox.tick()
            assert client.get_replies(result.batch_id).replies == []
            for n in range(12):
                sandbox.simulate_reply(result.batch_id, "0912345678", f"回覆 {n}", at=START + 10 + n)
            sandbox.simulate_reply(result.batch_id, "0922333444", "two\nlines", at=START + 30)
            clock.now = START + 40
            found = client.get_replies(result.batch_id)
            assert found.total == 13 and found.suspect == 2
            assert [r.text for r in found.replies] == [f"回覆 {n}" for n in range(12)]
            assert found.replies[0].mobile == "+886912345678"
            assert found.replies[0].received_at == datetime.fromtimestamp(START + 10, UTC)
            assert [c.params["PNO"] for c in sandbox.calls if c.endpoint == "getReplyMessage.ashx"][-2:] == ["1", "2"]


def test_sandbox_param_refusals_and_legacy_platform() -> None:
    clock = FakeClock()
    with Sandbox(credit=1.0, clock=clock, background=False) as sandbox:
        with Every8dClient(sandbox.base_url, sandbox.uid, "wrong", timeout=2.0) as bad:
            with pytest.raises(CredentialError):
                bad.send_param_sms(recipients=[ParamRecipient("0912345678", "hi")])
        with Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, timeout=2.0) as client:
            # Credit for one of two: the second is UNSEND, like sendSMS.
            result = client.send_param_sms(recipients=[ParamRecipient("0912345678", "a"),
                                                       ParamRecipient("0922333444", "b")])
            assert (result.sent, result.unsent) == (1, 1)
            # What the client never sends still gets EVERY8D's JSON refusal shape.
            garbage = requests.post(sandbox.base_url + "SendParamSMS.ashx", data=b"not json", timeout=2)
            assert garbage.json() == {"Result": False, "Status": "-1", "Msg": "參數錯誤。"}
            mixed = {"UID": sandbox.uid, "PWD": sandbox.pwd, "SB": "", "MSG": "", "RecipientDataList": [
                {"Mobile": "0912345678", "Param": "a", "SendTime": ""},
                {"Mobile": "0922333444", "Param": "b", "SendTime": "2999"}]}
            refused = requests.post(sandbox.base_url + "SendParamSMS.ashx", json=mixed, timeout=2).json()
            assert refused["Result"] is False and refused["Status"] == "-28"
            sandbox.legacy_platform = True
            with pytest.raises(UnsupportedEndpointError):
                client.send_param_sms(recipients=[ParamRecipient("0912345678", "a")])
            with pytest.raises(UnsupportedEndpointError):
                client.get_replies(result.batch_id)


def test_sandbox_template_mode_fills_fields() -> None:
    clock = FakeClock()
    with Sandbox(credit=10.0, clock=clock, background=False) as sandbox:
        with Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, timeout=2.0) as client:
            result = client.send_param_sms(recipients=[ParamRecipient("0912345678", "Amy|2021/09/30|||")],
                                           template="Hi %field1%, due %field2%%field3%")
            assert sandbox.batches[result.batch_id].texts == ["Hi Amy, due 2021/09/30"]
