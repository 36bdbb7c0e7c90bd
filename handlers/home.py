"""App Home: the credit, pending approvals, scheduled sends and recent batches, at a glance."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from handlers import cards
from handlers.context import HandlerContext
from handlers.texts import points
from storage import RequestState


def register(app: App, ctx: HandlerContext) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict, client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        client.views_publish(user_id=event["user"], view=home_view(ctx, event["user"]))


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}


def home_view(ctx: HandlerContext, user_id: str) -> dict:
    voice = ctx.voice
    trend = ctx.credit.trend()
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": "EVERY8D 簡訊 SMS"}},
        _section(voice.t(f"💰 剩餘點數 {points(trend.credit)}（{voice.time(trend.at)}）",
                         f"Credit {trend.credit or 0:,.1f} points (as of {voice.time(trend.at)})")),
    ]
    pending = ctx.store.requests.in_states(RequestState.PENDING_APPROVAL, limit=10)
    blocks.append(cards.divider())
    blocks.append(_section(voice.t(f"*等待核准* {len(pending)}", f"*Pending approval* {len(pending)}")))
    is_approver = ctx.policy.is_approver(user_id)
    for request in pending:
        blocks.append(_section(f"#{request.id} <@{request.requester}> · {request.recipient_count} · {points(request.points)}"))
        if is_approver and (ctx.policy.allow_self_approval or request.requester != user_id):
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": voice.t("核准", "Approve")},
                 "action_id": cards.APPROVE, "value": str(request.id), "style": "primary"},
                {"type": "button", "text": {"type": "plain_text", "text": voice.t("駁回", "Reject")},
                 "action_id": cards.REJECT, "value": str(request.id), "style": "danger"},
            ]})
    scheduled = ctx.store.requests.scheduled_not_yet_sent(ctx.clock())
    blocks.append(cards.divider())
    blocks.append(_section(voice.t(f"*預約發送* {len(scheduled)}", f"*Scheduled* {len(scheduled)}")))
    for request in scheduled[:10]:
        blocks.append(_section(f"#{request.id} {voice.time(request.send_at)} · {request.recipient_count}"))
        blocks.append(cards.cancel_button(voice, request.id).to_dict())
    blocks.append(cards.divider())
    blocks.append(_section(voice.t("*最近批次*", "*Recent batches*")))
    for batch in ctx.store.batches.recent(10):
        counts = ctx.store.batches.counts(batch.batch_id)
        total = sum(counts.values()) or 1
        delivered = counts.get(100, 0)
        blocks.append(_section(voice.t(f"`{batch.batch_id[:8]}` 送達率 {100 * delivered // total}%",
                                       f"`{batch.batch_id[:8]}` delivered {100 * delivered // total}%")))
    if is_approver:
        blocks.extend(_unmatched_reports(ctx))
    blocks.extend(b.to_dict() for b in cards.sandbox_block(voice))
    return {"type": "home", "blocks": blocks[:100]}


def _unmatched_reports(ctx: HandlerContext) -> list[dict]:
    """Reports EVERY8D pushed for batches this bot never sent: kept aside, shown to approvers only."""
    kept = ctx.store.replies.unmatched_reports(limit=10)
    if not kept:
        return []
    voice = ctx.voice
    lines = [f"`{r['batch_id'][:36]}` · {voice.number(r['mobile'])} · {r['status_code']} · {voice.time(r['created_at'])}"
             for r in kept]
    return [
        cards.divider(),
        _section(voice.t(f"*未對應的回報* {len(kept)}（不屬於本機器人發送的批次，未貼出）",
                         f"*Unmatched reports* {len(kept)} (for batches this bot did not send; not posted)")),
        _section("\n".join(lines)),
    ]
