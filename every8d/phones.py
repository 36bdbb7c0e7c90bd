"""Recipients: read what people paste into Slack, decide which numbers can receive SMS, and show them.

People paste numbers in every shape (`0912-345-678`, `+886 912 345 678`, full-width digits, lists
separated by 、 or newlines). EVERY8D charges for and reports on whatever it is given, and fails a whole
request on a malformed number, so we check every entry before sending: Taiwan numbers must be mobiles
(landlines, short codes and 099x personal numbers cannot receive SMS), international numbers must be able
to be mobiles, and every refusal names the entry and says why in words a non-engineer understands.
`phonenumbers` (Google's libphonenumber metadata) decides validity and type so the rules follow real
numbering plans instead of a hand-written prefix list.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType

from every8d.limits import DEFAULT_LIMITS, Limits
from every8d.problems import Problem

_TAIWAN_CODE = "+886"
_DEFAULT_REGION = "TW"
_CACHE_SIZE = 32_768
_MAX_LISTED = 5
_MAX_ENTRY_SHOWN = 30

# Separators that always end an entry; whitespace only does when the piece is not one number.
_SEPARATORS = re.compile(r"[,，;；、\r\n]+")
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")
_EXTENSION = re.compile(r"\d[\s\-.()]*(?:#|ext(?:ension)?\.?|x|轉|分機)\s*:?\s*\d+\s*$", re.IGNORECASE)
_ALLOWED = frozenset("0123456789+-.() ")
_INTERNATIONAL_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True)
class Recipient:
    """A number that can receive SMS. `original` is the entry as typed, for messages back to the user."""

    e164: str
    region: str
    original: str

    @property
    def is_taiwan(self) -> bool:
        """EVERY8D prices by this: numbers not starting +886 cost three times the points."""
        return self.e164.startswith(_TAIWAN_CODE)

    @property
    def national(self) -> str:
        """How people write it: `0912-345-678` in Taiwan, `+1 202-555-0100` otherwise."""
        return display(self.e164)

    @property
    def for_api(self) -> str:
        """What goes into EVERY8D's DEST: E.164, which the API accepts for every country alike."""
        return self.e164


@dataclass(frozen=True)
class Rejected:
    """An entry we will not send to, and why, naming the entry."""

    entry: str
    zh: str
    en: str


@dataclass(frozen=True)
class RecipientList:
    """The outcome of reading a recipients field: who gets the message, and what was left out.

    `duplicates` are the entries dropped because an earlier entry is the same number (they are not a
    problem, just shown). `unchecked` counts entries not read at all because the list was already over
    `max_recipients`: reading a huge paste to the end only to refuse it would waste time.
    """

    recipients: list[Recipient]
    rejected: list[Rejected]
    duplicates: list[str]
    max_recipients: int = DEFAULT_LIMITS.max_recipients_per_request
    unchecked: int = 0

    @property
    def taiwan_count(self) -> int:
        return sum(1 for r in self.recipients if r.is_taiwan)

    @property
    def international_count(self) -> int:
        return len(self.recipients) - self.taiwan_count

    def problems(self) -> list[Problem]:
        """What stops the request, for the "recipients" field: each kind of problem once, all at once."""
        problems: list[Problem] = []
        if self.rejected:
            problems.append(_rejected_problem(self.rejected))
        if self.unchecked or len(self.recipients) > self.max_recipients:
            problems.append(self._too_many_problem())
        if not self.recipients and not self.rejected:
            problems.append(
                Problem("recipients", "請輸入至少一個手機號碼。", "Enter at least one mobile number.")
            )
        return problems

    def _too_many_problem(self) -> Problem:
        entered = len(self.recipients) + len(self.rejected) + len(self.duplicates) + self.unchecked
        cap = f"{self.max_recipients:,}"
        return Problem(
            "recipients",
            f"一次最多 {cap} 個收件人，這次輸入了 {entered:,} 筆，請分成幾次發送。",
            f"At most {cap} recipients per request; you entered {entered:,}. Split them into several requests.",
        )


def split_entries(text: str) -> list[str]:
    """Cut a pasted field into entries, keeping `0912 345 678` as one number.

    Commas (also ，), 、, semicolons and newlines always separate. Spaces separate too, but only inside a
    piece that is not one valid number as a whole, so spaced-out numbers survive.
    """
    entries: list[str] = []
    for piece in _SEPARATORS.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if _is_one_number(piece):
            entries.append(piece)
        else:
            entries.extend(piece.split())
    return entries


@lru_cache(maxsize=_CACHE_SIZE)
def parse_phone(entry: str, *, default_region: str = _DEFAULT_REGION) -> Recipient | Rejected:
    """Read one entry: a `Recipient` if it can receive SMS, else a `Rejected` saying why.

    Numbers without a country code are read as `default_region`'s. Taiwan numbers must be mobiles;
    international ones must be mobiles or possibly mobiles (US and Canadian numbers cannot be told
    apart); extensions, letters, short codes and landlines are refused, each with its own reason.
    Cached: the same entry is often read twice (split, then parse) and lists repeat numbers.
    """
    original = entry.strip()
    text = _normalize(original)
    refusal = _character_refusal(original, text) or _short_code_refusal(original, text, default_region)
    if refusal:
        return refusal
    try:
        number = _parse(text, default_region)
    except NumberParseException as error:
        return _parse_error_refusal(original, error)
    if not phonenumbers.is_valid_number(number):
        return _invalid_refusal(original, number)
    return _typed(original, number)


def parse_recipients(
    text_or_entries: str | Iterable[str],
    *,
    allow_international: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> RecipientList:
    """Read a recipients field (or entries already split, e.g. a CSV column) into a `RecipientList`.

    Keeps the input order, sends once to each number however it was written (the first spelling wins;
    later ones are listed as duplicates), refuses international numbers when they are not allowed (MMS
    is Taiwan-only), and stops reading once past `limits.max_recipients_per_request`.
    """
    entries = _entries(text_or_entries)
    recipients: list[Recipient] = []
    rejected: list[Rejected] = []
    duplicates: list[str] = []
    seen: set[str] = set()
    cap = limits.max_recipients_per_request
    for index, entry in enumerate(entries):
        if len(recipients) > cap:
            return RecipientList(recipients, rejected, duplicates, cap, len(entries) - index)
        result = parse_phone(entry)
        if isinstance(result, Rejected):
            rejected.append(result)
        elif result.e164 in seen:
            duplicates.append(result.original)
        elif not allow_international and not result.is_taiwan:
            seen.add(result.e164)
            rejected.append(_international_refusal(result))
        else:
            seen.add(result.e164)
            recipients.append(result)
    return RecipientList(recipients, rejected, duplicates, cap)


def display(e164: str) -> str:
    """The full number as people read it: `0912-345-678` in Taiwan, `+1 202-555-0100` elsewhere."""
    number = _parse_e164(e164)
    if number is None:
        return e164
    if _is_taiwan(number):
        return "-".join(phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL).split())
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def mask(e164: str) -> str:
    """The number for channel posts, middle hidden: `0912-***-678`, `+1 202-***-0100`.

    Taiwan numbers keep their first group and last three digits; others keep the country code, the
    first group and the last four digits, always hiding at least three. Anything unreadable (e.g. an
    odd sender in a reply report) is masked too, never shown whole.
    """
    number = _parse_e164(e164)
    if number is None:
        return _mask_raw(e164)
    if _is_taiwan(number):
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        return f"{national.split()[0]}-***-{national[-3:]}"
    nsn = phonenumbers.national_significant_number(number)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    after_code = international.partition(" ")[2] or nsn
    first_group = re.split(r"[\s\-]", after_code)[0]
    head = min(len(first_group), max(1, len(nsn) - 4 - 3))
    tail = min(4, max(1, len(nsn) - head - 3))
    return f"+{number.country_code} {nsn[:head]}-***-{nsn[-tail:]}"


def _entries(text_or_entries: str | Iterable[str]) -> list[str]:
    if isinstance(text_or_entries, str):
        return split_entries(text_or_entries)
    return [entry.strip() for entry in text_or_entries if entry and entry.strip()]


def _is_one_number(piece: str) -> bool:
    if not any(ch.isspace() for ch in piece):
        return True
    try:
        return phonenumbers.is_valid_number(_parse(_normalize(piece), _DEFAULT_REGION))
    except NumberParseException:
        return False


def _normalize(entry: str) -> str:
    """Full-width digits and punctuation to ASCII (NFKC), every dash to '-'."""
    return unicodedata.normalize("NFKC", entry).translate(_DASHES).strip()


@lru_cache(maxsize=_CACHE_SIZE)
def _parse(text: str, region: str) -> PhoneNumber:
    """phonenumbers' parse, plus the `00` international prefix, which Taiwan's metadata does not list."""
    compact = re.sub(r"[\s\-.()]", "", text)
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        alternative = _after_00(compact)
        if alternative is None:
            raise
        return alternative
    if phonenumbers.is_valid_number(number):
        return number
    return _after_00(compact) or number


def _after_00(compact: str) -> PhoneNumber | None:
    """`00<country code>…` read as `+<country code>…`, if that is a valid number."""
    if not compact.startswith("00"):
        return None
    try:
        number = phonenumbers.parse("+" + compact[2:], None)
    except NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_e164(e164: str) -> PhoneNumber | None:
    try:
        number = phonenumbers.parse(e164.strip(), _DEFAULT_REGION)
    except NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _is_taiwan(number: PhoneNumber) -> bool:
    return number.country_code == 886


def _mask_raw(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if len(digits) <= 6:
        return "***"
    return f"{digits[:3]}-***-{digits[-2:]}"


def _shown(entry: str) -> str:
    if len(entry) <= _MAX_ENTRY_SHOWN:
        return entry
    return entry[: _MAX_ENTRY_SHOWN - 1] + "…"


def _refuse(entry: str, zh: str, en: str) -> Rejected:
    """`zh` and `en` contain `{e}`, replaced by the entry (shortened if long)."""
    shown = _shown(entry)
    return Rejected(entry, zh.format(e=shown), en.format(e=shown))


def _character_refusal(original: str, text: str) -> Rejected | None:
    if not text:
        return _refuse(original, "沒有輸入號碼。", "No number was entered.")
    if _EXTENSION.search(text):
        return _refuse(
            original,
            "「{e}」含有分機號碼，簡訊無法送到分機，請只填手機號碼。",
            '"{e}" has an extension; SMS cannot reach an extension. Enter the mobile number only.',
        )
    if any(ch.isalpha() for ch in text):
        return _refuse(
            original,
            "「{e}」含有文字，請只填數字。",
            '"{e}" contains letters or words; enter digits only.',
        )
    symbols = sorted({ch for ch in text if ch not in _ALLOWED and not ch.isspace()})
    if symbols:
        listed = " ".join(symbols)
        return _refuse(
            original,
            f"「{{e}}」含有無法辨識的符號 {listed}，請只填數字。",
            f'"{{e}}" contains symbols that are not part of a phone number ({listed}); enter digits only.',
        )
    if not any(ch.isdigit() for ch in text):
        return _not_a_number(original)
    return None


def _short_code_refusal(original: str, text: str, region: str) -> Rejected | None:
    digits = re.sub(r"\D", "", text)
    if text.startswith("+") or len(digits) > 6:
        return None
    try:
        number = phonenumbers.parse(digits, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_short_number_for_region(number, region):
        return None
    return _refuse(
        original,
        "「{e}」是特碼（短碼），無法接收簡訊，請填完整的手機號碼。",
        '"{e}" is a short code and cannot receive SMS; enter a full mobile number.',
    )


def _not_a_number(original: str) -> Rejected:
    return _refuse(original, "「{e}」不是電話號碼，請檢查。", '"{e}" is not a phone number; please check it.')


def _too_short(original: str) -> Rejected:
    return _refuse(
        original,
        "「{e}」太短，不是完整的手機號碼，請檢查是否少了數字。",
        '"{e}" is too short to be a mobile number; check for missing digits.',
    )


def _too_long(original: str) -> Rejected:
    return _refuse(
        original,
        "「{e}」太長，不是一個手機號碼，請檢查是否多了數字或少了分隔符號。",
        '"{e}" is too long for one mobile number; check for extra digits or a missing comma.',
    )


def _unknown_country(original: str) -> Rejected:
    return _refuse(
        original,
        "「{e}」的國碼無法辨識，請檢查 + 後面的數字。",
        '"{e}" has a country code we do not recognise; check the digits after +.',
    )


def _parse_error_refusal(original: str, error: NumberParseException) -> Rejected:
    kind = error.error_type
    if kind == NumberParseException.INVALID_COUNTRY_CODE:
        return _unknown_country(original)
    if kind == NumberParseException.TOO_LONG:
        return _too_long(original)
    if kind in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        return _too_short(original)
    return _not_a_number(original)


def _invalid_refusal(original: str, number: PhoneNumber) -> Rejected:
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason in (phonenumbers.ValidationResult.TOO_SHORT, phonenumbers.ValidationResult.INVALID_LENGTH):
        return _too_short(original)
    if reason == phonenumbers.ValidationResult.TOO_LONG:
        return _too_long(original)
    if reason == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        return _unknown_country(original)
    if _is_taiwan(number):
        return _refuse(
            original,
            "「{e}」不是有效的台灣手機號碼，請檢查號碼。",
            '"{e}" is not a valid Taiwan mobile number; please check it.',
        )
    return _refuse(
        original,
        "「{e}」不是有效的電話號碼，請檢查國碼與號碼。",
        '"{e}" is not a valid phone number; check the country code and the number.',
    )


def _typed(original: str, number: PhoneNumber) -> Recipient | Rejected:
    """Accept the number if its type can receive SMS."""
    kind = phonenumbers.number_type(number)
    accepted = {PhoneNumberType.MOBILE} if _is_taiwan(number) else _INTERNATIONAL_TYPES
    if kind in accepted:
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        region = phonenumbers.region_code_for_number(number) or ""
        return Recipient(e164, region, original)
    if kind == PhoneNumberType.FIXED_LINE:
        return _refuse(
            original,
            "「{e}」是市話，無法接收簡訊。",
            '"{e}" is a landline and cannot receive SMS.',
        )
    return _refuse(
        original,
        "「{e}」不是手機號碼（例如免付費或特殊號碼），無法接收簡訊。",
        '"{e}" is not a mobile number (e.g. toll-free or a special service) and cannot receive SMS.',
    )


def _international_refusal(recipient: Recipient) -> Rejected:
    return _refuse(
        recipient.original,
        "「{e}」是國際號碼；多媒體簡訊只能發送到台灣手機。",
        '"{e}" is an international number; MMS can only be sent to Taiwan mobiles.',
    )


def _rejected_problem(rejected: list[Rejected]) -> Problem:
    """One problem naming every refused entry, up to a readable length."""
    listed = rejected[:_MAX_LISTED]
    more = len(rejected) - len(listed)
    zh = "".join(r.zh for r in listed)
    en = " ".join(r.en for r in listed)
    if more:
        zh += f"…還有 {more:,} 筆"
        en += f" …and {more:,} more"
    count = len(rejected)
    return Problem(
        "recipients",
        f"有 {count:,} 筆收件人無法使用，請修正或刪除後再送出：{zh}",
        f"{count:,} {'entry' if count == 1 else 'entries'} cannot be used; fix or remove "
        f"{'it' if count == 1 else 'them'} and submit again: {en}",
    )
