"""Typed results of EVERY8D calls: what the gateway hands back instead of raw comma- and TAB-separated text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from every8d.status import DeliveryStatus, Outcome, status_for


@dataclass(frozen=True, slots=True)
class SendResult:
    """Answer to sendSMS / sendMMS: `CREDIT,SENDED,COST,UNSEND,BATCH_ID` (UNSEND absent in the 4-field form)."""

    credit: float
    sent: int
    cost: float
    unsent: int
    batch_id: str

    @property
    def partly_dropped(self) -> bool:
        """UNSEND > 0: part of the batch was not sent for lack of credit."""
        return self.unsent > 0


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One row of getDeliveryStatus: `NAME<TAB>MOBILE<TAB>SEND_TIME<TAB>COST<TAB>STATUS[<TAB>extra...]`."""

    name: str
    mobile: str
    sent_at: datetime | None
    cost: float
    status: DeliveryStatus
    extra: tuple[str, ...] = ()

    @property
    def is_reply(self) -> bool:
        return self.status.outcome is Outcome.REPLY


@dataclass(frozen=True, slots=True)
class CancelResult:
    """Answer to eraseBooking: `a,b` = messages deleted, points refunded."""

    deleted: int
    refunded: float


@dataclass(frozen=True, slots=True)
class NothingToCancel:
    """eraseBooking answered empty: no scheduled batch with that id (already sent, or cancelled)."""

    batch_id: str


@dataclass(frozen=True, slots=True)
class CallbackReport:
    """One push call from EVERY8D (spec 2.1): a status change, or a reply when STATUS is 999.

    `raw` keeps every parameter received (names upper-cased), unknown ones included, for audit.
    """

    batch_id: str
    mobile: str
    reported_at: datetime | None
    status: DeliveryStatus
    text: str = ""
    record_no: str = ""
    subject: str = ""
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def is_reply(self) -> bool:
        return self.status.code == 999


def record_status(code: int | str) -> DeliveryStatus:
    """Shorthand used by parsers and the sandbox."""
    return status_for(code)


@dataclass(frozen=True, slots=True)
class ParamRecipient:
    """One entry of SendParamSMS's RecipientDataList (an input, typed here beside the answers it yields).

    `param` is the recipient's full text in personalised mode (MSG empty), or five `|`-separated values in
    template mode. `mr` is a per-message code unique within the call, echoed in the status push."""

    mobile: str
    param: str
    name: str = ""
    email: str = ""
    mr: str = ""


@dataclass(frozen=True, slots=True)
class ReplyMessage:
    """One row of getReplyMessage: `NAME<TAB>MOBILE<TAB>CONTENT<TAB>SEND_TIME` (SEND_TIME: when the reply came)."""

    name: str
    mobile: str
    text: str
    received_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReplyPage:
    """One page of getReplyMessage (10 rows a page): the batch's total reply count, this page's readable
    replies, and how many rows had an unexpected field count (a TAB or line break inside a reply breaks
    EVERY8D's line format; such rows are suspect, skipped and counted, never guessed at)."""

    total: int
    replies: list[ReplyMessage]
    suspect: int = 0
