"""Checks on an SMS or MMS before it is sent, so every problem shows in the form, not as an EVERY8D error.

EVERY8D refuses (or silently mangles) what breaks its limits, and by then the approver has already
approved. The image type is judged from the bytes, not the file name: a Slack download without a valid
token is an HTML sign-in page, and renamed files are common. All limits come from `Limits`, which follow the
account's MMS terms (EVERY8D_MMS_TERMS: 2021 by default, or 2017; see every8d/limits.py).
"""

from __future__ import annotations

import math
import unicodedata

from every8d.limits import DEFAULT_LIMITS, KB, Limits, mms_size
from every8d.pricing import count_chars
from every8d.problems import Problem

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
_ALLOWED_CONTROLS = frozenset("\n\r\t")
_MAX_CONTROLS_LISTED = 5


def sniff_image_type(data: bytes) -> str | None:
    """The image type from the file's first bytes: "jpg", "png" or "gif"; None for anything else
    (an HTML sign-in page or a zip renamed .png is not an image, whatever its name says)."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


def validate_sms(message: str, subject: str = "", limits: Limits = DEFAULT_LIMITS) -> list[Problem]:
    """Every problem with an SMS's text and (optional) subject, all at once; empty when it can be sent.

    Text past `limits.sms_text_max` is refused: it is almost surely a paste gone wrong, and would cost a
    fortune. Control characters (other than line breaks and tabs) are invisible and phones show them as
    boxes, so they are refused by name.
    """
    problems: list[Problem] = []
    if not message.strip():
        problems.append(Problem("message", "請輸入簡訊內容。", "Enter the message text."))
    elif count_chars(message) > limits.sms_text_max:
        problems.append(_too_long_message(count_chars(message), limits.sms_text_max))
    problems.extend(_control_problems("message", message))
    problems.extend(_control_problems("subject", subject))
    return problems


def validate_mms(
    subject: str, message: str, image: bytes | None, limits: Limits = DEFAULT_LIMITS
) -> list[Problem]:
    """Every problem with an MMS, all at once, for the fields "subject", "message" and "image".

    A subject is required, at most `mms_subject_max_cjk` characters when it has Chinese (any non-ASCII
    character) and `mms_subject_max_ascii` when it is plain ASCII (15/39 under the 2021 terms, 15/95 under
    2017); text up to 4000 characters; an image of an allowed type judged by its bytes (2021: jpg/png;
    2017: also gif); raw image bytes plus UTF-8 text at most `mms_total_max_bytes` (300 KB / 50 KB).
    """
    problems = _subject_problems(subject, limits)
    problems.extend(_mms_message_problems(message, limits))
    problems.extend(_image_problems(image, message, limits))
    return problems


def _subject_problems(subject: str, limits: Limits) -> list[Problem]:
    if not subject.strip():
        return [
            Problem(
                "subject", "多媒體簡訊需要主旨，請填寫主旨。", "An MMS needs a subject; please enter one."
            )
        ]
    problems = _control_problems("subject", subject)
    length = len(subject)
    if subject.isascii():
        if length > limits.mms_subject_max_ascii:
            problems.append(
                Problem(
                    "subject",
                    f"主旨有 {length} 個字元，英數主旨最多 {limits.mms_subject_max_ascii} 個，請縮短。",
                    f"The subject has {length} characters; at most {limits.mms_subject_max_ascii} "
                    "for a subject in English letters and digits. Please shorten it.",
                )
            )
    elif length > limits.mms_subject_max_cjk:
        problems.append(
            Problem(
                "subject",
                f"主旨有 {length} 個字，含中文的主旨最多 {limits.mms_subject_max_cjk} 個字，請縮短。",
                f"The subject has {length} characters; a subject with Chinese can have at most "
                f"{limits.mms_subject_max_cjk}. Please shorten it.",
            )
        )
    return problems


def _mms_message_problems(message: str, limits: Limits) -> list[Problem]:
    if not message.strip():
        return [Problem("message", "請輸入多媒體簡訊的文字內容。", "Enter the MMS text.")]
    problems = _control_problems("message", message)
    chars = count_chars(message)
    if chars > limits.mms_text_max:
        problems.append(_too_long_message(chars, limits.mms_text_max))
    return problems


def _image_problems(image: bytes | None, message: str, limits: Limits) -> list[Problem]:
    labels = list(dict.fromkeys(_label(t) for t in limits.mms_image_types))
    allowed, allowed_en = "、".join(labels), ", ".join(labels)
    if not image:
        return [Problem("image", f"請附上一張圖片（{allowed}）。", f"Attach an image ({allowed_en}).")]
    kind = sniff_image_type(image)
    if kind is not None and _label(kind) not in labels:
        return [
            Problem(
                "image",
                f"這是 {_label(kind)} 圖片，但依帳號的多媒體簡訊條件（{limits.mms_terms} 年版）只接受 {allowed}，"
                f"請轉成 {allowed} 後再上傳。",
                f"This is a {_label(kind)} image, but the account's MMS terms ({limits.mms_terms}) accept only "
                f"{allowed_en}. Convert it to {allowed_en} and attach it again.",
            )
        ]
    if kind is None:
        return [
            Problem(
                "image",
                f"這個檔案不是 {allowed} 圖片（依檔案內容判斷，不看副檔名），請換一張圖片。",
                f"This file is not a {allowed_en} image (judged by its content, not its name). "
                "Please attach another image.",
            )
        ]
    total = mms_size(image, message)
    if total <= limits.mms_total_max_bytes:
        return []
    size, cap = _kb(total), _kb(limits.mms_total_max_bytes)
    return [
        Problem(
            "image",
            f"圖片加文字共 {size} KB，超過上限 {cap} KB，請縮小圖片或減少文字。",
            f"Image and text come to {size} KB, over the {cap} KB limit. "
            "Use a smaller image or shorter text.",
        )
    ]


def _too_long_message(chars: int, cap: int) -> Problem:
    return Problem(
        "message",
        f"內容有 {chars:,} 個字，最多 {cap:,} 個字，請縮短。",
        f"The text has {chars:,} characters; at most {cap:,}. Please shorten it.",
    )


def _control_problems(field: str, text: str) -> list[Problem]:
    """One problem naming the invisible control characters found (as U+XXXX), if any."""
    found = sorted({ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS})
    if not found:
        return []
    names = ", ".join(f"U+{ord(ch):04X}" for ch in found[:_MAX_CONTROLS_LISTED])
    if len(found) > _MAX_CONTROLS_LISTED:
        names += " …"
    where_zh = "主旨" if field == "subject" else "內容"
    where_en = "subject" if field == "subject" else "text"
    return [
        Problem(
            field,
            f"{where_zh}含有看不見的控制字元（{names}），手機無法顯示，請刪除後再送出。",
            f"The {where_en} contains invisible control characters ({names}) that phones cannot show; "
            "remove them and submit again.",
        )
    ]


def _label(kind: str) -> str:
    """jpg and jpeg are one type to people and to EVERY8D."""
    return "JPG" if kind in ("jpg", "jpeg") else kind.upper()


def _kb(size: int) -> str:
    """Size in KB (1000 bytes, see every8d/limits.py) with one decimal, rounded up so an over-limit size
    never reads as the limit."""
    kb = math.ceil(size * 10 / KB) / 10
    return f"{int(kb)}" if kb == int(kb) else f"{kb:.1f}"
