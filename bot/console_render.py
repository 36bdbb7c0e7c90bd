"""Block Kit as readable terminal text, for `every8d-bot console`.

The console shows what the bot really posted: it renders the payloads the Slack stand-in recorded
(messages, ephemerals, modals, App Home) rather than anything the bot could say differently to a
terminal. Buttons get numbers from a `ButtonBook` that keeps a button's number for as long as it is
shown, even when its message is edited in place, so `/press 3` means the same thing a minute later.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

INDENT = "  "

#: `<@U1>`, `<#C1|name>`, `<!here>`, `<!date^…|fallback>`, `<https://…|label>`: Slack's control sequences.
_CONTROL = re.compile(r"<([^<>]+)>")
#: `*bold*` in Slack's mrkdwn; never the stars of a masked number such as `0912-***-678`.
_BOLD = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)")


@dataclass(frozen=True)
class Container:
    """Where buttons live: a channel message, an ephemeral answer, a modal or an App Home.

    `owner` is the only user who sees it (None: everyone in the channel); `payload` is the message or
    view as the stand-in holds it, which a click sends back to the app as Slack does."""

    key: str
    kind: str  # "message", "ephemeral", "modal" or "home"
    payload: Mapping[str, Any]
    channel: str | None = None
    owner: str | None = None


@dataclass
class Button:
    number: int
    action_id: str
    value: str
    block_id: str
    label: str
    container: Container
    live: bool = True


@dataclass
class ButtonBook:
    """Numbers for buttons, unique in a session and stable while a button stays in its container."""

    _buttons: dict[tuple[str, str, str, str], Button] = field(default_factory=dict)
    _by_number: dict[int, Button] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, container: Container, blocks: Iterable[Mapping[str, Any]]) -> Callable[[str, Mapping], int]:
        """Record the buttons now shown in `container` (the others there are gone); returns a numberer
        for the renderer: (block_id, button element) -> number."""
        with self._lock:
            shown: set[tuple[str, str, str, str]] = set()
            for block_id, element in _buttons_in(blocks):
                key = (container.key, block_id, element.get("action_id", ""), str(element.get("value", "")))
                shown.add(key)
                button = self._buttons.get(key)
                if button is None:
                    button = Button(len(self._by_number) + 1, key[2], key[3], block_id,
                                    plain(element.get("text")), container)
                    self._buttons[key] = button
                    self._by_number[button.number] = button
                button.container, button.live = container, True
                button.label = plain(element.get("text"))
            for key, button in self._buttons.items():
                if key[0] == container.key and key not in shown:
                    button.live = False

        def number(block_id: str, element: Mapping[str, Any]) -> int:
            key = (container.key, block_id, element.get("action_id", ""), str(element.get("value", "")))
            return self._buttons[key].number

        return number

    def forget(self, container_key: str) -> None:
        """The container is gone (message deleted, modal closed): its buttons can no longer be pressed."""
        with self._lock:
            for key, button in self._buttons.items():
                if key[0] == container_key:
                    button.live = False

    def get(self, number: int) -> Button | None:
        """The button shown as `[number]`, live or not (a gone button is refused by name)."""
        with self._lock:
            return self._by_number.get(number)

    def find(self, ref: str, visible_to: str) -> Button | None:
        """The newest live button this user can see whose action_id or label is `ref` (exactly, then as
        a case-insensitive part of the label)."""
        with self._lock:
            candidates = [b for b in sorted(self._by_number.values(), key=lambda b: -b.number)
                          if b.live and b.container.owner in (None, visible_to)]
        wanted = ref.casefold()
        for match in (lambda b: b.action_id == ref or b.label.casefold() == wanted,
                      lambda b: wanted in b.label.casefold()):
            found = next((b for b in candidates if match(b)), None)
            if found is not None:
                return found
        return None


def _buttons_in(blocks: Iterable[Mapping[str, Any]]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for block in blocks:
        block_id = block.get("block_id", "")
        elements = list(block.get("elements", []) or []) if block.get("type") == "actions" else []
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping):
            elements.append(accessory)
        for element in elements:
            if isinstance(element, Mapping) and element.get("type") == "button":
                yield block_id, element


# -- text -------------------------------------------------------------------------------------------


def plain(text_object: Any) -> str:
    """The text of a text object (plain_text or mrkdwn) as a person reads it."""
    if not isinstance(text_object, Mapping):
        return str(text_object or "")
    text = str(text_object.get("text", ""))
    return mrkdwn(text) if text_object.get("type") == "mrkdwn" else text


def mrkdwn(text: str, names: Callable[[str], str] | None = None) -> str:
    """Slack mrkdwn to plain text: mentions as `@U…`, channels as `#name`, links as `label (url)`,
    `*bold*` without its stars, entities decoded. `names` maps a channel id to its name."""

    def control(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + target[1:]
        if target.startswith("#"):
            return "#" + (label or (names(target[1:]) if names else target[1:]))
        if target.startswith("!"):
            if target.startswith(("!date", "!subteam")):
                return label or "@" + target[1:].partition("^")[2]
            return "@" + target[1:]
        return f"{label} ({target})" if label and label != target else target

    return html.unescape(_BOLD.sub(r"\1", _CONTROL.sub(control, text)))


def _indent(lines: Iterable[str], prefix: str) -> list[str]:
    return [(prefix + line).rstrip() for line in lines]


# -- blocks ---------------------------------------------------------------------------------------


Numberer = Callable[[str, Mapping[str, Any]], int]


def render_blocks(
    blocks: Iterable[Mapping[str, Any]],
    number: Numberer | None = None,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[str]:
    """Lines for a list of blocks. `values` (block_id -> what was filled in) and `errors` (block_id ->
    message) are shown under a modal's inputs."""
    lines: list[str] = []
    for block in blocks:
        lines.extend(_render_block(block, number, values or {}, errors or {}))
    return lines


def _render_block(block: Mapping[str, Any], number: Numberer | None, values: Mapping[str, str],
                  errors: Mapping[str, str]) -> list[str]:
    kind = block.get("type")
    block_id = block.get("block_id", "")
    if kind == "header":
        return [f"▌ {plain(block.get('text'))}"]
    if kind == "divider":
        return ["─" * 40]
    if kind == "section":
        return _section(block, number)
    if kind == "context":
        texts = [plain(e) if e.get("type") in ("mrkdwn", "plain_text") else f"[{e.get('alt_text', 'image')}]"
                 for e in block.get("elements", [])]
        return [f"· {' · '.join(t for t in texts if t)}"]
    if kind == "actions":
        return [_action_line(block_id, block.get("elements", []), number)]
    if kind == "input":
        return _input(block, values.get(block_id), errors.get(block_id))
    if kind == "image":
        return [f"[image: {block.get('alt_text', '')}]"]
    if kind == "rich_text":
        return [_rich_text(block)]
    return [f"[{kind} block]"]


def _section(block: Mapping[str, Any], number: Numberer | None) -> list[str]:
    text = block.get("text")
    lines: list[str] = []
    if isinstance(text, Mapping):
        body = plain(text).splitlines() or [""]
        quoted = text.get("type") == "plain_text"  # text the bot did not write (an SMS, a reply): quoted
        lines.extend(f"> {line}".rstrip() if quoted else line for line in body)
    for item in block.get("fields", []) or []:
        label, _, rest = plain(item).partition("\n")
        lines.append(f"• {label}: {rest.replace(chr(10), ' ')}" if rest else f"• {label}")
    accessory = block.get("accessory")
    if isinstance(accessory, Mapping) and accessory.get("type") == "button":
        lines.append(_action_line(block.get("block_id", ""), [accessory], number))
    return lines


def _action_line(block_id: str, elements: Iterable[Mapping[str, Any]], number: Numberer | None) -> str:
    shown = []
    for element in elements:
        label = plain(element.get("text")) or element.get("action_id", "")
        if element.get("type") == "button":
            tag = f"[{number(block_id, element)}]" if number else "[·]"
            style = {"primary": " ✔", "danger": " ✖"}.get(element.get("style", ""), "")
            shown.append(f"{tag} {label}{style}")
        else:
            shown.append(f"({element.get('type')}: {label})")
    return "   ".join(shown)


def _input(block: Mapping[str, Any], value: str | None, error: str | None) -> list[str]:
    element = block.get("element", {}) or {}
    optional = " (optional)" if block.get("optional") else ""
    lines = [f"✎ {plain(block.get('label'))}{optional}   — /fill {block.get('block_id', '?')} …"]
    options = [f"{o.get('value')}={plain(o.get('text'))}" for o in element.get("options", []) or []]
    if options:
        lines.append(f"{INDENT}choices: {', '.join(options)}")
    if block.get("hint"):
        lines.append(f"{INDENT}hint: {plain(block.get('hint'))}")
    shown = value if value is not None else initial_text(element)
    if shown:
        lines.extend(_indent(shown.splitlines(), f"{INDENT}= "))
    else:
        lines.append(f"{INDENT}= (empty, {element.get('type', 'input')})")
    if error:
        lines.extend(_indent(error.splitlines(), f"{INDENT}⚠ "))
    return lines


def initial_text(element: Mapping[str, Any]) -> str:
    """What an input shows before anyone types: its initial value or option."""
    option = element.get("initial_option")
    if isinstance(option, Mapping):
        return f"{option.get('value')} ({plain(option.get('text'))})"
    value = element.get("initial_value") or element.get("initial_date") or ""
    return str(value)


def _rich_text(block: Mapping[str, Any]) -> str:
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if "text" in node and isinstance(node["text"], str):
                parts.append(node["text"])
            for child in node.get("elements", []) or []:
                walk(child)

    walk(block)
    return "".join(parts)


def render_message(message: Mapping[str, Any], number: Numberer | None,
                   names: Callable[[str], str] | None = None) -> list[str]:
    """A message's body: its blocks, else its text; files it shares are listed."""
    blocks = message.get("blocks") or []
    lines = render_blocks(blocks, number) if blocks else mrkdwn(message.get("text", ""), names).splitlines()
    for shared in message.get("files", []) or []:
        lines.append(f"📎 {shared.get('title') or shared.get('name')}")
    return lines


def render_view(view: Mapping[str, Any], number: Numberer | None, *, values: Mapping[str, str] | None = None,
                errors: Mapping[str, str] | None = None) -> list[str]:
    """A modal or Home view: its title, blocks and (for modals) which commands submit or close it."""
    lines = render_blocks(view.get("blocks", []) or [], number, values=values, errors=errors)
    if view.get("type") == "modal":
        actions = []
        if view.get("submit"):
            actions.append(f"/submit → {plain(view['submit'])}")
        actions.append(f"/cancel → {plain(view.get('close')) or 'Close'}")
        lines.append("   ".join(actions))
    return lines


def boxed(title: str, body: Iterable[str], *, indent: str = "") -> str:
    """A titled block of output: `title` on its own line, the body indented under it."""
    return "\n".join([indent + title, *_indent(body, indent + INDENT + "│ ")]) + "\n"
