"""Pure parsers from EVERY8D's plain-text answers to typed results or typed errors.

EVERY8D answers with bare comma- and TAB-separated text, a negative number plus a Chinese sentence when it
refuses, and, when something in front of it breaks, an HTML page or nothing at all. Every parser here turns
all of that into a `results` value or an `errors` exception: a caller never sees a ValueError from deep
inside, and an answer that is not EVERY8D's becomes `UnavailableError` so the client can decide to retry.
These functions do no I/O, so every quirk is tested without a server.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from every8d.codes import error_for
from every8d.endpoints import CANCEL_SMS, CREDIT, REPLIES, SEND_PARAM, SEND_SMS, STATUS_SMS
from every8d.errors import UnavailableError, UnsupportedEndpointError
from every8d.results import (
    CancelResult,
    DeliveryRecord,
    NothingToCancel,
    ReplyMessage,
    ReplyPage,
    SendResult,
    record_status,
)

TAIPEI = ZoneInfo("Asia/Taipei")

UNREADABLE_ZH = "EVERY8D 回應了無法辨識的內容"
UNREADABLE_EN = "EVERY8D answered something unreadable"

# A refusal: a negative code, then (optionally) a comma, an optional space and EVERY8D's own sentence.
_REFUSAL = re.compile(r"(-\d+)(?:\.0+)?(?:\s*[,，]\s*(.*)|\s*)", re.DOTALL)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_COUNT = re.compile(r"\d+")
_STATUS_CODE = re.compile(r"-?\d+")
_BATCH_ID = re.compile(r"[^\s,]+")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
# `2010/03/03 14:25:55`, `2010-3-3 14:25`, .NET's zh-TW `2010/3/3 下午 02:25:55`, compact `20100303142555`,
# or the 2021 document's `2021/06/0114:27:55` (date and time run together: then day and hour have two digits each).
_DATE_TIME = re.compile(
    r"(\d{4})[/-](\d{1,2})[/-](\d{2}(?=\d{2}:)|\d{1,2}(?=[ T]))[ T]*(?:(上午|下午|AM|PM)\s*)?(\d{1,2}):(\d{2})"
    r"(?::(\d{2}))?"
    r"(?:\.\d+)?\s*(上午|下午|AM|PM)?",
    re.IGNORECASE,
)
_COMPACT_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})")


def parse_send_response(body: str, endpoint: str = SEND_SMS) -> SendResult:
    """`CREDIT,SENDED,COST,UNSEND,BATCH_ID`, or the spec's own 4-field example without UNSEND.

    A negative CREDIT is a refusal (nothing was sent) and raises the endpoint's mapped error.
    """
    text = _readable(body)
    _raise_if_refusal(text, endpoint)
    fields = [field.strip() for field in text.split(",")]
    if len(fields) == 4:
        fields.insert(3, "0")
    if len(fields) != 5:
        raise _unreadable(text)
    credit, sent, cost, unsent, batch_id = fields
    if not (_fullmatch(_NUMBER, credit, cost) and _fullmatch(_COUNT, sent, unsent) and _BATCH_ID.fullmatch(batch_id)):
        raise _unreadable(text)
    return SendResult(credit=float(credit), sent=int(sent), cost=float(cost), unsent=int(unsent), batch_id=batch_id)


def parse_status_page(body: str, endpoint: str = STATUS_SMS) -> tuple[int, list[DeliveryRecord]]:
    """One page of getDeliveryStatus: the batch's total record count and this page's records.

    Rows are split on TAB before anything is stripped, because an empty NAME makes a row start with a TAB.
    Extra columns after STATUS are kept in `DeliveryRecord.extra`. LF and CRLF are both accepted.
    """
    text = _readable(body)
    lines = text.split("\n")
    first = lines[0].strip()
    _raise_if_refusal(first, endpoint)
    if not _COUNT.fullmatch(first):
        raise _unreadable(text)
    records = [_record(line) for line in lines[1:] if line.strip("\r")]
    return int(first), records


def parse_param_send_response(body: str, endpoint: str = SEND_PARAM) -> SendResult:
    """SendParamSMS's JSON answer: `{"Result":true,"Status":"0","Msg":"<the five sendSMS fields>"}`.

    `Result:false` with a non-zero `Status` is a refusal (nothing was sent) and raises the endpoint's
    mapped error, keeping `Msg` as EVERY8D's text. A plain §2 error body (`-99, ...`) is a refusal too.
    Anything else unreadable is `UnavailableError`, which the client turns into "outcome unknown" for
    a send: the call may have been processed, so it is never retried or replaced by another endpoint.
    """
    text = _readable(body)
    _raise_if_refusal(text, endpoint)
    try:
        answer = json.loads(text)
    except ValueError:
        raise _unreadable(text) from None
    if not isinstance(answer, dict):
        raise _unreadable(text)
    fields = {str(key).lower(): value for key, value in answer.items()}
    result, status, message = fields.get("result"), str(fields.get("status", "")).strip(), fields.get("msg")
    if result is True and status in ("0", "") and isinstance(message, str):
        return parse_send_response(message, endpoint)
    if result is False or (status and status != "0"):
        code = int(status) if _STATUS_CODE.fullmatch(status) and int(status) != 0 else -99
        raise error_for(endpoint, code, str(message or "").strip())
    raise _unreadable(text)


def parse_reply_page(body: str, endpoint: str = REPLIES) -> ReplyPage:
    """One page of getReplyMessage: `REPLY_COUNT`, then `NAME<TAB>MOBILE<TAB>CONTENT<TAB>SEND_TIME` rows.

    A request-level failure is the §2 error body. A body that is neither (no count line) means the
    platform does not have this endpoint as documented: `UnsupportedEndpointError`. A row without exactly
    four fields, an empty number or an unreadable time is suspect (a TAB or line break inside a reply
    splits EVERY8D's rows): skipped and counted, never guessed at.
    """
    text = _readable(body)
    lines = text.split("\n")
    first = lines[0].strip()
    _raise_if_refusal(first, endpoint)
    if not _COUNT.fullmatch(first):
        raise UnsupportedEndpointError(
            "此帳號的 EVERY8D 平台不支援回覆查詢（getReplyMessage）",
            "Reply lookup (getReplyMessage) is not supported by this account's platform",
            server_message=_snippet(text),
            endpoint=endpoint,
        )
    replies: list[ReplyMessage] = []
    suspect = 0
    for line in lines[1:]:
        row = line.removesuffix("\r")
        if not row.strip():
            continue
        reply = _reply(row)
        if reply is None:
            suspect += 1
        else:
            replies.append(reply)
    return ReplyPage(total=int(first), replies=replies, suspect=suspect)


def parse_credit(body: str, endpoint: str = CREDIT) -> float:
    """getCredit's balance, e.g. `2310.00`; a negative value is a refusal."""
    text = _readable(body)
    _raise_if_refusal(text, endpoint)
    if not _NUMBER.fullmatch(text):
        raise _unreadable(text)
    return float(text)


def parse_cancel(body: str, batch_id: str, endpoint: str = CANCEL_SMS) -> CancelResult | NothingToCancel:
    """eraseBooking's `a,b` (messages deleted, points refunded); an empty answer means nothing was found."""
    if _is_blank(body):
        return NothingToCancel(batch_id=batch_id)
    text = _readable(body)
    _raise_if_refusal(text, endpoint)
    fields = [field.strip() for field in text.split(",")]
    if len(fields) != 2 or not (_COUNT.fullmatch(fields[0]) and _NUMBER.fullmatch(fields[1])):
        raise _unreadable(text)
    return CancelResult(deleted=int(fields[0]), refunded=float(fields[1]))


@lru_cache(maxsize=4096)
def parse_taipei_time(text: str) -> datetime | None:
    """An EVERY8D time (Asia/Taipei wall clock) as an aware datetime; None when empty or unparseable.

    A time that cannot be read must not fail a whole status page or callback: it is only informative.
    Cached: the rows of one batch mostly share a few send times, and datetimes are immutable.
    """
    cleaned = text.strip()
    compact = _COMPACT_TIME.fullmatch(cleaned)
    if compact:
        parts = [int(group) for group in compact.groups()]
        return _aware(*parts)
    match = _DATE_TIME.fullmatch(cleaned)
    if match is None:
        return None
    year, month, day, before, hour, minute, second, after = match.groups()
    return _aware(int(year), int(month), int(day), _hour24(int(hour), before or after), int(minute), int(second or 0))


def _record(line: str) -> DeliveryRecord:
    """One TAB row: NAME, MOBILE, SEND_TIME, COST, STATUS by position, then any extra columns (the 2021
    revision's sixth is RECEIVED_TIME, read into `received_at`; none of them is ever a reply text)."""
    columns = line.removesuffix("\r").split("\t")
    if len(columns) < 5:
        raise _unreadable(line)
    name, mobile, sent_at, cost, status = columns[:5]
    cost, status = cost.strip(), status.strip()
    if (cost and not _NUMBER.fullmatch(cost)) or not _STATUS_CODE.fullmatch(status):
        raise _unreadable(line)
    return DeliveryRecord(
        name=name.strip(),
        mobile=mobile.strip(),
        sent_at=parse_taipei_time(sent_at),
        cost=float(cost) if cost else 0.0,
        status=record_status(status),
        extra=tuple(columns[5:]),
        received_at=parse_taipei_time(columns[5]) if len(columns) > 5 else None,
    )


def _reply(row: str) -> ReplyMessage | None:
    """One reply row by position, or None when it is suspect (wrong field count, no number, no time)."""
    columns = row.split("\t")
    if len(columns) != 4:
        return None
    name, mobile, content, sent_at = columns
    received_at = parse_taipei_time(sent_at)
    if not mobile.strip() or received_at is None:
        return None
    return ReplyMessage(name=name.strip(), mobile=mobile.strip(), text=content, received_at=received_at)


def _readable(body: str) -> str:
    """The body without BOM and surrounding blank lines, or UnavailableError for empty and HTML answers.

    Only line breaks are removed at the end, never TABs: a last row may end in empty columns.
    """
    text = body.removeprefix("\ufeff").lstrip().rstrip("\r\n")
    if not text.strip():
        raise UnavailableError(f"{UNREADABLE_ZH}（空白）", f"{UNREADABLE_EN} (empty body)")
    if text.startswith("<") or "<html" in text[:1024].lower():
        title = _TITLE.search(text)
        detail = _snippet(title.group(1)) if title else ""
        raise UnavailableError(f"{UNREADABLE_ZH}（網頁）", f"{UNREADABLE_EN} (an HTML page)", server_message=detail)
    return text


def _raise_if_refusal(text: str, endpoint: str) -> None:
    """A leading negative number is EVERY8D refusing the request: raise the endpoint's mapped error."""
    match = _REFUSAL.fullmatch(text.strip())
    if match is None:
        return
    code = int(match.group(1))
    if code >= 0:
        return
    raise error_for(endpoint, code, (match.group(2) or "").strip())


def _unreadable(text: str) -> UnavailableError:
    return UnavailableError(UNREADABLE_ZH, UNREADABLE_EN, server_message=_snippet(text))


def _snippet(text: str, limit: int = 80) -> str:
    """A short single-line excerpt of an unexpected answer, for support."""
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"


def _is_blank(body: str) -> bool:
    return not body.removeprefix("\ufeff").strip()


def _fullmatch(pattern: re.Pattern[str], *values: str) -> bool:
    return all(pattern.fullmatch(value) for value in values)


def _hour24(hour: int, marker: str | None) -> int:
    """12-hour clock with .NET's zh-TW (上午/下午) or English markers, to 24-hour."""
    if marker is None:
        return hour
    afternoon = marker.upper() in ("下午", "PM")
    return hour % 12 + (12 if afternoon else 0)


def _aware(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime | None:
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=TAIPEI)
    except ValueError:
        return None
