"""The whole product on loopback, for end-to-end tests: the Slack stand-in, the real Runtime (Bolt app,
services, store, sandbox) served by waitress, and a `SlackUser` that sends signed requests shaped as
Slack's. Background threads are not started: tests drain the outbox and poll by hand, so every
assertion sees a settled state."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

from bot.config import Config
from bot.push_lane import PushLane
from bot.runtime import Runtime
from bot.wsgi import build_wsgi_app, serve_in_thread, stop_server
from slackstandin import SlackStandIn, payloads
from slackstandin.signing import post_signed

SIGNING_SECRET = "test-signing-secret-0123456789"
CALLBACK_TOKEN = "callback-token-0123456789abcdef"
APPROVERS = ("U_APPROVER", "U_APPROVER2")


def make_config(standin: SlackStandIn, db_path: Path, **overrides: Any) -> Config:
    base = Config(
        slack_bot_token=standin.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=standin.api_url,
        db_path=str(db_path),
        approvers=APPROVERS,
        approval_channel="C_APPROVALS",
        replies_channel="C_REPLIES",
        alert_channel="C_ALERTS",
        callback_token=CALLBACK_TOKEN,
        status_poll_seconds=1.0,
        sandbox_delivery_seconds=0.3,
        sandbox_reply_rate=0.0,
        sandbox_credit=1000.0,
        low_credit_threshold=100.0,
        low_credit_margin=20.0,
        every8d_timeout=5.0,
        # Off unless a test turns it on with a fixed clock: a send "now" must not depend on the hour the
        # suite happens to run at (the product's default is 21:00-08:00).
        quiet_hours="",
        # Most conversation tests type an answer and expect it sent; the default (confirm: the author is
        # asked first) has its own tests in tests/test_thread_answers.py.
        thread_answers="direct",
    )
    return replace(base, **overrides)


class Product:
    """A running product: `url` serves /slack/events and the callback path."""

    def __init__(self, config: Config, standin: SlackStandIn, *, clock: Callable[[], float] = time.time) -> None:
        """`clock`: the product's time (a fixed one for tests of time-of-day rules such as quiet hours)."""
        self.standin = standin
        # The server binds its port first (port 0: the system's choice) and gets its application once the
        # runtime exists: the sandbox, built by the runtime, needs the callback URL, and a port merely
        # probed as free could be handed to the sandbox's own server meanwhile (seen under load).
        application: list[Callable] = []
        lane = PushLane()  # EVERY8D's pushes served by the loop thread, as bot/cli.py serves them
        self.server, self.port = serve_in_thread(lambda environ, start: application[0](environ, start),
                                                 host="127.0.0.1", port=0, threads=8, lane=lane)
        self.callback_url = f"http://127.0.0.1:{self.port}/every8d/callback/{config.callback_token}"
        self.runtime = Runtime(config, clock=clock, callback_url=self.callback_url if config.callback_token else None)
        self.runtime.start(scheduler=False, poster=False)
        application.append(build_wsgi_app(self.runtime.app, self.runtime.receiver))
        lane.receiver = self.runtime.receiver
        self.url = f"http://127.0.0.1:{self.port}"
        self.events_url = f"{self.url}/slack/events"

    @property
    def store(self):
        return self.runtime.store

    @property
    def sandbox(self):
        return self.runtime.sandbox

    def settle(self) -> None:
        """Let background work finish and deliver every post that is due."""
        for _ in range(5):
            self.runtime.wait_idle()
            self.runtime.poster.drain()
        self.runtime.wait_idle()

    def poll(self) -> None:
        """One scheduler tick of delivery polling, with every batch due now."""
        for batch_id in self.store.batches.tracked(time.time()):
            self.store.batches.poll_soon(batch_id, 0)
        self.runtime.poll_once()
        self.settle()

    def stop(self) -> None:
        stop_server(self.server)
        self.runtime.stop()


class SlackUser:
    """Someone in Slack: types commands and clicks, as signed HTTP requests to the app."""

    def __init__(self, product: Product, user_id: str, channel: str = "C_GENERAL") -> None:
        self.product = product
        self.user_id = user_id
        self.channel = channel

    def _post(self, body: str, content_type: str = payloads.FORM_TYPE, **kwargs: Any) -> requests.Response:
        return post_signed(self.product.events_url, body, SIGNING_SECRET, content_type=content_type, **kwargs)

    def command(self, text: str, **kwargs: Any) -> requests.Response:
        response_url = self.product.standin.new_response_url(channel=self.channel, user=self.user_id)
        body = payloads.slash_command(text, user_id=self.user_id, channel_id=self.channel, response_url=response_url)
        return self._post(body, **kwargs)

    def click(self, action_id: str, value: str, *, message: dict | None = None, **kwargs: Any) -> requests.Response:
        channel = message.get("channel") if message else None
        response_url = self.product.standin.new_response_url(
            channel=channel, message_ts=message.get("ts") if message else None, user=self.user_id
        )
        body = payloads.block_actions(
            user_id=self.user_id, action_id=action_id, value=value, channel_id=channel,
            message_ts=message.get("ts") if message else None, message=message, response_url=response_url,
            block_id=_block_of(message, action_id) or "b",
        )
        return self._post(body, **kwargs)

    def submit(self, view: dict, values: dict) -> requests.Response:
        return self._post(payloads.view_submission(user_id=self.user_id, view=view, values=values))

    def ephemerals(self) -> list[dict]:
        """What only this user was told (ephemeral messages and response_url answers)."""
        return self.product.standin.ephemerals(self.user_id)


def _block_of(message: dict | None, action_id: str) -> str | None:
    """The block_id of the block holding this action in a message: Slack sends it with the click."""
    for block in (message or {}).get("blocks") or []:
        for element in block.get("elements", []) or []:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id")
    return None


def button(message: dict, action_id: str) -> dict | None:
    """The button with this action_id in a message's blocks, or None."""
    for block in message.get("blocks") or []:
        for element in block.get("elements", []) or []:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element
    return None


def all_text(message: dict) -> str:
    """A message's text and every text in its blocks, for assertions on what a person reads."""
    return message.get("text", "") + "\n" + json.dumps(message.get("blocks") or [], ensure_ascii=False)


def wait_until(condition, timeout: float = 5.0, interval: float = 0.02):
    """Poll `condition()` until it returns something truthy (listeners finish after Slack's ack)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)
