"""Opt-out, driven as Slack and EVERY8D drive it: a recipient replies STOP (or 退訂), the number is listed and
the thread says so once; every later send leaves it out (in the preview, on the card, and again at send
time for a STOP that arrived while the request waited), and `/sms optout` lists and manages the list."""

from __future__ import annotations

import json

import pytest

from services.optout import is_opt_out
from slackstandin import payloads as p
from tests.harness import Product, SlackUser, all_text, wait_until

FIRST = "+886912345678"
SECOND = "+886922333444"


def sends(product: Product) -> list:
    return [c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]


def thread(product: Product, request_id: int) -> list[dict]:
    return product.standin.thread("C_APPROVALS", product.store.requests.get(request_id).approval_ts)


def card_of(product: Product, request_id: int) -> dict:
    ts = product.store.requests.get(request_id).approval_ts
    return next(m for m in product.standin.messages("C_APPROVALS") if m["ts"] == ts)


def request_and_approve(product: Product, text: str, request_id: int) -> None:
    SlackUser(product, "U_REQUESTER").command(text)
    product.settle()
    SlackUser(product, "U_APPROVER").click("approve_request", str(request_id), message=card_of(product, request_id))
    assert wait_until(lambda: product.store.requests.get(request_id).state in ("sent", "failed"))
    product.settle()


def reply(product: Product, request_id: int, mobile: str, text: str, replies: int) -> None:
    product.sandbox.simulate_reply(product.store.requests.get(request_id).batch_id, mobile, text)
    assert wait_until(lambda: product.store.replies.count() == replies), "the reply's callback"
    product.settle()


# -- what counts as an opt-out -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "keyword"), [
    ("退訂", "退訂"), ("退 訂", "退訂"), (" 取消訂閱\n", "取消訂閱"), ("STOP", "STOP"), (" stop ", "STOP"),
    ("Stop", "STOP"), ("ＳＴＯＰ", "STOP"), ("unsubscribe", "UNSUBSCRIBE"), ("Un Subscribe", "UNSUBSCRIBE"),
])
def test_the_keywords_count_in_any_case_and_with_spaces(text, keyword):
    assert is_opt_out(text) == keyword


@pytest.mark.parametrize("text", ["please don't stop the reminders", "STOP!", "不要退訂", "好", "", "stopp"])
def test_a_sentence_containing_a_keyword_is_not_an_opt_out(text):
    assert is_opt_out(text) is None


# -- a STOP reply ----------------------------------------------------------------------------------------------


def test_a_stop_reply_lists_the_number_once_and_the_next_send_skips_it(product):
    request_and_approve(product, "send 0912345678,0922333444 明天開會", 1)
    reply(product, 1, FIRST, " stop ", replies=1)

    assert product.store.optouts.among([FIRST, SECOND]) == {FIRST}
    notes = [m for m in thread(product, 1) if "加入退訂名單" in all_text(m)]
    assert len(notes) == 1 and "0912-***-678" in all_text(notes[0]) and "0912345678" not in all_text(notes[0])
    reply(product, 1, FIRST, "STOP", replies=2)  # said twice: still one note
    assert len([m for m in thread(product, 1) if "加入退訂名單" in all_text(m)]) == 1
    reply(product, 1, SECOND, "收到，謝謝", replies=3)  # an ordinary reply lists nobody
    assert product.store.optouts.count() == 1

    answer = SlackUser(product, "U_REQUESTER").command("send 0912345678,0922333444 改到週五").json()
    assert "已退訂略過 1 位" in all_text(answer) and "1 位收件人" in all_text(answer)
    product.settle()
    card = card_of(product, 2)
    assert "已退訂略過 1 位" in all_text(card) and "1.0 點" in all_text(card)  # priced for the one left
    SlackUser(product, "U_APPROVER").click("approve_request", "2", message=card)
    assert wait_until(lambda: product.store.requests.get(2).state == "sent")
    product.settle()
    assert sends(product)[-1].params["DEST"] == SECOND
    assert any("已送出 1 則" in all_text(m) and "已退訂略過 1 位" in all_text(m) for m in thread(product, 2))
    assert product.store.requests.get(2).optout_skipped == 1


def test_a_stop_that_arrives_while_the_request_waits_is_honoured_at_send_time(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678,0922333444 通知")
    product.settle()
    assert "已退訂" not in all_text(card_of(product, 1))
    SlackUser(product, "U_APPROVER2").command("optout add 0912345678")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card_of(product, 1))
    assert wait_until(lambda: product.store.requests.get(1).state == "sent")
    product.settle()

    [call] = sends(product)
    assert call.params["DEST"] == SECOND
    request = product.store.requests.get(1)
    assert request.optout_skipped == 1 and request.sent_count == 1
    assert any("已退訂略過 1 位" in all_text(m) for m in thread(product, 1))


def test_when_everyone_opted_out_before_approval_nothing_is_sent_and_the_thread_says_why(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678 通知")
    product.settle()
    SlackUser(product, "U_APPROVER2").command("optout add 0912345678")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card_of(product, 1))
    assert wait_until(lambda: product.store.requests.get(1).state == "failed")
    product.settle()
    assert sends(product) == []
    assert any("都已退訂" in all_text(m) for m in thread(product, 1))
    assert "都已退訂" in all_text(card_of(product, 1))


def test_a_send_to_only_opted_out_numbers_is_refused_before_any_request(product):
    SlackUser(product, "U_APPROVER").command("optout add 0912-345-678")
    answer = SlackUser(product, "U_REQUESTER").command("send 0912345678 通知").json()
    assert "都已退訂" in all_text(answer)
    assert product.store.requests.get(1) is None


def test_the_compose_preview_says_how_many_opted_out_and_prices_the_rest(product):
    SlackUser(product, "U_APPROVER").command("optout add 0912345678")
    user = SlackUser(product, "U_REQUESTER")
    user.command("")
    [view] = wait_until(lambda: product.standin.open_views(user.user_id))
    values = {
        "kind": p.radio_buttons("compose_kind", "sms"),
        "recipients": p.plain_text_input("value", "0912345678, 0922333444"),
        "message": p.plain_text_input("value", "您好"),
    }
    preview = user.submit(view, values).json()["view"]
    assert "已退訂略過 1 位" in all_text(preview) and "1.0 點" in all_text(preview)


# -- /sms optout -----------------------------------------------------------------------------------------------


def test_the_list_shows_newest_first_masked_with_when_and_why(product):
    request_and_approve(product, "send 0912345678,0922333444 明天開會", 1)
    reply(product, 1, FIRST, "退訂", replies=1)
    SlackUser(product, "U_APPROVER").command("optout add 0955666777")

    listing = all_text(SlackUser(product, "U_REQUESTER").command("optout").json())
    assert "2 個號碼" in listing
    assert "0955-***-777" in listing and "0912-***-678" in listing and "0912345678" not in listing
    assert listing.index("0955-***-777") < listing.index("0912-***-678")  # newest first
    assert "回覆「退訂」" in listing and "U_APPROVER" in listing and "(UTC+8)" in listing


def test_only_approvers_change_the_list_and_each_change_is_audited(product):
    refused = SlackUser(product, "U_REQUESTER").command("optout add 0912345678").json()
    assert "只有核准者" in all_text(refused) and product.store.optouts.count() == 0

    approver = SlackUser(product, "U_APPROVER")
    assert "加入退訂名單" in all_text(approver.command("optout add 0912345678").json())
    assert "已在退訂名單中" in all_text(approver.command("optout add +886912345678").json())
    assert "不是可接收簡訊" in all_text(approver.command("optout add 02-2345-6789").json())
    assert "移出退訂名單" in all_text(approver.command("optout remove 0912345678").json())
    assert "不在退訂名單中" in all_text(approver.command("optout remove 0912345678").json())
    assert product.store.optouts.count() == 0
    assert [(a["actor"], json.loads(a["detail_json"])["number"]) for a in product.store.audit.actions("optout_added")] \
        == [("U_APPROVER", FIRST)]
    assert [a["actor"] for a in product.store.audit.actions("optout_removed")] == ["U_APPROVER"]
    assert "退訂名單是空的" in all_text(approver.command("optout").json())


def test_without_masking_the_list_shows_whole_numbers(make_product):
    product = make_product(mask_numbers=False)
    SlackUser(product, "U_APPROVER").command("optout add 0912345678")
    assert "0912-345-678" in all_text(SlackUser(product, "U_APPROVER").command("optout").json())


def test_an_answer_to_a_number_that_opted_out_is_refused_up_front(product) -> None:
    """Typing in the thread after the recipient replied STOP: refused privately, nothing is sent."""
    from slackstandin import payloads as p
    from tests.harness import SlackUser, all_text, wait_until

    SlackUser(product, "U_REQUESTER").command("send 0912345678 週年慶")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    batch_id = wait_until(lambda: product.store.requests.get(1).batch_id)
    product.sandbox.simulate_reply(batch_id, "+886912345678", "STOP")
    wait_until(lambda: (product.poll(), product.store.optouts.among(["+886912345678"]))[1])
    sends_before = len([c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")])
    event = p.message_event("C_APPROVALS", "U_REQUESTER", "還在嗎？", ts="1800000000.000900", thread_ts=card["ts"])
    SlackUser(product, "U_REQUESTER")._post(p.event_callback(event), content_type=p.JSON_TYPE)
    product.settle()
    assert wait_until(lambda: any("退訂" in all_text(e) for e in product.standin.ephemerals("U_REQUESTER")))
    assert len([c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]) == sends_before


def test_the_opt_out_service_lists_changes_and_audits_at_its_clock(tmp_path):
    """services/optout.py `OptOutService`: what `/sms optout` reads and changes, typed."""
    from services.optout import OptOutService
    from storage import Store

    store = Store(tmp_path / "bot.db")
    try:
        now = [1_800_000_000.0]
        service = OptOutService(store, lambda: now[0])
        assert service.listing(10).total == 0 and service.listing(10).entries == []
        assert service.add(actor="U_A", e164=FIRST) is True
        now[0] += 60
        assert service.add(actor="U_A", e164="+886922333444") is True
        assert service.add(actor="U_A", e164=FIRST) is False  # already there: no second record
        listed = service.listing(1)
        assert listed.total == 2 and [(e.e164, e.at, e.source) for e in listed.entries] == \
            [("+886922333444", now[0], "admin")]
        assert service.remove(actor="U_B", e164=FIRST) is True and service.remove(actor="U_B", e164=FIRST) is False
        assert [a["at"] for a in store.audit.actions("optout_added")] == [1_800_000_000.0, now[0]]
        assert [(a["actor"], a["at"]) for a in store.audit.actions("optout_removed")] == [("U_B", now[0])]
    finally:
        store.close()
