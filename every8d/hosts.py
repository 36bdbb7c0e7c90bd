"""The hosts EVERY8D has served its HTTP API from, and a probe that tells what a configured host really is.

Why: EVERY8D moved hosts (`oms.every8d.com` was retired in 2022; the 2021 document names `api.e8d.tw`), and a
bot pointed at the wrong one fails far from the cause: a refused connection, a portal's HTML page, a redirect
the client will not follow (a POST would lose its body), or a 2017-era host without the 2021 endpoints. The
probe asks once, **without the account** (no UID, no PWD: nothing can count as a failed login, and no
password goes to a host that turns out not to be EVERY8D's API), and classifies the answer so that
`every8d-bot doctor` can say plainly what is wrong and which host to try. Facts: delta notes §1-§3.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

#: The path prefix every EVERY8D host uses (prepaid accounts may have more path before it).
API_PREFIX = "API21/HTTP/"
#: The host of the newest official document (HTTP API v2.1.5, 2021-10-22): the default.
OFFICIAL_2021_BASE_URL = "https://api.e8d.tw/API21/HTTP/"

#: Every host EVERY8D has used, newest first: (base URL, where it comes from). The README lists the same.
KNOWN_HOSTS: tuple[tuple[str, str], ...] = (
    ("https://api.e8d.tw/API21/HTTP/", "official document v2.1.5 (2021)"),
    ("https://oms.e8d.tw/API21/HTTP/", "used by clients since 2022"),
    ("https://new.e8d.tw/API21/HTTP/", "a later revision, not verified"),
)
#: Hosts of the 2017 document that EVERY8D has since retired (a redirect to one of them is a dead end).
RETIRED_HOSTS = frozenset({"oms.every8d.com", "api.every8d.com"})

#: A 2021 endpoint (v2.1.1) that 2017-era hosts do not have; asked without credentials it answers an
#: EVERY8D error body on a 2021 host and 404 on an old one.
PROBE_ENDPOINT = "getReplyMessage.ashx"

Kind = Literal["api", "unreachable", "html", "redirect", "not_found", "http_error"]
Reason = Literal["dns", "refused", "timeout", "no_answer", "tls", "other", ""]

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class HostProbe:
    """What the configured host answered to one credential-free POST of `PROBE_ENDPOINT`.

    kind: "api" (a plain-text answer, as EVERY8D gives), "unreachable" (`reason` says why), "html" (a web
    page instead of the API; `title` is its title), "redirect" (`location`, absolute), "not_found" (404),
    "http_error" (another status: the host is there but failing, which says nothing about which host it is).
    """

    kind: Kind
    url: str
    reason: Reason = ""
    status: int = 0
    location: str = ""
    title: str = ""
    detail: str = ""
    #: For "unreachable" by timeout: how long it waited (the connect or the read timeout).
    seconds: float = 0.0

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def redirect_host(self) -> str:
        return urlsplit(self.location).hostname or ""

    @property
    def redirect_to_retired(self) -> bool:
        return self.redirect_host.lower() in RETIRED_HOSTS

    @property
    def suggested_base_url(self) -> str:
        """The base URL a redirect points at (the Location without the probed endpoint), or ""."""
        if not self.location:
            return ""
        parts = urlsplit(self.location)
        path = parts.path
        if path.lower().endswith(PROBE_ENDPOINT.lower()):
            path = path[: -len(PROBE_ENDPOINT)]
        return f"{parts.scheme}://{parts.netloc}{path}"


def is_retired(base_url: str) -> bool:
    """True when `base_url` is on a host of the 2017 document that EVERY8D has retired."""
    return (urlsplit(base_url).hostname or "").lower() in RETIRED_HOSTS


def probe_host(base_url: str, *, timeout: float, connect_timeout: float = 5.0,
               session: requests.Session | None = None) -> HostProbe:
    """POST `PROBE_ENDPOINT` under `base_url` with an empty form (no account) and classify the answer.

    Redirects are not followed (neither does the client); the body read is capped, since a host that is not
    EVERY8D's may answer anything."""
    url = (base_url if base_url.endswith("/") else base_url + "/") + PROBE_ENDPOINT
    connect = min(connect_timeout, timeout)
    own = session is None
    http = session or requests.Session()
    try:
        response = http.post(
            url, data=b"", headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            timeout=(connect, timeout), allow_redirects=False, stream=True,
        )
        try:
            head = response.raw.read(16_384, decode_content=True) or b""
        finally:
            response.close()
    except requests.RequestException as exc:
        reason = _reason(exc)
        waited = connect if reason == "timeout" else timeout if reason == "no_answer" else 0.0
        return HostProbe("unreachable", url, reason=reason, detail=_root_text(exc), seconds=waited)
    finally:
        if own:
            http.close()
    text = head.decode("utf-8", errors="replace")  # EVERY8D answers UTF-8; only used to classify and quote
    status = response.status_code
    if status in _REDIRECTS:
        location = urljoin(url, response.headers.get("Location", ""))
        return HostProbe("redirect", url, status=status, location=location)
    if status == 404:
        return HostProbe("not_found", url, status=status)
    content_type = response.headers.get("Content-Type", "").lower()
    stripped = text.lstrip("\ufeff \r\n\t")
    if status == 200 and ("html" in content_type or stripped.startswith("<") or "<html" in stripped[:1024].lower()):
        title = _TITLE.search(text)
        return HostProbe("html", url, status=status, title=" ".join(title.group(1).split())[:80] if title else "")
    if status != 200:
        return HostProbe("http_error", url, status=status)
    return HostProbe("api", url, status=status, detail=stripped[:80])


def _reason(exc: requests.RequestException) -> Reason:
    """Why nothing answered, from the exception and what it wraps (requests nests urllib3 and socket errors)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no_answer"
    causes = list(_causes(exc))
    if any(isinstance(c, (urllib3.exceptions.NameResolutionError, socket.gaierror)) for c in causes):
        return "dns"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "refused"
    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(c, ssl.SSLError) for c in causes):
        return "tls"
    if any(isinstance(c, (TimeoutError, socket.timeout)) for c in causes):
        return "timeout"
    return "other"


def _causes(exc: BaseException, depth: int = 0) -> Iterator[BaseException]:
    yield exc
    if depth > 8:
        return
    for inner in (getattr(exc, "reason", None), exc.__cause__, exc.__context__, *exc.args):
        if isinstance(inner, BaseException) and inner is not exc:
            yield from _causes(inner, depth + 1)


def _root_text(exc: BaseException) -> str:
    root = list(_causes(exc))[-1]
    return f"{type(root).__name__}: {root}"[:160]
