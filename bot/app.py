"""The Bolt app: built by a factory (never at import time), with every Slack surface registered.

`token_verification_enabled=False`: building the app makes no network call (tests, the console and
`doctor` build it freely); `every8d-bot doctor` checks the token instead. Listener errors are logged
and answered with a plain apology, never a stack trace.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor

from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk import WebClient

from handlers import actions, audiences, cards, commands, conversations, home, optout, reports, views
from handlers.context import HandlerContext

log = logging.getLogger("every8d_bot.app")


def create_app(
    ctx: HandlerContext, client: WebClient, *, signing_secret: str, listener_executor: Executor | None = None
) -> App:
    """`listener_executor` runs Bolt's listeners (the work after each ack); the runtime passes one it
    can wait on, so tests and the console know when a click's work is done."""
    app = App(
        client=client,
        signing_secret=signing_secret or "socket-mode-does-not-sign",
        token_verification_enabled=False,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("every8d_bot.bolt"),
        **({"listener_executor": listener_executor} if listener_executor is not None else {}),
    )
    commands.register(app, ctx)
    actions.register(app, ctx)
    views.register(app, ctx)
    home.register(app, ctx)
    for feature in (conversations, audiences, optout, reports):
        feature.register(app, ctx)

    @app.event("message")
    def ignore_messages() -> None:
        """Messages in channels are not commands (two-way replies in threads come later)."""

    @app.error
    def on_error(error: Exception, body: dict, respond=None) -> None:
        log.error("a Slack request failed: %s", error, exc_info=not isinstance(error, BoltError))
        if respond is None or not (body or {}).get("response_url"):
            return
        text, blocks = cards.ephemeral(
            ctx.voice,
            "抱歉，處理時發生錯誤，沒有任何簡訊因此被送出。請再試一次；若持續發生，請聯絡管理員。",
            "Sorry, something went wrong; nothing was sent because of it. Try again, and tell an admin if it persists.",
        )
        try:
            respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
        except Exception:  # noqa: BLE001
            log.debug("could not tell the user about the error")

    return app
