"""Deliver the outbox to Slack, in order, retrying until Slack takes each post.

Slack's rate limits (429 + Retry-After) are honoured by slack_sdk's RateLimitErrorRetryHandler on the
WebClient; what still fails (Slack down, a network error) stays in the outbox and is tried again with
backoff, and the later posts of the same channel wait behind it so a thread never reads out of order.
A restart picks up where it stopped: the outbox is in the database.
"""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.notifications import NotificationRenderer, Plan
from services import notices
from storage import OutboxItem, Store

log = logging.getLogger("every8d_bot.slack")

#: Errors that will not go away by retrying: the post is set aside (visible to `doctor`) after a few tries.
PERMANENT_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "account_inactive",
                    "missing_scope", "invalid_blocks", "msg_too_long", "no_text", "restricted_action",
                    "execution_not_in_running_state", "function_execution_not_found"}
MAX_ATTEMPTS_PERMANENT = 3
MAX_BACKOFF = 300.0
#: Kinds queued with `collapse=True` (one pending post stands for all changes): see `_follow_up`.
COLLAPSED_KINDS = frozenset({notices.APPROVAL_CARD, notices.BATCH_SUMMARY})


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
            blocked = self.store.outbox.blocked_channels()
            for item in self.store.outbox.due(limit=limit):
                if item.channel in blocked:
                    continue
                if self._deliver(item):
                    delivered += 1
                elif item.channel:
                    blocked.add(item.channel)
            return delivered

    def _deliver(self, item: OutboxItem) -> bool:
        plan = self.renderer.plan(item)
        if plan.skip or not plan.channel:
            self.store.outbox.done(item.id)
            return True
        if plan.wait:
            self.store.outbox.retry_later(item.id, "waiting for the thread's first message", delay=2.0)
            return False
        try:
            ts = self._call(plan)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            permanent = error in PERMANENT_ERRORS
            give_up = permanent and item.attempts + 1 >= MAX_ATTEMPTS_PERMANENT
            (log.error if give_up else log.warning)(
                "Slack refused a %s post to %s: %s%s", item.kind, plan.channel, error,
                " (set aside)" if give_up else " (will retry)",
            )
            delay = max(self._backoff(item), _retry_after(exc))
            self.store.outbox.retry_later(item.id, error or "slack error", delay, give_up=give_up)
            return False
        except Exception as exc:  # noqa: BLE001 - network errors: keep the post, try later
            log.warning("Slack unreachable for a %s post: %s (will retry)", item.kind, type(exc).__name__)
            self.store.outbox.retry_later(item.id, type(exc).__name__, self._backoff(item))
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

    def _call(self, plan: Plan) -> str | None:
        if plan.api:  # not a post: e.g. ending a Workflow Builder step
            self.client.api_call(plan.api, json=plan.params or {})
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
