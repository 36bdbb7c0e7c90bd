"""Every limit and price the bot checks or previews, in one place.

The defaults are EVERY8D HTTP API 2.1's values. Later API revisions changed several of them (MMS up to
300 KB, jpg/png only, a tiered MMS price, shorter alphanumeric subjects), and some enterprise accounts
have their own terms, so nothing else hard-codes a number: build a `Limits(...)` with the account's values
and pass it down. Values marked "our own" are not EVERY8D's rules but caps we chose to keep requests sane.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Limits and prices for one EVERY8D account; every field may be overridden."""

    # SMS to Taiwan: (up to N characters, points) per message; the table ends at sms_long_max.
    sms_tiers: tuple[tuple[int, int], ...] = ((70, 1), (134, 2), (201, 3), (268, 4), (333, 5))
    sms_long_max: int = 333
    # International numbers do not support long SMS: split into 70-character parts, each costs x3.
    international_multiplier: int = 3
    international_part_chars: int = 70
    # Our own sanity cap on one SMS text: longer text is almost certainly a paste gone wrong.
    sms_text_max: int = 10_000

    mms_price: float = 4.0
    mms_subject_max_cjk: int = 15
    mms_subject_max_ascii: int = 95
    mms_text_max: int = 4000
    mms_total_max_bytes: int = 50 * 1024
    mms_image_types: tuple[str, ...] = ("jpg", "jpeg", "png", "gif")

    default_validity_minutes: int = 1440
    # Our own cap (three days): EVERY8D documents only the default.
    max_validity_minutes: int = 1440 * 3
    status_page_size: int = 1000
    max_recipients_per_request: int = 10_000

    def __post_init__(self) -> None:
        """Refuse a price table that cannot price the parts we split text into, at configuration time."""
        table_end = self.sms_tiers[-1][0] if self.sms_tiers else 0
        if max(self.sms_long_max, self.international_part_chars) > table_end:
            raise ValueError("sms_tiers must cover sms_long_max and international_part_chars")


DEFAULT_LIMITS = Limits()
