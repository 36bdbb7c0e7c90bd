"""Drafts: one person's send from the first check to the request, whichever way it was made (the compose
modal, `/sms send`, Resend to failed), and the quiet-hours choice in between.

The flow is check -> keep -> load -> confirm -> submit. A draft is kept whenever the person must answer
before anything is submitted (the modal's cost preview, the quiet-hours question); it lives in
`storage/drafts.py` because a modal's metadata cannot hold thousands of numbers or an image, and only its
author can load it.

One resolved recipient list per submission: the list read when the draft was checked (contact and group
names resolved, the phone rules applied, duplicates and opted-out numbers left out, each text personalised)
is kept with the draft, and it is the list that is submitted. Confirming does not read the recipients again
(`services.compose.recheck`): the person confirmed what the preview showed, so an address book or group
edited meanwhile does not change whom the confirmed send goes to. What can change while a preview is open
is checked again, because each can turn a good draft into a wrong send: the time (a scheduled time can
have come too close, and "schedule for the next allowed time" moves it), the opt-out list (someone who
replied STOP meanwhile is never texted, and the price follows), the last credit read (shown on the card)
and the monthly budgets (BOT_BUDGET_OVER=refuse stops a draft that no longer fits).

Also here, for conversations, the answer a person typed in a thread, kept while they are asked whether to text it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import EllipsisType
from typing import Any
from zoneinfo import ZoneInfo

from every8d.limits import DEFAULT_LIMITS, Limits
from every8d.phones import Recipient, RecipientList, Rejected
from every8d.pricing import Quote
from services.audiences import resolver
from services.budgets import BudgetService, BudgetVerdict
from services.compose import (
    MIN_LEAD_SECONDS,
    TAIPEI,
    ComposeInput,
    Preview,
    input_from_json,
    prepare,
    recheck,
)
from services.crashpoints import crash_point
from services.policy import Policy
from services.ports import Clock
from services.quiet_hours import quiet_until, rescheduled
from services.requests import RequestService, Submitted
from services.resend import ResendDraft, resend_draft
from storage import Store

#: The modal's choice on a preview inside quiet hours (handlers/modals.py writes the same values).
SCHEDULE = "schedule"
OVERRIDE = "override"
#: The keys a kept thread answer has (handlers/conversations.py).
_ANSWER_KEYS = frozenset({"channel", "thread_ts", "ts", "text", "reply_id"})


class Verdict(StrEnum):
    SUBMITTED = "submitted"
    DUPLICATE = "duplicate"  # the same choice (or event) was submitted before: nothing new was created
    INVALID = "invalid"  # the checks found problems (`preview.problems`)
    ASK = "ask"  # inside quiet hours: nothing submitted; the person chooses (`draft_id`, `quiet_until`)
    GONE = "gone"  # the draft expired, was used, or is not this person's


@dataclass(frozen=True)
class Outcome:
    """What became of a send or a confirmation, for the handler to say."""

    verdict: Verdict
    preview: Preview | None = None
    submitted: Submitted | None = None
    #: ASK: the next allowed time; `draft_id` is the kept draft the person's choice names.
    quiet_until: datetime | None = None
    draft_id: str | None = None
    #: The month's budget as it stood before this request (None: no budget applies).
    budget: BudgetVerdict | None = None


@dataclass(frozen=True)
class Draft:
    """A kept draft: its preview as checked when kept (the one resolved recipient list), where it comes from
    and, for a recurring send, its rule's columns."""

    id: str
    user: str
    preview: Preview
    channel: str
    series: dict[str, Any] | None = None
    #: False for a draft kept before the list was kept with it: confirming checks it in full.
    resolved: bool = True


@dataclass(frozen=True)
class KeptAnswer:
    """An answer typed in a thread, kept while its author is asked whether to text it."""

    channel: str
    thread_ts: str
    ts: str
    text: str
    reply_id: int


class DraftService:
    def __init__(
        self,
        store: Store,
        policy: Policy,
        clock: Clock,
        requests: RequestService,
        *,
        limits: Limits = DEFAULT_LIMITS,
        tz: ZoneInfo = TAIPEI,
        show: Callable[[str], str] = str,
        budgets: BudgetService | None = None,
    ) -> None:
        """`tz` dates `{date}` in personalised texts; `show` writes a number in a problem (masked or not, as
        the bot shows numbers); `budgets`: the monthly budgets (None: none are checked)."""
        self.store = store
        self.policy = policy
        self.clock = clock
        self.requests = requests
        self.limits = limits
        self.tz = tz
        self.show = show
        self.budgets = budgets

    # -- checking ---------------------------------------------------------------------------------------

    def check(self, compose: ComposeInput, *, requester: str | None = None, channel: str = "") -> Preview:
        """`services.compose.prepare` with everything a Slack user's draft is checked against: the last
        credit, the opt-out list, the address book, the bot's time zone, numbers shown as the bot shows
        them; with `requester` (and the `channel` it comes from), the monthly budgets too
        (BOT_BUDGET_OVER=refuse: a draft over one gets a problem). Recurring sends check each run with it."""
        preview = prepare(compose, clock=self.clock, last_credit=self.store.credit.latest(), limits=self.limits,
                          opted_out=self.store.optouts.among, resolve=resolver(self.store), tz=self.tz,
                          show=self.show, links=self.policy.registered_links)
        return self._within_budget(preview, requester, channel)

    def budget(self, preview: Preview, requester: str, channel: str) -> BudgetVerdict | None:
        """A checked draft against the budgets of its requester and channel this month (None: no budgets)."""
        if self.budgets is None or preview.quote is None:
            return None
        verdict = self.budgets.check(preview.quote.points, requester=requester, channel=channel)
        return verdict if verdict.applies else None

    def _within_budget(self, preview: Preview, requester: str | None, channel: str) -> Preview:
        if requester is None or not preview.ok:
            return preview
        verdict = self.budget(preview, requester, channel)
        problem = self.budgets.refusal(verdict) if self.budgets is not None and verdict is not None else None
        return replace(preview, problems=[*preview.problems, problem]) if problem else preview

    def quiet_until(self, preview: Preview) -> datetime | None:
        """The next allowed time if this draft's send would go out inside quiet hours (services/quiet_hours.py)."""
        return quiet_until(self.policy.quiet_hours, preview.input.send_at, self.clock())

    def after_quiet(self, send_at: datetime | None) -> datetime | None:
        """The send time for "schedule for the next allowed time" (None: now, it is no longer quiet)."""
        return rescheduled(self.policy.quiet_hours, send_at, self.clock(), min_lead_seconds=MIN_LEAD_SECONDS)

    # -- sending at once (one line, Resend to failed) ------------------------------------------------------

    def send(self, compose: ComposeInput, *, requester: str, channel: str, source_event: str | None = None) -> Outcome:
        """Check and submit at once; inside quiet hours nothing is submitted: the draft is kept and the
        person is asked (`choose_quiet` takes the answer)."""
        preview = self.check(compose, requester=requester, channel=channel)
        if not preview.ok:
            return Outcome(Verdict.INVALID, preview)
        until = self.quiet_until(preview)
        if until is not None:
            draft_id = self.keep(preview, user=requester, channel=channel)
            return Outcome(Verdict.ASK, preview, quiet_until=until, draft_id=draft_id)
        budget = self.budget(preview, requester, channel)
        submitted = self.requests.submit(preview, requester=requester, origin_channel=channel,
                                         source_event=source_event)
        return Outcome(Verdict.DUPLICATE if submitted.duplicate else Verdict.SUBMITTED, preview, submitted,
                       budget=budget)

    def choose_quiet(self, draft_id: str, user: str, *, override: bool) -> Outcome:
        """A button of the quiet-hours question: submit the kept draft, scheduled for the next allowed time
        or flagged as a confirmed override. The draft id is the request's source event, so a second press
        (or the other button) cannot create a second request."""
        draft = self.load(draft_id, user)
        if draft is None:
            return Outcome(Verdict.GONE)
        send_at = draft.preview.input.send_at
        preview = self.confirm(draft, send_at=send_at if override else self.after_quiet(send_at))
        if not preview.ok:
            return Outcome(Verdict.INVALID, preview)
        submitted = self.requests.submit(preview, requester=user, origin_channel=draft.channel,
                                         source_event=f"quiet:{draft_id}", quiet_override=override)
        if submitted.duplicate:
            return Outcome(Verdict.DUPLICATE, preview, submitted)
        self.discard(draft_id)
        return Outcome(Verdict.SUBMITTED, preview, submitted)

    # -- the modal's preview -------------------------------------------------------------------------------

    def submit_preview(self, draft: Draft, *, choice: str | None) -> Outcome:
        """The modal's preview confirmed, with its quiet-hours `choice` (SCHEDULE, OVERRIDE, or None when the
        preview asked nothing). Quiet hours that began while the preview was open are asked about first."""
        preview = self.confirm(draft)
        until = self.quiet_until(preview) if preview.ok else None
        if until is not None and choice is None:
            return Outcome(Verdict.ASK, preview, quiet_until=until, draft_id=draft.id,
                           budget=self.budget(preview, draft.user, draft.channel))
        override = until is not None and choice == OVERRIDE
        if until is not None and not override:
            preview = self.confirm(draft, send_at=self.after_quiet(draft.preview.input.send_at))
        if not preview.ok:
            return Outcome(Verdict.INVALID, preview)
        # The draft is the request's source: a preview confirmed again (the bot died before answering and the
        # person pressed Send once more, or two presses overlapped) finds the first request, never a second.
        submitted = self.requests.submit(preview, requester=draft.user, origin_channel=draft.channel,
                                         quiet_override=override, source_event=f"draft:{draft.id}")
        crash_point("after_draft_submitted")
        self.discard(draft.id)
        return Outcome(Verdict.DUPLICATE if submitted.duplicate else Verdict.SUBMITTED, preview, submitted)

    # -- keeping -------------------------------------------------------------------------------------------

    def keep(self, preview: Preview, *, user: str, channel: str, series: dict[str, Any] | None = None) -> str:
        """Keep a checked draft (its resolved list with it) for its author; its id, for the modal or buttons."""
        payload: dict[str, Any] = {**preview.to_json(), "origin_channel": channel, "checked": _checked_json(preview)}
        if series is not None:
            payload["series"] = series
        return self.store.drafts.save(user, payload, image=preview.input.image)

    def submitted_from(self, draft_id: str, user: str, *, quiet_choice: bool = False) -> Submitted | None:
        """The request this draft already became (its preview confirmed, or with `quiet_choice` a quiet-hours
        button pressed, before), for its author only: a second Submit after a slow answer, or the second
        press of a double click, is shown that request, not "expired", which would invite composing it all
        again (a second request)."""
        request = self.store.requests.by_source_event(f"{'quiet' if quiet_choice else 'draft'}:{draft_id}")
        if request is None or request.requester != user:
            return None
        return Submitted(request.id, request.auto_approved, duplicate=True)

    def load(self, draft_id: str, user: str, *, channel: str = "") -> Draft | None:
        """The kept draft, only for its author; None when it expired, was used, or is someone else's.
        `channel`: where it comes from, for a draft kept without it (by an earlier version)."""
        kept = self.store.drafts.load(draft_id, user)
        if kept is None or not isinstance(kept[0], dict) or "kind" not in kept[0]:
            return None
        payload, image = kept
        compose = input_from_json(payload, image)
        checked = payload.get("checked")
        channel = str(payload.get("origin_channel") or channel)
        series = payload.get("series") or None
        if not isinstance(checked, dict):  # kept by an earlier version: only its input
            empty = Preview(compose, RecipientList([], [], []), None, None, None, None, limits=self.limits)
            return Draft(draft_id, user, empty, channel, series, resolved=False)
        return Draft(draft_id, user, _preview_from_json(compose, checked, self.limits), channel, series)

    def confirm(self, draft: Draft, *, send_at: datetime | None | EllipsisType = ...) -> Preview:
        """The kept draft checked again for what can have changed since its preview (the module docstring
        says what and why), with its own recipient list; `send_at` replaces its time."""
        if not draft.resolved:
            compose = draft.preview.input if isinstance(send_at, EllipsisType) else replace(draft.preview.input, send_at=send_at)
            return self.check(compose, requester=draft.user, channel=draft.channel)
        preview = recheck(draft.preview, clock=self.clock, last_credit=self.store.credit.latest(),
                          opted_out=self.store.optouts.among, send_at=send_at)
        return self._within_budget(preview, draft.user, draft.channel)

    def discard(self, draft_id: str) -> None:
        """A draft used (submitted, or a series created) or turned down is removed."""
        self.store.drafts.delete(draft_id)

    def resend_draft(self, request_id: int) -> ResendDraft | None:
        """What Resend to failed would send for this request (services/resend.py), or None: nobody to retry."""
        return resend_draft(self.store, request_id)

    # -- conversations: a typed answer awaiting its author's confirmation --------------------------------

    def keep_answer(self, user: str, answer: KeptAnswer) -> str | None:
        """Keep what `user` typed in a thread while they are asked whether to text it; the id for the buttons.
        None when that message is kept already: Slack redelivers an event whose ack was slow, and the
        redelivery may run while the first delivery is still asking, so the check and the keep are one
        transaction (one question per message, whatever the timing)."""
        with self.store.immediate():
            if self.store.drafts.answer_of(user, answer.channel, answer.ts) is not None:
                return None
            return self.store.drafts.save(user, asdict(answer))

    def kept_answer_of(self, user: str, channel: str, ts: str) -> tuple[str, KeptAnswer] | None:
        """The answer `user` typed as message `ts` and has not yet confirmed or turned down (its id and what
        was kept), or None: an edit or a deletion of that message must reach it before a Send press does."""
        draft_id = self.store.drafts.answer_of(user, channel, ts)
        kept = self.kept_answer(draft_id, user) if draft_id is not None else None
        return (draft_id, kept) if draft_id is not None and kept is not None else None

    def kept_answer(self, draft_id: str, user: str) -> KeptAnswer | None:
        """The kept answer, only for the person who typed it."""
        kept = self.store.drafts.load(draft_id, user)
        if kept is None or not isinstance(kept[0], dict) or not _ANSWER_KEYS <= set(kept[0]):
            return None
        data = kept[0]
        return KeptAnswer(data["channel"], data["thread_ts"], data["ts"], data["text"], int(data["reply_id"]))


# -- the resolved list, kept as JSON ---------------------------------------------------------------------------


def _checked_json(preview: Preview) -> dict[str, Any]:
    """What the check found, kept with the draft so that its confirmation reads no recipient again."""
    listed = preview.recipients
    return {
        "recipients": [[r.e164, r.region, r.original] for r in listed.recipients],
        "rejected": [[r.entry, r.zh, r.en] for r in listed.rejected],
        "duplicates": list(listed.duplicates),
        "max_recipients": listed.max_recipients,
        "unchecked": listed.unchecked,
        "opted_out": [[r.e164, r.region, r.original] for r in preview.opted_out],
        "names": preview.names,
        "messages": preview.messages,
        "quote": asdict(preview.quote) if preview.quote is not None else None,
        "image_type": preview.image_type,
        "unregistered": list(preview.unregistered),
        "credit": preview.credit,
        "credit_at": preview.credit_at,
    }


def _preview_from_json(compose: ComposeInput, data: dict[str, Any], limits: Limits) -> Preview:
    listed = RecipientList(
        [Recipient(*r) for r in data["recipients"]], [Rejected(*r) for r in data["rejected"]],
        list(data["duplicates"]), data["max_recipients"], data["unchecked"],
    )
    quote = Quote(**data["quote"]) if data.get("quote") else None
    return Preview(compose, listed, quote, data.get("credit"), data.get("credit_at"), data.get("image_type"),
                   [], [Recipient(*r) for r in data["opted_out"]], dict(data["names"]), dict(data["messages"]),
                   limits, list(data["unregistered"]))
