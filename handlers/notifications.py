"""Turn an outbox item (what the workflows asked to tell Slack) into one Slack call: a new message, a
reply in a request's thread, or an update of a message posted before. Rendered from the current state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from handlers import cards
from handlers.reports import report_message
from handlers.texts import Voice
from services import notices, workflow_step
from services.credit import CreditService
from services.ports import Clock
from services.posts import PostService
from services.reports import WeeklyReport, draw_chart
from services.series import SERIES_CARD, SERIES_NOTE
from storage import OutboxItem


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
    #: A file to share instead of a message (`files_upload_v2`'s filename, content, title, alt_txt), with
    #: `text` as its comment.
    upload: dict | None = None


class NotificationRenderer:
    """Outbox item -> `Plan`, from the read models of services/posts.py: what to show comes from there, how
    it looks from handlers/cards.py; where a message landed goes back through the same service."""

    def __init__(self, posts: PostService, voice: Voice, clock: Clock, credit: CreditService | None = None, *,
                 thread_answers: str = "confirm",
                 chart: Callable[[WeeklyReport], bytes | None] = draw_chart) -> None:
        self.posts = posts
        self.voice = voice
        self.clock = clock
        self.credit = credit
        #: BOT_THREAD_ANSWERS: what a reply in a thread says typing there does.
        self.thread_answers = thread_answers
        #: Draws the weekly report's chart (None: no matplotlib, the report goes as text only).
        self.chart = chart

    def plan(self, item: OutboxItem) -> Plan:
        """The Slack call for this outbox item; a kind this version does not know is skipped (dropped)."""
        render = RENDERERS.get(item.kind)
        if render is None:
            return Plan(channel=item.channel or "", skip=True)
        return render(self, item)

    # -- per kind ----------------------------------------------------------------------------------

    def _approval_card(self, item: OutboxItem) -> Plan:
        seen = self.posts.approval_card(item.ref["request_id"], recipients_shown=cards.RECIPIENTS_SHOWN)
        if seen is None:
            return Plan(channel=item.channel or "", skip=True)
        request = seen.request
        text, blocks = cards.approval_card(self.voice, request, seen.recipients, now=self.clock(),
                                           parts=seen.parts, budget=seen.budget)
        # An answer typed in a batch's thread has its card inside that thread, not as a new message.
        return Plan(request.approval_channel, text, blocks, update_ts=request.approval_ts,
                    on_posted=partial(self.posts.approval_card_posted, request.id), thread_ts=request.thread_ts)

    def _thread_plan(self, request_id: int, text: str, blocks: list) -> Plan:
        request = self.posts.request(request_id)
        if request is None:
            return Plan(channel="", skip=True)
        if request.posts_thread_ts is None:
            return Plan(request.posts_channel, wait=True)
        return Plan(request.posts_channel, text, blocks, thread_ts=request.posts_thread_ts)

    def _send_result(self, item: OutboxItem) -> Plan:
        seen = self.posts.send_result(item.ref["request_id"])
        if seen is None:
            return Plan(channel="", skip=True)
        text, blocks = cards.send_result(self.voice, seen.request, seen.parts)
        return self._thread_plan(seen.request.id, text, blocks)

    def _batch_summary(self, item: OutboxItem) -> Plan:
        """The one summary of a request's thread: every batch of the request (one per part) counted
        together, kept in the lead batch's message."""
        seen = self.posts.batch_summary(item.ref["batch_id"], failures_listed=cards.FAILURES_LISTED)
        if seen is None:
            return Plan(channel="", skip=True)
        text, blocks = cards.summary_card(self.voice, seen, self.clock())
        plan = self._thread_plan(seen.request.id, text, blocks)
        plan.update_ts = seen.lead.summary_ts
        # What the message now shows, so the poller only re-posts when the counts move again.
        plan.on_posted = partial(self.posts.summary_posted, seen)
        return plan

    def _reply(self, item: OutboxItem, *, in_thread: bool) -> Plan:
        seen = self.posts.reply(item.ref["reply_id"])
        if seen is None:
            return Plan(channel="", skip=True)
        text, blocks = cards.reply_post(self.voice, seen.reply, seen.request, in_thread=in_thread,
                                        thread_answers=self.thread_answers)
        if in_thread and seen.request is not None:
            return self._thread_plan(seen.request.id, text, blocks)
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
        request = self.posts.request(item.ref["request_id"])
        if request is None:
            return Plan(channel="", skip=True)
        text, blocks = cards.requester_update(self.voice, request, item.ref["event"])
        return Plan(item.channel or request.requester, text, blocks)

    def _workflow_outcome(self, item: OutboxItem) -> Plan:
        """End the Workflow Builder step that created the request: complete it with the request id and
        outcome when it was sent (or is in doubt), fail it with the reason when rejected or failed."""
        request = self.posts.request(item.ref["request_id"])
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

        series = self.posts.series(item.ref["series_id"])
        if series is None:
            return Plan(channel="", skip=True)
        text, blocks = series_card(self.voice, series, upcoming_runs(series, self.clock()))
        return Plan(series.approval_channel, text, blocks, update_ts=series.approval_ts,
                    on_posted=partial(self.posts.series_card_posted, series.id))

    def _series_note(self, item: OutboxItem) -> Plan:
        series = self.posts.series(item.ref["series_id"])
        if series is None:
            return Plan(channel="", skip=True)
        if series.approval_ts is None:
            return Plan(series.approval_channel, wait=True)
        text, blocks = cards.note(self.voice, item.ref["zh"], item.ref["en"])
        return Plan(series.approval_channel, text, blocks, thread_ts=series.approval_ts)

    def _weekly_report(self, item: OutboxItem) -> Plan:
        """Last week's report in the alert channel: the chart's upload carries the text as its comment
        (one call, so a retry never leaves half a report); without a chart, a plain message."""
        ref = item.ref
        report = self.posts.weekly_report(ref["start"], ref["end"], ref["label"])
        text, blocks, upload = report_message(self.voice, report, self.chart(report))
        return Plan(item.channel or "", text, blocks, upload=upload)

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
    notices.WEEKLY_REPORT: NotificationRenderer._weekly_report,
}
KINDS = tuple(RENDERERS)
