"""The compose modal and its preview step, and reading a submitted compose view back into plain values.

Block and action ids here are the contract with handlers/submissions.py and with the console, which fills
these fields by name: `recipients`, `message`, `subject`, `image`, `send_at`, `validity`, `kind`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ContextBlock,
    DateTimePickerElement,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from every8d.limits import DEFAULT_LIMITS, KB, Limits
from every8d.pricing import Quote
from every8d.problems import Problem
from handlers import cards, repeat_fields
from handlers.texts import Voice, escape, points
from services.budgets import BudgetVerdict
from services.compose import Preview, skipped_rows_text, unregistered_texts

_log = logging.getLogger("every8d_bot.handlers")

COMPOSE_CALLBACK = "sms_compose"
PREVIEW_CALLBACK = "sms_preview"
KIND_ACTION = "compose_kind"
#: The template chooser (shown only when templates exist): choosing one refills the message.
TEMPLATE_BLOCK = "template"
TEMPLATE_ACTION = "compose_template"
#: Slack offers at most this many options in a static select.
MAX_TEMPLATE_OPTIONS = 100
VALUE = "value"  # action_id of every input element

#: The message field's limit (Slack's for a plain-text input).
MESSAGE_MAX_CHARS = 3000

FIELDS = ("kind", "recipients", "audience", "message", "subject", "image", "send_at", "validity")

#: The preview's quiet-hours choice: block id and option values.
QUIET_BLOCK = "quiet"
QUIET_SCHEDULE = "schedule"
QUIET_OVERRIDE = "override"


@dataclass(frozen=True)
class ComposeValues:
    """What the person typed, before any checking."""

    kind: str
    recipients: str
    message: str
    subject: str
    file_ids: tuple[str, ...]
    send_at: datetime | None
    validity: int | None
    audience_file_ids: tuple[str, ...] = ()
    #: Values that could not be read at all (each under its field), found before any other check.
    problems: tuple[Problem, ...] = ()


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text[:150], emoji=True)


def update_view(client: WebClient, *, view_id: str, view: dict, hash: str | None = None) -> bool:
    """`views.update` after the ack. Slack answers `hash_conflict` when the window changed meanwhile (two
    redraws raced): the redraw is retried once against the current window. Any other refusal is logged, not
    raised: the ack already went out and the person still has the window as it was."""
    try:
        client.views_update(view_id=view_id, view=view, **({"hash": hash} if hash else {}))
        return True
    except SlackApiError as exc:
        error = str(exc.response.get("error", "")) if exc.response is not None else ""
        if error == "hash_conflict" and hash:
            return update_view(client, view_id=view_id, view=view)
        _log.info("a window was not redrawn: %s", error or type(exc).__name__)
        return False


def notice_view(voice: Voice, text: str) -> dict:
    """A small window that only says something (where a form cannot help)."""
    title = voice.t("EVERY8D 簡訊", "EVERY8D SMS")
    return View(type="modal", title=_plain(title[:24]), close=_plain(voice.t("關閉", "Close")),
                blocks=[SectionBlock(text=MarkdownTextObject(text=text[:2900]))]).to_dict()


def compose_view(
    voice: Voice,
    *,
    channel_id: str,
    kind: str = "sms",
    initial: dict[str, Any] | None = None,
    templates: Sequence[str] = (),
    message_action: str = VALUE,
    limits: Limits = DEFAULT_LIMITS,
) -> dict:
    """The compose modal. MMS adds the image upload and makes the subject required. `templates` (names)
    adds a chooser above the message. Slack keeps what was typed in a field across redraws unless its
    action_id changes, so a redraw that must show a template's text passes a new `message_action`.
    `limits`: the account's terms (EVERY8D_MMS_TERMS), which the MMS hints and accepted file types follow."""
    initial = initial or {}
    mms = kind == "mms"
    sms_option = Option(value="sms", text=voice.t("簡訊", "SMS"))
    mms_option = Option(value="mms", text=voice.t("多媒體簡訊", "MMS"))
    blocks: list[dict] = [
        InputBlock(
            block_id="kind",
            label=_plain(voice.t("類型", "Type")),
            dispatch_action=True,
            element=RadioButtonsElement(
                action_id=KIND_ACTION,
                options=[sms_option, mms_option],
                initial_option=mms_option if mms else sms_option,
            ),
        ).to_dict(),
        InputBlock(
            block_id="recipients",
            label=_plain(voice.t("收件人", "Recipients")),
            optional=True,  # a CSV audience alone is enough; "enter at least one number" is checked on submit
            hint=_plain(voice.t("手機號碼、聯絡人或群組名稱，以逗號、空白或換行分隔",
                                "mobile numbers, contact or group names, separated by commas, spaces or lines")),
            element=PlainTextInputElement(
                action_id=VALUE, multiline=True, initial_value=initial.get("recipients_text") or None,
                placeholder=_plain("0912-345-678, +886922333444"),
            ),
        ).to_dict(),
        audience_block(voice),
        *_template_blocks(voice, templates, initial.get("template")),
        InputBlock(
            block_id="message",
            label=_plain(voice.t("內容", "Message")),
            element=PlainTextInputElement(
                action_id=message_action, multiline=True, max_length=MESSAGE_MAX_CHARS,
                initial_value=initial.get("message") or None
            ),
        ).to_dict(),
        InputBlock(
            block_id="subject",
            label=_plain(voice.t("主旨", "Subject")),
            optional=not mms,
            hint=_plain(
                voice.t(f"多媒體簡訊主旨：中文最多 {limits.mms_subject_max_cjk} 字，純英數最多 {limits.mms_subject_max_ascii} 字",
                        f"MMS subject: {limits.mms_subject_max_cjk} characters with Chinese, "
                        f"{limits.mms_subject_max_ascii} if ASCII")
                if mms
                else voice.t("僅供內部註記，不會傳到手機", "an internal note, not sent to the phone")
            ),
            element=PlainTextInputElement(action_id=VALUE, max_length=100, initial_value=initial.get("subject") or None),
        ).to_dict(),
    ]
    if mms:
        blocks.append(
            {
                "type": "input",
                "block_id": "image",
                "label": {"type": "plain_text", "text": voice.t("圖片", "Image")},
                "hint": {
                    "type": "plain_text",
                    "text": voice.t(
                        f"{_image_types(limits, '、', ' 或 ')}；圖片加文字最多 {limits.mms_total_max_bytes // KB} KB"
                        + _mms_price_hint(limits, zh=True),
                        f"{_image_types(limits, ', ', ' or ')}; image plus text at most "
                        f"{limits.mms_total_max_bytes // KB} KB" + _mms_price_hint(limits, zh=False),
                    ),
                },
                "element": {
                    "type": "file_input",
                    "action_id": VALUE,
                    "filetypes": list(limits.mms_image_types),
                    "max_files": 1,
                },
            }
        )
    blocks.extend(
        [
            InputBlock(
                block_id="send_at",
                label=_plain(voice.t("預約時間（留空為立即發送）", "Scheduled time (empty: send now)")),
                optional=True,
                element=DateTimePickerElement(action_id=VALUE),
            ).to_dict(),
            *repeat_fields.blocks(voice),
            InputBlock(
                block_id="validity",
                label=_plain(voice.t("有效期限（分鐘）", "Validity (minutes)")),
                optional=True,
                hint=_plain(voice.t("預設 1440 分鐘（一天）", "default 1440 minutes (one day)")),
                element=NumberInputElement(
                    action_id=VALUE, is_decimal_allowed=False, min_value="1",
                    max_value=str(DEFAULT_LIMITS.max_validity_minutes),
                ),
            ).to_dict(),
        ]
    )
    if voice.sandbox:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=voice.t("🧪 沙盒模式：不會真的發送", "sandbox: nothing is delivered"))]).to_dict())
    view = View(
        type="modal",
        callback_id=COMPOSE_CALLBACK,
        title=_plain(voice.t("發送簡訊", "Send SMS") if voice.language != "both" else "發送簡訊 Send SMS"),
        submit=_plain(voice.t("預覽費用", "Preview cost") if voice.language != "both" else "預覽 Preview"),
        close=_plain(voice.t("取消", "Cancel") if voice.language != "both" else "取消 Cancel"),
        private_metadata=json.dumps({"channel_id": channel_id}),
        blocks=blocks,
    )
    return view.to_dict()


def audience_block(voice: Voice) -> dict:
    """The optional CSV audience upload: a phone column plus any variables the message uses."""
    return {
        "type": "input",
        "block_id": "audience",
        "optional": True,
        "label": {"type": "plain_text", "text": voice.t("收件人名單 CSV（選填）", "Recipients CSV (optional)")},
        "hint": {"type": "plain_text", "text": voice.t(
            "第一列為標題：電話（或手機、phone）欄必填，其他欄位可在內容中以 {欄位名稱} 個人化，例如 {name}",
            "a header row with a phone column; any other column personalises the message as {column}, e.g. {name}")},
        "element": {"type": "file_input", "action_id": VALUE, "filetypes": ["csv", "txt"], "max_files": 1},
    }


def _template_blocks(voice: Voice, names: Sequence[str], chosen: str | None) -> list[dict]:
    """The template chooser (block `template`), or nothing when there are no templates."""
    if not names:
        return []
    options = [Option(value=name[:75], text=name[:75]) for name in names[:MAX_TEMPLATE_OPTIONS]]
    initial = next((o for o in options if o.value == chosen), None)
    return [InputBlock(
        block_id=TEMPLATE_BLOCK,
        label=_plain(voice.t("範本", "Template")),
        optional=True,
        dispatch_action=True,
        hint=_plain(voice.t("選擇後會填入內容，可再修改", "fills in the message; you can still edit it")),
        element=StaticSelectElement(action_id=TEMPLATE_ACTION, options=options, initial_option=initial,
                                    placeholder=_plain(voice.t("選擇範本", "Choose a template"))),
    ).to_dict()]


def read_compose(state_values: Any, tz) -> ComposeValues:
    """Read a compose view's `state.values`; missing or empty inputs become empty values. A value Slack
    would never send (a time that is not epoch seconds, a validity that is not a whole number, a field of
    the wrong type) is not trusted: it becomes a problem under its field, never an exception."""
    state = state_values if isinstance(state_values, dict) else {}

    def value(block: str) -> dict[str, Any]:
        entry = state.get(block)
        if not isinstance(entry, dict):
            return {}
        # The message's action_id changes when a template refills it (see compose_view).
        found = entry.get(VALUE) or entry.get(KIND_ACTION) or next(iter(entry.values()), {})
        return found if isinstance(found, dict) else {}

    def text(block: str) -> str:
        typed = value(block).get("value")
        return typed if isinstance(typed, str) else ""

    problems: list[Problem] = []
    option = value("kind").get("selected_option")
    kind = option.get("value") if isinstance(option, dict) else None
    send_at = _read_time(value("send_at").get("selected_date_time"), tz, problems)
    validity = _read_validity(value("validity").get("value"), problems)
    return ComposeValues(
        kind=kind if isinstance(kind, str) else "sms",
        recipients=text("recipients"),
        message=text("message"),
        subject=text("subject").strip(),
        file_ids=_file_ids(value("image").get("files")),
        send_at=send_at,
        validity=validity,
        audience_file_ids=_file_ids(value("audience").get("files")),
        problems=tuple(problems),
    )


def _image_types(limits: Limits, comma: str, last: str) -> str:
    """The accepted image types in words: "jpg、png 或 gif" (jpeg is jpg to people)."""
    kinds = [k for k in dict.fromkeys("jpg" if k == "jpeg" else k for k in limits.mms_image_types)]
    return kinds[0] if len(kinds) == 1 else comma.join(kinds[:-1]) + last + kinds[-1]


def _mms_price_hint(limits: Limits, *, zh: bool) -> str:
    """The MMS price by size, for the upload hint: "；50 KB 以下每則 3 點，以上 5 點"."""
    if limits.mms_flat_price:
        each = limits.mms_points(0)
        return f"；每則 {each:g} 點" if zh else f"; {each:g} points each"
    (bound, low), *rest = limits.mms_price_bands
    high = rest[-1][1] if rest else low
    return (f"；{bound // KB} KB 以下每則 {low:g} 點，以上 {high:g} 點" if zh
            else f"; {low:g} points each up to {bound // KB} KB, {high:g} above")


def mms_size_line(voice: Voice, quote: Quote, limits: Limits) -> str:
    """The MMS preview's size and price line: what the price band depends on, against the limit."""
    size = f"{quote.size_bytes / KB:,.1f}"
    cap = limits.mms_total_max_bytes // KB
    each = f"{quote.points_per_taiwan:g}"
    return voice.t(f"*大小* 圖片加文字 {size} KB（上限 {cap} KB）· 每則 {each} 點（{limits.mms_terms} 年版條件）",
                   f"*Size* image plus text {size} KB (limit {cap} KB) · {each} points each "
                   f"({limits.mms_terms} terms)")


def _file_ids(files: Any) -> tuple[str, ...]:
    if not isinstance(files, list):
        return ()
    return tuple(f["id"] for f in files if isinstance(f, dict) and isinstance(f.get("id"), str))


def _read_time(when: Any, tz, problems: list[Problem]) -> datetime | None:
    """The date-time picker's epoch seconds (Slack sends an integer); None when empty."""
    if when is None or when == "":
        return None
    seconds: int | None = None
    if isinstance(when, int) and not isinstance(when, bool):
        seconds = when
    elif isinstance(when, float) and when.is_integer():
        seconds = int(when)
    elif isinstance(when, str) and when.isascii() and when.isdigit() and len(when) <= 12:
        seconds = int(when)
    if seconds is not None:
        try:
            return datetime.fromtimestamp(seconds, tz=tz)
        except (OverflowError, OSError, ValueError):
            pass
    problems.append(Problem("send_at", "預約時間無法辨識，請用日期時間選擇器重新選擇。",
                            "The scheduled time could not be read; pick it again with the date and time picker."))
    return None


def _read_validity(raw: Any, problems: list[Problem]) -> int | None:
    """The validity field (Slack sends the number as text); None when empty. Its range is checked with
    everything else (services/compose.py); here only that it is a whole number."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        digits = raw.strip()
        # More digits than any valid validity has: out of range, without building a huge int.
        return int(digits) if len(digits) <= 9 else DEFAULT_LIMITS.max_validity_minutes + 1
    top = DEFAULT_LIMITS.max_validity_minutes
    problems.append(Problem("validity", f"有效期限需為 1 到 {top} 之間的整數（分鐘）。",
                            f"Validity must be a whole number of minutes from 1 to {top}."))
    return None


#: Slack's own limit on a view's private_metadata: a longer one was not written by this app.
MAX_METADATA_CHARS = 3000
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9_]{1,40}$")


def read_metadata(view: Any, *, text_keys: Sequence[str] = ("channel_id",), int_keys: Sequence[str] = ()
                  ) -> dict[str, Any] | None:
    """A view's private_metadata as this app wrote it (a JSON object whose `text_keys` are text and whose
    `int_keys` are positive integers, a `channel_id` a channel id or empty), or None when it is anything
    else: the view was not ours, or was tampered with. The caller then says so in plain words."""
    raw = view.get("private_metadata") if isinstance(view, dict) else None
    if not isinstance(raw, str) or not raw or len(raw) > MAX_METADATA_CHARS:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    for key in text_keys:
        if not isinstance(data.get(key, ""), str):
            return None
    for key in int_keys:
        number = data.get(key)
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number <= cards.MAX_ROW_ID:
            return None
    channel = data.get("channel_id", "")
    if channel and not _CHANNEL_ID.match(channel):
        return None
    return data


def damaged_view(voice: Voice) -> dict:
    """What a modal becomes when its submission cannot be trusted (unreadable private_metadata)."""
    text = voice.t("這個視窗的資料無法辨識，沒有送出任何東西。請關閉後重新開啟 /sms。",
                   "This window's data could not be read; nothing was submitted. Close it and open /sms again.")
    blocks = [SectionBlock(text=MarkdownTextObject(text=text)).to_dict(),
              *[b.to_dict() for b in cards.sandbox_block(voice)]]
    return View(type="modal", title=_plain("⚠️ 無法送出 Not sent"), close=_plain("關閉 Close"),
                blocks=blocks).to_dict()


def preview_view(
    voice: Voice, preview: Preview, *, draft_id: str, channel_id: str, quiet_until: datetime | None = None,
    budget: BudgetVerdict | None = None,
) -> dict:
    """The confirmation step: exactly what will be sent, to how many, at what cost. `quiet_until`: the send
    would go out inside quiet hours, which end then; the view asks whether to schedule it for that time
    (the default) or send anyway."""
    quote = preview.quote
    assert quote is not None
    c = preview.input
    when_zh = f"預約於 {voice.time(c.send_at.timestamp())} 發送" if c.send_at else "立即發送"
    when_en = f"scheduled for {voice.time(c.send_at.timestamp())}" if c.send_at else "now"
    recipients = preview.recipients
    lines = [
        voice.t(f"*收件人* {len(recipients.recipients)} 位（台灣 {quote.taiwan_count} · 國際 {quote.international_count}）",
                f"*Recipients* {len(recipients.recipients)} (Taiwan {quote.taiwan_count} · international "
                f"{quote.international_count})"),
        voice.t(f"*字數* {quote.chars} 字 · 每位 {quote.parts} 則", f"*Length* {quote.chars} characters · {quote.parts} part(s)")
        if c.kind == "sms" else voice.t(f"*字數* {quote.chars} 字 · 含圖片", f"*Length* {quote.chars} characters + image"),
        *([mms_size_line(voice, quote, preview.limits)] if c.kind == "mms" else []),
        voice.t(f"*費用* {points(quote.points)}", f"*Cost* {quote.points:,.1f} points")
        + (voice.t("（估計）", " (estimate)") if quote.estimate else ""),
        voice.t(f"*時間* {when_zh}", f"*When* {when_en}"),
    ]
    if preview.credit is not None:
        lines.append(voice.t(f"*剩餘點數* {points(preview.credit)} → 發送後 {points(preview.credit_after)}",
                             f"*Credit* {preview.credit:,.1f} → after {preview.credit_after or 0:,.1f}"))
    if preview.short_of_credit:
        lines.append(voice.t("⚠️ 點數不足，部分簡訊將無法發送。", "⚠️ Not enough credit: part of the batch will not be sent."))
    if budget is not None:  # monthly budgets (services/budgets.py): what is left, or how far over
        lines.append(cards.budget_line(voice, budget))
    if recipients.duplicates:
        lines.append(voice.t(f"已移除重複號碼 {len(recipients.duplicates)} 個", f"{len(recipients.duplicates)} duplicates removed"))
    if recipients.rejected:
        lines.append(voice.t(f"⚠️ 略過 {len(recipients.rejected)} 筆無效號碼：", f"⚠️ skipping {len(recipients.rejected)}: ")
                     + "; ".join(escape(voice.t(r.zh, r.en)) for r in recipients.rejected[:5]))
    if preview.opted_out:
        lines.append(cards.optout_line(voice, len(preview.opted_out)))
    if preview.unregistered:
        found_zh, found_en = unregistered_texts(preview.unregistered)
        lines.append(voice.t(f"⚠️ 內容含未登記的網址或電話：{escape(found_zh)}。台灣電信業者可能攔截，請確認已登記。",
                             f"⚠️ Links or numbers not registered with the carriers: {escape(found_en)}. Taiwan may "
                             "block this SMS; check they are registered."))
    if c.audience is not None and c.audience.skipped:
        rows_zh, rows_en = skipped_rows_text(c.audience.skipped)
        count = len(c.audience.skipped)
        lines.append(voice.t(f"⚠️ CSV 略過 {count} 列（其餘照常發送）：", f"⚠️ CSV: {count} row{'s' if count != 1 else ''} "
                             "skipped (the others are sent): ") + escape(voice.t(rows_zh, rows_en)))
    example = c.message
    if preview.messages:
        first = recipients.recipients[0].e164
        example = preview.messages.get(first, c.message)
        distinct = len(set(preview.messages.values()))
        lines.append(voice.t(
            f"✏️ *個人化訊息*：{distinct} 種不同內容，每種內容一次 EVERY8D 呼叫；費用逐則計算。以下為第一位（{voice.number(first)}）的內容：",
            f"✏️ *Personalised*: {distinct} different texts, one EVERY8D call per text; each message priced on its "
            f"own. The first recipient's ({voice.number(first)}) text:"))
    blocks = [
        SectionBlock(text=MarkdownTextObject(text="\n".join(lines))).to_dict(),
        *(quiet_hours_blocks(voice, quiet_until) if quiet_until else []),
        cards.untrusted_block(example).to_dict(),
        ContextBlock(elements=[MarkdownTextObject(text=voice.t(
            "送出後會請核准者核准，核准後才會發送。", "After you submit, an approver must approve before anything is sent."
        ))]).to_dict(),
        *[b.to_dict() for b in cards.sandbox_block(voice)],
    ]
    view = View(
        type="modal",
        callback_id=PREVIEW_CALLBACK,
        title=_plain(voice.t("確認費用", "Confirm cost") if voice.language != "both" else "確認 Confirm"),
        submit=_plain(voice.t("送出申請", "Request approval") if voice.language != "both" else "送出申請 Submit"),
        close=_plain(voice.t("返回修改", "Back") if voice.language != "both" else "返回 Back"),
        private_metadata=json.dumps({"draft_id": draft_id, "channel_id": channel_id}),
        blocks=blocks,
    )
    return view.to_dict()


def quiet_hours_blocks(voice: Voice, until: datetime) -> list[dict]:
    """The quiet-hours warning and the choice (block `quiet`): schedule for `until` (default) or override."""
    when = voice.time(until.timestamp())
    schedule = Option(value=QUIET_SCHEDULE, text=voice.t(f"預約 {until:%H:%M} 發送", f"Schedule for {until:%H:%M}"))
    override = Option(value=QUIET_OVERRIDE, text=voice.t("仍要立即發送", "Send now anyway"))
    return [
        SectionBlock(text=MarkdownTextObject(text=voice.t(
            f"🌙 *這次發送落在勿擾時段*，此時段於 {when} 結束。",
            f"🌙 *This send falls in quiet hours*, which end at {when}."))).to_dict(),
        InputBlock(
            block_id=QUIET_BLOCK,
            label=_plain(voice.t("勿擾時段", "Quiet hours")),
            element=RadioButtonsElement(action_id=VALUE, options=[schedule, override], initial_option=schedule),
        ).to_dict(),
    ]


def read_quiet_choice(state_values: dict[str, Any]) -> str | None:
    """`QUIET_SCHEDULE` or `QUIET_OVERRIDE` from a submitted preview view; None when it asked nothing."""
    block = state_values.get(QUIET_BLOCK) if isinstance(state_values, dict) else None
    entry = block.get(VALUE) if isinstance(block, dict) else None
    option = entry.get("selected_option") if isinstance(entry, dict) else None
    choice = option.get("value") if isinstance(option, dict) else None
    return choice if choice in (QUIET_SCHEDULE, QUIET_OVERRIDE) else None


def submitted_view(voice: Voice, request_id: int, auto: bool) -> dict:
    text = (
        voice.t(f"已自動核准申請 #{request_id}，正在發送。", f"Request #{request_id} was auto-approved and is being sent.")
        if auto
        else voice.t(f"已送出申請 #{request_id}，等待核准。", f"Request #{request_id} is waiting for approval.")
    )
    # clear_on_close: closing it must not bring back the filled compose window (a second submit
    # would create a second request).
    return View(
        type="modal",
        clear_on_close=True,
        title=_plain("已送出 Submitted" if voice.language == "both" else voice.t("已送出", "Submitted")),
        close=_plain(voice.t("關閉", "Close") if voice.language != "both" else "關閉 Close"),
        blocks=[SectionBlock(text=MarkdownTextObject(text=text))],
    ).to_dict()
