"""The posts the workflows ask for, by kind. Each goes through the outbox (storage/outbox.py) in the
same transaction as the change it reports; handlers/notifications.py renders them from the current
state when they go out, so a post delayed by a Slack outage still shows the truth."""

from __future__ import annotations

from storage import Store

APPROVAL_CARD = "approval_card"  # post or update the request's card (its thread is the batch thread)
SEND_RESULT = "send_result"  # first thread reply: batch id, messages, points, credit; or the failure
BATCH_SUMMARY = "batch_summary"  # the one summary message of a batch, edited in place
REPLY_IN_THREAD = "reply_in_thread"
REPLY_IN_CHANNEL = "reply_in_channel"
CREDIT_LOW = "credit_low"
CREDIT_RECOVERED = "credit_recovered"
CANCEL_RESULT = "cancel_result"
THREAD_NOTE = "thread_note"  # a short line in a request's thread (reconciled, marked sent, resent)
WORKFLOW_OUTCOME = "workflow_outcome"  # complete (or fail) the Workflow Builder step that created a request
REQUESTER_UPDATE = "requester_update"  # a direct message to the requester: approved, rejected, sent, failed…
ALERT_NOTE = "alert_note"  # a short line in the alert channel (the watchdog's findings)
WEEKLY_REPORT = "weekly_report"  # last week's report in the alert channel (the chart, or text only)

#: What a requester is told about, privately (they are often not in the approval channel).
REQUESTER_EVENTS = ("approved", "rejected", "sent", "failed", "unknown")


def card(store: Store, request_id: int, channel: str) -> None:
    store.outbox.enqueue(APPROVAL_CARD, {"request_id": request_id}, channel=channel, collapse=True)


def send_result(store: Store, request_id: int, channel: str, attempt: int) -> None:
    store.outbox.enqueue(
        SEND_RESULT,
        {"request_id": request_id, "attempt": attempt},
        channel=channel,
        dedupe_key=f"send_result:{request_id}:{attempt}",
    )


def summary(store: Store, batch_id: str, channel: str) -> None:
    store.outbox.enqueue(BATCH_SUMMARY, {"batch_id": batch_id}, channel=channel, collapse=True)


def reply(store: Store, reply_id: int, thread_channel: str | None, replies_channel: str) -> None:
    if thread_channel:
        store.outbox.enqueue(
            REPLY_IN_THREAD, {"reply_id": reply_id}, channel=thread_channel, dedupe_key=f"reply_thread:{reply_id}"
        )
    if replies_channel:
        store.outbox.enqueue(
            REPLY_IN_CHANNEL, {"reply_id": reply_id}, channel=replies_channel, dedupe_key=f"reply_channel:{reply_id}"
        )


def thread_note(store: Store, request_id: int, channel: str, zh: str, en: str, key: str) -> None:
    store.outbox.enqueue(
        THREAD_NOTE,
        {"request_id": request_id, "zh": zh, "en": en},
        channel=channel,
        dedupe_key=f"note:{request_id}:{key}",
    )


def requester_update(store: Store, request_id: int, requester: str, event: str, attempt: int = 0) -> None:
    """Tell the requester, in their direct messages with the bot, what became of their request. Once per
    event and send attempt (a resend that succeeds is told again; a retried enqueue is not)."""
    if event not in REQUESTER_EVENTS or not requester.startswith(("U", "W")):
        return
    store.outbox.enqueue(
        REQUESTER_UPDATE,
        {"request_id": request_id, "event": event},
        channel=requester,
        dedupe_key=f"requester:{request_id}:{event}:{attempt}",
    )


#: The outcomes that end a Workflow Builder step (approved is not one: the send is still to come).
WORKFLOW_ENDS = ("rejected", "sent", "failed", "unknown")


def workflow_outcome(store: Store, request_id: int, event: str) -> None:
    """If a Workflow Builder step created this request, end it with this outcome (once: the first final
    outcome ends the step; a later resend cannot reopen it)."""
    if event not in WORKFLOW_ENDS:
        return
    execution = store.workflow_steps.execution_of(request_id)
    if execution is None:
        return
    store.outbox.enqueue(
        WORKFLOW_OUTCOME,
        {"request_id": request_id, "event": event, "execution_id": execution},
        channel=f"workflow:{execution}",
        dedupe_key=f"workflow:{execution}",
    )


def alert_note(store: Store, channel: str, zh: str, en: str, key: str, *, request_id: int | None = None) -> None:
    """A line in the alert channel (none configured: nothing), said once per `key`."""
    if not channel:
        return
    ref = {"zh": zh, "en": en, **({"request_id": request_id} if request_id is not None else {})}
    store.outbox.enqueue(ALERT_NOTE, ref, channel=channel, dedupe_key=alert_key(key))


def alert_key(key: str) -> str:
    """The dedupe key of the alert note said once per `key` (find out whether it was queued)."""
    return f"alert:{key}"


def weekly_report(store: Store, channel: str, label: str, start: float, end: float) -> bool:
    """Post the report of the week `label` ([start, end)) to `channel`, once per week (its dedupe key);
    its figures are counted when it goes out. True if this call queued it."""
    return store.outbox.enqueue(WEEKLY_REPORT, {"label": label, "start": start, "end": end}, channel=channel,
                                dedupe_key=weekly_report_key(label))


def weekly_report_key(label: str) -> str:
    """The dedupe key of the week `label`'s report post (find it again while it waits for Slack)."""
    return f"weekly_report:{label}"
