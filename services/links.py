"""Registered links: Taiwan's carriers block commercial SMS that carry a URL or a phone number not
registered with them (the anti-fraud rules in force since 2023), and EVERY8D still charges for it. So the
compose check finds every link and phone number in a message and compares them with the organisation's
list (`BOT_REGISTERED_LINKS`): the preview names the ones that are not on it, as a warning, or as a
problem that stops the draft when `BOT_UNREGISTERED_LINKS=refuse`.

A registered domain covers its subdomains and every path (`shop.example.com.tw` covers
`https://shop.example.com.tw/sale?id=1` and `m.shop.example.com.tw`); a registered URL covers the URLs that
start with it; a registered number matches however it is written (`02-2345-6789`, `(02)23456789`,
`+886223456789`). Pure Python; no Slack, no EVERY8D.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

#: A link as people write it in a text: with a scheme, with `www.`, or a bare domain with a known TLD.
_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%]"  # RFC 3986, without quotes and parentheses
_URL = re.compile(
    rf"(?:https?://|www\.){_URL_CHARS}+"
    r"|\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|net|org|tw|io|co|me|info|biz|shop|app|ly|gl|cc|to)"
    rf"\b(?:/{_URL_CHARS}*)?",
    re.IGNORECASE,
)
#: A phone number in text: Taiwan forms (mobile, landline with area code, 0800/0809 toll-free) and +886.
_PHONE = re.compile(r"(?<![\w+])(?:\+886|\(0\d{1,2}\)|0)[\d\-\s()]{6,14}\d(?!\w)")
#: A Taiwan number has 9 or 10 national digits (with its leading 0): mobiles, landlines, 0800 and 0809.
_NATIONAL_DIGITS = (9, 10)
#: Trailing punctuation that ends a sentence, not a link.
_TRAILING = ".,;:!?*"


@dataclass(frozen=True)
class RegisteredLinks:
    """The organisation's registered domains, URL prefixes and numbers; `refuse`: unregistered ones stop
    the draft instead of a warning."""

    domains: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    numbers: frozenset[str] = frozenset()
    refuse: bool = False

    @classmethod
    def parse(cls, text: str, *, refuse: bool = False) -> RegisteredLinks | None:
        """`shop.example.com.tw, https://lin.ee/abc, 02-2345-6789` -> RegisteredLinks; empty -> None (no check)."""
        entries = [e.strip() for e in re.split(r"[,，;；\s]+", unicodedata.normalize("NFKC", text)) if e.strip()]
        if not entries:
            return None
        domains, prefixes, numbers = set(), [], set()
        for entry in entries:
            digits = _digits(entry)
            if _PHONE.fullmatch(entry) and len(digits) in _NATIONAL_DIGITS:
                numbers.add(digits)
            elif "/" in entry.split("://", 1)[-1] or "://" in entry:
                prefixes.append(_normal_url(entry))
                if "/" not in entry.split("://", 1)[-1].rstrip("/"):
                    domains.add(_host(entry))
            else:
                domains.add(entry.lower().removeprefix("www.").strip("."))
        return cls(frozenset(domains), tuple(prefixes), frozenset(numbers), refuse)

    def unregistered(self, message: str) -> list[str]:
        """The links and numbers of `message` that are not registered, as written, in order, once each."""
        found: list[str] = []
        text = unicodedata.normalize("NFKC", message)
        for match in _URL.finditer(text):
            link = match.group().rstrip(_TRAILING)
            if not self._covers_link(link) and link not in found:
                found.append(link)
        for match in _PHONE.finditer(_URL.sub(" ", text)):
            number = match.group().strip()
            digits = _digits(number)
            if len(digits) in _NATIONAL_DIGITS and digits not in self.numbers and number not in found:
                found.append(number)
        return found

    def _covers_link(self, link: str) -> bool:
        host = _host(link)
        if any(host == d or host.endswith("." + d) for d in self.domains):
            return True
        normal = _normal_url(link)
        return any(normal == prefix.rstrip("/") or normal.startswith(prefix.rstrip("/") + "/")
                   or normal.startswith(prefix.rstrip("/") + "?") for prefix in self.prefixes)


def _host(link: str) -> str:
    with_scheme = link if "://" in link else "http://" + link
    return (urlsplit(with_scheme).hostname or "").lower().removeprefix("www.")


def _normal_url(link: str) -> str:
    """Scheme-less, `www.`-less, lower-case host: `https://WWW.Lin.ee/abc` -> `lin.ee/abc`."""
    with_scheme = link if "://" in link else "http://" + link
    parts = urlsplit(with_scheme)
    host = (parts.hostname or "").lower().removeprefix("www.")
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return host + rest


def _digits(text: str) -> str:
    """A number's national digits: `+886 2 2345 6789` and `(02)2345-6789` -> `0223456789`."""
    digits = re.sub(r"\D", "", text)
    if digits.startswith("886"):
        digits = "0" + digits[3:]
    return digits
