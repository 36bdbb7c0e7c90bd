"""Answers from threads are capped by cost (issue 12): anyone in a channel can answer a reply, so an answer
skips approval only up to BOT_ANSWER_MAX_POINTS (default 5 points, one SMS). A dearer one becomes a normal
request waiting on the usual approval card in the thread, and its author is told why; whichever way it was
made (typed in the thread or the Answer button's form)."""

from __future__ import annotations

import pytest

from slackstandin import payloads
from storage import RequestState
from tests.harness import Product, SlackUser, all_text, button, wait_until
from tests.test_conversations import sends, thread_of, type_in_thread

TAIWAN = "+886912345678"
ABROAD = "+12025551800"


def replied(product: Product, number: str, text: str = "請問幾點？") -> dict:
    """A one-number batch, approved and sent, then `number` replies; returns the card (the thread)."""
    SlackUser(product, "U_REQUESTER").command(f"send {number} 明天上午十點開會，請回覆")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    assert wait_until(lambda: product.store.requests.get(1).state == "sent")
    product.sandbox.simulate_reply(product.store.requests.get(1).batch_id, number, text)
    assert wait_until(lambda: product.store.replies.count() == 1), "the reply's callback"
    product.settle()
    return card


def waits_for_an_approver(product: Product, card: dict, request_id: int = 2) -> dict:
    """The answer is a request pending approval, nothing was sent for it, and its card in the thread has
    the usual Approve button; returns that card."""
    request = product.store.requests.get(request_id)
    assert request is not None and request.state is RequestState.PENDING_APPROVAL
    assert len(sends(product)) == 1
    [answer_card] = [m for m in thread_of(product, card) if button(m, "approve_request")]
    assert f"#{request_id}" in all_text(answer_card)
    return answer_card


def test_a_typed_answer_over_one_sms_waits_for_an_approver_and_its_author_is_told(product) -> None:
    card = replied(product, TAIWAN)
    type_in_thread(product, "U_OTHER", "好" * 400, card["ts"])  # 400 characters: 6 points in Taiwan
    product.settle()
    answer_card = waits_for_an_approver(product, card)
    told = " ".join(all_text(m) for m in SlackUser(product, "U_OTHER").ephemerals())
    assert "這則回覆需 6.0 點，超過免核准上限 5.0 點" in told and "#2" in told
    assert "answer-policy" not in [a["actor"] for a in product.store.audit.for_request(2)]

    SlackUser(product, "U_OTHER").click("approve_request", "2", message=answer_card)  # not an approver
    product.settle()
    assert product.store.requests.get(2).state is RequestState.PENDING_APPROVAL
    SlackUser(product, "U_APPROVER").click("approve_request", "2", message=answer_card)
    assert wait_until(lambda: len(sends(product)) == 2)
    assert sends(product)[1].params["DEST"] == TAIWAN


def test_a_10000_character_answer_abroad_from_the_answer_button_waits(make_product) -> None:
    """The observed case: 10,000 characters to an international number cost 429 points, sent at once."""
    product = make_product(sandbox_credit=5000.0)
    card = replied(product, ABROAD)
    [reply] = [m for m in thread_of(product, card) if button(m, "answer_reply")]
    user = SlackUser(product, "U_OTHER")
    user.click("answer_reply", button(reply, "answer_reply")["value"], message=reply)
    [form] = wait_until(lambda: product.standin.open_views("U_OTHER"))
    after = user.submit(form, {"message": payloads.plain_text_input("value", "a" * 10_000)}).json()
    assert after["response_action"] == "update"
    assert "這則回覆需 429.0 點，超過免核准上限 5.0 點" in all_text(after["view"])
    product.settle()
    waits_for_an_approver(product, card)
    assert product.store.requests.get(2).points == 429.0


@pytest.mark.parametrize(("number", "length"), [(TAIWAN, 333), (ABROAD, 70)], ids=["taiwan-5-points", "abroad-3"])
def test_an_answer_within_the_cap_is_still_sent_at_once(product, number: str, length: int) -> None:
    card = replied(product, number)
    type_in_thread(product, "U_OTHER", "好" * length, card["ts"])
    assert wait_until(lambda: len(sends(product)) == 2), "the answer was not sent at once"
    product.settle()
    assert [a["actor"] for a in product.store.audit.for_request(2) if a["action"] == "approved"] == ["answer-policy"]
    assert not any("超過免核准上限" in all_text(m) for m in SlackUser(product, "U_OTHER").ephemerals())


def test_the_cap_is_a_setting(make_product) -> None:
    product = make_product(answer_max_points=10.0)
    card = replied(product, TAIWAN)
    type_in_thread(product, "U_OTHER", "好" * 400, card["ts"])  # 6 points: under a cap of 10
    assert wait_until(lambda: len(sends(product)) == 2)


def test_the_variable_is_read_from_the_environment() -> None:
    from bot.config import Config, ConfigError

    assert Config.from_env({}, dotenv=None).answer_max_points == 5.0
    assert Config.from_env({"BOT_ANSWER_MAX_POINTS": "0"}, dotenv=None).answer_max_points == 0.0
    with pytest.raises(ConfigError, match="BOT_ANSWER_MAX_POINTS"):
        Config.from_env({"BOT_ANSWER_MAX_POINTS": "one sms"}, dotenv=None)
