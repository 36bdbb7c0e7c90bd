"""Cancel a scheduled send before it goes out (eraseBooking), and show the refunded points.

EVERY8D's own answers decide what a person is told: -3 (no such scheduled batch) and -4 (already sent or
deleted) mean there is nothing to cancel; -8 (temporarily unavailable) or an unreachable EVERY8D is tried
again later, a few times, and the thread says so each time and when it ends. Authentication errors are
never retried (the account would lock)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from every8d.codes import is_transient
from every8d.errors import Every8dError, ProviderError, UnavailableError
from every8d.results import CancelResult
from services import notices
from services.notices import CANCEL_RESULT
from services.permissions import Action, may
from services.policy import Policy
from services.ports import Clock, Gateway
from storage import BatchState, PartState, RequestState, SendRequest, Store

log = logging.getLogger("every8d_bot.cancel")


class CancelVerdict(StrEnum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"
    NOT_SCHEDULED = "not_scheduled"
    NOTHING_FOUND = "nothing_found"  # EVERY8D had nothing to cancel (already went out)
    RETRYING = "retrying"  # EVERY8D could not cancel right now (-8, unreachable): tried again later
    ERROR = "error"


#: How many more times a cancel EVERY8D could not do right now is tried, and the first wait (doubling).
CANCEL_RETRIES = 3
CANCEL_RETRY_SECONDS = 60.0

#: Settings key of a promised cancel retry, kept so a restart does not forget it: `cancel_retry:<request>`.
_RETRY_KEY = "cancel_retry:"
#: `later(delay_seconds, work)`: run `work` once, after the delay, off the caller's thread.
Later = Callable[[float, Callable[[], None]], None]


def _timer(delay: float, work: Callable[[], None]) -> None:
    timer = threading.Timer(delay, work)
    timer.daemon = True
    timer.start()


@dataclass(frozen=True)
class CancelOutcome:
    verdict: CancelVerdict
    deleted: int = 0
    refunded: float = 0.0
    error: Every8dError | None = None
    retry_in: float | None = None  # RETRYING: seconds until the next try


class CancelService:
    def __init__(self, store: Store, gateway: Gateway, policy: Policy, clock: Clock, later: Later | None = None,
                 retry_seconds: float = CANCEL_RETRY_SECONDS) -> None:
        """`later` schedules a retry (a daemon timer by default); `retry_seconds` is the first wait."""
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.clock = clock
        self.later = later or _timer
        self.retry_seconds = retry_seconds

    def cancel(self, request_id: int, user_id: str, *, attempt: int = 1) -> CancelOutcome:
        """The requester or an approver may cancel a scheduled send that has not gone out yet. `attempt` > 1
        is a retry this service scheduled itself."""
        request = self.store.requests.get(request_id)
        if request is None:
            return CancelOutcome(CancelVerdict.NOT_FOUND)
        if not may(self.policy, user_id, Action.CANCEL, owner=request.requester):
            return CancelOutcome(CancelVerdict.NOT_ALLOWED)
        if (
            request.state is not RequestState.SENT
            or request.batch_id is None
            or request.send_at is None
            or request.send_at <= self.clock()
        ):
            return CancelOutcome(CancelVerdict.NOT_SCHEDULED)
        batch_ids = [p.batch_id for p in self.store.parts.of_request(request_id)
                     if p.state is PartState.SENT and p.batch_id and not self._closed(p.batch_id)]
        deleted, refunded, found = 0, 0.0, 0
        for batch_id in batch_ids:
            try:
                answer = self.gateway.cancel_mms(batch_id) if request.kind == "mms" else self.gateway.cancel_sms(batch_id)
            except Every8dError as exc:
                log.warning("cancel of request %s batch %s failed: %s", request_id, batch_id, exc.describe("en"))
                if found:  # some parts are cancelled already: record them, and say what is left
                    self._record(request, user_id, deleted, refunded, complete=False)
                if _worth_retrying(exc) and attempt <= CANCEL_RETRIES:
                    delay = self.retry_seconds * 2 ** (attempt - 1)
                    self._say(request, attempt, exc, delay)
                    self._remember_retry(request_id, user_id, attempt + 1, self.clock() + delay)
                    self.later(delay, partial(self._retry, request_id, user_id, attempt + 1))
                    return CancelOutcome(CancelVerdict.RETRYING, deleted, refunded, error=exc, retry_in=delay)
                if attempt > 1:
                    self._say(request, attempt, exc, None)
                return CancelOutcome(CancelVerdict.ERROR, deleted, refunded, error=exc)
            if isinstance(answer, CancelResult):
                found += 1
                deleted += answer.deleted
                refunded += answer.refunded
                self._cancelled_batch(batch_id)
        if not found:
            return CancelOutcome(CancelVerdict.NOTHING_FOUND)
        self._record(request, user_id, deleted, refunded, complete=True)
        return CancelOutcome(CancelVerdict.CANCELLED, deleted, refunded)

    def _closed(self, batch_id: str) -> bool:
        """A batch already closed (cancelled by an earlier try) is not cancelled again."""
        batch = self.store.batches.get(batch_id)
        return batch is not None and batch.state is BatchState.COMPLETE

    def resume_retries(self) -> int:
        """At start: the cancel retries a stopped bot had promised in a thread are scheduled again (at their
        time, or now if it passed), so "will try again in 2 min" never goes silent. Returns how many."""
        pending = self.store.settings.with_prefix(_RETRY_KEY)
        for key, value in pending.items():
            try:
                saved = json.loads(value)
                request_id, user_id, attempt, due = (int(key[len(_RETRY_KEY):]), str(saved["user"]),
                                                     int(saved["attempt"]), float(saved["due"]))
            except (ValueError, KeyError, TypeError):
                self.store.settings.delete(key)
                continue
            self.later(max(0.0, due - self.clock()), partial(self._retry, request_id, user_id, attempt))
        return len(pending)

    def _remember_retry(self, request_id: int, user_id: str, attempt: int, due: float) -> None:
        self.store.settings.set(f"{_RETRY_KEY}{request_id}",
                                      json.dumps({"user": user_id, "attempt": attempt, "due": due}))

    def _retry(self, request_id: int, user_id: str, attempt: int) -> None:
        """A retry scheduled by `cancel`: its outcome is said in the thread (nobody is waiting for an answer)."""
        if self.store.settings.get(f"{_RETRY_KEY}{request_id}") is None:
            return  # already done (a retry resumed at start and the original timer both fired)
        self.store.settings.delete(f"{_RETRY_KEY}{request_id}")
        try:
            outcome = self.cancel(request_id, user_id, attempt=attempt)
        except Exception:  # noqa: BLE001 - a timer thread has nobody to raise to
            log.exception("retrying the cancel of request %s failed", request_id)
            return
        request = self.store.requests.get(request_id)
        if request is None or outcome.verdict in (CancelVerdict.CANCELLED, CancelVerdict.RETRYING,
                                                  CancelVerdict.ERROR):
            return  # CANCELLED posts its result; RETRYING and ERROR said so already
        zh, en = ("預約時間已到，EVERY8D 未能及時取消，簡訊已照常發送。",
                  "The scheduled time came before EVERY8D could cancel; the messages went out as planned.")
        if outcome.verdict is CancelVerdict.NOTHING_FOUND:
            zh, en = ("EVERY8D 已沒有可取消的預約（已發送或已刪除）。",
                      "EVERY8D has nothing left to cancel (already sent or deleted).")
        notices.thread_note(self.store, request_id, request.approval_channel, f"🚫 {zh}", f"🚫 {en}",
                            f"cancel_retry:{attempt}")

    def _say(self, request: SendRequest, attempt: int, error: Every8dError, delay: float | None) -> None:
        """In the thread: the cancel will be tried again in N minutes, or (delay None) it finally failed."""
        if delay is not None:
            minutes = max(1, round(delay / 60))
            zh = (f"⏳ EVERY8D 暫時無法取消預約（{error.zh}），機器人將於約 {minutes} 分鐘後自動再試"
                  f"（第 {attempt}/{CANCEL_RETRIES} 次重試）。{error.support_note()}")
            en = (f"⏳ EVERY8D cannot cancel right now ({error.en}); the bot will try again in about {minutes} "
                  f"min (retry {attempt} of {CANCEL_RETRIES}).")
        else:
            zh = f"❌ 多次重試後仍無法取消預約：{error.zh}。請到 EVERY8D 後台取消。{error.support_note()}"
            en = f"❌ The cancel still failed after retrying: {error.en}. Cancel it on the EVERY8D portal."
        notices.thread_note(self.store, request.id, request.approval_channel, zh, en, f"cancel_try:{attempt}")

    def _cancelled_batch(self, batch_id: str) -> None:
        """EVERY8D confirmed: the batch's scheduled recipients are cancelled and the batch is closed."""
        now = self.clock()
        with self.store.immediate():
            self.store.batches.cancel_scheduled(batch_id, now)
            self.store.batches.complete(batch_id, now)

    def _record(self, request: SendRequest, user_id: str, deleted: int, refunded: float, *, complete: bool) -> None:
        """The request is cancelled (every part was), its audit line and the posts; a cancel that stopped
        part way is audited too, and the request stays sent with its cancelled parts shown as such."""
        now = self.clock()
        with self.store.immediate():
            if complete:
                self.store.requests.transition(request.id, [RequestState.SENT], RequestState.CANCELLED, now=now)
            self.store.audit.record(
                user_id, "cancelled" if complete else "cancelled_partly", request_id=request.id, now=now,
                deleted=deleted, refunded=refunded,
            )
            self.store.outbox.enqueue(
                CANCEL_RESULT,
                {"request_id": request.id, "deleted": deleted, "refunded": refunded, "by": user_id},
                channel=request.approval_channel,
                dedupe_key=f"cancel:{request.id}" + ("" if complete else f":{now}"),
            )
            notices.card(self.store, request.id, request.approval_channel)
            if request.batch_id:
                notices.summary(self.store, request.batch_id, request.approval_channel)


def _worth_retrying(error: Every8dError) -> bool:
    """EVERY8D unreachable, or a code it documents as temporary (-8 on cancel, -99); never a login error."""
    if isinstance(error, UnavailableError):
        return True
    return isinstance(error, ProviderError) and is_transient(error.endpoint, error.code)
