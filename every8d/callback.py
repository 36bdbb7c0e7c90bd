"""Decoding of EVERY8D's push calls (status reports and replies, spec 2.1) into a `CallbackReport`.

The push is an unsigned HTTP GET from the internet, so its query string is hostile input: it is decoded as a
form (`+` is a space, escapes may be lower-case), parameter names are matched in any case because EVERY8D
itself spells `BatchID` and `BATCHID`, oversized or contradictory values are refused, and unknown
parameters are kept for audit rather than trusted.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from every8d.errors import ValidationError
from every8d.parsing import parse_taipei_time
from every8d.results import CallbackReport
from every8d.status import status_for

MAX_VALUE_LENGTH = 2000
MAX_PARAMETERS = 100
_REQUIRED = ("BATCHID", "STATUS", "RM")


def parse_callback(query_string: str) -> CallbackReport:
    """The report carried by one push call; ValidationError when it cannot be one of EVERY8D's."""
    raw = _decode(query_string)
    for name in _REQUIRED:
        if not raw.get(name, "").strip():
            raise ValidationError(
                f"推播回報缺少參數 {name}", f"The push report lacks the {name} parameter", endpoint="callback"
            )
    status = raw["STATUS"].strip()
    if not status.lstrip("-").isdigit():
        raise ValidationError(
            "推播回報的 STATUS 不是數字", "The push report's STATUS is not a number", endpoint="callback"
        )
    return CallbackReport(
        batch_id=raw["BATCHID"].strip(),
        mobile=_mobile(raw["RM"]),
        reported_at=parse_taipei_time(raw.get("RT", "")),
        status=status_for(status),
        text=raw.get("SM", ""),
        record_no=raw.get("MR", "").strip(),
        subject=raw.get("SB", ""),
        raw=raw,
    )


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
