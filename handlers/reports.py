"""Slack surface of the reports (issue 6): `/sms audit` and the weekly report.

- `/sms audit [from to | Nd]`: approvers only. The answer is acked at once; the CSV is built in the
  background and uploaded to the channel where the command ran (`files_upload_v2`, scope `files:write`).
- `/sms report [from to | Nd]`: approvers only; the figures posted where the command ran.
- The weekly report's message (`report_message`): the outbox renders it (handlers/notifications.py) once
  services/weekly_report.py has queued the week; one Slack call (the chart upload carries the text as its
  comment; without matplotlib, a plain message).

Figures, the CSV and the audit records come from services/reports.py (`ReportService`); this module only
words them and makes the Slack call.
"""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from every8d.problems import Problem
from handlers import cards
from handlers.commands import SubcommandCall
from handlers.context import HandlerContext
from handlers.texts import Voice, clip, count, escape, points
from services.permissions import Action, may
from services.reports import DateRange, WeeklyReport, draw_chart, parse_range, previous_week

log = logging.getLogger("every8d_bot.reports")


def register(app: App, ctx: HandlerContext) -> None:
    """Add `/sms audit` and `/sms report` to the `/sms` dispatcher."""
    ctx.subcommands["audit"] = lambda ack, call: audit_command(ctx, ack, call)
    ctx.subcommands["report"] = lambda ack, call: report_command(ctx, ack, call)


# -- /sms report -------------------------------------------------------------------------------------


def report_command(ctx: HandlerContext, ack: Ack, call: SubcommandCall) -> None:
    """`/sms report [from to | Nd]` (approvers): the weekly report now, in the channel where it was asked.
    Without a range it is last week's, the one the schedule posts (which still posts as usual)."""
    voice = ctx.voice
    if not may(ctx.policy, call.user, Action.EXPORT):
        ack(**_answer(voice, "只有核准者可以產生報告。", "Only approvers can post the report."))
        return
    if call.rest:
        parsed = parse_range(call.rest, ctx.clock(), voice.timezone)
        if isinstance(parsed, Problem):
            ack(**_answer(voice, f"無法產生報告：{parsed.zh}", f"The report was not posted: {parsed.en}"))
            return
        start, end, label = parsed.start, parsed.end, f"{parsed.first} – {parsed.last}"
    else:
        start, end, label = previous_week(ctx.clock(), voice.timezone)
    ack(**_answer(voice, f"正在產生報告 {label}…", f"Preparing the report {label}…"))
    ctx.runner(lambda: _post_report_now(ctx, call, start, end, label, custom=bool(call.rest)))


def _post_report_now(ctx: HandlerContext, call: SubcommandCall, start: float, end: float, label: str, *,
                     custom: bool) -> None:
    def post(report: WeeklyReport) -> None:
        post_report(ctx.voice, call.client, call.channel, report, draw_chart(report), custom=custom)

    try:
        ctx.reports.post_report(call.user, call.channel, start, end, label, post)
    except (SlackApiError, SlackRequestError, OSError) as exc:
        error = exc.response.get("error", "") if isinstance(exc, SlackApiError) else type(exc).__name__
        log.warning("report post to %s failed: %s", call.channel, error)
        call.respond(**_answer(
            ctx.voice, f"無法在這個頻道貼出報告（{error}）。請先邀請機器人加入（`/invite @every8d-sms`），或在機器人所在的頻道執行。",
            f"Could not post the report here ({error}). Invite the bot (`/invite @every8d-sms`) or run it in a "
            "channel the bot is in.",
        ), response_type="ephemeral")


# -- /sms audit --------------------------------------------------------------------------------------


def audit_command(ctx: HandlerContext, ack: Ack, call: SubcommandCall) -> None:
    """Refuse non-approvers and explain a bad range in the ack; otherwise ack and export in the background."""
    voice = ctx.voice
    if not may(ctx.policy, call.user, Action.EXPORT):
        ack(**_answer(voice, "只有核准者可以匯出稽核紀錄。", "Only approvers can export the audit log."))
        return
    parsed = parse_range(call.rest, ctx.clock(), voice.timezone)
    if isinstance(parsed, Problem):
        ack(**_answer(voice, f"無法匯出稽核紀錄：{parsed.zh}", f"The audit log was not exported: {parsed.en}"))
        return
    ack(**_answer(voice, f"正在產生 {parsed.first} 至 {parsed.last} 的稽核紀錄 CSV…",
                  f"Preparing the audit CSV for {parsed.first} to {parsed.last}…"))
    ctx.runner(lambda: export_audit(ctx, call, parsed))


def export_audit(ctx: HandlerContext, call: SubcommandCall, period: DateRange) -> None:
    """Upload the CSV (built by the service, which records who exported what once it is in Slack) where the
    command ran; if Slack refuses the upload (the bot is not in that channel), tell the person how to fix it."""
    voice = ctx.voice
    filename = f"sms-audit-{period.first:%Y%m%d}-{period.last:%Y%m%d}.csv"

    def upload(content: bytes, rows: int) -> None:
        comment = voice.t(f"<@{call.user}> 匯出的稽核紀錄：{period.first} 至 {period.last}，共 {rows} 筆收件紀錄。",
                          f"Audit log exported by <@{call.user}>: {period.first} to {period.last}, {rows} recipient "
                          "rows.")
        call.client.files_upload_v2(channel=call.channel, filename=filename, content=content, title=filename,
                                    initial_comment=comment)

    try:
        ctx.reports.export_audit(call.user, call.channel, period, upload, masked=voice.mask_numbers)
    except (SlackApiError, SlackRequestError, OSError) as exc:
        error = exc.response.get("error", "") if isinstance(exc, SlackApiError) else type(exc).__name__
        log.warning("audit CSV upload to %s failed: %s", call.channel, error)
        call.respond(**_answer(
            voice, f"無法上傳 CSV 到這個頻道（{error}）。請先邀請機器人加入（`/invite @every8d-sms`），或在機器人所在的頻道執行。",
            f"Could not upload the CSV here ({error}). Invite the bot (`/invite @every8d-sms`) or run it in a "
            "channel the bot is in.",
        ), response_type="ephemeral")


def _answer(voice: Voice, zh: str, en: str) -> dict:
    text, blocks = cards.ephemeral(voice, zh, en)
    return {"text": text, "blocks": blocks}


# -- the report as a message ------------------------------------------------------------------------


def report_message(voice: Voice, report: WeeklyReport, chart: bytes | None, *,
                   custom: bool = False) -> tuple[str, list | None, dict | None]:
    """The report as one Slack call: (text, blocks, upload). With a chart, `upload` holds
    `files_upload_v2`'s file arguments and the text goes as its comment, so a retry never leaves half a
    report; without one, `blocks` make a plain message."""
    text = weekly_text(voice, report, chart_missing=chart is None, custom=custom)
    if chart is None:
        return text, [SectionBlock(text=MarkdownTextObject(text=text)).to_dict()], None
    name = re.sub(r"[^0-9A-Za-z-]+", "-", report.label).strip("-")
    return text, None, {
        "filename": f"sms-weekly-{name}.png", "content": chart,
        "title": voice.t(f"簡訊週報 {report.label}", f"SMS weekly report {report.label}"),
        "alt_txt": f"SMS per day, {report.label}: delivered, failed and pending messages",
    }


def post_report(voice: Voice, client: WebClient, channel: str, report: WeeklyReport, chart: bytes | None, *,
                custom: bool = False) -> None:
    """`/sms report`'s post, made at once where it was asked (its failure is answered to the person)."""
    text, blocks, upload = report_message(voice, report, chart, custom=custom)
    if upload is None:
        client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
        return
    client.files_upload_v2(channel=channel, initial_comment=text, **upload)


def weekly_text(voice: Voice, report: WeeklyReport, *, chart_missing: bool, custom: bool = False) -> str:
    """The report as mrkdwn (the message text, or the chart's comment). Reply texts are escaped: they are
    what strangers typed, and must not mention anyone or form links."""
    lines = [voice.t(f"📊 *簡訊週報* {report.label}", f"📊 *SMS weekly report* {report.label}")]
    if not report.messages:
        lines.append(voice.t("這段期間沒有發送簡訊。", "No messages were sent in this period.") if custom
                     else voice.t("上週沒有發送簡訊。", "No messages were sent last week."))
    else:
        rate = f"{100 * (report.delivery_rate or 0):.1f}%"
        lines += [
            "• " + voice.t(f"發送 {report.messages:,} 則 · 使用 {points(report.points)}",
                           f"{count(report.messages, 'message')} · {report.points:,.1f} points"),
            "• " + voice.t(f"送達率 {rate}（已送達 {report.delivered:,} · 未送達 {report.failed:,} · "
                           f"等待回報 {report.pending:,}）",
                           f"delivery rate {rate} ({report.delivered:,} delivered · {report.failed:,} failed · "
                           f"{report.pending:,} pending)"),
            "• " + voice.t(f"回覆率 {100 * (report.reply_rate or 0):.1f}%（{report.repliers:,} 位）· "
                           f"退訂率 {100 * (report.optout_rate or 0):.1f}%（{report.optouts:,} 位）",
                           f"reply rate {100 * (report.reply_rate or 0):.1f}% ({report.repliers:,}) · "
                           f"opt-out rate {100 * (report.optout_rate or 0):.1f}% ({report.optouts:,})"),
        ]
    if report.failures:
        lines.append(voice.t("*未送達原因*", "*Failures by reason*"))
        lines += [f"• {f.code} {voice.t(f'{f.zh}：{f.count:,}', f'{f.en}: {f.count:,}')}" for f in report.failures]
    if report.top_replies:
        lines.append(voice.t(f"*常見回覆*（共 {report.replies:,} 則）", f"*Top replies* ({report.replies:,} in all)"))
        lines += [f"• 「{escape(clip(r.text, 80))}」 × {r.count:,}" for r in report.top_replies]
    if chart_missing:
        lines.append(voice.t("（未附圖表：未安裝 matplotlib，可安裝 `every8d-slack-bot[report]`）",
                             "(no chart: matplotlib is not installed; install `every8d-slack-bot[report]`)"))
    if voice.sandbox:
        lines.append(voice.t("🧪 沙盒模式：不會真的發送", "sandbox: nothing is delivered"))
    return clip("\n".join(lines), 2900)
