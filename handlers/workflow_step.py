"""The Workflow Builder step "Send SMS (EVERY8D)" (a Bolt custom function, declared in manifest.yml).

The listener turns the step's inputs into a request (services/workflow_step.py), acknowledging the event
only once that is written, and fails the step at once when it cannot; otherwise it leaves the step running:
the request's outcome ends it through the outbox (`functions.completeSuccess` / `functions.completeError`),
after the approval and the send.
"""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, Fail

from handlers.context import HandlerContext
from services.workflow_step import CALLBACK_ID, StepRefused, start_step

log = logging.getLogger("every8d_bot.handlers")


def register(app: App, ctx: HandlerContext) -> None:
    # Acknowledged only once the step's request is committed (or refused): a bot killed before that leaves
    # Slack without an answer, so Slack sends the event again and the restart takes it (the execution id
    # is the request's source event: a retry of a step already taken finds its request).
    @app.function(CALLBACK_ID, auto_acknowledge=False)
    def send_sms_step(ack: Ack, inputs: dict, event: dict, fail: Fail) -> None:
        execution = str(event.get("function_execution_id") or "")
        if not execution:
            ack()
            return
        started = start_step(execution, inputs or {}, requests=ctx.requests, check=ctx.drafts.check, policy=ctx.policy,
                             clock=ctx.clock)
        ack()
        if isinstance(started, StepRefused):
            fail(error=ctx.voice.t(started.zh, started.en))
            return
        log.info("workflow step %s became request %s", execution[:12], started.request_id)
        ctx.wake_poster()
