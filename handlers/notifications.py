"""Turn an outbox item (what the workflows asked to tell Slack) into one Slack call: a new message, a
reply in a request's thread, or an update of a message posted before. Rendered from the current state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from handlers import cards
from handlers.texts import Voice
from services import notices, workflow_step
from services.budgets import BudgetService
from services.credit import CreditService
from services.ports import Clock
from services.series import SERIES_CARD, SERIES_NOTE
from services.summary import request_summary
from services.tracking import summary_digest
from storage import OutboxItem, Store


@dataclass
class Plan:
    """One Slack call. `update_ts` set: chat.update that message; else chat.postMessage (in `thread_ts`'s
    thread if set). `on_posted(ts)` records where the message landed. `wait`: its thread does not exist
    yet (the card is still to be posted); try again later."""

    channel: str
    text: str = ""
    blocks: list | None = None
    thread_ts: str | None = None
    update_ts: str | None = None
    on_posted: Callable[[str], None] | None = None
    wait: bool = False
    skip: bool = False
    #: Another Web API method than a post (e.g. `functions.completeSuccess`), called with `params`.
    api: str = ""
    params: dict | None = None


class NotificationRenderer:
    def __init__(self, store: Store, voice: Voice, clock: Clock, credit: CreditService | None = None,
                 budgets: BudgetService | None = None, *, thread_answers: str = "confirm") -> None:
        self.store = store
        self.voice = voice
        self.clock = clock
        self.credit = credit
        #: BOT_THREAD_ANSWERS: what a reply in a thread says typing there does.
        self.thread_answers = thread_answers
        #: Monthly budgets: a pending card shows what is left, or that approving needs the override.
        self.budgets = budgets

    def plan(self, item: OutboxItem) -> Plan:
        """The Slack call for this outbox item; a kind this version does not know is skipped (dropped)."""
        render = RENDERERS.get(item.kind)
        if render is None:
            return Plan(channel=item.channel or "", skip=True)
        return render(self, item)

    # -- per kind ----------------------------------------------------------------------------------

    def _approval_card(self, item: OutboxItem) -> Plan:
        request = self.store.requests.get(item.ref["request_id"])
        if request is None:
            return Plan(channel=item.channel or "", skip=True)
        shown = self.store.requests.recipients(request.id)[: cards.RECIPIENTS_SHOWN]
        budget = self.budgets.check_request(request) if self.budgets is not None else None
        text, blocks = cards.approval_card(self.voice, request, shown, now=self.clock(),
                                           parts=self.store.parts.of_request(request.id), budget=budget)

        def remember(ts: str) -> None:
            self.store.requests.update(request.id, approval_ts=ts)

        # An answer typed in a batch's thread has its card inside that thread, not as a new message.
        return Plan(request.approval_channel, text, blocks, update_ts=request.approval_ts, on_posted=remember,
                    thread_ts=request.thread_ts)

    def _thread_plan(self, request_id: int, text: str, blocks: list) -> Plan:
        request = self.store.requests.get(request_id)
        if request is None:
            return Plan(channel="", skip=True)
        if request.posts_thread_ts is None:
            return Plan(request.posts_channel, wait=True)
        return Plan(request.posts_channel, text, blocks, thread_ts=request.posts_thread_ts)

    def _send_result(self, item: OutboxItem) -> Plan:
        request = self.store.requests.get(item.ref["request_id"])
        if request is None:
            return Plan(channel="", skip=True)
        text, blocks = cards.send_result(self.voice, request, self.store.parts.of_request(request.id))
        return self._thread_plan(request.id, text, blocks)

    def _batch_summary(self, item: OutboxItem) -> Plan:
        """The one summary of a request's thread: every batch of the request (one per part) counted
        together, kept in the lead batch's message."""
        request = self.store.requests.by_batch(item.ref["batch_id"])
        seen = request_summary(self.store, request.id, failures_listed=cards.FAILURES_LISTED) if request else None
        if request is None or seen is None:
            return Plan(channel="", skip=True)
        counts = seen.counts
        text, blocks = cards.summary_card(self.voice, seen, self.clock())
        plan = self._thread_plan(request.id, text, blocks)
        plan.update_ts = seen.lead.summary_ts

        def remember(ts: str) -> None:
            # What the message now shows, so the poller only re-posts when the counts move again.
            self.store.batches.set_summary(seen.lead.batch_id, ts=ts, digest=summary_digest(seen.state, counts))

        plan.on_posted = remember
        return plan

    def _reply(self, item: OutboxItem, *, in_thread: bool) -> Plan:
        reply = self.store.replies.get(item.ref["reply_id"])
        if reply is None:
            return Plan(channel="", skip=True)
        request = self.store.requests.by_batch(reply.batch_id) if reply.batch_id else None
        text, blocks = cards.reply_post(self.voice, reply, request, in_thread=in_thread,
                                        thread_answers=self.thread_answers)
        if in_thread and request is not None:
            return self._thread_plan(request.id, text, blocks)
        return Plan(item.channel or "", text, blocks)

    def _reply_in_thread(self, item: OutboxItem) -> Plan:
        return self._reply(item, in_thread=True)

    def _reply_in_channel(self, item: OutboxItem) -> Plan:
        return self._reply(item, in_thread=False)

    def _credit_low(self, item: OutboxItem) -> Plan:
        text, blocks = cards.credit_low(
            self.voice, item.ref["credit"], item.ref["threshold"], self.trend_line()
        )
        return Plan(item.channel or "", text, blocks)

    def _credit_recovered(self, item: OutboxItem) -> Plan:
        text, blocks = cards.credit_recovered(self.voice, item.ref["credit"])
        return Plan(item.channel or "", text, blocks)

    def _cancel_result(self, item: OutboxItem) -> Plan:
        text, blocks = cards.cancel_result(self.voice, item.ref["deleted"], item.ref["refunded"], item.ref["by"])
        return self._thread_plan(item.ref["request_id"], text, blocks)

    def _thread_note(self, item: OutboxItem) -> Plan:
        text, blocks = cards.note(self.voice, item.ref["zh"], item.ref["en"])
        return self._thread_plan(item.ref["request_id"], text, blocks)

    def _requester_update(self, item: OutboxItem) -> Plan:
        """A direct message (the channel is the requester's user id: Slack posts it in the app's
        Messages tab)."""
        request = self.store.requests.get(item.ref["request_id"])
        if request is None:
            return Plan(channel="", skip=True)
        text, blocks = cards.requester_update(self.voice, request, item.ref["event"])
        return Plan(item.channel or request.requester, text, blocks)

    def _workflow_outcome(self, item: OutboxItem) -> Plan:
        """End the Workflow Builder step that created the request: complete it with the request id and
        outcome when it was sent (or is in doubt), fail it with the reason when rejected or failed."""
        request = self.store.requests.get(item.ref["request_id"])
        execution = item.ref["execution_id"]
        event = item.ref["event"]
        channel = item.channel or f"workflow:{execution}"
        if request is None:
            return Plan(channel=channel, api="functions.completeError",
                        params={"function_execution_id": execution, "error": "request not found"})
        if event in ("sent", "unknown"):
            return Plan(channel=channel, api="functions.completeSuccess",
                        params={"function_execution_id": execution,
                                "outputs": workflow_step.outputs(request.id, event, request.batch_id)})
        if event == "rejected":
            reason = request.decision_reason or ""
            error = self.voice.t(f"申請 #{request.id} 已被駁回" + (f"：{reason}" if reason else ""),
                                 f"Request #{request.id} was rejected" + (f": {reason}" if reason else ""))
        else:
            error = self.voice.t(f"申請 #{request.id} 發送失敗：{request.error_zh or ''}",
                                 f"Request #{request.id} failed: {request.error_en or ''}")
        return Plan(channel=channel, api="functions.completeError",
                    params={"function_execution_id": execution, "error": error[:1000]})

    def _alert_note(self, item: OutboxItem) -> Plan:
        text, blocks = cards.note(self.voice, item.ref["zh"], item.ref["en"])
        return Plan(item.channel or "", text, blocks)
    def _series_card(self, item: OutboxItem) -> Plan:
        from handlers.series import series_card  # the series' own module renders it
        from services.series import upcoming_runs

        series = self.store.series.get(item.ref["series_id"])
        if series is None:
            return Plan(channel="", skip=True)
        text, blocks = series_card(self.voice, series, upcoming_runs(series, self.clock()))
        return Plan(series.approval_channel, text, blocks, update_ts=series.approval_ts,
                    on_posted=lambda ts: self.store.series.set_posted(series.id, ts))

    def _series_note(self, item: OutboxItem) -> Plan:
        series = self.store.series.get(item.ref["series_id"])
        if series is None:
            return Plan(channel="", skip=True)
        if series.approval_ts is None:
            return Plan(series.approval_channel, wait=True)
        text, blocks = cards.note(self.voice, item.ref["zh"], item.ref["en"])
        return Plan(series.approval_channel, text, blocks, thread_ts=series.approval_ts)

    # -- shared ------------------------------------------------------------------------------------

    def trend_line(self) -> str:
        """The credit trend in words (see `cards.trend_line`), or empty without a credit service."""
        return cards.trend_line(self.voice, self.credit.trend()) if self.credit is not None else ""


#: Each outbox kind (services/notices.py) and the method that renders it: one table, no names built from
#: strings.
RENDERERS: dict[str, Callable[[NotificationRenderer, OutboxItem], Plan]] = {
    notices.APPROVAL_CARD: NotificationRenderer._approval_card,
    notices.SEND_RESULT: NotificationRenderer._send_result,
    notices.BATCH_SUMMARY: NotificationRenderer._batch_summary,
    notices.REPLY_IN_THREAD: NotificationRenderer._reply_in_thread,
    notices.REPLY_IN_CHANNEL: NotificationRenderer._reply_in_channel,
    notices.CREDIT_LOW: NotificationRenderer._credit_low,
    notices.CREDIT_RECOVERED: NotificationRenderer._credit_recovered,
    notices.CANCEL_RESULT: NotificationRenderer._cancel_result,
    notices.THREAD_NOTE: NotificationRenderer._thread_note,
    notices.REQUESTER_UPDATE: NotificationRenderer._requester_update,
    notices.WORKFLOW_OUTCOME: NotificationRenderer._workflow_outcome,
    notices.ALERT_NOTE: NotificationRenderer._alert_note,
    SERIES_CARD: NotificationRenderer._series_card,
    SERIES_NOTE: NotificationRenderer._series_note,
}
KINDS = tuple(RENDERERS)
