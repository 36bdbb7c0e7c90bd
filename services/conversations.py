"""One-to-one answers (two-way conversations): someone types in a batch's thread under a reply, or presses a
reply's Answer button, and that one number gets an SMS back.

An answer is an ordinary send request: checked and priced by `compose.prepare`, stored by
`RequestService.submit`, approved by the same conditional transition as any request and sent exactly once
by SendService. What is particular to answers is decided here: which number (the sender of the most recent
reply in the thread, or of the reply whose button was pressed), where the answer lives (the batch thread,
so its card, result and delivery summary appear there), whether the policy lets it skip approval, and
that a Slack event delivered twice never answers twice.

Skipping approval keeps answers quick, but anyone in the channel can answer, so it is capped by cost:
an answer costing more than `Policy.answer_max_points` (BOT_ANSWER_MAX_POINTS, default one SMS) waits for
an approver on the usual card, whichever way it was made (the Answer button or a typed message), and
its outcome says so, so the author can be told why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from every8d.limits import DEFAULT_LIMITS, Limits
from every8d.problems import Problem
from services.compose import ComposeInput, prepare
from services.policy import Policy
from services.ports import Clock
from services.requests import ANSWER_POLICY_APPROVER, RequestService
from storage import Reply, Store

log = logging.getLogger("every8d_bot.conversations")


class AnswerVerdict(StrEnum):
    SUBMITTED = "submitted"
    DUPLICATE = "duplicate"  # this Slack event was answered before (a redelivery): nothing new
    NO_REPLY = "no_reply"  # not a request's thread, or no reply there yet (or the reply is unknown)
    INVALID = "invalid"  # the text (or the number) failed the checks every send goes through


@dataclass(frozen=True)
class AnswerOutcome:
    """What became of one answer; `problems` are set when it was INVALID (each names its field)."""

    verdict: AnswerVerdict
    reply: Reply | None = None
    request_id: int | None = None
    approved: bool = False
    problems: tuple[Problem, ...] = ()
    #: The answer costs more than an answer may without approval: it waits for an approver.
    over_limit: bool = False
    points: float = 0.0


class AnswerService:
    def __init__(
        self, store: Store, requests: RequestService, policy: Policy, clock: Clock, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.store = store
        self.requests = requests
        self.policy = policy
        self.clock = clock
        self.limits = limits

    def latest_reply_in_thread(self, channel: str, thread_ts: str) -> Reply | None:
        """The reply a message typed in this thread would answer (the most recent one), or None."""
        reply_id = self.store.requests.latest_reply_in_thread(channel, thread_ts)
        return self.store.replies.get(reply_id) if reply_id is not None else None

    def request_of(self, source_event: str, *, user: str | None = None) -> int | None:
        """The request a thread message became (by its event: `message:<channel>:<ts>`), or None; with
        `user`, only when that person made it."""
        request = self.store.requests.by_source_event(source_event)
        if request is None or (user is not None and request.requester != user):
            return None
        return request.id

    def answer_in_thread(
        self, channel: str, thread_ts: str, text: str, *, user: str, source_event: str, reply_id: int | None = None
    ) -> AnswerOutcome:
        """A message typed in a thread answers the sender of the most recent reply posted there (or of
        `reply_id`, the one its author was asked about and confirmed). Without a reply in that thread there
        is nobody to answer: NO_REPLY, and nothing is stored or sent."""
        if reply_id is not None:
            reply = self.store.replies.get(reply_id)
            if reply is not None and reply_id != self.store.requests.latest_reply_in_thread(channel, thread_ts) \
                    and not self._in_thread(reply, channel, thread_ts):
                reply = None
        else:
            reply = self.latest_reply_in_thread(channel, thread_ts)
        if reply is None:
            return AnswerOutcome(AnswerVerdict.NO_REPLY)
        return self._answer(reply, text, user=user, origin_channel=channel, thread=(channel, thread_ts),
                            source_event=source_event)

    def answer_reply(
        self, reply_id: int, text: str, *, user: str, origin_channel: str, source_event: str
    ) -> AnswerOutcome:
        """The Answer button's form: answer this reply's number, in the thread of the batch it replied to
        (wherever the button was pressed, e.g. in the replies channel)."""
        reply = self.answerable(reply_id)
        request = self.store.requests.by_batch(reply.batch_id) if reply and reply.batch_id else None
        if reply is None or request is None:
            return AnswerOutcome(AnswerVerdict.NO_REPLY, reply)
        thread_ts = request.posts_thread_ts
        thread = (request.posts_channel, thread_ts) if thread_ts else None
        return self._answer(reply, text, user=user, origin_channel=origin_channel, thread=thread,
                            source_event=source_event)

    def _in_thread(self, reply: Reply, channel: str, thread_ts: str) -> bool:
        """Whether this reply belongs to the batch whose thread this is (a confirmed answer still goes to
        the number its author saw, even if a newer reply arrived meanwhile)."""
        request = self.store.requests.by_batch(reply.batch_id) if reply.batch_id else None
        return request is not None and (request.posts_channel, request.posts_thread_ts) == (channel, thread_ts)

    def answerable(self, reply_id: int) -> Reply | None:
        """The reply, if it can be answered: it belongs to a batch this bot sent (so its thread is known)."""
        reply = self.store.replies.get(reply_id)
        if reply is None or not reply.batch_id or self.store.requests.by_batch(reply.batch_id) is None:
            return None
        return reply

    def _answer(
        self,
        reply: Reply,
        text: str,
        *,
        user: str,
        origin_channel: str,
        thread: tuple[str, str] | None,
        source_event: str,
    ) -> AnswerOutcome:
        preview = prepare(
            ComposeInput(kind="sms", recipients_text=reply.mobile, message=text.strip()),
            clock=self.clock,
            last_credit=self.store.credit.latest(),
            limits=self.limits,
            opted_out=self.store.optouts.among,  # someone who replied STOP is not answered
        )
        if not preview.ok or preview.quote is None:
            return AnswerOutcome(AnswerVerdict.INVALID, reply, problems=tuple(preview.problems))
        points = preview.quote.points
        over_limit = points > self.policy.answer_max_points
        skips_approval = not self.policy.answers_need_approval and not over_limit
        submitted = self.requests.submit(
            preview,
            requester=user,
            origin_channel=origin_channel,
            thread=thread,
            reply_to=reply.id,
            source_event=source_event,
            approved_by=ANSWER_POLICY_APPROVER if skips_approval else None,
        )
        over = over_limit and not self.policy.answers_need_approval
        if submitted.duplicate:
            log.info("answer %s already made from %s; not again", submitted.request_id, source_event)
            return AnswerOutcome(AnswerVerdict.DUPLICATE, reply, submitted.request_id, submitted.auto_approved,
                                 over_limit=over, points=points)
        log.info("request %s answers reply %s (%.1f points%s)", submitted.request_id, reply.id, points,
                 ", over the answer limit: needs an approver" if over else "")
        return AnswerOutcome(AnswerVerdict.SUBMITTED, reply, submitted.request_id, submitted.auto_approved,
                             over_limit=over, points=points)
