"""The outbox's posts read through services/posts.py, and the weekly report queued through the outbox by
services/weekly_report.py: claimed once per week (across ticks, restarts and threads), delivered and
retried by the poster like every other post."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers import cards
from handlers.notifications import NotificationRenderer
from handlers.texts import Voice
from services import notices
from services.posts import PostService
from services.reports import WeeklyReport, previous_week
from tests.harness import SlackUser, all_text

TAIPEI = ZoneInfo("Asia/Taipei")
FAKE_PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def next_monday_9(epoch: float) -> float:
    today = datetime.fromtimestamp(epoch, tz=TAIPEI).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime(monday.year, monday.month, monday.day, 9, tzinfo=TAIPEI).timestamp()


def weekly_rows(product) -> list[dict]:
    return product.store.rows("SELECT id, state, channel, ref_json FROM outbox WHERE kind = ?",
                              [notices.WEEKLY_REPORT])


# -- the weekly report through the outbox -------------------------------------------------------------


def test_the_weeks_report_is_queued_once_across_ticks_and_a_restart(make_product):
    product = make_product()
    service = product.runtime.weekly_report.service
    monday = next_monday_9(time.time())
    label = previous_week(monday, "Asia/Taipei")[2]

    item = service.due(now=monday)
    assert item is not None and item.kind == notices.WEEKLY_REPORT and item.channel == "C_ALERTS"
    assert item.ref["label"] == label and item.ref["end"] - item.ref["start"] == 7 * 86400
    assert product.store.settings.get(f"weekly_report:{label}").startswith("queued:")  # claim and post together
    assert service.due(now=monday + 3600).id == item.id  # a later tick finds the same post, queues none
    again = make_product()  # a restart on the same database, before Slack took the post
    assert again.runtime.weekly_report.service.due(now=monday).id == item.id
    assert len(weekly_rows(product)) == 1

    # The poster delivers it like any other post: no tick of the weekly job is needed.
    again.runtime.weekly_report.chart = lambda report: None
    assert again.runtime.poster.drain() >= 1
    [post] = product.standin.messages("C_ALERTS")
    assert "簡訊週報" in all_text(post) and label in all_text(post)
    assert service.due(now=monday + 7200) is None and again.runtime.weekly_report.run(now=monday) is False
    assert make_product().runtime.weekly_report.run(now=monday) is False  # a restart after it went out
    assert [r["state"] for r in weekly_rows(product)] == ["done"]
    assert len(product.standin.messages("C_ALERTS")) == 1


def test_ticks_racing_on_two_threads_queue_one_report(make_product):
    product = make_product()
    monday = next_monday_9(time.time())
    services = [product.runtime.weekly_report.service, make_product().runtime.weekly_report.service]
    found: list = []
    threads = [threading.Thread(target=lambda s=s: found.append(s.due(now=monday))) for s in services * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({item.id for item in found}) == 1 and len(weekly_rows(product)) == 1


def test_a_week_taken_by_an_older_version_is_not_queued_again_unless_its_post_failed(make_product):
    product = make_product()
    service = product.runtime.weekly_report.service
    monday = next_monday_9(time.time())
    label = previous_week(monday, "Asia/Taipei")[2]
    product.store.settings.set(f"weekly_report:{label}", "posted:1764000000")
    assert service.due(now=monday) is None and weekly_rows(product) == []
    product.store.settings.set(f"weekly_report:{label}", "failed")  # Slack refused it, then the upgrade
    assert service.due(now=monday) is not None and len(weekly_rows(product)) == 1


def test_no_alert_channel_queues_nothing(make_product):
    product = make_product()
    service = product.runtime.weekly_report.service
    service.policy = replace(service.policy, alert_channel="")  # BOT_ALERT_CHANNEL and BOT_APPROVAL_CHANNEL unset
    assert product.runtime.weekly_report.run(now=next_monday_9(time.time())) is False
    assert weekly_rows(product) == []


def test_the_chart_goes_as_one_upload_carrying_the_text_and_an_interrupted_upload_is_neither_lost_nor_doubled(
        make_product):
    product = make_product()
    job = product.runtime.weekly_report
    job.chart = lambda report: FAKE_PNG
    monday = next_monday_9(time.time())
    assert job.run(now=monday) is True
    [upload] = product.standin.uploads
    assert upload["channel"] == "C_ALERTS" and upload["content"] == FAKE_PNG
    assert upload["name"].startswith("sms-weekly-") and "簡訊週報" in upload["initial_comment"]

    # Next week's upload reached Slack but its answer was lost (a crash, a 5xx): the poster finds the
    # shared file's message by its name and does not upload it a second time.
    item = product.runtime.weekly_report.service.due(now=monday + 7 * 86400)
    plan = product.runtime.renderer.plan(item)
    product.store.outbox.posting(item.id)
    product.runtime.client.files_upload_v2(channel=plan.channel, initial_comment=plan.text, **plan.upload)
    product.runtime.poster.deliver_now(item.id)
    assert len(product.standin.uploads) == 2
    assert product.store.outbox.pending(item_id=item.id) is None

    # The week after, the upload started but never reached Slack: nothing is found, so it goes out once.
    item = product.runtime.weekly_report.service.due(now=monday + 14 * 86400)
    product.store.outbox.posting(item.id)
    assert product.runtime.poster.deliver_now(item.id) is True
    assert len(product.standin.uploads) == 3 and product.store.outbox.pending(item_id=item.id) is None
    assert len({u["name"] for u in product.standin.uploads}) == 3


# -- posts rendered from the read models ---------------------------------------------------------------


def test_the_approval_card_is_rendered_from_its_read_model_and_its_ts_recorded_through_the_service(product):
    SlackUser(product, "U_REQUESTER").command("send 0912345678,0922333444 讀模型測試")
    posts = product.runtime.posts
    seen = posts.approval_card(1, recipients_shown=1)
    assert seen is not None and seen.request.id == 1 and len(seen.recipients) == 1
    assert [p.part for p in seen.parts] == [p.part for p in product.store.parts.of_request(1)]
    assert posts.approval_card(999, recipients_shown=1) is None

    [item] = [i for i in product.store.outbox.due() if i.kind == notices.APPROVAL_CARD]
    plan = product.runtime.renderer.plan(item)
    full = posts.approval_card(1, recipients_shown=cards.RECIPIENTS_SHOWN)
    text, blocks = cards.approval_card(product.runtime.voice, full.request, full.recipients, now=time.time(),
                                       parts=full.parts, budget=full.budget)
    assert (plan.channel, plan.text) == ("C_APPROVALS", text) and plan.update_ts is None
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    assert posts.request(1).approval_ts == card["ts"]  # recorded by `approval_card_posted`


class _OneWeek:
    """A stand-in for PostService's weekly read: the renderer needs nothing else for this kind."""

    def __init__(self, report: WeeklyReport) -> None:
        self.report = report

    def weekly_report(self, start: float, end: float, label: str) -> WeeklyReport:
        assert (start, end, label) == (self.report.start, self.report.end, self.report.label)
        return self.report


def test_the_weekly_report_post_is_rendered_from_the_read_model_alone():
    report = WeeklyReport(start=0.0, end=604800.0, label="2026-W48", messages=4, points=4.0, delivered=3,
                          failed=1, pending=0, failures=(), replies=0, top_replies=(), days=())
    item = type("Item", (), {"kind": notices.WEEKLY_REPORT, "channel": "C_ALERTS",
                             "ref": {"label": "2026-W48", "start": 0.0, "end": 604800.0}})()
    voice = Voice("both", "Asia/Taipei", True, False)
    text_only = NotificationRenderer(_OneWeek(report), voice, time.time, chart=lambda r: None).plan(item)
    assert text_only.upload is None and text_only.blocks and "發送 4 則" in text_only.text
    assert "送達率 75.0%" in text_only.text and "未安裝 matplotlib" in text_only.text
    with_chart = NotificationRenderer(_OneWeek(report), voice, time.time, chart=lambda r: FAKE_PNG).plan(item)
    assert with_chart.blocks is None and with_chart.upload["content"] == FAKE_PNG
    assert with_chart.upload["filename"] == "sms-weekly-2026-W48.png" and "未安裝" not in with_chart.text


def test_post_service_reads_are_typed_and_none_for_what_is_gone(product):
    posts: PostService = product.runtime.posts
    assert posts.request(42) is None and posts.send_result(42) is None and posts.reply(42) is None
    assert posts.batch_summary("no-such-batch", failures_listed=3) is None and posts.series(42) is None


# -- /sms report and /sms audit: the service records what reached Slack --------------------------------


def test_the_report_service_records_an_export_or_a_post_only_once_slack_took_it(product):
    from services.reports import parse_range

    reports = product.runtime.context.reports
    period = parse_range("7d", time.time(), "Asia/Taipei")

    def refused(content: bytes, rows: int) -> None:
        raise OSError("not_in_channel")

    with pytest.raises(OSError):
        reports.export_audit("U_APPROVER", "C_SECRET", period, refused, masked=True)
    assert product.store.audit.actions("audit_exported") == []
    taken: list[tuple[bytes, int]] = []
    assert reports.export_audit("U_APPROVER", "C_GENERAL", period, lambda c, n: taken.append((c, n)),
                                masked=True) == 0
    assert taken[0][0].startswith("\ufeff".encode()) and taken[0][1] == 0
    [exported] = product.store.audit.actions("audit_exported")
    assert exported["actor"] == "U_APPROVER"

    shown: list[WeeklyReport] = []
    report = reports.post_report("U_APPROVER", "C_GENERAL", period.start, period.end, "7d", shown.append)
    assert shown == [report] and report.messages == 0
    [posted] = product.store.audit.actions("report_posted")
    assert posted["actor"] == "U_APPROVER"
