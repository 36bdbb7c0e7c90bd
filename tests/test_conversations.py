"""Two-way conversations, driven as Slack drives them: a recipient replies to a batch, someone types in the
batch's thread (an Events API `message`) or presses the reply's Answer button, and that one number gets an
SMS back, through the same checks, approval policy and exactly-once send as any request, reported in the
same thread."""

from __future__ import annotations

import time

import requests

from slackstandin import payloads
from slackstandin.signing import post_signed
from tests.harness import SIGNING_SECRET, Product, SlackUser, all_text, button, wait_until

FIRST = "+886912345678"
SECOND = "+886922333444"


# -- helpers -----------------------------------------------------------------------------------------------


def sends(product: Product) -> list:
    return [c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]


def batch_sent_and_replied(product: Product, *replies: tuple[str, str]) -> dict:
    """`/sms send` to two numbers, approved and sent; then each (number, text) replies by SMS. Returns the
    card (the batch thread's parent)."""
    SlackUser(product, "U_REQUESTER").command("send 0912345678,0922333444 明天上午十點開會，請回覆")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    assert wait_until(lambda: product.store.requests.get(1).state == "sent")
    batch_id = product.store.requests.get(1).batch_id
    for n, (mobile, text) in enumerate(replies, start=1):
        product.sandbox.simulate_reply(batch_id, mobile, text)
        assert wait_until(lambda n=n: product.store.replies.count() == n), "the reply's callback"
        product.settle()  # posted in order, so "the latest reply" is the last one shown
    return card


def event_body(channel: str, user: str, text: str, *, ts: str, thread_ts: str | None, **extra) -> str:
    return payloads.event_callback({**payloads.message_event(channel, user, text, ts=ts, thread_ts=thread_ts),
                                    **extra})


def deliver(product: Product, body: str, retry_num: int | None = None) -> requests.Response:
    """Slack delivering one event (again, with `retry_num`); Bolt acks it at once."""
    response = post_signed(product.events_url, body, SIGNING_SECRET, content_type=payloads.JSON_TYPE,
                           retry_num=retry_num)
    assert response.status_code == 200
    return response


def type_in_thread(product: Product, user: str, text: str, thread_ts: str, channel: str = "C_APPROVALS") -> str:
    """A person types `text` in a thread; returns the event body (to redeliver it)."""
    message = product.standin.add_message(channel, text, user=user, thread_ts=thread_ts)
    body = event_body(channel, user, text, ts=message["ts"], thread_ts=thread_ts)
    deliver(product, body)
    return body


def answered(product: Product) -> None:
    """Wait for the answer's send (it runs in the background after Slack's ack), then post everything."""
    assert wait_until(lambda: len(sends(product)) >= 2), "the answer was not sent"
    product.settle()


def thread_of(product: Product, card: dict) -> list[dict]:
    return product.standin.thread("C_APPROVALS", card["ts"])


# -- typing in the thread ----------------------------------------------------------------------------------


def test_a_message_typed_in_the_thread_answers_the_latest_reply_and_is_reported_there(product):
    card = batch_sent_and_replied(product, (FIRST, "好的"), (SECOND, "請問在哪裡開會？"))
    posted = [m for m in thread_of(product, card) if "請問在哪裡開會" in all_text(m)]
    assert posted and button(posted[0], "answer_reply") is not None
    assert "在此討論串輸入訊息" in all_text(posted[0])  # the thread says how to answer

    type_in_thread(product, "U_OTHER", "在三樓會議室 & 請準時", card["ts"])
    answered(product)

    [first, answer] = sends(product)
    assert answer.params["DEST"] == SECOND  # only the sender of the latest reply
    assert answer.params["MSG"] == "在三樓會議室 & 請準時"  # Slack's &amp; comes back as typed
    request = product.store.requests.get(2)
    assert request.state == "sent" and request.recipient_count == 1
    assert request.requester == "U_OTHER" and request.reply_to == 2
    assert [a["actor"] for a in product.store.audit.for_request(2) if a["action"] == "approved"] == ["answer-policy"]

    product.poll()  # the answer's delivery summary
    assert len(product.standin.messages("C_APPROVALS")) == 1  # no new top-level card: all in the thread
    texts = [all_text(m) for m in thread_of(product, card)]
    [answer_card] = [t for t in texts if "#2" in t and "一對一回覆免核准" in t]
    assert "0922-***-444" in answer_card and "0922333444" not in answer_card
    assert any(request.batch_id in t and "已送出 1 則" in t for t in texts)
    assert any("發送狀態" in t and request.batch_id in t for t in texts)


def test_a_reply_to_an_answer_shows_in_the_same_thread_and_is_the_next_one_answered(product):
    card = batch_sent_and_replied(product, (FIRST, "幾點？"), (SECOND, "好"))
    [first_reply] = [m for m in thread_of(product, card) if "幾點" in all_text(m)]
    user = SlackUser(product, "U_OTHER")
    user.click("answer_reply", button(first_reply, "answer_reply")["value"], message=first_reply)
    [form] = wait_until(lambda: product.standin.open_views("U_OTHER"))
    user.submit(form, {"message": payloads.plain_text_input("value", "十點")})
    answered(product)
    answer = product.store.requests.get(2)
    assert sends(product)[1].params["DEST"] == FIRST

    product.sandbox.simulate_reply(answer.batch_id, FIRST, "收到，謝謝")  # FIRST replies to the answer
    assert wait_until(lambda: product.store.replies.count() == 3)
    product.settle()
    assert any("收到，謝謝" in all_text(m) for m in thread_of(product, card))  # in the batch thread
    type_in_thread(product, "U_OTHER", "不客氣", card["ts"])
    assert wait_until(lambda: len(sends(product)) == 3)
    assert sends(product)[2].params["DEST"] == FIRST and sends(product)[2].params["MSG"] == "不客氣"


def test_with_answers_needing_approval_the_answer_waits_for_an_approver_in_the_thread(make_product):
    product = make_product(answers_need_approval=True)
    card = batch_sent_and_replied(product, (FIRST, "收到，但我可能會遲到"))

    type_in_thread(product, "U_REQUESTER", "沒關係，請盡量準時", card["ts"])
    product.settle()
    assert len(sends(product)) == 1 and product.store.requests.get(2).state == "pending_approval"
    [pending] = [m for m in thread_of(product, card) if button(m, "approve_request")]
    assert button(pending, "approve_request")["value"] == "2"

    SlackUser(product, "U_APPROVER").click("approve_request", "2", message=pending)
    answered(product)
    [_, answer] = sends(product)
    assert answer.params["DEST"] == FIRST and answer.params["MSG"] == "沒關係，請盡量準時"
    [decided] = [m for m in thread_of(product, card) if m["ts"] == pending["ts"]]
    assert button(decided, "approve_request") is None and "U_APPROVER" in all_text(decided)
    assert [a["actor"] for a in product.store.audit.for_request(2) if a["action"] == "approved"] == ["U_APPROVER"]


def test_slack_redelivering_the_same_message_event_gives_one_answer(product):
    card = batch_sent_and_replied(product, (FIRST, "好"))
    body = type_in_thread(product, "U_OTHER", "謝謝回覆", card["ts"])
    deliver(product, body, retry_num=1)
    deliver(product, body, retry_num=2)
    answered(product)
    time.sleep(0.2)  # a second answer, if any, would be sent by now
    product.settle()
    assert len(sends(product)) == 2
    assert product.store.requests.get(3) is None


def test_a_message_in_a_request_thread_with_no_reply_yet_sends_nothing(product):
    card = batch_sent_and_replied(product)
    user = SlackUser(product, "U_APPROVER")
    type_in_thread(product, user.user_id, "看起來沒問題", card["ts"])
    product.settle()
    assert len(sends(product)) == 1 and product.store.requests.get(2) is None
    assert user.ephemerals() == []  # people discuss in approval threads: no noise


def test_messages_that_are_not_a_person_typing_in_a_request_thread_are_ignored(product):
    card = batch_sent_and_replied(product, (FIRST, "好"))
    top = product.standin.add_message("C_APPROVALS", "大家好", user="U_OTHER")
    other = product.standin.add_message("C_GENERAL", "別的討論", user="U_OTHER")
    deliver(product, event_body("C_APPROVALS", "U_OTHER", "大家好", ts=top["ts"], thread_ts=None))
    deliver(product, event_body("C_GENERAL", "U_OTHER", "不是回覆", ts=f"{time.time():.6f}",
                                thread_ts=other["ts"]))
    in_thread = dict(ts=f"{time.time():.6f}", thread_ts=card["ts"])
    deliver(product, event_body("C_APPROVALS", "U_OTHER", "編輯", subtype="message_changed", **in_thread))
    deliver(product, event_body("C_APPROVALS", "U_BOT2", "機器人", bot_id="B_OTHER", subtype="bot_message",
                                **in_thread))
    deliver(product, event_body("C_APPROVALS", payloads.BOT_USER_ID, "我自己", **in_thread))
    product.settle()
    assert len(sends(product)) == 1 and product.store.requests.get(2) is None


def test_an_empty_answer_is_refused_privately_and_nothing_is_sent(product):
    card = batch_sent_and_replied(product, (FIRST, "好"))
    user = SlackUser(product, "U_OTHER")
    type_in_thread(product, user.user_id, "   ", card["ts"])
    refusal = wait_until(user.ephemerals)
    assert refusal and "沒有發送這則回覆" in all_text(refusal[0]) and "請輸入簡訊內容" in all_text(refusal[0])
    assert refusal[0]["channel"] == "C_APPROVALS" and refusal[0]["thread_ts"] == card["ts"]
    product.settle()
    assert len(sends(product)) == 1 and product.store.requests.get(2) is None


# -- the Answer button -------------------------------------------------------------------------------------


def test_the_answer_button_in_the_replies_channel_answers_that_reply_in_the_batch_thread(product):
    card = batch_sent_and_replied(product, (FIRST, "我要改時間"), (SECOND, "好"))
    [older] = [m for m in product.standin.messages("C_REPLIES") if "我要改時間" in all_text(m)]
    answer = button(older, "answer_reply")
    user = SlackUser(product, "U_OTHER")

    user.click("answer_reply", answer["value"], message=older)
    [form] = wait_until(lambda: product.standin.open_views("U_OTHER"))
    assert "0912-***-678" in all_text(form) and "0912345678" not in all_text(form)
    assert "我要改時間" in all_text(form)

    empty = user.submit(form, {"message": payloads.plain_text_input("value", None)})
    assert empty.json()["response_action"] == "errors" and "請輸入簡訊內容" in empty.json()["errors"]["message"]
    assert product.store.requests.get(2) is None

    done = user.submit(form, {"message": payloads.plain_text_input("value", "可以，改到週五")})
    assert done.json()["response_action"] == "update" and "#2" in all_text(done.json()["view"])
    answered(product)
    [_, sent] = sends(product)
    assert sent.params["DEST"] == FIRST and sent.params["MSG"] == "可以，改到週五"  # that reply, not the latest
    request = product.store.requests.get(2)
    assert (request.thread_channel, request.thread_ts, request.reply_to) == ("C_APPROVALS", card["ts"], 1)
    assert any("#2" in all_text(m) for m in thread_of(product, card))
    assert not any("#2" in all_text(m) for m in product.standin.messages("C_REPLIES"))
