"""Slack surface of the reports feature (issue 6). Filled in by its feature work; registered by bot/app.py."""

from __future__ import annotations

from slack_bolt import App

from handlers.context import HandlerContext


def register(app: App, ctx: HandlerContext) -> None:
    """Nothing yet."""
