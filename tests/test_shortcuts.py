"""Shortcuts: "Send as SMS" on a message opens the compose window with that message's text (Slack
formatting made phone-readable); "Compose SMS" opens it from anywhere."""

from __future__ import annotations

from slackstandin import payloads as p
from tests.harness import SlackUser, all_text, wait_until
from tests.test_compose_modal import values


def test_send_as_sms_opens_the_compose_window_with_the_messages_text(product):
    user = SlackUser(product, "U_REQUESTER")
    message = {"user": "U_OTHER", "ts": "1700000000.000100",
               "text": "週年慶 <https://shop.example.com.tw/s?a=1&amp;b=2|全館五折>，<@U_OTHER> 說 &lt;限時&gt;"}
    body = p.message_shortcut("send_as_sms", user_id="U_REQUESTER", channel_id="C_GENERAL", message=message,
                              response_url=product.standin.new_response_url(channel="C_GENERAL", user="U_REQUESTER"))
    assert user._post(body).status_code == 200
    [view] = wait_until(lambda: product.standin.open_views("U_REQUESTER"))
    assert view["callback_id"] == "sms_compose"
    field = next(b for b in view["blocks"] if b.get("block_id") == "message")
    assert field["element"]["initial_value"] == "週年慶 全館五折 https://shop.example.com.tw/s?a=1&b=2， 說 <限時>"
    answer = user.submit(view, values(message=field["element"]["initial_value"])).json()
    assert answer["response_action"] == "push"  # the usual preview, then the usual approval
    user.submit(answer["view"], {})
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    assert "全館五折 https://shop.example.com.tw" in all_text(card)


def test_compose_sms_from_anywhere_opens_the_window_for_the_approval_channel(product):
    assert SlackUser(product, "U_REQUESTER")._post(p.global_shortcut("compose_sms", user_id="U_REQUESTER")).status_code == 200
    [view] = wait_until(lambda: product.standin.open_views("U_REQUESTER"))
    assert view["callback_id"] == "sms_compose" and "C_APPROVALS" in view["private_metadata"]


def test_compose_from_anywhere_without_an_approval_channel_says_what_to_do(make_product):
    product = make_product(approval_channel="")
    SlackUser(product, "U_REQUESTER")._post(p.global_shortcut("compose_sms", user_id="U_REQUESTER"))
    [view] = wait_until(lambda: product.standin.open_views("U_REQUESTER"))
    assert "BOT_APPROVAL_CHANNEL" in all_text(view) and view.get("submit") is None
