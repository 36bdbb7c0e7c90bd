"""Recurring sends in Slack: the series card (one approval, the next five dates, the cost per run), its
buttons (Approve / Reject, Pause / Resume / Stop), the series lines of `/sms scheduled` and App Home, and
the compose modal's repeat step. Every decision is the service's (services/series.py); this module reads
clicks and renders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers import cards
from handlers.context import HandlerContext
from handlers.repeat_fields import RepeatValues
from handlers.texts import Voice, clip, points
from services.permissions import Action, may
from services.recurrence import Rule, check, describe, next_after, rule_from_first, short_dates
from services.series import SeriesVerdict, rule_of
from storage.series import ACTIVE, FINISHED, PAUSED, PENDING, REJECTED, STOPPED, SeriesRow

APPROVE = "series_approve"
REJECT = "series_reject"
PAUSE = "series_pause"
RESUME = "series_resume"
STOP = "series_stop"
#: Series shown in `/sms scheduled` and App Home.
SHOWN = 10


# -- the compose modal's repeat step -----------------------------------------------------------------


def rule_for(ctx: HandlerContext, send_at: datetime | None, repeat: RepeatValues) -> Rule | dict[str, str]:
    """The rule the repeat fields describe, from the scheduled time; or {block_id: error} for the modal."""
    voice = ctx.voice
    if send_at is None:
        return {"send_at": voice.t("重複發送需要預約時間：第一次發送的日期與時間。",
                                   "A repeating send needs a scheduled time: the date and time of the first run.")}
    rule = rule_from_first(repeat.kind, send_at.astimezone(voice.tz), weekdays=repeat.weekdays,
                           until=repeat.until, count=repeat.count)
    errors: dict[str, str] = {}
    for problem in check(rule, ctx.clock()):
        text = voice.t(problem.zh, problem.en)
        errors[problem.field] = f"{errors[problem.field]}\n{text}" if problem.field in errors else text
    return errors or rule


def first_run(rule: Rule, send_at: datetime) -> datetime:
    """The first occurrence at or after the scheduled time (a Saturday start of a Mon-Fri rule: Monday)."""
    found = next_after(rule, send_at.timestamp() - 1)
    return datetime.fromtimestamp(found[1], tz=rule.tz) if found else send_at


def rule_line(voice: Voice, rule: Rule, dates: list[float], points_each: float) -> str:
    """`每週一至五 09:00 重複 · 接下來：12/04、12/05、…（5 次）· 每次 2.0 點`."""
    zh, en = describe(rule)
    shown_zh = short_dates(rule, dates)
    shown_en = shown_zh.replace("、", ", ")
    return voice.t(f"🔁 {zh} · 接下來：{shown_zh}（{len(dates)} 次）· 每次 {points(points_each)}",
                   f"🔁 {en} · next: {shown_en} ({len(dates)} dates) · {points_each:,.1f} points per run")


def with_series(voice: Voice, view: dict, rule: Rule, first: float, points_each: float) -> dict:
    """The preview step of a repeating send: the rule, its next five dates and the cost per run on top."""
    from services.recurrence import upcoming

    dates = [e for _, e in upcoming(rule, first - 1, 5)]
    line = rule_line(voice, rule, dates, points_each)
    covers = voice.t("一次核准涵蓋整個重複發送；每次發送時依當下點數重新計價，點數不足則該次不發送。",
                     "One approval covers the series; each run is priced when it runs, and not sent if credit is short.")
    view["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": line}},
                      {"type": "context", "elements": [{"type": "mrkdwn", "text": covers}]}, *view["blocks"]]
    return view


def submitted_view(voice: Voice, series_id: int) -> dict:
    text = voice.t(f"已送出重複發送申請 S{series_id}，等待核准。", f"Recurring send S{series_id} is waiting for approval.")
    return {"type": "modal", "clear_on_close": True,
            "title": {"type": "plain_text", "text": "已送出 Submitted" if voice.language == "both"
                      else voice.t("已送出", "Submitted")},
            "close": {"type": "plain_text", "text": voice.t("關閉", "Close") if voice.language != "both" else "關閉 Close"},
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


# -- the card ----------------------------------------------------------------------------------------


def state_line(voice: Voice, series: SeriesRow) -> str:
    by = f"<@{series.ended_by or series.approved_by}>"
    return {
        PENDING: voice.t("⏳ 等待核准", "⏳ waiting for approval"),
        ACTIVE: voice.t(f"✅ 由 {by} 核准 · 已執行 {series.runs_done} 次", f"✅ approved by {by} · {series.runs_done} run(s) so far"),
        PAUSED: voice.t(f"⏸ 已暫停 · 已執行 {series.runs_done} 次", f"⏸ paused · {series.runs_done} run(s) so far"),
        STOPPED: voice.t(f"⏹ 由 {by} 停止 · 共執行 {series.runs_done} 次", f"⏹ stopped by {by} · {series.runs_done} run(s)"),
        FINISHED: voice.t(f"🏁 已完成 · 共 {series.runs_done} 次", f"🏁 finished · {series.runs_done} run(s)"),
        REJECTED: voice.t(f"⛔ 由 {by} 駁回", f"⛔ rejected by {by}"),
    }.get(series.state, series.state)


def buttons(voice: Voice, series: SeriesRow) -> dict | None:
    """Approve / Reject while pending; Pause / Stop while running; Resume / Stop while paused."""
    def button(zh: str, en: str, action: str, style: str | None = None) -> dict:
        b = {"type": "button", "text": {"type": "plain_text", "text": voice.t(zh, en)}, "action_id": action,
             "value": str(series.id)}
        return {**b, "style": style} if style else b

    chosen = {
        PENDING: [button("核准", "Approve", APPROVE, "primary"), button("駁回", "Reject", REJECT, "danger")],
        ACTIVE: [button("暫停", "Pause", PAUSE), button("停止", "Stop", STOP, "danger")],
        PAUSED: [button("繼續", "Resume", RESUME, "primary"), button("停止", "Stop", STOP, "danger")],
    }.get(series.state)
    return {"type": "actions", "block_id": f"series:{series.id}", "elements": chosen} if chosen else None


def series_card(voice: Voice, series: SeriesRow, upcoming: list[float]) -> tuple[str, list[dict]]:
    rule = rule_of(series)
    title = voice.t(f"重複發送申請 S{series.id}", f"Recurring send S{series.id}")
    message = series.payload.get("message", "")
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(f"🔁 {title}", 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join([
            voice.t(f"*申請人* <@{series.created_by}> · *收件人* {series.recipient_count} 位",
                    f"*Requested by* <@{series.created_by}> · *Recipients* {series.recipient_count}"),
            rule_line(voice, rule, upcoming, series.points_per_run) if upcoming
            else "🔁 " + voice.t(*describe(rule)),
        ])}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": voice.t(
            "一次核准涵蓋整個重複發送。每次發送都是這串討論中的一筆申請，發送時依當下點數計價，點數不足則該次不發送。",
            "One approval covers the whole series. Each run is its own request in this thread, priced when it runs, "
            "and not sent if credit is short.")}]},
        cards.untrusted_block(message).to_dict(),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": state_line(voice, series)}]},
    ]
    actions = buttons(voice, series)
    if actions:
        blocks.append(actions)
    blocks.extend(b.to_dict() for b in cards.sandbox_block(voice))
    return f"🔁 {title}", blocks


def list_blocks(ctx: HandlerContext, user_id: str | None = None, *, shown: int = SHOWN) -> list[dict]:
    """The series still running, paused or waiting, each with its buttons (for `/sms scheduled` and Home):
    at most 1 + 3 x `shown` blocks. With `user_id`, buttons only for what that person may do (and Approve /
    Reject on a waiting series for an approver who may decide it)."""
    service = ctx.series
    if service is None or shown < 1:
        return []
    voice = ctx.voice
    live = service.live(SHOWN + 1)
    if not live:
        return []
    blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": voice.t(
        f"*重複發送* {len(live) if len(live) <= SHOWN else f'{SHOWN}+'}",
        f"*Recurring sends* {len(live) if len(live) <= SHOWN else f'{SHOWN}+'}")}}]
    for series in live[:shown]:
        upcoming = service.upcoming(series, 1)
        when = voice.time(upcoming[0]) if upcoming else "—"
        zh, en = describe(rule_of(series))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": voice.t(
            f"*S{series.id}* {zh} · 下次 {when} · {series.recipient_count} 位 · 每次 {points(series.points_per_run)}",
            f"*S{series.id}* {en} · next {when} · {series.recipient_count} recipient(s) · "
            f"{series.points_per_run:,.1f} points per run")}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": state_line(voice, series)}]})
        if series.state == PENDING:
            allowed = user_id is not None and may(ctx.policy, user_id, Action.APPROVE, owner=series.created_by)
        else:
            allowed = user_id is None or may(ctx.policy, user_id, Action.CANCEL, owner=series.created_by)
        actions = buttons(voice, series) if allowed else None
        if actions:
            blocks.append(actions)
    return blocks


# -- buttons -----------------------------------------------------------------------------------------


def register(app: App, ctx: HandlerContext) -> None:
    voice = ctx.voice

    def tell(body: dict, respond: Respond, client: WebClient) -> Callable[[str, str], None]:
        def say(zh: str, en: str) -> None:
            if body.get("response_url"):
                text, blocks = cards.ephemeral(voice, zh, en)
                respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
            elif (body.get("view") or {}).get("type") == "home":
                from handlers import home

                view = home.home_view(ctx, body["user"]["id"])
                notice = {"type": "section", "text": {"type": "mrkdwn", "text": voice.t(zh, en)}}
                view["blocks"] = [notice, *view["blocks"]][:100]
                client.views_publish(user_id=body["user"]["id"], view=view)
        return say

    def pressed(ack: Ack, body: dict, respond: Respond, client: WebClient, action: str) -> None:
        ack()
        if ctx.series is None:
            return
        series_id = cards.clicked_id(body)
        if series_id is None:
            return
        user = body["user"]["id"]
        if action in ("approve", "reject"):
            outcome = ctx.series.decide(series_id, user, approve=action == "approve")
        else:
            outcome = ctx.series.control(series_id, user, action)
        say = tell(body, respond, client)
        verdict = outcome.verdict
        if verdict is SeriesVerdict.NOT_FOUND:
            say("找不到這個重複發送。", "This recurring send no longer exists.")
        elif verdict is SeriesVerdict.NOT_APPROVER:
            say("只有核准者可以核准或駁回重複發送。", "Only approvers can approve or reject a recurring send.")
        elif verdict is SeriesVerdict.SELF_APPROVAL:
            say("不能核准自己提出的申請，請另一位核准者處理。", "You cannot approve your own request; another approver must.")
        elif verdict is SeriesVerdict.NOT_ALLOWED:
            say("只有申請人或核准者可以暫停、繼續或停止這個重複發送。",
                "Only the requester or an approver can pause, resume or stop this series.")
        elif verdict is SeriesVerdict.WRONG_STATE and outcome.series is not None:
            say(f"這個重複發送目前無法這樣做（{state_line(voice, outcome.series)}）。",
                f"That cannot be done to this series now ({state_line(voice, outcome.series)}).")
        elif (body.get("view") or {}).get("type") == "home":
            from handlers import home

            client.views_publish(user_id=user, view=home.home_view(ctx, user))
        ctx.wake_poster()

    def listener_for(action: str) -> Callable[..., None]:
        # Bolt passes listeners only the arguments it knows by name, so the action is closed over.
        def listener(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
            pressed(ack, body, respond, client, action)

        return listener

    for action_id, action in ((APPROVE, "approve"), (REJECT, "reject"), (PAUSE, "pause"), (RESUME, "resume"),
                              (STOP, "stop")):
        app.action(action_id)(listener_for(action))
