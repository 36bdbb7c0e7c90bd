"""EVERY8D's negative answer codes, mapped per endpoint to a message for people and to an error class.

EVERY8D reuses the same negative number for different things on different endpoints, and documents only a
few of them. So the table is per endpoint with a shared fallback, and a code nobody documented still ends
as a clear `ProviderError` ("EVERY8D error code N") carrying the server's own text, never as a crash.

Retry rules: authentication codes (-100, -101, -300) are `CredentialError` and never retried (more than
ten failed logins lock the account); -99 is retried on calls that are safe to repeat (status, credit,
cancel), never on a send; -8 on cancel is retried by the cancel service later, and said so in Slack.
Sources: delta notes §5 (official 2017/2021 texts, the SOAP document, minchao/go-every8d).
"""

from __future__ import annotations

from dataclasses import dataclass

from every8d.endpoints import (
    CANCEL_MMS,
    CANCEL_SMS,
    CREDIT,
    REPLIES,
    SEND_MMS,
    SEND_PARAM,
    SEND_SMS,
    STATUS_MMS,
    STATUS_SMS,
)
from every8d.errors import CredentialError, Every8dError, ProviderError


@dataclass(frozen=True, slots=True)
class CodeMeaning:
    """What one code means on one endpoint. `transient`: worth retrying on calls that are safe to repeat."""

    zh: str
    en: str
    error: type[Every8dError] = ProviderError
    transient: bool = False


_NO_ACCOUNT = CodeMeaning(
    "EVERY8D 帳號或密碼錯誤（查無此帳號），請管理員檢查 EVERY8D_UID 設定（不會自動重試，以免帳號被鎖）",
    "The EVERY8D account or password is wrong (no such account); an admin must fix EVERY8D_UID "
    "(not retried, so the account is not locked)",
    CredentialError,
)
_WRONG_LOGIN = CodeMeaning(
    "EVERY8D 帳號或密碼錯誤（密碼不符），請管理員檢查 EVERY8D_PWD 設定（不會自動重試，以免帳號被鎖）",
    "The EVERY8D account or password is wrong (wrong password); an admin must fix EVERY8D_PWD "
    "(not retried, so the account is not locked)",
    CredentialError,
)

_SHARED: dict[int, CodeMeaning] = {
    -99: CodeMeaning(
        "EVERY8D 主機端發生不明錯誤，請稍後再試；持續發生請聯絡 EVERY8D",
        "EVERY8D had an internal error; try again later and contact EVERY8D if it persists",
        transient=True,
    ),
    -100: _NO_ACCOUNT,
    -101: _WRONG_LOGIN,
    -300: CodeMeaning(
        "EVERY8D 帳號或密碼未設定，請管理員檢查設定（不會自動重試）",
        "The EVERY8D account or password is empty; an admin must fix the settings (not retried)",
        CredentialError,
    ),
}

_SEND: dict[int, CodeMeaning] = {
    -99: CodeMeaning(
        "EVERY8D 主機端發生不明錯誤，簡訊未送出；請稍後再試，持續發生請聯絡 EVERY8D",
        "EVERY8D had an internal error; nothing was sent. Try again later and contact EVERY8D if it persists",
        transient=True,
    ),
    -98: CodeMeaning(
        "所有號碼在 24 小時內都已收過相同內容，EVERY8D 全部略過，簡訊未送出",
        "Every number already got this same text within 24 hours; EVERY8D filtered them all and sent nothing",
    ),
    -41: CodeMeaning("未提供收訊人號碼，簡訊未送出", "No recipient number was given; nothing was sent"),
    -27: CodeMeaning("未輸入收訊人號碼，簡訊未送出", "No recipient number was given; nothing was sent"),
    -306: CodeMeaning("收訊人號碼格式錯誤，簡訊未送出", "A recipient number is malformed; nothing was sent"),
    -24: CodeMeaning("簡訊內容不得為空，簡訊未送出", "The message text is empty; nothing was sent"),
    -4: CodeMeaning(
        "預約時間格式錯誤或已過期，簡訊未送出", "The scheduled time is malformed or already past; nothing was sent"
    ),
    -303: CodeMeaning("多媒體簡訊必須有主旨，未送出", "An MMS needs a subject; nothing was sent"),
    -304: CodeMeaning("多媒體簡訊沒有附上圖片，未送出", "The MMS has no image attached; nothing was sent"),
    -305: CodeMeaning("多媒體簡訊的圖片類型（TYPE）未填，未送出", "The MMS image type (TYPE) is empty; nothing was sent"),
    -314: CodeMeaning(
        "多媒體簡訊（圖片加文字）超過 EVERY8D 的大小上限，未送出",
        "The MMS (image plus text) is larger than EVERY8D allows; nothing was sent",
    ),
}

_UNKNOWN_BATCH: dict[int, CodeMeaning] = {
    -25: CodeMeaning("EVERY8D 查無此批次代碼", "EVERY8D knows no batch with this id"),
}

#: eraseBooking: -3 and -4 mean there is nothing (left) to cancel; -8 is worth trying again later.
_CANCEL: dict[int, CodeMeaning] = {
    **_UNKNOWN_BATCH,
    -3: CodeMeaning("EVERY8D 找不到這個預約批次，無法取消", "EVERY8D found no scheduled batch with this id to cancel"),
    -4: CodeMeaning(
        "這批簡訊已經發送或已被刪除，無法取消", "This batch was already sent or deleted; there is nothing to cancel"
    ),
    -8: CodeMeaning(
        "EVERY8D 暫時無法取消預約，稍後會自動再試", "EVERY8D cannot cancel right now; it will be tried again later",
        transient=True,
    ),
}

#: Cancel codes meaning "nothing to cancel": the batch is not (or no longer) waiting on EVERY8D.
NOTHING_TO_CANCEL_CODES = frozenset({-3, -4})

_PER_ENDPOINT: dict[str, dict[int, CodeMeaning]] = {
    SEND_SMS: _SEND,
    SEND_MMS: _SEND,
    SEND_PARAM: _SEND,
    STATUS_SMS: _UNKNOWN_BATCH,
    STATUS_MMS: _UNKNOWN_BATCH,
    CANCEL_SMS: _CANCEL,
    CANCEL_MMS: _CANCEL,
    REPLIES: _UNKNOWN_BATCH,
    CREDIT: {},
}


def documented_codes(endpoint: str) -> list[int]:
    """Every code with a meaning on `endpoint` (its own and the shared ones), for docs, tests, the sandbox."""
    return sorted({*_PER_ENDPOINT.get(endpoint, {}), *_SHARED})


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
