"""The `/sms` subcommands other than send: credit, status, help, and App Home."""

from __future__ import annotations

from slackstandin import payloads as p
from tests.harness import SlackUser, all_text, wait_until


def answers_for(product, user: SlackUser) -> str:
    """Everything only this user was told (ephemeral answers via response_url)."""
    return "\n".join(all_text(e) for e in user.ephemerals())


def test_credit_shows_the_live_balance(product):
    user = SlackUser(product, "U_REQUESTER")
    product.sandbox.set_credit(812.0)
    assert user.command("credit").status_code == 200
    text = wait_until(lambda: "812.0" in answers_for(product, user) and answers_for(product, user))
    assert "剩餘點數" in text and "812.0 點" in text


def test_credit_when_every8d_is_down_says_so_in_words(product):
    user = SlackUser(product, "U_REQUESTER")
    product.sandbox.faults.inject("http500", count=10)
    user.command("credit")
    text = wait_until(lambda: answers_for(product, user))
    assert "EVERY8D" in text and "Traceback" not in text and "500" not in text.split("EVERY8D")[0]


def test_status_by_request_number_shows_the_summary(product):
    requester = SlackUser(product, "U_REQUESTER")
    requester.command("send 0912345678 查詢狀態")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    requester.command("status #1")
    text = wait_until(lambda: "發送狀態" in answers_for(product, requester) and answers_for(product, requester))
    assert product.store.requests.get(1).batch_id in text


def test_status_of_something_unknown_says_nothing_was_found(product):
    user = SlackUser(product, "U_REQUESTER")
    user.command("status no-such-batch")
    assert "找不到" in wait_until(lambda: answers_for(product, user))


def test_help_and_anything_unrecognised_show_the_usage(product):
    user = SlackUser(product, "U_REQUESTER")
    for text in ("help", "blah"):
        body = all_text(user.command(text).json())
        assert "/sms send" in body and "/sms credit" in body and "/sms scheduled" in body


def test_app_home_shows_credit_and_pending_approvals_with_buttons_for_approvers(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678 待核准")
    product.settle()
    approver = SlackUser(product, "U_APPROVER")
    approver._post(p.event_callback(p.app_home_opened("U_APPROVER")), content_type=p.JSON_TYPE)
    home = wait_until(lambda: product.standin.home("U_APPROVER"))
    text = all_text(home)
    assert "等待核准" in text and "#1" in text
    assert "approve_request" in text


def test_app_home_lists_reports_for_unknown_batches_to_approvers_only(product):
    import requests

    query = "BatchID=not-ours-123&RM=%2b886912345678&RT=20261125143000&STATUS=100"
    assert requests.get(f"{product.callback_url}?{query}", timeout=5).status_code == 200
    for user in ("U_APPROVER", "U_REQUESTER"):
        SlackUser(product, user)._post(p.event_callback(p.app_home_opened(user)), content_type=p.JSON_TYPE)
    approver_home = wait_until(lambda: product.standin.home("U_APPROVER"))
    requester_home = wait_until(lambda: product.standin.home("U_REQUESTER"))
    assert "not-ours-123" in all_text(approver_home) and "0912-***-678" in all_text(approver_home)
    assert "not-ours-123" not in all_text(requester_home)


def test_a_refused_click_in_app_home_is_answered_in_app_home(product):
    """App Home has no response_url: the refusal shows on the refreshed Home instead of vanishing."""
    SlackUser(product, "U_REQUESTER").command("send 0912345678 家頁核准")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    home_view = {"type": "home", "id": "VHOME", "blocks": []}
    body = p.block_actions(user_id="U_APPROVER2", action_id="approve_request", value="1", view=home_view)
    response = SlackUser(product, "U_APPROVER2")._post(body)
    assert response.status_code == 200
    home = wait_until(lambda: product.standin.home("U_APPROVER2"))
    assert "已由 <@U_APPROVER> 處理過了" in all_text(home)


def test_a_mistyped_subcommand_names_the_word_and_the_nearest_command(product):
    user = SlackUser(product, "U_REQUESTER")
    body = all_text(user.command("sned 0912345678 hi").json())
    assert "sned" in body and "/sms send 0912345678 hi" in body and "/sms credit" in body
    body = all_text(user.command("credt").json())
    assert "credt" in body and "`/sms credit`" in body


def test_numbers_without_send_suggest_the_send_line_and_send_nothing(product):
    user = SlackUser(product, "U_REQUESTER")
    body = all_text(user.command("0922333444 hi").json())
    assert "/sms send 0922333444 hi" in body
    product.settle()
    assert product.store.requests.get(1) is None and not product.standin.messages("C_APPROVALS")


def test_a_word_like_no_command_is_named_without_a_guess(product):
    body = all_text(SlackUser(product, "U_REQUESTER").command("zzzz").json())
    assert "zzzz" in body and "Did you mean" not in body and "/sms send" in body
