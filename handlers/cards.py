"""Block Kit for the messages the bot posts: the approval card, the send result, the batch summary,
replies, credit alerts. Built with slack_sdk's block models (they check Slack's limits) and rendered
from the current state, so an update always shows the truth.

Each function returns `(text, blocks)`: `text` is the notification and screen-reader fallback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from every8d.status import Outcome, status_for
from handlers.texts import Voice, clip, count, escape, points, progress_bar
from services.budgets import BudgetUse, BudgetVerdict
from services.credit import Trend
from services.requests import ANSWER_POLICY_APPROVER, AUTO_APPROVER, AUTOREPLY_APPROVER
from services.resend import resendable
from services.summary import RequestSummary
from storage import Batch, BatchState, Delivery, PartState, Reply, RequestPart, RequestState, SendRequest

Rendered = tuple[str, list[dict]]

#: action_ids of the buttons (the listeners in handlers/actions.py match these).
APPROVE = "approve_request"
#: Instead of Approve on a request over a monthly budget: the approver's explicit override.
APPROVE_OVER_BUDGET = "approve_over_budget"
REJECT = "reject_request"
CANCEL_SCHEDULED = "cancel_scheduled"
MARK_SENT = "mark_sent"
RESEND = "resend_request"
RESEND_FAILED = "resend_failed"
ANSWER_REPLY = "answer_reply"  # a reply's Answer button (handlers/conversations.py), value = reply id

#: The largest row id SQLite can hold (a signed 64-bit integer).
MAX_ROW_ID = 2**63 - 1


def clicked_id(body: Mapping) -> int | None:
    """The clicked button's value as the row id our cards put there (a request, series or reply), or None
    for anything else: no value, words, or a number no row can have (SQLite refuses one past 64 bits with
    an error, which would reach the person as an apology and the log as a traceback)."""
    try:
        value = body["actions"][0]["value"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 0 < number <= MAX_ROW_ID else None


#: How many failed recipients a summary lists by number before "and N more".
FAILURES_LISTED = 20
RECIPIENTS_SHOWN = 5


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, 2900))


def _context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[_md(t) for t in texts if t])


def sandbox_block(voice: Voice) -> list[Block]:
    """Every post in sandbox mode says so."""
    if not voice.sandbox:
        return []
    return [_context(voice.t("🧪 沙盒模式：不會真的發送", "sandbox: nothing is delivered"))]


def _done(blocks: Sequence[Block]) -> list[dict]:
    return [b.to_dict() for b in blocks]


def requester_shown(voice: Voice, requester: str) -> str:
    """A person as a mention; the auto-reply rule (not a person) in words."""
    if requester == AUTOREPLY_APPROVER:
        return voice.t("🤖 自動回覆", "🤖 auto-reply")
    return f"<@{requester}>"


def kind_label(voice: Voice, kind: str) -> str:
    return voice.t("多媒體簡訊", "MMS") if kind == "mms" else voice.t("簡訊", "SMS")


def untrusted_block(text: str) -> SectionBlock:
    """Text we did not write (an SMS, a reply) as plain_text: Slack shows it literally, so `<!channel>`,
    `<@U…>`, `*bold*` or links in it stay inert."""
    return SectionBlock(text=PlainTextObject(text=clip(text, 2900) or " ", emoji=False))


# -- the approval card -------------------------------------------------------------------------------


def approval_card(
    voice: Voice, request: SendRequest, recipients_preview: Sequence[str], *, now: float | None = None,
    parts: Sequence[RequestPart] = (), budget: BudgetVerdict | None = None,
) -> Rendered:
    """The request's card. `parts`: its EVERY8D calls (a line shows them when there are several, and a
    personalised message shows one recipient's text as an example). `budget`: the request against its
    month's budgets, shown while it waits; over one, Approve becomes "Approve over budget"."""
    when = (
        voice.t(f"預約發送：{voice.time(request.send_at)}", f"scheduled: {voice.time(request.send_at)}")
        if request.send_at
        else voice.t("立即發送", "send now")
    )
    kind_zh, kind_en = ("多媒體簡訊", "MMS") if request.kind == "mms" else ("簡訊", "SMS")
    title = voice.t(f"{kind_zh}發送申請 #{request.id}", f"{kind_en} send request #{request.id}")
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(f"📨 {title}", 150))),
        SectionBlock(
            fields=[
                _md(f"*{voice.t('申請人', 'Requested by')}*\n{requester_shown(voice, request.requester)}"),
                _md(f"*{voice.t('類型', 'Type')}*\n{kind_label(voice, request.kind)}"),
                _md(f"*{voice.t('時間', 'When')}*\n{when}"),
                _md(f"*{voice.t('有效期限', 'Validity')}*\n{request.validity_minutes} {voice.t('分鐘', 'min')}"),
            ]
        ),
    ]
    if request.subject:
        blocks.append(_context(voice.t(f"主旨：{escape(request.subject)}", f"Subject: {escape(request.subject)}")))
    personalised = next((p.message for p in parts if p.message is not None), None)
    if personalised is not None:
        blocks.append(_context(voice.t("✏️ 個人化訊息：每位收件人的內容不同，以下為第一位的內容",
                                       "✏️ personalised: each recipient gets their own text; the first one is shown")))
    blocks.append(untrusted_block(personalised if personalised is not None else request.message))
    blocks.append(_context(_length_line(voice, request)))
    blocks.append(SectionBlock(text=_md(_recipients_line(voice, request, recipients_preview))))
    blocks.append(SectionBlock(text=_md(_cost_line(voice, request))))
    if len(parts) > 1:
        blocks.append(_context(parts_line(voice, request, parts)))
    pending = request.state is RequestState.PENDING_APPROVAL
    if pending and budget is not None and budget.applies:
        blocks.append(_context(budget_line(voice, budget, card=True)))
    if pending and budget is not None and budget.over:
        blocks.append(over_budget_buttons(voice, request.id))
    else:
        blocks.extend(_card_state(voice, request, now))
    blocks.extend(sandbox_block(voice))
    text = voice.t(
        f"{kind_zh}發送申請 #{request.id}：{request.recipient_count} 位收件人，{points(request.points)}",
        f"Send request #{request.id}: {count(request.recipient_count, 'recipient')}, {request.points:,.1f} points",
    )
    return text, _done(blocks)


def _length_line(voice: Voice, request: SendRequest) -> str:
    if request.kind == "mms":
        image = f" · 🖼 {escape(request.image_name or request.image_type or '')}" if request.image_type else ""
        return voice.t(f"{request.chars} 字{image}", f"{request.chars} characters{image}")
    estimate = voice.t("（超過 333 字，點數為估計）", " (over 333 characters: estimated)") if request.estimate else ""
    return voice.t(
        f"{request.chars} 字 · 每位收件人 {request.parts} 則{estimate}",
        f"{request.chars} characters · {request.parts} part(s) per recipient{estimate}",
    )


def _recipients_line(voice: Voice, request: SendRequest, shown: Sequence[str]) -> str:
    listed = ", ".join(voice.number(n) for n in shown[:RECIPIENTS_SHOWN])
    more = request.recipient_count - min(len(shown), RECIPIENTS_SHOWN)
    if more > 0:
        listed += voice.t(f" 等 {more} 位", f" and {more} more")
    head = voice.t(
        f"*收件人 {request.recipient_count} 位*（台灣 {request.taiwan_count} · 國際 {request.international_count}）",
        f"*{count(request.recipient_count, 'recipient')}* (Taiwan {request.taiwan_count} · international "
        f"{request.international_count})",
    )
    lines = [head, listed]
    skipped = json.loads(request.skipped_json or "[]")
    if skipped:
        reasons = "; ".join(escape(voice.t(s["zh"], s["en"])) for s in skipped[:5])
        extra = len(skipped) - 5
        tail = voice.t(f"…等 {extra} 筆", f"…and {extra} more") if extra > 0 else ""
        lines.append(voice.t(f"⚠️ 略過 {len(skipped)} 筆：", f"⚠️ skipped {len(skipped)}: ") + reasons + tail)
    if request.optout_skipped:
        lines.append(optout_line(voice, request.optout_skipped))
    if request.quiet_override:
        lines.append(voice.t("⚠️ 於勿擾時段發送（已確認）", "⚠️ sent in quiet hours (confirmed)"))
    return "\n".join(lines)


def parts_line(voice: Voice, request: SendRequest, parts: Sequence[RequestPart]) -> str:
    """`📦 分 3 批發送（每批一次 EVERY8D 呼叫）· 已送出 2/3 批`: how the send is cut and how far it got."""
    total = len(parts)
    zh, en = f"📦 分 {total} 批發送（每批一次 EVERY8D 呼叫）", f"📦 sent as {total} parts (one EVERY8D call each)"
    sent = sum(1 for p in parts if p.state in (PartState.SENT, PartState.SKIPPED))
    if request.state is RequestState.PENDING_APPROVAL or (sent == 0 and request.state is RequestState.APPROVED):
        return voice.t(zh, en)
    zh, en = zh + f" · 已送出 {sent}/{total} 批", en + f" · {sent}/{total} sent"
    in_doubt = sum(1 for p in parts if p.state is PartState.UNKNOWN)
    if in_doubt:
        zh, en = zh + f" · {in_doubt} 批結果不明", en + f" · {in_doubt} in doubt"
    not_sent = sum(1 for p in parts if p.state in (PartState.PENDING, PartState.FAILED))
    if not_sent and request.state in (RequestState.FAILED, RequestState.UNKNOWN):
        zh, en = zh + f" · {not_sent} 批未發送", en + f" · {not_sent} not sent"
    return voice.t(zh, en)


def optout_line(voice: Voice, count: int) -> str:
    """`🚫 已退訂略過 3 位`: recipients left out because they asked not to be texted."""
    return voice.t(f"🚫 已退訂略過 {count} 位", f"{count} opted out, skipped")


def _cost_line(voice: Voice, request: SendRequest) -> str:
    line = voice.t(f"*費用* {points(request.points)}", f"*Cost* {request.points:,.1f} points")
    if request.credit_at_request is not None:
        after = request.credit_at_request - request.points
        line += "\n" + voice.t(
            f"目前剩餘 {points(request.credit_at_request)} → 發送後 {points(after)}",
            f"credit now {request.credit_at_request:,.1f} → after {after:,.1f}",
        )
        if after < 0:
            line += "\n" + voice.t(
                f"⚠️ 點數不足，還差 {points(-after)}；請先儲值，否則部分簡訊將無法發送。",
                f"⚠️ Not enough credit: {-after:,.1f} points short; top up first or part of the batch will not be sent.",
            )
    return line


def _card_state(voice: Voice, request: SendRequest, now: float | None) -> list[Block]:
    state = request.state
    by_rule = request.decided_by in (AUTO_APPROVER, ANSWER_POLICY_APPROVER, AUTOREPLY_APPROVER)
    who = f"<@{request.decided_by}>" if request.decided_by and not by_rule else None
    at = voice.clock(request.decided_at)
    if who:
        decided = voice.t(f"✅ 由 {who} 於 {at} 核准", f"approved by {who} at {at}")
    elif request.decided_by == AUTOREPLY_APPROVER:
        decided = voice.t(f"🤖 自動回覆（核准者設定的規則），已於 {at} 發送", f"auto-reply (a rule an approver set), sent at {at}")
    elif request.decided_by == ANSWER_POLICY_APPROVER:
        decided = voice.t(f"✅ 一對一回覆免核准（設定），已於 {at} 核准",
                          f"one-to-one answer: no approval needed (policy), approved at {at}")
    else:
        decided = voice.t(f"✅ 低於自動核准門檻，已於 {at} 自動核准", f"auto-approved at {at} (under the threshold)")
    if state is RequestState.PENDING_APPROVAL:
        return [
            ActionsBlock(
                block_id=f"decide:{request.id}",
                elements=[
                    ButtonElement(text=voice.t("核准", "Approve"), action_id=APPROVE, value=str(request.id),
                                  style="primary"),
                    ButtonElement(text=voice.t("駁回", "Reject"), action_id=REJECT, value=str(request.id),
                                  style="danger"),
                ],
            )
        ]
    if state is RequestState.REJECTED:
        line = voice.t(f"⛔ 由 {who} 於 {at} 駁回", f"rejected by {who} at {at}")
        if request.decision_reason:
            line += voice.t(f"，理由：「{escape(request.decision_reason)}」", f". Reason: \"{escape(request.decision_reason)}\"")
        return [_context(line)]
    lines = [decided]
    if state in (RequestState.APPROVED, RequestState.SENDING):
        lines.append(voice.t("⏳ 發送中…", "sending…"))
    elif state is RequestState.SENT:
        batch = escape(request.batch_id or "")  # EVERY8D's id, or one a push named (reconciliation)
        lines.append(voice.t(f"📤 已送出 · 批次代碼 `{batch}`", f"sent · batch id `{batch}`")
                     if request.batch_id else voice.t("📤 已標記為已送出", "marked as sent"))
    elif state is RequestState.FAILED:
        lines.append(voice.t(f"❌ 發送失敗：{request.error_zh}", f"failed: {request.error_en}"))
    elif state is RequestState.UNKNOWN:
        lines.append(voice.t("❓ 結果不明：不會自動重送，請見討論串", "outcome unknown: not resent automatically, see thread"))
    elif state is RequestState.CANCELLED:
        lines.append(voice.t("🚫 已取消預約", "scheduled send cancelled"))
    blocks: list[Block] = [_context(*lines)]
    if state is RequestState.UNKNOWN:
        blocks.append(unknown_buttons(voice, request.id))
    if state is RequestState.SENT and request.send_at and request.batch_id and (now is None or request.send_at > now):
        blocks.append(cancel_button(voice, request.id))
    return blocks


# -- monthly budgets (services/budgets.py) ------------------------------------------------------------


def budget_line(voice: Voice, verdict: BudgetVerdict, *, card: bool = False) -> str:
    """`本月預算剩餘 1,200.0 點` (and after this request), or `⚠️ 超出本月預算 50.0 點`: the tightest budget
    that applies. On the card, over a budget adds that approving needs the override."""
    tightest = verdict.tightest
    assert tightest is not None
    whose_zh, whose_en = budget_owner(voice, tightest)
    if verdict.over:
        if card:
            return voice.t(f"⚠️ 超出本月預算 {verdict.over_by:,.1f} 點：核准需確認（{whose_zh} 的預算 {tightest.budget.points:,.0f} 點，"
                           f"已用 {tightest.used:,.1f} 點）",
                           f"⚠️ {verdict.over_by:,.1f} points over this month's budget: approving needs an explicit "
                           f"override (budget of {whose_en}: {tightest.budget.points:,.0f}, used {tightest.used:,.1f})")
        return voice.t(f"⚠️ 超出預算 {verdict.over_by:,.1f} 點（{whose_zh} 本月預算剩餘 {max(tightest.left, 0):,.1f} 點），"
                       "需核准者確認才會發送",
                       f"⚠️ {verdict.over_by:,.1f} points over budget ({max(tightest.left, 0):,.1f} left this month of the "
                       f"budget of {whose_en}); an approver must override it")
    after = verdict.left_after or 0.0
    return voice.t(f"💼 本月預算剩餘 {tightest.left:,.1f} 點（{whose_zh}）→ 本次後 {after:,.1f} 點",
                   f"💼 {tightest.left:,.1f} points left of this month's budget ({whose_en}) → {after:,.1f} after this")


def budget_owner(voice: Voice, use: BudgetUse) -> tuple[str, str]:
    """Whose budget: `頻道 <#C1>` / `channel <#C1>`, `<@U1>` / `<@U1>`."""
    key = use.budget.key
    if use.budget.scope == "channel":
        return f"頻道 <#{key}>", f"channel <#{key}>"
    return f"<@{key}>", f"<@{key}>"


def budget_use_line(voice: Voice, use: BudgetUse) -> str:
    """`頻道 <#C1> ▓▓▓░░░░░░░ 30% · 已用 1,500.0 / 5,000 點 · 剩餘 3,500.0 點` (the list and App Home)."""
    whose_zh, whose_en = budget_owner(voice, use)
    bar = progress_bar(min(round(use.used * 10), round(use.budget.points * 10)), round(use.budget.points * 10))
    over = use.used > use.budget.points
    warn_zh = f" · ⚠️ 超出 {use.used - use.budget.points:,.1f} 點" if over else ""
    warn_en = f" · ⚠️ {use.used - use.budget.points:,.1f} over" if over else ""
    return voice.t(f"{whose_zh} `{bar}` 已用 {use.used:,.1f} / {use.budget.points:,.0f} 點 · 剩餘 {max(use.left, 0):,.1f} 點{warn_zh}",
                   f"{whose_en} `{bar}` used {use.used:,.1f} / {use.budget.points:,.0f} points · "
                   f"{max(use.left, 0):,.1f} left{warn_en}")


def over_budget_buttons(voice: Voice, request_id: int, block_id: str = "decide") -> ActionsBlock:
    """A pending request over a budget: "Approve over budget" (the explicit override) and Reject."""
    return ActionsBlock(
        block_id=f"{block_id}:{request_id}",
        elements=[
            ButtonElement(text=voice.t("超出預算仍核准", "Approve over budget"), action_id=APPROVE_OVER_BUDGET,
                          value=str(request_id), style="danger"),
            ButtonElement(text=voice.t("駁回", "Reject"), action_id=REJECT, value=str(request_id)),
        ],
    )


def unknown_buttons(voice: Voice, request_id: int) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"unknown:{request_id}",
        elements=[
            ButtonElement(text=voice.t("已確認送出", "Mark as sent"), action_id=MARK_SENT, value=str(request_id)),
            ButtonElement(text=voice.t("重新發送", "Send again"), action_id=RESEND, value=str(request_id),
                          style="danger"),
        ],
    )


def resend_failed_button(voice: Voice, request_id: int, count: int) -> ActionsBlock:
    """On a finished summary with failures worth another try: a new request for those recipients."""
    return ActionsBlock(
        block_id=f"resend_failed:{request_id}",
        elements=[
            ButtonElement(text=voice.t(f"重送給未送達的 {count} 位", f"Resend to {count} failed"),
                          action_id=RESEND_FAILED, value=str(request_id)),
        ],
    )


def cancel_button(voice: Voice, request_id: int) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"cancel:{request_id}",
        elements=[
            ButtonElement(text=voice.t("取消預約", "Cancel scheduled"), action_id=CANCEL_SCHEDULED,
                          value=str(request_id), style="danger")
        ],
    )


# -- thread posts ------------------------------------------------------------------------------------


def send_result(voice: Voice, request: SendRequest, parts: Sequence[RequestPart] = ()) -> Rendered:
    if request.state in (RequestState.SENT, RequestState.CANCELLED) and request.sent_count is None:
        # Settled without EVERY8D's answer (reconciled from its report, or marked by an approver): no counts.
        lines = [
            voice.t(f"📤 已確認送出 · 批次代碼 `{escape(request.batch_id)}`",
                    f"📤 confirmed sent · batch id `{escape(request.batch_id)}`")
            if request.batch_id
            else voice.t("📤 已標記為已送出", "📤 marked as sent")
        ]
        text = lines[0]
    elif request.state in (RequestState.SENT, RequestState.CANCELLED) and request.batch_id:
        lines = [
            voice.t(f"📤 已送出 {request.sent_count} 則，扣除 {points(request.cost)}，剩餘 {points(request.credit_after)}",
                    f"sent {count(request.sent_count or 0, 'message')}, {request.cost or 0:,.1f} points charged, "
                    f"{request.credit_after or 0:,.1f} left"),
            voice.t(f"批次代碼 `{escape(request.batch_id)}`", f"batch id `{escape(request.batch_id)}`"),
        ]
        if request.send_at:
            lines.append(voice.t(f"🕒 預約於 {voice.time(request.send_at)} 發送",
                                 f"scheduled for {voice.time(request.send_at)}"))
        if request.optout_skipped:
            lines.append(optout_line(voice, request.optout_skipped))
        if request.unsent:
            lines.append(voice.t(
                f"⚠️ 有 {request.unsent} 則因點數不足未發送。請儲值後重新申請發送給未收到的收件人。",
                f"⚠️ {count(request.unsent or 0, 'message')} not sent for lack of credit. Top up, then send a new request "
                "for the recipients who did not get it.",
            ))
        text = lines[0]
    elif request.state is RequestState.UNKNOWN:
        lines = [
            voice.t("❓ 無法確定 EVERY8D 是否收到這次發送。", "❓ We cannot tell whether EVERY8D received this send."),
            voice.t(f"原因：{request.error_zh}", f"Why: {request.error_en}"),
            voice.t("機器人不會自動重送，以免重複發送。若 EVERY8D 回報此批次，會自動確認；"
                    "核准者也可以按「已確認送出」或「重新發送」。",
                    "The bot will not resend on its own, to avoid sending twice. If EVERY8D reports this batch it is "
                    "confirmed automatically; an approver can also press Mark as sent or Send again."),
        ]
        if request.error_note:
            lines.append(voice.note(request.error_note))
        text = lines[0]
    else:
        lines = [voice.t(f"❌ 發送失敗：{request.error_zh}", f"❌ Not sent: {request.error_en}")]
        if request.sent_count:
            lines.append(voice.t(
                f"已送出的部分照常追蹤：{request.sent_count} 則，扣除 {points(request.cost)}。其餘收件人沒有收到；"
                "請依上面的說明處理後，為他們重新申請。",
                f"The parts already sent are tracked as usual: {count(request.sent_count or 0, 'message')}, {request.cost or 0:,.1f} "
                "points. The other recipients got nothing; fix the cause above, then send a new request for them.",
            ))
        else:
            lines.append(voice.t("沒有簡訊被送出，也沒有扣點。請依上面的說明處理後重新申請。",
                                 "Nothing was sent and no points were charged. Fix the cause above, then send a new "
                                 "request."))
        if request.error_note:
            lines.append(voice.note(request.error_note))
        text = lines[0]
    if len(parts) > 1:
        lines.append(parts_line(voice, request, parts))
    blocks: list[Block] = [SectionBlock(text=_md("\n".join(lines)))]
    if request.state is RequestState.UNKNOWN:
        blocks.append(unknown_buttons(voice, request.id))
    blocks.extend(sandbox_block(voice))
    return text, _done(blocks)


def batch_summary(
    voice: Voice,
    request: SendRequest,
    batch: Batch,
    counts: Mapping[int, int],
    failures: Sequence[Delivery],
    now: float,
    *,
    batch_count: int = 1,
    replied: int = 0,
    opted_out: int = 0,
) -> Rendered:
    """`batch` is the lead batch (its state the whole request's); `counts` and `failures` cover all
    `batch_count` batches of the request; `replied` and `opted_out` count the numbers that answered them
    and that opted out by answering (the rates beside the delivery rate)."""
    total = sum(counts.values())
    by_outcome: dict[Outcome, int] = {}
    for code, n in counts.items():
        outcome = status_for(code).outcome
        by_outcome[outcome] = by_outcome.get(outcome, 0) + n
    delivered = by_outcome.get(Outcome.DELIVERED, 0)
    failed = by_outcome.get(Outcome.FAILED, 0)
    scheduled = by_outcome.get(Outcome.SCHEDULED, 0)
    cancelled = by_outcome.get(Outcome.CANCELLED, 0)
    test_mode = by_outcome.get(Outcome.TEST, 0)
    mms_sent = by_outcome.get(Outcome.SENT, 0)
    unknown = {code: n for code, n in counts.items() if status_for(code).outcome is Outcome.UNKNOWN}
    finished = sum(n for code, n in counts.items() if status_for(code).final)
    pending = total - finished - scheduled - sum(unknown.values())
    complete = batch.state is BatchState.COMPLETE
    head = voice.t("📊 發送狀態" + ("（已完成）" if complete else ""), "Delivery status" + (" (complete)" if complete else ""))
    parts = [voice.t(f"已送達 {delivered}", f"delivered {delivered}"),
             voice.t(f"等待回報 {pending}", f"pending {pending}"),
             voice.t(f"未送達 {failed}", f"failed {failed}")]
    if scheduled:
        parts.append(voice.t(f"預約中 {scheduled}", f"scheduled {scheduled}"))
    if cancelled:
        parts.append(voice.t(f"已取消 {cancelled}", f"cancelled {cancelled}"))
    if test_mode:
        parts.append(voice.t(f"測試模式 {test_mode}", f"test mode {test_mode}"))
    if mms_sent:
        parts.append(voice.t(f"已發送 {mms_sent}（多媒體簡訊無送達回報）", f"sent {mms_sent} (MMS reports no delivery)"))
    for code, n in sorted(unknown.items()):  # a code no table knows stays visible as itself
        parts.append(voice.t(f"未知代碼 {code}：{n}", f"unknown code {code}: {n}"))
    lines = [f"*{head}*", f"`{progress_bar(finished, total)}`", " · ".join(parts)]
    sent = total - scheduled - cancelled
    if sent > 0 and (delivered or replied or opted_out):
        lines.append(voice.t(
            f"送達率 {_rate(delivered, sent)} · 回覆率 {_rate(replied, sent)}（{replied} 位）· 退訂率 {_rate(opted_out, sent)}（{opted_out} 位）",
            f"delivery rate {_rate(delivered, sent)} · reply rate {_rate(replied, sent)} ({replied}) · "
            f"opt-out rate {_rate(opted_out, sent)} ({opted_out})"))
    if scheduled and request.send_at:
        lines.append(voice.t(f"🕒 預約於 {voice.time(request.send_at)} 發送", f"scheduled for {voice.time(request.send_at)}"))
    blocks: list[Block] = [SectionBlock(text=_md("\n".join(lines)))]
    if failed:
        blocks.append(SectionBlock(text=_md(_failure_lines(voice, counts, failures, failed))))
    checked = voice.time(batch.last_checked_at or now)
    more_zh, more_en = (f"（共 {batch_count} 批）", f" (+{batch_count - 1} more)") if batch_count > 1 else ("", "")
    batch_id = escape(batch.batch_id)
    blocks.append(_context(voice.t(f"批次代碼 `{batch_id}`{more_zh} · 最後檢查 {checked}",
                                   f"batch id `{batch_id}`{more_en} · last check {checked}")))
    if scheduled and request.state is RequestState.SENT and request.send_at and request.send_at > now:
        blocks.append(cancel_button(voice, request.id))
    retry = resendable(counts) if complete and request.kind == "sms" else 0
    if retry:
        blocks.append(resend_failed_button(voice, request.id, retry))
    blocks.extend(sandbox_block(voice))
    text = voice.t(f"發送狀態：已送達 {delivered} · 等待回報 {pending} · 未送達 {failed}",
                   f"Delivery: {delivered} delivered · {pending} pending · {failed} failed")
    return text, _done(blocks)


def summary_card(voice: Voice, summary: RequestSummary, now: float) -> Rendered:
    """The delivery summary of a request (services/summary.py): thread message and `/sms status` alike."""
    return batch_summary(voice, summary.request, summary.lead, summary.counts, summary.failures, now,
                         batch_count=summary.batch_count, replied=summary.replied, opted_out=summary.opted_out)


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def _failure_lines(voice: Voice, counts: Mapping[int, int], failures: Sequence[Delivery], failed: int) -> str:
    reasons = [
        f"• {escape(status_for(code).label(voice.language))} ({code}): {n}"
        for code, n in sorted(counts.items())
        if status_for(code).outcome is Outcome.FAILED
    ]
    numbers = [
        f"{escape(voice.number(d.mobile))} — {escape(status_for(d.status_code).label(voice.language))}"
        for d in failures[:FAILURES_LISTED]
    ]
    more = failed - len(numbers)
    if more > 0:
        numbers.append(voice.t(f"…另有 {more} 位", f"…and {more} more"))
    return "\n".join([f"*{voice.t('未送達原因', 'Failures by reason')}*", *reasons, "", *numbers])


def reply_post(voice: Voice, reply: Reply, request: SendRequest | None, *, in_thread: bool,
               thread_answers: str = "confirm") -> Rendered:
    sender = escape(voice.number(reply.mobile))  # the number a push named: shown as text, never markup
    when = voice.time(reply.received_at)
    where_zh = where_en = ""
    if not in_thread and request is not None:
        where_zh, where_en = f" · 回覆申請 #{request.id}", f" · replying to request #{request.id}"
    elif not in_thread:
        where_zh, where_en = " · 找不到對應的發送批次", " · no matching batch"
    head = voice.t(f"💬 {sender} 回覆 · {when}{where_zh}", f"reply from {sender} · {when}{where_en}")
    shown = reply.text or voice.t(  # seen by polling only: no push and no getReplyMessage to bring the text
        "（無法取得回覆內容：此帳號未設定 EVERY8D 推送回報，平台也不提供回覆查詢；請管理員設定 EVERY8D_CALLBACK_TOKEN）",
        "(the reply's text is not available: EVERY8D's push is not set up and this platform has no reply lookup; "
        "an admin can set EVERY8D_CALLBACK_TOKEN)")
    blocks: list[Block] = [_context(head), untrusted_block(reply.text) if reply.text else _context(shown)]
    if request is not None:
        blocks.append(answer_button(voice, reply.id))
        if in_thread and thread_answers == "direct":
            blocks.append(_context(voice.t("在此討論串輸入訊息，即以簡訊回覆最新一則回覆的號碼",
                                           "type in this thread to answer the latest reply by SMS")))
        elif in_thread and thread_answers == "confirm":
            blocks.append(_context(voice.t("在此討論串輸入的訊息，會先私下詢問您是否以簡訊傳給最新一則回覆的號碼",
                                           "a message typed in this thread asks you first whether to text it "
                                           "to the latest reply's number")))
    blocks.extend(sandbox_block(voice))
    text = f"{head}: {escape(reply.text) if reply.text else shown}"
    return clip(text, 3000), _done(blocks)


def answer_button(voice: Voice, reply_id: int) -> ActionsBlock:
    """Answer this reply's number (a small form), from the thread or from the replies channel."""
    return ActionsBlock(
        block_id=f"answer:{reply_id}",
        elements=[ButtonElement(text=voice.t("回覆", "Answer"), action_id=ANSWER_REPLY, value=str(reply_id))],
    )


def trend_line(voice: Voice, trend: Trend) -> str:
    """`24 小時內 -120.0 點 · 依近期用量約可再用 3.4 天`, or empty if there is no history yet."""
    bits = []
    if trend.change_24h is not None:
        bits.append(voice.t(f"24 小時內 {trend.change_24h:+,.1f} 點", f"{trend.change_24h:+,.1f} points in 24 h"))
    if trend.days_left is not None:
        bits.append(voice.t(f"依近期用量約可再用 {trend.days_left:,.1f} 天",
                            f"about {trend.days_left:,.1f} days left at the recent rate"))
    if trend.burn_per_day is not None:
        bits.append(voice.t(f"每日約用 {points(trend.burn_per_day)}", f"~{trend.burn_per_day:,.1f} points/day"))
    return " · ".join(bits)


def credit_low(voice: Voice, credit: float, threshold: float, trend_line: str) -> Rendered:
    text = voice.t(f"⚠️ 點數不足：剩餘 {points(credit)}，低於警戒值 {points(threshold)}",
                   f"⚠️ Low credit: {credit:,.1f} points left, below the {threshold:,.1f} threshold")
    blocks: list[Block] = [SectionBlock(text=_md(f"*{text}*"))]
    if trend_line:
        blocks.append(_context(trend_line))
    blocks.append(_context(voice.t("請至 EVERY8D 儲值；點數回復前不會重複提醒。",
                                   "Top up on EVERY8D; no repeat alert until credit recovers.")))
    blocks.extend(sandbox_block(voice))
    return text, _done(blocks)


def credit_recovered(voice: Voice, credit: float) -> Rendered:
    text = voice.t(f"✅ 點數已回復：{points(credit)}", f"✅ Credit recovered: {credit:,.1f} points")
    return text, _done([SectionBlock(text=_md(text)), *sandbox_block(voice)])


def cancel_result(voice: Voice, deleted: int, refunded: float, by: str) -> Rendered:
    text = voice.t(f"🚫 <@{by}> 已取消預約：刪除 {deleted} 則，退回 {points(refunded)}",
                   f"<@{by}> cancelled the scheduled send: {count(deleted, 'message')} removed, {refunded:,.1f} points refunded")
    return text, _done([SectionBlock(text=_md(text)), *sandbox_block(voice)])


def requester_update(voice: Voice, request: SendRequest, event: str) -> Rendered:
    """The requester's private word on their request: decided (with a rejection's reason), sent, failed,
    or in doubt. Names the request and quotes its text's start, since it arrives far from the card."""
    number = f"#{request.id}"
    count = request.recipient_count
    who = f"<@{request.decided_by}>" if request.decided_by and request.decided_by.startswith(("U", "W")) else ""
    if event == "approved":
        zh, en = f"✅ 您的發送申請 {number} 已由 {who} 核准，正在發送。", f"✅ Your send request {number} was approved by {who} and is being sent."
    elif event == "rejected":
        zh, en = f"⛔ 您的發送申請 {number} 已由 {who} 駁回。", f"⛔ Your send request {number} was rejected by {who}."
        if request.decision_reason:
            zh += f"理由：「{escape(request.decision_reason)}」"
            en += f" Reason: \"{escape(request.decision_reason)}\""
    elif event == "sent":
        zh = f"📤 您的發送申請 {number} 已送出（{count} 位收件人，{points(request.cost or 0)}）。送達狀況會更新在核准頻道的討論串。"
        en = (f"📤 Your send request {number} went out ({count} recipient{'s' if count != 1 else ''}, "
              f"{request.cost or 0:,.1f} points). Delivery is tracked in its thread in the approval channel.")
    elif event == "failed":
        zh = f"❌ 您的發送申請 {number} 發送失敗：{request.error_zh or ''}"
        en = f"❌ Your send request {number} failed: {request.error_en or ''}"
    else:
        zh = f"❓ 您的發送申請 {number} 結果不明：EVERY8D 沒有回覆，不會自動重送；核准者會在討論串確認是否已送出。"
        en = (f"❓ Your send request {number}: the outcome is unknown (EVERY8D did not answer). It is not resent "
              "automatically; an approver settles it in its thread.")
    blocks: list[Block] = [SectionBlock(text=_md(voice.lines(zh, en))), untrusted_block(clip(request.message, 200))]
    blocks.extend(sandbox_block(voice))
    return voice.t(zh, en), _done(blocks)


def note(voice: Voice, zh: str, en: str) -> Rendered:
    text = voice.t(zh, en)
    return text, _done([SectionBlock(text=_md(text)), *sandbox_block(voice)])


def ephemeral(voice: Voice, zh: str, en: str, *, extra: Sequence[str] = ()) -> Rendered:
    """A short answer only the person sees (refusals, errors)."""
    text = voice.lines(zh, en)
    blocks: list[Block] = [SectionBlock(text=_md(text))]
    for line in extra:
        blocks.append(_context(line))
    blocks.extend(sandbox_block(voice))
    return voice.t(zh, en), _done(blocks)


def divider() -> dict:
    return DividerBlock().to_dict()
