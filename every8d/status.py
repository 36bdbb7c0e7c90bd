"""EVERY8D delivery status codes (spec 2.1-2.3): meaning in zh-TW and English, finality, outcome.

One table, so the gateway, the tracker, the Slack cards and the sandbox all agree on what a code means.
Every code of either official revision (v2.0.2 of 2017, v2.1.5 of 2021) and of the later one third-party
code describes (-8, -10, the keyword-blocking reading of 105/106) is here, with both wordings where they
differ. Negative codes are refusals of one recipient before sending: final failures, closed at once.
Unknown codes are kept as such (never a crash): they read "unknown code N" / "未知代碼 N" everywhere
(summary, audit CSV), are treated as pending while the batch is open, and keep that code, not "no report",
when validity runs out (see storage/batches.py `expire_pending`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What a status means to the people watching a batch."""

    SCHEDULED = "scheduled"  # 300: waiting for its send time
    PENDING = "pending"  # 0: handed to the carrier, no final report yet
    SENT = "sent"  # 700: an MMS went out; the MMS API reports nothing later (no delivered, no failed)
    DELIVERED = "delivered"  # 100
    FAILED = "failed"  # 101-107, 301, 500 and every negative code (-1 ... -10): closed at once
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
        _s(0, "已交付電信業者，等待手機回報", "sent to the carrier, awaiting the handset's report", Outcome.PENDING, False),
        _s(100, "已送達", "delivered", Outcome.DELIVERED, True),
        _s(101, "手機端因素未能送達（關機、訊號不良或簡訊功能異常）",
           "not delivered: handset (off, weak signal or SMS function fault)", Outcome.FAILED, True),
        _s(102, "未送達：電信網路或基地台異常（舊版：電信終端設備異常）",
           "not delivered: carrier network or base-station fault (older text: carrier equipment fault)",
           Outcome.FAILED, True),
        _s(103, "無此手機號碼", "no such number", Outcome.FAILED, True),  # unassigned or suspended
        _s(104, "未送達：門號在電信業者黑名單（舊版：電信終端設備異常）",
           "not delivered: number on the carrier's blacklist (older text: carrier equipment fault)",
           Outcome.FAILED, True),
        _s(105, "未送達：手機設備問題或非預期錯誤；新版：內容遭電信業者關鍵字攔截（舊版：電信終端設備異常）",
           "not delivered: handset equipment problem or unexpected handset error; later revision: content "
           "blocked by the carrier's keyword filter (older text: carrier equipment fault)", Outcome.FAILED, True),
        _s(106, "未送達：傳送中發生非預期錯誤；新版：內容遭平台關鍵字攔截（舊版：電信終端設備異常）",
           "not delivered: unexpected error while transmitting; later revision: content blocked by the "
           "platform's keyword filter (older text: carrier equipment fault)", Outcome.FAILED, True),
        _s(107, "未送達：逾時收訊（有效期限內未收到）", "expired: not received within validity", Outcome.FAILED, True),
        _s(300, "預約發送", "scheduled", Outcome.SCHEDULED, False),
        _s(301, "未發送：點數不足", "not sent: no or too little credit", Outcome.FAILED, True),
        _s(303, "已取消預約", "scheduled send cancelled", Outcome.CANCELLED, True),
        _s(500, "未發送：國際號碼，需先開通國際簡訊", "not sent: international number, international SMS not enabled",
           Outcome.FAILED, True),
        _s(700, "多媒體簡訊已發送（MMS 不提供送達回報）", "MMS sent (MMS gives no delivery report)", Outcome.SENT, True),
        _s(888, "測試模式，未實際發送", "test mode: nothing delivered", Outcome.TEST, True),
        _s(999, "簡訊回覆", "reply", Outcome.REPLY, True),
        _s(-1, "未發送：參數錯誤", "not sent: parameter error", Outcome.FAILED, True),
        _s(-2, "未發送：API 帳號或密碼錯誤", "not sent: API account or password wrong", Outcome.FAILED, True),
        _s(-3, "未發送：門號錯誤或在簡訊黑名單", "not sent: invalid number, or on the SMS blacklist", Outcome.FAILED, True),
        _s(-4, "未發送：預約時間格式錯誤或已逾 24 小時", "not sent: bad time, or scheduled time over 24 h past",
           Outcome.FAILED, True),
        _s(-5, "未發送：簡訊內容超過長度上限", "not sent: text longer than allowed", Outcome.FAILED, True),
        _s(-6, "未發送：預約時間（DT）格式錯誤", "not sent: bad scheduled time (DT) format", Outcome.FAILED, True),
        _s(-8, "未發送：門號格式錯誤", "not sent: bad number format", Outcome.FAILED, True),
        _s(-10, "未發送：手機無法接收多媒體簡訊", "not sent: the handset cannot receive MMS", Outcome.FAILED, True),
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
        return DeliveryStatus(0, f"未知代碼 {code}", f"unknown code {code}", Outcome.UNKNOWN, False)
    known = _KNOWN.get(number)
    if known is not None:
        return known
    return DeliveryStatus(number, f"未知代碼 {number}", f"unknown code {number}", Outcome.UNKNOWN, False)


def is_known(code: int) -> bool:
    """Whether a table of EVERY8D's documents this code (the bot's own EXPIRED_LOCALLY included)."""
    return code in _KNOWN


def all_statuses() -> list[DeliveryStatus]:
    """Every documented code (for docs, tests and the sandbox)."""
    return [s for s in _KNOWN.values() if s is not EXPIRED_LOCALLY]
