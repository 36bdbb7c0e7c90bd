"""Which week's report is due, claimed once, and queued as a post like every other.

The weekly report job ticks at the configured time and each following hour of that day, and once at start
(the catch-up for a bot that was down at the time); more than one of them may run, before and after a
restart. The claim is a settings key per ISO week (`weekly_report:2026-W47`), taken with a compare-and-set
in the same transaction that queues the report in the outbox: whoever takes it queues the one post, and
from then on the outbox owns delivery (retried until Slack takes it, never posted twice). The figures
are counted by the renderer when the post goes out.
"""

from __future__ import annotations

import logging

from services import notices
from services.policy import Policy
from services.ports import Clock
from services.reports import previous_week
from storage import OutboxItem, Store

log = logging.getLogger("every8d_bot.reports")

#: The settings key that records a week's report: `weekly_report:2026-W47`.
WEEKLY_KEY = "weekly_report:{label}"
#: Left by versions that posted directly when Slack refused the post: the week may be taken again.
_FAILED = "failed"


class WeeklyReportService:
    """Decides whether last week's report is due and queues it once per week."""

    def __init__(self, store: Store, policy: Policy, clock: Clock, *, timezone: str) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        #: The bot's time zone: a week runs Monday to Monday there.
        self.timezone = timezone

    def due(self, now: float | None = None) -> OutboxItem | None:
        """The report post of the last complete week before `now` that is still to go out: queued by this
        call when nobody had taken the week, or queued earlier and still waiting for Slack (a later tick is
        also a retry). None once it went out (or was taken by a version that cannot say), and when no
        alert channel is configured."""
        channel = self.policy.alert_channel
        if not channel:
            log.info("weekly report skipped: no alert channel is configured")
            return None
        now = self.clock() if now is None else now
        start, end, label = previous_week(now, self.timezone)
        key = WEEKLY_KEY.format(label=label)
        claim = f"queued:{now:.0f}"
        settings = self.store.settings
        with self.store.immediate():  # the claim and the post land together or not at all
            claimed = settings.swap(key, None, claim) or settings.swap(key, _FAILED, claim)
            if claimed:
                notices.weekly_report(self.store, channel, label, start, end)
        if claimed:
            log.info("weekly report %s queued for %s", label, channel)
        return self.store.outbox.pending(dedupe_key=notices.weekly_report_key(label))
