"""The Workflow Builder step "Send SMS (EVERY8D)": a workflow asks for a send like a person would.

The step's inputs (recipients, message, optional time, who asks) become a normal request: the same check,
price, opt-out, approval policy and exactly-once send. A step that cannot become a request fails at once
with the reason; one that did is ended later by its request's outcome (services/notices.py
`workflow_outcome`): completed with the request id and outcome when sent (or in doubt), failed with the
reason when rejected or failed. A workflow cannot answer the quiet-hours question, so a send that would go
out inside quiet hours is scheduled for their end. Slack redelivering the event finds the first request.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from every8d.problems import Problem
from services.compose import MIN_LEAD_SECONDS, ComposeInput, Preview
from services.policy import Policy
from services.ports import Clock
from services.quiet_hours import quiet_until, rescheduled
from services.requests import RequestService

log = logging.getLogger("every8d_bot.workflow_step")

#: The step's callback_id in manifest.yml (`functions:`).
CALLBACK_ID = "send_sms"
MAX_INPUT_CHARS = 20_000


@dataclass(frozen=True)
class StepStarted:
    """A request was made (or found, for a redelivered event); the step ends when it settles."""

    request_id: int
    scheduled_for: datetime | None = None


@dataclass(frozen=True)
class StepRefused:
    """Why no request was made: the step fails with these words."""

    zh: str
    en: str


def start_step(
    execution_id: str,
    inputs: Mapping[str, object],
    *,
    requests: RequestService,
    check: Callable[[ComposeInput], Preview],
    policy: Policy,
    clock: Clock,
) -> StepStarted | StepRefused:
    """Turn the step's inputs into a request, or say why not."""
    recipients = _text(inputs.get("recipients"))
    message = _text(inputs.get("message"))
    requester = _text(inputs.get("requested_by"))
    if not recipients or not message:
        return StepRefused("步驟需要收件人與訊息內容。", "The step needs recipients and a message.")
    if len(recipients) > MAX_INPUT_CHARS or len(message) > MAX_INPUT_CHARS:
        return StepRefused("收件人或訊息內容太長。", "The recipients or the message are too long.")
    if not requester.startswith(("U", "W")):
        return StepRefused("步驟需要「申請人」（一位 Slack 使用者）。", "The step needs 'Requested by' (a Slack user).")
    if not policy.approval_channel:
        return StepRefused("管理員尚未設定核准頻道（BOT_APPROVAL_CHANNEL），工作流程無法送出申請。",
                           "No approval channel is set (BOT_APPROVAL_CHANNEL), so a workflow cannot ask for a send.")
    send_at = _time(inputs.get("send_at"))
    if isinstance(send_at, StepRefused):
        return send_at
    try:
        return _request(execution_id, recipients, message, requester, send_at, requests=requests, check=check,
                        policy=policy, clock=clock)
    except Exception as exc:  # noqa: BLE001 - a step nobody ends hangs the user's workflow without a word
        log.exception("workflow step %s could not become a request", execution_id[:12])
        earlier = _made_anyway(requests, execution_id)
        if earlier is not None:  # committed before the fault: its outcome ends the step, as usual
            return StepStarted(earlier)
        return _failure(exc)


def _request(execution_id: str, recipients: str, message: str, requester: str, send_at: datetime | None, *,
             requests: RequestService, check: Callable[[ComposeInput], Preview], policy: Policy,
             clock: Clock) -> StepStarted | StepRefused:
    """Checked inputs -> the same check, price and approval as a person's draft (quiet hours: after them)."""
    compose = ComposeInput(kind="sms", recipients_text=recipients, message=message, send_at=send_at)
    preview = check(compose)
    if preview.ok and quiet_until(policy.quiet_hours, compose.send_at, clock()) is not None:
        later = rescheduled(policy.quiet_hours, compose.send_at, clock(), min_lead_seconds=MIN_LEAD_SECONDS)
        preview = check(replace(compose, send_at=later))
    if not preview.ok:
        return _refused(preview.problems)
    submitted = requests.submit(preview, requester=requester, origin_channel=policy.approval_channel,
                                source_event=f"workflow:{execution_id}", workflow_execution=execution_id)
    return StepStarted(submitted.request_id, preview.input.send_at)


def _made_anyway(requests: RequestService, execution_id: str) -> int | None:
    """The request this execution made before something failed, if it was committed."""
    try:
        earlier = requests.store.requests.by_source_event(f"workflow:{execution_id}")
    except Exception:  # noqa: BLE001 - cannot even read: nothing to find
        return None
    return earlier.id if earlier is not None else None


def _failure(error: BaseException) -> StepRefused:
    """Why the step failed when the bot itself could not take it: the database by name (an admin must free
    the disk or fix the file), anything else as the log's to explain. Never a traceback."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, sqlite3.Error):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return StepRefused("機器人的資料庫目前無法寫入（磁碟已滿或唯讀），沒有建立申請，也沒有送出任何簡訊。請通知管理員，恢復後再執行一次工作流程。",
                           "The bot's database cannot be written right now (disk full or read-only): no request was "
                           "made and nothing was sent. Tell an admin, and run the workflow again once it is fixed.")
    return StepRefused("機器人處理時發生錯誤，沒有建立申請，也沒有送出任何簡訊。管理員可在機器人的日誌中找到原因。",
                       "The bot hit an error: no request was made and nothing was sent. An admin can find the cause in "
                       "the bot's log.")


def outputs(request_id: int, outcome: str, batch_id: str | None) -> dict[str, str]:
    """What the step hands the next steps of the workflow (manifest `output_parameters`)."""
    return {"request_id": str(request_id), "outcome": outcome, "batch_id": batch_id or ""}


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _time(value: object) -> datetime | None | StepRefused:
    """Workflow Builder sends a timestamp input as epoch seconds (a number or its text); empty: now."""
    if value in (None, ""):
        return None
    try:
        epoch = float(str(value))
        return datetime.fromtimestamp(epoch, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return StepRefused("發送時間不是有效的時間。", "The send time is not a valid time.")


def _refused(problems: list[Problem]) -> StepRefused:
    return StepRefused("無法送出申請：" + "；".join(p.zh for p in problems),
                       "The send was not requested: " + "; ".join(p.en for p in problems))
