"""`/sms autoreply`: the auto-reply rules (services/autoreply.py). Anyone may list them; approvers change them.

    /sms autoreply                              the rules
    /sms autoreply add 營業時間 週一至週五 9:00-18:00   a keyword and its answer (text or @template)
    /sms autoreply remove 營業時間
    /sms autoreply outofhours 已收到，我們明早回覆     the answer to replies inside quiet hours (`off` removes it)
"""

from __future__ import annotations

from slack_bolt import Ack, App

from handlers import cards
from handlers.commands import SubcommandCall
from handlers.context import HandlerContext
from handlers.texts import Voice, escape
from services.autoreply import OUT_OF_HOURS, RuleChange, RuleVerdict

_USAGE = ("用法：`/sms autoreply`、`/sms autoreply add 關鍵字 回覆內容或 @範本`、`/sms autoreply remove 關鍵字`、"
          "`/sms autoreply outofhours 內容`（`off` 關閉）",
          "Usage: `/sms autoreply`, `/sms autoreply add KEYWORD answer text or @template`, "
          "`/sms autoreply remove KEYWORD`, `/sms autoreply outofhours text` (`off` removes it)")


def register(app: App, ctx: HandlerContext) -> None:
    """Add `/sms autoreply` to the `/sms` dispatcher."""
    ctx.subcommands["autoreply"] = lambda ack, call: autoreply_command(ctx, ack, call)


def autoreply_command(ctx: HandlerContext, ack: Ack, call: SubcommandCall) -> None:
    voice, service = ctx.voice, ctx.autoreply
    if service is None:
        ack(**_answer(voice, "自動回覆未啟用。", "Auto-replies are not available."))
        return
    word, _, rest = call.rest.partition(" ")
    word = word.lower()
    if not word or word == "list":
        ack(**listing(ctx))
    elif word == "add":
        keyword, _, body = rest.strip().partition(" ")
        ack(**said(voice, service.set_rule(call.user, keyword, body), keyword))
    elif word == "remove":
        ack(**said(voice, service.remove_rule(call.user, rest.strip()), rest.strip()))
    elif word in ("outofhours", "out-of-hours"):
        body = rest.strip()
        ack(**said(voice, service.set_out_of_hours(call.user, None if body.lower() == "off" else body), OUT_OF_HOURS))
    else:
        ack(**_answer(voice, *_USAGE))


def listing(ctx: HandlerContext) -> dict:
    voice = ctx.voice
    rules = ctx.autoreply.rules() if ctx.autoreply else []
    hours = ctx.policy.quiet_hours.label if ctx.policy.quiet_hours else ""
    if not rules:
        return _answer(voice, "尚未設定自動回覆。核准者可用 `/sms autoreply add 關鍵字 內容` 新增。",
                       "No auto-replies yet. Approvers add one with `/sms autoreply add KEYWORD text`.")
    lines = []
    for rule in rules:
        what = escape(rule.body[:120])
        if rule.key == OUT_OF_HOURS:
            lines.append(voice.t(f"• 勿擾時段（{hours or '未設定'}）的回覆 → {what}",
                                 f"• replies in quiet hours ({hours or 'none set'}) → {what}"))
        else:
            lines.append(f"• `{escape(rule.keyword)}` → {what}")
    return _answer(voice, f"🤖 自動回覆 {len(rules)} 條（每個號碼每條規則在冷卻時間內只回一次）",
                   f"🤖 {len(rules)} auto-repl{'y' if len(rules) == 1 else 'ies'} (each answers a number once per cool-down)",
                   extra=["\n".join(lines)])


def said(voice: Voice, change: RuleChange, keyword: str) -> dict:
    if keyword == OUT_OF_HOURS:
        zh, en = "勿擾時段", "quiet hours"
    else:
        zh = en = escape(keyword[:40])
    if change.verdict is RuleVerdict.NOT_APPROVER:
        return _answer(voice, "只有核准者可以變更自動回覆。", "Only approvers can change auto-replies.")
    if change.verdict is RuleVerdict.INVALID:
        return _answer(voice, f"無法設定：{escape(change.zh)}", f"Not set: {escape(change.en)}")
    if change.verdict is RuleVerdict.NOT_FOUND:
        return _answer(voice, f"沒有「{zh}」的自動回覆。", f'There is no auto-reply for "{en}".')
    if change.verdict is RuleVerdict.REMOVED:
        return _answer(voice, f"已移除「{zh}」的自動回覆。", f'The auto-reply for "{en}" was removed.')
    verb_zh, verb_en = ("已更新", "updated") if change.verdict is RuleVerdict.REPLACED else ("已新增", "added")
    return _answer(voice, f"🤖 {verb_zh}「{zh}」的自動回覆。", f'🤖 Auto-reply for "{en}" {verb_en}.')


def _answer(voice: Voice, zh: str, en: str, *, extra: list[str] | None = None) -> dict:
    text, blocks = cards.ephemeral(voice, zh, en, extra=extra or [])
    return {"text": text, "blocks": blocks}
