"""What the app is sent but does not use: acked with 200 and dropped.

Slack retries an event it got no 200 for (up to three times, then counts it as a failure and may disable
the subscription), and shows a warning sign on a button whose click was not acked. So every event type and
interaction that reaches the app without a listener of its own ends here. `register` must run after every
other surface's: Bolt gives a request to the first listener that matches, and these match anything.
"""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App

from handlers.context import HandlerContext
from services.workflow_step import CALLBACK_ID

log = logging.getLogger("every8d_bot.handlers")

_ANY = re.compile(r".*")

#: Events that mean the bot can no longer act in this workspace: worth a line in the log.
_LOST_ACCESS = ("tokens_revoked", "app_uninstalled")


def _not_our_step(body: dict) -> bool:
    """Not our Workflow Builder step's event: that one is acknowledged by its own listener only once its
    request is written (handlers/workflow_step.py). Acking it here, after that listener's wait ran out,
    told Slack "got it" for a step the bot may never take; without it Slack sends the event again."""
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict) or event.get("type") != "function_executed":
        return True
    function = event.get("function")
    return not (isinstance(function, dict) and function.get("callback_id") == CALLBACK_ID)


def register(app: App, ctx: HandlerContext) -> None:
    @app.event(_ANY, matchers=[_not_our_step])
    def unused_event(event: dict) -> None:
        """Bolt acks events itself once a listener matches; nothing else to do."""
        kind = str(event.get("type", ""))[:40]
        if kind in _LOST_ACCESS:
            log.warning("Slack says the app lost access to this workspace (%s): posts will fail until it is "
                        "reinstalled", kind)

    @app.action(_ANY)
    def unused_action(ack: Ack) -> None:
        """A link button (its URL opens in the browser) or a button of an old card: ack so Slack shows no error."""
        ack()

    @app.view_closed(_ANY)
    def modal_closed(ack: Ack) -> None:
        ack()

    @app.view_submission(_ANY)
    def unknown_submission(ack: Ack) -> None:
        """A modal this version no longer knows (opened before an upgrade): closing it is all we can do."""
        ack()
