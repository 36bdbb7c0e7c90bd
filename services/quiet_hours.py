"""Quiet hours: the parts of the day when no marketing SMS should arrive (default, as common Taiwanese
practice has it: the lunch break 12:30-13:30 and the night 21:00-08:00, Asia/Taipei).

A text at 23:00 wakes people and reads as spam; one in the middle of the lunch break is the other moment
Taiwanese recipients most often complain about. So a send that would go out inside a window is not
submitted silently: the person chooses to schedule it for the next allowed time, or to send anyway,
which is recorded in the audit and shown on the approval card. Windows are read in BOT_TIMEZONE, may
cross midnight, and are written `12:30-13:30,21:00-08:00`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)$")

#: The default: Taiwan's common practice for marketing texts (lunch break and night).
TAIWAN_DEFAULT = "12:30-13:30,21:00-08:00"


@dataclass(frozen=True)
class QuietHours:
    """Daily windows [start, end) in `timezone`; a window with `start > end` crosses midnight. `start` and
    `end` are the first window's (kept for callers that show one window)."""

    start: time
    end: time
    timezone: str = "Asia/Taipei"
    more: tuple[tuple[time, time], ...] = ()

    @property
    def windows(self) -> tuple[tuple[time, time], ...]:
        return ((self.start, self.end), *self.more)

    @classmethod
    def parse(cls, text: str, timezone: str = "Asia/Taipei") -> QuietHours | None:
        """`"21:00-08:00"` or `"12:30-13:30,21:00-08:00"` -> QuietHours; empty -> None (quiet hours off).
        Raises ValueError naming the part that is not HH:MM-HH:MM, or a window that starts where it ends
        (it would be all day or never)."""
        parts = [part.strip() for part in re.split(r"[,，;；]", text) if part.strip()]
        if not parts:
            return None
        windows = []
        for part in parts:
            match = _WINDOW.match(part)
            if not match:
                raise ValueError(f"not HH:MM-HH:MM: {part!r}")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if (h1, m1) == (h2, m2):
                raise ValueError(f"the window starts where it ends: {part!r}")
            windows.append((time(h1, m1), time(h2, m2)))
        (start, end), *more = windows
        return cls(start, end, timezone, tuple(more))

    @property
    def label(self) -> str:
        """`12:30-13:30, 21:00-08:00`, for messages."""
        return ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in self.windows)

    def contains(self, moment: datetime) -> bool:
        """Whether this aware moment falls inside a window (its start included, its end not)."""
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        return any(_inside(local, a, b) for a, b in self.windows)

    def next_allowed(self, moment: datetime) -> datetime:
        """The first allowed moment at or after `moment`: itself when outside every window; else the end of
        the window it is in, and again if that end falls inside another window (overlapping windows)."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        for _ in range(len(self.windows) + 1):
            window = next(((a, b) for a, b in self.windows if _inside(local.time(), a, b)), None)
            if window is None:
                return local
            end = local.replace(hour=window[1].hour, minute=window[1].minute, second=0, microsecond=0)
            if end <= local:
                end = (local + timedelta(days=1)).replace(hour=window[1].hour, minute=window[1].minute, second=0,
                                                          microsecond=0)
            local = end
        return local


def _inside(local: time, start: time, end: time) -> bool:
    if start < end:
        return start <= local < end
    return local >= start or local < end


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
