"""The sandbox's EVERY8D account, as pure state driven by an injected clock (no HTTP here).

Why a separate engine: the rules of the platform (pricing, credit, batches, status progression, scheduling,
cancellation, replies) are what the client and the bot are tested against, so they must be deterministic and
testable without sockets or sleeps. Time only moves when the clock says so; `advance()` applies everything
that has come due, in due order, so a fake clock jumping an hour ahead replays the hour exactly.

Rules this sandbox applies (EVERY8D documents some of them only loosely; ours are stated here once):
- Characters are `len()` of the message with CRLF counted as one character (normalized to LF).
- Taiwan SMS (+8869xxxxxxxx) is priced by the spec's table (1-70: 1, 71-134: 2, 135-201: 3, 202-268: 4,
  269-333: 5 points). Longer text is split into 333-character parts, each priced by the table.
- International SMS (any other E.164 number) has no long SMS: it is split into 70-character parts, 1 point
  each, and the total is multiplied by 3. Without `international_enabled` such records end in STATUS 500 and
  cost nothing. MMS to an international number is refused per record with STATUS -3 (MMS is Taiwan-only).
- MMS follows the account's terms (`mms_terms`, as EVERY8D_MMS_TERMS): "2021" costs 3 points per recipient
  when the raw image bytes plus the UTF-8 text are at most 50,000 bytes and 5 points up to 300,000; "2017"
  costs 4 points, up to 50,000 bytes. A call is refused as a whole with -303 (empty subject), -304 (no image,
  or an ATTACHMENT that is not base64), -305 (empty TYPE) or -314 (image plus text over the limit), in that
  order. Subject length and image type are not enforced (EVERY8D documents no code for them; the client
  checks them); the attachment and its TYPE are stored on the batch as received.
- DEST entries are accepted as `+886912345678` or `0912345678` (spaces and dashes ignored) or
  `+<country><number>`; `886912345678` (an unencoded `+` arrives as a space) is malformed. Empty entries are skipped; a malformed entry becomes a STATUS -3 record costing 0
  while the rest of the batch goes; if no entry is valid the whole call is refused with -306.
- Records are charged in DEST order; from the first one the credit cannot pay, every remaining record gets
  STATUS 301 (UNSEND counts them). The credit never goes negative: it keeps whatever the paid records left.
- ST is `yyyyMMddHHmmss` in Taipei time (UTC+8, no DST since 1979). A time not in the future sends at once,
  unless it is more than 24 hours past: then every recipient gets the final status -4 ("scheduled time more
  than 24 h past"), and a malformed ST gives every recipient -6 ("bad DT format", the 2021 table); such
  records cost nothing and the call answers SENDED 0 (the status table, seed §2.2, delta notes §8 and §9:
  neither is documented as a refusal of the whole call).
- RETRYTIME is stored as given when it is a positive integer, else the default 1440 minutes.
- SendParamSMS (personalised mode: MSG empty, each recipient's Param is its text; template mode: MSG with
  `%field1%`..`%field5%` filled from five `|`-separated values) makes one batch whose records each carry
  their own text, charged like sendSMS per text; a recipient's `Mr` is echoed as MR in its pushes. All
  recipients of one call share one SendTime here (the bot sends them so); differing ones are refused.
- getReplyMessage lists a batch's replies (999 records), 10 a page, oldest first.
- Every status a record takes (including its first) is emitted as a callback event, in order.
- A record's final outcome is `failing_numbers[mobile]` if set, else drawn from `failure_rates` by a hash of
  seed + batch id + mobile (so two sandboxes with one seed agree), else 100. Replies likewise.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import heapq
import hmac
import itertools
import random
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, TypeVar

from every8d.status import REPLY_CODE, SCHEDULED_CODE, status_for

TAIPEI = timezone(timedelta(hours=8), "Asia/Taipei")

SMS_TIERS: tuple[tuple[int, int], ...] = ((70, 1), (134, 2), (201, 3), (268, 4), (333, 5))
LONG_SMS_CHARS = 333
INTERNATIONAL_PART_CHARS = 70
INTERNATIONAL_FACTOR = 3
MMS_POINTS = 4  # the 2017 terms' flat price


@dataclass(frozen=True, slots=True)
class MmsTerms:
    """One version of EVERY8D's MMS terms as the sandbox charges them (our own table, kept apart from
    every8d/limits.py on purpose: the sandbox is the reference the client's pricing is tested against)."""

    max_bytes: int
    #: (up to N bytes of image plus text, points per recipient), smallest first; bounds are inclusive.
    bands: tuple[tuple[int, int], ...]

    def points(self, size: int) -> int:
        return next((points for up_to, points in self.bands if size <= up_to), self.bands[-1][1])


MMS_TERMS: dict[str, MmsTerms] = {
    "2017": MmsTerms(max_bytes=50_000, bands=((50_000, MMS_POINTS),)),
    "2021": MmsTerms(max_bytes=300_000, bands=((50_000, 3), (300_000, 5))),
}
DEFAULT_VALIDITY_MINUTES = 1440
PAGE_SIZE = 1000
REPLY_PAGE_SIZE = 10

# Codes of every8d.status the engine assigns itself (the meanings live there).
SENT = 0
MMS_SENT = 700
DELIVERED = 100
SCHEDULED = SCHEDULED_CODE
NO_CREDIT = 301
CANCELLED = 303
INTERNATIONAL_DISABLED = 500
REPLY = REPLY_CODE
INVALID_NUMBER = -3

_Value = TypeVar("_Value")

#: Replies a recipient may send when `reply_rate` > 0 (picked by hash, so deterministic under the seed).
REPLY_TEXTS: tuple[str, ...] = ("好的，收到", "謝謝！", "OK", "請問幾點開始？", "收到 thanks", "請不要再傳了")

# The two documented forms only (seed §1.1): `+886912345678` or `0912345678`. Not `886912345678`: that is
# what a `+` sent unencoded becomes (a space, delta notes §2), and accepting it would hide that bug.
_TAIWAN_MOBILE = re.compile(r"(?:\+886|0)(9\d{8})")
_INTERNATIONAL = re.compile(r"\+[1-9]\d{6,14}")
_SEND_TIME = re.compile(r"\d{14}")
_IGNORED_IN_NUMBERS = re.compile(r"[\s-]")

#: Forced codes given when the send is accepted, not at delivery (with every negative code).
_REFUSED_AT_SEND = frozenset({NO_CREDIT, INTERNATIONAL_DISABLED})

_GO_OUT = "go_out"
_FINALIZE = "finalize"
_REPLY = "reply"


class Refusal(Exception):
    """EVERY8D refused the call as a whole: the body is `code, message` and nothing was processed."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}, {message}")
        self.code = code
        self.message = message

    @property
    def body(self) -> str:
        return f"{self.code}, {self.message}"


# Codes and texts as recorded (delta notes §2 and §5: minchao/go-every8d's tests and codes, the SOAP
# document's -100/-101), the same as sandbox/faults.py REFUSAL_TEXTS; -306 (all numbers malformed) is the
# seed's note, found in no other source.
EMPTY_CREDENTIALS = (-300, "帳號密碼不得為空值。")
UNKNOWN_ACCOUNT = (-100, "帳號或密碼錯誤。")
WRONG_PASSWORD = (-101, "密碼錯誤。")
NO_RECIPIENT = (-41, "no mobile.")
BAD_DESTINATION = (-306, "收訊人號碼格式錯誤。")
EMPTY_MESSAGE = (-24, "The content is empty.")
#: Per-recipient statuses for an ST that cannot be sent (the status tables; not refusals of the call).
OVERDUE_SEND_TIME = -4
BAD_SEND_TIME_FORMAT = -6
OVERDUE_SECONDS = 24 * 3600
UNKNOWN_BATCH = (-25, "查無此批次代碼。")
HOST_ERROR = (-99, "主機端發生不明錯誤，請與廠商窗口聯繫。")
MMS_NO_SUBJECT = (-303, "多媒體簡訊主旨不得為空。")
MMS_NO_IMAGE = (-304, "未上傳圖檔。")
MMS_NO_TYPE = (-305, "圖檔類型不得為空。")
MMS_TOO_LARGE = (-314, "多媒體簡訊大小超過上限。")
BAD_PARAMETER = (-1, "參數錯誤。")
BAD_PARAM_SEND_TIME = (-28, "發送時間格式錯誤。")
_TEMPLATE_FIELD = re.compile(r"%field([1-5])%", re.IGNORECASE)


@dataclass(slots=True, eq=False)
class SandboxRecord:
    """One row of a batch. Small on purpose: a 100,000-recipient batch holds 100,000 of these.

    `mobile` is E.164 (or the entry as given when malformed); `sent_at` is epoch seconds (the scheduled
    time for scheduled records, the reply time for 999 rows); `text` is only set on 999 (reply) rows.
    """

    mobile: str
    name: str
    status: int
    cost: float
    sent_at: float
    record_no: int
    text: str = ""
    #: SendParamSMS's per-recipient `Mr`, echoed as MR in pushes (empty: MR is the record number).
    mr: str = ""
    #: Epoch seconds of the carrier's final report (RECEIVED_TIME, the 2021 6th column); 0 until then.
    received_at: float = 0.0


@dataclass(slots=True, eq=False)
class SandboxBatch:
    """One accepted send call. `send_at` is the scheduled epoch time, None when it went out at once."""

    batch_id: str
    kind: str
    subject: str
    message: str
    records: list[SandboxRecord]
    send_at: float | None
    created_at: float
    validity_minutes: int
    attachment: str = ""
    attachment_type: str = ""
    #: SendParamSMS: each record's own text, in record order (None: every record got `message`).
    texts: list[str] | None = None


@dataclass(frozen=True, slots=True)
class ParamEntry:
    """One recipient of a SendParamSMS call, as received."""

    mobile: str
    param: str
    name: str = ""
    mr: str = ""
    send_time: str = ""


class SendOutcome(NamedTuple):
    """What sendSMS/sendMMS answers: `CREDIT,SENDED,COST,UNSEND,BATCH_ID`."""

    credit: float
    sent: int
    cost: float
    unsent: int
    batch_id: str


class CallbackEvent(NamedTuple):
    """One status change or reply to push. A tuple, so 100,000 queued events stay cheap.

    `text` is SM: the reply on 999, the sent text on every other report (as real pushes carry it);
    `record_no` is MR, one per message (a reply is a message of its own); `sent_at` is ST, `cost` CHARGE
    and `user_id` USERID."""

    batch_id: str
    mobile: str
    at: float
    status: int
    text: str
    record_no: int
    subject: str
    name: str
    #: SendParamSMS's `Mr` for this record ("" for sendSMS/sendMMS).
    mr: str = ""
    sent_at: float = 0.0
    cost: float = 0.0
    user_id: str = ""


def taipei_time(epoch: float, pattern: str) -> str:
    """Format epoch seconds as Taipei wall-clock time (EVERY8D's times are all Taipei local)."""
    return datetime.fromtimestamp(epoch, TAIPEI).strftime(pattern)


def count_chars(message: str) -> int:
    """Characters as EVERY8D bills them here: Python len() with CRLF counted once."""
    return len(message.replace("\r\n", "\n"))


def sms_points(chars: int, taiwan: bool) -> int:
    """Points for one SMS of `chars` characters to one recipient (rules in the module docstring)."""
    if not taiwan:
        parts = -(-chars // INTERNATIONAL_PART_CHARS)
        return parts * INTERNATIONAL_FACTOR
    full_parts, rest = divmod(chars, LONG_SMS_CHARS)
    return full_parts * SMS_TIERS[-1][1] + (_tier_points(rest) if rest else 0)


def _tier_points(chars: int) -> int:
    return next(points for limit, points in SMS_TIERS if chars <= limit)


def mms_size(image: bytes, message: str) -> int:
    """What the MMS limit and price measure here: raw image bytes plus the text's UTF-8 bytes."""
    return len(image) + len(message.encode("utf-8"))


def _image_bytes(attachment: str) -> bytes:
    """The image of a base64 ATTACHMENT; empty when there is none or it is not base64 (refused as -304)."""
    try:
        return base64.b64decode(attachment.strip(), validate=False)
    except (binascii.Error, ValueError):
        return b""


def normalize_mobile(entry: str) -> str | None:
    """E.164 form of one DEST entry, or None when it is not a number EVERY8D would accept."""
    compact = _IGNORED_IN_NUMBERS.sub("", entry)
    taiwan = _TAIWAN_MOBILE.fullmatch(compact)
    if taiwan:
        return "+886" + taiwan.group(1)
    if compact.startswith("+886") or not _INTERNATIONAL.fullmatch(compact):
        return None
    return compact


def read_send_time(text: str, now: float) -> tuple[float | None, int | None]:
    """(ST as epoch seconds if it is in the future, else None for "send now"; the per-recipient status
    every record gets instead of going out: -6 for a malformed ST, -4 for one more than 24 h past)."""
    text = text.strip()
    if not text:
        return None, None
    if not _SEND_TIME.fullmatch(text):
        return None, BAD_SEND_TIME_FORMAT
    try:
        moment = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=TAIPEI)
    except ValueError:
        return None, BAD_SEND_TIME_FORMAT
    at = moment.timestamp()
    if at > now:
        return at, None
    return None, (OVERDUE_SEND_TIME if now - at > OVERDUE_SECONDS else None)


def _validity(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_VALIDITY_MINUTES


def _param_text(template: str, param: str) -> str:
    """A recipient's text: its Param (personalised mode, MSG empty), or MSG with `%fieldN%` replaced by
    the N-th of Param's five `|`-separated values (an empty or missing value substitutes as nothing)."""
    if not template:
        return param
    values = param.split("|")
    return _TEMPLATE_FIELD.sub(
        lambda match: values[int(match.group(1)) - 1] if int(match.group(1)) <= len(values) else "", template
    )


def _unit(seed: int, *parts: str) -> float:
    """A number in [0, 1) fixed by the seed and the parts: outcomes that do not depend on call order."""
    digest = hashlib.blake2b("\x1f".join((str(seed), *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _final_code(code: int | str) -> int:
    """A configured outcome must be a final status EVERY8D documents (a typo like 1001 fails loudly)."""
    known = status_for(code)
    if not known.final:
        raise ValueError(f"{code} is not a final EVERY8D status code")
    return known.code


def _failure_table(rates: Mapping[int, float] | None) -> list[tuple[int, float]]:
    table: list[tuple[int, float]] = []
    total = 0.0
    for code, probability in sorted((rates or {}).items()):
        _final_code(code)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"failure rate for {code} must be between 0 and 1")
        total += probability
        table.append((int(code), total))
    if total > 1.0 + 1e-9:
        raise ValueError("failure rates add up to more than 1")
    return table


def _normalized_keys(numbers: Mapping[str, _Value] | None, what: str) -> dict[str, _Value]:
    result: dict[str, _Value] = {}
    for number, value in (numbers or {}).items():
        mobile = normalize_mobile(number)
        if mobile is None:
            raise ValueError(f"{what}: {number!r} is not a valid mobile number")
        result[mobile] = value
    return result


class Engine:
    """One EVERY8D account and its batches. Every public method takes the lock: HTTP threads, the ticker
    and the test thread all call in concurrently."""

    def __init__(
        self,
        *,
        uid: str,
        pwd: str,
        credit: float,
        seed: int,
        clock: Callable[[], float],
        delivery_seconds: float,
        failure_rates: Mapping[int, float] | None = None,
        failing_numbers: Mapping[str, int] | None = None,
        international_enabled: bool = False,
        reply_rate: float = 0.0,
        contacts: Mapping[str, str] | None = None,
        emit: Callable[[CallbackEvent], None] | None = None,
        mms_terms: str = "2021",
        forced_status: Callable[[str], int | None] | None = None,
    ) -> None:
        """`forced_status(mobile)` is a status a test asked for (sandbox/faults.py `force_status`)."""
        if credit < 0:
            raise ValueError("credit cannot be negative")
        if not 0.0 <= reply_rate <= 1.0:
            raise ValueError("reply_rate must be between 0 and 1")
        if mms_terms not in MMS_TERMS:
            raise ValueError(f"mms_terms must be one of {sorted(MMS_TERMS)}")
        self._mms_terms = MMS_TERMS[mms_terms]
        self._uid = uid.encode()
        self._pwd = pwd.encode()
        self._credit = round(float(credit), 2)
        self._seed = seed
        self._rng = random.Random(seed)
        self._clock = clock
        self._delivery_seconds = delivery_seconds
        self._failures = _failure_table(failure_rates)
        failing = _normalized_keys(failing_numbers, "failing_numbers")
        self._failing: dict[str, int] = {mobile: _final_code(code) for mobile, code in failing.items()}
        self._international = international_enabled
        self._reply_rate = reply_rate
        self._contacts: dict[str, str] = {k: str(v) for k, v in _normalized_keys(contacts, "contacts").items()}
        self._emit = emit
        self._forced = forced_status or (lambda mobile: None)
        self._timeline: list[tuple[float, int, str, str, int, str]] = []
        self._sequence = itertools.count()
        self._batches: dict[str, SandboxBatch] = {}
        self._lock = threading.RLock()

    # --- account -------------------------------------------------------------------------------------

    def authenticate(self, uid: str, pwd: str) -> None:
        """Refuse empty (-300) credentials, an unknown account (-100) or a wrong password for a known one
        (-101), as the codes are documented (delta notes §5); compared in constant time."""
        if not uid or not pwd:
            raise Refusal(*EMPTY_CREDENTIALS)
        uid_ok = hmac.compare_digest(uid.encode(), self._uid)
        pwd_ok = hmac.compare_digest(pwd.encode(), self._pwd)
        if not uid_ok:
            raise Refusal(*UNKNOWN_ACCOUNT)
        if not pwd_ok:
            raise Refusal(*WRONG_PASSWORD)

    @property
    def credit(self) -> float:
        with self._lock:
            return self._credit

    def set_credit(self, value: float) -> None:
        """Top up or drain the account (tests of credit exhaustion, the console's "top up")."""
        if value < 0:
            raise ValueError("credit cannot be negative")
        with self._lock:
            self._credit = round(float(value), 2)

    def batches(self) -> dict[str, SandboxBatch]:
        """A snapshot of the batch index (the batches themselves are live)."""
        with self._lock:
            return dict(self._batches)

    # --- sending -------------------------------------------------------------------------------------

    def send(
        self,
        kind: str,
        *,
        subject: str,
        message: str,
        dest: str,
        send_time: str = "",
        validity: str = "",
        attachment: str = "",
        attachment_type: str = "",
    ) -> SendOutcome:
        """Accept a sendSMS (kind "sms") or sendMMS ("mms") call: validate, charge, create the batch."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            entries = [entry.strip() for entry in dest.split(",") if entry.strip()]
            if not entries:
                raise Refusal(*NO_RECIPIENT)
            mobiles = [normalize_mobile(entry) for entry in entries]
            if all(mobile is None for mobile in mobiles):
                raise Refusal(*BAD_DESTINATION)
            if not message.strip() and not (kind == "mms" and attachment):
                raise Refusal(*EMPTY_MESSAGE)
            if kind == "mms":
                self._check_mms(subject, message, attachment, attachment_type)
            send_at, unsendable = read_send_time(send_time, now)
            batch = SandboxBatch(
                batch_id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                kind=kind,
                subject=subject,
                message=message,
                records=[],
                send_at=send_at,
                created_at=now,
                validity_minutes=_validity(validity),
                attachment=attachment,
                attachment_type=attachment_type,
            )
            self._batches[batch.batch_id] = batch
            sent, cost, unsent = self._fill(batch, entries, mobiles, now, unsendable=unsendable)
            if send_at is not None:
                self._schedule(send_at, _GO_OUT, batch.batch_id)
            elif sent:
                self._schedule(now + self._delivery_seconds, _FINALIZE, batch.batch_id)
            return SendOutcome(self._credit, sent, cost, unsent, batch.batch_id)

    def _check_mms(self, subject: str, message: str, attachment: str, attachment_type: str) -> None:
        """Refuse an MMS call as a whole, as EVERY8D does, before anything is charged."""
        if not subject.strip():
            raise Refusal(*MMS_NO_SUBJECT)
        image = _image_bytes(attachment)
        if not image:
            raise Refusal(*MMS_NO_IMAGE)
        if not attachment_type.strip():
            raise Refusal(*MMS_NO_TYPE)
        if mms_size(image, message) > self._mms_terms.max_bytes:
            raise Refusal(*MMS_TOO_LARGE)

    def send_param(
        self, *, subject: str, template: str, entries: list[ParamEntry], validity: str = ""
    ) -> SendOutcome:
        """Accept a SendParamSMS call: one batch, each record with its own text (see the module docstring)."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if not entries:
                raise Refusal(*NO_RECIPIENT)
            times = {entry.send_time.strip() for entry in entries}
            if len(times) > 1:
                raise Refusal(*BAD_PARAM_SEND_TIME)
            send_at, unsendable = read_send_time(times.pop(), now)
            if unsendable == BAD_SEND_TIME_FORMAT:  # SendParamSMS refuses it as a whole ([3p] -28)
                raise Refusal(*BAD_PARAM_SEND_TIME)
            texts = [_param_text(template, entry.param) for entry in entries]
            if any(not text.strip() for text in texts):
                raise Refusal(*EMPTY_MESSAGE)
            mobiles = [normalize_mobile(entry.mobile) for entry in entries]
            if all(mobile is None for mobile in mobiles):
                raise Refusal(*BAD_DESTINATION)
            batch = SandboxBatch(
                batch_id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                kind="sms",
                subject=subject,
                message=template,
                records=[],
                send_at=send_at,
                created_at=now,
                validity_minutes=_validity(validity),
                texts=texts,
            )
            self._batches[batch.batch_id] = batch
            sent, cost, unsent = self._fill(batch, [e.mobile for e in entries], mobiles, now,
                                            names=[e.name for e in entries], mrs=[e.mr for e in entries],
                                            unsendable=unsendable)
            if send_at is not None:
                self._schedule(send_at, _GO_OUT, batch.batch_id)
            elif sent:
                self._schedule(now + self._delivery_seconds, _FINALIZE, batch.batch_id)
            return SendOutcome(self._credit, sent, cost, unsent, batch.batch_id)

    def _prices(self, batch: SandboxBatch) -> dict[bool, float]:
        """Points per recipient, keyed by "is a Taiwan number"; one float object shared by all records."""
        if batch.kind == "mms":
            points = float(self._mms_terms.points(mms_size(_image_bytes(batch.attachment), batch.message)))
            return {True: points, False: points}
        chars = count_chars(batch.message)
        return {True: float(sms_points(chars, True)), False: float(sms_points(chars, False))}

    def _fill(
        self, batch: SandboxBatch, entries: list[str], mobiles: list[str | None], now: float,
        names: list[str] | None = None, mrs: list[str] | None = None, unsendable: int | None = None,
    ) -> tuple[int, float, int]:
        """Create the records in DEST order, charging each; returns (sent, cost, unsent). A SendParamSMS
        batch (`batch.texts`) is priced per record's own text, `names` and `mrs` given per record.
        `unsendable` (-4, -6: the ST cannot be sent) is every valid record's final status, free."""
        prices = self._prices(batch)
        first_status = SCHEDULED if batch.send_at is not None else self._sent_status(batch)
        sent_at = batch.send_at if batch.send_at is not None else now
        sent = unsent = 0
        cost = 0.0
        out_of_credit = False
        for record_no, (entry, mobile) in enumerate(zip(entries, mobiles, strict=True), start=1):
            if batch.texts is not None:
                chars = count_chars(batch.texts[record_no - 1])
                prices = {True: float(sms_points(chars, True)), False: float(sms_points(chars, False))}
            forced = self._forced(mobile) if mobile else None
            if forced is not None and (forced < 0 or forced in _REFUSED_AT_SEND):
                status, price = forced, 0.0  # EVERY8D refuses this one recipient up front; nothing charged
            elif unsendable is not None and mobile is not None:
                status, price = unsendable, 0.0
            else:
                status, price = self._admit(batch, mobile, prices, out_of_credit)
            if status == NO_CREDIT:
                out_of_credit = True
                unsent += 1
            elif status == SENT:
                sent += 1
                cost += price
                self._credit = round(self._credit - price, 2)
                status = first_status
            name = (names[record_no - 1] if names else "") or self._contacts.get(mobile or "", "")
            mr = mrs[record_no - 1] if mrs else ""
            record = SandboxRecord(mobile or entry, name, status, price, sent_at, record_no, mr=mr)
            batch.records.append(record)
            self._notify(batch, record, now)
        return sent, cost, unsent

    def _admit(
        self, batch: SandboxBatch, mobile: str | None, prices: dict[bool, float], out_of_credit: bool
    ) -> tuple[int, float]:
        """(status, points) for one recipient; SENT means "charge `points` and send it"."""
        if mobile is None:
            return INVALID_NUMBER, 0.0
        taiwan = mobile.startswith("+886")
        if not taiwan and batch.kind == "mms":
            return INVALID_NUMBER, 0.0
        if not taiwan and not self._international:
            return INTERNATIONAL_DISABLED, 0.0
        price = prices[taiwan]
        if out_of_credit or price > self._credit + 1e-9:
            return NO_CREDIT, 0.0
        return SENT, price

    @staticmethod
    def _sent_status(batch: SandboxBatch) -> int:
        return MMS_SENT if batch.kind == "mms" else SENT

    # --- queries and cancellation --------------------------------------------------------------------

    def status_page(self, kind: str, batch_id: str, page: int) -> tuple[int, list[SandboxRecord]]:
        """(total records, copies of the records on 1-based `page`): only that page is copied."""
        with self._lock:
            self._advance(self._clock())
            batch = self._batches.get(batch_id.strip())
            if batch is None or batch.kind != kind:
                raise Refusal(*UNKNOWN_BATCH)
            start = (page - 1) * PAGE_SIZE
            rows = [dataclasses.replace(record) for record in batch.records[start : start + PAGE_SIZE]]
            return len(batch.records), rows

    def reply_page(self, batch_id: str, page: int) -> tuple[int, list[SandboxRecord]]:
        """(the batch's reply count, copies of its replies on 1-based `page`, 10 a page, oldest first)."""
        with self._lock:
            self._advance(self._clock())
            batch = self._batches.get(batch_id.strip())
            if batch is None:
                raise Refusal(*UNKNOWN_BATCH)
            replies = [record for record in batch.records if record.status == REPLY]
            start = (page - 1) * REPLY_PAGE_SIZE
            return len(replies), [dataclasses.replace(r) for r in replies[start : start + REPLY_PAGE_SIZE]]

    def text_of(self, batch: SandboxBatch, record: SandboxRecord) -> str:
        """The text a record was sent (its own for a SendParamSMS batch)."""
        if batch.texts is not None and 0 < record.record_no <= len(batch.texts):
            return batch.texts[record.record_no - 1]
        return batch.message

    def erase_booking(self, kind: str, batch_id: str) -> tuple[int, float] | None:
        """Cancel a scheduled batch not yet sent: (records cancelled, points refunded), or None if nothing
        of that kind is waiting under that id (unknown, already sent, already cancelled)."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            batch = self._batches.get(batch_id.strip())
            if batch is None or batch.kind != kind:
                return None
            waiting = [record for record in batch.records if record.status == SCHEDULED]
            if not waiting:
                return None
            refund = sum(record.cost for record in waiting)
            self._credit = round(self._credit + refund, 2)
            for record in waiting:
                record.status = CANCELLED
                self._notify(batch, record, now)
            return len(waiting), refund

    # --- time ----------------------------------------------------------------------------------------

    def advance(self) -> None:
        """Apply everything due by now: scheduled batches go out, sent records become final, replies arrive."""
        with self._lock:
            self._advance(self._clock())

    def _advance(self, now: float) -> None:
        while self._timeline and self._timeline[0][0] <= now:
            due, _, action, batch_id, index, text = heapq.heappop(self._timeline)
            batch = self._batches[batch_id]
            if action == _GO_OUT:
                self._go_out(batch, due)
            elif action == _FINALIZE:
                self._finalize(batch, due)
            else:
                self._add_reply(batch, batch.records[index], text, due)

    def _schedule(self, due: float, action: str, batch_id: str, index: int = 0, text: str = "") -> None:
        heapq.heappush(self._timeline, (due, next(self._sequence), action, batch_id, index, text))

    def _go_out(self, batch: SandboxBatch, at: float) -> None:
        status = self._sent_status(batch)
        moved = False
        for record in batch.records:
            if record.status == SCHEDULED:
                record.status = status
                moved = True
                self._notify(batch, record, at)
        if moved:
            self._schedule(at + self._delivery_seconds, _FINALIZE, batch.batch_id)

    def _finalize(self, batch: SandboxBatch, at: float) -> None:
        pending = self._sent_status(batch)
        for index, record in enumerate(batch.records):
            if record.status != pending:
                continue
            if batch.kind == "mms" and self._forced(record.mobile) is None and record.mobile not in self._failing:
                continue  # EVERY8D's MMS table ends at 700 "sent": it has no delivered and no failed state
            record.status = self._outcome(batch.batch_id, record.mobile)
            record.received_at = at
            self._notify(batch, record, at)
            if record.status == DELIVERED:
                self._maybe_reply(batch, index, at)

    def _outcome(self, batch_id: str, mobile: str) -> int:
        forced = self._forced(mobile)
        if forced is not None:
            return forced  # any code a test asked for: final, pending, or one no table knows
        forced = self._failing.get(mobile)
        if forced is not None:
            return forced
        if not self._failures:
            return DELIVERED
        draw = _unit(self._seed, batch_id, mobile, "outcome")
        return next((code for code, upto in self._failures if draw < upto), DELIVERED)

    def _maybe_reply(self, batch: SandboxBatch, index: int, delivered_at: float) -> None:
        if not self._reply_rate:
            return
        mobile = batch.records[index].mobile
        if _unit(self._seed, batch.batch_id, mobile, "reply") >= self._reply_rate:
            return
        delay = 1.0 + 4.0 * _unit(self._seed, batch.batch_id, mobile, "delay")
        text = REPLY_TEXTS[int(_unit(self._seed, batch.batch_id, mobile, "text") * len(REPLY_TEXTS))]
        self._schedule(delivered_at + delay, _REPLY, batch.batch_id, index, text)

    # --- replies -------------------------------------------------------------------------------------

    def simulate_reply(self, batch_id: str, mobile: str, text: str, at: float | None = None) -> None:
        """The recipient `mobile` of `batch_id` answers `text` at epoch `at` (default now): a 999 record
        is appended to the batch and a callback event emitted (immediately, or when `at` comes due)."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            batch = self._batches.get(batch_id)
            if batch is None:
                raise ValueError(f"no batch {batch_id!r} in this sandbox")
            wanted = normalize_mobile(mobile) or mobile
            index = next(
                (i for i, r in enumerate(batch.records) if r.mobile == wanted and r.status != REPLY), None
            )
            if index is None:
                raise ValueError(f"{mobile!r} is not a recipient of batch {batch_id!r}")
            if at is None or at <= now:
                self._add_reply(batch, batch.records[index], text, now if at is None else at)
            else:
                self._schedule(at, _REPLY, batch_id, index, text)

    def _add_reply(self, batch: SandboxBatch, original: SandboxRecord, text: str, at: float) -> None:
        # A reply is a message of its own: EVERY8D (since 2021) gives every message its own MR.
        reply = SandboxRecord(original.mobile, original.name, REPLY, 0.0, at, len(batch.records) + 1, text,
                              received_at=at)  # no Mr: a new message
        batch.records.append(reply)
        self._notify(batch, reply, at)

    @staticmethod
    def _sent_text(batch: SandboxBatch, record: SandboxRecord) -> str:
        """The text this record was sent (SM of a status push): its own text in a SendParamSMS batch."""
        if batch.texts is not None and 0 < record.record_no <= len(batch.texts):
            return batch.texts[record.record_no - 1]
        return batch.message

    def _notify(self, batch: SandboxBatch, record: SandboxRecord, at: float) -> None:
        if self._emit is not None:
            self._emit(
                CallbackEvent(
                    batch.batch_id, record.mobile, at, record.status,
                    record.text if record.status == REPLY else self._sent_text(batch, record),
                    record.record_no, batch.subject, record.name, mr=record.mr,
                    sent_at=batch.send_at if batch.send_at is not None else batch.created_at, cost=record.cost,
                    user_id=self._uid.decode(),
                )
            )
