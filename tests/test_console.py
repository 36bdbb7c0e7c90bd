"""`every8d-bot console`: the demo scenario passes as a test, a failing step fails the script and names
its line, Block Kit reads as text with numbered buttons, and a modal shows the app's inline errors.

Every run here is the real product (Bolt app, store, scheduler, sandbox) behind the Slack stand-in, in
sandbox mode (`env={}`: no token, no account)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.console import run_console
from bot.console_modal import FillError, Modal, fill
from bot.console_render import ButtonBook, Container, mrkdwn, render_blocks

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.console"
TAIPEI = ZoneInfo("Asia/Taipei")


def run_script(tmp_path: Path, text: str) -> tuple[int, str]:
    script = tmp_path / "scenario.console"
    script.write_text(text, encoding="utf-8")
    out = io.StringIO()
    return run_console(str(script), env={}, out=out), out.getvalue()


# -- whole scenarios ----------------------------------------------------------------------------------


def test_demo_scenario_passes_compose_approval_delivery_reply_and_low_credit_alert():
    out = io.StringIO()
    assert run_console(str(DEMO), env={}, out=out) == 0
    shown = out.getvalue()
    assert "沙盒模式" in shown.splitlines()[0] or "sandbox mode" in shown.splitlines()[0]
    assert "[1] 核准 / Approve ✔   [2] 駁回 / Reject ✖" in shown  # the card's buttons, numbered
    posted = [line for line in shown.splitlines() if "│" in line]  # what the bot showed, not what was typed
    assert any("0912-***-678" in line for line in posted)
    assert not any("0912345678" in line for line in posted)  # numbers are masked in every post
    assert "已送達 2 / delivered 2" in shown  # the delivery summary, edited in place
    assert "✎ updated" in shown
    assert "#sms-replies" in shown and "> 收到，謝謝！" in shown  # the reply, in the thread and the channel
    assert "#sms-alerts" in shown and "點數不足：剩餘 120.0 點" in shown
    assert "是市話" in shown  # the modal's inline error under its field
    assert "(refused, as expected" in shown
    assert shown.rstrip().endswith("steps")
    assert "✓ script passed" in shown


@pytest.mark.parametrize("script", sorted(p.name for p in DEMO.parent.glob("*.console") if p != DEMO))
def test_other_example_scripts_pass(script):
    out = io.StringIO()
    assert run_console(str(DEMO.parent / script), env={}, out=out) == 0, out.getvalue()


def test_a_failing_expectation_fails_the_script_and_names_its_line(tmp_path):
    code, shown = run_script(tmp_path, "# a comment\n/sms credit\n/wait-for 0.5s something-that-never-appears\n"
                                       "/sms help\n")
    assert code == 1
    assert "line 3 failed" in shown and "something-that-never-appears" in shown
    assert "/sms 使用方式" not in shown  # nothing after the failed step ran


def test_unknown_command_and_a_refusal_fail_the_step_unless_marked(tmp_path):
    code, shown = run_script(tmp_path, "/sms send 0912345678 測試\n/press 核准\n")
    assert code == 1
    assert "line 2 failed" in shown and "只有核准者" in shown  # the requester is not an approver

    code, shown = run_script(tmp_path, "/sms send 0912345678 測試\n! /press 核准\n! /expect 已送達\n/frobnicate\n")
    assert code == 1
    assert "line 4 failed" in shown and "unknown command /frobnicate" in shown


def test_a_step_marked_refused_fails_when_the_bot_accepts_it(tmp_path):
    code, shown = run_script(tmp_path, "! /sms send 0912345678 測試\n")
    assert code == 1
    assert "line 1 failed" in shown and "expected this step to be refused" in shown


def test_modal_shows_the_apps_inline_error_and_a_fixed_field_submits(tmp_path):
    code, shown = run_script(tmp_path, "/sms\n/fill recipients 02-2345-6789\n/fill message 您好\n/submit\n")
    assert code == 1
    assert "line 4 failed" in shown and "the app refused the submission: recipients" in shown
    assert "⚠ 有 1 筆收件人無法使用" in shown  # shown under the Recipients field of the redrawn modal

    code, shown = run_script(tmp_path, "/sms\n/fill recipients 02-2345-6789\n/fill message 您好\n! /submit\n"
                                       "/fill recipients 0912345678\n/fill validity 60\n/submit\n/expect 確認 Confirm\n"
                                       "/submit\n/expect 已送出申請 #1\n/wait-for 5s 發送申請 #1\n")
    assert code == 0, shown
    assert "1 位 / 1 recipients" in shown or "收件人 1 位" in shown


def test_compose_window_switches_to_mms_and_takes_an_image_file(tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    code, shown = run_script(tmp_path, "/sms\n/fill kind mms\n/expect 圖片 / Image\n/fill recipients 0912345678\n"
                                       "/fill message 您好\n/fill subject 通知\n/fill image photo.png\n/submit\n"
                                       "/expect 含圖片\n/expect 費用 3.0 點\n")
    assert code == 0, shown
    assert "mms (多媒體簡訊 / MMS)" in shown and "📎 photo.png" in shown


def test_interactive_prompt_reads_lines_until_end_of_input():
    out = io.StringIO()
    code = run_console(env={}, out=out, stdin=io.StringIO("/sms credit\n/as U_NOBODY\n/users\n"))
    shown = out.getvalue()
    assert code == 0
    assert "sandbox mode" in shown and "/sms send 0912345678" in shown  # the banner and its examples
    assert "剩餘點數：1,000.0 點" in shown
    assert "✗ no user 'U_NOBODY'" in shown  # a mistake is said, and the console goes on
    assert "U_APPROVER     Lin Approver     approver" in shown


def test_missing_script_is_exit_code_2(tmp_path):
    out = io.StringIO()
    assert run_console(str(tmp_path / "nope.console"), env={}, out=out) == 2
    assert "cannot read the script" in out.getvalue()


# -- rendering ------------------------------------------------------------------------------------------

CARD = [
    {"type": "header", "text": {"type": "plain_text", "text": "📨 發送申請 #1"}},
    {"type": "section", "fields": [{"type": "mrkdwn", "text": "*申請人*\n<@U_REQUESTER>"}]},
    {"type": "section", "text": {"type": "plain_text", "text": "<!channel> *literal*"}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "0912-***-678 &amp; <#C_ALERTS|sms-alerts>"}]},
    {"type": "actions", "block_id": "decide:1", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "核准"}, "action_id": "approve_request",
         "value": "1", "style": "primary"},
        {"type": "button", "text": {"type": "plain_text", "text": "駁回"}, "action_id": "reject_request",
         "value": "1", "style": "danger"}]},
]


def test_card_renders_as_text_with_numbered_buttons():
    book = ButtonBook()
    number = book.register(Container("msg:C:1", "message", {}), CARD)
    lines = render_blocks(CARD, number)
    assert lines == [
        "▌ 📨 發送申請 #1",
        "• 申請人: @U_REQUESTER",
        "> <!channel> *literal*",  # plain_text (an SMS, a reply) is shown literally
        "· 0912-***-678 & #sms-alerts",
        "[1] 核准 ✔   [2] 駁回 ✖",
    ]


def test_button_numbers_stay_while_shown_and_label_finds_the_newest_live_one():
    book = ButtonBook()
    first = Container("msg:C:1", "message", {})
    book.register(first, CARD)
    book.register(Container("msg:C:2", "message", {}), [{**CARD[-1], "block_id": "decide:2"}])
    book.register(first, CARD)  # edited in place, same buttons: same numbers
    assert book.get(1).action_id == "approve_request" and book.get(3).block_id == "decide:2"
    assert book.find("核准", "U_ANYONE").number == 3
    assert book.find("reject_request", "U_ANYONE").number == 4
    book.register(Container("msg:C:2", "message", {}), CARD[:2])  # its buttons were replaced by a line
    assert not book.get(3).live and book.find("核准", "U_ANYONE").number == 1
    book.register(Container("eph:9", "ephemeral", {}, owner="U_OTHER"),
                  [{**CARD[-1], "block_id": "decide:9"}])
    assert book.find("核准", "U_ANYONE").number == 1  # someone else's ephemeral button is not visible


def test_mrkdwn_keeps_masked_numbers_and_reads_links():
    assert mrkdwn("*費用* 2.0 點 · 0912-***-678, 0922-***-444") == "費用 2.0 點 · 0912-***-678, 0922-***-444"
    assert mrkdwn("<https://example.com|the docs> <!here>") == "the docs (https://example.com) @here"


# -- filling modal fields ------------------------------------------------------------------------------


def _input(block_id: str, element: dict) -> dict:
    return {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": block_id},
            "element": {"action_id": "value", **element}}


def test_fill_turns_typed_text_into_the_element_state_slack_sends():
    def no_upload(path):
        raise AssertionError("no upload expected")

    entry, shown = fill(_input("send_at", {"type": "datetimepicker"}), "2026-12-01 09:00", tz=TAIPEI,
                        upload=no_upload)
    nine_in_taipei = int(datetime(2026, 12, 1, 1, 0, tzinfo=UTC).timestamp())
    assert entry == {"value": {"type": "datetimepicker", "selected_date_time": nine_in_taipei}}
    assert shown == "2026-12-01 09:00 (Asia/Taipei)"
    kind = _input("kind", {"type": "radio_buttons", "options": [
        {"text": {"type": "plain_text", "text": "簡訊"}, "value": "sms"},
        {"text": {"type": "plain_text", "text": "多媒體簡訊"}, "value": "mms"}]})
    assert fill(kind, "多媒體簡訊", tz=TAIPEI, upload=no_upload)[0]["value"]["selected_option"]["value"] == "mms"
    entry, _ = fill(_input("recipients", {"type": "plain_text_input"}), "0912\\n0922", tz=TAIPEI,
                    upload=no_upload)
    assert entry["value"]["value"] == "0912\n0922"
    with pytest.raises(FillError, match="choose one of: sms, mms"):
        fill(kind, "fax", tz=TAIPEI, upload=no_upload)
    with pytest.raises(FillError, match="whole number"):
        fill(_input("validity", {"type": "number_input"}), "1.5", tz=TAIPEI, upload=no_upload)
    with pytest.raises(FillError, match=r"\+2h"):
        fill(_input("send_at", {"type": "datetimepicker"}), "tomorrow", tz=TAIPEI, upload=no_upload)


def test_unfilled_inputs_submit_their_initial_values():
    modal = Modal({"id": "V1", "blocks": [
        _input("subject", {"type": "plain_text_input", "initial_value": "週報"}),
        _input("message", {"type": "plain_text_input"}),
    ]})
    modal.filled["message"] = {"value": {"type": "plain_text_input", "value": "hi"}}
    assert modal.state_values() == {
        "subject": {"value": {"type": "plain_text_input", "value": "週報"}},
        "message": {"value": {"type": "plain_text_input", "value": "hi"}},
    }


def test_the_prompt_keeps_runs_quiet_hours_and_says_them():
    out = io.StringIO()
    assert run_console(env={}, out=out, stdin=io.StringIO("/users\n")) == 0
    assert "quiet hours 12:30-13:30,21:00-08:00 (Asia/Taipei)" in out.getvalue()


def test_a_script_plays_without_quiet_hours_unless_set_and_says_so(tmp_path):
    code, shown = run_script(tmp_path, "/users\n")
    assert code == 0 and "quiet hours off in scripts" in shown
    script = tmp_path / "night.console"
    script.write_text("/users\n", encoding="utf-8")
    out = io.StringIO()
    assert run_console(str(script), env={"BOT_QUIET_HOURS": "00:00-23:59"}, out=out) == 0
    assert "quiet hours 00:00-23:59" in out.getvalue()


def test_a_file_the_bot_uploads_is_saved_and_its_path_printed(tmp_path):
    script = tmp_path / "audit.console"
    script.write_text("/sms send 0912345678 稽核測試\n/as U_APPROVER\n/press 核准\n/wait-for 10s 已送達\n"
                      "/sms audit 7d\n/wait-for 10s sms-audit-\n", encoding="utf-8")
    out = io.StringIO()
    code = run_console(str(script), env={}, out=out, files_dir=tmp_path / "files")
    shown = out.getvalue()
    assert code == 0, shown
    [saved] = (tmp_path / "files").iterdir()
    assert saved.suffix == ".csv" and str(saved) in shown
    assert "0912-***-678" in saved.read_text(encoding="utf-8-sig")


def test_report_now_in_the_console_shows_the_report_and_saves_its_chart(tmp_path):
    script = tmp_path / "report.console"
    script.write_text("/as U_APPROVER\n/sms report\n/wait-for 10s 📎 簡訊週報\n",
                      encoding="utf-8")
    out = io.StringIO()
    assert run_console(str(script), env={}, out=out, files_dir=tmp_path / "files") == 0, out.getvalue()
    [chart] = (tmp_path / "files").iterdir()
    assert chart.read_bytes().startswith(b"\x89PNG")
