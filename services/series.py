"""Recurring sends: one approval covers a series; each occurrence becomes its own normal request.

A series is created from a checked preview (its first occurrence as the scheduled time) and waits for one
approver's decision on its own card. Once active, the scheduler's tick (`run_due`) turns each due
occurrence into a request through `RequestService.submit`, checked and priced again at that moment
(validation, opt-outs, the last credit read), approved by the series' approver so it goes straight to the
exactly-once send, and posted in the series' thread. `source_event = series:<id>:<occurrence>` means an
occurrence never becomes two requests, even if the bot stops between creating it and moving on.

A run the credit cannot cover, or one that no longer passes the checks, is refused with a note in the
thread. A bot that was down runs the latest missed occurrence once if it is at most the grace window late
(BOT_SERIES_GRACE_MINUTES); older missed ones are reported in the thread and skipped. Pause, Resume and
Stop belong to the series' creator and the approvers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from services import notices
from services.compose import Preview, input_from_json
from services.permissions import Action, may
from services.policy import Policy
from services.ports import Clock
from services.quiet_hours import quiet_until
from services.recurrence import Rule, due_between, next_after, short_dates, upcoming
from services.requests import RequestService
from storage import Store
from storage.series import ACTIVE, PAUSED, PENDING, REJECTED, STOPPED, SeriesRow

log = logging.getLogger("every8d_bot.series")

#: Outbox kinds (rendered by handlers/notifications.py through handlers/series.py).
SERIES_CARD = "series_card"  # post or update the series' card (its thread holds every run)
SERIES_NOTE = "series_note"  # a line in the series' thread: a refused or missed run, paused, stopped
DEFAULT_GRACE_SECONDS = 3600.0
#: The settings key recording which series a draft became (`create(source=…)`).
SOURCE_KEY = "series_source:{source}"


class SeriesVerdict(StrEnum):
    DONE = "done"
    NOT_FOUND = "not_found"
    NOT_APPROVER = "not_approver"
    SELF_APPROVAL = "self_approval"
    NOT_ALLOWED = "not_allowed"  # pause/resume/stop by someone neither the creator nor an approver
    WRONG_STATE = "wrong_state"  # already decided, already paused, already ended...


@dataclass(frozen=True)
class SeriesOutcome:
    verdict: SeriesVerdict
    series: SeriesRow | None


def source_event(series_id: int, occurrence: float) -> str:
    """The key that makes one occurrence one request, whatever happens."""
    return f"series:{series_id}:{int(occurrence)}"


def rule_of(series: SeriesRow) -> Rule:
    return Rule.from_columns(series.rule)


def card(store: Store, series: SeriesRow | int, channel: str | None = None) -> None:
    series_id = series if isinstance(series, int) else series.id
    store.outbox.enqueue(SERIES_CARD, {"series_id": series_id}, channel=channel or None, collapse=True)


def note(store: Store, series: SeriesRow, zh: str, en: str, key: str) -> None:
    store.outbox.enqueue(SERIES_NOTE, {"series_id": series.id, "zh": zh, "en": en}, channel=series.approval_channel,
                         dedupe_key=f"series_note:{series.id}:{key}")


class SeriesService:
    def __init__(self, store: Store, policy: Policy, clock: Clock, requests: RequestService,
                 check: Callable[..., Preview], *, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        """`check(compose, requester=…, channel=…)` is the same check a person's draft gets
        (services.compose.prepare with the last credit, the opt-out list, the address book, the budgets).
        A run over a budget is not approved by the series' approval: RequestService.submit holds it for an
        approver's override, in the series' thread, like any send."""
        self.store = store
        self.policy = policy
        self.clock = clock
        self.requests = requests
        self.check = check
        self.grace_seconds = grace_seconds

    # -- create and decide -------------------------------------------------------------------------

    def create(self, preview: Preview, rule: Rule, *, requester: str, origin_channel: str,
               source: str | None = None) -> int:
        """A series from a checked preview whose scheduled time is the rule's first occurrence; its card
        goes to the approval channel. Nothing is sent before an approver approves it. `source` (the draft)
        makes it once: the same preview confirmed again (the bot died before answering and the person
        pressed again, or two presses overlapped) returns the first series rather than a second one."""
        if not preview.ok or preview.quote is None or preview.input.send_at is None:
            raise ValueError("only a checked preview with its first occurrence can start a series")
        now = self.clock()
        payload = {**preview.to_json(), "send_at": None}
        channel = self.policy.approval_channel or origin_channel
        key = SOURCE_KEY.format(source=source) if source else None
        with self.store.immediate():
            earlier = self.store.settings.get(key) if key else None
            if earlier is not None:
                return int(earlier)
            series_id = self.store.series.create(
                now=now, created_by=requester, origin_channel=origin_channel, payload=payload,
                image=preview.input.image, rule=rule.to_columns(), points_per_run=preview.quote.points,
                recipient_count=len(preview.recipients.recipients),
                next_run_at=preview.input.send_at.timestamp(), approval_channel=channel)
            self.store.audit.record(requester, "series_requested", now=now, series_id=series_id,
                                    points_per_run=preview.quote.points)
            if key:
                self.store.settings.set(key, str(series_id))
            card(self.store, series_id, channel)
        log.info("series %s requested by %s (%.1f points a run)", series_id, requester, preview.quote.points)
        return series_id

    def created_from(self, source: str, user: str) -> int | None:
        """The series `source` (a draft) already became, for its author only: a second Submit after a slow
        answer is shown that series, not "expired" (which would invite composing it all again)."""
        earlier = self.store.settings.get(SOURCE_KEY.format(source=source))
        series = self.store.series.get(int(earlier)) if earlier is not None and earlier.isdigit() else None
        return series.id if series is not None and series.created_by == user else None

    def decide(self, series_id: int, user: str, *, approve: bool) -> SeriesOutcome:
        """One approval for the whole series (or its rejection): one conditional state change decides."""
        series = self.store.series.get(series_id)
        if series is None:
            return SeriesOutcome(SeriesVerdict.NOT_FOUND, None)
        if not may(self.policy, user, Action.REJECT, owner=series.created_by):
            return SeriesOutcome(SeriesVerdict.NOT_APPROVER, series)
        if approve and not may(self.policy, user, Action.APPROVE, owner=series.created_by):
            return SeriesOutcome(SeriesVerdict.SELF_APPROVAL, series)
        now = self.clock()
        with self.store.immediate():
            if approve:
                won = self.store.series.move(series_id, (PENDING,), ACTIVE, approved_by=user, approved_at=now, now=now)
            else:
                won = self.store.series.move(series_id, (PENDING,), REJECTED, ended_by=user, now=now)
            if won:
                self.store.audit.record(user, "series_approved" if approve else "series_rejected", now=now,
                                        series_id=series_id)
                card(self.store, series_id, series.approval_channel)
        return SeriesOutcome(SeriesVerdict.DONE if won else SeriesVerdict.WRONG_STATE, self.store.series.get(series_id))

    def control(self, series_id: int, user: str, action: str) -> SeriesOutcome:
        """`pause`, `resume` or `stop`, by the series' creator or an approver. Resuming skips what fell in
        the pause (it was paused on purpose) and goes on with the next occurrence."""
        series = self.store.series.get(series_id)
        if series is None:
            return SeriesOutcome(SeriesVerdict.NOT_FOUND, None)
        if not may(self.policy, user, Action.CANCEL, owner=series.created_by):  # like a scheduled send's Cancel
            return SeriesOutcome(SeriesVerdict.NOT_ALLOWED, series)
        now = self.clock()
        with self.store.immediate():
            if action == "pause":
                won = self.store.series.move(series_id, (ACTIVE,), PAUSED, now=now)
                zh, en = f"⏸ <@{user}> 暫停了這個重複發送。", f"⏸ <@{user}> paused this series."
            elif action == "resume":
                following = next_after(rule_of(series), now)
                target = ACTIVE if following else "finished"
                won = self.store.series.move(series_id, (PAUSED,), target,
                                             next_run_at=following[1] if following else None, now=now)
                zh, en = f"▶️ <@{user}> 繼續了這個重複發送。", f"▶️ <@{user}> resumed this series."
            elif action == "stop":
                won = self.store.series.move(series_id, (PENDING, ACTIVE, PAUSED), STOPPED, ended_by=user,
                                             next_run_at=None, now=now)
                zh, en = f"⏹ <@{user}> 停止了這個重複發送，之後不會再發送。", f"⏹ <@{user}> stopped this series; nothing more is sent."
            else:
                raise ValueError(f"unknown series action {action!r}")
            if won:
                self.store.audit.record(user, f"series_{action}", now=now, series_id=series_id)
                card(self.store, series_id, series.approval_channel)
                if series.approval_ts or series.state != PENDING:
                    note(self.store, series, zh, en, f"{action}:{int(now * 1000)}")
        return SeriesOutcome(SeriesVerdict.DONE if won else SeriesVerdict.WRONG_STATE, self.store.series.get(series_id))

    # -- running -----------------------------------------------------------------------------------

    def run_due(self) -> list[int]:
        """The scheduler's tick: handle every due occurrence of every active series. Returns the ids of
        the requests created."""
        now = self.clock()
        created: list[int] = []
        for series in self.store.series.due(now):
            try:
                created.extend(self._run_series(series, now))
            except Exception as exc:  # noqa: BLE001 - one broken series must not stop the others
                log.exception("series %s could not run; it is tried again on the next tick", series.id)
                self._say_cannot_run(series, exc)
        return created

    def _say_cannot_run(self, series: SeriesRow, exc: Exception) -> None:
        """A run that fails to become a request is retried each tick until its grace window ends (then it is
        skipped as missed); said once per occurrence in the series' thread and the alert channel, so the
        series' people and an admin hear it rather than a log line."""
        occurrence = series.next_run_at or self.clock()
        try:
            when = short_dates(rule_of(series), [occurrence])
        except Exception:  # noqa: BLE001 - the rule itself may be what cannot be read
            when = f"{datetime.fromtimestamp(occurrence, tz=UTC):%m/%d %H:%M} UTC"
        minutes = int(self.grace_seconds // 60)
        why = type(exc).__name__
        zh = (f"⚠️ {when} 這次無法建立發送（{why}）。機器人每分鐘重試（在原定時間後 {minutes} 分鐘內），成功前不會發送。"
              "請管理員查看機器人的日誌（log）。")
        en = (f"⚠️ The {when} run could not be created ({why}). The bot tries again every minute (up to {minutes} "
              "minutes past its time); nothing is sent until it works. An admin should look at the bot's log.")
        try:
            with self.store.immediate():
                note(self.store, series, zh, en, f"error:{int(occurrence)}")
                notices.alert_note(self.store, self.policy.alert_channel,
                                   f"重複發送 S{series.id}（<#{series.approval_channel}>）：{zh}",
                                   f"Series S{series.id} (<#{series.approval_channel}>): {en}",
                                   f"series_error:{series.id}:{int(occurrence)}")
        except Exception:  # noqa: BLE001 - a database that cannot be written is the watchdog's to say
            log.exception("series %s: could not say that its run failed", series.id)

    def _run_series(self, series: SeriesRow, now: float) -> list[int]:
        assert series.next_run_at is not None
        rule = rule_of(series)
        due = due_between(rule, series.next_run_at, now)
        created: list[int] = []
        if due:
            *older, (number, latest) = due
            late = now - latest > self.grace_seconds
            missed = [*older, (number, latest)] if late else older
            already = self.store.requests.by_source_event(source_event(series.id, latest))
            if already is not None and late:  # requested before a stop: it was not missed
                missed, late = older, False
            if missed:
                self._report_missed(series, rule, missed, now)
            if not late:
                request_id = self._run_occurrence(series, number, latest, now)
                if request_id is not None:
                    created.append(request_id)
            runs_done, following = number + 1, next_after(rule, latest)
        else:  # the rule changed under it (cannot happen today): go on from now
            runs_done, following = series.runs_done, next_after(rule, now)
        with self.store.immediate():
            moved = self.store.series.advance(series.id, expected_next=series.next_run_at,
                                              next_run_at=following[1] if following else None,
                                              runs_done=runs_done, now=now)
            if moved:
                card(self.store, series.id, series.approval_channel)
        return created

    def _report_missed(self, series: SeriesRow, rule: Rule, missed: list[tuple[int, float]], now: float) -> None:
        with self.store.immediate():
            fresh = [(n, e) for n, e in missed if self.store.series.record_run(series.id, e, n, "missed", now=now)]
            if fresh:
                dates = "、".join(f"{datetime.fromtimestamp(e, tz=rule.tz):%m/%d %H:%M}" for _, e in fresh)
                minutes = int(self.grace_seconds // 60)
                note(self.store, series,
                     f"⚠️ 錯過了 {len(fresh)} 次發送（{dates}；機器人當時停機或尚未核准），已超過 {minutes} 分鐘寬限，"
                     "略過未發送。",
                     f"⚠️ {len(fresh)} run(s) were missed ({dates}; the bot was down or the series not yet approved), "
                     f"more than {minutes} minutes ago: skipped, nothing sent.", f"missed:{int(fresh[0][1])}")

    def _run_occurrence(self, series: SeriesRow, number: int, occurrence: float, now: float) -> int | None:
        """One run: checked and priced now, then a normal request approved by the series' approver (or a
        note saying why it was not sent)."""
        key = source_event(series.id, occurrence)
        earlier = self.store.requests.by_source_event(key)
        if earlier is not None:  # created before a stop: just record it
            with self.store.immediate():
                self.store.series.record_run(series.id, occurrence, number, "requested", now=now,
                                             request_id=earlier.id)
            return None
        compose = replace(input_from_json(series.payload, series.image), send_at=None)
        preview = self.check(compose, requester=series.created_by, channel=series.origin_channel)
        when = short_dates(rule_of(series), [occurrence])
        refusal = self._refusal(preview, now)
        if refusal is not None:
            zh, en = refusal
            with self.store.immediate():
                if self.store.series.record_run(series.id, occurrence, number, "refused", now=now, note=en):
                    self.store.audit.record("series", "series_run_refused", now=now, series_id=series.id,
                                            occurrence=occurrence, reason=en)
                    note(self.store, series, f"⛔ {when} 這次未發送：{zh}", f"⛔ The {when} run was not sent: {en}",
                         f"refused:{int(occurrence)}")
            return None
        thread = (series.approval_channel, series.approval_ts) if series.approval_ts else None
        submitted = self.requests.submit(preview, requester=series.created_by, origin_channel=series.origin_channel,
                                         thread=thread, source_event=key, approved_by=series.approved_by)
        with self.store.immediate():
            if self.store.series.record_run(series.id, occurrence, number, "requested", now=now,
                                            request_id=submitted.request_id):
                self.store.audit.record("series", "series_run", request_id=submitted.request_id, now=now,
                                        series_id=series.id, occurrence=occurrence)
        log.info("series %s run %s became request %s", series.id, number + 1, submitted.request_id)
        return submitted.request_id

    def _refusal(self, preview: Preview, now: float) -> tuple[str, str] | None:
        """Why this run must not go out now, in words; None when it may."""
        if not preview.ok or preview.quote is None:
            return ("；".join(p.zh for p in preview.problems) or "內容無法發送。",
                    "; ".join(p.en for p in preview.problems) or "the message cannot be sent.")
        if preview.short_of_credit:
            need, left = preview.quote.points, preview.credit or 0.0
            return (f"點數不足，這次需要 {need:,.1f} 點，剩餘 {left:,.1f} 點。請加值後，下一次會照常發送。",
                    f"not enough credit: this run needs {need:,.1f} points, {left:,.1f} are left. Top up and the "
                    "next run goes out as planned.")
        if quiet_until(self.policy.quiet_hours, None, now) is not None:
            return ("現在是勿擾時段。", "it falls in quiet hours.")
        return None

    # -- reading -----------------------------------------------------------------------------------

    def live(self, limit: int) -> list[SeriesRow]:
        """Series waiting for approval, running or paused, the next to run first (`/sms scheduled`, Home)."""
        return self.store.series.live(limit)

    def upcoming(self, series: SeriesRow, n: int = 5) -> list[float]:
        return upcoming_runs(series, self.clock(), n)


def upcoming_runs(series: SeriesRow, now: float, n: int = 5) -> list[float]:
    """The next `n` run times: from the next one to handle (a paused series: from now, since resuming
    skips what fell in the pause)."""
    if series.next_run_at is None or series.state not in (PENDING, ACTIVE, PAUSED):
        return []
    after = series.next_run_at - 1 if series.state != PAUSED else max(series.next_run_at, now) - 1
    return [e for _, e in upcoming(rule_of(series), after, n)]
