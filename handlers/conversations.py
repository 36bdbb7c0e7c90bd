"""Slack surface of two-way conversations: a message typed in a batch's thread, and a reply's Answer button
with its small form, become one-to-one answers (services/conversations.py decides; this only translates).

Every channel message reaches the bot (it subscribes to message.channels and message.groups), so the
listener is strict about what it treats as an answer: a person's new message inside a thread. Edits,
joins, bot posts and top-level messages are acknowledged and ignored, and so is a thread with no reply
to answer yet (people discuss in approval threads; that must never send an SMS).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import ContextBlock, InputBlock, MarkdownTextObject, PlainTextInputElement
from slack_sdk.models.views import View

from every8d.problems import Problem
from handlers import cards, modals
from handlers.context import HandlerContext
from handlers.texts import Voice, escape, points
from services.conversations import AnswerOutcome, AnswerVerdict
from storage import Reply

log = logging.getLogger("every8d_bot.handlers")

ANSWER_CALLBACK = "answer_reply_modal"
ANSWER_BLOCK = "message"
#: Message subtypes that are still a person typing in the thread ("also send to channel").
_TYPED_SUBTYPES = (None, "thread_broadcast")
#: Slack's markup in message text: `<https://x|label>`, `<mailto:a@b>`, `<@U123>`.
_SLACK_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


@dataclass(frozen=True)
class ThreadMessage:
    """A person's message inside a thread, with its text as it should go out by SMS."""

    channel: str
    thread_ts: str
    ts: str
    user: str
    text: str

    @property
    def source_event(self) -> str:
        """The message's identity (a channel and a ts name one message): Slack's redeliveries share it."""
        return f"message:{self.channel}:{self.ts}"


def typed_in_thread(event: dict, bot_user_id: str | None) -> ThreadMessage | None:
    """The event as a person's message in a thread, or None when it is anything else."""
    user = event.get("user")
    thread_ts = event.get("thread_ts")
    ts = event.get("ts")
    if event.get("subtype") not in _TYPED_SUBTYPES or event.get("bot_id") or not user or user == bot_user_id:
        return None
    if not thread_ts or not ts or thread_ts == ts or not event.get("channel"):
        return None
    return ThreadMessage(event["channel"], thread_ts, ts, user, sms_text(event.get("text") or ""))


def sms_text(text: str) -> str:
    """What the person typed, from Slack's markup: links become their label (or address), and the three
    characters Slack escapes come back, so the phone shows what was typed in Slack."""

    def plain(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if label:
            return label
        return re.sub(r"^(mailto|tel):", "", target)

    text = _SLACK_LINK.sub(plain, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def register(app: App, ctx: HandlerContext) -> None:
    voice = ctx.voice

    @app.event("message")
    def thread_message(event: dict, client: WebClient, context: BoltContext) -> None:
        """Every message event ends here (acked by Bolt); only a person's message in a thread can answer."""
        typed = typed_in_thread(event, context.bot_user_id)
        if typed is None:
            return
        outcome = ctx.answers.answer_in_thread(
            typed.channel, typed.thread_ts, typed.text, user=typed.user, source_event=typed.source_event
        )
        if outcome.verdict is AnswerVerdict.INVALID:
            text, blocks = refusal(voice, outcome.problems)
            client.chat_postEphemeral(channel=typed.channel, user=typed.user, thread_ts=typed.thread_ts,
                                      text=text, blocks=blocks)
        elif outcome.verdict is AnswerVerdict.SUBMITTED:
            ctx.wake_poster()
            if outcome.over_limit:
                text, blocks = cards.ephemeral(voice, *over_limit_words(ctx, outcome))
                client.chat_postEphemeral(channel=typed.channel, user=typed.user, thread_ts=typed.thread_ts,
                                          text=text, blocks=blocks)

    @app.action(cards.ANSWER_REPLY)
    def answer_button(ack: Ack, body: dict, client: WebClient, respond: Respond) -> None:
        ack()
        try:
            reply = ctx.answers.answerable(int(body["actions"][0]["value"]))
        except (KeyError, IndexError, ValueError):
            return
        if reply is None:
            text, blocks = cards.ephemeral(voice, "這則回覆已無法回覆（找不到對應的發送批次）。",
                                           "This reply cannot be answered: its batch is unknown.")
            respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
            return
        channel = (body.get("channel") or {}).get("id", "")
        client.views_open(trigger_id=body["trigger_id"], view=answer_view(voice, reply, channel_id=channel))

    @app.view(ANSWER_CALLBACK)
    def answer_submitted(ack: Ack, body: dict, view: dict) -> None:
        meta = modals.read_metadata(view, int_keys=("reply_id",))
        if meta is None or not view.get("id"):
            ack(response_action="update", view=modals.damaged_view(voice))
            return
        typed = _typed_answer(view)
        outcome = ctx.answers.answer_reply(
            meta["reply_id"], typed, user=body["user"]["id"], origin_channel=meta.get("channel_id", ""),
            source_event=f"view:{view['id']}",
        )
        if outcome.verdict is AnswerVerdict.INVALID:
            lines = "\n".join(voice.t(p.zh, p.en) for p in outcome.problems)
            ack(response_action="errors", errors={ANSWER_BLOCK: lines[:2000]})
            return
        ack(response_action="update", view=_after_view(ctx, outcome))
        ctx.wake_poster()


def _typed_answer(view: dict) -> str:
    """The answer typed in the form; empty when the view's state lacks it (the checks then say so)."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    block = values.get(ANSWER_BLOCK) if isinstance(values, dict) else None
    field = block.get(modals.VALUE) if isinstance(block, dict) else None
    typed = field.get("value") if isinstance(field, dict) else None
    return typed if isinstance(typed, str) else ""


def over_limit_words(ctx: HandlerContext, outcome: AnswerOutcome) -> tuple[str, str]:
    """Why an answer waits for an approver though answers are sent at once: what it costs, the cap."""
    cap = ctx.policy.answer_max_points
    return (
        f"這則回覆需 {points(outcome.points)}，超過免核准上限 {points(cap)}（BOT_ANSWER_MAX_POINTS），"
        f"已送出申請 #{outcome.request_id}，核准者核准後才會發送。",
        f"This answer costs {outcome.points:,.1f} points, more than the {cap:,.1f} an answer may cost without "
        f"approval (BOT_ANSWER_MAX_POINTS): request #{outcome.request_id} waits for an approver.",
    )


def refusal(voice: Voice, problems: tuple[Problem, ...]) -> cards.Rendered:
    """Why a typed answer was not sent (only the person who typed sees it)."""
    return cards.ephemeral(
        voice, "沒有發送這則回覆，請修正後再輸入一次：", "This answer was not sent; fix it and type it again:",
        extra=[f"• {escape(voice.t(p.zh, p.en))}" for p in problems],
    )


def answer_view(voice: Voice, reply: Reply, *, channel_id: str) -> dict:
    """The Answer form: whom it goes to (masked), what they wrote, and the answer to type."""
    sender = voice.number(reply.mobile)
    blocks = [
        ContextBlock(elements=[MarkdownTextObject(text=voice.t(f"💬 {sender} 的回覆：", f"reply from {sender}:"))]),
        cards.untrusted_block(reply.text),
        InputBlock(
            block_id=ANSWER_BLOCK,
            label=voice.t(f"以簡訊回覆 {sender}", f"Answer {sender} by SMS")[:150],
            hint=voice.t("只會傳給這個號碼；與一般發送相同，會扣點並依設定核准",
                         "goes to this number only; costs points and follows the approval policy like any send"),
            element=PlainTextInputElement(action_id=modals.VALUE, multiline=True, max_length=3000),
        ),
        *cards.sandbox_block(voice),
    ]
    return View(
        type="modal",
        callback_id=ANSWER_CALLBACK,
        title=_short(voice, "回覆簡訊", "Answer by SMS"),
        submit=_short(voice, "發送", "Send"),
        close=_short(voice, "取消", "Cancel"),
        private_metadata=json.dumps({"reply_id": reply.id, "channel_id": channel_id}),
        blocks=blocks,
    ).to_dict()


def _short(voice: Voice, zh: str, en: str) -> str:
    """A modal title or button: Slack allows 24 characters, so "both" joins with a space, not " / "."""
    return f"{zh} {en}" if voice.language == "both" else voice.t(zh, en)


def _after_view(ctx: HandlerContext, outcome: AnswerOutcome) -> dict:
    """What the form turns into once submitted: the request it became (and why it waits, when it costs
    more than an answer may without approval), or why there was none."""
    voice = ctx.voice
    if outcome.request_id is not None and outcome.over_limit:
        _, blocks = cards.ephemeral(voice, *over_limit_words(ctx, outcome))
        return View(type="modal", title=_short(voice, "回覆簡訊", "Answer by SMS"), close=_short(voice, "關閉", "Close"),
                    clear_on_close=True, blocks=blocks).to_dict()
    if outcome.request_id is None:
        _, blocks = cards.ephemeral(voice, "這則回覆已無法回覆（找不到對應的發送批次），沒有發送任何簡訊。",
                                    "This reply cannot be answered (its batch is unknown); nothing was sent.")
        return View(type="modal", title=_short(voice, "回覆簡訊", "Answer by SMS"), close=_short(voice, "關閉", "Close"),
                    blocks=blocks).to_dict()
    return modals.submitted_view(voice, outcome.request_id, outcome.approved)
