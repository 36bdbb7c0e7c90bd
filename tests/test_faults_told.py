"""States that can stall under a fault, and the person who hears about it in Slack (the watchdog's safety
net, services/watchdog.py): a post Slack refused for good (set aside after a permanent error), and a
recurring send's run the bot cannot create. Each is said once, in the alert channel, with what to do.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from every8d.sandbox import Sandbox
from services.crashpoints import EXIT_CODE
from storage import RequestState
from tests.faults_support import (
    BotProcess,
    card_in,
    open_store,
    request_row,
    restart_safe_port,
    wait_for,
    watchdog,  # noqa: F401 - fixture
)
from tests.harness import SlackUser, all_text
from tests.test_faults_disk import disk, on_disk  # noqa: F401 - fixtures
from tests.test_series import clocked, run_at, start_series  # noqa: F401 - clocked is a fixture

pytestmark = pytest.mark.usefixtures("watchdog")


def drain(product) -> None:
    product.runtime.wait_idle(timeout=30)
    for _ in range(3):
        product.runtime.poster.drain()


def give_up_now(product) -> None:
    """Make every pending post due and deliver, as often as it takes a permanent error to set one aside."""
    for _ in range(4):
        product.runtime.wait_idle(timeout=30)
        due = product.store.outbox.due(now=float("inf"))
        product.store.outbox.retry_now([item.id for item in due])
        product.runtime.poster.drain()


def test_an_approval_card_slack_refuses_for_good_is_said_once_in_the_alert_channel(product) -> None:
    """The bot was removed from the approval channel: the card is refused (not_in_channel) and set aside
    after three tries. The request waits for an approval nobody can see; it used to wait in silence (the
    set-aside post was only counted in /metrics). Now the alert channel hears which post, where and why,
    once however many times the watchdog runs."""
    product.standin.faults.fail("chat.postMessage", "not_in_channel", count=3, channel="C_APPROVALS")
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    give_up_now(product)
    assert product.store.outbox.dead(), "the card should have been set aside"
    assert product.standin.messages("C_APPROVALS") == []
    assert product.store.requests.get(1).state is RequestState.PENDING_APPROVAL

    dog = product.runtime.watchdog
    dog.run()
    drain(product)
    alerts = [all_text(m) for m in product.standin.messages("C_ALERTS")]
    assert len(alerts) == 1, alerts
    assert "C_APPROVALS" in alerts[0] and "not_in_channel" in alerts[0] and "#1" in alerts[0]
    dog.run()
    drain(product)
    assert len(product.standin.messages("C_ALERTS")) == 1



def test_a_weekly_report_slack_refuses_for_good_is_said_in_the_alert_channel(product, monkeypatch) -> None:
    """An install without files:write (the chart is new): every upload of the report is refused with
    missing_scope, so it is set aside and that week's report never comes. The channel itself works, so the
    word about it lands there: which report, and why."""
    from tests.test_reports import next_monday_9

    monkeypatch.setattr(product.runtime.weekly_report, "chart", lambda report: b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    product.standin.faults.fail("files.getUploadURLExternal", "missing_scope", count=3)
    with pytest.raises(Exception, match="missing_scope"):
        product.runtime.weekly_report.run(now=next_monday_9(time.time()))
    give_up_now(product)
    assert [row["kind"] for row in product.store.outbox.dead()] == ["weekly_report"]

    product.runtime.watchdog.run()
    drain(product)
    alerts = [all_text(m) for m in product.standin.messages("C_ALERTS")]
    assert len(alerts) == 1 and "weekly report" in alerts[0] and "missing_scope" in alerts[0], alerts


# -- a recurring send's run the bot cannot create --------------------------------------------------------


def test_a_series_run_that_cannot_be_created_is_said_in_its_thread_and_the_alert_channel(clocked) -> None:  # noqa: F811
    """A series whose stored message the bot cannot read any more (written by another version, or edited
    by hand): each tick failed with only a log line, and an hour later the run was reported "missed, the
    bot was down", which was not why. Now the first failing tick says so once in the series' thread and the
    alert channel, with what to do; the following ticks (still retrying) add nothing."""
    product, clock = clocked()
    first, card = start_series(product, clock)
    with product.store.immediate() as db:
        db.execute("UPDATE series SET payload_json = json_remove(payload_json, '$.message') WHERE id = 1")
    assert run_at(product, clock, first + 5) == []
    assert run_at(product, clock, first + 65) == []
    product.settle()
    thread = [all_text(m) for m in product.standin.thread("C_APPROVALS", card["ts"])]
    said = [t for t in thread if "could not be created" in t]
    assert len(said) == 1, thread
    assert "無法建立" in said[0] and "log" in said[0]
    alerts = [all_text(m) for m in product.standin.messages("C_ALERTS") if "S1" in all_text(m)]
    assert len(alerts) == 1 and "could not be created" in alerts[0], alerts
    assert product.store.requests.get(1) is None


# -- a Workflow Builder step the database cannot take ------------------------------------------------------


def test_a_workflow_step_arriving_on_a_full_disk_is_failed_with_the_reason_not_left_running(
    on_disk, disk  # noqa: F811
) -> None:
    """The disk is full when a workflow asks for a send: the request cannot be written. The step used to be
    left running (the listener's error was only logged; a function event has no one to answer), so the
    user's workflow hung with no word. Now it is failed with the database's reason, and no request exists."""
    from tests.test_workflow_step import STEP, run_step

    product = on_disk()
    product.settle()
    disk.fill()
    try:
        assert run_step(product, STEP, execution_id="FxDISK") == 200
        product.runtime.wait_idle()
        result = wait_for(lambda: product.standin.function_result("FxDISK"), timeout=10, what="the step's end")
        assert result["ok"] is False and "database" in result["error"], result
        assert "Traceback" not in result["error"]
    finally:
        disk.free()
    assert product.store.requests.get(1) is None


# -- a preview confirmed twice: the process killed between the request and the draft's removal -------------


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(delivery_seconds=0.3) as sb:
        yield sb


@pytest.fixture
def bot(standin, sandbox: Sandbox, tmp_path: Path) -> Iterator[BotProcess]:
    process = BotProcess(standin=standin, db_path=tmp_path / "bot.db", every8d_url=sandbox.base_url,
                         workdir=tmp_path, port=restart_safe_port())
    yield process
    process.kill()


def test_a_preview_confirmed_again_after_a_kill_makes_one_request_not_two(bot: BotProcess) -> None:
    """The bot dies after the confirmed preview became a request but before its draft was removed and the
    modal answered: Slack shows the person an error in the still open preview, and they press Send again
    once the bot is back. That made a second request (a second card; auto-approved, a second SMS). Now the
    draft is the request's source: the second press finds request #1 and says it was sent for approval."""
    from tests.test_compose_modal import values

    bot.start(crash_at="after_draft_submitted")
    user = SlackUser(bot, "U_REQUESTER")
    assert user.command("").status_code == 200
    [view] = wait_for(lambda: bot.standin.open_views(user.user_id), timeout=10, what="the compose modal")
    preview = user.submit(view, values(message="明早九點停水通知")).json()["view"]
    assert preview["callback_id"] == "sms_preview"
    with contextlib.suppress(requests.ConnectionError):
        user.submit(preview, {})
    assert bot.wait_exit() == EXIT_CODE, bot.log_tail()
    assert request_row(bot.db_path, 1) is not None

    bot.start()
    again = user.submit(preview, {}).json()
    assert again["response_action"] == "update" and "#1" in all_text(again["view"]), again
    card_in(bot.standin)
    time.sleep(0.5)
    assert request_row(bot.db_path, 2) is None
    assert len(bot.standin.messages("C_APPROVALS")) == 1


def test_a_series_preview_confirmed_again_after_a_kill_makes_one_series_not_two(bot: BotProcess) -> None:
    """The same for a recurring send: a second series would have sent every run twice once approved."""
    from tests.test_series import compose_values

    bot.start(crash_at="after_draft_submitted")
    user = SlackUser(bot, "U_REQUESTER")
    assert user.command("").status_code == 200
    [view] = wait_for(lambda: bot.standin.open_views(user.user_id), timeout=10, what="the compose modal")
    first = int(time.time() // 60 * 60 + 3600)
    preview = user.submit(view, compose_values(first)).json()["view"]
    with contextlib.suppress(requests.ConnectionError):
        user.submit(preview, {})
    assert bot.wait_exit() == EXIT_CODE, bot.log_tail()

    bot.start()
    again = user.submit(preview, {}).json()
    assert again["response_action"] == "update" and "S1" in all_text(again["view"]), again
    card_in(bot.standin)
    time.sleep(0.5)
    with open_store(bot.db_path) as store:
        assert store.series.get(1) is not None and store.series.get(2) is None
    assert len(bot.standin.messages("C_APPROVALS")) == 1


# -- a clock set back by more than the watchdog's window -------------------------------------------------------


def test_a_request_stuck_before_the_clock_was_set_back_hours_is_still_found_by_the_watchdog(product) -> None:
    """An approved request whose send never started, written while the clock ran two hours ahead; then the
    clock is corrected. Its `updated_at` lies in the future, so "not changed for 10 minutes" was not true
    for two hours: the watchdog passed it by in silence. A time further ahead than the window is now read
    as what it is, a clock set back, and the request is sent (once)."""
    sending = product.runtime.sending
    real_send = sending.send
    sending.send = lambda request_id: None  # the send never starts (the process died right after approving)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.settle()
    card = product.standin.messages("C_APPROVALS")[0]
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.runtime.wait_idle(timeout=15)
    sending.send = real_send
    assert product.store.requests.get(1).state is RequestState.APPROVED
    with product.store.immediate() as db:
        db.execute("UPDATE requests SET updated_at = updated_at + 7200 WHERE id = 1")

    dog = product.runtime.watchdog
    dog.stale_seconds = 600
    assert dog.run().restarted == [1]
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=15, what="the send")
    assert len([c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]) == 1


# -- a Workflow Builder step whose process dies before its request is written --------------------------------


def test_a_workflow_step_killed_before_its_request_was_written_is_taken_again_from_slacks_retry(
    bot: BotProcess,
) -> None:
    """The step's event used to be acknowledged before the listener ran: a bot killed before the request
    was written had told Slack "got it", so Slack never sent it again and the user's workflow hung for
    good, with nothing in the database to tell anyone. Here the request cannot be written yet (an admin's
    shell holds the database's write lock) when the bot is killed. Now the event is acknowledged only once
    its request is committed: Slack got no "got it", its retry (the same event) makes the request after
    the restart, and the request's outcome ends the step, once."""
    from slackstandin import payloads as p
    from tests.test_workflow_step import STEP

    body = p.function_executed("send_sms", STEP, execution_id="FxKILL", bot_access_token=bot.standin.bot_token)
    bot.start()
    with open_store(bot.db_path) as shell:
        shell.db.conn.execute("BEGIN IMMEDIATE")  # the write lock, held from outside the bot
        try:
            answer = SlackUser(bot, "U_REQUESTER")._post(body, content_type=p.JSON_TYPE)
            assert answer.status_code != 200, "acknowledged before anything was written: Slack will not retry"
            bot.kill()
        finally:
            shell.db.conn.execute("ROLLBACK")
    assert request_row(bot.db_path, 1) is None

    bot.start()
    assert SlackUser(bot, "U_REQUESTER")._post(body, content_type=p.JSON_TYPE).status_code == 200  # Slack's retry
    card = card_in(bot.standin)
    SlackUser(bot, "U_APPROVER").click("approve_request", "1", message=card)
    result = wait_for(lambda: bot.standin.function_result("FxKILL"), timeout=15, what="the step's end")
    assert result["ok"] is True and result["outputs"]["request_id"] == "1", result
    assert request_row(bot.db_path, 2) is None


def test_a_direct_message_failing_for_long_is_named_as_one_in_the_alert(product) -> None:
    """The requester's direct message keeps failing: the alert named it `<#U_REQUESTER>`, a channel
    mention of a person (Slack shows it as a broken link). It names the person now."""
    product.standin.faults.fail("chat.postMessage", "internal_error", count=1, channel="U_REQUESTER")
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.settle()
    card = product.standin.messages("C_APPROVALS")[0]
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    assert product.store.outbox.pending_count() >= 1  # the direct message waits for its retry
    dog = product.runtime.watchdog
    dog.stale_seconds = 0.3
    time.sleep(0.4)
    assert dog.run().posts
    drain(product)
    alerts = [all_text(m) for m in product.standin.messages("C_ALERTS")]
    assert alerts and all("<#U_REQUESTER>" not in a for a in alerts), alerts
    assert any("<@U_REQUESTER>" in a for a in alerts), alerts


def test_a_workflow_step_slack_says_is_no_longer_running_is_not_reported_as_left_running(product) -> None:
    """Ending a step is retried when its answer was lost (or the bot died before marking it done); the retry
    is answered execution_not_in_running_state, since the first call ended it (or the step timed out in
    Slack, which says so to the workflow's people). That was set aside as a failure, and the alert channel
    now would hear "the step was not ended", which is false. There is nothing left to end: it is done."""
    from tests.test_workflow_step import STEP, run_step

    product.standin.faults.fail("functions.completeSuccess", "execution_not_in_running_state", count=3)
    assert run_step(product, STEP, execution_id="FxGONE") == 200
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=15, what="the send")
    give_up_now(product)
    assert product.store.outbox.dead() == []
    assert product.store.outbox.pending(dedupe_key="workflow:FxGONE") is None
    product.runtime.watchdog.run()
    drain(product)
    assert product.standin.messages("C_ALERTS") == []


# -- the database alarm when Slack also fails --------------------------------------------------------------


def test_the_full_disk_alarm_that_slack_refused_once_is_posted_on_the_next_run(on_disk, disk) -> None:  # noqa: F811
    """The disk fills, and the one direct post that says so meets a Slack error (a 500, a timeout). The
    alarm was counted as said anyway: for the whole outage nobody heard that approvals and sends were on
    hold. It is tried again at each run until Slack takes it, and then said no more."""
    product = on_disk()
    product.settle()
    dog = product.runtime.watchdog
    disk.fill()
    try:
        product.standin.faults.fail("chat.postMessage", "internal_error", count=1, channel="C_ALERTS")
        assert dog.run().database is not None
        assert product.standin.messages("C_ALERTS") == []
        assert dog.run().database is not None
        assert dog.run().database is not None
        alarms = [m for m in product.standin.messages("C_ALERTS") if "資料庫無法寫入" in m["text"]]
        assert len(alarms) == 1, product.standin.messages("C_ALERTS")
    finally:
        disk.free()


def test_a_weekly_report_failing_for_long_is_said_in_the_alert_channel(product, monkeypatch) -> None:
    """The report's chart upload keeps failing (Slack's file service answers errors) while plain messages
    to the alert channel go through. Posts failing in the alert channel were never said (a word there
    "would only fail too"), so the week's report was missing with no word. The report is named now."""
    from tests.test_reports import next_monday_9

    monkeypatch.setattr(product.runtime.weekly_report, "chart", lambda report: b"\\x89PNG\\r\\n\\x1a\\n" + b"0" * 64)
    product.standin.faults.fail("files.getUploadURLExternal", "internal_error", count=2)
    with pytest.raises(Exception, match="internal_error"):
        product.runtime.weekly_report.run(now=next_monday_9(time.time()))
    dog = product.runtime.watchdog
    dog.stale_seconds = 0.3
    time.sleep(0.4)
    assert dog.run().posts
    drain(product)
    alerts = [all_text(m) for m in product.standin.messages("C_ALERTS") if "⚠️" in all_text(m)]
    assert len(alerts) == 1 and "weekly report" in alerts[0] and "internal_error" in alerts[0], alerts


# -- a post that cannot be rendered ----------------------------------------------------------------------------


def test_a_post_that_cannot_be_rendered_holds_back_nothing_else_and_is_said(clocked) -> None:  # noqa: F811
    """A series whose stored rule the bot cannot read any more: its card update raises while being drawn.
    The poster stopped at that row on every pass (the error came before any retry was recorded), so no
    post of any request went out again, and the watchdog saw nothing (no failed attempt on record). Now
    the row is tried again like a refused post, set aside after a few tries and said in the alert channel;
    every other post goes out meanwhile."""
    product, clock = clocked()
    first, card = start_series(product, clock)
    with product.store.immediate() as db:
        db.execute("UPDATE series SET time_of_day = 'bogus' WHERE id = 1")
    SlackUser(product, "U_REQUESTER").click("series_pause", "1", message=card)
    wait_for(lambda: product.store.series.get(1).state == "paused", timeout=10, what="the pause")
    SlackUser(product, "U_OTHER").command("send 0912345678 明早九點停水通知")
    product.runtime.wait_idle(timeout=15)
    for _ in range(3):
        product.runtime.poster.drain()
    assert len(product.standin.messages("C_APPROVALS")) == 2, "the new request's card waited behind the broken one"

    give_up_now(product)
    assert [row["kind"] for row in product.store.outbox.dead()] == ["series_card"]
    product.runtime.watchdog.run()
    drain(product)
    alerts = [all_text(m) for m in product.standin.messages("C_ALERTS")]
    assert len(alerts) == 1 and "ValueError" in alerts[0], alerts


def test_once_the_bot_is_back_in_the_channel_repost_posts_the_set_aside_card(product, monkeypatch, tmp_path) -> None:
    """The alert says what to do, and there is a way to do it: after the bot is put back in the channel,
    `every8d-bot repost` (safe while the bot runs) queues the set-aside posts again. The card goes out, the
    approvers can decide, and a post refused for good again would be said again."""
    from bot.cli import main

    product.standin.faults.fail("chat.postMessage", "not_in_channel", count=3, channel="C_APPROVALS")
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    give_up_now(product)
    product.runtime.watchdog.run()
    drain(product)
    assert "every8d-bot repost" in all_text(product.standin.messages("C_ALERTS")[0])

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_DB_PATH", product.runtime.config.db_path)
    assert main(["repost"]) == 0
    drain(product)
    [card] = product.standin.messages("C_APPROVALS")
    assert product.store.outbox.dead() == []
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=15, what="the send")


def test_when_the_alert_channel_refuses_the_bot_the_approval_channel_hears_it_once(product) -> None:
    """The bot was removed from the alert channel: every alert (the watchdog's words, the database alarm's
    follow-ups, a set-aside post) is itself set aside, and nobody hears anything. The approvers' channel is
    told once a day that alerts cannot be posted and what to do."""
    product.standin.faults.fail("chat.postMessage", "internal_error", count=1, channel="C_APPROVALS")
    product.standin.faults.fail("chat.postMessage", "not_in_channel", count=6, channel="C_ALERTS")
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.settle()
    dog = product.runtime.watchdog
    dog.stale_seconds = 0.3
    time.sleep(0.4)
    assert dog.run().posts  # the card's failure is said... in a channel that refuses the bot
    give_up_now(product)
    assert [row["kind"] for row in product.store.outbox.dead()] == ["alert_note"]

    dog.run()
    drain(product)
    dog.run()
    drain(product)
    said = [all_text(m) for m in product.standin.messages("C_APPROVALS") if "C_ALERTS" in all_text(m)]
    assert len(said) == 1 and "not_in_channel" in said[0] and "/invite" in said[0], said
