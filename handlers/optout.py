"""Slack surface of the opt-out list (issue 6): `/sms optout`.

    /sms optout                      the list, newest first: number (masked per BOT_MASK_NUMBERS), when, why
    /sms optout add 0912345678       put a number on it (approvers; e.g. someone asked by phone)
    /sms optout remove 0912345678    take a number off (approvers; e.g. the person asked to rejoin)

Numbers are added automatically when a recipient replies with an opt-out keyword (services/optout.py).
Every change made here is recorded in the audit log with who made it.
"""

from __future__ import annotations

from slack_bolt import Ack, App

from every8d.phones import Recipient, parse_phone
from handlers import cards
from handlers.commands import SubcommandCall
from handlers.context import HandlerContext
from handlers.texts import Voice, count, escape
from services.permissions import Action, may
from storage.models import OptOut

#: How many entries the list shows (the count says how many there are in all).
LISTED = 30
#: Lines per context block (a message holds at most 50 blocks, a block's text 3,000 characters).
_LINES_PER_BLOCK = 10


def register(app: App, ctx: HandlerContext) -> None:
    """Add `/sms optout` to the `/sms` dispatcher."""
    ctx.subcommands["optout"] = lambda ack, call: optout_command(ctx, ack, call)


def optout_command(ctx: HandlerContext, ack: Ack, call: SubcommandCall) -> None:
    """List for anyone; add/remove for approvers only. Everything answers in the ack (no EVERY8D call)."""
    word, _, number = call.rest.partition(" ")
    word = word.lower()
    if word in ("add", "remove"):
        ack(**change(ctx, call.user, word, number.strip()))
    elif not word or word == "list":
        ack(**listing(ctx))
    else:
        ack(**_answer(ctx.voice, "用法：`/sms optout`、`/sms optout add 0912345678`、`/sms optout remove 0912345678`",
                      "Usage: `/sms optout`, `/sms optout add 0912345678`, `/sms optout remove 0912345678`"))


def listing(ctx: HandlerContext) -> dict:
    """The list, newest first, with when and why each number is on it."""
    voice = ctx.voice
    listed = ctx.optouts.listing(LISTED)
    total, entries = listed.total, listed.entries
    if not total:
        return _answer(voice, "退訂名單是空的。", "The opt-out list is empty.")
    lines = [_entry_line(voice, entry) for entry in entries]
    if total > len(entries):
        lines.append(voice.t(f"…另有 {total - len(entries)} 筆", f"…and {total - len(entries)} more"))
    blocks = ["\n".join(lines[i:i + _LINES_PER_BLOCK]) for i in range(0, len(lines), _LINES_PER_BLOCK)]
    return _answer(voice, f"🚫 退訂名單：{total} 個號碼（之後的發送會自動略過）",
                   f"Opt-out list: {count(total, 'number')} (later sends skip them)", extra=blocks)


def _entry_line(voice: Voice, entry: OptOut) -> str:
    if entry.source == "reply":
        why = voice.t(f"回覆「{escape(entry.keyword)}」", f"replied \"{escape(entry.keyword)}\"")
    else:
        why = voice.t(f"由 <@{entry.actor}> 加入", f"added by <@{entry.actor}>")
    return f"• {voice.number(entry.e164)} · {voice.time(entry.at)} · {why}"


def change(ctx: HandlerContext, user: str, word: str, number: str) -> dict:
    """Add or remove one number, for approvers; each change is audited."""
    voice = ctx.voice
    if not may(ctx.policy, user, Action.MANAGE_LISTS):
        return _answer(voice, "只有核准者可以修改退訂名單。", "Only approvers can change the opt-out list.")
    parsed = parse_phone(number) if number else None
    if not isinstance(parsed, Recipient):
        shown = escape(number[:40])
        return _answer(voice, f"「{shown}」不是可接收簡訊的手機號碼，例如：`/sms optout {word} 0912345678`",
                       f"\"{shown}\" is not a mobile number, e.g. `/sms optout {word} 0912345678`")
    shown = voice.number(parsed.e164)
    if word == "add":
        if not ctx.optouts.add(actor=user, e164=parsed.e164):
            return _answer(voice, f"{shown} 已在退訂名單中。", f"{shown} is already on the opt-out list.")
        return _answer(voice, f"🚫 已將 {shown} 加入退訂名單，之後的發送會自動略過。",
                       f"{shown} was added to the opt-out list; later sends will skip it.")
    if not ctx.optouts.remove(actor=user, e164=parsed.e164):
        return _answer(voice, f"{shown} 不在退訂名單中。", f"{shown} is not on the opt-out list.")
    return _answer(voice, f"✅ 已將 {shown} 移出退訂名單，之後的發送會再寄給這個號碼。",
                   f"{shown} was removed from the opt-out list; later sends will include it again.")


def _answer(voice: Voice, zh: str, en: str, *, extra: list[str] | None = None) -> dict:
    text, blocks = cards.ephemeral(voice, zh, en, extra=extra or [])
    return {"text": text, "blocks": blocks}
