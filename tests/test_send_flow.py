"""The heart of the product, driven as Slack drives it: `/sms send`, the approval card, Approve, the
send to EVERY8D (the sandbox), and the thread that reports it."""

from __future__ import annotations

from slackstandin import payloads as p
from tests.harness import SlackUser, all_text, button, wait_until


def approval_cards(product):
    return product.standin.messages("C_APPROVALS")


def reject_with_reason(product, approver: SlackUser, card: dict, reason: str | None) -> dict:
    """Press Reject, then submit the window it opens with `reason` (None: leave the field empty)."""
    assert approver.click("reject_request", card_request(card), message=card).status_code == 200
    [view] = wait_until(lambda: product.standin.open_views(approver.user_id))
    assert view["callback_id"] == "reject_reason"
    answer = approver.submit(view, {"reason": p.plain_text_input("value", reason or None)})
    product.settle()
    return answer.json() if answer.text else {}


def card_request(card: dict) -> str:
    return (button(card, "reject_request") or {}).get("value", "")


def dms(product, user: str) -> list[str]:
    """What the bot told `user` in its direct messages (the app's Messages tab)."""
    return [all_text(m) for m in product.standin.messages(f"D{user}")]


def test_one_line_send_is_approved_sent_once_and_reported_in_its_thread(product):
    requester = SlackUser(product, "U_REQUESTER")
    approver = SlackUser(product, "U_APPROVER")

    response = requester.command("send 0912-345-678,0922333444 您好，明天上午十點開會")
    assert response.status_code == 200
    assert "#1" in all_text(response.json())  # the ephemeral answer names the request
    product.settle()

    [card] = approval_cards(product)
    text = all_text(card)
    assert "2 位收件人" in text or "2 recipients" in text
    assert "0912-***-678" in text and "0912345678" not in text  # masked in the channel
    assert "2.0 點" in text  # exact cost: 2 Taiwan recipients x 1 point
    assert "沙盒模式" in text  # sandbox mode is said on every post
    approve = button(card, "approve_request")
    assert approve is not None and approve["value"] == "1"

    assert approver.click("approve_request", "1", message=card).status_code == 200
    product.settle()

    sends = [c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]
    assert len(sends) == 1
    assert sends[0].params["DEST"] == "+886912345678,+886922333444"
    assert sends[0].params["MSG"] == "您好，明天上午十點開會"
    # The request's tag, with this deployment's (so a second bot on the same EVERY8D account never adopts it).
    assert sends[0].params["SB"] == f"#R1@{product.runtime.sending.deployment}"
    assert sends[0].params["PWD"] == "***"

    [card] = approval_cards(product)
    assert button(card, "approve_request") is None  # buttons gone after the decision
    assert "U_APPROVER" in all_text(card) and "核准" in all_text(card)
    thread = product.standin.thread("C_APPROVALS", card["ts"])
    batch_id = product.store.requests.get(1).batch_id
    assert batch_id and any(batch_id in all_text(m) and "已送出 2 則" in all_text(m) for m in thread)


def test_reject_sends_nothing_and_says_who_rejected(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678 測試")
    product.settle()
    [card] = approval_cards(product)
    reject_with_reason(product, SlackUser(product, "U_APPROVER2"), card, "")
    [card] = approval_cards(product)
    assert "駁回" in all_text(card) and "U_APPROVER2" in all_text(card)
    assert button(card, "approve_request") is None
    assert not [c for c in product.sandbox.calls if "send" in c.endpoint]


def test_requester_cannot_approve_own_request_and_non_approver_is_refused(make_product):
    product = make_product(approvers=("U_APPROVER", "U_REQUESTER"))
    requester = SlackUser(product, "U_REQUESTER")
    requester.command("send 0912345678 測試")
    product.settle()
    [card] = approval_cards(product)

    requester.click("approve_request", "1", message=card)
    other = SlackUser(product, "U_OTHER")
    other.click("approve_request", "1", message=card)
    product.settle()

    assert any("不能核准自己" in all_text(m) for m in requester.ephemerals())
    assert any("只有核准者" in all_text(m) for m in other.ephemerals())
    assert product.store.requests.get(1).state == "pending_approval"
    assert button(approval_cards(product)[0], "approve_request") is not None
    assert not [c for c in product.sandbox.calls if "send" in c.endpoint]


def test_self_approval_allowed_when_configured(make_product):
    product = make_product(approvers=("U_REQUESTER",), allow_self_approval=True)
    requester = SlackUser(product, "U_REQUESTER")
    requester.command("send 0912345678 測試")
    product.settle()
    requester.click("approve_request", "1", message=approval_cards(product)[0])
    product.settle()
    assert product.store.requests.get(1).state == "sent"


def test_auto_approval_under_threshold_sends_without_a_click(make_product):
    product = make_product(auto_approve_under=5.0)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 小額通知")
    product.settle()
    request = product.store.requests.get(1)
    assert request.state == "sent" and request.auto_approved
    assert "自動核准" in all_text(approval_cards(product)[0])


def test_bad_one_line_input_is_refused_with_each_problem_named_and_nothing_stored(product):
    requester = SlackUser(product, "U_REQUESTER")
    response = requester.command("send 02-2345-6789,0912345678,abc ")
    assert response.status_code == 200
    body = all_text(response.json())
    assert "02-2345-6789" in body and "市話" in body  # the landline is named
    assert "abc" in body
    assert "內容" in body  # empty message
    product.settle()
    assert product.store.requests.get(1) is None
    assert approval_cards(product) == []


def test_twenty_concurrent_approve_clicks_send_exactly_once(product):
    from concurrent.futures import ThreadPoolExecutor

    SlackUser(product, "U_REQUESTER").command("send 0912345678 只送一次")
    product.settle()
    [card] = approval_cards(product)
    approvers = [SlackUser(product, u) for u in ("U_APPROVER", "U_APPROVER2")] * 10
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda u: u.click("approve_request", "1", message=card), approvers))
    assert all(r.status_code == 200 for r in responses)
    product.settle()
    assert len([c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]) == 1
    assert product.store.requests.get(1).state == "sent"
    decisions = [a for a in product.store.audit.for_request(1) if a["action"] == "approved"]
    assert len(decisions) == 1


def test_slack_retry_of_an_approve_click_does_not_send_twice(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678 重試")
    product.settle()
    [card] = approval_cards(product)
    approver = SlackUser(product, "U_APPROVER")
    approver.click("approve_request", "1", message=card)
    approver.click("approve_request", "1", message=card, retry_num=1)
    approver.click("approve_request", "1", message=card, retry_num=2)
    product.settle()
    assert len([c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]) == 1


def test_reject_asks_for_a_reason_that_the_card_and_the_requester_see(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678 週年慶 <b>全館</b> 五折")
    product.settle()
    [card] = approval_cards(product)
    reject_with_reason(product, SlackUser(product, "U_APPROVER"), card, "內容需經 <法務> 確認")
    [card] = approval_cards(product)
    assert "理由：「內容需經 &lt;法務&gt; 確認」" in all_text(card)  # escaped: typed text never forms links
    assert product.store.requests.get(1).decision_reason == "內容需經 <法務> 確認"
    [told] = dms(product, "U_REQUESTER")
    assert "#1" in told and "駁回" in told and "內容需經 &lt;法務&gt; 確認" in told and "U_APPROVER" in told
    assert not [c for c in product.sandbox.calls if "send" in c.endpoint]


def test_reject_by_a_non_approver_opens_no_window_and_decides_nothing(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678 測試")
    product.settle()
    [card] = approval_cards(product)
    other = SlackUser(product, "U_OTHER")
    other.click("reject_request", "1", message=card)
    product.settle()
    assert product.standin.open_views("U_OTHER") == []
    assert any("只有核准者" in all_text(e) for e in other.ephemerals())
    assert product.store.requests.get(1).state.value == "pending_approval"


def test_a_reject_window_submitted_after_someone_approved_says_so_and_changes_nothing(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678 測試")
    product.settle()
    [card] = approval_cards(product)
    late = SlackUser(product, "U_APPROVER2")
    late.click("reject_request", "1", message=card)
    [view] = wait_until(lambda: product.standin.open_views("U_APPROVER2"))
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    answer = late.submit(view, {"reason": p.plain_text_input("value", "太晚了")}).json()
    assert answer["response_action"] == "errors" and "已由" in answer["errors"]["reason"]
    product.settle()
    assert product.store.requests.get(1).state.value == "sent"


def test_the_requester_is_told_privately_when_approved_and_when_sent(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678 出貨通知")
    product.settle()
    [card] = approval_cards(product)
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    told = dms(product, "U_REQUESTER")
    assert len(told) == 2 and "已由 <@U_APPROVER> 核准" in told[0] and "已送出（1 位收件人" in told[1]
    assert "出貨通知" in told[1]
    assert dms(product, "U_APPROVER") == []  # the approver saw it happen; only the requester is told


def test_the_requester_is_told_when_the_send_failed(product):
    product.sandbox.faults.inject("-99", count=5, endpoint="sendSMS.ashx")  # EVERY8D refuses: nothing sent
    SlackUser(product, "U_REQUESTER").command("send 0912345678 會失敗")
    product.settle()
    [card] = approval_cards(product)
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    assert product.store.requests.get(1).state.value == "failed"
    told = dms(product, "U_REQUESTER")
    assert "發送失敗" in told[-1] and "#1" in told[-1]
