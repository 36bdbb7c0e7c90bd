"""Deliver the outbox to Slack, in order, retrying until Slack takes each post, and each post once.

Slack's rate limits (429 + Retry-After) are honoured by slack_sdk's RateLimitErrorRetryHandler on the
WebClient; what still fails (Slack down, a network error) stays in the outbox and is tried again with
backoff (at most MAX_BACKOFF apart), and the later posts of the same thread (a request's card, send
result, summary) wait behind it so a thread never reads out of order. Posts of other threads go on: one
failing post once held back a whole channel for eight minutes.

Once, not twice: each new message carries its outbox row's id in Slack message metadata. A row whose
call started but was never marked done (the process died in between, or the answer was lost) is first
looked for in Slack (conversations.replies / conversations.history): found, it is only marked done.
A restart picks up where it stopped: the outbox is in the database.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.notifications import NotificationRenderer, Plan
from services import notices
from services.crashpoints import crash_point
from services.sending import deployment_tag
from services.series import SERIES_CARD
from storage import OutboxItem, Store

log = logging.getLogger("every8d_bot.slack")

#: Errors that will not go away by retrying: the post is set aside (visible to `doctor`) after a few tries.
PERMANENT_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "account_inactive",
                    "missing_scope", "invalid_blocks", "msg_too_long", "no_text", "restricted_action",
                    "execution_not_in_running_state", "function_execution_not_found"}
MAX_ATTEMPTS_PERMANENT = 3
#: Slack's answer to ending a Workflow Builder step that is not running any more: an earlier call whose
#: answer was lost ended it, or it timed out in Slack (which tells the workflow's people). Nothing is left
#: to do, so the post is done rather than set aside as a failure (the watchdog would call it one).
STEP_NOT_RUNNING = {"execution_not_in_running_state", "function_execution_not_found"}
#: The longest wait between two tries of one post: after an outage, everything is tried again within a minute.
MAX_BACKOFF = 60.0
#: The message metadata event type that marks the bot's own posts (payload: outbox id and deployment).
METADATA_EVENT = "every8d_outbox_post"
#: Where a post that may be in Slack is looked for: a few pages of its thread (oldest first) or of its
#: channel (newest first); a restart comes soon after the call, so its post is among the latest.
LOOKUP_PAGES = 5
LOOKUP_PAGE_SIZE = 200
#: Kinds queued with `collapse=True` (one pending post stands for all changes): see `_follow_up`.
COLLAPSED_KINDS = frozenset({notices.APPROVAL_CARD, notices.BATCH_SUMMARY, SERIES_CARD})


class SlackPoster:
    """The one consumer of the outbox: a thread in the bot, `drain()` called directly in tests."""

    def __init__(self, store: Store, client: WebClient, renderer: NotificationRenderer) -> None:
        self.store = store
        self.client = client
        self.renderer = renderer
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drain_lock = threading.Lock()
        self._deployment: str | None = None

    # -- running -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Deliver in a daemon thread, woken by `wake()` or every second."""
        self._thread = threading.Thread(target=self._loop, name="slack-poster", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the post in flight; what is left stays in the outbox for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        """Something was enqueued: deliver it now rather than at the next tick."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # noqa: BLE001 - the poster must outlive any single bad post
                log.exception("delivering posts to Slack failed; will retry")

    # -- delivering --------------------------------------------------------------------------------

    def drain(self, limit: int = 200) -> int:
        """Deliver what is due, oldest first. Returns how many posts were delivered."""
        with self._drain_lock:
            delivered = 0
            blocked: set[str] = set()  # threads whose post failed in this run (the query skips earlier ones)
            for item in self.store.outbox.deliverable(limit=limit):
                if item.thread_key in blocked:
                    continue
                if self._deliver(item):
                    delivered += 1
                elif item.thread_key:
                    blocked.add(item.thread_key)
            return delivered

    def deliver_now(self, item_id: int) -> bool:
        """Deliver this one post at once, whatever its backoff, for a job whose tick is itself the retry
        (the weekly report). Slack's refusal is recorded as in `drain` (the post stays queued and is tried
        again) and then raised to the caller. True: this call delivered it; False: it was not pending any
        more (delivered meanwhile, or set aside)."""
        with self._drain_lock:
            item = self.store.outbox.pending(item_id=item_id)
            return item is not None and self._deliver(item, raise_errors=True)

    def _deliver(self, item: OutboxItem, *, raise_errors: bool = False) -> bool:
        try:
            plan = self.renderer.plan(item)
        except Exception as exc:  # noqa: BLE001 - one post that cannot be drawn must not stop the others
            # It used to stop every pass at this row, before any try was recorded: no post went out and the
            # watchdog saw nothing. Now it is tried like a refused post, set aside after a few tries (and
            # said in the alert channel by the watchdog); the other posts go on meanwhile.
            give_up = item.attempts + 1 >= MAX_ATTEMPTS_PERMANENT
            log.error("could not draw a %s post (outbox %s): %s%s", item.kind, item.id, type(exc).__name__,
                      " (set aside)" if give_up else " (will retry)", exc_info=exc)
            self.store.outbox.retry_later(item.id, f"could not be drawn: {type(exc).__name__}", self._backoff(item),
                                          give_up=give_up)
            if raise_errors:
                raise
            return False
        if plan.skip or not plan.channel:
            self.store.outbox.done(item.id)
            return True
        if plan.wait:
            self.store.outbox.retry_later(item.id, "waiting for the thread's first message", delay=2.0)
            return False
        try:
            ts = self._post_once(item, plan)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            if plan.api and error in STEP_NOT_RUNNING:
                log.info("the workflow step of a %s post is no longer running (%s); nothing left to end",
                         item.kind, error)
                self.store.outbox.done(item.id)
                return True
            permanent = error in PERMANENT_ERRORS
            give_up = permanent and item.attempts + 1 >= MAX_ATTEMPTS_PERMANENT
            (log.error if give_up else log.warning)(
                "Slack refused a %s post to %s: %s%s", item.kind, plan.channel, error,
                " (set aside)" if give_up else " (will retry)",
            )
            delay = max(self._backoff(item), _retry_after(exc))
            # Slack's own "no" (HTTP 200 with ok=false, or 429) means the post is surely not there; a 5xx
            # from a gateway does not prove that, so the next try looks for it first.
            refused = bool(error) and exc.response is not None and exc.response.status_code in (200, 429)
            self.store.outbox.retry_later(item.id, error or "slack error", delay, give_up=give_up,
                                          not_posted=refused)
            if raise_errors:
                raise
            return False
        except Exception as exc:  # noqa: BLE001 - network errors: keep the post, try later
            log.warning("Slack unreachable for a %s post: %s (will retry)", item.kind, type(exc).__name__)
            self.store.outbox.retry_later(item.id, type(exc).__name__, self._backoff(item))
            if raise_errors:
                raise
            return False
        if plan.on_posted is not None and ts:
            plan.on_posted(ts)
        self.store.outbox.done(item.id)
        if item.kind in COLLAPSED_KINDS:
            self._follow_up(item, plan)
        return True

    def _follow_up(self, item: OutboxItem, posted: Plan) -> None:
        """A collapsed post renders the state of the moment it went out. A change committed while it was
        in flight found it still pending and queued nothing, so render again now that it is done: if the
        message no longer shows the truth, queue one more update (nothing is lost, e.g. "complete")."""
        again = self.renderer.plan(item)
        if again.skip or again.wait or (again.text, again.blocks) == (posted.text, posted.blocks):
            return
        self.store.outbox.enqueue(item.kind, item.ref, channel=item.channel, collapse=True)

    def _post_once(self, item: OutboxItem, plan: Plan) -> str | None:
        """Make the Slack call of `plan` unless an earlier call for this row already landed in Slack."""
        if plan.api or plan.update_ts is not None:
            return self._call(plan)  # an edit or an API call is the same whenever made: nothing to look for
        if item.posting_at is not None:
            found = self._look_for_post(item, plan)
            if found is not None:
                log.info("a %s post (outbox %s) was already in Slack; not posting it again", item.kind, item.id)
                return found
        self.store.outbox.posting(item.id)
        ts = self._call(plan, self._metadata(item))
        crash_point("after_slack_posted")
        return ts

    def _metadata(self, item: OutboxItem) -> dict[str, Any]:
        if self._deployment is None:
            self._deployment = deployment_tag(self.store)
        return {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": item.id, "deployment": self._deployment}}

    def _look_for_post(self, item: OutboxItem, plan: Plan) -> str | None:
        """`_find_posted`, except that an app installed without the history scopes cannot look: then post
        (a possible double is better than a lost post) and say why in the log."""
        try:
            return self._find_posted(item, plan)
        except SlackApiError as exc:
            if exc.response is None or exc.response.get("error") not in ("missing_scope", "not_allowed_token_type"):
                raise
            log.warning("cannot look for an earlier copy of a %s post (%s: add channels:history and "
                        "groups:history); posting it again", item.kind, exc.response.get("error"))
            return None

    def _find_posted(self, item: OutboxItem, plan: Plan) -> str | None:
        """The ts of this row's message if Slack already has it: the bot's own post carrying the row's id
        in its metadata, in the thread (or among the channel's latest messages). A shared file's message
        carries no metadata, so an upload is recognised by its file name (one per week for the report)."""
        wanted = self._metadata(item)["event_payload"]
        filename = (plan.upload or {}).get("filename")
        cursor = None
        for _ in range(LOOKUP_PAGES):
            if plan.thread_ts:
                response = self.client.conversations_replies(channel=plan.channel, ts=plan.thread_ts, cursor=cursor,
                                                             include_all_metadata=True, limit=LOOKUP_PAGE_SIZE)
            else:
                response = self.client.conversations_history(channel=plan.channel, cursor=cursor,
                                                              include_all_metadata=True, limit=LOOKUP_PAGE_SIZE)
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") == METADATA_EVENT and metadata.get("event_payload") == wanted:
                    return str(message.get("ts"))
                if filename and any(f.get("name") == filename for f in message.get("files") or []):
                    return str(message.get("ts"))
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def _call(self, plan: Plan, metadata: dict[str, Any] | None = None) -> str | None:
        if plan.api:  # not a post: e.g. ending a Workflow Builder step
            self.client.api_call(plan.api, json=plan.params or {})
            return None
        if plan.upload is not None:  # a file shared with the text as its comment (the weekly report's chart)
            self.client.files_upload_v2(channel=plan.channel, initial_comment=plan.text, **plan.upload)
            return None
        if plan.update_ts:
            try:
                self.client.chat_update(channel=plan.channel, ts=plan.update_ts, text=plan.text, blocks=plan.blocks)
                return plan.update_ts
            except SlackApiError as exc:
                if exc.response is None or exc.response.get("error") != "message_not_found":
                    raise
                # The message was deleted: post it again rather than lose the update.
        response = self.client.chat_postMessage(
            channel=plan.channel,
            text=plan.text,
            blocks=plan.blocks,
            thread_ts=plan.thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            metadata=metadata,
        )
        return response.get("ts")

    @staticmethod
    def _backoff(item: OutboxItem) -> float:
        return min(2.0 * (2 ** item.attempts), MAX_BACKOFF)


def _retry_after(exc: SlackApiError) -> float:
    """Seconds Slack asked us to wait (HTTP 429 once the client's own retries are used up), else 0."""
    response = exc.response
    if response is None or response.status_code != 429:
        return 0.0
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return min(float(value), MAX_BACKOFF) if value is not None else 0.0
    except ValueError:
        return 0.0
