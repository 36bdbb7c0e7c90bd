"""Credit: read it on a schedule and after each send, keep its history, and raise one alert per crossing.

The alert is a two-state switch kept in the database (`ok` / `low`), flipped with a compare-and-set,
so two checks at once never post two alerts: below the threshold it flips to `low` and posts once;
only above threshold + margin does it flip back and post a recovery notice. Being in the database, the
switch survives a restart: a bot restarted while credit is low does not alert again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from every8d.errors import Every8dError
from services.notices import CREDIT_LOW, CREDIT_RECOVERED
from services.policy import Policy
from services.ports import Clock, Gateway
from storage import Store

log = logging.getLogger("every8d_bot.credit")

ALERT_KEY = "low_credit_alert"
DAY = 86400.0


@dataclass(frozen=True)
class Trend:
    """What `/sms credit`, the alert and App Home show: balance, 24-hour change, burn rate, days left."""

    credit: float | None
    at: float | None
    change_24h: float | None
    burn_per_day: float | None
    days_left: float | None


class CreditService:
    """Credit readings, their history and the low-credit alert switch."""

    def __init__(self, store: Store, gateway: Gateway, policy: Policy, clock: Clock) -> None:
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.clock = clock
        self._failing = False

    def check(self) -> float | None:
        """Read the credit from EVERY8D; None (logged once per failure streak) if it cannot be read."""
        try:
            credit = self.gateway.get_credit()
        except Every8dError as exc:
            if not self._failing:
                log.warning("credit check failed, will retry: %s", exc.describe("en"))
            self._failing = True
            return None
        if self._failing:
            log.info("credit check works again")
        self._failing = False
        self.store.credit.record(credit, source="poll", now=self.clock())
        self.observe(credit)
        return credit

    def observe(self, credit: float) -> None:
        """Flip the alert switch if this reading crosses below the threshold (alert) or recovers above
        threshold + margin (recovery notice). The flip and its post commit together; the compare-and-set
        on the stored state means concurrent readings (a send and the scheduled check) post at most once."""
        threshold = self.policy.low_credit_threshold
        with self.store.immediate():
            stored = self.store.settings.get(ALERT_KEY)
            state = stored or "ok"
            if credit < threshold and state == "ok":
                if self.store.settings.swap(ALERT_KEY, stored, "low"):
                    log.warning("credit %.1f is below the threshold %.1f", credit, threshold)
                    self._post(CREDIT_LOW, {"credit": credit, "threshold": threshold, "at": self.clock()})
            elif state == "low" and credit > threshold + self.policy.low_credit_margin:
                if self.store.settings.swap(ALERT_KEY, "low", "ok"):
                    log.info("credit %.1f recovered above %.1f", credit, threshold + self.policy.low_credit_margin)
                    self._post(CREDIT_RECOVERED, {"credit": credit, "at": self.clock()})

    def _post(self, kind: str, ref: dict[str, float]) -> None:
        if self.policy.alert_channel:
            self.store.outbox.enqueue(kind, ref, channel=self.policy.alert_channel)

    def trend(self) -> Trend:
        """The balance, its change over 24 hours, and days left at the last week's burn rate.

        Burn counts only decreases (a top-up is not negative spending)."""
        latest = self.store.credit.latest()
        if latest is None:
            return Trend(None, None, None, None, None)
        credit, at = latest
        now = self.clock()
        readings = self.store.credit.since(now - 7 * DAY)
        day_ago = [c for t, c in readings if t <= now - DAY]
        change = credit - day_ago[-1] if day_ago else (credit - readings[0][1] if readings else None)
        spent = sum(max(prev - cur, 0.0) for (_, prev), (_, cur) in zip(readings, readings[1:], strict=False))
        span_days = (readings[-1][0] - readings[0][0]) / DAY if len(readings) > 1 else 0.0
        burn = spent / span_days if span_days >= 1 / 24 and spent > 0 else None
        days_left = credit / burn if burn else None
        return Trend(credit, at, change, burn, days_left)
