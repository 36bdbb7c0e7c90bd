"""EVERY8D delivery status codes (spec 2.1-2.3): meaning in zh-TW and English, finality, outcome.

One table, so the gateway, the tracker, the Slack cards and the sandbox all agree on what a code means.
Unknown codes are kept as such (never a crash): they are reported as "unknown status N" and treated as
pending, so a batch carrying one is still polled until its validity runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What a status means to the people watching a batch."""

    SCHEDULED = "scheduled"  # 300: waiting for its send time
    PENDING = "pending"  # 0 / 700: handed to the carrier, no final report yet
    DELIVERED = "delivered"  # 100
    FAILED = "failed"  # 101-107, 301, 500, -3, -4
    CANCELLED = "cancelled"  # 303
    REPLY = "reply"  # 999: the record is an inbound reply, not a delivery
    TEST = "test"  # 888: test mode, nothing delivered
    UNKNOWN = "unknown"  # a code this table does not know


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """One status code and everything the product needs to know about it."""

    code: int
    zh: str
    en: str
    outcome: Outcome
    final: bool

    @property
    def rank(self) -> int:
        """Order in which statuses may follow each other: scheduled < sent < final.

        Callbacks and polls arrive out of order; a record only ever moves to a higher rank, so a late
        "sent" never overwrites "delivered".
        """
        if self.outcome is Outcome.SCHEDULED:
            return 0
        if self.final:
            return 2
        return 1

    def label(self, language: str = "both") -> str:
        if language == "zh-TW":
            return self.zh
        if language == "en":
            return self.en
        return f"{self.zh} {self.en}"


def _s(code: int, zh: str, en: str, outcome: Outcome, final: bool) -> DeliveryStatus:
    return DeliveryStatus(code, zh, en, outcome, final)


_KNOWN: dict[int, DeliveryStatus] = {
    s.code: s
    for s in (
        _s(0, "已發送", "sent to carrier", Outcome.PENDING, False),
        _s(100, "已送達", "delivered", Outcome.DELIVERED, True),
        _s(101, "手機端因素未能送達", "not delivered: handset", Outcome.FAILED, True),
        _s(102, "電信終端設備異常未能送達", "not delivered: carrier equipment", Outcome.FAILED, True),
        _s(103, "無此手機號碼", "no such number", Outcome.FAILED, True),
        _s(104, "電信終端設備異常未能送達", "not delivered: carrier equipment", Outcome.FAILED, True),
        _s(105, "電信終端設備異常未能送達", "not delivered: carrier equipment", Outcome.FAILED, True),
        _s(106, "電信終端設備異常未能送達", "not delivered: carrier equipment", Outcome.FAILED, True),
        _s(107, "逾時收訊", "expired: not received within validity", Outcome.FAILED, True),
        _s(300, "預約發送", "scheduled", Outcome.SCHEDULED, False),
        _s(301, "點數不足無法發送", "not sent: no credit", Outcome.FAILED, True),
        _s(303, "已取消預約", "cancelled", Outcome.CANCELLED, True),
        _s(500, "未開通國際簡訊", "international SMS not enabled", Outcome.FAILED, True),
        _s(700, "多媒體簡訊已發送", "MMS sent", Outcome.PENDING, False),
        _s(888, "測試模式", "test mode", Outcome.TEST, True),
        _s(999, "回覆", "reply", Outcome.REPLY, True),
        _s(-3, "無效門號", "invalid number", Outcome.FAILED, True),
        _s(-4, "時間格式錯誤或預約時間已過 24 小時", "bad time, or scheduled time over 24 h past", Outcome.FAILED, True),
    )
}

#: Status the bot assigns itself when validity plus a margin has passed and no report ever came.
EXPIRED_LOCALLY = DeliveryStatus(
    -1000, "逾時未回報", "no report before validity ended", Outcome.FAILED, True
)
_KNOWN[EXPIRED_LOCALLY.code] = EXPIRED_LOCALLY

REPLY_CODE = 999
SCHEDULED_CODE = 300


def status_for(code: int | str) -> DeliveryStatus:
    """The status for a code; an unknown code gets a generic, pending entry rather than an exception."""
    try:
        number = int(str(code).strip())
    except ValueError:
        return DeliveryStatus(0, f"未知狀態 {code}", f"unknown status {code}", Outcome.UNKNOWN, False)
    known = _KNOWN.get(number)
    if known is not None:
        return known
    return DeliveryStatus(number, f"未知狀態 {number}", f"unknown status {number}", Outcome.UNKNOWN, False)


def all_statuses() -> list[DeliveryStatus]:
    """Every documented code (for docs, tests and the sandbox)."""
    return [s for s in _KNOWN.values() if s is not EXPIRED_LOCALLY]
