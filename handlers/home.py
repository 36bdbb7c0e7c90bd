"""App Home: the credit and how long it will last, what waits for approval, scheduled sends, and how
recent batches were delivered, at a glance.

Approvers get Approve / Reject on pending requests (not on their own unless self-approval is allowed)
and the reports kept aside for unknown batches; the requester or an approver gets Cancel on a scheduled
send. Each section shows a bounded number of items, so the view stays within Slack's 100 blocks.
"""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient
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
from slack_sdk.models.views import View

from every8d.status import Outcome, status_for
from handlers import budgets, cards
from handlers.context import HandlerContext
from handlers.texts import Voice, clip, count, escape, points
from services.permissions import Action, may
from storage import Batch

#: Items shown per section (pending: up to 3 blocks each, scheduled: 2, batches: 1).
PENDING_SHOWN = 10
SCHEDULED_SHOWN = 10
BATCHES_SHOWN = 10
HOME_BLOCK_LIMIT = 100


def register(app: App, ctx: HandlerContext) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict, client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        client.views_publish(user_id=event["user"], view=home_view(ctx, event["user"]))


def home_view(ctx: HandlerContext, user_id: str) -> dict:
    """The Home tab as this user sees it (buttons depend on who they are)."""
    voice = ctx.voice
    blocks: list[Block] = [HeaderBlock(text=voice.t("EVERY8D 簡訊", "EVERY8D SMS")), *_credit(ctx)]
    blocks += budgets.home_section(ctx)
    blocks += _pending(ctx, user_id)
    blocks += _scheduled(ctx, user_id)
    blocks += _series(ctx, user_id)
    blocks += _recent_batches(ctx)
    if may(ctx.policy, user_id, Action.MANAGE_LISTS):  # kept reports are the approvers' to review
        blocks += _unmatched_reports(ctx)
    tail = cards.sandbox_block(voice)
    blocks = blocks[: HOME_BLOCK_LIMIT - len(tail)] + tail
    return View(type="home", blocks=blocks).to_dict()


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 2900)))


def _note(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(t, 2900)) for t in texts])


def _heading(text: str) -> list[Block]:
    return [DividerBlock(), _md(text)]


def _credit(ctx: HandlerContext) -> list[Block]:
    """Balance, its 24-hour change, the burn rate and the days it lasts at that rate."""
    voice = ctx.voice
    trend = ctx.credit.trend()
    if trend.credit is None:
        return [_md(voice.t("💰 尚無點數紀錄（每次發送後與定期查詢時更新）",
                            "💰 No credit reading yet (read after each send and on a schedule)"))]
    headline = voice.t(f"💰 *剩餘點數 {points(trend.credit)}*", f"💰 *Credit {trend.credit:,.1f} points*")
    if trend.credit < ctx.policy.low_credit_threshold:
        headline += voice.t(f"　⚠️ 低於警戒值 {points(ctx.policy.low_credit_threshold)}",
                            f"  ⚠️ below the {ctx.policy.low_credit_threshold:,.1f} threshold")
    bits = [voice.t(f"更新於 {voice.time(trend.at)}", f"as of {voice.time(trend.at)}")]
    if trend.change_24h is not None:
        bits.append(voice.t(f"24 小時內 {trend.change_24h:+,.1f} 點", f"{trend.change_24h:+,.1f} points in 24 h"))
    if trend.burn_per_day is not None and trend.days_left is not None:
        bits.append(voice.t(f"每日約用 {points(trend.burn_per_day)}", f"~{trend.burn_per_day:,.1f} points/day"))
        bits.append(voice.t(f"📉 依近期用量約可再用 *{trend.days_left:,.1f} 天*",
                            f"📉 about *{trend.days_left:,.1f} days* left at the recent rate"))
    else:
        bits.append(voice.t("近期用量不足，尚無法預估可用天數", "not enough recent use to forecast days left"))
    return [_md(headline), _note(" · ".join(bits))]


def _pending(ctx: HandlerContext, user_id: str) -> list[Block]:
    """Requests waiting for a decision; approvers can decide right here."""
    voice = ctx.voice
    pending = ctx.home.pending(PENDING_SHOWN)
    total = pending.total
    blocks = _heading(voice.t(f"*等待核准* {total}", f"*Pending approval* {total}"))
    for request in pending.requests:
        kind_zh, kind_en = ("多媒體簡訊", "MMS") if request.kind == "mms" else ("簡訊", "SMS")
        blocks.append(_md(voice.t(
            f"*#{request.id}* <@{request.requester}> · {voice.time(request.created_at)} · "
            f"{request.recipient_count} 位收件人 · {points(request.points)} · {kind_zh}",
            f"*#{request.id}* <@{request.requester}> · {voice.time(request.created_at)} · "
            f"{count(request.recipient_count, 'recipient')} · {request.points:,.1f} points · {kind_en}",
        )))
        # What the requester typed, shown literally (plain_text): it cannot mention anyone or form links.
        blocks.append(ContextBlock(elements=[PlainTextObject(text=clip(request.message, 150) or " ", emoji=False)]))
        approve = may(ctx.policy, user_id, Action.APPROVE, owner=request.requester)
        reject = may(ctx.policy, user_id, Action.REJECT, owner=request.requester)
        if approve:
            over = ctx.budgets is not None and ctx.budgets.check_request(request).over
            blocks.append(cards.over_budget_buttons(voice, request.id, "home-decide") if over
                          else _decision_buttons(voice, request.id))
        elif reject:  # one's own request: it may be withdrawn (rejected), never approved by oneself
            blocks.append(_decision_buttons(voice, request.id, approve=False))
    if total > PENDING_SHOWN:
        blocks.append(_note(voice.t(f"另有 {total - PENDING_SHOWN} 筆，請到核准頻道查看",
                                    f"{total - PENDING_SHOWN} more in the approval channel")))
    return blocks


def _decision_buttons(voice: Voice, request_id: int, *, approve: bool = True) -> ActionsBlock:
    approve_button = ButtonElement(text=voice.t("核准", "Approve"), action_id=cards.APPROVE, value=str(request_id),
                                   style="primary")
    reject_button = ButtonElement(text=voice.t("駁回", "Reject"), action_id=cards.REJECT, value=str(request_id),
                                  style="danger")
    return ActionsBlock(block_id=f"home-decide:{request_id}",
                        elements=[approve_button, reject_button] if approve else [reject_button])


def _scheduled(ctx: HandlerContext, user_id: str) -> list[Block]:
    """Scheduled sends not gone out yet; Cancel for whoever may cancel (the requester or an approver)."""
    voice = ctx.voice
    scheduled = ctx.lookup.scheduled()  # the same read as `/sms scheduled`
    blocks = _heading(voice.t(f"*預約發送* {len(scheduled)}", f"*Scheduled* {len(scheduled)}"))
    for request in scheduled[:SCHEDULED_SHOWN]:
        blocks.append(_md(voice.t(
            f"*#{request.id}* {voice.time(request.send_at)} · {request.recipient_count} 位收件人 · {points(request.points)}",
            f"*#{request.id}* {voice.time(request.send_at)} · {count(request.recipient_count, 'recipient')} · "
            f"{request.points:,.1f} points",
        )))
        if may(ctx.policy, user_id, Action.CANCEL, owner=request.requester):
            blocks.append(cards.cancel_button(voice, request.id))
    if len(scheduled) > SCHEDULED_SHOWN:
        blocks.append(_note(voice.t(f"另有 {len(scheduled) - SCHEDULED_SHOWN} 筆，請用 `/sms scheduled` 查看",
                                    f"{len(scheduled) - SCHEDULED_SHOWN} more: see `/sms scheduled`")))
    return blocks


def _series(ctx: HandlerContext, user_id: str) -> list[Block]:
    """Recurring sends, with Pause / Resume / Stop for their requester and the approvers."""
    from handlers.series import list_blocks

    listed = list_blocks(ctx, user_id)
    return [DividerBlock(), *(Block.parse(b) for b in listed)] if listed else []


def _recent_batches(ctx: HandlerContext) -> list[Block]:
    """The newest batches: request number, when, recipients, delivered share, failures, still pending."""
    voice = ctx.voice
    summaries = ctx.home.recent(BATCHES_SHOWN)  # a request sent in parts is one line
    blocks = _heading(voice.t("*最近批次*", "*Recent batches*"))
    if not summaries:
        blocks.append(_note(voice.t("尚無發送紀錄", "Nothing sent yet")))
    for summary in summaries:
        blocks.append(_md(_batch_line(voice, summary.lead, summary.counts, summary.batch_count)))
    return blocks


def _batch_line(voice: Voice, batch: Batch, counts: dict[int, int], batch_count: int = 1) -> str:
    """`#12 · 2026-11-25 14:30 · 120 位 · 已送達 95%（114）· 未送達 4 · 等待回報 2`: the delivered share
    of what went out (scheduled and cancelled messages have not)."""
    tally = dict.fromkeys(Outcome, 0)
    for code, n in counts.items():
        tally[status_for(code).outcome] += n
    total = sum(counts.values())
    scheduled, cancelled = tally[Outcome.SCHEDULED], tally[Outcome.CANCELLED]
    gone_out = total - scheduled - cancelled
    delivered, failed = tally[Outcome.DELIVERED], tally[Outcome.FAILED]
    waiting = gone_out - delivered - failed - tally[Outcome.SENT]  # an MMS "sent" waits for nothing more
    rate = f"{100 * delivered / gone_out:.0f}%" if gone_out else "—"
    when = voice.time(batch.send_at or batch.created_at)
    zh = [f"*#{batch.request_id}* {when}", f"{total} 位", f"已送達 {rate}（{delivered}）", f"未送達 {failed}",
          f"等待回報 {waiting}"]
    en = [f"*#{batch.request_id}* {when}", count(total, "recipient"), f"delivered {rate} ({delivered})",
          f"failed {failed}", f"pending {waiting}"]
    for n, word_zh, word_en in ((scheduled, "預約中", "scheduled"), (cancelled, "已取消", "cancelled")):
        if n:
            zh.append(f"{word_zh} {n}")
            en.append(f"{word_en} {n}")
    more = voice.t(f"（共 {batch_count} 批）", f" (+{batch_count - 1} more)") if batch_count > 1 else ""
    return voice.t(" · ".join(zh), " · ".join(en)) + f"\n`{batch.batch_id}`" + more


def _unmatched_reports(ctx: HandlerContext) -> list[Block]:
    """Reports pushed for batches this bot never sent, or for numbers a batch never had: kept aside, shown
    to approvers only."""
    kept = ctx.home.kept_reports(10)
    if not kept:
        return []
    voice = ctx.voice
    # Every value here came from an unsigned push: escaped, so none can become a mention or a link.
    lines = [f"`{escape(r.batch_id[:36])}` · {escape(voice.number(r.mobile))} · {r.status_code} · "
             f"{voice.time(r.created_at)}" for r in kept]
    return [
        *_heading(voice.t(f"*未對應的回報* {len(kept)}（不屬於本機器人發送的批次或號碼，未貼出）",
                          f"*Unmatched reports* {len(kept)} (for batches or numbers this bot did not send; "
                          "not posted)")),
        _md("\n".join(lines)),
    ]

