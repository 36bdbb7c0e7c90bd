"""The Bolt app: built by a factory (never at import time), with every Slack surface registered.

`token_verification_enabled=False`: building the app makes no network call (tests, the console and
`doctor` build it freely); `every8d-bot doctor` checks the token instead. Listener errors are logged
and answered with a plain apology, never a stack trace.
"""

from __future__ import annotations

import logging
import sqlite3
from concurrent.futures import Executor

from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk import WebClient

from bot.identity import BotIdentity
from handlers import (
    actions,
    audiences,
    autoreply,
    budgets,
    cards,
    commands,
    conversations,
    home,
    ignored,
    optout,
    reports,
    series,
    shortcuts,
    submissions,
    workflow_step,
)
from handlers.context import HandlerContext

log = logging.getLogger("every8d_bot.app")


def create_app(
    ctx: HandlerContext,
    client: WebClient,
    *,
    signing_secret: str,
    listener_executor: Executor | None = None,
    identity: BotIdentity | None = None,
) -> App:
    """`listener_executor` runs Bolt's listeners (the work after each ack); the runtime passes one it
    can wait on, so tests and the console know when a click's work is done. `identity` authorizes
    requests without a network call (see bot/identity.py)."""
    identity = identity or BotIdentity(client, client.token or "")
    # Bolt warns that the client's token is "ignored" when `authorize` is given; it is not (the
    # authorizer hands Bolt the same token), so keep that one misleading line out of the logs.
    bolt_log = logging.getLogger("every8d_bot.bolt")
    level = bolt_log.level
    bolt_log.setLevel(logging.ERROR)
    try:
        app = App(
            client=client,
            authorize=identity.authorizer(),
            signing_secret=signing_secret or "socket-mode-does-not-sign",
            token_verification_enabled=False,
            process_before_response=False,
            raise_error_for_unhandled_request=False,
            logger=logging.getLogger("every8d_bot.bolt"),
            **({"listener_executor": listener_executor} if listener_executor is not None else {}),
        )
    finally:
        bolt_log.setLevel(level)
    commands.register(app, ctx)
    actions.register(app, ctx)
    submissions.register(app, ctx)
    home.register(app, ctx)
    # conversations listens to every channel message (acked and ignored unless it answers a reply).
    for feature in (conversations, audiences, optout, reports, shortcuts, workflow_step, autoreply, budgets, series):
        feature.register(app, ctx)
    ignored.register(app, ctx)  # last: it matches whatever no surface above took

    @app.error
    def on_error(error: Exception, body: dict, respond=None) -> None:
        log.error("a Slack request failed: %s", error, exc_info=not isinstance(error, BoltError))
        if respond is None or not (body or {}).get("response_url"):
            return
        text, blocks = cards.ephemeral(ctx.voice, *_apology(error))
        try:
            respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
        except Exception:  # noqa: BLE001
            log.debug("could not tell the user about the error")

    return app


def _apology(error: BaseException) -> tuple[str, str]:
    """What the person is told when their request failed: the database's refusal by name (a full disk or a
    read-only file needs an admin, not another click), anything else as a plain apology."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, sqlite3.Error):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return ("抱歉，機器人的資料庫目前無法寫入（磁碟已滿或唯讀），這個動作沒有生效，也沒有任何簡訊被送出。請通知管理員；"
                "恢復後再按一次即可。",
                "Sorry, the bot's database cannot be written right now (disk full or read-only), so this did not take "
                "effect and nothing was sent. Please tell an admin; once it is fixed, press it again.")
    return ("抱歉，處理時發生錯誤，沒有任何簡訊因此被送出。請再試一次；若持續發生，請聯絡管理員。",
            "Sorry, something went wrong; nothing was sent because of it. Try again, and tell an admin if it persists.")
