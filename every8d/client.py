"""The EVERY8D HTTP API 2.1 client: every endpoint, over one keep-alive session, with typed results and errors.

Why it is shaped this way:
- Always POST with a form body, so UID and PWD never sit in a URL, a proxy log or our own logs; the
  credentials are also scrubbed from every error text this client raises.
- A send is not idempotent. It is retried only when the connection never opened; once the request may have
  reached EVERY8D (read timeout, reset, HTTP 5xx, unreadable answer) the caller gets `OutcomeUnknownError`
  and must reconcile instead of sending twice. Status, credit and cancel calls are safe to repeat and are
  retried with exponential backoff through an injected `sleep`, so tests never wait.
- Wrong credentials are never retried on any endpoint: EVERY8D locks accounts after failed logins.
- MMS is HTTPS-only at EVERY8D; a plain-http MMS call to a public host is refused before it is made.
- SendParamSMS and getReplyMessage (2021 revision) are optional on an account's platform: a 404 (or, for
  replies, a body that is not the endpoint's format) is `UnsupportedEndpointError`, never a retry, so the
  caller can say "not supported by this account's platform" and stop using it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote_plus, urlsplit

import requests
import urllib3.exceptions

from every8d.codes import NOTHING_TO_CANCEL_CODES, is_transient
from every8d.endpoints import (
    CANCEL_MMS,
    CANCEL_SMS,
    CREDIT,
    MMS_ENDPOINTS,
    OPTIONAL_ENDPOINTS,
    REPLIES,
    SEND_ENDPOINTS,
    SEND_MMS,
    SEND_PARAM,
    SEND_SMS,
    STATUS_MMS,
    STATUS_SMS,
)
from every8d.errors import (
    CredentialError,
    Every8dError,
    InsecureTransportError,
    OutcomeUnknownError,
    ProviderError,
    UnavailableError,
    UnsupportedEndpointError,
    ValidationError,
)
from every8d.parsing import (
    TAIPEI,
    parse_cancel,
    parse_credit,
    parse_param_send_response,
    parse_reply_page,
    parse_send_response,
    parse_status_page,
)
from every8d.results import (
    CancelResult,
    DeliveryRecord,
    NothingToCancel,
    ParamRecipient,
    ReplyMessage,
    ReplyPage,
    SendResult,
)

logger = logging.getLogger("every8d")

T = TypeVar("T")

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
#: getReplyMessage pages hold 10 rows (§4.7); reading stops after this many pages whatever the count says.
REPLY_PAGE_SIZE = 10
MAX_REPLY_PAGES = 1000
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)
# Transport failures worth another attempt on calls that are safe to repeat.
_TRANSIENT_TRANSPORT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_SEND_LOST_ZH = "EVERY8D 可能已收到發送要求，但回應遺失；請先查詢批次狀態或點數，切勿直接重送"
_SEND_LOST_EN = (
    "EVERY8D may have received the send but its answer was lost; check the batch or the credit, "
    "do not simply send again"
)


class _Failed(Exception):
    """One attempt failed: the error to raise and whether another attempt may help."""

    def __init__(self, error: Every8dError, retryable: bool) -> None:
        super().__init__(error.describe("en"))
        self.error = error
        self.retryable = retryable


class Every8dClient:
    """A client for one EVERY8D account at one base URL (path prefix kept, e.g. `https://host/API21/HTTP/`).

    `retries` is how many further attempts a repeatable call gets after the first; attempt n waits
    `backoff * 2**(n-1)` seconds first. `timeout` is the read timeout, `connect_timeout` the connect one.
    """

    def __init__(
        self,
        base_url: str,
        uid: str,
        pwd: str,
        *,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        allow_insecure_mms: bool = False,
    ) -> None:
        self._base_url = _normalized_base_url(base_url)
        self._uid = uid
        self._pwd = pwd
        self._timeout = (connect_timeout, timeout)
        self._retries = max(0, retries)
        self._backoff = backoff
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._allow_insecure_mms = allow_insecure_mms
        self._secrets = _secret_forms(uid, pwd)

    def __repr__(self) -> str:
        return f"Every8dClient({self._base_url!r})"

    @property
    def base_url(self) -> str:
        """The normalized base URL (path prefix kept, trailing slash added); never holds credentials."""
        return self._base_url

    # --- sending -------------------------------------------------------------------------------------

    def send_sms(
        self,
        *,
        message: str,
        recipients: Sequence[str],
        subject: str = "",
        send_at: datetime | None = None,
        validity_minutes: int | None = None,
    ) -> SendResult:
        """Send one SMS text to every recipient (now, or at `send_at`). Never retried once it may have arrived."""
        fields = _send_fields(subject, message, recipients, send_at, validity_minutes)
        return self._call(SEND_SMS, fields, lambda body: parse_send_response(body, SEND_SMS))

    def send_mms(
        self,
        *,
        subject: str,
        message: str,
        image: bytes,
        image_type: str,
        recipients: Sequence[str],
        send_at: datetime | None = None,
        validity_minutes: int | None = None,
    ) -> SendResult:
        """Send one MMS (subject, text and one image) to every recipient. Limits are the caller's to check."""
        if not subject.strip():
            raise ValidationError("MMS 必須有主旨", "An MMS needs a subject", endpoint=SEND_MMS)
        kind = image_type.strip().lower().removeprefix(".")
        if not image or not kind:
            raise ValidationError("MMS 必須附上圖片", "An MMS needs an image and its type", endpoint=SEND_MMS)
        fields = _send_fields(subject, message, recipients, send_at, validity_minutes)
        fields["ATTACHMENT"] = base64.b64encode(image).decode("ascii")
        fields["TYPE"] = kind
        return self._call(SEND_MMS, fields, lambda body: parse_send_response(body, SEND_MMS))

    def send_param_sms(
        self,
        *,
        recipients: Sequence[ParamRecipient],
        subject: str = "",
        template: str = "",
        send_at: datetime | None = None,
        validity_minutes: int | None = None,
    ) -> SendResult:
        """SendParamSMS (JSON body): each recipient's own text in one call. Personalised mode (the default,
        `template` empty): each `ParamRecipient.param` is that recipient's full text. Template mode:
        `template` holds `%field1%`..`%field5%` and each param five `|`-separated values.

        Never retried once it may have arrived; a 404 is `UnsupportedEndpointError` (nothing was sent,
        so the caller may fall back to sendSMS)."""
        entries = _param_entries(recipients, _send_time(send_at), template)
        document: dict[str, object] = {"UID": self._uid, "PWD": self._pwd, "SB": subject, "MSG": template}
        if validity_minutes is not None:
            document["RETRYTIME"] = _validity(validity_minutes)
        document["RecipientDataList"] = entries
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self._exchange(SEND_PARAM, body, JSON_CONTENT_TYPE, lambda text: parse_param_send_response(text))

    # --- replies -------------------------------------------------------------------------------------

    def reply_page(self, batch_id: str, page: int) -> ReplyPage:
        """One page (1-based, 10 rows) of a batch's replies (getReplyMessage), with the batch's reply count."""
        if page < 1:
            raise ValidationError("頁碼須從 1 開始", "Page numbers start at 1", endpoint=REPLIES)
        fields = {"BID": _batch_id(batch_id, REPLIES), "PNO": str(page)}
        return self._call(REPLIES, fields, lambda body: parse_reply_page(body, REPLIES))

    def get_replies(self, batch_id: str) -> ReplyPage:
        """Every reply of a batch, page by page: as many pages as REPLY_COUNT needs (recomputed from each
        page, since replies keep coming), stopping at an empty page. Suspect rows are summed, not kept."""
        replies: list[ReplyMessage] = []
        suspect = total = 0
        page = 1
        while page <= MAX_REPLY_PAGES:
            answer = self.reply_page(batch_id, page)
            total = answer.total
            replies.extend(answer.replies)
            suspect += answer.suspect
            if not (answer.replies or answer.suspect) or page * REPLY_PAGE_SIZE >= total:
                break
            page += 1
        return ReplyPage(total=total, replies=replies, suspect=suspect)

    # --- delivery status -----------------------------------------------------------------------------

    def delivery_status_page(
        self, batch_id: str, page: int, *, mms: bool = False
    ) -> tuple[int, list[DeliveryRecord]]:
        """One page (1-based, 1000 records) of a batch's delivery records, with the batch's total count."""
        endpoint = STATUS_MMS if mms else STATUS_SMS
        if page < 1:
            raise ValidationError("頁碼須從 1 開始", "Page numbers start at 1", endpoint=endpoint)
        fields = {"BID": _batch_id(batch_id, endpoint), "PNO": str(page)}
        return self._call(endpoint, fields, lambda body: parse_status_page(body, endpoint))

    def iter_delivery_status(self, batch_id: str, *, mms: bool = False) -> Iterator[DeliveryRecord]:
        """Every record of a batch, fetched page by page as the caller consumes them.

        Only one page is held at a time, so a 10,000-record batch never sits in memory at once. Stops when
        it has yielded the total the latest page announced, or when a page comes back empty.
        """
        page = 1
        yielded = 0
        while True:
            total, records = self.delivery_status_page(batch_id, page, mms=mms)
            if not records:
                return
            for record in records:
                yield record
                yielded += 1
            del records
            if yielded >= total:
                return
            page += 1

    # --- account -------------------------------------------------------------------------------------

    def get_credit(self) -> float:
        """The account's remaining points."""
        return self._call(CREDIT, {}, lambda body: parse_credit(body, CREDIT))

    def cancel_sms(self, batch_id: str) -> CancelResult | NothingToCancel:
        """Cancel a scheduled SMS batch; NothingToCancel when EVERY8D found nothing scheduled under that id."""
        return self._cancel(CANCEL_SMS, batch_id)

    def cancel_mms(self, batch_id: str) -> CancelResult | NothingToCancel:
        """Cancel a scheduled MMS batch; NothingToCancel when EVERY8D found nothing scheduled under that id."""
        return self._cancel(CANCEL_MMS, batch_id)

    def _cancel(self, endpoint: str, batch_id: str) -> CancelResult | NothingToCancel:
        """-3 (no such scheduled batch) and -4 (already sent or deleted) mean what an empty answer means:
        nothing to cancel; they come back as NothingToCancel with the code. -8 (temporarily unavailable) is
        retried like -99, then raised for the cancel service to try again later."""
        bid = _batch_id(batch_id, endpoint)
        try:
            return self._call(endpoint, {"BID": bid}, lambda body: parse_cancel(body, bid, endpoint))
        except ProviderError as error:
            if error.code in NOTHING_TO_CANCEL_CODES:
                return NothingToCancel(bid, code=error.code)
            raise

    # --- lifecycle -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the keep-alive session (only if this client created it)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Every8dClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- transport -----------------------------------------------------------------------------------

    def _call(self, endpoint: str, fields: Mapping[str, str], parse: Callable[[str], T]) -> T:
        """POST a form to one endpoint, parse the answer, and retry what is safe and worth retrying."""
        body = _form_body({"UID": self._uid, "PWD": self._pwd, **fields})
        return self._exchange(endpoint, body, FORM_CONTENT_TYPE, parse)

    def _exchange(self, endpoint: str, body: bytes, content_type: str, parse: Callable[[str], T]) -> T:
        """POST a ready body (form or JSON) and parse the answer, with the retry rules of the module."""
        self._check_transport(endpoint)
        attempt = 1
        while True:
            started = time.perf_counter()
            try:
                result = self._attempt(endpoint, body, parse, content_type)
            except _Failed as failed:
                error = self._scrubbed(failed.error)
                will_retry = failed.retryable and attempt <= self._retries
                self._log(endpoint, attempt, started, type(error).__name__ + (", retrying" if will_retry else ""))
                if not will_retry:
                    raise error from None
                self._sleep(self._backoff * 2 ** (attempt - 1))
                attempt += 1
                continue
            self._log(endpoint, attempt, started, "ok")
            return result

    def _attempt(
        self, endpoint: str, body: bytes, parse: Callable[[str], T], content_type: str = FORM_CONTENT_TYPE
    ) -> T:
        """One HTTP exchange; failures come out as `_Failed` saying whether a retry is safe."""
        sending = endpoint in SEND_ENDPOINTS
        try:
            response = self._session.post(
                self._base_url + endpoint,
                data=body,
                headers={"Content-Type": content_type},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise self._transport_failure(exc, endpoint, sending) from None
        if response.status_code == 404 and endpoint in OPTIONAL_ENDPOINTS:
            raise _Failed(_unsupported(endpoint), retryable=False)
        if response.status_code != 200:
            raise _status_failure(response.status_code, endpoint, sending)
        try:
            return parse(_decoded(response))
        except UnavailableError as err:
            if sending:
                lost = OutcomeUnknownError(
                    _SEND_LOST_ZH, _SEND_LOST_EN, server_message=f"{err.en}: {err.server_message}", endpoint=endpoint
                )
                raise _Failed(lost, retryable=False) from None
            raise _Failed(err, retryable=True) from None
        except (CredentialError, UnsupportedEndpointError) as err:
            raise _Failed(err, retryable=False) from None
        except ProviderError as err:
            raise _Failed(err, retryable=not sending and is_transient(endpoint, err.code)) from None

    def _transport_failure(self, exc: requests.RequestException, endpoint: str, sending: bool) -> _Failed:
        """Classify a requests exception: for a send, only a connection that never opened is safe to retry.

        People get the reason in words (could not connect / no answer in time / connection cut); the
        exception itself goes to the log only, scrubbed of credentials."""
        logger.info("every8d %s transport failure: %s", endpoint, self._scrub(_exception_text(exc)))
        why_zh, why_en = _transport_reason(exc)
        if sending and _never_sent(exc):
            error: Every8dError = UnavailableError(
                f"無法連線 EVERY8D，簡訊未送出（{why_zh}）。",
                f"Could not connect to EVERY8D; nothing was sent ({why_en}).",
                endpoint=endpoint,
            )
            return _Failed(error, retryable=True)
        if sending:
            # The reason is ours, not EVERY8D's: it goes in each language's sentence, not in the server note.
            lost = OutcomeUnknownError(f"{_SEND_LOST_ZH}（{why_zh}）", f"{_SEND_LOST_EN} ({why_en})", endpoint=endpoint)
            return _Failed(lost, retryable=False)
        error = UnavailableError(
            f"EVERY8D 暫時無法使用（{why_zh}）。",
            f"EVERY8D is not reachable right now ({why_en}).",
            endpoint=endpoint,
        )
        return _Failed(error, retryable=isinstance(exc, _TRANSIENT_TRANSPORT))

    def _check_transport(self, endpoint: str) -> None:
        """MMS endpoints are HTTPS-only: refuse plain http to a public host unless explicitly allowed."""
        if endpoint not in MMS_ENDPOINTS or self._allow_insecure_mms:
            return
        parts = urlsplit(self._base_url)
        if parts.scheme == "https" or _is_local_host(parts.hostname or ""):
            return
        raise InsecureTransportError(
            "EVERY8D 的 MMS 只接受 HTTPS，請把 EVERY8D 網址改為 https://",
            "EVERY8D accepts MMS over HTTPS only; configure an https:// EVERY8D base URL",
            endpoint=endpoint,
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _scrubbed(self, error: Every8dError) -> Every8dError:
        """The same error, rebuilt if any of its texts contains a credential."""
        texts = (error.zh, error.en, error.server_message)
        if not any(secret in text for secret in self._secrets for text in texts):
            return error
        return type(error)(
            self._scrub(error.zh),
            self._scrub(error.en),
            code=error.code,
            server_message=self._scrub(error.server_message),
            endpoint=error.endpoint,
        )

    def _log(self, endpoint: str, attempt: int, started: float, outcome: str) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug("every8d %s attempt=%d elapsed_ms=%.1f outcome=%s", endpoint, attempt, elapsed_ms, outcome)


def _unsupported(endpoint: str) -> UnsupportedEndpointError:
    """The platform answered 404 for an optional 2021 endpoint: it does not have it; nothing was processed."""
    return UnsupportedEndpointError(
        f"此帳號的 EVERY8D 平台不支援 {endpoint}（2021 年版 API 的功能）",
        f"{endpoint} is not supported by this account's platform (a 2021 API feature)",
        server_message="HTTP 404",
        endpoint=endpoint,
    )


def _param_entries(recipients: Sequence[ParamRecipient], send_time: str, template: str) -> list[dict[str, str]]:
    """RecipientDataList, keys cased as EVERY8D's example (`Mr`); refuses locally what cannot be sent."""
    if isinstance(recipients, (str, ParamRecipient)) or not recipients:
        raise ValidationError("未輸入收訊人號碼", "No recipient number was given", endpoint=SEND_PARAM)
    entries = []
    codes: set[str] = set()
    for recipient in recipients:
        mobile = recipient.mobile.strip()
        if not mobile:
            raise ValidationError("未輸入收訊人號碼", "No recipient number was given", endpoint=SEND_PARAM)
        if not template and not recipient.param.strip():
            raise ValidationError("簡訊內容不得為空", "The message text is empty", endpoint=SEND_PARAM)
        if template and recipient.param.count("|") != 4:
            raise ValidationError("參數須為五個以 | 分隔的值", "Param must be five values separated by |",
                                  endpoint=SEND_PARAM)
        if recipient.mr:
            if recipient.mr in codes:
                raise ValidationError("Mr 在同一批中必須唯一", "Mr must be unique within the call", endpoint=SEND_PARAM)
            codes.add(recipient.mr)
        entries.append({"Name": recipient.name, "Mobile": mobile, "Email": recipient.email, "SendTime": send_time,
                        "Param": recipient.param, "Mr": recipient.mr})
    return entries


def _validity(validity_minutes: int) -> int:
    if isinstance(validity_minutes, bool) or not isinstance(validity_minutes, int) or validity_minutes < 1:
        raise ValidationError("有效期限須為正整數分鐘", "The validity must be a positive number of minutes")
    return validity_minutes


def _send_fields(
    subject: str,
    message: str,
    recipients: Sequence[str],
    send_at: datetime | None,
    validity_minutes: int | None,
) -> dict[str, str]:
    """The fields common to SMS and MMS sends; refuses locally what EVERY8D would refuse anyway."""
    if not message.strip():
        raise ValidationError("簡訊內容不得為空", "The message text is empty")
    fields = {
        "SB": subject,
        "MSG": message,
        "DEST": _destinations(recipients),
        "ST": _send_time(send_at),
    }
    if validity_minutes is not None:
        fields["RETRYTIME"] = str(_validity(validity_minutes))
    return fields


def _destinations(recipients: Sequence[str]) -> str:
    """Recipients as given, joined by ASCII commas; their format is the caller's to check."""
    if isinstance(recipients, str):
        raise ValidationError("收訊人須為號碼清單", "Recipients must be a list of numbers, not one string")
    cleaned = [recipient.strip() for recipient in recipients]
    if not cleaned or not all(cleaned):
        raise ValidationError("未輸入收訊人號碼", "No recipient number was given")
    return ",".join(cleaned)


def _send_time(send_at: datetime | None) -> str:
    """`yyyyMMddHHmmss` in Asia/Taipei, or empty for "now"; a naive datetime is ambiguous and refused."""
    if send_at is None:
        return ""
    if send_at.tzinfo is None or send_at.utcoffset() is None:
        raise ValidationError(
            "預約時間必須帶時區", "The scheduled time must carry a time zone (naive datetimes are refused)"
        )
    return send_at.astimezone(TAIPEI).strftime("%Y%m%d%H%M%S")


def _batch_id(batch_id: str, endpoint: str) -> str:
    cleaned = batch_id.strip()
    if not cleaned:
        raise ValidationError("未提供批次代碼", "No batch id was given", endpoint=endpoint)
    return cleaned


def _status_failure(status: int, endpoint: str, sending: bool) -> _Failed:
    """HTTP status other than 200: after a send a 5xx may hide a processed request; otherwise nothing happened."""
    if sending and status >= 500:
        lost = OutcomeUnknownError(_SEND_LOST_ZH, _SEND_LOST_EN, server_message=f"HTTP {status}", endpoint=endpoint)
        return _Failed(lost, retryable=False)
    error = UnavailableError(
        f"EVERY8D 回應 HTTP {status}，暫時無法使用",
        f"EVERY8D answered HTTP {status}; it is unavailable",
        endpoint=endpoint,
    )
    return _Failed(error, retryable=not sending and status >= 500)


def _decoded(response: requests.Response) -> str:
    """The body as text: the declared charset if any, else UTF-8 (never requests' slow charset guessing)."""
    match = _CHARSET.search(response.headers.get("Content-Type", ""))
    charset = match.group(1) if match else "utf-8"
    try:
        return response.content.decode(charset, errors="replace")
    except LookupError:
        return response.content.decode("utf-8", errors="replace")


def _never_sent(exc: requests.RequestException) -> bool:
    """True only when the request certainly never left: connect timeout, refused or unresolvable host, or
    a TLS certificate failure. A timeout or reset after the connection opened may hide a processed send."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    causes = list(_causes(exc))
    after_sending = (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError)
    if any(isinstance(cause, after_sending) for cause in causes):
        return False
    return any(
        isinstance(cause, (urllib3.exceptions.NewConnectionError, ssl.SSLCertVerificationError)) for cause in causes
    )


def _causes(exc: BaseException, depth: int = 0) -> Iterator[BaseException]:
    """The exception and what it wraps: requests and urllib3 nest causes in args, `.reason` and `__cause__`."""
    yield exc
    if depth > 8:
        return
    nested = [getattr(exc, "reason", None), exc.__cause__, exc.__context__, *exc.args]
    for inner in nested:
        if isinstance(inner, BaseException) and inner is not exc:
            yield from _causes(inner, depth + 1)


_NUMBER_LIST = re.compile(r"[0-9+,]*")


def _form_body(fields: Mapping[str, str]) -> bytes:
    """The form-encoded UTF-8 body. A list of numbers (DEST: digits, `+` and commas, 130 KB for 10,000
    recipients) is escaped by two C-level replaces (str.translate with a mapping to strings is a dict
    lookup per character); urlencode quotes it character by character, which was the largest cost of a
    big send after the network."""
    parts = []
    for name, value in fields.items():
        if _NUMBER_LIST.fullmatch(value):
            encoded = value.replace("+", "%2B").replace(",", "%2C")
        else:
            encoded = quote_plus(value, encoding="utf-8")
        parts.append(f"{quote_plus(name)}={encoded}")
    return "&".join(parts).encode("ascii")


def _transport_reason(exc: requests.RequestException) -> tuple[str, str]:
    """What went wrong on the wire, in words a non-engineer understands (zh-TW, English)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "連線逾時", "the connection timed out"
    if isinstance(exc, requests.exceptions.Timeout):
        return "等候回應逾時", "timed out waiting for an answer"
    if isinstance(exc, requests.exceptions.SSLError):
        return "安全連線（TLS）失敗", "the secure (TLS) connection failed"
    if _never_sent(exc):
        return "連線被拒或找不到主機", "connection refused or host not found"
    return "連線中斷", "the connection was cut"


def _exception_text(exc: BaseException, limit: int = 200) -> str:
    """A short reason: the requests exception's name and its innermost cause (`[Errno 111] Connection refused`)."""
    root = list(_causes(exc))[-1]
    text = f"{type(exc).__name__}: {root}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _normalized_base_url(base_url: str) -> str:
    """Keep the path prefix (`…/prepaid/API21/HTTP/`) and add a missing trailing slash."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("EVERY8D base URL must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("EVERY8D base URL must not carry a query, a fragment or credentials")
    url = base_url.strip()
    return url if url.endswith("/") else url + "/"


def _is_local_host(host: str) -> bool:
    """Loopback and private addresses (tests, the sandbox, an internal relay) may use plain http."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def _secret_forms(uid: str, pwd: str) -> tuple[str, ...]:
    """Credentials as they could appear in a text: raw and form-encoded. A one- or two-letter account name is
    not scrubbed (it would garble every message); the password always is."""
    secrets = {pwd, quote_plus(pwd)} if pwd else set()
    if len(uid) >= 3:
        secrets |= {uid, quote_plus(uid)}
    return tuple(sorted(secrets, key=len, reverse=True))
