"""Typed errors of the EVERY8D gateway.

Every failure of a call ends as one of these, with a message a non-engineer understands in zh-TW and
English, and EVERY8D's own code and text kept for support. None of them ever carries the password:
messages are built from codes and server text only, never from the request.

Which one tells the caller what it may do next:
- `CredentialError`: wrong or missing account; never retry (EVERY8D locks accounts after failed logins).
- `ProviderError`: EVERY8D refused the request with a negative code; the request was not processed.
- `UnavailableError`: EVERY8D could not be reached or answered garbage; nothing was processed
  (for status, credit and cancel calls this is what retries are for).
- `OutcomeUnknownError`: a send that may have reached EVERY8D but whose answer was lost; the caller
  must reconcile, never send again blindly.
- `UnsupportedEndpointError`: the account's platform has no such endpoint (an optional 2021 endpoint
  answered 404 or something that is not its format); nothing was processed, stop calling it.
- `ValidationError`: the request was refused locally before any call (bad number, MMS limits, ...).
"""

from __future__ import annotations


class Every8dError(Exception):
    """Base class. `zh` and `en` are for people; `code` and `server_message` are for support."""

    def __init__(
        self,
        zh: str,
        en: str,
        *,
        code: int | None = None,
        server_message: str = "",
        endpoint: str = "",
    ) -> None:
        self.zh = zh
        self.en = en
        self.code = code
        self.server_message = server_message
        self.endpoint = endpoint
        super().__init__(self.describe("en"))

    def support_note(self) -> str:
        """EVERY8D's own code and message, in small print: `（EVERY8D -100：帳號或密碼錯誤）`."""
        if self.code is None and not self.server_message:
            return ""
        parts = "EVERY8D"
        if self.code is not None:
            parts += f" {self.code}"
        if self.server_message:
            parts += f"：{self.server_message}"
        return f"（{parts}）"

    def describe(self, language: str = "both") -> str:
        """The message for people, with the support note at the end."""
        if language == "zh-TW":
            text = self.zh
        elif language == "en":
            text = self.en
        else:
            text = f"{self.zh} / {self.en}"
        note = self.support_note()
        return f"{text} {note}".strip()


class CredentialError(Every8dError):
    """The account or password is wrong or missing. Never retried."""


class ProviderError(Every8dError):
    """EVERY8D answered with a negative code: the request was not processed."""


class UnavailableError(Every8dError):
    """EVERY8D could not be reached, timed out before the request was sent, or answered something that
    is not an EVERY8D answer (HTML error page, HTTP 5xx, empty where a value was due). Nothing happened."""


class OutcomeUnknownError(Every8dError):
    """A send may have reached EVERY8D but its answer was lost (timeout after sending, connection reset,
    unreadable answer). Reconcile; do not send again blindly."""


class ValidationError(Every8dError):
    """Refused locally, before any call: the request breaks a rule of the API."""


class InsecureTransportError(Every8dError):
    """MMS calls are HTTPS-only: refused to send one over plain HTTP to a public host."""


class UnsupportedEndpointError(Every8dError):
    """An optional endpoint of the 2021 revision (SendParamSMS, getReplyMessage) does not exist on this
    account's platform: it answered HTTP 404, or a body that is not that endpoint's format. Nothing was
    processed; the caller stops using the endpoint (and, for a send, falls back to sendSMS)."""
