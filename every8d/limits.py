"""Every limit and price the bot checks or previews, in one place.

The defaults are the current official terms, EVERY8D HTTP API v2.1.5 (2021): MMS up to 300 KB of image plus
text, jpg/jpeg/png only, subject 15 characters with Chinese or 39 in plain ASCII, and 3 points up to 50 KB,
5 points above. Accounts still on the 2017 contract (v2.0.2: 50 KB, gif allowed, subject 15/95, 4 points
flat) get `limits_for_mms_terms("2017")`, chosen by EVERY8D_MMS_TERMS. Some enterprise accounts have their
own terms, so nothing else hard-codes a number: build a `Limits(...)` with the account's values and pass it
down. Values marked "our own" are not EVERY8D's rules but caps we chose to keep requests sane.

Sizes: neither document says whether a KB is 1000 or 1024 bytes, nor whether base64 counts. We measure the
raw image bytes plus the text's UTF-8 bytes and use 1000-byte KB, the stricter reading (delta notes §4.2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: EVERY8D_MMS_TERMS values: the year of the official document whose MMS terms the account's contract has.
MMS_TERMS: tuple[str, ...] = ("2017", "2021")
#: The current official terms (v2.1.5, 2021-10-22): what a new account gets.
DEFAULT_MMS_TERMS = "2021"
KB = 1000


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

    #: Which official MMS terms these are ("2017" or "2021"), shown in previews and the doctor.
    mms_terms: str = DEFAULT_MMS_TERMS
    #: MMS price by size: (up to N bytes of image plus text, points per recipient), smallest band first.
    #: 2021: 3 points up to 50 KB (inclusive), 5 points up to 300 KB. 2017: 4 points flat.
    mms_price_bands: tuple[tuple[int, float], ...] = ((50 * KB, 3.0), (300 * KB, 5.0))
    #: An account's own flat MMS price, overriding the bands (None: priced by `mms_price_bands`).
    mms_price: float | None = None
    mms_subject_max_cjk: int = 15
    mms_subject_max_ascii: int = 39
    mms_text_max: int = 4000
    mms_total_max_bytes: int = 300 * KB
    mms_image_types: tuple[str, ...] = ("jpg", "jpeg", "png")

    default_validity_minutes: int = 1440
    # Our own cap (three days): EVERY8D documents only the default.
    max_validity_minutes: int = 1440 * 3
    status_page_size: int = 1000
    max_recipients_per_request: int = 10_000

    def __post_init__(self) -> None:
        """Refuse a price table that cannot price what we accept, at configuration time."""
        table_end = self.sms_tiers[-1][0] if self.sms_tiers else 0
        if max(self.sms_long_max, self.international_part_chars) > table_end:
            raise ValueError("sms_tiers must cover sms_long_max and international_part_chars")
        if self.mms_price is None and not self.mms_price_bands:
            raise ValueError("an MMS price is needed: mms_price_bands or mms_price")

    def mms_points(self, size_bytes: int) -> float:
        """Points for one MMS to one Taiwan number whose image plus text is `size_bytes` bytes.

        A band's bound is inclusive (50 KB exactly is 3 points under the 2021 terms). A size past the last
        band is priced by the last band: such an MMS is refused before sending, the price only fills the
        preview of a draft that still has problems."""
        if self.mms_price is not None:
            return float(self.mms_price)
        for up_to, points in self.mms_price_bands:
            if size_bytes <= up_to:
                return float(points)
        return float(self.mms_price_bands[-1][1])

    @property
    def mms_flat_price(self) -> bool:
        """True when every MMS costs the same, whatever its size (2017 terms, or an account's own price)."""
        return self.mms_price is not None or len({p for _, p in self.mms_price_bands}) == 1


def mms_size(image: bytes | None, message: str) -> int:
    """What EVERY8D's size limit and price bands measure (our reading): raw image bytes plus UTF-8 text."""
    return len(image or b"") + len(message.encode("utf-8"))


DEFAULT_LIMITS = Limits()

#: The 2017 terms (official v2.0.2, 2017-11-01): 50 KB, gif allowed, subject 15/95, 4 points flat.
LIMITS_2017 = replace(
    DEFAULT_LIMITS,
    mms_terms="2017",
    mms_price_bands=((50 * KB, 4.0),),
    mms_subject_max_ascii=95,
    mms_total_max_bytes=50 * KB,
    mms_image_types=("jpg", "jpeg", "png", "gif"),
)


def limits_for_mms_terms(terms: str) -> Limits:
    """The limits for EVERY8D_MMS_TERMS ("2017" or "2021"); anything else is a ValueError."""
    if terms == "2021":
        return DEFAULT_LIMITS
    if terms == "2017":
        return LIMITS_2017
    raise ValueError(f"unknown MMS terms {terms!r}; expected one of {', '.join(MMS_TERMS)}")
