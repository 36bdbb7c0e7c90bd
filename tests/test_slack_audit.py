"""Outside audit of what arrives from Slack: each case is a signed HTTP request shaped as Slack sends it
(bolt-python's fixtures and Slack's documentation), checked on what the Slack stand-in recorded and on the store."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from slackstandin import payloads as p
from tests.harness import SlackUser, all_text, button, wait_until
from tests.test_compose_modal import open_compose, values
from tests.test_conversations import FIRST, batch_sent_and_replied, deliver, event_body, sends
from tests.test_quiet_hours import night  # noqa: F401 - a fixture
from tests.test_series import clocked, compose_values, start_series  # noqa: F401,F811 - clocked is a fixture
from tests.test_thread_answers import press, question


def _preview(product, user: SlackUser) -> dict:
    view = open_compose(product, user)
    answer = user.submit(view, values(recipients="0912345678", message="您好")).json()
    assert answer["response_action"] == "push"
    return {**answer["view"], "id": "VPREVIEW1"}


def test_a_preview_submitted_twice_at_once_makes_one_request(product) -> None:
    user = SlackUser(product, "U_REQUESTER")
    preview = _preview(product, user)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: user.submit(preview, {}), range(8)))
    assert all(a.status_code == 200 for a in answers)
    product.settle()
    assert product.store.requests.get(1) is not None
    assert product.store.requests.get(2) is None


def test_a_repeating_preview_submitted_twice_at_once_makes_one_series(clocked) -> None:  # noqa: F811
    product, clock = clocked()
    user = SlackUser(product, "U_REQUESTER")
    assert user.command("").status_code == 200
    [view] = wait_until(lambda: product.standin.open_views(user.user_id))
    first = int(clock.now // 60 * 60 + 3600)
    answer = user.submit(view, compose_values(first)).json()
    assert answer["response_action"] == "push"
    preview = {**answer["view"], "id": "VPREVIEW2"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: user.submit(preview, {}), range(8)))
    assert all(a.status_code == 200 for a in answers)
    product.settle()
    assert product.store.series.get(1) is not None
    assert product.store.series.get(2) is None
    assert len(product.standin.messages("C_APPROVALS")) == 1  # one card to approve


def test_a_repeating_preview_submitted_again_after_it_went_through_shows_its_series(clocked) -> None:  # noqa: F811
    product, clock = clocked()
    user = SlackUser(product, "U_REQUESTER")
    assert user.command("").status_code == 200
    [view] = wait_until(lambda: product.standin.open_views(user.user_id))
    preview = user.submit(view, compose_values(int(clock.now // 60 * 60 + 3600))).json()["view"]
    first = user.submit(preview, {}).json()
    again = user.submit(preview, {}).json()
    assert again["response_action"] == "update" and "過期" not in all_text(again["view"])
    assert all_text(first["view"]) == all_text(again["view"])
    assert "過期" in all_text(SlackUser(product, "U_OTHER").submit(preview, {}).json()["view"])  # not theirs
    product.settle()
    assert product.store.series.get(2) is None


def _scheduled_and_approved(product) -> dict:
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    later = int(time.time()) + 2 * 3600
    preview = user.submit(view, values(send_at=later)).json()["view"]
    user.submit(preview, {})
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    return product.standin.messages("C_APPROVALS")[0]


def test_cancel_pressed_four_times_at_once_refunds_once_and_says_so_once(product) -> None:
    card = _scheduled_and_approved(product)
    user = SlackUser(product, "U_REQUESTER")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: user.click("cancel_scheduled", "1", message=card), range(4)))
    product.settle()
    assert product.store.requests.get(1).state == "cancelled"
    said = [all_text(e) for e in user.ephemerals()]
    # EVERY8D may be asked more than once (each press checks the request before its call); its answer for a
    # batch already cancelled is "nothing waiting", so only one press reports the refund.
    assert sum("已取消預約" in s for s in said) == 1
    assert not any("取消失敗" in s for s in said)


def test_a_mention_typed_where_a_contacts_number_belongs_is_quoted_inert(product) -> None:
    answer = SlackUser(product, "U_APPROVER").command("contacts add 王小明 <@U0EVIL> <!channel>").json()
    text = all_text(answer)
    assert "&lt;@U0EVIL&gt;" in text
    assert "<@U0EVIL>" not in text and "<!channel>" not in text
    assert product.store.contacts.count() == 0


@pytest.mark.parametrize("action_id", ["approve_request", "approve_over_budget", "reject_request", "mark_sent",
                                       "resend_request", "resend_failed", "cancel_scheduled", "answer_reply",
                                       "series_approve", "series_reject", "series_pause", "series_resume",
                                       "series_stop"])
@pytest.mark.parametrize("value", ["9" * 30, "-1", "0", "١"])
def test_a_button_value_no_row_can_have_changes_nothing_and_logs_no_error(product, caplog, action_id: str,
                                                                            value: str) -> None:
    user = SlackUser(product, "U_APPROVER")
    response = user.click(action_id, value, message={"channel": "C_APPROVALS", "ts": "1.000"})
    product.settle()
    assert response.status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not any("Sorry" in all_text(e) for e in user.ephemerals())


def test_the_kind_switch_outside_a_modal_is_acked_and_logs_no_error(product, caplog) -> None:
    user = SlackUser(product, "U_REQUESTER")
    response = user.click("compose_kind", "mms", message={"channel": "C_GENERAL", "ts": "1.000"})
    product.settle()
    assert response.status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not any("Sorry" in all_text(e) for e in user.ephemerals())


def test_a_send_typed_in_a_direct_message_without_an_approval_channel_says_where_instead(make_product) -> None:
    """Without BOT_APPROVAL_CHANNEL a card goes to the channel where `/sms` ran; in a direct message no
    approver can see it (and the bot cannot post in a DM between two people): the request would wait forever
    while its requester was told it waits for approval."""
    product = make_product(approval_channel="", alert_channel="")
    user = SlackUser(product, "U_REQUESTER", channel="D0TWOPEOPLE")
    answer = user.command("send 0912345678 您好").json()
    assert "BOT_APPROVAL_CHANNEL" in all_text(answer) and "#1" not in all_text(answer)
    user.command("")
    [view] = wait_until(lambda: product.standin.open_views("U_REQUESTER"))
    assert "BOT_APPROVAL_CHANNEL" in all_text(view) and view.get("submit") is None
    product.settle()
    assert product.store.requests.get(1) is None


def test_send_as_sms_on_a_direct_message_without_an_approval_channel_says_where_instead(make_product) -> None:
    product = make_product(approval_channel="")
    message = {"user": "U_OTHER", "ts": "1700000000.000100", "text": "明天見"}
    body = p.message_shortcut("send_as_sms", user_id="U_REQUESTER", channel_id="D0TWOPEOPLE", message=message,
                              response_url=product.standin.new_response_url(channel="D0TWOPEOPLE", user="U_REQUESTER"))
    assert SlackUser(product, "U_REQUESTER")._post(body).status_code == 200
    [view] = wait_until(lambda: product.standin.open_views("U_REQUESTER"))
    assert "BOT_APPROVAL_CHANNEL" in all_text(view) and view.get("submit") is None


def test_a_send_typed_in_a_direct_message_goes_to_the_approval_channel_when_there_is_one(product) -> None:
    user = SlackUser(product, "U_REQUESTER", channel="D0TWOPEOPLE")
    assert "#1" in all_text(user.command("send 0912345678 您好").json())
    product.settle()
    assert product.store.requests.get(1).approval_channel == "C_APPROVALS"


def _edited(channel: str, user: str, ts: str, thread_ts: str, old: str, new: str) -> str:
    """Slack's `message_changed` for an edit (bolt-python's fixture shape): the event's own ts, the message
    as it is now under `message` (its original ts, `edited`), and as it was under `previous_message`."""
    return p.event_callback({
        "type": "message", "subtype": "message_changed", "hidden": True, "channel": channel,
        "ts": f"{float(ts) + 30:.6f}", "event_ts": f"{float(ts) + 30:.6f}", "channel_type": "channel",
        "message": {"type": "message", "user": user, "text": new, "ts": ts, "thread_ts": thread_ts,
                    "edited": {"user": user, "ts": f"{float(ts) + 30:.6f}"}},
        "previous_message": {"type": "message", "user": user, "text": old, "ts": ts, "thread_ts": thread_ts},
    })


def _deleted(channel: str, user: str, ts: str, thread_ts: str, old: str) -> str:
    return p.event_callback({
        "type": "message", "subtype": "message_deleted", "hidden": True, "channel": channel,
        "ts": f"{float(ts) + 40:.6f}", "event_ts": f"{float(ts) + 40:.6f}", "deleted_ts": ts,
        "channel_type": "channel",
        "previous_message": {"type": "message", "user": user, "text": old, "ts": ts, "thread_ts": thread_ts},
    })


def _typed(product, user: str, text: str, thread_ts: str) -> str:
    message = product.standin.add_message("C_APPROVALS", text, user=user, thread_ts=thread_ts)
    deliver(product, event_body("C_APPROVALS", user, text, ts=message["ts"], thread_ts=thread_ts))
    return message["ts"]


def test_an_answer_edited_before_its_author_pressed_send_is_asked_again_with_the_new_text(make_product) -> None:
    product = make_product(thread_answers="confirm")
    card = batch_sent_and_replied(product, (FIRST, "請問地址？"))
    ts = _typed(product, "U_OTHER", "信義路五段 7 號", card["ts"])
    first = question(product, "U_OTHER")
    edit = _edited("C_APPROVALS", "U_OTHER", ts, card["ts"], "信義路五段 7 號", "信義路五段 9 號")
    deliver(product, edit)
    deliver(product, edit, retry_num=1)  # Slack's redelivery: not asked a third time
    product.settle()
    assert len([e for e in product.standin.ephemerals("U_OTHER") if "以簡訊發送" in all_text(e)]) == 2
    second = question(product, "U_OTHER")
    assert "9 號" in all_text(second) and second is not first
    press(product, "U_OTHER", "thread_answer_send", first)  # the old question no longer sends the old text
    product.settle()
    assert len(sends(product)) == 1
    press(product, "U_OTHER", "thread_answer_send", second)
    assert wait_until(lambda: len(sends(product)) == 2)
    assert sends(product)[-1].params["MSG"] == "信義路五段 9 號"


def test_an_answer_deleted_before_its_author_pressed_send_is_never_sent(make_product) -> None:
    product = make_product(thread_answers="confirm")
    card = batch_sent_and_replied(product, (FIRST, "請問地址？"))
    ts = _typed(product, "U_OTHER", "打錯了", card["ts"])
    asked = question(product, "U_OTHER")
    deliver(product, _deleted("C_APPROVALS", "U_OTHER", ts, card["ts"], "打錯了"))
    product.settle()
    told = press(product, "U_OTHER", "thread_answer_send", asked)
    product.settle()
    assert len(sends(product)) == 1 and product.store.requests.get(2) is None
    assert "過期" in told


def test_an_answer_edited_or_deleted_after_it_was_sent_tells_its_author_the_sms_already_went(make_product) -> None:
    product = make_product(thread_answers="direct")
    card = batch_sent_and_replied(product, (FIRST, "請問地址？"))
    ts = _typed(product, "U_OTHER", "信義路五段 7 號", card["ts"])
    assert wait_until(lambda: len(sends(product)) == 2)
    product.settle()
    edit = _edited("C_APPROVALS", "U_OTHER", ts, card["ts"], "信義路五段 7 號", "信義路五段 9 號")
    deliver(product, edit)
    deliver(product, edit, retry_num=1)  # Slack's redelivery: said once
    product.settle()
    said = [all_text(e) for e in product.standin.ephemerals("U_OTHER") if "#2" in all_text(e)]
    assert len(said) == 1 and "已" in said[0] and "already" in said[0]
    deliver(product, _deleted("C_APPROVALS", "U_OTHER", ts, card["ts"], "信義路五段 9 號"))
    product.settle()
    assert len([e for e in product.standin.ephemerals("U_OTHER") if "#2" in all_text(e)]) == 2
    assert len(sends(product)) == 2  # nothing sent again, nothing recalled


def test_an_unfurl_or_a_bots_edit_says_nothing(make_product) -> None:
    product = make_product(thread_answers="direct")
    card = batch_sent_and_replied(product, (FIRST, "請問地址？"))
    ts = _typed(product, "U_OTHER", "https://maps.example.tw/x", card["ts"])
    assert wait_until(lambda: len(sends(product)) == 2)
    product.settle()
    before = len(product.standin.ephemerals("U_OTHER"))
    unfurl = json.loads(_edited("C_APPROVALS", "U_OTHER", ts, card["ts"], "https://maps.example.tw/x",
                                "https://maps.example.tw/x"))
    del unfurl["event"]["message"]["edited"]
    unfurl["event"]["message"]["attachments"] = [{"title": "map"}]
    deliver(product, json.dumps(unfurl))
    product.settle()
    assert len(product.standin.ephemerals("U_OTHER")) == before


@pytest.mark.parametrize("metadata", ["", "not json", "[]", '{"request_id": "1"}', '{"request_id": 0}',
                                      '{"request_id": 1' + "0" * 30 + "}", '{"request_id": true}'])
def test_a_reject_window_with_unreadable_metadata_says_so_and_decides_nothing(product, caplog, metadata) -> None:
    SlackUser(product, "U_REQUESTER").command("send 0912345678 您好")
    product.settle()
    view = {"callback_id": "reject_reason", "private_metadata": metadata}
    answer = SlackUser(product, "U_APPROVER").submit(view, {"reason": p.plain_text_input("value", "no")})
    assert answer.status_code == 200
    assert answer.json()["response_action"] == "update" and "無法辨識" in all_text(answer.json()["view"])
    product.settle()
    assert product.store.requests.get(1).state == "pending_approval"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_an_answer_window_naming_a_reply_past_64_bits_says_so_and_logs_no_error(product, caplog) -> None:
    view = {"callback_id": "answer_reply_modal", "private_metadata": '{"reply_id": 1' + "0" * 30 + "}"}
    answer = SlackUser(product, "U_OTHER").submit(view, {"message": p.plain_text_input("value", "好")})
    assert answer.status_code == 200 and answer.json()["response_action"] == "update"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_one_line_send_texts_what_was_typed_not_slacks_escaping(product) -> None:
    """Slack sends a slash command's `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;` (as in all text it sends):
    the phone must get `A&B <限時>`, and every echo in Slack shows it inert."""
    user = SlackUser(product, "U_REQUESTER")
    answer = all_text(user.command("send 0912345678 買一送一 A&B <限時> <!channel>").json())
    assert "&amp;amp;" not in answer and "<!channel>" not in answer
    product.settle()
    assert product.store.requests.get(1).message == "買一送一 A&B <限時> <!channel>"
    [card] = product.standin.messages("C_APPROVALS")
    shown = [b["text"] for b in card["blocks"] if b.get("type") == "section" and "買一送一" in b.get("text", {}).get("text", "")]
    assert [(t["type"], t["text"]) for t in shown] == [("plain_text", "買一送一 A&B <限時> <!channel>")]  # literal, inert
    assert [c.params["MSG"] for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")] == []
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    assert [c.params["MSG"] for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")] == \
        ["買一送一 A&B <限時> <!channel>"]


def test_a_thread_answer_redelivered_by_slack_is_asked_about_once(make_product) -> None:
    product = make_product(thread_answers="confirm")
    card = batch_sent_and_replied(product, (FIRST, "請問地址？"))
    message = product.standin.add_message("C_APPROVALS", "信義路五段 7 號", user="U_OTHER", thread_ts=card["ts"])
    body = event_body("C_APPROVALS", "U_OTHER", "信義路五段 7 號", ts=message["ts"], thread_ts=card["ts"])
    deliver(product, body)
    deliver(product, body, retry_num=1)
    deliver(product, body, retry_num=2)
    product.settle()
    asked = [e for e in product.standin.ephemerals("U_OTHER") if "以簡訊發送" in all_text(e)]
    assert len(asked) == 1


def test_a_send_typed_in_a_group_dm_without_an_approval_channel_says_where_instead(make_product) -> None:
    """A group DM's id looks like a channel's (C… or G…): Slack names it `mpdm-…` in the command."""
    product = make_product(approval_channel="")
    user = SlackUser(product, "U_REQUESTER", channel="G0GROUPDM")
    body = p.slash_command("send 0912345678 您好", user_id="U_REQUESTER", channel_id="G0GROUPDM",
                           channel_name="mpdm-u_requester--u_other-1",
                           response_url=product.standin.new_response_url(channel="G0GROUPDM", user="U_REQUESTER"))
    answer = user._post(body).json()
    assert "BOT_APPROVAL_CHANNEL" in all_text(answer)
    product.settle()
    assert product.store.requests.get(1) is None


@pytest.mark.parametrize("action_id, state", [("series_pause", "paused"), ("series_stop", "stopped")])
def test_pause_or_stop_pressed_four_times_at_once_moves_once_and_says_it_once(clocked, action_id, state) -> None:  # noqa: F811
    product, clock = clocked()
    _, card = start_series(product, clock)
    requester = SlackUser(product, "U_REQUESTER")
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: requester.click(action_id, "1", message=card), range(4)))
    assert all(a.status_code == 200 for a in answers)
    product.settle()
    assert product.store.series.get(1).state == state
    thread = product.standin.thread("C_APPROVALS", card["ts"])
    notes = [m for m in thread if m["ts"] != card["ts"] and ("暫停" in all_text(m) or "停止" in all_text(m))]
    assert len(notes) <= 1, [all_text(m)[:80] for m in notes]
    assert not any("Sorry" in all_text(e) for e in requester.ephemerals())


def test_a_preview_submitted_again_after_it_went_through_shows_its_request_not_expired(product) -> None:
    """Slack shows an error when an answer is slow, and the person presses Submit again: they must see the
    request the first press made, not "expired" (which invites composing it all again: a second request)."""
    user = SlackUser(product, "U_REQUESTER")
    preview = _preview(product, user)
    first = user.submit(preview, {}).json()
    again = user.submit(preview, {}).json()
    assert again["response_action"] == "update"
    assert "#1" in all_text(again["view"]) and "過期" not in all_text(again["view"])
    assert all_text(first["view"]) == all_text(again["view"])
    stranger = SlackUser(product, "U_OTHER").submit(preview, {}).json()  # not theirs: nothing of #1 shown
    assert "#1" not in all_text(stranger["view"])
    product.settle()
    assert product.store.requests.get(2) is None


def test_a_number_slack_formatted_as_a_phone_link_is_a_number(product) -> None:
    """Slack's mobile clients turn a typed phone number into a link (`<tel:0912345678|0912-345-678>`), in a
    command's text as in a message's: it is the number typed, not junk, and never `tel:` in an SMS."""
    user = SlackUser(product, "U_REQUESTER")
    answer = all_text(user.command("send <tel:0912345678|0912-345-678> 請回電 <tel:0223456789|02-2345-6789>").json())
    assert "#1" in answer, answer
    request = product.store.requests.get(1)
    assert request.recipient_count == 1 and request.message == "請回電 02-2345-6789"


def test_a_phone_link_typed_in_a_thread_answer_reaches_the_phone_as_the_number(make_product) -> None:
    product = make_product(thread_answers="direct")
    card = batch_sent_and_replied(product, (FIRST, "電話幾號？"))
    _typed(product, "U_OTHER", "請撥 <tel:0223456789|02-2345-6789>", card["ts"])
    assert wait_until(lambda: len(sends(product)) == 2)
    assert sends(product)[-1].params["MSG"] == "請撥 02-2345-6789"


@pytest.mark.parametrize("event", [
    {"type": "app_home_opened", "tab": "home"},
    {"type": "app_home_opened", "user": 5, "tab": "home"},
    {"type": "function_executed", "function_execution_id": "Fx1", "inputs": [1, 2],
     "function": {"callback_id": "send_sms"}},
    {"type": "function_executed", "function_execution_id": 7, "inputs": {}, "function": {"callback_id": "send_sms"}},
], ids=["home-without-user", "home-user-int", "step-inputs-list", "step-execution-int"])
def test_a_signed_event_missing_what_its_listener_reads_gets_400_and_no_traceback(product, caplog, event) -> None:
    caplog.set_level(logging.DEBUG)
    response = SlackUser(product, "U_REQUESTER")._post(p.event_callback(event), content_type=p.JSON_TYPE)
    product.settle()
    assert response.status_code == 400
    assert not [r for r in caplog.records if (r.exc_info and r.levelno > logging.DEBUG) or r.levelno >= logging.ERROR]
    assert product.store.requests.get(1) is None


def test_a_send_in_a_channel_the_bot_is_not_in_without_an_approval_channel_says_to_invite_it(make_product) -> None:
    """Without BOT_APPROVAL_CHANNEL the card goes where `/sms` ran: a bot not in that channel cannot post it,
    and the request would wait for an approval no one can give while its requester reads "waiting"."""
    product = make_product(approval_channel="", alert_channel="")
    product.standin.add_channel("C_NOBOT", "nobot", members=["U_REQUESTER", "U_APPROVER"], is_member=False)
    user = SlackUser(product, "U_REQUESTER", channel="C_NOBOT")
    user.command("send 0912345678 您好")
    product.settle()
    told = [all_text(e) for e in user.ephemerals()]
    assert any("/invite" in t and "BOT_APPROVAL_CHANNEL" in t for t in told), told
    member = SlackUser(product, "U_REQUESTER", channel="C_GENERAL")
    before = len(member.ephemerals())
    member.command("send 0912345678 您好")
    product.settle()
    assert not any("/invite" in all_text(e) for e in member.ephemerals()[before:])


def test_a_modal_send_in_a_channel_the_bot_is_not_in_tells_the_requester_privately(make_product) -> None:
    product = make_product(approval_channel="", alert_channel="")
    product.standin.add_channel("C_NOBOT", "nobot", members=["U_REQUESTER", "U_APPROVER"], is_member=False)
    user = SlackUser(product, "U_REQUESTER", channel="C_NOBOT")
    preview = _preview(product, user)
    assert "#1" in all_text(user.submit(preview, {}).json()["view"])
    product.settle()
    told = [all_text(m) for m in product.standin.messages("DU_REQUESTER")]
    assert any("/invite" in t and "#1" in t for t in told), told


@pytest.mark.parametrize("second", ["quiet_hours_schedule", "quiet_hours_override"])
def test_a_quiet_hours_button_pressed_again_after_it_went_through_names_the_request(night, second) -> None:  # noqa: F811
    """A double click whose second press lands after the first was done must not replace "#1 requested" with
    "expired, type /sms send again" (which invites a second request)."""
    product = night()
    requester = SlackUser(product, "U_REQUESTER")
    question = requester.command("send 0912345678 明早開會").json()
    value = button(question, "quiet_hours_schedule")["value"]
    requester.click("quiet_hours_schedule", value)
    assert wait_until(lambda: any("#1" in all_text(r) for r in product.standin.responses))
    requester.click(second, value)
    product.settle()
    last = all_text(product.standin.responses[-1])
    assert "#1" in last and "過期" not in last
    assert product.store.requests.get(2) is None
    SlackUser(product, "U_OTHER").click(second, value)  # someone else: nothing of #1 is shown
    product.settle()
    assert "#1" not in all_text(product.standin.responses[-1])


def test_send_as_sms_pressed_again_after_it_went_through_names_the_request(make_product) -> None:
    """The second press of a double click lands after the first sent the answer: it must not replace "Sent"
    with "this choice expired", which invites typing the answer again (a second SMS)."""
    product = make_product(thread_answers="confirm")
    card = batch_sent_and_replied(product, (FIRST, "請問地址？"))
    _typed(product, "U_OTHER", "信義路五段 7 號", card["ts"])
    asked = question(product, "U_OTHER")
    press(product, "U_OTHER", "thread_answer_send", asked)
    assert wait_until(lambda: len(sends(product)) == 2)
    press(product, "U_OTHER", "thread_answer_send", asked)
    last = all_text(product.standin.responses[-1])
    assert "#2" in last and "過期" not in last
    press(product, "U_REQUESTER", "thread_answer_send", asked)  # not theirs: nothing of #2 is shown
    assert "#2" not in all_text(product.standin.responses[-1])
    assert len(sends(product)) == 2
