"""The compose modal's "repeat" fields and reading them back: how often (block `repeat`), on which weekdays
(`repeat_days`), until when (`repeat_until`) or how many times (`repeat_count`). The scheduled time field
gives the first send: its time of day for every run and, monthly, its day of the month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from handlers.texts import Voice
from services.recurrence import DAILY, MAX_COUNT, MONTHLY, WEEKDAY_EN, WEEKDAY_ZH, WEEKDAYS

BLOCKS = ("repeat", "repeat_days", "repeat_until", "repeat_count")
VALUE = "value"


@dataclass(frozen=True)
class RepeatValues:
    kind: str  # "" when the send does not repeat
    weekdays: frozenset[int]
    until: date | None
    count: int | None


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text[:150], "emoji": True}


def blocks(voice: Voice) -> list[dict]:
    """Four optional inputs, after the scheduled time."""
    kinds = [(DAILY, voice.t("每天", "Every day")),
             (WEEKDAYS, voice.t("每週指定日（未勾選為週一至五）", "Weekly on chosen days (none: Mon-Fri)")),
             (MONTHLY, voice.t("每月同一天", "Monthly on the same day"))]
    days = [{"text": _plain(voice.t(f"週{WEEKDAY_ZH[d]}", WEEKDAY_EN[d])), "value": str(d)} for d in range(7)]
    return [
        {"type": "input", "block_id": "repeat", "optional": True,
         "label": _plain(voice.t("重複發送（選填）", "Repeat (optional)")),
         "hint": _plain(voice.t("以預約時間為第一次；一次核准涵蓋全部", "the scheduled time is the first run; one approval covers all")),
         "element": {"type": "static_select", "action_id": VALUE,
                     "placeholder": _plain(voice.t("不重複", "Does not repeat")),
                     "options": [{"text": _plain(text), "value": value} for value, text in kinds]}},
        {"type": "input", "block_id": "repeat_days", "optional": True,
         "label": _plain(voice.t("重複的星期", "Days of the week")),
         "element": {"type": "checkboxes", "action_id": VALUE, "options": days}},
        {"type": "input", "block_id": "repeat_until", "optional": True,
         "label": _plain(voice.t("重複至（含當天）", "Repeat until (inclusive)")),
         "element": {"type": "datepicker", "action_id": VALUE}},
        {"type": "input", "block_id": "repeat_count", "optional": True,
         "label": _plain(voice.t("或重複次數", "Or number of times")),
         "element": {"type": "number_input", "action_id": VALUE, "is_decimal_allowed": False, "min_value": "1",
                     "max_value": str(MAX_COUNT)}},
    ]


def read(state_values: dict[str, Any]) -> RepeatValues:
    """The repeat fields of a submitted compose view (all empty when the view has none)."""

    def value(block: str) -> dict[str, Any]:
        entry = state_values.get(block) if isinstance(state_values, dict) else None
        found = entry.get(VALUE) if isinstance(entry, dict) else None
        return found if isinstance(found, dict) else {}  # whatever else arrives reads as empty

    option = value("repeat").get("selected_option")
    kind = str(option.get("value") or "") if isinstance(option, dict) else ""
    ticked = value("repeat_days").get("selected_options")
    days = frozenset(int(o["value"]) for o in (ticked if isinstance(ticked, list) else [])
                     if isinstance(o, dict) and str(o.get("value", "")) in tuple("0123456"))
    until_raw = value("repeat_until").get("selected_date")
    try:
        until = date.fromisoformat(until_raw) if isinstance(until_raw, str) and until_raw else None
    except ValueError:
        until = None
    count_raw = value("repeat_count").get("value")
    try:
        count = int(count_raw) if isinstance(count_raw, (str, int)) and count_raw != "" else None
    except ValueError:
        count = None
    return RepeatValues(kind if kind in (DAILY, WEEKDAYS, MONTHLY) else "", days, until, count)
