"""Decoding of EVERY8D's push calls (status reports and replies) into a `CallbackReport`.

The push is an unsigned HTTP GET from the internet, so its query string is hostile input: it is decoded as a
form (`+` is a space, escapes may be lower-case), parameter names are matched in any case because EVERY8D
itself spells `BatchID` and `BATCHID`, oversized or contradictory values are refused, and unknown
parameters are kept for audit rather than trusted.

Every parameter of the real push (delta notes §4.11: BatchID, RM, RT, STATUS, SM, CustID, UserNo, ST, MR,
SUBJECT, NAME, USERID, SOURCE, CHARGE, plus MSGID and TYPE of later revisions) is read and typed; only
BatchID, RM and STATUS are required. The subject arrives as `SUBJECT` (the send's `SB`); `SB` is accepted
too and `SUBJECT` wins when both are present.

The values that identify things are checked for shape at this edge, so nothing a forger writes there can
turn into a Slack mention or link further in: a BatchID is GUID-like (letters, digits, `-`, `_`, at most
64 characters) and RM is a phone number (digits, an optional leading `+`, spaces, dashes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from every8d.errors import ValidationError
from every8d.parsing import parse_taipei_time
from every8d.results import CallbackReport
from every8d.status import status_for

MAX_VALUE_LENGTH = 2000
MAX_PARAMETERS = 100
_REQUIRED = ("BATCHID", "STATUS", "RM")
#: A batch id as EVERY8D writes it (a GUID), loosely: no character that means anything in Slack mrkdwn.
BATCH_ID_SHAPE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")
_MOBILE_SHAPE = re.compile(r"\+?[0-9][0-9 ()-]{0,31}")
_STATUS_SHAPE = re.compile(r"-?\d{1,6}")


def parse_callback(query_string: str) -> CallbackReport:
    """The report carried by one push call; ValidationError when it cannot be one of EVERY8D's."""
    raw = _decode(query_string)
    for name in _REQUIRED:
        if not raw.get(name, "").strip():
            raise ValidationError(
                f"推播回報缺少參數 {name}", f"The push report lacks the {name} parameter", endpoint="callback"
            )
    status = raw["STATUS"].strip()
    if not _STATUS_SHAPE.fullmatch(status):
        raise ValidationError(
            "推播回報的 STATUS 不是數字", "The push report's STATUS is not a number", endpoint="callback"
        )
    batch_id = raw["BATCHID"].strip()
    if not BATCH_ID_SHAPE.fullmatch(batch_id):
        raise ValidationError(
            "推播回報的 BatchID 格式不符", "The push report's BatchID is not shaped like a batch id",
            endpoint="callback",
        )
    mobile = _mobile(raw["RM"])
    if not _MOBILE_SHAPE.fullmatch(mobile):
        raise ValidationError(
            "推播回報的 RM 不是電話號碼", "The push report's RM is not a phone number", endpoint="callback"
        )
    return CallbackReport(
        batch_id=batch_id,
        mobile=mobile,
        reported_at=parse_taipei_time(raw.get("RT", "")),
        status=status_for(status),
        text=raw.get("SM", ""),
        record_no=raw.get("MR", "").strip(),
        subject=subject_of(raw),
        raw=raw,
        user_id=raw.get("USERID", "").strip(),
        user_no=raw.get("USERNO", "").strip(),
        msg_id=raw.get("MSGID", "").strip(),
        kind=raw.get("TYPE", "").strip().upper(),
        charge=_number(raw.get("CHARGE", "")),
        sent_at=parse_taipei_time(raw.get("ST", "")),
        name=raw.get("NAME", "").strip(),
        source=raw.get("SOURCE", "").strip(),
        cust_id=raw.get("CUSTID", "").strip(),
    )


def subject_of(raw: dict[str, str]) -> str:
    """The send's subject from a push's upper-cased parameters: `SUBJECT` as EVERY8D names it, else `SB`
    (older pushes, and reports kept aside before SUBJECT was read)."""
    subject = raw.get("SUBJECT")
    return subject if subject else raw.get("SB", "")


def _number(value: str) -> float | None:
    """CHARGE as points; None when absent or unreadable (it is informative, never worth refusing a push)."""
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if number == number and abs(number) < 1e9 else None


def _decode(query_string: str) -> dict[str, str]:
    """Form-decode the query into upper-cased names; refuse oversized values and contradictory repeats."""
    try:
        pairs = parse_qsl(
            query_string.removeprefix("?"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="replace",
            max_num_fields=MAX_PARAMETERS,
        )
    except ValueError:
        raise ValidationError(
            "推播回報的參數過多", "The push report carries too many parameters", endpoint="callback"
        ) from None
    decoded: dict[str, str] = {}
    for name, value in pairs:
        key = name.strip().upper()
        if len(value) > MAX_VALUE_LENGTH or len(key) > MAX_VALUE_LENGTH:
            raise ValidationError(
                f"推播回報的參數 {key[:40]} 過長", f"The push report's {key[:40]} parameter is too long",
                endpoint="callback",
            )
        if decoded.get(key, value) != value:
            raise ValidationError(
                f"推播回報的參數 {key} 出現兩個不同的值",
                f"The push report gives two different values for {key}",
                endpoint="callback",
            )
        decoded[key] = value
    return decoded


def _mobile(value: str) -> str:
    """The recipient's number; a `+` sent unencoded arrives as a space (form decoding) and is restored."""
    if value.startswith(" ") and value[1:].strip().isdigit():
        return "+" + value[1:].strip()
    return value.strip()


#: The parameters of EVERY8D's push kept for audit when a report is kept aside (upper-cased), with the most
#: characters kept of each.
_KEPT_PARAMETERS = {
    "BATCHID": 64, "RM": 32, "RT": 20, "STATUS": 8, "SM": 1000, "MR": 32, "SUBJECT": 200, "SB": 200,
    "USERID": 64, "USERNO": 32, "MSGID": 64, "TYPE": 8, "CHARGE": 16, "ST": 20, "NAME": 100, "SOURCE": 64,
    "CUSTID": 64,
}




def audit_json(raw: Mapping[str, str]) -> str:
    """What a kept report shows people of the push it came from: EVERY8D's parameters, each cut to its
    limit; unknown names are only counted (a forged push may carry a hundred of 2,000 characters each)."""
    kept: dict[str, object] = {name: str(raw[name])[:limit] for name, limit in _KEPT_PARAMETERS.items() if name in raw}
    others = len([name for name in raw if name not in _KEPT_PARAMETERS])
    if others:
        kept["_OTHER_PARAMETERS"] = others
    return json.dumps(kept, ensure_ascii=False, sort_keys=True)
