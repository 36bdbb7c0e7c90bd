"""How the bot speaks: zh-TW first, English beside it (or one of them, per BOT_LANGUAGE), and the small
formatting rules of the UX notes: times in the configured zone, points with one decimal, masked numbers,
untrusted text made inert."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from every8d.phones import display, mask

#: How a time zone is named after a time: (zh-TW, English); other zones are named by their IANA name.
_ZONE_NAMES = {"Asia/Taipei": ("台北時間", "Taipei time")}


@dataclass(frozen=True)
class Voice:
    language: str = "both"  # "zh-TW", "en" or "both"
    timezone: str = "Asia/Taipei"
    mask_numbers: bool = True
    sandbox: bool = False

    def t(self, zh: str, en: str) -> str:
        """One sentence in the configured language(s)."""
        if self.language == "zh-TW":
            return zh
        if self.language == "en":
            return en
        return f"{zh} / {en}"

    def lines(self, zh: str, en: str) -> str:
        """Longer text: both languages on separate lines."""
        if self.language == "zh-TW":
            return zh
        if self.language == "en":
            return en
        return f"{zh}\n{en}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def time(self, epoch: float | None) -> str:
        """`2026-11-25 14:30（台北時間）`, `2026-11-25 14:30 (Taipei time)`; in both languages the zone is
        written `(UTC+8)`, which reads the same in each half of a bilingual line."""
        if epoch is None:
            return "—"
        local = datetime.fromtimestamp(epoch, tz=self.tz)
        zh, en = _ZONE_NAMES.get(self.timezone, (self.timezone, self.timezone))
        if self.language == "zh-TW":
            return f"{local:%Y-%m-%d %H:%M}（{zh}）"
        if self.language == "en":
            return f"{local:%Y-%m-%d %H:%M} ({en})"
        offset = local.utcoffset()
        hours = (offset.total_seconds() if offset else 0) / 3600
        zone = f"UTC{hours:+g}" if hours else "UTC"
        return f"{local:%Y-%m-%d %H:%M} ({zone})"

    def clock(self, epoch: float | None) -> str:
        """`14:32`, for the decision line."""
        if epoch is None:
            return "—"
        return f"{datetime.fromtimestamp(epoch, tz=self.tz):%H:%M}"

    def note(self, support_note: str) -> str:
        """EVERY8D's code and words in small print (`（EVERY8D -99：…）`), with English punctuation in
        English; the server's own words are quoted as they came."""
        if self.language != "en":
            return support_note
        return support_note.replace("（", "(").replace("）", ")").replace("：", ": ")

    def number(self, e164: str, *, channel: bool = True) -> str:
        """A phone number as shown: masked in channel posts unless configured otherwise."""
        return mask(e164) if channel and self.mask_numbers else display(e164)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 recipient`, `2 recipients`, `1,000 messages`: an English count with its plural."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def points(value: float | None) -> str:
    """`1,412.0 點`."""
    if value is None:
        return "—"
    return f"{value:,.1f} 點"


def escape(text: str) -> str:
    """Make untrusted text inert in mrkdwn: no mentions, @channel, links or formatting can form.

    Slack only needs &, < and > escaped for control sequences; the formatting characters are neutralized
    by posting such text in plain_text objects (see cards.untrusted_block)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def typed_text(text: str) -> str:
    """What a person typed, from Slack's text: Slack sends `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;` in
    every text it sends (a slash command's too), so `/sms send … A&B` would otherwise text `A&amp;B` to a
    phone, and echoes would show `&amp;amp;`. Decoded once, at the edge; every echo escapes again. A phone
    number its client made a `tel:` link is the number again; other markup Slack inserts (`<@U123>`,
    `<#C123|sales>`) stays as it is."""
    return _TEL.sub(lambda m: m.group(2) or m.group(1), text).replace("&lt;", "<").replace("&gt;", ">") \
        .replace("&amp;", "&")


#: A phone number Slack's (mobile) client turned into a link: `<tel:0912345678|0912-345-678>`. It is the
#: number the person typed: its label (or its number), never markup in a recipient list or an SMS.
_TEL = re.compile(r"<tel:([^<>|]*)(?:\|([^<>]*))?>")


def clip(text: str, limit: int) -> str:
    """Shorten for Block Kit's limits (section 3,000 chars), saying so."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def progress_bar(done: int, total: int, width: int = 10) -> str:
    """`▓▓▓▓▓▓▓░░░ 70%`."""
    if total <= 0:
        return "░" * width + " 0%"
    filled = round(width * done / total)
    return "▓" * filled + "░" * (width - filled) + f" {round(100 * done / total)}%"


_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def sms_text_from_slack(text: str) -> str:
    """What a Slack message says, as plain text for a phone: a link `<https://x.tw|our sale>` becomes
    `our sale https://x.tw` (the phone shows no hidden targets), `<https://x.tw>` the URL, mentions and
    channel links their label or nothing (`<@U123>` means nothing on a phone), and `&lt;` `&gt;` `&amp;`
    the characters they stand for."""

    def plain(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith(("@", "#", "!")):
            return label or ""
        if target.startswith("tel:"):  # a number Slack turned into a link: the number as typed
            return label or target.removeprefix("tel:")
        if target.startswith("mailto:"):
            target = target.removeprefix("mailto:")
        if label and label != target:
            return f"{label} {target}"
        return target

    converted = _LINK.sub(plain, text)
    return converted.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
