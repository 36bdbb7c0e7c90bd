"""Shortcuts: "Send as SMS" on a message (its text becomes the draft) and "Compose SMS" from anywhere.

Both open the same compose window as `/sms`, so every check, the cost preview and the approval are the
usual ones. A message's Slack formatting is turned into what a phone can show (links as text and URL).
"""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers import modals
from handlers.context import HandlerContext
from handlers.texts import sms_text_from_slack

log = logging.getLogger("every8d_bot.handlers")

#: callback_ids declared in manifest.yml (features.shortcuts).
MESSAGE_SHORTCUT = "send_as_sms"
GLOBAL_SHORTCUT = "compose_sms"


def register(app: App, ctx: HandlerContext) -> None:
    @app.shortcut(MESSAGE_SHORTCUT)
    def send_as_sms(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        message = body.get("message") or {}
        text = sms_text_from_slack(str(message.get("text") or ""))
        channel = str((body.get("channel") or {}).get("id") or "")
        name = str((body.get("channel") or {}).get("name") or "")
        open_compose(ctx, client, body, channel=channel, message=text, channel_name=name)

    @app.shortcut(GLOBAL_SHORTCUT)
    def compose_sms(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        open_compose(ctx, client, body, channel="", message="")


#: Said when a draft would have nowhere to ask for approval (no BOT_APPROVAL_CHANNEL, and no channel or a
#: direct message where it was started).
NOWHERE_TO_ASK = ("請在頻道中使用 `/sms`，或請管理員設定 BOT_APPROVAL_CHANNEL，才能從任何地方（包括私訊）撰寫簡訊。",
                  "Use `/sms` in a channel, or ask an admin to set BOT_APPROVAL_CHANNEL, to compose from anywhere "
                  "(direct messages included).")


def open_compose(ctx: HandlerContext, client: WebClient, body: dict, *, channel: str, message: str,
                 channel_name: str = "") -> None:
    """The compose window, prefilled; without a channel to ask in (a global shortcut) the approval channel
    must be configured, or the window says so instead of opening a draft that could go nowhere."""
    voice = ctx.voice
    trigger = str(body.get("trigger_id") or "")
    if ctx.policy.card_channel(channel, channel_name) is None:  # a global shortcut, or a direct message
        view = modals.notice_view(voice, voice.t(*NOWHERE_TO_ASK))
    else:
        names = ctx.audiences.template_names(modals.MAX_TEMPLATE_OPTIONS)
        view = modals.compose_view(voice, channel_id=channel or ctx.policy.approval_channel,
                                   initial={"message": message[:modals.MESSAGE_MAX_CHARS]}, templates=names,
                                   limits=ctx.limits)
    try:
        client.views_open(trigger_id=trigger, view=view)
    except SlackApiError as exc:  # an expired trigger: nothing to show it in; the person can press again
        log.info("compose window from a shortcut did not open: %s", exc.response.get("error", ""))

