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
from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt import Ack, App, BoltContext, BoltRequest, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
)
from slack_sdk.models.views import View

from handlers import cards, modals
from handlers.context import HandlerContext
from handlers.texts import Voice, escape, points, sms_text_from_slack
from services.conversations import AnswerOutcome, AnswerVerdict
from services.drafts import KeptAnswer
from storage import Reply

log = logging.getLogger("every8d_bot.handlers")

ANSWER_CALLBACK = "answer_reply_modal"
ANSWER_BLOCK = "message"
#: Message subtypes that are still a person typing in the thread ("also send to channel", a file shared).
_TYPED_SUBTYPES = (None, "thread_broadcast", "file_share")
#: The buttons of the private "send this as SMS?" question (value: the kept draft's id).
THREAD_SEND = "thread_answer_send"
THREAD_NOTE = "thread_answer_note"


@dataclass(frozen=True)
class ThreadMessage:
    """A person's message inside a thread, with its text as it should go out by SMS."""

    channel: str
    thread_ts: str
    ts: str
    user: str
    text: str
    #: Files attached to the message: they cannot go by SMS (the person is told).
    files: int = 0

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
    files = event.get("files")
    return ThreadMessage(event["channel"], thread_ts, ts, user, sms_text(event.get("text") or ""),
                         files=len(files) if isinstance(files, list) else 0)


def changed_in_thread(event: dict, bot_user_id: str | None) -> tuple[ThreadMessage, bool] | None:
    """A person's message in a thread as it is after an edit (`message_changed`: Slack nests it under
    `message`, the earlier one under `previous_message`), or as it was before its deletion
    (`message_deleted`), with True for a deletion; None for anything else. A change Slack makes itself (a
    link unfurled: no `edited`, the same text) is not an edit."""
    subtype = event.get("subtype")
    if subtype == "message_changed":
        message, before = event.get("message"), event.get("previous_message")
        if not isinstance(message, dict) or not message.get("edited"):
            return None
        if isinstance(before, dict) and before.get("text") == message.get("text"):
            return None
        deleted = False
    elif subtype == "message_deleted":
        message, deleted = event.get("previous_message"), True
    else:
        return None
    if not isinstance(message, dict) or message.get("bot_id") or message.get("subtype") not in _TYPED_SUBTYPES:
        return None
    channel, user, ts, thread_ts = (event.get("channel"), message.get("user"), message.get("ts"),
                                    message.get("thread_ts"))
    if not all(isinstance(v, str) and v for v in (channel, user, ts, thread_ts)) or user == bot_user_id:
        return None
    if thread_ts == ts:
        return None
    text = message.get("text")
    return ThreadMessage(channel, thread_ts, ts, user, sms_text(text if isinstance(text, str) else "")), deleted


def sms_text(text: str) -> str:
    """What the person typed, from Slack's markup (handlers/texts.py): a link `<https://x|label>` reaches the
    phone as its label and its address, never the label alone."""
    return sms_text_from_slack(text)


def register(app: App, ctx: HandlerContext) -> None:
    voice = ctx.voice

    @app.event("message")
    def thread_message(event: dict, client: WebClient, context: BoltContext, request: BoltRequest) -> None:
        """Every message event ends here (acked by Bolt); only a person's message in a thread under a reply
        can answer, and by default only once its author confirms (BOT_THREAD_ANSWERS)."""
        mode = ctx.policy.thread_answers
        changed = changed_in_thread(event, context.bot_user_id) if mode != "off" else None
        if changed is not None:
            retried = bool(request.headers.get("x-slack-retry-num"))
            thread_message_changed(ctx, client, *changed, retried=retried)
            return
        typed = typed_in_thread(event, context.bot_user_id)
        if typed is None or mode == "off":
            return
        reply = ctx.answers.latest_reply_in_thread(typed.channel, typed.thread_ts)
        if reply is None:
            return  # people talking in an approval thread: never an SMS
        tell = _teller(client, typed, voice)
        if typed.files:
            tell(*_files_words(bool(typed.text.strip())))
            if not typed.text.strip():
                return
        if mode == "direct":
            answer_now(ctx, typed, tell)  # an empty answer is refused there, with the reason
            return
        if not typed.text.strip():
            return  # nothing to ask about
        if ctx.answers.request_of(typed.source_event) is not None:
            return  # Slack's redelivery of a message already sent
        draft_id = ctx.drafts.keep_answer(typed.user, KeptAnswer(typed.channel, typed.thread_ts, typed.ts, typed.text,
                                                                  reply.id))
        if draft_id is None:
            return  # Slack's redelivery of a message already asked about: asked once, whatever the timing
        text, blocks = confirm_question(voice, voice.number(reply.mobile), typed.text, draft_id, typed.source_event)
        client.chat_postEphemeral(channel=typed.channel, user=typed.user, thread_ts=typed.thread_ts,
                                  text=text, blocks=blocks)

    @app.action(THREAD_SEND)
    def thread_send(ack: Ack, body: dict, respond: Respond) -> None:
        ack()
        kept = _kept_answer(ctx, body)
        if kept is None:
            earlier = _request_of_question(ctx, body)  # the first press of a double click sent it
            if earlier is not None:
                respond(**_replacing(voice, f"📤 已送出（發送申請 #{earlier}），會在討論串中顯示發送結果。",
                                     f"📤 Sent (request #{earlier}); its result shows in the thread."))
                return
            respond(**_replacing(voice, "這個選項已過期或不是您的訊息。", "This choice expired or is not yours."))
            return
        draft_id, draft = kept
        typed = ThreadMessage(draft.channel, draft.thread_ts, draft.ts, body["user"]["id"], draft.text)
        said: list[tuple[str, str]] = []
        outcome = answer_now(ctx, typed, lambda zh, en: said.append((zh, en)), reply_id=draft.reply_id)
        ctx.drafts.discard(draft_id)
        if outcome.verdict in (AnswerVerdict.SUBMITTED, AnswerVerdict.DUPLICATE) and not said:
            said.append(("📤 已送出，會在討論串中顯示發送結果。", "📤 Sent; its result shows in the thread."))
        elif outcome.verdict is AnswerVerdict.NO_REPLY:
            said.append(("這則回覆已無法回覆，沒有發送任何簡訊。", "That reply can no longer be answered; nothing was sent."))
        zh = "\n".join(z for z, _ in said) or "—"
        en = "\n".join(e for _, e in said) or "—"
        respond(**_replacing(voice, zh, en))

    @app.action(THREAD_NOTE)
    def thread_note(ack: Ack, body: dict, respond: Respond) -> None:
        ack()
        kept = _kept_answer(ctx, body)
        if kept is not None:
            ctx.drafts.discard(kept[0])
        respond(**_replacing(voice, "📝 已保留為討論串中的備註，沒有發送簡訊。",
                             "📝 Kept as a note in the thread; no SMS was sent."))

    @app.action(cards.ANSWER_REPLY)
    def answer_button(ack: Ack, body: dict, client: WebClient, respond: Respond) -> None:
        ack()
        reply_id = cards.clicked_id(body)
        if reply_id is None:
            return
        reply = ctx.answers.answerable(reply_id)
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


def thread_message_changed(ctx: HandlerContext, client: WebClient, typed: ThreadMessage, deleted: bool, *,
                           retried: bool) -> None:
    """A thread message edited or deleted after it was typed. Not yet confirmed: the kept answer goes, and
    an edit is asked about again with its new text (the old question's buttons then say it expired), so
    Send never texts words their author has taken back. Already a request: nothing is sent or recalled,
    and its author is told so (once: not again for Slack's redelivery of the same change)."""
    voice = ctx.voice
    kept = ctx.drafts.kept_answer_of(typed.user, typed.channel, typed.ts)
    if kept is not None:
        draft_id, draft = kept
        if not deleted and draft.text == typed.text:
            return  # already asked about these words (Slack's redelivery of this edit)
        ctx.drafts.discard(draft_id)
        if deleted or not typed.text.strip():
            return
        reply = ctx.answers.answerable(draft.reply_id)
        mobile = reply.mobile if reply is not None else None
        new_id = ctx.drafts.keep_answer(typed.user, KeptAnswer(typed.channel, typed.thread_ts, typed.ts, typed.text,
                                                                draft.reply_id))
        if new_id is None:
            return  # a redelivery of this edit kept it first and asks about it
        number = voice.number(mobile) if mobile else voice.t("原回覆者", "the sender")
        text, blocks = confirm_question(voice, number, typed.text, new_id, typed.source_event)
        client.chat_postEphemeral(channel=typed.channel, user=typed.user, thread_ts=typed.thread_ts,
                                  text=text, blocks=blocks)
        return
    request_id = ctx.answers.request_of(typed.source_event)
    if request_id is None or retried:
        return
    tell = _teller(client, typed, voice)
    if deleted:
        tell(f"刪除訊息不會撤回它已成為的發送申請 #{request_id}。",
             f"Deleting the message does not withdraw request #{request_id}, which it had already become.")
    else:
        tell(f"這則訊息在編輯前已成為發送申請 #{request_id}，編輯後的內容不會傳送；如需更正，請在討論串中另外輸入一則訊息。",
             f"This message had already become request #{request_id} before your edit; the edited text will not be "
             "sent. To correct it, type a new message in the thread.")


def answer_now(ctx: HandlerContext, typed: ThreadMessage, tell: Callable[[str, str], None], *,
               reply_id: int | None = None) -> AnswerOutcome:
    """Send the typed answer (direct mode, or once confirmed), telling its author what they must know."""
    outcome = ctx.answers.answer_in_thread(typed.channel, typed.thread_ts, typed.text, user=typed.user,
                                           source_event=typed.source_event, reply_id=reply_id)
    if outcome.verdict is AnswerVerdict.INVALID:
        tell("沒有發送這則回覆，請修正後再輸入一次：" + "；".join(p.zh for p in outcome.problems),
             "This answer was not sent; fix it and type it again: " + "; ".join(p.en for p in outcome.problems))
    elif outcome.verdict is AnswerVerdict.SUBMITTED:
        ctx.wake_poster()
        if outcome.over_limit:
            tell(*over_limit_words(ctx, outcome))
    return outcome


def confirm_question(voice: Voice, number: str, text: str, draft_id: str, message: str = "") -> cards.Rendered:
    """Only its author sees it: send what they typed to the number, or keep it as a note among colleagues.
    `message` (the typed message's `source_event`) rides in the buttons' block id, so a press after the
    draft was used can still name the request it became."""
    quoted = escape(text[:300]) + ("…" if len(text) > 300 else "")
    rendered_text, blocks = cards.ephemeral(
        voice, f"要把這則訊息以簡訊傳給 {number} 嗎？討論串中的其他訊息不會傳出。",
        f"Send this as an SMS to {number}? Other messages in the thread stay here.", extra=[f"> {quoted}"])
    block_id = f"thread_answer:{draft_id}" + (f"|{message}" if message and len(message) < 200 else "")
    blocks.insert(-1 if voice.sandbox else len(blocks), ActionsBlock(block_id=block_id, elements=[
        ButtonElement(text=voice.t("以簡訊發送", "Send as SMS"), action_id=THREAD_SEND, value=draft_id, style="primary"),
        ButtonElement(text=voice.t("只當備註", "Keep as note"), action_id=THREAD_NOTE, value=draft_id),
    ]).to_dict())
    return rendered_text, blocks


def _files_words(with_text: bool) -> tuple[str, str]:
    if with_text:
        return ("檔案無法以簡訊傳送，只有文字會傳出。要傳圖片請用 `/sms` 撰寫多媒體簡訊。",
                "Files cannot go by SMS; only the text can. For a picture, compose an MMS with `/sms`.")
    return ("檔案無法以簡訊傳送，這則訊息沒有傳出。要傳圖片請用 `/sms` 撰寫多媒體簡訊。",
            "Files cannot go by SMS, so nothing was sent. For a picture, compose an MMS with `/sms`.")


def _teller(client: WebClient, typed: ThreadMessage, voice: Voice) -> Callable[[str, str], None]:
    """Tell the message's author (only them), in its thread."""

    def tell(zh: str, en: str) -> None:
        text, blocks = cards.ephemeral(voice, zh, en)
        client.chat_postEphemeral(channel=typed.channel, user=typed.user, thread_ts=typed.thread_ts,
                                  text=text, blocks=blocks)
    return tell


def _kept_answer(ctx: HandlerContext, body: dict) -> tuple[str, KeptAnswer] | None:
    """The confirmed answer's draft, only for the person who typed it."""
    try:
        draft_id = str(body["actions"][0]["value"])
    except (KeyError, IndexError, TypeError):
        return None
    kept = ctx.drafts.kept_answer(draft_id, body.get("user", {}).get("id", ""))
    return (draft_id, kept) if kept is not None else None


def _request_of_question(ctx: HandlerContext, body: dict) -> int | None:
    """The request the question's message became, when the presser typed it (from the block id that
    `confirm_question` wrote), or None."""
    try:
        block_id = str(body["actions"][0]["block_id"])
    except (KeyError, IndexError, TypeError):
        return None
    _, _, message = block_id.partition("|")
    user = (body.get("user") or {}).get("id", "")
    return ctx.answers.request_of(message, user=user) if message.startswith("message:") and user else None


def _replacing(voice: Voice, zh: str, en: str) -> dict:
    text, blocks = cards.ephemeral(voice, zh, en)
    return {"text": text, "blocks": blocks, "response_type": "ephemeral", "replace_original": True}


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
