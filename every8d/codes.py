"""EVERY8D's negative answer codes, mapped per endpoint to a message for people and to an error class.

EVERY8D reuses the same negative number for different things on different endpoints, and documents only a
few of them. So the table is per endpoint with a shared fallback, and a code nobody documented still ends
as a clear `ProviderError` ("EVERY8D error code N") carrying the server's own text, never as a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

from every8d.errors import CredentialError, Every8dError, ProviderError

# Endpoint paths, relative to the configured base URL (e.g. `https://oms.every8d.com/API21/HTTP/`).
SEND_SMS = "sendSMS.ashx"
SEND_MMS = "MMS/sendMMS.ashx"
STATUS_SMS = "getDeliveryStatus.ashx"
STATUS_MMS = "MMS/getDeliveryStatus.ashx"
CREDIT = "getCredit.ashx"
CANCEL_SMS = "eraseBooking.ashx"
CANCEL_MMS = "MMS/eraseBooking.ashx"
# 2021 revision (v2.1.x): optional on an account's platform; a 404 means "not supported here".
SEND_PARAM = "SendParamSMS.ashx"
REPLIES = "getReplyMessage.ashx"
OPTIONAL_ENDPOINTS = frozenset({SEND_PARAM, REPLIES})

SEND_ENDPOINTS = frozenset({SEND_SMS, SEND_MMS, SEND_PARAM})
MMS_ENDPOINTS = frozenset({SEND_MMS, STATUS_MMS, CANCEL_MMS})
ALL_ENDPOINTS = frozenset(
    {SEND_SMS, SEND_MMS, STATUS_SMS, STATUS_MMS, CREDIT, CANCEL_SMS, CANCEL_MMS, SEND_PARAM, REPLIES}
)


@dataclass(frozen=True, slots=True)
class CodeMeaning:
    """What one code means on one endpoint. `transient`: worth retrying on calls that are safe to repeat."""

    zh: str
    en: str
    error: type[Every8dError] = ProviderError
    transient: bool = False


_WRONG_LOGIN = CodeMeaning(
    "EVERY8D 帳號或密碼錯誤，請管理員檢查設定（不會自動重試，以免帳號被鎖）",
    "The EVERY8D account or password is wrong; an admin must fix the settings "
    "(not retried, so the account is not locked)",
    CredentialError,
)

_SHARED: dict[int, CodeMeaning] = {
    -99: CodeMeaning(
        "EVERY8D 主機端發生不明錯誤，請稍後再試；持續發生請聯絡 EVERY8D",
        "EVERY8D had an internal error; try again later and contact EVERY8D if it persists",
        transient=True,
    ),
    -100: _WRONG_LOGIN,
    -101: _WRONG_LOGIN,
    -300: CodeMeaning(
        "EVERY8D 帳號或密碼未設定，請管理員檢查設定",
        "The EVERY8D account or password is empty; an admin must fix the settings",
        CredentialError,
    ),
}

_SEND: dict[int, CodeMeaning] = {
    -99: CodeMeaning(
        "EVERY8D 主機端發生不明錯誤，簡訊未送出；請稍後再試，持續發生請聯絡 EVERY8D",
        "EVERY8D had an internal error; nothing was sent. Try again later and contact EVERY8D if it persists",
        transient=True,
    ),
    -27: CodeMeaning("未輸入收訊人號碼，簡訊未送出", "No recipient number was given; nothing was sent"),
    -306: CodeMeaning("收訊人號碼格式錯誤，簡訊未送出", "A recipient number is malformed; nothing was sent"),
    -24: CodeMeaning("簡訊內容不得為空，簡訊未送出", "The message text is empty; nothing was sent"),
    -4: CodeMeaning(
        "預約時間格式錯誤或已過期，簡訊未送出", "The scheduled time is malformed or already past; nothing was sent"
    ),
}

_UNKNOWN_BATCH: dict[int, CodeMeaning] = {
    -25: CodeMeaning("EVERY8D 查無此批次代碼", "EVERY8D knows no batch with this id"),
}

_PER_ENDPOINT: dict[str, dict[int, CodeMeaning]] = {
    SEND_SMS: _SEND,
    SEND_MMS: _SEND,
    SEND_PARAM: _SEND,
    STATUS_SMS: _UNKNOWN_BATCH,
    STATUS_MMS: _UNKNOWN_BATCH,
    CANCEL_SMS: _UNKNOWN_BATCH,
    CANCEL_MMS: _UNKNOWN_BATCH,
    REPLIES: _UNKNOWN_BATCH,
    CREDIT: {},
}


def meaning_for(endpoint: str, code: int) -> CodeMeaning | None:
    """The endpoint's own meaning of `code`, else the shared one, else None (undocumented code)."""
    specific = _PER_ENDPOINT.get(endpoint, {}).get(code)
    return specific if specific is not None else _SHARED.get(code)


def is_transient(endpoint: str, code: int | None) -> bool:
    """True when a repeatable call (status, credit, cancel) answered with a code worth retrying."""
    if code is None:
        return False
    meaning = meaning_for(endpoint, code)
    return meaning is not None and meaning.transient


def error_for(endpoint: str, code: int, server_message: str = "") -> Every8dError:
    """The typed error for a negative answer, keeping EVERY8D's own text for support."""
    meaning = meaning_for(endpoint, code)
    if meaning is None:
        return ProviderError(
            f"EVERY8D 錯誤代碼 {code}",
            f"EVERY8D error code {code}",
            code=code,
            server_message=server_message,
            endpoint=endpoint,
        )
    return meaning.error(meaning.zh, meaning.en, code=code, server_message=server_message, endpoint=endpoint)
