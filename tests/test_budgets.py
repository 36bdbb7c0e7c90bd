"""Monthly point budgets per channel or per requester (`/sms budget`), driven as Slack drives them: approvers set
them, the preview says what is left, a request over one needs "Approve over budget" (the plain Approve refuses
with a word), auto-approval never goes over, BOT_BUDGET_OVER=refuse stops the draft, months turn in
BOT_TIMEZONE, and App Home shows each budget's use."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.budgets import target_of
from slackstandin import payloads as p
from storage import RequestState
from tests.harness import Product, SlackUser, all_text, button, make_config, wait_until
from tests.test_compose_modal import open_compose, values
from tests.test_quiet_hours import FixedClock
from tests.test_tracking import external_sandbox

__all__ = ["external_sandbox"]  # a fixture (the auto-reply test drives EVERY8D's replies by hand)

TAIPEI = ZoneInfo("Asia/Taipei")


def cards_of(product) -> list[dict]:
    return product.standin.messages("C_APPROVALS")


def sends(product) -> list:
    return [c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]


def set_budget(product, target: str, points: str, user: str = "U_APPROVER") -> str:
    return all_text(SlackUser(product, user).command(f"budget set {target} {points}").json())


def audit(product, action: str) -> list[dict]:
    return product.store.audit.actions(action)


# -- managing budgets -------------------------------------------------------------------------------


def test_an_approver_sets_changes_and_removes_budgets_each_audited(product):
    answer = set_budget(product, "<#C_GENERAL|general>", "5,000")
    assert "5,000" in answer and "<#C_GENERAL>" in answer
    answer = set_budget(product, "<@U_REQUESTER|wang>", "2000")
    assert "2,000" in answer and "<@U_REQUESTER>" in answer
    answer = set_budget(product, "<#C_GENERAL>", "6000")
    assert "由 5,000 點改為 6,000 點" in answer
    listing = all_text(SlackUser(product, "U_REQUESTER").command("budget").json())
    assert "<#C_GENERAL>" in listing and "6,000" in listing and "<@U_REQUESTER>" in listing and "░" in listing
    removed = all_text(SlackUser(product, "U_APPROVER").command("budget remove <@U_REQUESTER>").json())
    assert "已移除" in removed and "2,000" in removed
    assert product.store.budgets.get("requester", "U_REQUESTER") is None
    assert [(a["actor"]) for a in audit(product, "budget_set")] == ["U_APPROVER"] * 3
    assert len(audit(product, "budget_removed")) == 1


def test_a_non_approver_cannot_set_a_budget_and_nothing_changes(product):
    answer = set_budget(product, "<#C_GENERAL|general>", "5000", user="U_REQUESTER")
    assert "只有核准者" in answer
    assert product.store.budgets.list() == [] and audit(product, "budget_set") == []


@pytest.mark.parametrize(("command", "said"), [
    ("budget set #general 5000", "看不懂「#general」"),
    ("budget set <#C_GENERAL> lots", "不是有效的點數"),
    ("budget set <#C_GENERAL> 0", "不是有效的點數"),
    ("budget set <#C_GENERAL> 99999999999", "不是有效的點數"),
    ("budget frobnicate", "用法"),
    ("budget remove <#C_NOTHING>", "沒有設定預算"),
])
def test_bad_input_gets_a_specific_word_and_changes_nothing(product, command, said):
    answer = all_text(SlackUser(product, "U_APPROVER").command(command).json())
    assert said in answer
    assert product.store.budgets.list() == []


def test_targets_are_read_as_slack_sends_them():
    assert target_of("<#C0123ABC|sales>", "C_HERE") == ("channel", "C0123ABC")
    assert target_of("<@U0123ABC>", "C_HERE") == ("requester", "U0123ABC")
    assert target_of("<@W0123ABC|wang>", "C_HERE") == ("requester", "W0123ABC")
    assert target_of("C0123ABCD", "C_HERE") == ("channel", "C0123ABCD")
    assert target_of("here", "C_HERE") == ("channel", "C_HERE")
    assert target_of("@wang", "C_HERE") is None and target_of("#sales", "C_HERE") is None


# -- the preview and the card ---------------------------------------------------------------------------


def test_the_preview_shows_what_is_left_of_the_month(product):
    set_budget(product, "<#C_GENERAL>", "1200")
    user = SlackUser(product, "U_REQUESTER")
    answer = user.submit(open_compose(product, user), values(recipients="0912345678,0922333444")).json()
    assert answer["response_action"] == "push"
    shown = all_text(answer["view"])
    assert "本月預算剩餘 1,200.0 點" in shown and "本次後 1,198.0 點" in shown and "1,200.0 points left" in shown


def test_the_one_line_answer_says_what_is_left_and_the_card_too(product):
    set_budget(product, "<@U_REQUESTER>", "10")
    answer = all_text(SlackUser(product, "U_REQUESTER").command("send 0912345678,0922333444 您好").json())
    assert "已送出發送申請 #1" in answer and "本月預算剩餘 10.0 點" in answer and "本次後 8.0 點" in answer
    product.settle()
    [card] = cards_of(product)
    assert "本月預算剩餘 10.0 點" in all_text(card) and button(card, "approve_request") is not None


def test_over_budget_the_card_needs_the_override_and_the_plain_approve_refuses(product):
    set_budget(product, "<@U_REQUESTER>", "3")
    requester = SlackUser(product, "U_REQUESTER")
    answer = all_text(requester.command("send 0912345678,0922333444 第一批").json())
    assert "本次後 1.0 點" in answer
    answer = all_text(requester.command("send 0912345678,0922333444 第二批").json())
    assert "超出預算 1.0 點" in answer  # 2 pending + 2 asked against 3
    product.settle()
    first, second = cards_of(product)
    assert button(first, "approve_request") is not None
    assert button(second, "approve_request") is None and button(second, "approve_over_budget") is not None
    assert "超出本月預算 1.0 點：核准需確認" in all_text(second) and "Approve over budget" in all_text(second)
    assert [a["request_id"] for a in audit(product, "over_budget")] == [2]

    approver = SlackUser(product, "U_APPROVER")
    approver.click("approve_request", "2", message=second)  # a stale plain Approve (e.g. from another client)
    product.settle()
    assert product.store.requests.get(2).state is RequestState.PENDING_APPROVAL
    said = wait_until(lambda: [all_text(m) for m in approver.ephemerals() if "超出預算仍核准" in all_text(m)])
    assert said and "1.0" in said[0]
    assert not sends(product)

    approver.click("approve_over_budget", "2", message=cards_of(product)[1])
    product.settle()
    assert product.store.requests.get(2).state is RequestState.SENT and len(sends(product)) == 1
    [override] = audit(product, "budget_override")
    assert override["actor"] == "U_APPROVER" and override["request_id"] == 2 and '"over_by": 1.0' in override["detail_json"]


def test_a_card_that_went_over_since_it_was_posted_is_redrawn_on_a_plain_approve(product):
    """Two requests each within the budget, together over it: the second plain Approve refuses and its card
    gets the override button."""
    set_budget(product, "<#C_GENERAL>", "3")
    requester = SlackUser(product, "U_REQUESTER")
    requester.command("send 0912345678,0922333444 一")
    product.store.budgets.set("channel", "C_GENERAL", 5, actor="test", now=0)  # both fit when posted
    requester.command("send 0912345678,0922333444 二")
    product.settle()
    product.store.budgets.set("channel", "C_GENERAL", 3, actor="test", now=0)  # then the budget shrinks
    approver = SlackUser(product, "U_APPROVER")
    first, second = cards_of(product)
    approver.click("approve_request", "1", message=first)
    product.settle()
    assert product.store.requests.get(1).state is RequestState.SENT  # a later request never counts against it
    approver.click("approve_request", "2", message=second)
    product.settle()
    assert product.store.requests.get(2).state is RequestState.PENDING_APPROVAL
    assert button(cards_of(product)[1], "approve_over_budget") is not None


def test_rejected_and_cancelled_requests_do_not_count(product):
    set_budget(product, "<@U_REQUESTER>", "2")
    requester = SlackUser(product, "U_REQUESTER")
    requester.command("send 0912345678,0922333444 駁回我")
    product.settle()
    from tests.test_send_flow import reject_with_reason

    reject_with_reason(product, SlackUser(product, "U_APPROVER"), cards_of(product)[0], "")
    answer = all_text(requester.command("send 0912345678,0922333444 再一次").json())
    assert "本月預算剩餘 2.0 點" in answer and "超出" not in answer


# -- automatic approval and refuse mode -------------------------------------------------------------------


def test_auto_approval_never_exceeds_a_budget(make_product):
    product = make_product(auto_approve_under=100.0)
    set_budget(product, "<#C_GENERAL>", "3")
    requester = SlackUser(product, "U_REQUESTER")
    assert "已自動核准" in all_text(requester.command("send 0912345678,0922333444 一").json())
    answer = all_text(requester.command("send 0912345678,0922333444 二").json())
    assert "等待核准" in answer and "已自動核准" not in answer
    product.settle()
    assert product.store.requests.get(2).state is RequestState.PENDING_APPROVAL
    assert button(cards_of(product)[1], "approve_over_budget") is not None
    assert len(sends(product)) == 1


def test_refuse_mode_stops_the_draft_in_the_preview_and_the_one_line_send(make_product):
    product = make_product(budget_over="refuse")
    set_budget(product, "<@U_REQUESTER>", "1")
    user = SlackUser(product, "U_REQUESTER")
    answer = user.submit(open_compose(product, user), values(recipients="0912345678,0922333444")).json()
    assert answer["response_action"] == "errors" and "超出您的本月預算 1.0 點" in answer["errors"]["recipients"]
    one_line = all_text(user.command("send 0912345678,0922333444 您好").json())
    assert "無法送出申請" in one_line and "超出您的本月預算" in one_line
    assert "已送出發送申請 #1" in all_text(user.command("send 0912345678 一位剛好").json())  # within: as usual
    product.settle()
    assert product.store.requests.get(2) is None


def test_bot_budget_over_is_checked_at_start():
    from bot.config import Config, ConfigError

    assert Config.from_env({"BOT_BUDGET_OVER": "REFUSE"}, dotenv=None).budget_over == "refuse"
    with pytest.raises(ConfigError, match="BOT_BUDGET_OVER"):
        Config.from_env({"BOT_BUDGET_OVER": "maybe"}, dotenv=None)


# -- months and App Home ----------------------------------------------------------------------------------


def test_a_new_month_in_bot_timezone_starts_a_fresh_budget(standin, tmp_path):
    """23:50 on 30 November in Taipei is still November there (15:50 UTC); ten minutes after midnight is
    December, while UTC is still on 30 November."""
    clock = FixedClock(datetime(2026, 11, 30, 23, 50, tzinfo=TAIPEI))
    product = Product(make_config(standin, tmp_path / "bot.db"), standin, clock=clock)
    try:
        set_budget(product, "<#C_GENERAL>", "2")
        requester = SlackUser(product, "U_REQUESTER")
        requester.command("send 0912345678,0922333444 十一月")
        assert "超出預算 1.0 點" in all_text(requester.command("send 0912345678 還是十一月").json())
        clock.now = datetime(2026, 12, 1, 0, 10, tzinfo=TAIPEI).timestamp()
        answer = all_text(requester.command("send 0912345678 十二月").json())
        assert "本月預算剩餘 2.0 點" in answer and "超出" not in answer
        product.settle()
        assert button(cards_of(product)[2], "approve_request") is not None
        # November's over-budget request is still judged against November.
        assert button(cards_of(product)[1], "approve_over_budget") is not None
    finally:
        product.stop()


def test_app_home_shows_each_budgets_use(product):
    set_budget(product, "<#C_GENERAL>", "10")
    set_budget(product, "<@U_REQUESTER>", "4")
    SlackUser(product, "U_REQUESTER").command("send 0912345678,0922333444 您好")
    product.settle()
    approver = SlackUser(product, "U_APPROVER")
    approver._post(p.event_callback(p.app_home_opened("U_APPROVER")), content_type=p.JSON_TYPE)
    home = all_text(wait_until(lambda: product.standin.home("U_APPROVER")))
    assert "本月預算" in home and "Budgets this month" in home
    assert "已用 2.0 / 10 點" in home and "已用 2.0 / 4 點" in home and "▓▓▓▓▓░░░░░ 50%" in home


def test_app_home_offers_the_override_on_a_request_over_budget(product):
    set_budget(product, "<@U_REQUESTER>", "1")
    SlackUser(product, "U_REQUESTER").command("send 0912345678,0922333444 您好")
    product.settle()
    approver = SlackUser(product, "U_APPROVER")
    approver._post(p.event_callback(p.app_home_opened("U_APPROVER")), content_type=p.JSON_TYPE)
    home = wait_until(lambda: product.standin.home("U_APPROVER"))
    assert button(home, "approve_over_budget") is not None and button(home, "approve_request") is None


def test_an_answer_that_skips_approval_still_waits_for_the_override_over_budget(product):
    """Answers typed under a reply are approved by the policy (BOT_ANSWERS_NEED_APPROVAL=false): not over a
    budget."""
    from tests.test_conversations import FIRST, batch_sent_and_replied, thread_of, type_in_thread

    card = batch_sent_and_replied(product, (FIRST, "幾點？"))
    set_budget(product, "<@U_OTHER>", "0.5")
    type_in_thread(product, "U_OTHER", "十點", card["ts"])
    product.settle()
    assert product.store.requests.get(2).state is RequestState.PENDING_APPROVAL and len(sends(product)) == 1
    [pending] = [m for m in thread_of(product, card) if button(m, "approve_over_budget")]
    SlackUser(product, "U_APPROVER").click("approve_over_budget", "2", message=pending)
    assert wait_until(lambda: len(sends(product)) == 2)


@pytest.mark.parametrize(("state", "cost", "counted"), [
    (RequestState.PENDING_APPROVAL, None, 10.0),
    (RequestState.APPROVED, None, 10.0),
    (RequestState.UNKNOWN, None, 10.0),
    (RequestState.SENT, 7.0, 7.0),  # what EVERY8D charged
    (RequestState.SENT, None, 10.0),  # marked as sent by an approver: its priced points
    (RequestState.FAILED, 4.0, 4.0),  # parts that went out before the failure
    (RequestState.FAILED, None, 0.0),  # failed before sending
    (RequestState.REJECTED, None, 0.0),
    (RequestState.CANCELLED, 10.0, 0.0),  # a scheduled send cancelled is refunded
])
def test_what_a_request_counts_for_by_state(tmp_path, state, cost, counted):
    from storage import Store

    store = Store(tmp_path / "bot.db")
    try:
        request_id = store.requests.create(
            dict(requester="U_A", origin_channel="C_A", kind="sms", message="x", validity_minutes=1440,
                 recipient_count=10, taiwan_count=10, international_count=0, chars=1, parts=1, points=10,
                 approval_channel="C_APPROVALS", now=1000.0), ["+886912345678"])
        store.requests.update(request_id, state=state.value, cost=cost)
        assert store.budgets.used("channel", "C_A", 0, 2000) == counted
        assert store.budgets.used("requester", "U_A", 0, 2000) == counted
        assert store.budgets.used("requester", "U_B", 0, 2000) == 0.0
        assert store.budgets.used("channel", "C_A", 1000.5, 2000) == 0.0  # made before that month
        assert store.budgets.used("channel", "C_A", 0, 2000, before_request=request_id) == 0.0  # itself
    finally:
        store.close()


def test_an_auto_reply_over_budget_waits_for_the_override(make_product, external_sandbox):
    """An automatic answer (`/sms autoreply`) is approved by rule, so never over a budget: its channel is the
    approval channel, whose budget it counts against."""
    from tests.test_autoreply import answer, delivered, sent
    from tests.test_tracking import batch_id_of

    product, sandbox, card, now = delivered(make_product, external_sandbox)
    answer(product, "U_APPROVER", "add 營業時間 週一至週五 9:00-18:00")
    set_budget(product, "<#C_APPROVALS>", "0.5")
    sandbox.simulate_reply(batch_id_of(product), "0912345678", "營業時間")
    product.poll()
    product.runtime.lookup_replies_once()  # the reply texts: getReplyMessage, not status rows
    assert wait_until(lambda: product.store.requests.get(2))
    product.settle()
    assert product.store.requests.get(2).state is RequestState.PENDING_APPROVAL and len(sent(sandbox)) == 1
    assert [a["request_id"] for a in audit(product, "over_budget")] == [2]
