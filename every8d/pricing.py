"""What a send will cost, before it is sent: the exact preview on the approval card.

Approvers decide on the points, so the preview must follow EVERY8D's own table, and say plainly when it
cannot be exact (text longer than the table covers, and international text split by the platform).
All numbers come from `Limits`, because the prices differ between API revisions and accounts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from every8d.limits import DEFAULT_LIMITS, Limits, mms_size
from every8d.phones import Recipient, RecipientList


@dataclass(frozen=True)
class Quote:
    """The cost of one request. `parts` is messages per Taiwan recipient, `international_parts` per
    international one (they differ: international numbers get no long SMS). `estimate` is True when the
    platform's split is not documented and we priced by our own rule (see `sms_parts_and_points`)."""

    kind: Literal["sms", "mms"]
    chars: int
    parts: int
    taiwan_count: int
    international_count: int
    points_per_taiwan: float
    points_per_international: float
    points: float
    estimate: bool
    international_parts: int = 0
    #: MMS only: raw image bytes plus UTF-8 text, what the size limit and the price bands measure.
    size_bytes: int = 0

    def after(self, credit: float) -> float:
        """Credit left after this send (negative when there is not enough)."""
        return credit - self.points

    def short_of(self, credit: float) -> float:
        """How many points are missing to send this; 0 when the credit is enough."""
        return max(0.0, self.points - credit)


def count_chars(text: str) -> int:
    """Characters as EVERY8D counts them: each Chinese character is one, like a letter.

    Line breaks are normalized first (a CRLF from a pasted Windows text is one line break, not two).
    """
    return len(text.replace("\r\n", "\n"))


def sms_parts_and_points(
    text: str, *, international: bool, limits: Limits = DEFAULT_LIMITS
) -> tuple[int, float, bool]:
    """Messages, points per recipient and whether that is an estimate, for one SMS text.

    Taiwan: up to `limits.sms_long_max` (333) characters is one long SMS priced by the table
    (1-70: 1 point, 71-134: 2, 135-201: 3, 202-268: 4, 269-333: 5). EVERY8D documents no price beyond
    333; our rule is to split the text into 333-character parts, price each part by the table and add
    them up, and to label that an estimate.
    International: no long SMS, so the text is split into 70-character parts, each priced by the table
    times 3; how the platform splits is not documented either, so more than one part is an estimate.
    Empty text costs nothing (0 parts).
    """
    chars = count_chars(text)
    if international:
        part_size, multiplier = limits.international_part_chars, limits.international_multiplier
    else:
        part_size, multiplier = limits.sms_long_max, 1
    parts = math.ceil(chars / part_size)
    full_parts, rest = divmod(chars, part_size)
    points = full_parts * _table_points(part_size, limits) + (_table_points(rest, limits) if rest else 0)
    return parts, float(points * multiplier), parts > 1


def quote_sms(
    text: str, recipients: RecipientList | Sequence[Recipient], limits: Limits = DEFAULT_LIMITS
) -> Quote:
    """The cost of sending `text` to every recipient: Taiwan and international priced apart."""
    people = _recipients(recipients)
    taiwan = sum(1 for r in people if r.is_taiwan)
    international = len(people) - taiwan
    parts, per_taiwan, taiwan_estimate = sms_parts_and_points(text, international=False, limits=limits)
    intl_parts, per_intl, intl_estimate = sms_parts_and_points(text, international=True, limits=limits)
    return Quote(
        kind="sms",
        chars=count_chars(text),
        parts=parts,
        taiwan_count=taiwan,
        international_count=international,
        points_per_taiwan=per_taiwan,
        points_per_international=per_intl,
        points=taiwan * per_taiwan + international * per_intl,
        estimate=(taiwan_estimate and (taiwan > 0 or not people)) or (intl_estimate and international > 0),
        international_parts=intl_parts,
    )


def quote_mms(
    recipients: RecipientList | Sequence[Recipient],
    limits: Limits = DEFAULT_LIMITS,
    *,
    message: str = "",
    image: bytes | None = None,
) -> Quote:
    """The cost of one MMS to every recipient, by the account's MMS terms (`limits.mms_points`).

    2021 terms: 3 points when image plus text is at most 50 KB, 5 points above (up to 300 KB); 2017 terms:
    4 points whatever the size. The size is the raw image bytes plus the UTF-8 text (`mms_size`).
    MMS goes to Taiwan numbers only; read the recipients with `allow_international=False`.
    """
    people = _recipients(recipients)
    if any(not r.is_taiwan for r in people):
        raise ValueError("MMS cannot be sent to international numbers; parse with allow_international=False")
    size = mms_size(image, message)
    each = limits.mms_points(size)
    return Quote(
        kind="mms",
        chars=count_chars(message),
        parts=1,
        taiwan_count=len(people),
        international_count=0,
        points_per_taiwan=each,
        points_per_international=0.0,
        points=len(people) * each,
        estimate=False,
        size_bytes=size,
    )


def _table_points(chars: int, limits: Limits) -> int:
    """Points for one message of `chars` characters (1 <= chars <= the table's last row)."""
    for up_to, points in limits.sms_tiers:
        if chars <= up_to:
            return points
    raise ValueError(f"{chars} characters is beyond the price table")


def _recipients(recipients: RecipientList | Sequence[Recipient]) -> Sequence[Recipient]:
    return recipients.recipients if isinstance(recipients, RecipientList) else recipients


def quote_sms_each(
    texts: Sequence[tuple[str, Recipient]], limits: Limits = DEFAULT_LIMITS
) -> Quote:
    """The cost of personalised SMS: each recipient's own text priced by the table, then added up.

    `chars` and `parts` are the longest message's (what a reviewer checks against the 333 limit);
    `points` is exact per message, so a list whose names make some texts cross 70 characters costs what
    EVERY8D will charge. An estimate if any one message's price is."""
    points = 0.0
    chars = parts = intl_parts = taiwan = 0
    estimate = False
    for text, recipient in texts:
        part_count, per, guessed = sms_parts_and_points(text, international=not recipient.is_taiwan, limits=limits)
        points += per
        estimate = estimate or guessed
        chars = max(chars, count_chars(text))
        if recipient.is_taiwan:
            taiwan += 1
            parts = max(parts, part_count)
        else:
            intl_parts = max(intl_parts, part_count)
    return Quote(
        kind="sms",
        chars=chars,
        parts=parts or sms_parts_and_points("x" * chars, international=False, limits=limits)[0],
        taiwan_count=taiwan,
        international_count=len(texts) - taiwan,
        points_per_taiwan=0.0,
        points_per_international=0.0,
        points=points,
        estimate=estimate,
        international_parts=intl_parts,
    )
