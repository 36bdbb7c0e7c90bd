"""Thread answers that cannot slip (BOT_THREAD_ANSWERS, default `confirm`): a message typed in a batch's
thread after a reply asks its author, privately, whether to text it; only Send sends. `direct` keeps the
old behaviour, `off` never texts from the thread. Files are explained; links keep their address."""

from __future__ import annotations

from bot.config import Config
from slackstandin import payloads
from tests.harness import SlackUser, all_text, button, wait_until
from tests.test_conversations import (
    FIRST,
    batch_sent_and_replied,
    deliver,
    event_body,
    sends,
    type_in_thread,
)


def question(product, user: str) -> dict:
    """The private 'send this as SMS?' question the author got."""
    found = wait_until(lambda: [e for e in product.standin.ephemerals(user) if button(e, "thread_answer_send")])
    assert found, "no question was asked"
    return found[-1]


def press(product, user: str, action_id: str, asked: dict) -> str:
    SlackUser(product, user, channel="C_APPROVALS").click(action_id, button(asked, action_id)["value"], message=asked)
    product.settle()
    return "\n".join(all_text(e) for e in product.standin.ephemerals(user))


def test_the_default_is_to_ask_first():
    assert Config.from_env({}, dotenv=None).thread_answers == "confirm"


def test_a_typed_message_is_only_sent_once_its_author_presses_send(make_product):
    product = make_product(thread_answers="confirm")
    card = batch_sent_and_replied(product, (FIRST, "請問地址？"))
    type_in_thread(product, "U_OTHER", "台北市信義路五段 7 號 <https://maps.example.tw/x|地圖>", card["ts"])
    asked = question(product, "U_OTHER")
    assert "0912-***-678" in all_text(asked) and "以簡訊發送" in all_text(asked)
    product.settle()
    assert len(sends(product)) == 1  # nothing yet: only the batch itself went out
    told = press(product, "U_OTHER", "thread_answer_send", asked)
    assert wait_until(lambda: len(sends(product)) == 2)
    assert sends(product)[-1].params["MSG"] == "台北市信義路五段 7 號 地圖 https://maps.example.tw/x"
    assert sends(product)[-1].params["DEST"] == FIRST
    assert "已送出" in told
    press(product, "U_OTHER", "thread_answer_send", asked)  # a second press sends nothing more
    assert len(sends(product)) == 2


def test_keep_as_note_sends_nothing_and_others_cannot_press_the_authors_question(make_product):
    product = make_product(thread_answers="confirm")
    card = batch_sent_and_replied(product, (FIRST, "這是誰？"))
    type_in_thread(product, "U_OTHER", "這是上週來店的客人嗎？", card["ts"])
    asked = question(product, "U_OTHER")
    press(product, "U_REQUESTER", "thread_answer_send", asked)  # not theirs
    assert "已保留為討論串中的備註" in press(product, "U_OTHER", "thread_answer_note", asked)
    press(product, "U_OTHER", "thread_answer_send", asked)  # the note choice used the draft up
    product.settle()
    assert len(sends(product)) == 1 and product.store.requests.get(2) is None


def test_off_never_texts_from_the_thread(make_product):
    product = make_product(thread_answers="off")
    card = batch_sent_and_replied(product, (FIRST, "好"))
    type_in_thread(product, "U_OTHER", "收到", card["ts"])
    product.settle()
    assert len(sends(product)) == 1 and product.standin.ephemerals("U_OTHER") == []


def test_direct_texts_at_once_as_before(make_product):
    direct = make_product(thread_answers="direct")
    card = batch_sent_and_replied(direct, (FIRST, "好"))
    type_in_thread(direct, "U_OTHER", "收到", card["ts"])
    assert wait_until(lambda: len(sends(direct)) == 2)


def test_a_file_in_the_thread_is_explained_not_dropped(make_product):
    product = make_product(thread_answers="confirm")
    card = batch_sent_and_replied(product, (FIRST, "有照片嗎？"))
    message = product.standin.add_message("C_APPROVALS", "", user="U_OTHER", thread_ts=card["ts"])
    deliver(product, event_body("C_APPROVALS", "U_OTHER", "", ts=message["ts"], thread_ts=card["ts"],
                                subtype="file_share", files=[{"id": "F1", "name": "photo.png"}]))
    told = wait_until(lambda: "\n".join(all_text(e) for e in product.standin.ephemerals("U_OTHER")))
    assert "檔案無法以簡訊傳送" in told and "/sms" in told
    product.settle()
    assert len(sends(product)) == 1


def test_the_reply_card_says_what_typing_in_the_thread_does(make_product):
    product = make_product(thread_answers="confirm")
    card = batch_sent_and_replied(product, (FIRST, "好"))
    texts = [all_text(m) for m in product.standin.thread("C_APPROVALS", card["ts"])]
    assert any("會先私下詢問您" in t for t in texts)


__all__ = ["payloads"]
