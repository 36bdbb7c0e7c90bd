"""Rows as typed objects: what the services and the cards read. Only storage/ builds them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RequestState(StrEnum):
    """Life of a send request. Only these transitions exist (each a conditional UPDATE):

    pending_approval -> approved | rejected
    approved -> sending            (claimed by exactly one sender)
    sending -> sent | failed | unknown
    unknown -> sent (reconciled or marked by an approver) | approved (explicit resend)
    sent -> cancelled              (a scheduled batch cancelled before it went out)
    """

    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class SendRequest:
    id: int
    created_at: float
    updated_at: float
    requester: str
    origin_channel: str
    kind: str
    subject: str
    message: str
    image_type: str | None
    image_name: str | None
    send_at: float | None
    validity_minutes: int
    recipient_count: int
    taiwan_count: int
    international_count: int
    skipped_json: str
    chars: int
    parts: int
    points: float
    estimate: bool
    credit_at_request: float | None
    state: RequestState
    approval_channel: str
    approval_ts: str | None
    decided_by: str | None
    decided_at: float | None
    auto_approved: bool
    batch_id: str | None
    sent_count: int | None
    cost: float | None
    unsent: int | None
    credit_after: float | None
    error_zh: str | None
    error_en: str | None
    error_note: str | None
    sandbox: bool
    send_attempts: int
    thread_channel: str | None = None
    thread_ts: str | None = None
    reply_to: int | None = None
    quiet_override: bool = False
    optout_skipped: int = 0
    decision_reason: str | None = None

    @property
    def is_scheduled(self) -> bool:
        return self.send_at is not None

    @property
    def posts_channel(self) -> str:
        """Where this request's thread posts go: its own card's thread, or the thread it answers in."""
        return self.thread_channel or self.approval_channel

    @property
    def posts_thread_ts(self) -> str | None:
        return self.thread_ts or self.approval_ts


class PartState(StrEnum):
    """Life of one part of a request (one EVERY8D call):

    pending -> sending (claimed by exactly one sender) -> sent | failed | unknown
    pending -> skipped (every recipient of the part opted out before it went out)
    unknown -> sent (reconciled, or marked by an approver) | pending (an approver chose to send again)
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class PartPlan:
    """A part to create with its request: positions first..last (inclusive), its own text or None."""

    first_position: int
    last_position: int
    message: str | None = None
    points: float = 0.0
    #: "text": one text for the whole part (sendSMS/sendMMS); "param": each recipient's own text in one
    #: SendParamSMS call (`message` then holds the first recipient's text, for display only).
    mode: str = "text"


@dataclass(frozen=True, slots=True)
class RequestPart:
    """One EVERY8D call of a request: recipients at positions first_position..last_position."""

    request_id: int
    part: int
    first_position: int
    last_position: int
    recipient_count: int
    message: str | None
    points: float
    state: PartState
    batch_id: str | None
    sent_count: int | None
    cost: float | None
    unsent: int | None
    optout_dropped: int
    attempts: int
    claimed_at: float | None
    updated_at: float
    #: "text" (one call with `message`) or "param" (SendParamSMS, each recipient's text; see PartPlan).
    mode: str = "text"


class BatchState(StrEnum):
    """A batch is polled while `open`; `complete` once every recipient is final (or validity ran out, or it
    was cancelled); a complete batch is still read for late replies during its reply window."""

    OPEN = "open"
    COMPLETE = "complete"


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    request_id: int
    kind: str
    state: BatchState
    created_at: float
    send_at: float | None
    validity_until: float
    next_poll_at: float
    last_checked_at: float | None
    poll_failures: int
    summary_ts: str | None
    summary_digest: str | None
    completed_at: float | None
    reply_poll_until: float | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    batch_id: str
    mobile: str
    name: str
    status_code: int
    status_rank: int
    status_at: float | None
    cost: float


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    batch_id: str | None
    mobile: str
    received_at: float | None
    text: str
    source: str
    matched: bool


@dataclass(frozen=True, slots=True)
class KeptReport:
    """A pushed report kept aside (its batch is unknown, or the batch never had its number), typed: the
    EVERY8D parameter names stay at the edge (every8d/callback.py); `audit_json` is what was received,
    bounded, for people to read."""

    id: int
    batch_id: str
    status_code: int
    mobile: str
    reported_at: float | None
    text: str
    record_no: str
    subject: str
    created_at: float
    reason: str
    audit_json: str = "{}"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str
    ref: dict
    channel: str | None
    attempts: int
    dedupe_key: str | None
    #: The order this post keeps (a request's thread); None: no order with any other post.
    thread_key: str | None = None
    #: When a Slack call for it last started: set on a pending row, the post may already be in Slack.
    posting_at: float | None = None


def row_to(cls: type, row: dict) -> object:
    """Build a dataclass from a row, ignoring columns the dataclass does not carry (e.g. image bytes)."""
    names = cls.__dataclass_fields__.keys()  # type: ignore[attr-defined]
    values = {name: row[name] for name in names}
    if cls is Batch:
        values["state"] = BatchState(values["state"])
    return cls(**values)


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    name: str
    e164: str
    tags: str


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    body: str
    created_by: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class OptOut:
    e164: str
    at: float
    source: str
    keyword: str
    actor: str


@dataclass(frozen=True, slots=True)
class Budget:
    """A monthly point budget: `scope` "channel" (key: a channel id) or "requester" (key: a user id)."""

    scope: str
    key: str
    points: float
    created_by: str
    updated_at: float
