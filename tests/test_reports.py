"""Reports, driven as Slack drives them: `/sms audit` uploads a CSV, the weekly report is posted once per
week to the alert channel (with or without matplotlib), and App Home shows credit, forecast, pending,
scheduled and recent batches."""

from __future__ import annotations

import csv
import io
import logging
import re
import sys
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.scheduler import WEEKLY_REPORT_JOB
from every8d.problems import Problem
from services.compose import ComposeInput, prepare
from services.reports import DateRange, audit_csv, parse_range, previous_week, weekly_summary
from slackstandin import payloads as p
from tests.harness import SlackUser, all_text, button, wait_until
from tests.test_tracking import against, approve, batch_id_of, external_sandbox, send_approved

TAIPEI = ZoneInfo("Asia/Taipei")
DAY = 86400.0
__all__ = ["external_sandbox"]  # a fixture shared with test_tracking


def scenario(make_product, external_sandbox, **overrides):
    """Request #1 sent to two numbers (one delivered, one failing with 103) and answered "好";
    request #2 scheduled an hour ahead; request #3 waiting for approval."""
    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], background=False, failing_numbers={"0922333444": 103})
    product = make_product(**against(sandbox), **overrides)
    send_approved(product, "send 0912345678,0922333444 週會通知")
    send_at = datetime.fromtimestamp(int(time.time()) + 3600, tz=UTC)
    preview = prepare(ComposeInput(kind="sms", recipients_text="0955666777", message="預約通知", send_at=send_at),
                      clock=time.time, last_credit=None)
    product.runtime.requests.submit(preview, requester="U_REQUESTER", origin_channel="C_GENERAL")
    product.settle()
    card = next(c for c in product.standin.messages("C_APPROVALS") if (button(c, "approve_request") or {}).get("value") == "2")
    approve(product, card, 2)
    SlackUser(product, "U_REQUESTER").command("send 0977888999 待核准")
    now[0] += 10
    sandbox.simulate_reply(batch_id_of(product), "0912345678", "好 ")
    product.poll()
    product.runtime.lookup_replies_once()  # the reply texts: getReplyMessage, not status rows
    return product


def csv_rows(upload: dict) -> list[dict]:
    content = upload["content"]
    assert content.startswith("\ufeff".encode())  # the BOM Excel needs to read UTF-8
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def next_monday_9(epoch: float) -> float:
    """09:00 Taipei on the Monday after `epoch`: the report then covers the week `epoch` is in."""
    today = datetime.fromtimestamp(epoch, tz=TAIPEI).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime(monday.year, monday.month, monday.day, 9, tzinfo=TAIPEI).timestamp()


def open_home(product, user: str) -> dict:
    SlackUser(product, user)._post(p.event_callback(p.app_home_opened(user)), content_type=p.JSON_TYPE)
    return wait_until(lambda: product.standin.home(user))


# -- /sms audit --------------------------------------------------------------------------------------


def test_audit_by_an_approver_uploads_a_csv_linking_requester_approver_batch_and_masked_statuses(
    make_product, external_sandbox
):
    product = scenario(make_product, external_sandbox)
    today = datetime.now(TAIPEI).date()
    answer = SlackUser(product, "U_APPROVER").command(f"audit {today:%Y-%m-%d} {today:%Y-%m-%d}")
    assert "正在產生" in all_text(answer.json())

    [upload] = wait_until(lambda: product.standin.uploads)
    assert upload["channel"] == "C_GENERAL" and upload["name"] == f"sms-audit-{today:%Y%m%d}-{today:%Y%m%d}.csv"
    assert "4 筆收件紀錄" in upload["initial_comment"]
    rows = csv_rows(upload)
    by_number = {r["recipient"]: r for r in rows}
    assert list(by_number) == ["0912-***-678", "0922-***-444", "0955-***-777", "0977-***-999"]
    delivered, failed = by_number["0912-***-678"], by_number["0922-***-444"]
    batch_id = product.store.requests.get(1).batch_id
    for row in (delivered, failed):
        assert (row["request_id"], row["requester"], row["approver"], row["batch_id"], row["state"]) == (
            "1", "U_REQUESTER", "U_APPROVER", batch_id, "sent")
    assert (delivered["status_code"], delivered["status_zh"], delivered["cost_points"]) == ("100", "已送達", "1")
    assert (failed["status_code"], failed["status_en"]) == ("103", "no such number")
    assert by_number["0955-***-777"]["status_code"] == "300"  # scheduled, not gone out yet
    pending = by_number["0977-***-999"]
    assert pending["state"] == "pending_approval" and pending["approver"] == "" and pending["status_code"] == ""
    assert pending["created_at (Asia/Taipei)"].startswith(f"{today:%Y-%m-%d} ")
    assert b"0912345678" not in upload["content"] and b"0912-345-678" not in upload["content"]
    assert wait_until(lambda: product.store.audit.actions("audit_exported"))  # the export itself is audited


def test_audit_shows_full_numbers_only_when_masking_is_off(make_product):
    product = make_product(mask_numbers=False, approvers=("U_APPROVER", "U_REQUESTER"))
    user = SlackUser(product, "U_REQUESTER")
    user.command("send 0912345678 測試")
    user.command("audit")  # no range: the last 30 days
    [upload] = wait_until(lambda: product.standin.uploads)
    assert [r["recipient"] for r in csv_rows(upload)] == ["0912-345-678"]


def test_audit_by_a_non_approver_is_refused_and_nothing_is_uploaded(product):
    answer = SlackUser(product, "U_REQUESTER").command("audit 7d")
    assert "只有核准者" in all_text(answer.json())
    product.settle()
    assert product.standin.uploads == []


@pytest.mark.parametrize(("typed", "said"), [
    ("2026-13-01 2026-11-30", "「2026-13-01」不是日期"),
    ("2026-11-30 2026-11-01", "結束日期早於開始日期"),
    ("400d", "天數需介於 1 到 366"),
    ("2026-11-01 to 2026-11-30", "最多兩個日期"),
])
def test_audit_with_bad_dates_says_what_is_wrong(product, typed, said):
    answer = SlackUser(product, "U_APPROVER").command(f"audit {typed}")
    text = all_text(answer.json())
    assert said in text and "/sms audit 2026-11-01 2026-11-30" in text
    product.settle()
    assert product.standin.uploads == []


def test_audit_in_a_channel_without_the_bot_tells_how_to_fix_it(product):
    product.standin.add_channel("C_SECRET", "secret", members=["U_APPROVER"], is_member=False)
    approver = SlackUser(product, "U_APPROVER", channel="C_SECRET")
    approver.command("audit 7d")
    text = wait_until(lambda: "\n".join(all_text(e) for e in approver.ephemerals() if "invite" in all_text(e)))
    assert "/invite @every8d-sms" in text and "not_in_channel" in text
    assert product.standin.uploads == []


def test_ranges_are_whole_local_days_with_an_inclusive_end():
    now = datetime(2026, 11, 25, 10, tzinfo=TAIPEI).timestamp()
    november = parse_range("2026-11-01 2026-11-30", now, "Asia/Taipei")
    assert november == DateRange(date(2026, 11, 1), date(2026, 11, 30),
                                 datetime(2026, 11, 1, tzinfo=TAIPEI).timestamp(),
                                 datetime(2026, 12, 1, tzinfo=TAIPEI).timestamp())
    week = parse_range("7d", now, "Asia/Taipei")
    assert (week.first, week.last) == (date(2026, 11, 19), date(2026, 11, 25))
    default = parse_range("", now, "Asia/Taipei")
    assert (default.first, default.last) == (date(2026, 10, 27), date(2026, 11, 25))
    assert isinstance(parse_range("2026-12-01", now, "Asia/Taipei"), Problem)  # in the future


def test_a_10000_recipient_request_streams_into_the_csv(make_product):
    product = make_product()
    numbers = ",".join(f"0912{n:06d}" for n in range(10_000))
    preview = prepare(ComposeInput(kind="sms", recipients_text=numbers, message="大量"), clock=time.time,
                      last_credit=None)
    product.runtime.requests.submit(preview, requester="U_REQUESTER", origin_channel="C_GENERAL")
    rows = product.store.requests.audit_rows(0, time.time() + 60)
    assert not isinstance(rows, list) and next(rows)["e164"] == "+886912000000"  # a generator, not a list
    data = audit_csv(product.store, 0, time.time() + 60, masked=True, timezone="Asia/Taipei")
    assert data.count(b"\r\n") == 10_001 and data.count(b"0912-***-") == 10_000


# -- the weekly report -------------------------------------------------------------------------------


def test_weekly_report_without_matplotlib_is_posted_once_with_the_right_figures(
    make_product, external_sandbox, monkeypatch, caplog
):
    product = scenario(make_product, external_sandbox)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the `report` extra were not installed
    monday = next_monday_9(time.time())
    with caplog.at_level(logging.INFO, logger="every8d_bot.reports"):
        assert product.runtime.weekly_report.run(now=monday) is True
    assert any("matplotlib is not installed" in r.getMessage() for r in caplog.records)

    [post] = product.standin.messages("C_ALERTS")
    text = all_text(post)
    assert "簡訊週報" in text and "發送 3 則" in text and "使用 3.0 點" in text
    assert "送達率 33.3%（已送達 1 · 未送達 1 · 等待回報 1）" in text
    assert "103 無此手機號碼：1 / no such number: 1" in text and "「好」 × 1" in text
    assert "回覆率 33.3%（1 位）· 退訂率 0.0%（0 位）" in text and "reply rate 33.3% (1)" in text
    assert "未安裝 matplotlib" in text
    assert product.standin.uploads == []

    assert product.runtime.weekly_report.run(now=monday + 3600) is False  # the retry tick, same week
    config = product.runtime.config
    again = make_product(every8d_uid=config.every8d_uid, every8d_pwd=config.every8d_pwd,
                         every8d_base_url=config.every8d_base_url, callback_token="")
    assert again.runtime.weekly_report.run(now=monday) is False  # a restart (same database)
    assert len(product.standin.messages("C_ALERTS")) == 1


def test_weekly_report_with_matplotlib_uploads_the_chart_with_the_figures(make_product, external_sandbox):
    pytest.importorskip("matplotlib")
    product = scenario(make_product, external_sandbox)
    assert product.runtime.weekly_report.run(now=next_monday_9(time.time())) is True
    [upload] = product.standin.uploads
    assert upload["channel"] == "C_ALERTS" and upload["name"].endswith(".png")
    assert upload["content"].startswith(b"\x89PNG") and len(upload["content"]) > 5000
    assert "發送 3 則" in upload["initial_comment"] and "未安裝" not in upload["initial_comment"]


def test_a_weekly_report_that_slack_refused_is_posted_at_the_next_tick(make_product, monkeypatch):
    product = make_product()
    monkeypatch.setattr(product.runtime.weekly_report, "chart", lambda report: None)
    product.standin.faults.fail("chat.postMessage", "internal_error")
    monday = next_monday_9(time.time())
    with pytest.raises(Exception, match="internal_error"):
        product.runtime.weekly_report.run(now=monday)
    assert product.runtime.weekly_report.run(now=monday + 3600) is True
    [post] = product.standin.messages("C_ALERTS")
    assert "上週沒有發送簡訊" in all_text(post)


def test_weekly_figures_count_only_that_week(make_product, external_sandbox):
    product = scenario(make_product, external_sandbox)
    start, end, label = previous_week(next_monday_9(time.time()) - 7 * DAY, "Asia/Taipei")  # the week before
    assert end - start == 7 * DAY and datetime.fromtimestamp(start, tz=TAIPEI).weekday() == 0
    assert re.fullmatch(r"\d{4}-W\d{2}", label)
    report = weekly_summary(product.store, start, end, timezone="Asia/Taipei")
    assert (report.messages, report.points, report.replies, report.delivery_rate) == (0, 0.0, 0, None)
    assert [d.day.weekday() for d in report.days] == list(range(7))
    this_week = weekly_summary(product.store, end, end + 7 * DAY, timezone="Asia/Taipei")
    assert sum(d.delivered + d.failed + d.pending for d in this_week.days) == this_week.messages == 3


def test_the_weekly_job_runs_at_the_configured_local_time_and_can_be_turned_off(make_product):
    product = make_product(weekly_report_time="FRI 17:30")
    trigger = product.runtime.scheduler.get_job(WEEKLY_REPORT_JOB).trigger
    assert "day_of_week='fri'" in str(trigger) and "hour='17-23'" in str(trigger) and "minute='30'" in str(trigger)
    assert str(trigger.timezone) == "Asia/Taipei"
    product.stop()
    assert make_product(weekly_report=False).runtime.scheduler.get_job(WEEKLY_REPORT_JOB) is None


# -- App Home ----------------------------------------------------------------------------------------


def test_app_home_shows_credit_forecast_and_pending_with_buttons_for_approvers_only(product):
    now = time.time()
    for days_ago, credit in ((2, 1000.0), (1, 900.0), (0, 800.0)):
        product.store.credit.record(credit, source="poll", now=now - days_ago * DAY)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 待核准的通知")
    product.settle()

    approver_home, requester_home = open_home(product, "U_APPROVER"), open_home(product, "U_REQUESTER")
    for home in (approver_home, requester_home):
        text = all_text(home)
        assert "剩餘點數 800.0 點" in text and "24 小時內 -100.0 點" in text
        assert "每日約用 100.0 點" in text and "約可再用 *8.0 天*" in text
        assert "等待核准* 1" in text and "#1" in text and "待核准的通知" in text
    approve_button = button(approver_home, "approve_request")
    assert approve_button is not None and approve_button["value"] == "1"
    assert button(approver_home, "reject_request") is not None
    assert button(requester_home, "approve_request") is None  # the requester cannot decide


def test_app_home_shows_scheduled_with_cancel_and_recent_batches_with_delivery_rates(make_product, external_sandbox):
    product = scenario(make_product, external_sandbox)
    home = open_home(product, "U_REQUESTER")
    text = all_text(home)
    assert "預約發送* 1" in text and "#2" in text
    cancel = button(home, "cancel_scheduled")
    assert cancel is not None and cancel["value"] == "2"
    assert "2 位 · 已送達 50%（1） · 未送達 1 · 等待回報 0" in text and "delivered 50% (1) · failed 1" in text
    assert "1 位 · 已送達 —（0） · 未送達 0 · 等待回報 0 · 預約中 1" in text  # the scheduled one, not gone out yet
    assert len(home["blocks"]) <= 100
    assert button(open_home(product, "U_OTHER"), "cancel_scheduled") is None  # neither requester nor approver


def test_a_bot_down_for_the_whole_report_day_posts_that_weeks_report_once_when_it_starts(make_product):
    """The report is due Monday 09:00; the bot starts on Wednesday: the catch-up posts last week's report,
    and the next start (or the Monday ticks) posts nothing more."""
    from datetime import datetime

    from bot.scheduler import WEEKLY_CATCH_UP_JOB, last_due

    wednesday = datetime(2026, 11, 25, 15, 0, tzinfo=TAIPEI)
    due = last_due("mon", 9, 0, "Asia/Taipei", wednesday)
    assert due == datetime(2026, 11, 23, 9, 0, tzinfo=TAIPEI)
    assert last_due("mon", 9, 0, "Asia/Taipei", due) == due  # at the due minute itself
    assert last_due("mon", 9, 0, "Asia/Taipei", datetime(2026, 11, 23, 8, 59, tzinfo=TAIPEI)).day == 16

    product = make_product()
    product.runtime.weekly_report.chart = lambda report: None
    product.runtime.scheduler.get_job(WEEKLY_CATCH_UP_JOB).func()  # what runs 30 s after start
    [post] = product.standin.messages("C_ALERTS")
    real_due = last_due("mon", 9, 0, "Asia/Taipei", datetime.now(TAIPEI))
    assert previous_week(real_due.timestamp(), "Asia/Taipei")[2] in all_text(post)
    assert product.runtime.weekly_report.run(now=real_due.timestamp() + 3600) is False  # a later tick: no copy
    assert len(product.standin.messages("C_ALERTS")) == 1
    assert make_product(weekly_report=False).runtime.scheduler.get_job(WEEKLY_CATCH_UP_JOB) is None


def _week_of(counts: list[tuple[int, int, int]]):
    from services.reports import DayCount, WeeklyReport

    first = date(2026, 11, 23)
    days = tuple(DayCount(first + timedelta(days=i), *c) for i, c in enumerate(counts))
    return WeeklyReport(start=0, end=1, label="2026-W48", messages=0, points=0, delivered=0, failed=0, pending=0,
                        failures=(), replies=0, top_replies=(), days=days)


@pytest.mark.parametrize("shape", ["rising", "flat", "one tall day at the end"])
def test_the_charts_legend_never_covers_a_bar_and_its_title_gives_the_dates(shape):
    pytest.importorskip("matplotlib")
    from services.reports import chart_figure

    counts = {"rising": [(n * 10, n, 1) for n in range(7)], "flat": [(40, 5, 5)] * 7,
              "one tall day at the end": [(1, 0, 0)] * 6 + [(900, 30, 12)]}[shape]
    figure = chart_figure(_week_of(counts))
    renderer = figure.canvas.get_renderer()
    axes = figure.axes[0]
    legend = axes.get_legend().get_window_extent(renderer)
    bars = [patch.get_window_extent(renderer) for patch in axes.patches if patch.get_height() > 0]
    assert bars and not any(legend.overlaps(bar) for bar in bars)
    assert figure.get_window_extent(renderer).contains(legend.x1 - 1, legend.y1 - 1)  # not cut off either
    assert axes.get_title() == "SMS per day, 2026-11-23 – 2026-11-29" and "W48" not in axes.get_title()


# -- /sms report -------------------------------------------------------------------------------------


def test_report_by_an_approver_posts_this_periods_figures_where_asked(make_product, external_sandbox):
    product = scenario(make_product, external_sandbox)
    answer = SlackUser(product, "U_APPROVER").command("report 7d")
    assert "正在產生報告" in all_text(answer.json())
    [upload] = wait_until(lambda: product.standin.uploads)
    assert upload["channel"] == "C_GENERAL" and upload["content"].startswith(b"\x89PNG")
    assert "發送 3 則" in upload["initial_comment"] and "好" in upload["initial_comment"]
    [record] = wait_until(lambda: product.store.audit.actions("report_posted"))
    assert record["actor"] == "U_APPROVER"
    # the scheduled report is unaffected: it still posts last week's to the alert channel
    assert product.runtime.weekly_report.run(now=next_monday_9(time.time())) is True


def test_report_without_a_range_is_last_weeks_and_says_so_when_it_was_empty(product, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    SlackUser(product, "U_APPROVER").command("report")
    [post] = wait_until(lambda: product.standin.messages("C_GENERAL"))
    assert "簡訊週報" in all_text(post) and "上週沒有發送簡訊" in all_text(post)


def test_report_by_a_non_approver_or_with_bad_dates_posts_nothing(product):
    assert "只有核准者" in all_text(SlackUser(product, "U_REQUESTER").command("report").json())
    assert "不是日期" in all_text(SlackUser(product, "U_APPROVER").command("report 2026-13-01 2026-11-30").json())
    product.settle()
    assert product.standin.uploads == [] and product.standin.messages("C_GENERAL") == []
