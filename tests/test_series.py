"""Recurring sends: the rule math on a fake clock, and the whole path through signed Slack requests: the
compose modal's repeat fields, one approval on the series card, each run its own request in the series'
thread sent exactly once, a run refused for short credit, Pause / Resume / Stop, and runs missed while
the bot was down (within and beyond the grace window)."""

from __future__ import annotations

import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.recurrence import (
    DAILY,
    MONTHLY,
    WEEKDAYS,
    Rule,
    check,
    describe,
    next_after,
    rule_from_first,
    upcoming,
)
from slackstandin import payloads as p
from tests.harness import Product, SlackUser, all_text, button, make_config, wait_until

TAIPEI = ZoneInfo("Asia/Taipei")


def at(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> float:
    return datetime(y, m, d, hh, mm, tzinfo=TAIPEI).timestamp()


def local_dates(epochs) -> list[str]:
    return [f"{datetime.fromtimestamp(e, tz=TAIPEI):%Y-%m-%d %H:%M}" for e in epochs]


# -- rule math -----------------------------------------------------------------------------------------


def test_weekdays_rule_skips_the_weekend_and_stops_at_its_end_date():
    first = datetime(2026, 12, 4, 9, 0, tzinfo=TAIPEI)  # a Friday
    rule = rule_from_first(WEEKDAYS, first, until=date(2026, 12, 9))
    assert local_dates(e for _, e in upcoming(rule, at(2026, 12, 3), 10)) == [
        "2026-12-04 09:00", "2026-12-07 09:00", "2026-12-08 09:00", "2026-12-09 09:00"]
    assert describe(rule)[0] == "每週一至五 09:00 重複，至 2026-12-09"


def test_chosen_weekdays_daily_with_count_and_next_after_the_last_is_none():
    rule = rule_from_first(WEEKDAYS, datetime(2026, 12, 3, 18, 30, tzinfo=TAIPEI), weekdays=frozenset({0, 2}),
                           count=3)
    assert local_dates(e for _, e in upcoming(rule, at(2026, 12, 1), 10)) == [
        "2026-12-07 18:30", "2026-12-09 18:30", "2026-12-14 18:30"]
    daily = rule_from_first(DAILY, datetime(2026, 12, 30, 8, 0, tzinfo=TAIPEI), count=3)
    runs = upcoming(daily, at(2026, 12, 1), 10)
    assert local_dates(e for _, e in runs) == ["2026-12-30 08:00", "2026-12-31 08:00", "2027-01-01 08:00"]
    assert next_after(daily, runs[-1][1]) is None


def test_monthly_on_the_31st_runs_on_each_months_last_day():
    rule = rule_from_first(MONTHLY, datetime(2027, 1, 31, 10, 0, tzinfo=TAIPEI), count=4)
    assert local_dates(e for _, e in upcoming(rule, at(2027, 1, 1), 10)) == [
        "2027-01-31 10:00", "2027-02-28 10:00", "2027-03-31 10:00", "2027-04-30 10:00"]
    assert "小月為月底" in describe(rule)[0]


def test_a_rule_without_an_end_or_with_a_bad_one_is_refused_on_its_field():
    first = datetime(2026, 12, 4, 9, 0, tzinfo=TAIPEI)
    now = at(2026, 12, 3)
    assert [p.field for p in check(rule_from_first(DAILY, first), now)] == ["repeat_until"]
    assert [p.field for p in check(rule_from_first(DAILY, first, until=date(2026, 12, 1)), now)] == ["repeat_until"]
    assert [p.field for p in check(rule_from_first(DAILY, first, count=0), now)] == ["repeat_count"]
    assert check(rule_from_first(DAILY, first, count=2), now) == []
    assert Rule.from_columns(rule_from_first(WEEKDAYS, first, weekdays=frozenset({1}), count=2).to_columns()) \
        == rule_from_first(WEEKDAYS, first, weekdays=frozenset({1}), count=2)


# -- through Slack -------------------------------------------------------------------------------------


class FakeClock:
    """The product's time; tests move it to each occurrence."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(standin, tmp_path):
    """make(**config) -> (product, clock), on the same database for every product built."""
    built: list[Product] = []
    clock = FakeClock()

    def make(**overrides) -> tuple[Product, FakeClock]:
        product = Product(make_config(standin, tmp_path / "bot.db", **overrides), standin, clock=clock)
        built.append(product)
        return product, clock

    yield make
    for product in built:
        try:
            product.stop()
        except Exception:  # noqa: BLE001 - already stopped
            pass


def compose_values(send_at: int, *, repeat: str = "daily", count: int | None = 3, until: str | None = None,
                   days: list[str] | None = None) -> dict:
    return {
        "kind": p.radio_buttons("compose_kind", "sms"),
        "recipients": p.plain_text_input("value", "0912345678, 0922333444"),
        "message": p.plain_text_input("value", "每日提醒：記得打卡"),
        "subject": p.plain_text_input("value", None),
        "send_at": p.datetimepicker("value", send_at),
        "validity": p.number_input("value", None),
        "repeat": p.static_select("value", repeat) if repeat else {"value": {"type": "static_select",
                                                                              "selected_option": None}},
        "repeat_days": p.checkboxes("value", days or []),
        "repeat_until": {"value": {"type": "datepicker", "selected_date": until}},
        "repeat_count": p.number_input("value", count),
    }


def start_series(product: Product, clock: FakeClock, **repeat) -> tuple[int, dict]:
    """Compose a repeating send in the modal, submit the preview, approve the series card once."""
    user = SlackUser(product, "U_REQUESTER")
    assert user.command("").status_code == 200
    [view] = wait_until(lambda: product.standin.open_views(user.user_id))
    first = int(clock.now // 60 * 60 + 3600)
    answer = user.submit(view, compose_values(first, **repeat)).json()
    assert answer["response_action"] == "push", answer
    preview = all_text(answer["view"])
    assert "🔁" in preview and "每次 2.0 點" in preview and "一次核准涵蓋整個重複發送" in preview
    done = user.submit(answer["view"], {}).json()
    assert done["response_action"] == "update" and "S1" in all_text(done["view"])
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    assert "接下來：" in all_text(card) and "（3 次）" in all_text(card) and "每次 2.0 點" in all_text(card)
    assert product.store.requests.get(1) is None  # nothing is a request before a run is due
    SlackUser(product, "U_APPROVER").click("series_approve", "1", message=card)
    wait_until(lambda: product.store.series.get(1).state == "active")
    product.settle()
    return first, card


def run_at(product: Product, clock: FakeClock, epoch: float) -> list[int]:
    clock.now = epoch
    created = product.runtime.series.run_due()
    product.settle()
    return created


def test_one_approval_then_each_run_is_its_own_request_in_the_thread_sent_once(clocked):
    product, clock = clocked()
    first, card = start_series(product, clock)
    series = product.store.series.get(1)
    assert series.approved_by == "U_APPROVER" and series.next_run_at == first

    assert run_at(product, clock, first - 30) == []  # not due yet
    assert run_at(product, clock, first + 5) == [1]
    assert run_at(product, clock, first + 10) == []  # the same tick again: nothing new
    assert run_at(product, clock, first + 86400 + 5) == [2]
    for request_id in (1, 2):
        request = wait_until(lambda rid=request_id: (r := product.store.requests.get(rid)) and r.state == "sent" and r)
        assert request.decided_by == "U_APPROVER" and request.thread_ts == card["ts"]
    assert product.store.requests.by_source_event(f"series:1:{first}").id == 1
    assert product.store.requests.by_source_event(f"series:1:{first + 86400}").id == 2
    assert len([c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]) == 2  # exactly once each
    thread = product.standin.thread("C_APPROVALS", card["ts"])
    assert sum("#1" in all_text(m) for m in thread) >= 1 and sum("#2" in all_text(m) for m in thread) >= 1
    assert [r.outcome for r in product.store.series.runs(1)] == ["requested", "requested"]
    assert product.store.series.get(1).runs_done == 2

    run_at(product, clock, first + 2 * 86400 + 5)
    assert product.store.series.get(1).state == "finished"  # three times, then done
    assert run_at(product, clock, first + 3 * 86400 + 5) == []


def test_a_run_the_credit_cannot_cover_is_refused_with_a_word_in_the_thread(clocked):
    product, clock = clocked()
    first, card = start_series(product, clock)
    product.store.credit.record(1.0, source="test", now=clock.now)
    assert run_at(product, clock, first + 5) == []
    assert product.store.requests.get(1) is None
    thread = product.standin.thread("C_APPROVALS", card["ts"])
    assert any("點數不足" in all_text(m) and "2.0" in all_text(m) for m in thread)
    assert [r.outcome for r in product.store.series.runs(1)] == ["refused"]
    product.store.credit.record(1000.0, source="test", now=clock.now)
    assert run_at(product, clock, first + 86400 + 5) == [1]  # the next run goes out as planned


def test_pause_resume_and_stop_by_the_requester_or_an_approver_only(clocked):
    product, clock = clocked()
    first, card = start_series(product, clock)
    stranger = SlackUser(product, "U_OTHER")
    stranger.click("series_pause", "1", message=card)
    wait_until(lambda: stranger.ephemerals())
    assert "只有申請人或核准者" in all_text(stranger.ephemerals()[-1])
    assert product.store.series.get(1).state == "active"

    requester = SlackUser(product, "U_REQUESTER")
    requester.click("series_pause", "1", message=card)
    wait_until(lambda: product.store.series.get(1).state == "paused")
    assert run_at(product, clock, first + 5) == []  # paused: nothing runs

    answer = requester.command("scheduled").json()
    assert "S1" in all_text(answer) and "series_resume" in all_text(answer)
    requester.click("series_resume", "1", message=card)
    wait_until(lambda: product.store.series.get(1).state == "active")
    assert product.store.series.get(1).next_run_at == first + 86400  # what fell in the pause is skipped
    assert run_at(product, clock, first + 86400 + 5) == [1]

    SlackUser(product, "U_APPROVER").click("series_stop", "1", message=card)
    wait_until(lambda: product.store.series.get(1).state == "stopped")
    assert run_at(product, clock, first + 2 * 86400 + 5) == []
    product.settle()
    [latest] = [m for m in product.standin.messages("C_APPROVALS") if m["ts"] == card["ts"]]
    assert "停止" in all_text(latest) and button(latest, "series_resume") is None


def test_a_run_missed_while_down_runs_once_within_grace_and_is_reported_beyond(clocked):
    product, clock = clocked(series_grace_minutes=60)
    first, card = start_series(product, clock)
    product.stop()

    clock.now = first + 30 * 60  # back half an hour late: within the grace window
    restarted, _ = clocked(series_grace_minutes=60)
    restarted.runtime.series.run_due()
    restarted.settle()
    assert [r.outcome for r in restarted.store.series.runs(1)] == ["requested"]
    assert restarted.runtime.series.run_due() == []  # once

    restarted.stop()
    clock.now = first + 2 * 86400 + 3 * 3600  # both later runs missed, the last one 3 hours ago
    again, _ = clocked(series_grace_minutes=60)
    assert again.runtime.series.run_due() == []
    again.settle()
    assert [r.outcome for r in again.store.series.runs(1)] == ["requested", "missed", "missed"]
    thread = again.standin.thread("C_APPROVALS", card["ts"])
    assert any("錯過了 2 次發送" in all_text(m) and "略過未發送" in all_text(m) for m in thread)
    assert again.store.series.get(1).state == "finished"


def test_repeat_without_a_scheduled_time_or_end_is_refused_inline(clocked):
    product, clock = clocked()
    user = SlackUser(product, "U_REQUESTER")
    user.command("")
    [view] = wait_until(lambda: product.standin.open_views(user.user_id))
    values = compose_values(0, count=None)
    values["send_at"] = p.datetimepicker("value", None)
    errors = user.submit(view, values).json()["errors"]
    assert "預約時間" in errors["send_at"]
    errors = user.submit(view, compose_values(int(clock.now + 7200), count=None)).json()["errors"]
    assert "結束日期或次數" in errors["repeat_until"]
    assert product.store.series.get(1) is None


def test_app_home_lists_series_with_their_buttons(clocked):
    product, clock = clocked()
    start_series(product, clock)
    from handlers.home import home_view

    text = str(home_view(product.runtime.context, "U_REQUESTER"))
    assert "S1" in text and "series_pause" in text and "series_stop" in text
    assert "series_pause" not in str(home_view(product.runtime.context, "U_OTHER"))


def test_each_run_is_checked_again_a_number_that_opted_out_is_left_out_and_it_is_audited(clocked):
    product, clock = clocked()
    first, _ = start_series(product, clock)
    assert run_at(product, clock, first + 5) == [1]
    assert product.store.requests.recipients(1) == ["+886912345678", "+886922333444"]
    product.store.optouts.add("+886922333444", source="reply", keyword="STOP")
    assert run_at(product, clock, first + 86400 + 5) == [2]
    request = product.store.requests.get(2)
    assert product.store.requests.recipients(2) == ["+886912345678"] and request.points == 1.0  # priced at run time
    audit = product.store.audit
    assert [a["actor"] for a in audit.actions("series_requested")] == ["U_REQUESTER"]
    assert [a["actor"] for a in audit.actions("series_approved")] == ["U_APPROVER"]
    assert [a["request_id"] for a in audit.actions("series_run")] == [1, 2]
    assert [(a["action"], a["actor"]) for a in audit.for_request(2)][:2] == [("requested", "U_REQUESTER"),
                                                                             ("approved", "U_APPROVER")]


def test_the_series_approval_follows_the_approval_policy(clocked):
    product, clock = clocked()
    user = SlackUser(product, "U_APPROVER")  # an approver asking: may not approve their own series
    user.command("")
    [view] = wait_until(lambda: product.standin.open_views(user.user_id))
    answer = user.submit(view, compose_values(int(clock.now // 60 * 60 + 3600))).json()
    user.submit(answer["view"], {})
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    user.click("series_approve", "1", message=card)
    wait_until(lambda: user.ephemerals())
    assert "不能核准自己提出的申請" in all_text(user.ephemerals()[-1])
    requester = SlackUser(product, "U_REQUESTER")
    requester.click("series_approve", "1", message=card)
    wait_until(lambda: requester.ephemerals())
    assert "只有核准者" in all_text(requester.ephemerals()[-1])
    assert product.store.series.get(1).state == "pending"
    assert product.runtime.series.run_due() == []  # nothing runs before the approval
    from handlers.home import home_view

    assert "series_approve" in str(home_view(product.runtime.context, "U_APPROVER2"))  # Home: another approver
    assert "series_approve" not in str(home_view(product.runtime.context, "U_APPROVER"))  # not its requester
    SlackUser(product, "U_APPROVER2").click("series_reject", "1", message=card)
    wait_until(lambda: product.store.series.get(1).state == "rejected")
    product.settle()
    [latest] = product.standin.messages("C_APPROVALS")
    assert "駁回" in all_text(latest) and button(latest, "series_approve") is None
    clock.now += 2 * 86400
    assert product.runtime.series.run_due() == [] and product.store.requests.get(1) is None


def test_a_tick_interrupted_after_the_request_was_made_never_makes_a_second_one(clocked, monkeypatch):
    product, clock = clocked()
    first, _ = start_series(product, clock)
    store = product.store.series
    real_advance = store.advance

    def crash(*args, **kwargs):
        raise RuntimeError("the bot stopped here")

    monkeypatch.setattr(store, "advance", crash)
    clock.now = first + 5
    product.runtime.series.run_due()  # the request is made, then the tick dies before moving on
    product.settle()
    assert product.store.requests.get(1) is not None
    monkeypatch.setattr(store, "advance", real_advance)
    assert run_at(product, clock, first + 20) == []  # the same occurrence again: found, not made twice
    assert product.store.requests.get(2) is None and product.store.series.get(1).runs_done == 1
    assert len([c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]) == 1


def test_a_run_over_the_requesters_budget_waits_for_an_override_or_is_refused_when_configured(clocked):
    product, clock = clocked()
    first, card = start_series(product, clock)
    product.store.budgets.set("requester", "U_REQUESTER", 3.0, actor="U_APPROVER", now=clock.now)
    assert run_at(product, clock, first + 5) == [1]  # 2.0 of 3.0: sent on the series' approval
    wait_until(lambda: product.store.requests.get(1).state == "sent")
    assert run_at(product, clock, first + 86400 + 5) == [2]  # 4.0 of 3.0: never sent without an override
    assert product.store.requests.get(2).state == "pending_approval"
    assert product.store.requests.get(2).thread_ts == card["ts"]
    product.stop()

    refusing, _ = clocked(budget_over="refuse")  # BOT_BUDGET_OVER=refuse: the run is refused with a word
    assert run_at(refusing, clock, first + 2 * 86400 + 5) == []
    assert [r.outcome for r in refusing.store.series.runs(1)][-1] == "refused"
    thread = refusing.standin.thread("C_APPROVALS", card["ts"])
    assert any("未發送" in all_text(m) for m in thread)
