"""Slack's HTTP endpoint: a thin guard in front of Bolt, checking the signature first, then the body.

Why: Bolt's WSGI adapter decodes and parses the body (UTF-8, form, the `payload` JSON) while building its
request, before its own signature check runs. A body that is not UTF-8, a `payload` that is not JSON, or
JSON that is a list or null raised there, and waitress answered 500 with a traceback in the log for each:
anyone on the internet could fill the logs without knowing the signing secret. Here an unsigned or badly
signed request gets 401 without its body being parsed, a signed body Bolt could not read gets 400, and
neither logs a traceback. Only then does the request reach Bolt, which checks the signature again as it
always did, and is handed the body already parsed (parsing a multi-megabyte form twice cost a second).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltRequest
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse

log = logging.getLogger("every8d_bot.http")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: A larger body is refused before it is read (Slack's own bodies are at most a few hundred KB; a modal
#: echoes its whole state, so leave room for a generous paste).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Slack's replay window: a request signed longer ago than this is refused (as Bolt does).
MAX_AGE_SECONDS = 5 * 60


def slack_endpoint(app: App, signing_secret: str) -> WsgiApp:
    """Bolt's app as WSGI: 401 unsigned, 413 oversized, 400 unreadable, else Bolt's own answer."""
    secret = signing_secret.encode() if signing_secret.strip() else b""

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _answer(start_response, "400 Bad Request", "bad content length")
        if length < 0:
            return _answer(start_response, "400 Bad Request", "bad content length")
        if length > MAX_BODY_BYTES:
            return _answer(start_response, "413 Payload Too Large", "too large")
        body = environ["wsgi.input"].read(length) if length else b""
        if not _signed(secret, body, environ, time.time()):
            if _is_ssl_check(body):
                # Slack's certificate check (`ssl_check=1`) is answered 200 whatever its signature.
                return _answer(start_response, "200 OK", "")
            return _answer(start_response, "401 Unauthorized", "invalid signature")
        parsed = _parse(body, environ.get("CONTENT_TYPE"))
        problem = parsed if isinstance(parsed, str) else _shape_problem(parsed)
        if problem is not None:
            log.warning("refused a signed Slack request Bolt could not read: %s", problem)
            return _answer(start_response, "400 Bad Request", problem)
        try:
            answer = app.dispatch(_bolt_request(environ, body.decode("utf-8"), parsed))
        except Exception as exc:  # noqa: BLE001 - Bolt's routing failed on a body of a shape we did not foresee
            # Signed, so from Slack (or someone holding the secret): one line, the traceback only at DEBUG.
            log.warning("refused a signed Slack request Bolt could not route (%s)", type(exc).__name__)
            log.debug("Bolt's failure on that request", exc_info=exc)
            return _answer(start_response, "400 Bad Request", "unreadable request")
        response = WsgiHttpResponse(status=answer.status, headers=answer.headers, body=answer.body)
        start_response(response.status, response.get_headers())
        return response.get_body()

    return application


def _bolt_request(environ: dict[str, Any], text: str, parsed: dict[str, Any]) -> BoltRequest:
    """Bolt's request for this HTTP request, built from the body already parsed: Bolt parses a text body
    itself and only takes a parsed one in Socket Mode, so build it that way and make it an HTTP request
    again, with the raw body its signature check (RequestVerification) reads."""
    request = BoltRequest(body=parsed, query=environ.get("QUERY_STRING", ""),
                          headers=WsgiHttpRequest(environ).get_headers(), mode="socket_mode")
    request.mode = "http"
    request.raw_body = text
    return request


def _signed(secret: bytes, body: bytes, environ: dict[str, Any], now: float) -> bool:
    """Slack's v0 signature (HMAC-SHA256 over `v0:<timestamp>:<body>`) within five minutes, as slack_sdk's
    SignatureVerifier checks it, but over the raw bytes: that class decodes the body as UTF-8 first, so a
    signed body that is not UTF-8 could not be told apart from a forged one (it is a 400, not a 401). A
    malformed header (a timestamp that is not plain digits, a signature that is not ASCII) is not valid."""
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or ""
    signature = environ.get("HTTP_X_SLACK_SIGNATURE") or ""
    if not secret or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if not signature.isascii():
        return False
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    digest = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v0={digest}".encode(), signature.encode())


def _is_ssl_check(body: bytes) -> bool:
    """Slack's `ssl_check=1&token=…` (tiny; a larger unsigned body is not worth parsing to find out)."""
    if len(body) > 1024:
        return False
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)).get("ssl_check") == "1"
    except (UnicodeDecodeError, ValueError):
        return False


def _parse(body: bytes, content_type: str | None) -> dict[str, Any] | str:
    """The body as slack_bolt's `parse_body` reads it (JSON when the content type says so or the body
    starts with `{`, else a form whose `payload`, if any, is JSON), or why it cannot be read. The JSON must
    be an object, as every Slack body is."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    if not text:
        return {}
    if content_type == "application/json" or text.startswith("{"):
        return _json_object(text, "the body")
    if "payload" not in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    payload = _form_value(text, "payload")
    return {} if payload is None else _json_object(payload, "the payload")


_ESCAPE_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _form_value(text: str, name: str) -> str | None:
    """The value of `name` in a form body as Bolt reads it (`dict(parse_qsl(...))`: the last one wins, `+`
    is a space, %XX escapes are UTF-8 with replacement), decoded a run of escapes at a time: Chinese text
    is all escapes, and `parse_qsl` took half a second over a 6 MB body, which Bolt then parses again."""
    prefix = name + "="
    raw = None
    for field in text.split("&"):
        if field.startswith(prefix):
            raw = field[len(prefix):]
    if raw is None:
        return None
    value = raw.replace("+", " ")
    if "%" not in value:
        return value
    return _ESCAPE_RUN.sub(lambda run: bytes.fromhex(run.group().replace("%", "")).decode("utf-8", "replace"), value)


def _json_object(text: str, what: str) -> dict[str, Any] | str:
    try:
        value = json.loads(text)
    except RecursionError:
        return f"{what} is nested too deeply"
    except ValueError:
        return f"{what} is not JSON"
    if not isinstance(value, dict):
        return f"{what} is not a JSON object"
    return value


#: Interaction payloads: Slack always names the user (an object with an id) in these.
_INTERACTIONS = ("block_actions", "view_submission", "view_closed", "shortcut", "message_action",
                 "block_suggestion")
#: Fields of a slash command our handlers and Bolt rely on (Slack always sends them).
_COMMAND_FIELDS = ("user_id", "channel_id", "trigger_id", "team_id")
#: Fields of a message event that must be text (or absent).
_MESSAGE_TEXT_FIELDS = ("channel", "user", "ts", "thread_ts", "text", "subtype", "bot_id", "channel_type")


def _shape_problem(body: dict[str, Any]) -> str | None:
    """The first well-known envelope field with the wrong type, as Slack never sends it. Checked here
    because Bolt indexes these fields while routing, before any listener or error handler runs."""
    for key in ("team", "channel", "container", "message", "state"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            return f"`{key}` is not an object"
    if body.get("enterprise") is not None and not isinstance(body["enterprise"], dict | str):
        return "`enterprise` is not an object"
    if "authorizations" in body and not _list_of_objects(body["authorizations"]):
        return "`authorizations` is not a list of objects"
    if "type" in body and not isinstance(body["type"], str):
        return "`type` is not text"
    if "command" in body:
        missing = [f for f in _COMMAND_FIELDS if not isinstance(body.get(f), str) or not body[f]]
        if missing:
            return f"a slash command without {', '.join(missing)}"
    kind = body.get("type")
    if kind in _INTERACTIONS:
        user = body.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            return "an interaction without a user id"
    if kind == "block_actions":
        if not _list_of_objects(body.get("actions")) or not body["actions"]:
            return "`actions` is not a list of objects"
        if not isinstance(body.get("trigger_id"), str):
            return "an action without a trigger_id"
    if kind in ("view_submission", "view_closed") or "view" in body:
        problem = _view_problem(body.get("view"))
        if problem:
            return problem
    if kind == "event_callback":
        return _event_problem(body.get("event"))
    return None


def _view_problem(view: Any) -> str | None:
    if not isinstance(view, dict):
        return "`view` is not an object"
    for key in ("id", "callback_id", "private_metadata", "type"):
        if view.get(key) is not None and not isinstance(view[key], str):
            return f"`view.{key}` is not text"
    state = view.get("state")
    if state is not None and not isinstance(state, dict):
        return "`view.state` is not an object"
    if state and state.get("values") is not None and not isinstance(state["values"], dict):
        return "`view.state.values` is not an object"
    return None


def _event_problem(event: Any) -> str | None:
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "`event` is not an object with a type"
    if event["type"] == "message":
        for key in _MESSAGE_TEXT_FIELDS:
            if event.get(key) is not None and not isinstance(event[key], str):
                return f"`event.{key}` is not text"
    if event["type"] == "app_home_opened" and not (isinstance(event.get("user"), str) and event["user"]):
        return "`app_home_opened` without a user"
    if event["type"] == "function_executed":
        if not isinstance(event.get("function_execution_id"), str):
            return "`function_executed` without an execution id"
        if event.get("inputs") is not None and not isinstance(event["inputs"], dict):
            return "`event.inputs` is not an object"
    return None


def _list_of_objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _answer(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
