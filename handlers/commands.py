"""`/sms` and its subcommands.

    /sms                                   open the compose modal
    /sms send 0912345678,0922333444 訊息    one-line send: checked, then an approval request at once
    /sms send VIP客戶 @生日祝福             the same, with a saved template as the message
    /sms credit                            the balance and its recent trend
    /sms status <batch id | #request id>   a batch's delivery summary
    /sms scheduled                         scheduled sends not yet gone out, with Cancel buttons
    /sms optout [add|remove <number>]      the opt-out list (handlers/optout.py)
    /sms help                              this list (a mistyped word gets the nearest command and this list)

A one-line send inside quiet hours is not submitted at once: the answer asks (two buttons) whether to
schedule it for the next allowed time or send it anyway.

Every answer is ephemeral (only the person who typed sees it). Slack gets its ack at once; anything
that calls EVERY8D runs in the background and answers through the command's response_url.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, ButtonElement

from handlers import cards, modals, reach, shortcuts
from handlers.context import HandlerContext
from handlers.texts import Voice, escape, points, typed_text
from handlers.texts import count as plural
from services.budgets import BudgetVerdict
from services.compose import ComposeInput, Preview, unregistered_texts
from services.drafts import Outcome, Verdict
from services.requests import Submitted
from services.resend import source_event as resend_source_event
from storage import RequestState

log = logging.getLogger("every8d_bot.handlers")

#: action_ids of the quiet-hours question's buttons (value = the kept draft's id).
QUIET_SCHEDULE = "quiet_hours_schedule"
QUIET_OVERRIDE = "quiet_hours_override"

#: `/sms send <numbers> @<template>`: a message that is one word starting with @ names a template.
TEMPLATE_REF = re.compile(r"@\S+")

#: The subcommands this module answers itself (features add theirs to `ctx.subcommands`).
BUILT_IN_WORDS = ("send", "credit", "status", "scheduled", "help", "new", "compose")

#: A token made only of phone-number characters (digits, +, -, parentheses, commas, full-width digits).
_NUMBERISH = re.compile(r"^[0-9０-９+＋\-－()（）,，、;；]+$")


def register(app: App, ctx: HandlerContext) -> None:
    @app.command("/sms")
    def sms_command(ack: Ack, command: dict, client: WebClient, respond: Respond) -> None:
        text = typed_text(command.get("text") or "").strip()
        word, _, rest = text.partition(" ")
        word = word.lower()
        user = command["user_id"]
        channel = command["channel_id"]
        starts_draft = not text or word in ("new", "compose", "send")
        if starts_draft and ctx.policy.card_channel(channel, str(command.get("channel_name") or "")) is None:
            # A direct message without BOT_APPROVAL_CHANNEL: no approver would ever see the card.
            if word == "send":
                ack(**_answer(ctx.voice, *shortcuts.NOWHERE_TO_ASK))
            else:
                ack()
                client.views_open(trigger_id=command["trigger_id"],
                                  view=modals.notice_view(ctx.voice, ctx.voice.t(*shortcuts.NOWHERE_TO_ASK)))
        elif not text or word in ("new", "compose"):
            ack()
            names = ctx.audiences.template_names(modals.MAX_TEMPLATE_OPTIONS)
            client.views_open(trigger_id=command["trigger_id"],
                              view=modals.compose_view(ctx.voice, channel_id=channel, templates=names,
                                                     limits=ctx.limits))
        elif word == "send":
            ack(**one_line_send(ctx, rest, user=user, channel=channel))
            ctx.wake_poster()
            reach.warn_if_card_unreachable(ctx, client, channel, lambda zh, en: respond(
                **_answer(ctx.voice, zh, en), response_type="ephemeral", replace_original=False))
        elif word == "credit":
            ack(text=ctx.voice.t("查詢點數中…", "Checking credit…"))
            ctx.runner(lambda: respond(**credit_answer(ctx, live=True), response_type="ephemeral"))
        elif word == "status":
            ack(text=ctx.voice.t("查詢發送狀態中…", "Checking delivery status…"))
            ctx.runner(lambda: respond(**status_answer(ctx, rest.strip()), response_type="ephemeral"))
        elif word == "scheduled":
            ack(**scheduled_answer(ctx))
        elif word in ctx.subcommands:
            call = SubcommandCall(rest=rest.strip(), user=user, channel=channel,
                                  trigger_id=command.get("trigger_id", ""), client=client, respond=respond)
            ctx.subcommands[word](ack, call)
        elif word == "help":
            ack(**help_answer(ctx.voice))
        else:
            ack(**not_understood_answer(ctx.voice, text, known=(*BUILT_IN_WORDS, *ctx.subcommands)))

    @app.action(QUIET_SCHEDULE)
    def quiet_schedule(ack: Ack, body: dict, respond: Respond) -> None:
        quiet_pressed(ack, body, respond, override=False)

    @app.action(QUIET_OVERRIDE)
    def quiet_override(ack: Ack, body: dict, respond: Respond) -> None:
        quiet_pressed(ack, body, respond, override=True)

    def quiet_pressed(ack: Ack, body: dict, respond: Respond, *, override: bool) -> None:
        ack()
        draft_id = body["actions"][0].get("value", "")
        answer = quiet_hours_choice(ctx, draft_id, body["user"]["id"], override=override)
        respond(**answer, response_type="ephemeral", replace_original=True)
        ctx.wake_poster()


@dataclass(frozen=True)
class SubcommandCall:
    """What a feature's `/sms <word> …` handler gets besides `ack`: the rest of the line and where/who."""

    rest: str
    user: str
    channel: str
    trigger_id: str
    client: WebClient
    respond: Respond


def split_one_line(text: str) -> tuple[str, str]:
    """`0912345678,0922333444 訊息內容` -> (numbers, message). The first word is always the recipients
    (so junk in it is named, not sent as text); further number-like words are recipients too, which
    keeps `0912 345 678 訊息` whole. The phone rules split the numbers on commas and spaces."""
    tokens = text.split(" ")
    numbers = [tokens.pop(0)] if tokens else []
    while tokens and (not tokens[0] or _NUMBERISH.match(tokens[0])):
        token = tokens.pop(0)
        if token:
            numbers.append(token)
    return " ".join(numbers).strip(), " ".join(tokens).strip()


def one_line_send(ctx: HandlerContext, rest: str, *, user: str, channel: str) -> dict:
    voice = ctx.voice
    numbers, message = split_one_line(rest.strip())
    if not numbers:
        return _answer(voice, "請在 send 後面加上手機號碼和內容，例如：`/sms send 0912345678 您好`",
                       "Give numbers and a message after send, e.g. `/sms send 0912345678 Hello`")
    if TEMPLATE_REF.fullmatch(message):
        template = ctx.audiences.template(message[1:])
        if template is None:
            names = "、".join(f"`@{escape(name)}`" for name in ctx.audiences.template_names(10)) \
                or voice.t("（尚無範本）", "(none yet)")
            shown = escape(message[1:40])
            return _answer(voice, f"找不到範本「{shown}」。可用的範本：{names}",
                           f"There is no template \"{shown}\". Templates: {names}")
        message = template.body
    outcome = ctx.drafts.send(ComposeInput(kind="sms", recipients_text=numbers, message=message), requester=user,
                              channel=channel)
    if outcome.verdict is Verdict.SUBMITTED or outcome.verdict is Verdict.DUPLICATE:
        return with_budget_line(voice, submitted_answer(voice, outcome.preview, outcome.submitted), outcome.budget)
    return _not_submitted(voice, outcome)


def _not_submitted(voice: Voice, outcome: Outcome) -> dict:
    """The answer when a send was not submitted: its problems, or the quiet-hours question."""
    assert outcome.preview is not None
    if outcome.verdict is Verdict.ASK:
        assert outcome.quiet_until is not None and outcome.draft_id is not None
        return quiet_hours_question(voice, outcome.preview, outcome.quiet_until, outcome.draft_id)
    return _problems_answer(voice, outcome.preview)


def with_budget_line(voice: Voice, answer: dict, budget: BudgetVerdict | None) -> dict:
    """The answer with what is left of the month's budget, or that it is over (services/budgets.py)."""
    if budget is not None:
        answer["blocks"].insert(1, {"type": "context", "elements": [
            {"type": "mrkdwn", "text": cards.budget_line(voice, budget)}]})
    return answer


def resend_failed_answer(ctx: HandlerContext, request_id: int, *, user: str, channel: str) -> dict:
    """Resend to failed (services/resend.py): the new request, or why there is none; inside quiet hours the
    same question as a one-line send."""
    voice = ctx.voice
    draft = ctx.drafts.resend_draft(request_id)
    if draft is None:
        return _answer(voice, f"申請 #{request_id} 沒有可以重送的收件人（號碼無效或已退訂的不會重送）。",
                       f"Request #{request_id} has nobody to resend to (invalid or opted-out numbers are not resent).")
    outcome = ctx.drafts.send(draft.compose, requester=user, channel=channel,
                              source_event=resend_source_event(request_id))
    if outcome.verdict not in (Verdict.SUBMITTED, Verdict.DUPLICATE):
        return _not_submitted(voice, outcome)
    submitted = outcome.submitted
    assert submitted is not None and outcome.preview is not None
    if submitted.duplicate:
        return _answer(voice, f"已經為申請 #{request_id} 建立過重送申請 #{submitted.request_id}。",
                       f"A resend of #{request_id} was already requested: #{submitted.request_id}.")
    answer = submitted_answer(voice, outcome.preview, submitted)
    if draft.left_out:
        left_out = voice.t(f"另有 {draft.left_out} 位未送達者不會重送（號碼無效、黑名單或沒有回報）。",
                           f"{draft.left_out} other failed recipient{'s' if draft.left_out != 1 else ''} left out "
                           "(invalid, blacklisted, or no report).")
        answer["blocks"].insert(1, {"type": "context", "elements": [{"type": "mrkdwn", "text": left_out}]})
    return answer


def _problems_answer(voice: Voice, preview: Preview) -> dict:
    problems = [voice.t(p.zh, p.en) for p in preview.problems]
    return _answer(voice, "無法送出申請，請修正以下問題後再試：", "The request was not sent; please fix:",
                   extra=[f"• {escape(p)}" for p in problems])  # they quote what was typed


def submitted_answer(voice: Voice, preview: Preview, submitted: Submitted) -> dict:
    """`已送出發送申請 #3（2 位收件人，2.0 點），等待核准。`, with the opted-out numbers left out if any."""
    quote = preview.quote
    assert quote is not None
    zh = f"已送出發送申請 #{submitted.request_id}（{len(preview.recipients.recipients)} 位收件人，{points(quote.points)}），"
    en = f"Send request #{submitted.request_id} ({plural(len(preview.recipients.recipients), 'recipient')}, {quote.points:,.1f} points) "
    if submitted.auto_approved:
        zh += "已自動核准，正在發送。"
        en += "was auto-approved and is being sent."
    else:
        zh += "等待核准。"
        en += "is waiting for approval."
    extra = [cards.optout_line(voice, len(preview.opted_out))] if preview.opted_out else []
    if preview.unregistered:
        found_zh, found_en = unregistered_texts(preview.unregistered)
        extra.append(voice.t(f"⚠️ 內容含未登記的網址或電話：{escape(found_zh)}，台灣電信業者可能攔截。",
                             f"⚠️ Not registered with the carriers: {escape(found_en)}; Taiwan may block this SMS."))
    return _answer(voice, zh, en, extra=extra)


# -- quiet hours (one-line path) ----------------------------------------------------------------------


def quiet_hours_question(voice: Voice, preview: Preview, until: datetime, draft_id: str) -> dict:
    """Nothing is submitted yet: the person chooses to schedule it for `until` or to send anyway. The
    buttons carry the draft's id; only its author can load it."""
    at = f"{until:%H:%M}"
    when = voice.time(until.timestamp())
    count = len(preview.recipients.recipients)
    text, blocks = cards.ephemeral(
        voice,
        f"🌙 現在是勿擾時段，這則簡訊（{count} 位收件人）要預約在 {when} 發送，還是仍要立即發送？",
        f"🌙 This is inside quiet hours. Schedule this SMS ({plural(count, 'recipient')}) for {when}, or send it now anyway?",
    )
    blocks.insert(1, ActionsBlock(block_id=f"quiet:{draft_id}", elements=[
        ButtonElement(text=voice.t(f"預約 {at} 發送", f"Schedule for {at}"), action_id=QUIET_SCHEDULE,
                      value=draft_id, style="primary"),
        ButtonElement(text=voice.t("仍要立即發送", "Send now anyway"), action_id=QUIET_OVERRIDE, value=draft_id),
    ]).to_dict())
    return {"text": text, "blocks": blocks}


def quiet_hours_choice(ctx: HandlerContext, draft_id: str, user: str, *, override: bool) -> dict:
    """A button of `quiet_hours_question` was pressed: the kept draft is submitted, scheduled for the next
    allowed time or flagged as a confirmed override (services/drafts.py `choose_quiet`; a second press, or
    the other button, cannot create a second request)."""
    voice = ctx.voice
    outcome = ctx.drafts.choose_quiet(draft_id, user, override=override)
    if outcome.verdict is Verdict.GONE:
        earlier = ctx.drafts.submitted_from(draft_id, user, quiet_choice=True)  # the first of a double click
        if earlier is not None:
            return _answer(voice, f"已處理過：發送申請 #{earlier.request_id}。",
                           f"Already done: send request #{earlier.request_id}.")
        return _answer(voice, "這個選項已過期或不是您的草稿，請重新輸入 `/sms send`。",
                       "This choice expired or is not yours; type `/sms send` again.")
    assert outcome.preview is not None
    if outcome.verdict is Verdict.INVALID:
        return _problems_answer(voice, outcome.preview)
    assert outcome.submitted is not None
    if outcome.verdict is Verdict.DUPLICATE:
        return _answer(voice, f"已處理過：發送申請 #{outcome.submitted.request_id}。",
                       f"Already done: send request #{outcome.submitted.request_id}.")
    return submitted_answer(voice, outcome.preview, outcome.submitted)


def credit_answer(ctx: HandlerContext, *, live: bool) -> dict:
    voice = ctx.voice
    credit = ctx.credit.check() if live else None
    trend = ctx.credit.trend()
    if credit is None and trend.credit is None:
        return _answer(voice, "目前無法取得點數，EVERY8D 暫時沒有回應，請稍後再試。",
                       "Credit is not available right now: EVERY8D did not answer. Try again later.")
    shown = credit if credit is not None else trend.credit
    zh = f"💰 剩餘點數：{points(shown)}"
    en = f"Credit: {shown:,.1f} points"
    if credit is None:
        zh += f"（{voice.time(trend.at)} 的紀錄；EVERY8D 暫時沒有回應）"
        en += f" (as of {voice.time(trend.at)}; EVERY8D did not answer just now)"
    line = cards.trend_line(voice, trend)
    threshold = ctx.policy.low_credit_threshold
    extra = [line] if line else []
    if shown is not None and shown < threshold:
        extra.append(voice.t(f"⚠️ 低於警戒值 {points(threshold)}", f"⚠️ below the {threshold:,.1f} threshold"))
    return _answer(voice, zh, en, extra=extra)


def status_answer(ctx: HandlerContext, ref: str) -> dict:
    voice = ctx.voice
    if not ref:
        return _answer(voice, "請提供批次代碼或申請編號，例如：`/sms status #12`",
                       "Give a batch id or request number, e.g. `/sms status #12`")
    found = ctx.lookup.status(ref, failures_listed=cards.FAILURES_LISTED)  # reads open batches live
    if found is None:
        shown = escape(ref[:60])  # what was typed, made inert
        return _answer(voice, f"找不到「{shown}」，請確認批次代碼或申請編號。",
                       f"Nothing found for \"{shown}\"; check the batch id or request number.")
    ctx.wake_poster()  # a live read may have queued thread posts
    request = found.request
    if found.summary is None:
        state_en = request.state.value.replace("_", " ")
        return _answer(voice, f"申請 #{request.id} 目前狀態：{_STATE_ZH[request.state]}",
                       f"Request #{request.id} is {state_en}")
    text, blocks = cards.summary_card(voice, found.summary, ctx.clock())
    return {"text": text, "blocks": blocks}


_STATE_ZH = {
    RequestState.PENDING_APPROVAL: "等待核准",
    RequestState.APPROVED: "已核准",
    RequestState.SENDING: "發送中",
    RequestState.SENT: "已送出",
    RequestState.FAILED: "發送失敗",
    RequestState.UNKNOWN: "結果不明",
    RequestState.REJECTED: "已駁回",
    RequestState.CANCELLED: "已取消",
}


def scheduled_answer(ctx: HandlerContext) -> dict:
    voice = ctx.voice
    pending = ctx.lookup.scheduled()  # the same read as App Home's list
    from handlers.series import list_blocks  # recurring sends, with Pause / Resume / Stop

    # A message holds at most 50 blocks: the series get what the scheduled sends leave (3 blocks each).
    series = list_blocks(ctx, shown=(46 - 3 * len(pending[:20])) // 3)
    if not pending:
        answer = _answer(voice, "目前沒有尚未發送的預約簡訊。", "No scheduled sends are waiting.")
        return {**answer, "blocks": [*answer["blocks"], *series]} if series else answer
    blocks: list[dict] = [cards.divider()]
    for request in pending[:20]:
        line = voice.t(
            f"*#{request.id}* {voice.time(request.send_at)} · {request.recipient_count} 位 · {points(request.points)}",
            f"*#{request.id}* {voice.time(request.send_at)} · {plural(request.recipient_count, 'recipient')} · "
            f"{request.points:,.1f} points",
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line}})
        blocks.append(cards.untrusted_block(request.message[:200]).to_dict())
        blocks.append(cards.cancel_button(voice, request.id).to_dict())
    blocks.extend(series)
    blocks.extend(b.to_dict() for b in cards.sandbox_block(voice))
    text = voice.t(f"預約中的簡訊 {len(pending)} 批", f"{len(pending)} scheduled sends")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}}, *blocks]}


def help_answer(voice: Voice) -> dict:
    zh = (
        "*/sms 使用方式*\n"
        "• `/sms` 開啟發送視窗（簡訊或多媒體簡訊、預約、費用預覽）\n"
        "• `/sms send 0912345678,0922333444 訊息內容` 一行送出發送申請\n"
        "• `/sms send VIP客戶 @範本名稱` 以範本為內容（{name} 逐位填入）\n"
        "• `/sms credit` 查詢剩餘點數\n"
        "• `/sms status <批次代碼或 #申請編號>` 查詢發送狀態\n"
        "• `/sms scheduled` 列出預約發送（可取消）\n"
        "• `/sms report`、`/sms report 7d` 立即貼出週報（核准者）\n"
        "• `/sms audit 2026-11-01 2026-11-30` 匯出稽核 CSV（核准者）\n"
        "• `/sms contacts` 通訊錄與群組（新增、移除、匯入 CSV）\n"
        "• `/sms templates` 訊息範本（{name}、{date}，或 CSV 名單的任何欄位）\n"
        "• `/sms optout`、`/sms optout add|remove 0912345678` 退訂名單（增刪限核准者）\n"
        "• `/sms budget`、`/sms budget set #頻道|@某人 5000` 每月點數預算與用量（設定限核准者）\n"
        "• `/sms help` 顯示這份說明"
    )
    en = (
        "*/sms usage*\n"
        "• `/sms` open the compose window (SMS or MMS, scheduling, cost preview)\n"
        "• `/sms send 0912345678,0922333444 message` request a send in one line\n"
        "• `/sms send VIPs @template` with a saved template as the message ({name} filled per recipient)\n"
        "• `/sms credit` show the credit left\n"
        "• `/sms status <batch id or #request>` delivery status\n"
        "• `/sms scheduled` scheduled sends (with Cancel)\n"
        "• `/sms report`, `/sms report 7d` post the weekly report now (approvers)\n"
        "• `/sms audit 2026-11-01 2026-11-30` export the audit CSV (approvers)\n"
        "• `/sms contacts` address book and groups (add, remove, import a CSV)\n"
        "• `/sms templates` message templates ({name}, {date}, or any column of a CSV audience)\n"
        "• `/sms optout`, `/sms optout add|remove 0912345678` the opt-out list (changes: approvers)\n"
        "• `/sms budget`, `/sms budget set #channel|@someone 5000` monthly point budgets and their use (changes: approvers)\n"
        "• `/sms help` this help"
    )
    return _answer(voice, zh, en)


def not_understood_answer(voice: Voice, text: str, *, known: tuple[str, ...]) -> dict:
    """`/sms sned …` or `/sms 0922333444 hi`: say which word was not understood and the nearest command
    (the whole line rewritten when it is a send without `send`), then the usage."""
    word, _, rest = text.partition(" ")
    shown = escape(word[:40])
    if _NUMBERISH.match(word):
        suggestion = f"/sms send {text}"
    else:
        close = difflib.get_close_matches(word.lower(), known, n=1, cutoff=0.6)
        suggestion = f"/sms {close[0]} {rest}".rstrip() if close else ""
    if suggestion:
        shown_suggestion = escape(suggestion[:200])
        zh = f"看不懂「{shown}」。您是要輸入 `{shown_suggestion}` 嗎？"
        en = f"\"{shown}\" is not a /sms command. Did you mean `{shown_suggestion}`?"
    else:
        zh = f"看不懂「{shown}」，可用的指令如下。"
        en = f"\"{shown}\" is not a /sms command. These are:"
    usage = help_answer(voice)
    head, head_blocks = cards.ephemeral(voice, zh, en)
    return {"text": f"{head}\n{usage['text']}", "blocks": [*head_blocks[:1], *usage["blocks"]]}


def _answer(voice: Voice, zh: str, en: str, *, extra: list[str] | None = None) -> dict:
    text, blocks = cards.ephemeral(voice, zh, en, extra=extra or [])
    return {"text": text, "blocks": blocks}
