"""Compose: turn what someone typed (numbers, text, subject, image, time) into a checked draft with an
exact cost preview, or a list of problems, each naming its field. No call to EVERY8D is made here:
the credit shown is the last one the bot read, so a slow EVERY8D never delays Slack's 3-second ack."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import EllipsisType
from typing import Any
from zoneinfo import ZoneInfo

from every8d.limits import DEFAULT_LIMITS, Limits, mms_size
from every8d.mms import sniff_image_type, validate_mms, validate_sms
from every8d.phones import Recipient, RecipientList, parse_recipients
from every8d.pricing import Quote, count_chars, quote_mms, quote_sms, quote_sms_each
from every8d.problems import Problem
from services.links import RegisteredLinks
from services.personalise import Audience, SkippedRow, personalise
from services.ports import Clock

TAIPEI = ZoneInfo("Asia/Taipei")
#: A scheduled time must be at least this far ahead, so it is still in the future when EVERY8D gets it.
MIN_LEAD_SECONDS = 60
#: How far ahead a send may be scheduled (our own rule; EVERY8D states none).
MAX_SCHEDULE_DAYS = 365
#: Our own cap on a typed recipients field, per recipient allowed: a number written out in full with
#: its separators (`+886 912-345-678, `) is under 20 characters; 32 leaves room for spacing and names.
RECIPIENT_CHARS = 32
#: ... and on its entries (pieces between spaces and separators), per recipient allowed: a number typed
#: with spaces is up to three pieces (`0912 345 678`); more is junk, whose every piece costs a parse.
RECIPIENT_PIECES = 3
_PIECE = re.compile(r"[^\s,，;；、]+")

#: Which of these numbers (E.164) opted out: `store.optouts.among`.
OptedOut = Callable[[Iterable[str]], set[str]]
#: Contact and group names -> numbers: `services.audiences.resolver(store)`.
#: The entries come back as a list, read by the phone rules as they are (not joined and split again).
Resolve = Callable[[str], tuple[list[str], dict[str, str], list[Problem]]]


@dataclass(frozen=True)
class ComposeInput:
    kind: str  # "sms" or "mms"
    recipients_text: str
    message: str
    subject: str = ""
    image: bytes | None = None
    image_name: str = ""
    send_at: datetime | None = None  # aware; None = now
    validity_minutes: int | None = None
    #: An uploaded CSV audience: its phones are recipients, its columns fill `{variables}` per recipient.
    audience: Audience | None = None


@dataclass(frozen=True)
class Preview:
    """A checked draft: what will be sent, to whom, at what cost; or the problems that stop it."""

    input: ComposeInput
    recipients: RecipientList
    quote: Quote | None
    credit: float | None
    credit_at: float | None
    image_type: str | None
    problems: list[Problem] = field(default_factory=list)
    #: Recipients left out because they opted out (not in `recipients`, not priced).
    opted_out: list[Recipient] = field(default_factory=list)
    #: {e164: contact name} for the recipients in the address book (stored with the request).
    names: dict[str, str] = field(default_factory=dict)
    #: {e164: that recipient's own text} when the message is personalised; empty: one text for all.
    messages: dict[str, str] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    #: Links and phone numbers in the text that are not registered with the carriers (BOT_REGISTERED_LINKS):
    #: a warning, or a problem when the organisation refuses them.
    unregistered: list[str] = field(default_factory=list)

    def price_part(self, text: str, numbers: Sequence[str]) -> float:
        """Points of `text` sent to these recipients (one part of the send, see services/parts.py)."""
        by_number = {r.e164: r for r in self.recipients.recipients}
        people = [by_number[n] for n in numbers if n in by_number]
        if self.input.kind == "mms":  # priced by size under the account's MMS terms (every8d/limits.py)
            return len(people) * self.limits.mms_points(mms_size(self.input.image, text))
        return quote_sms(text, people, self.limits).points

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def credit_after(self) -> float | None:
        if self.credit is None or self.quote is None:
            return None
        return self.credit - self.quote.points

    @property
    def short_of_credit(self) -> bool:
        after = self.credit_after
        return after is not None and after < 0

    def to_json(self) -> dict[str, Any]:
        """What a draft keeps between modal steps (the image is stored beside it)."""
        i = self.input
        return {
            "kind": i.kind,
            "recipients_text": i.recipients_text,
            "message": i.message,
            "subject": i.subject,
            "image_name": i.image_name,
            "send_at": i.send_at.isoformat() if i.send_at else None,
            "validity_minutes": i.validity_minutes,
            "audience": i.audience.to_json() if i.audience else None,
        }


def input_from_json(data: dict[str, Any], image: bytes | None) -> ComposeInput:
    return ComposeInput(
        kind=data["kind"],
        recipients_text=data["recipients_text"],
        message=data["message"],
        subject=data.get("subject", ""),
        image=image,
        image_name=data.get("image_name", ""),
        send_at=datetime.fromisoformat(data["send_at"]) if data.get("send_at") else None,
        validity_minutes=data.get("validity_minutes"),
        audience=Audience.from_json(data["audience"]) if data.get("audience") else None,
    )


def prepare(
    compose: ComposeInput,
    *,
    clock: Clock,
    last_credit: tuple[float, float] | None,
    limits: Limits = DEFAULT_LIMITS,
    opted_out: OptedOut | None = None,
    resolve: Resolve | None = None,
    tz: ZoneInfo = TAIPEI,
    show: Callable[[str], str] = str,
    links: RegisteredLinks | None = None,
) -> Preview:
    """Check everything and price it. Every problem is reported at once, each with its field. Numbers that
    `opted_out` names are left out (and not priced); if nobody is left, that is a problem on recipients.
    `resolve` turns contact and group names into numbers (and names the address book's numbers). With
    the address book or a CSV audience, `{variables}` are filled per recipient (services/personalise.py;
    `tz` dates `{date}`, `show` writes a number in a problem) and each personalised text is priced."""
    problems: list[Problem] = []
    mms = compose.kind == "mms"
    if compose.kind not in ("sms", "mms"):
        problems.append(Problem("kind", "請選擇簡訊或多媒體簡訊。", "Choose SMS or MMS."))
    oversized = _oversized_recipients(compose.recipients_text, limits)
    if oversized is not None:
        return _refused_unread(compose, oversized, problems, clock=clock, last_credit=last_credit, limits=limits)
    numbers_text, names, unresolved = compose.recipients_text, {}, []
    if compose.audience is not None:
        numbers_text = "\n".join(t for t in (numbers_text.strip(), compose.audience.phones_text()) if t)
    entries: str | list[str] = numbers_text
    if resolve is not None:
        entries, names, unresolved = resolve(numbers_text)
        problems.extend(unresolved)
    recipients = parse_recipients(entries, allow_international=not mms, limits=limits)
    nothing = not recipients.recipients and not recipients.rejected
    if not (unresolved and nothing):  # "enter at least one number" would only confuse after "no contact X"
        problems.extend(recipients.problems())
    if nothing and compose.audience is not None and compose.audience.skipped:
        problems.append(_all_rows_skipped(compose.audience.skipped))
    elif nothing and not unresolved:
        problems.append(Problem("recipients", "請輸入至少一個手機號碼。", "Enter at least one mobile number."))
    recipients, skipped = _without_opted_out(recipients, opted_out)
    if skipped and not recipients.recipients:
        problems.append(Problem("recipients", f"所有收件人（{len(skipped)} 位）都已退訂，沒有可發送的對象。",
                                f"Every recipient ({len(skipped)}) opted out; there is nobody to send to."))
    messages: dict[str, str] = {}
    audience = compose.audience.values_by_number() if compose.audience else {}
    # A CSV's name column names its rows' delivery rows too (over the address book: it is this send's list).
    names = {**names, **{e164: values["name"] for e164, values in audience.items() if values.get("name")}}
    if resolve is not None or compose.audience is not None:  # else `{name}` is just text (a typed answer)
        filled = personalise(
            compose.message, [r.e164 for r in recipients.recipients], names=names, audience=audience,
            now=clock(), tz=tz, show=show,
        )
        problems.extend(filled.problems)
        messages = filled.messages
        if filled.message != compose.message:
            compose = replace(compose, message=filled.message)
    # Each personalised text is checked by its longest one (the only one that can be too long).
    checked = max(messages.values(), key=count_chars) if messages else compose.message
    if mms:
        problems.extend(validate_mms(compose.subject, checked, compose.image, limits))
    else:
        problems.extend(validate_sms(checked, compose.subject, limits))
    unregistered = _unregistered(links, compose.message, messages)
    if unregistered and links is not None and links.refuse:
        problems.append(unregistered_problem(unregistered))
    problems.extend(_check_time(compose.send_at, clock))
    problems.extend(_check_validity(compose.validity_minutes, limits))
    quote: Quote | None = None
    if recipients.recipients and not any(p.field == "message" for p in problems):
        quote = _quote(compose, recipients, messages, limits)
    credit, credit_at = last_credit if last_credit else (None, None)
    image_type = sniff_image_type(compose.image) if compose.image else None
    kept = {r.e164: names[r.e164] for r in recipients.recipients if r.e164 in names}
    return Preview(compose, recipients, quote, credit, credit_at, image_type, problems, skipped, kept, messages,
                   limits, unregistered)


def recheck(
    preview: Preview,
    *,
    clock: Clock,
    last_credit: tuple[float, float] | None,
    opted_out: OptedOut | None = None,
    send_at: datetime | None | EllipsisType = ...,
) -> Preview:
    """A kept preview checked again for what can change while it waits for its confirmation, without
    reading its recipients again: the time (a scheduled time can have come too close; `send_at` replaces
    it, e.g. the end of quiet hours), the opt-out list (a number that replied STOP meanwhile is left out and
    the price follows) and the last credit read. The recipients, their names and their texts stay those the
    person saw and confirmed: the address book is not read again (services/drafts.py says why)."""
    compose = preview.input if isinstance(send_at, EllipsisType) else replace(preview.input, send_at=send_at)
    recipients, skipped = _without_opted_out(preview.recipients, opted_out)
    problems = [*_check_time(compose.send_at, clock)]
    if skipped and not recipients.recipients:
        every = len(skipped) + len(preview.opted_out)
        problems.append(Problem("recipients", f"所有收件人（{every} 位）都已退訂，沒有可發送的對象。",
                                f"Every recipient ({every}) opted out; there is nobody to send to."))
    quote, names, messages = preview.quote, preview.names, preview.messages
    if skipped:
        left = {r.e164 for r in recipients.recipients}
        names = {n: name for n, name in names.items() if n in left}
        messages = {n: text for n, text in messages.items() if n in left}
        quote = _quote(compose, recipients, messages, preview.limits) if recipients.recipients else None
    credit, credit_at = last_credit if last_credit else (None, None)
    return replace(preview, input=compose, recipients=recipients, quote=quote, credit=credit, credit_at=credit_at,
                   problems=problems, opted_out=[*preview.opted_out, *skipped], names=names, messages=messages)


def _quote(compose: ComposeInput, recipients: RecipientList, messages: dict[str, str], limits: Limits) -> Quote:
    """The price of a checked draft: MMS by size, personalised SMS text by text, else one text for all."""
    if compose.kind == "mms":
        checked = max(messages.values(), key=count_chars) if messages else compose.message
        return quote_mms(recipients, limits, message=checked, image=compose.image)
    if messages:
        return quote_sms_each([(messages[r.e164], r) for r in recipients.recipients], limits)
    return quote_sms(compose.message, recipients, limits)


def _unregistered(links: RegisteredLinks | None, message: str, messages: dict[str, str]) -> list[str]:
    """Unregistered links and numbers of the text (of every personalised text: a CSV column can carry one)."""
    if links is None:
        return []
    found: list[str] = []
    for text in [message, *dict.fromkeys(messages.values())][:1001]:
        found.extend(x for x in links.unregistered(text) if x not in found)
    return found


def unregistered_texts(found: Sequence[str]) -> tuple[str, str]:
    """`「bit.ly/3x」、「0800-123-456」` and its English, the first few named."""
    shown = found[:5]
    more = len(found) - len(shown)
    zh = "、".join(f"「{x}」" for x in shown) + (f" 等 {len(found)} 個" if more else "")
    en = ", ".join(f'"{x}"' for x in shown) + (f" and {more} more" if more else "")
    return zh, en


def unregistered_problem(found: Sequence[str]) -> Problem:
    zh, en = unregistered_texts(found)
    return Problem("message", f"內容含未向電信業者登記的網址或電話：{zh}。台灣會攔截這類商業簡訊；請改用已登記的網址或電話"
                   "（BOT_REGISTERED_LINKS）。",
                   f"The text has links or numbers not registered with the carriers: {en}. Taiwan blocks such "
                   "commercial SMS; use registered ones (BOT_REGISTERED_LINKS).")


#: How many skipped CSV rows a problem or the preview names (the count always covers them all).
SKIPPED_ROWS_NAMED = 5


def skipped_rows_text(skipped: Sequence[SkippedRow]) -> tuple[str, str]:
    """`第 3 列「abc」含有文字…；第 7 列…` and its English: the first rows skipped, by spreadsheet row number."""
    shown = skipped[:SKIPPED_ROWS_NAMED]
    zh = "；".join(f"第 {s.row} 列：{s.zh}" for s in shown)
    en = "; ".join(f"row {s.row}: {s.en}" for s in shown)
    more = len(skipped) - len(shown)
    if more:
        zh, en = zh + f"；另有 {more} 列", en + f"; {more} more"
    return zh, en


def _all_rows_skipped(skipped: Sequence[SkippedRow]) -> Problem:
    zh, en = skipped_rows_text(skipped)
    return Problem("audience", f"CSV 的 {len(skipped)} 列都無法發送，沒有可發送的對象：{zh}",
                   f"None of the CSV's {len(skipped)} row{'s' if len(skipped) != 1 else ''} can be sent to: {en}")


def _oversized_recipients(text: str, limits: Limits) -> Problem | None:
    """A recipients field far longer than any request can be is refused by its size alone, before a single
    entry is read: reading megabytes of pasted junk entry by entry (each name a lookup, each number a
    parse) would outlast Slack's three seconds, and the answer would be "too many" anyway."""
    cap = limits.max_recipients_per_request
    max_chars = cap * RECIPIENT_CHARS
    if len(text) > max_chars:
        return Problem(
            "recipients",
            f"收件人欄最多 {max_chars:,} 個字元（一次最多 {cap:,} 個收件人），這次有 {len(text):,} 個字元；"
            "請分成幾次發送，或上傳 CSV 名單。",
            f"The recipients field holds at most {max_chars:,} characters ({cap:,} recipients per request); "
            f"this one has {len(text):,}. Split it into several requests, or upload a CSV list.",
        )
    max_pieces = cap * RECIPIENT_PIECES
    pieces = sum(1 for _ in _PIECE.finditer(text)) if len(text) > max_pieces else 0
    if pieces > max_pieces:
        return Problem(
            "recipients",
            f"收件人欄有 {pieces:,} 個項目，最多 {max_pieces:,} 個（一次最多 {cap:,} 個收件人）；請分成幾次發送。",
            f"The recipients field has {pieces:,} entries, at most {max_pieces:,} ({cap:,} recipients per "
            "request); split them into several requests.",
        )
    return None


def _refused_unread(
    compose: ComposeInput, oversized: Problem, problems: list[Problem], *, clock: Clock,
    last_credit: tuple[float, float] | None, limits: Limits,
) -> Preview:
    """The preview of a request whose recipients were too many to read: that problem, plus the checks
    that cost nothing (the text, the time, the validity), so every other field still gets its word."""
    problems = [*problems, oversized]
    if compose.kind == "mms":
        problems.extend(validate_mms(compose.subject, compose.message, compose.image, limits))
    else:
        problems.extend(validate_sms(compose.message, compose.subject, limits))
    problems.extend(_check_time(compose.send_at, clock))
    problems.extend(_check_validity(compose.validity_minutes, limits))
    credit, credit_at = last_credit if last_credit else (None, None)
    return Preview(compose, RecipientList([], [], [], limits.max_recipients_per_request), None, credit, credit_at,
                   None, problems, limits=limits)


def _without_opted_out(
    recipients: RecipientList, opted_out: OptedOut | None
) -> tuple[RecipientList, list[Recipient]]:
    """The list without the numbers that opted out, and those numbers."""
    if opted_out is None or not recipients.recipients:
        return recipients, []
    listed = opted_out(r.e164 for r in recipients.recipients)
    if not listed:
        return recipients, []
    kept = [r for r in recipients.recipients if r.e164 not in listed]
    return replace(recipients, recipients=kept), [r for r in recipients.recipients if r.e164 in listed]


def _check_time(send_at: datetime | None, clock: Clock) -> list[Problem]:
    if send_at is None:
        return []
    if send_at.tzinfo is None:
        return [Problem("send_at", "預約時間缺少時區。", "The scheduled time has no time zone.")]
    now = datetime.fromtimestamp(clock(), tz=send_at.tzinfo)
    if send_at < now + timedelta(seconds=MIN_LEAD_SECONDS):
        return [
            Problem(
                "send_at",
                "預約時間已經過去或太接近現在，請選擇至少一分鐘後的時間，或改為立即發送。",
                "The scheduled time is in the past or too close; pick a time at least a minute ahead, or send now.",
            )
        ]
    if send_at > now + timedelta(days=MAX_SCHEDULE_DAYS):
        return [
            Problem(
                "send_at",
                f"預約時間太遠，最多可預約 {MAX_SCHEDULE_DAYS} 天內。",
                f"The scheduled time is too far ahead; at most {MAX_SCHEDULE_DAYS} days.",
            )
        ]
    return []


def _check_validity(minutes: int | None, limits: Limits) -> list[Problem]:
    if minutes is None:
        return []
    if not 1 <= minutes <= limits.max_validity_minutes:
        return [
            Problem(
                "validity",
                f"有效期限需介於 1 到 {limits.max_validity_minutes} 分鐘。",
                f"Validity must be between 1 and {limits.max_validity_minutes} minutes.",
            )
        ]
    return []
