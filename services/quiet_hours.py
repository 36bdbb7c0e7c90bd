"""Quiet hours: the part of the day (default 21:00 to 08:00 Asia/Taipei) when no SMS should arrive.

A text at 23:00 wakes people and reads as spam, so a send that would go out inside the window is not
submitted silently: the person chooses to schedule it for the next allowed time, or to send anyway,
which is recorded in the audit and shown on the approval card. The window is read in BOT_TIMEZONE and
may cross midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class QuietHours:
    """A daily window [start, end) in `timezone`; `start > end` means it crosses midnight."""

    start: time
    end: time
    timezone: str = "Asia/Taipei"

    @classmethod
    def parse(cls, text: str, timezone: str = "Asia/Taipei") -> QuietHours | None:
        """`"21:00-08:00"` -> QuietHours; empty -> None (quiet hours off). Raises ValueError on anything
        else, or on a window that starts where it ends (it would be all day or never)."""
        text = text.strip()
        if not text:
            return None
        match = _WINDOW.match(text)
        if not match:
            raise ValueError(f"not HH:MM-HH:MM: {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h1, m1) == (h2, m2):
            raise ValueError(f"the window starts where it ends: {text!r}")
        return cls(time(h1, m1), time(h2, m2), timezone)

    @property
    def label(self) -> str:
        """`21:00-08:00`, for messages."""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: datetime) -> bool:
        """Whether this aware moment falls inside the window (its start included, its end not)."""
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime) -> datetime:
        """The first allowed moment at or after `moment`: itself when outside, else the window's end
        (today's or tomorrow's, whichever comes next), in the window's time zone."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        if not self.contains(local):
            return local
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end = (local + timedelta(days=1)).replace(hour=self.end.hour, minute=self.end.minute, second=0,
                                                      microsecond=0)
        return end


def quiet_until(quiet: QuietHours | None, send_at: datetime | None, now: float) -> datetime | None:
    """When a send (at `send_at`, or now) would go out inside quiet hours: the next allowed time; else None."""
    if quiet is None:
        return None
    when = send_at or datetime.fromtimestamp(now, tz=UTC)
    return quiet.next_allowed(when) if quiet.contains(when) else None


def rescheduled(quiet: QuietHours | None, send_at: datetime | None, now: float, *, min_lead_seconds: float) -> datetime | None:
    """The send time chosen with "schedule for the next allowed time": the first allowed moment at or
    after `send_at` (or now); None (send now) if that is no longer far enough ahead to schedule."""
    current = datetime.fromtimestamp(now, tz=UTC)
    target = quiet.next_allowed(send_at or current) if quiet else send_at
    if target is None or target <= current + timedelta(seconds=min_lead_seconds):
        return None
    return target
