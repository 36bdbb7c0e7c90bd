"""Builders for the bodies Slack sends to an app: slash commands, interactions, events.

Why: tests and the local console drive the Bolt app through signed HTTP requests (see `signing`), so the
bodies must be shaped exactly like Slack's or a wrong `action_id` or `block_id` would pass unnoticed.
Interaction bodies are form-encoded `payload=<json>`; event bodies are JSON (send them with JSON_TYPE).

Every builder issues a fresh trigger_id ("<digits>.<user_id>.<hex>"); the stand-in accepts any non-empty
trigger_id and reads the user from this form, so it knows whose modal views.open opens.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode

FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
TEAM_ID, TEAM_DOMAIN, APP_ID, BOT_USER_ID = "T0STANDIN", "standin", "A0STANDIN", "U0BOT"
VERIFICATION_TOKEN = "standin-verification-token"  # Slack's deprecated per-app token, still sent


def new_trigger_id(user_id: str) -> str:
    """A trigger_id carrying the user id, like Slack's opaque ones but readable by the stand-in."""
    return f"{secrets.randbelow(10**10)}.{user_id}.{secrets.token_hex(12)}"


def _user(user_id: str, team_id: str) -> dict[str, str]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _interaction(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)})


def _common(kind: str, user_id: str, team_id: str) -> dict[str, Any]:
    return {"type": kind, "team": {"id": team_id, "domain": TEAM_DOMAIN}, "user": _user(user_id, team_id),
            "api_app_id": APP_ID, "token": VERIFICATION_TOKEN, "enterprise": None, "is_enterprise_install": False}


def slash_command(
    text: str,
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/sms",
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
    channel_name: str = "general",
) -> str:
    """The form body of a slash command, with all of Slack's fields. `text` is what the person typed: Slack
    sends its `&`, `<` and `>` as HTML entities (as in all text it sends), except in the markup its client
    inserts for a pick from a list (`<@U123>`, `<#C123|sales>`) or a link."""
    return urlencode({
        "token": VERIFICATION_TOKEN, "team_id": team_id, "team_domain": TEAM_DOMAIN, "channel_id": channel_id,
        "channel_name": channel_name, "user_id": user_id, "user_name": user_id.lower(), "command": command,
        "text": slack_escaped(text), "api_app_id": APP_ID, "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(user_id),
    })


#: Markup Slack's client inserts (a mention or channel picked from a list, a special mention, a link): sent as is.
_MARKUP = re.compile(r"<(?:[@#!]|https?://|mailto:|tel:)[^<>]*>")


def slack_escaped(text: str) -> str:
    """`text` as Slack sends typed text: `&`, `<`, `>` as entities, its own markup left as it is."""
    def escaped(part: str) -> str:
        return part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    out, at = [], 0
    for match in _MARKUP.finditer(text):
        out += [escaped(text[at:match.start()]), match.group()]
        at = match.end()
    return "".join([*out, escaped(text[at:])])


def block_actions(
    *,
    user_id: str,
    action_id: str,
    value: str,
    block_id: str = "b",
    channel_id: str | None = None,
    message_ts: str | None = None,
    message: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    trigger_id: str | None = None,
    response_url: str | None = None,
    action_type: str = "button",
    team_id: str = TEAM_ID,
) -> str:
    """A click on a button (or a choice in a select, `action_type="static_select"`) in a message or a view."""
    payload = _common("block_actions", user_id, team_id)
    action: dict[str, Any] = {"type": action_type, "action_id": action_id, "block_id": block_id,
                              "action_ts": f"{time.time():.6f}"}
    if action_type == "button":
        action |= {"value": value, "text": {"type": "plain_text", "text": value, "emoji": True}}
    else:
        action["selected_option"] = _option(value)
    payload |= {"trigger_id": trigger_id or new_trigger_id(user_id), "actions": [action],
                "state": {"values": {}}}
    if view is not None:
        payload |= {"container": {"type": "view", "view_id": view.get("id", "")}, "view": view}
    if channel_id is not None:
        ts = message_ts or (message or {}).get("ts", "")
        payload |= {
            "container": {"type": "message", "message_ts": ts, "channel_id": channel_id, "is_ephemeral": False},
            "channel": {"id": channel_id, "name": channel_id.lower()},
            "message": message or {"type": "message", "ts": ts, "text": "", "blocks": [], "user": BOT_USER_ID},
        }
    if response_url is not None:
        payload["response_url"] = response_url
    return _interaction(payload)


def message_shortcut(callback_id: str, *, user_id: str, channel_id: str, message: dict[str, Any],
                     response_url: str, team_id: str = TEAM_ID) -> str:
    """A message shortcut ("⋯ → Send as SMS" on a message): the message as Slack sends it."""
    payload = _common("message_action", user_id, team_id)
    payload |= {"callback_id": callback_id, "trigger_id": new_trigger_id(user_id), "action_ts": f"{time.time():.6f}",
                "channel": {"id": channel_id, "name": channel_id.lower()}, "message_ts": message.get("ts", ""),
                "message": {"type": "message", **message}, "response_url": response_url}
    return _interaction(payload)


def global_shortcut(callback_id: str, *, user_id: str, team_id: str = TEAM_ID) -> str:
    """A global shortcut (the ⚡ menu or search): no channel, no message."""
    payload = _common("shortcut", user_id, team_id)
    payload |= {"callback_id": callback_id, "trigger_id": new_trigger_id(user_id), "action_ts": f"{time.time():.6f}"}
    return _interaction(payload)


def view_submission(*, user_id: str, view: dict[str, Any], values: dict[str, dict[str, Any]],
                    team_id: str = TEAM_ID) -> str:
    """Submitting a modal: `values` is view.state.values, {block_id: helper(...)} built with the helpers below."""
    payload = _common("view_submission", user_id, team_id)
    payload |= {"trigger_id": new_trigger_id(user_id), "view": _submitted(view, values, team_id),
                "response_urls": []}
    return _interaction(payload)


def view_closed(*, user_id: str, view: dict[str, Any], is_cleared: bool = False, team_id: str = TEAM_ID) -> str:
    """Closing a modal with notify_on_close set."""
    payload = _common("view_closed", user_id, team_id)
    payload |= {"view": _submitted(view, {}, team_id), "is_cleared": is_cleared}
    return _interaction(payload)


def _submitted(view: dict[str, Any], values: dict[str, dict[str, Any]], team_id: str) -> dict[str, Any]:
    """The view as Slack echoes it back: the stand-in's stored view or a bare one, plus the entered state."""
    view_id = view.get("id") or f"V{secrets.token_hex(5).upper()}"
    defaults = {"id": view_id, "team_id": team_id, "type": "modal", "private_metadata": "", "callback_id": "",
                "hash": f"{int(time.time())}.{secrets.token_hex(4)}", "root_view_id": view_id,
                "previous_view_id": None, "app_id": APP_ID, "external_id": "", "bot_id": "B0BOT", "blocks": []}
    return {**defaults, **view, "state": {"values": values}}


# ----- view.state.values helpers: each returns {action_id: element state} ---------------------------------

def _option(value: str, text: str | None = None) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}


def plain_text_input(action_id: str, value: str | None) -> dict[str, Any]:
    """A text field (None when left empty, as Slack sends it)."""
    return {action_id: {"type": "plain_text_input", "value": value}}


def static_select(action_id: str, value: str | None, text: str | None = None) -> dict[str, Any]:
    """A dropdown with one choice (None: nothing chosen)."""
    return {action_id: {"type": "static_select", "selected_option": _option(value, text) if value else None}}


def radio_buttons(action_id: str, value: str | None, text: str | None = None) -> dict[str, Any]:
    """Radio buttons with one choice (None: nothing chosen)."""
    return {action_id: {"type": "radio_buttons", "selected_option": _option(value, text) if value else None}}


def datetimepicker(action_id: str, epoch: int | None) -> dict[str, Any]:
    """A date-and-time picker: Slack sends epoch seconds (UTC)."""
    return {action_id: {"type": "datetimepicker", "selected_date_time": epoch}}


def file_input(action_id: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """A file field: `files` are file objects, e.g. `[standin.file_object(file_id)]`."""
    return {action_id: {"type": "file_input", "files": files}}


def number_input(action_id: str, value: float | str | None) -> dict[str, Any]:
    """A number field: Slack sends the number as a string."""
    return {action_id: {"type": "number_input", "value": None if value is None else str(value)}}


def checkboxes(action_id: str, values: list[str]) -> dict[str, Any]:
    """Checkboxes: the ticked options."""
    return {action_id: {"type": "checkboxes", "selected_options": [_option(v) for v in values]}}


# ----- Events API ---------------------------------------------------------------------------------------

def event_callback(event: dict[str, Any], *, team_id: str = TEAM_ID, event_id: str | None = None) -> str:
    """The JSON envelope Slack wraps an event in (send with JSON_TYPE)."""
    return json.dumps({
        "token": VERIFICATION_TOKEN, "team_id": team_id, "api_app_id": APP_ID, "event": event,
        "type": "event_callback", "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()), "is_ext_shared_channel": False,
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
    }, ensure_ascii=False)


def function_executed(callback_id: str, inputs: dict[str, Any], *, execution_id: str, bot_access_token: str,
                      team_id: str = TEAM_ID) -> str:
    """A Workflow Builder step reaching the app's custom function (Events API `function_executed`)."""
    event = {
        "type": "function_executed", "function_execution_id": execution_id, "inputs": inputs,
        "workflow_execution_id": f"Wx{secrets.token_hex(5).upper()}", "event_ts": f"{time.time():.6f}",
        "bot_access_token": bot_access_token,
        "function": {"id": f"Fn{secrets.token_hex(5).upper()}", "callback_id": callback_id, "title": callback_id,
                     "description": "", "type": "app", "app_id": APP_ID, "date_created": int(time.time()),
                     "date_updated": int(time.time()), "input_parameters": [], "output_parameters": []},
    }
    return event_callback(event, team_id=team_id)


def message_event(channel: str, user: str, text: str, *, ts: str, thread_ts: str | None = None) -> dict[str, Any]:
    """A person's message, e.g. a reply in a thread (pass the ts `standin.add_message` returned)."""
    event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "event_ts": ts,
             "channel_type": "im" if channel.startswith("D") else "channel", "team": TEAM_ID}
    if thread_ts:
        event |= {"thread_ts": thread_ts, "parent_user_id": BOT_USER_ID}
    return event


def app_home_opened(user: str, *, tab: str = "home") -> dict[str, Any]:
    """A user opening the app's Home tab."""
    return {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": tab,
            "event_ts": f"{time.time():.6f}"}


def url_verification(challenge: str) -> str:
    """The one-off check Slack sends when the Request URL is saved (JSON; Bolt echoes the challenge)."""
    return json.dumps({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"})
