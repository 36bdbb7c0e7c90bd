"""Slack surface of monthly point budgets (services/budgets.py): `/sms budget` and App Home's section.

    /sms budget                          every budget with this month's use
    /sms budget set #channel 5000        a channel's monthly budget (approvers)
    /sms budget set @someone 2000        a requester's monthly budget (approvers)
    /sms budget remove #channel|@someone remove one (approvers)

A channel or person is named as Slack inserts it when picked from its list (`<#C123|sales>`, `<@U123>`),
by its id (`C0123…`, `U0123…`), or `here` for the channel the command is typed in. Every change is audited.
"""

from __future__ import annotations

import re
from datetime import datetime

from slack_bolt import Ack, App
from slack_sdk.models.blocks import Block, DividerBlock, MarkdownTextObject, SectionBlock

from handlers import cards
from handlers.commands import SubcommandCall
from handlers.context import HandlerContext
from handlers.texts import Voice, clip, escape
from services.budgets import MAX_POINTS, Change
from services.permissions import Action, may

#: Budgets listed (the answer and App Home); the count says how many there are in all.
LISTED = 25

_CHANNEL = re.compile(r"^<#([CG][A-Z0-9_]+)(?:\|[^>]*)?>$|^([CG][A-Z0-9_]{6,})$")
_USER = re.compile(r"^<@([UW][A-Z0-9_]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9_]{6,})$")
_POINTS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$|^\d+(?:\.\d+)?$")

USAGE_ZH = "用法：`/sms budget`、`/sms budget set #頻道 5000`、`/sms budget set @某人 2000`、`/sms budget remove #頻道`"
USAGE_EN = "Usage: `/sms budget`, `/sms budget set #channel 5000`, `/sms budget set @someone 2000`, `/sms budget remove #channel`"


def register(app: App, ctx: HandlerContext) -> None:
    """Add `/sms budget` to the `/sms` dispatcher."""
    ctx.subcommands["budget"] = lambda ack, call: budget_command(ctx, ack, call)


def budget_command(ctx: HandlerContext, ack: Ack, call: SubcommandCall) -> None:
    """List for anyone; set/remove for approvers. Everything answers in the ack (no EVERY8D call)."""
    words = call.rest.split()
    verb = words[0].lower() if words else "list"
    if verb == "list" and len(words) <= 1:
        ack(**listing(ctx))
    elif verb == "set" and len(words) == 3:
        ack(**change(ctx, call, words[1], words[2]))
    elif verb == "remove" and len(words) == 2:
        ack(**change(ctx, call, words[1], None))
    else:
        ack(**_answer(ctx.voice, USAGE_ZH, USAGE_EN))


def target_of(text: str, here: str) -> tuple[str, str] | None:
    """(`channel`, C…) or (`requester`, U…) from `<#C…|name>`, `<@U…>`, a bare id or `here`; None otherwise."""
    if text.lower() == "here" and here:
        return "channel", here
    if match := _CHANNEL.match(text):
        return "channel", match.group(1) or match.group(2)
    if match := _USER.match(text):
        return "requester", match.group(1) or match.group(2)
    return None


def change(ctx: HandlerContext, call: SubcommandCall, target_text: str, points_text: str | None) -> dict:
    """Set (`points_text`) or remove (None) one budget, for approvers; the service audits each change."""
    voice = ctx.voice
    if ctx.budgets is None:
        return _answer(voice, "預算功能未啟用。", "Budgets are not enabled.")
    if not may(ctx.policy, call.user, Action.MANAGE_LISTS):
        return _answer(voice, "只有核准者可以設定預算。", "Only approvers can change budgets.")
    target = target_of(target_text, call.channel)
    if target is None:
        shown = escape(target_text[:60])
        return _answer(voice, f"看不懂「{shown}」：請從 Slack 的清單選取頻道（#）或成員（@），或輸入其 ID（C…、U…），或用 `here` 代表這個頻道。",
                       f"\"{shown}\" is not a channel or person: pick one from Slack's list (# or @), type its id "
                       "(C…, U…), or use `here` for this channel.", extra=[voice.t(USAGE_ZH, USAGE_EN)])
    scope, key = target
    whose = _whose(scope, key)
    if points_text is None:
        result = ctx.budgets.remove(call.user, scope, key)
        if result.change is Change.NOT_FOUND:
            return _answer(voice, f"{whose[0]}沒有設定預算。", f"{_first_up(whose[1])} has no budget.")
        return _answer(voice, f"🗑️ 已移除{whose[0]}的每月預算（原為 {result.previous:,.0f} 點）。",
                       f"Removed {whose[1]}'s monthly budget (it was {result.previous:,.0f} points).")
    points = float(points_text.replace(",", "")) if _POINTS.match(points_text) else 0.0
    if not 0 < points <= MAX_POINTS:
        shown = escape(points_text[:30])
        return _answer(voice, f"「{shown}」不是有效的點數，請填 1 到 {MAX_POINTS:,} 之間的數字，例如 5000。",
                       f"\"{shown}\" is not a valid number of points; use a number from 1 to {MAX_POINTS:,}, e.g. 5000.")
    result = ctx.budgets.set(call.user, scope, key, points)
    use = next((u for u in ctx.budgets.uses() if (u.budget.scope, u.budget.key) == (scope, key)), None)
    extra = [cards.budget_use_line(voice, use)] if use else []
    if result.change is Change.UPDATED:
        return _answer(voice, f"💼 已將{whose[0]}的每月預算由 {result.previous:,.0f} 點改為 {points:,.0f} 點。",
                       f"{_first_up(whose[1])}'s monthly budget changed from {result.previous:,.0f} to {points:,.0f} points.",
                       extra=extra)
    return _answer(voice, f"💼 已設定{whose[0]}的每月預算：{points:,.0f} 點。",
                   f"{_first_up(whose[1])}'s monthly budget is now {points:,.0f} points.", extra=extra)


def listing(ctx: HandlerContext) -> dict:
    """Every budget with this month's use, the tightest first."""
    voice = ctx.voice
    uses = sorted(ctx.budgets.uses(), key=lambda u: u.left) if ctx.budgets is not None else []
    if not uses:
        return _answer(voice, "尚未設定任何預算。核准者可用 `/sms budget set #頻道 5000` 或 `/sms budget set @某人 2000` 設定。",
                       "No budgets yet. Approvers set one with `/sms budget set #channel 5000` or "
                       "`/sms budget set @someone 2000`.")
    lines = [cards.budget_use_line(voice, u) for u in uses[:LISTED]]
    if len(uses) > LISTED:
        lines.append(voice.t(f"…另有 {len(uses) - LISTED} 筆", f"…and {len(uses) - LISTED} more"))
    month = _month(ctx)
    return _answer(voice, f"💼 本月預算（{month}）：{len(uses)} 筆", f"Budgets this month ({month}): {len(uses)}",
                   extra=["\n".join(lines[i:i + 10]) for i in range(0, len(lines), 10)])


def home_section(ctx: HandlerContext) -> list[Block]:
    """App Home's "Budgets this month": each budget's use as a bar (nothing when there are none)."""
    if ctx.budgets is None:
        return []
    uses = sorted(ctx.budgets.uses(), key=lambda u: u.left)
    if not uses:
        return []
    voice = ctx.voice
    lines = [cards.budget_use_line(voice, u) for u in uses[:LISTED]]
    if len(uses) > LISTED:
        lines.append(voice.t(f"…另有 {len(uses) - LISTED} 筆，請用 `/sms budget` 查看",
                             f"…{len(uses) - LISTED} more: see `/sms budget`"))
    title = voice.t(f"*本月預算*（{_month(ctx)}）", f"*Budgets this month* ({_month(ctx)})")
    return [DividerBlock(), SectionBlock(text=MarkdownTextObject(text=title)),
            SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), 2900)))]


def _month(ctx: HandlerContext) -> str:
    return f"{datetime.fromtimestamp(ctx.clock(), tz=ctx.voice.tz):%Y-%m}"


def _whose(scope: str, key: str) -> tuple[str, str]:
    return (f"頻道 <#{key}> ", f"channel <#{key}>") if scope == "channel" else (f" <@{key}> ", f"<@{key}>")


def _first_up(text: str) -> str:
    return text[:1].upper() + text[1:]


def _answer(voice: Voice, zh: str, en: str, *, extra: list[str] | None = None) -> dict:
    text, blocks = cards.ephemeral(voice, zh, en, extra=extra or [])
    return {"text": text, "blocks": blocks}
