"""Personalised messages: a CSV audience uploaded in the compose modal (a phone column and any variables),
`{name}` from the address book for many recipients, each text priced on its own and sent as its own
EVERY8D call; a variable some recipient lacks stops the draft with the reason, never a half-filled text."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

import pytest

from services.audiences import CsvImportError
from services.personalise import personalise, read_audience_csv
from slackstandin import payloads as p
from storage import RequestState
from tests.harness import SlackUser, all_text
from tests.test_compose_modal import open_compose, values

TAIPEI = ZoneInfo("Asia/Taipei")
SHORT = "王小明,0912345678,A001\n陳小華,0922333444,B002\n"
CSV = "姓名,手機,訂單\n" + SHORT


def with_audience(state: dict, product, content: bytes, name: str = "名單.csv") -> dict:
    file_id = product.standin.add_file(content, name, "text/csv", "csv")
    return {**state, "audience": p.file_input("value", [product.standin.file_object(file_id)])}


# -- reading the CSV and filling --------------------------------------------------------------------------


def test_a_csv_audience_reads_any_column_as_a_variable_in_utf8_or_big5():
    for encoding in ("utf-8-sig", "cp950"):
        audience = read_audience_csv(CSV.encode(encoding), "名單.csv")
        assert audience.columns == ("name", "訂單")
        assert [(r.phone, r.values) for r in audience.rows] == [
            ("0912345678", {"name": "王小明", "訂單": "A001"}), ("0922333444", {"name": "陳小華", "訂單": "B002"})]


def test_a_csv_without_a_phone_column_or_empty_is_refused_with_words():
    with pytest.raises(CsvImportError, match="phone column"):
        read_audience_csv("姓名,訂單\n王小明,A001\n".encode())
    with pytest.raises(CsvImportError, match="empty"):
        read_audience_csv(b"\n\n")


def test_each_recipient_gets_their_own_values_and_built_ins():
    audience = read_audience_csv(CSV.encode()).values_by_number()
    now = time.time()
    result = personalise("{name} 您好，訂單 {訂單} 已出貨（{date}）", ["+886912345678", "+886922333444"], names={},
                         audience=audience, now=now, tz=TAIPEI)
    today = time.strftime("%Y-%m-%d", time.localtime(now + 8 * 3600 - time.localtime(now).tm_gmtoff))
    assert result.problems == []
    assert result.messages == {"+886912345678": f"王小明 您好，訂單 A001 已出貨（{today}）",
                               "+886922333444": f"陳小華 您好，訂單 B002 已出貨（{today}）"}


def test_the_same_text_for_everyone_is_not_personalised():
    result = personalise("今天 {date} 停水", ["+886912345678", "+886922333444"], names={}, audience=None,
                         now=time.time(), tz=TAIPEI)
    assert result.messages == {} and "{date}" not in result.message


def test_a_missing_value_names_who_lacks_it():
    result = personalise("{name} 您好", ["+886912345678", "+886922333444"], names={"+886912345678": "王小明"},
                         audience=None, now=time.time(), tz=TAIPEI, show=lambda n: n[-3:])
    [problem] = result.problems
    assert problem.field == "message" and "444 沒有 {name} 的值" in problem.zh


# -- through the compose modal ----------------------------------------------------------------------------


def test_a_csv_audience_in_the_modal_prices_each_text_and_sends_one_call_per_text(make_product):
    product = make_product(param_sms=False)  # EVERY8D_PARAM_SMS=false; SendParamSMS: tests/test_param_sms.py
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    assert "audience" in {b.get("block_id") for b in view["blocks"]}
    long_tail = "這" * 60  # 王小明's text stays within 70 characters; 陳小華's longer order id crosses it
    rows = f"姓名,手機,訂單\n王小明,0912345678,A1\n陳小華,0922333444,{'B' * 12}\n"
    state = with_audience(values(recipients="", message=f"{{name}}您好{{訂單}}{long_tail}"), product, rows.encode())
    answer = user.submit(view, state).json()
    assert answer["response_action"] == "push", answer
    shown = all_text(answer["view"])
    assert "個人化訊息" in shown and "2 種不同內容" in shown
    assert "3.0 點" in shown  # 1 point (≤ 70 characters) + 2 points (71-134)
    user.submit(answer["view"], {})
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    assert "個人化訊息" in all_text(card)
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()

    sends = [c.params for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]
    assert sorted((s["DEST"], s["MSG"]) for s in sends) == [
        ("+886912345678", f"王小明您好A1{long_tail}"), ("+886922333444", f"陳小華您好{'B' * 12}{long_tail}")]
    request = product.store.requests.get(1)
    assert request.state is RequestState.SENT and request.cost == 3.0
    names = {d.mobile: d.name for b in product.store.batches.of_request(1) for d in product.store.batches.deliveries(b.batch_id)}
    assert names == {"+886912345678": "王小明", "+886922333444": "陳小華"}  # delivery rows carry the names


def test_a_csv_that_cannot_be_read_is_an_inline_error_and_nothing_is_kept(product):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    state = with_audience(values(recipients="", message="{name} 您好"), product, "姓名\n王小明\n".encode())
    answer = user.submit(view, state).json()
    assert answer["response_action"] == "errors"
    assert "電話" in answer["errors"]["audience"]
    assert product.store.requests.count_by_state() == {}


def test_a_variable_missing_for_some_rows_stops_the_draft_under_message(product):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    rows = "手機,訂單\n0912345678,A1\n0922333444,\n"
    answer = user.submit(view, with_audience(values(recipients="", message="訂單 {訂單} 已出貨"), product,
                                             rows.encode())).json()
    assert answer["response_action"] == "errors"
    assert "0922-***-444 沒有 {訂單} 的值" in answer["errors"]["message"]


def test_a_one_line_send_names_a_template_with_at(make_product):
    """`/sms send <group> @<template>`: the template is the message, `{name}` filled per member."""
    product = make_product(param_sms=False)  # one part per text, as without SendParamSMS
    from tests.test_audiences import add_contacts, answer

    add_contacts(product)
    requester = SlackUser(product, "U_REQUESTER")
    assert "已新增範本" in answer(requester, "templates add 生日 {name} 生日快樂")
    assert "已送出發送申請 #1" in answer(requester, "send VIP客戶 @生日")
    assert sorted(p.message for p in product.store.parts.of_request(1)) == ["王小明 生日快樂", "陳小華 生日快樂"]
    unknown = answer(requester, "send VIP客戶 @沒有這個")
    assert "找不到範本「沒有這個」" in unknown and "`@生日`" in unknown
    assert product.store.requests.get(2) is None


def test_bad_csv_rows_are_skipped_by_row_number_and_the_send_goes_on_with_the_good_ones(make_product):
    product = make_product(param_sms=False)  # one sendSMS per text (SendParamSMS: tests/test_param_sms.py)
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    rows = "姓名,手機,訂單\n王小明,0912345678,A1\n\n陳小華,abc,A2\n林小美,0912,A3\n李大同,0922333444,A4\n"
    answer = user.submit(view, with_audience(values(recipients="", message="{name} 訂單 {訂單} 已出貨"), product,
                                             rows.encode())).json()
    assert answer["response_action"] == "push", answer
    shown = all_text(answer["view"])
    assert "CSV 略過 2 列" in shown and "第 4 列" in shown and "第 5 列" in shown  # as a spreadsheet numbers them
    assert "2 rows skipped" in shown and "row 4" in shown
    assert "2.0 點" in shown  # only the two good rows are priced
    user.submit(answer["view"], {})
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    sends = [c.params for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]
    assert sorted(s["DEST"] for s in sends) == ["+886912345678", "+886922333444"]


def test_a_csv_whose_every_row_is_bad_is_an_error_under_the_upload_naming_the_rows(product):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    answer = user.submit(view, with_audience(values(recipients="", message="您好"), product,
                                             "手機\nabc\n0912\n".encode())).json()
    assert answer["response_action"] == "errors"
    assert "CSV 的 2 列都無法發送" in answer["errors"]["audience"] and "第 2 列" in answer["errors"]["audience"]
    assert product.store.requests.count_by_state() == {}


def test_an_international_row_is_skipped_for_mms_only():
    csv_text = "手機\n0912345678\n+14155552671\n".encode()
    assert read_audience_csv(csv_text).skipped == ()
    [skipped] = read_audience_csv(csv_text, international=False).skipped
    assert skipped.row == 3 and "台灣" in skipped.zh
