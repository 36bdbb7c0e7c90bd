"""Can the approval card be posted where it goes? Asked of Slack after the ack, only without
BOT_APPROVAL_CHANNEL.

Why: then a request's card goes to the channel where `/sms` ran, and Slack refuses a post from a bot that is
not in that channel. The request waited for an approval nobody could give (the card set aside after a few
tries, no alert channel to say so) while its requester had read "waiting for approval". One
`conversations.info` after the ack tells them at once what to do: invite the bot, then `every8d-bot repost`
puts up the card Slack refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.context import HandlerContext

log = logging.getLogger("every8d_bot.handlers")

#: Slack's answers to conversations.info that mean the bot cannot post in the channel.
_NOT_VISIBLE = ("channel_not_found",)


def warn_if_card_unreachable(ctx: HandlerContext, client: WebClient, channel: str,
                             tell: Callable[[str, str], None], *, request_id: int | None = None) -> None:
    """In the background: if the card of a request made in `channel` cannot be posted there, `tell` the
    requester how to fix it. Nothing is said when Slack cannot be asked (its answer would be a guess)."""
    if ctx.policy.approval_channel or not channel:
        return

    def work() -> None:
        try:
            info = client.conversations_info(channel=channel)
            member = bool((info.get("channel") or {}).get("is_member"))
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error not in _NOT_VISIBLE:
                log.info("could not check the bot's membership of %s: %s", channel, error)
                return
            member = False
        if member:
            return
        which_zh = f"申請 #{request_id} 的" if request_id is not None else ""
        which_en = f"request #{request_id}'s" if request_id is not None else "the"
        tell(f"⚠️ 機器人不在 <#{channel}>，{which_zh}核准卡片無法貼出，沒有核准者看得到。請在該頻道輸入 "
             "`/invite @every8d-sms` 邀請機器人，再請管理員執行 `every8d-bot repost` 貼出卡片；"
             "或請管理員設定 BOT_APPROVAL_CHANNEL。",
             f"⚠️ The bot is not in <#{channel}>, so {which_en} approval card cannot be posted and no approver can "
             "see it. Type `/invite @every8d-sms` in that channel, then ask an admin to run `every8d-bot repost`, "
             "which posts the card; or ask an admin to set BOT_APPROVAL_CHANNEL.")

    ctx.runner(work)
