"""Modals in the console: which are open for whom, what was typed into them, and their `state.values`.

Slack keeps a stack of views per user and sends the typed values back on submit; the stand-in only sees
`views.open/push/update`, not the `response_action` a submission is answered with, so the console keeps
the stack itself. `/fill <block_id> <value>` turns what a person types into the element state Slack
would send (a date for a date-time picker, an option for radio buttons, an uploaded file for a
file_input), and says what is wrong when it cannot.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.console_render import initial_text, plain
from slackstandin import payloads

#: Typed after `/fill`: the layout a date-time picker accepts, in BOT_TIMEZONE.
DATETIME_FORMAT = "%Y-%m-%d %H:%M"

_RELATIVE = re.compile(r"\+(\d+)([mhd])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}

StateEntry = dict[str, dict[str, Any]]  # {action_id: element state}, one block's part of state.values


class FillError(Exception):
    """What the person typed does not fit the field; the message says what would."""


@dataclass
class Modal:
    """One open view and what its user typed into it so far."""

    view: dict[str, Any]
    filled: dict[str, StateEntry] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def view_id(self) -> str:
        return str(self.view.get("id", ""))

    def inputs(self) -> dict[str, dict[str, Any]]:
        """The view's input blocks by block_id."""
        return {b.get("block_id", ""): b for b in self.view.get("blocks", []) if b.get("type") == "input"}

    def replace_view(self, view: dict[str, Any]) -> None:
        """The app redrew the view (views.update or response_action update): keep what was typed into
        fields that are still there."""
        self.view = view
        kept = self.inputs()
        self.filled = {k: v for k, v in self.filled.items() if k in kept}
        self.shown = {k: v for k, v in self.shown.items() if k in kept}
        self.errors = {}

    def state_values(self) -> dict[str, StateEntry]:
        """`view.state.values` as Slack sends it: typed values, else each input's initial value."""
        return {block_id: self.filled.get(block_id) or _initial_state(block.get("element", {}) or {})
                for block_id, block in self.inputs().items()}

    def with_state(self) -> dict[str, Any]:
        """The view as Slack includes it in a block_actions payload (current state attached)."""
        return {**self.view, "state": {"values": self.state_values()}}


class ModalStacks:
    """Each user's stack of open modals (bottom first), shared by the printing and the typing threads."""

    def __init__(self) -> None:
        self._stacks: dict[str, list[Modal]] = {}
        self._lock = threading.Lock()

    def top(self, user: str) -> Modal | None:
        with self._lock:
            stack = self._stacks.get(user) or []
            return stack[-1] if stack else None

    def open(self, user: str, view: dict[str, Any]) -> Modal:
        with self._lock:
            self._stacks[user] = [Modal(view)]
            return self._stacks[user][0]

    def push(self, user: str, view: dict[str, Any]) -> Modal:
        with self._lock:
            modal = Modal(view)
            self._stacks.setdefault(user, []).append(modal)
            return modal

    def update(self, view: dict[str, Any]) -> tuple[str, Modal] | None:
        """views.update: the modal with this view's id gets the new view; returns (user, modal)."""
        with self._lock:
            for user, stack in self._stacks.items():
                for modal in stack:
                    if modal.view_id == view.get("id"):
                        modal.replace_view(view)
                        return user, modal
        return None

    def pop(self, user: str) -> Modal | None:
        with self._lock:
            stack = self._stacks.get(user) or []
            return stack.pop() if stack else None

    def clear(self, user: str) -> list[Modal]:
        with self._lock:
            return self._stacks.pop(user, [])


def _initial_state(element: Mapping[str, Any]) -> StateEntry:
    kind, action_id = element.get("type", ""), element.get("action_id", "")
    if kind in ("radio_buttons", "static_select"):
        option = element.get("initial_option")
        return {action_id: {"type": kind, "selected_option": option or None}}
    if kind == "datetimepicker":
        return payloads.datetimepicker(action_id, element.get("initial_date_time"))
    if kind == "checkboxes":
        return {action_id: {"type": kind, "selected_options": list(element.get("initial_options", []))}}
    if kind == "datepicker":
        return {action_id: {"type": kind, "selected_date": element.get("initial_date")}}
    if kind == "file_input":
        return payloads.file_input(action_id, [])
    if kind == "number_input":
        return payloads.number_input(action_id, element.get("initial_value"))
    return {action_id: {"type": kind or "plain_text_input", "value": element.get("initial_value") or None}}


Upload = Callable[[Path], dict[str, Any]]


def fill(block: Mapping[str, Any], text: str, *, tz: ZoneInfo, upload: Upload) -> tuple[StateEntry, str]:
    """What typing `text` into this input block sends to the app, and how to show it.

    `upload(path)` stores a file the way a file_input would and returns its file object. Raises
    FillError with a hint when `text` does not fit the element."""
    element = block.get("element", {}) or {}
    kind, action_id = element.get("type", ""), element.get("action_id", "")
    text = text.strip()
    if kind == "plain_text_input":
        value = text.replace("\\n", "\n") or None  # `\n` types a line break in a multi-line field
        return payloads.plain_text_input(action_id, value), value or ""
    if kind == "number_input":
        return _number(element, action_id, text)
    if kind in ("radio_buttons", "static_select"):
        option = _option(element, text)
        entry = {action_id: {"type": kind, "selected_option": {"text": option["text"], "value": option["value"]}}}
        return entry, f"{option['value']} ({plain(option.get('text'))})"
    if kind == "datetimepicker":
        return _datetime(action_id, text, tz)
    if kind == "datepicker":  # `2026-12-31` (the repeat's end date)
        return _date(action_id, text)
    if kind == "checkboxes":  # `mon,wed` or option values `0,2`; empty clears
        chosen = [_option(element, part.strip()) for part in text.split(",") if part.strip()]
        entry = {action_id: {"type": kind, "selected_options": [{"text": o["text"], "value": o["value"]}
                                                                for o in chosen]}}
        return entry, ", ".join(plain(o.get("text")) for o in chosen)
    if kind == "file_input":
        if not text:
            return payloads.file_input(action_id, []), ""
        shared = upload(Path(text).expanduser())
        return payloads.file_input(action_id, [shared]), f"📎 {shared.get('name')}"
    raise FillError(f"the console cannot fill a {kind or 'this kind of'} field")


def _number(element: Mapping[str, Any], action_id: str, text: str) -> tuple[StateEntry, str]:
    if not text:
        return payloads.number_input(action_id, None), ""
    try:
        number = float(text) if element.get("is_decimal_allowed") else int(text)
    except ValueError:
        whole = "" if element.get("is_decimal_allowed") else "whole "
        raise FillError(f"type a {whole}number, e.g. 1440") from None
    return payloads.number_input(action_id, number), str(number)


def _option(element: Mapping[str, Any], text: str) -> dict[str, Any]:
    options = element.get("options", []) or []
    wanted = text.casefold()
    for option in options:
        if wanted in (str(option.get("value", "")).casefold(), plain(option.get("text")).casefold()):
            return dict(option)
    choices = ", ".join(str(o.get("value")) for o in options)
    raise FillError(f"choose one of: {choices}")


def _date(action_id: str, text: str) -> tuple[StateEntry, str]:
    if not text:
        return {action_id: {"type": "datepicker", "selected_date": None}}, ""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise FillError("type a date like 2026-12-31") from None
    return {action_id: {"type": "datepicker", "selected_date": day.isoformat()}}, day.isoformat()


def _datetime(action_id: str, text: str, tz: ZoneInfo) -> tuple[StateEntry, str]:
    if not text:
        return payloads.datetimepicker(action_id, None), ""
    relative = _RELATIVE.fullmatch(text)
    try:
        if relative:  # `+2h`: scripts stay valid whatever day they run
            seconds = int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
            local = datetime.fromtimestamp((time.time() + seconds) // 60 * 60, tz=tz)
        else:
            local = datetime.strptime(text, DATETIME_FORMAT).replace(tzinfo=tz)
    except ValueError:
        raise FillError(f"type a date and time like 2026-12-01 09:00 ({tz.key}), or +90m, +2h, +1d") from None
    return payloads.datetimepicker(action_id, int(local.timestamp())), f"{local:{DATETIME_FORMAT}} ({tz.key})"


def shown_value(modal: Modal, block_id: str) -> str | None:
    """What a field shows now: what was typed, else its initial value (None when neither)."""
    if block_id in modal.shown:
        return modal.shown[block_id]
    block = modal.inputs().get(block_id)
    return initial_text(block.get("element", {}) or {}) or None if block else None
