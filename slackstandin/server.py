"""A local stand-in for Slack's Web API: a real HTTP server that answers what the bot calls and records it.

Why a server and not a mock: the bot talks to Slack through slack-sdk's `WebClient`, and the behaviour that
matters (form vs JSON bodies, tokens, scopes, HTTP 429 with Retry-After, the HTML sign-in page a file
download gets without a token) lives in HTTP. Point `WebClient(base_url=standin.api_url)` at it and the bot
runs unchanged, in tests, in the local console and in benchmarks.

Routes: `/api/<method>` (the Web API), `/files-pri/...` (file downloads), `/upload/v1/<file_id>` (upload
v2's second step), `/response/<key>` (response_url endpoints).

Recorded calls use Slack's method names; three pseudo-methods without a dot record the other routes:
`file_download`, `file_upload`, `response_url`.

Listeners registered with `on_event` get `(kind, payload)` after each state change; kinds: `message`,
`message_changed`, `message_deleted`, `ephemeral`, `view_opened`, `view_updated`, `view_pushed`,
`home_published`, `response`, `file_shared`. They run on the request's thread while the stand-in's lock is
held (so they see changes in order): keep them quick and never wait on another thread that calls Slack.
"""

from __future__ import annotations

import copy
import json
import logging
import mimetypes
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, urlsplit

log = logging.getLogger(__name__)

DEFAULT_SCOPES: tuple[str, ...] = (
    "chat:write", "commands", "users:read", "usergroups:read", "channels:read", "channels:join",
    "files:read", "files:write", "channels:history", "groups:history",
)
_DEFAULT_HUMANS = (
    ("U_REQUESTER", "requester", "Wang Requester"),
    ("U_APPROVER", "approver", "Lin Approver"),
    ("U_APPROVER2", "approver2", "Chen Approver"),
    ("U_OTHER", "other", "Other Person"),
)
_DEFAULT_CHANNELS = (
    ("C_GENERAL", "general"), ("C_APPROVALS", "sms-approvals"), ("C_REPLIES", "sms-replies"),
    ("C_ALERTS", "sms-alerts"),
)
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")
_MESSAGE_BLOCK_LIMIT, _VIEW_BLOCK_LIMIT, _SECTION_TEXT_LIMIT = 50, 100, 3000
_RESPONSE_URL_USES = 5  # Slack accepts up to five posts per response_url
_SIGN_IN_PAGE = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Slack</title></head><body>'
    b"<h1>Sign in to your workspace</h1><form action=\"/signin\" method=\"post\">"
    b'<input name="email"><input name="password" type="password"><button>Sign in</button></form></body></html>'
)

Listener = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Call:
    """One request the stand-in answered (token removed), so tests can assert what the bot asked for."""

    method: str
    params: dict[str, Any]
    at: float
    status: int


class SlackError(Exception):
    """An `{"ok": false, "error": ...}` answer, raised inside a method handler."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.extra = error, extra


class _Reply(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = {}


def _json_reply(payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload, ensure_ascii=False).encode(), headers=headers or {})


def _text_reply(status: int, text: str) -> _Reply:
    return _Reply(status, text.encode(), "text/plain; charset=utf-8")


class Faults:
    """Injected trouble (rate limits, errors, outages, latency) so retries and error paths can be tested."""

    def __init__(self) -> None:
        self.latency = 0.0
        self._lock = threading.Lock()
        self._rate_every, self._retry_after, self._rate_count = 0, 1, 0
        self._rate_methods: frozenset[str] | None = None
        self._failures: dict[str, list[tuple[str, str | None]]] = {}
        self._down = False

    def rate_limit_every(self, n: int, retry_after: int = 1, methods: Iterable[str] | None = None) -> None:
        """Answer every n-th matching API call with HTTP 429 and `Retry-After` (0 turns it off)."""
        with self._lock:
            self._rate_every, self._retry_after, self._rate_count = n, retry_after, 0
            self._rate_methods = frozenset(methods) if methods is not None else None

    def fail(self, method: str, error: str, count: int = 1, *, channel: str | None = None) -> None:
        """Make the next `count` calls to `method` answer `{"ok": false, "error": error}` (only the calls
        naming `channel`, if given: one channel or thread in trouble while the others work)."""
        with self._lock:
            self._failures.setdefault(method, []).extend([(error, channel)] * count)

    def down(self, on: bool = True) -> None:
        """Answer every request with HTTP 503 while on, like a Slack outage."""
        with self._lock:
            self._down = on

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self.latency, self._rate_every, self._rate_methods, self._down = 0.0, 0, None, False
            self._failures.clear()

    @property
    def is_down(self) -> bool:
        """True while `down(True)` is in effect."""
        return self._down

    def take_rate_limit(self, method: str) -> int | None:
        """Count this call; return the Retry-After seconds if it must be answered with 429."""
        with self._lock:
            if self._rate_every <= 0 or (self._rate_methods is not None and method not in self._rate_methods):
                return None
            self._rate_count += 1
            return self._retry_after if self._rate_count % self._rate_every == 0 else None

    def take_failure(self, method: str, channel: str | None = None) -> str | None:
        """Consume and return the next injected error for `method` (and this call's channel), if any."""
        with self._lock:
            queued = self._failures.get(method) or []
            for i, (error, only) in enumerate(queued):
                if only is None or only == channel:
                    del queued[i]
                    return error
            return None


# Method table: name -> (token kind, scope needed or None, handler). Filled by @_method below.
_METHODS: dict[str, tuple[str, str | None, Callable[[SlackStandIn, dict[str, Any]], dict[str, Any]]]] = {}


def _method(name: str, scope: str | None = None, token: str = "bot") -> Callable:
    def register(fn: Callable) -> Callable:
        _METHODS[name] = (token, scope, fn)
        return fn

    return register


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _parse_params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Merge query string and body (form or JSON) the way Slack reads them; decode JSON-valued fields."""
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if body and "json" in content_type:
        params.update(json.loads(body))
    elif body:
        params.update({k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()})
    for key in _JSON_FIELDS:
        if isinstance(params.get(key), str) and params[key].startswith(("[", "{")):
            params[key] = json.loads(params[key])
    return {k: v for k, v in params.items() if v is not None}


def _block_problems(blocks: list[dict[str, Any]], limit: int, pointer: str) -> list[str]:
    """Slack's Block Kit limits the bot could break: block count and section text length."""
    problems = []
    if len(blocks) > limit:
        problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]")
    for i, block in enumerate(blocks):
        text = block.get("text") if block.get("type") == "section" else None
        if isinstance(text, dict) and len(text.get("text", "")) > _SECTION_TEXT_LIMIT:
            problems.append(f"[ERROR] must be less than 3001 characters [json-pointer:{pointer}/{i}/text/text]")
    return problems


def _view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict) or "type" not in view:
        return ["[ERROR] missing required field: type [json-pointer:/view]"]
    problems = _block_problems(view.get("blocks", []), _VIEW_BLOCK_LIMIT, "/view/blocks")
    if len((view.get("title") or {}).get("text", "")) > 24:
        problems.append("[ERROR] must be less than 25 characters [json-pointer:/view/title/text]")
    if len(view.get("private_metadata", "")) > 3000:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    return problems


class SlackStandIn:
    """The stand-in: state (users, channels, messages, views, files), the HTTP server, faults and recordings."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake",
        app_token: str = "xapp-standin",
        scopes: Iterable[str] = DEFAULT_SCOPES,
        team_id: str = "T0STANDIN",
        bot_user_id: str = "U0BOT",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.bot_token, self.app_token, self.scopes = bot_token, app_token, tuple(scopes)
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, "B0BOT"
        self.host, self.port = host, port
        self.faults = Faults()
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._server: ThreadingHTTPServer | None = None
        self._seq = 0
        self._users: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._clear_recordings()
        self._add_defaults()

    # ----- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> SlackStandIn:
        """Serve on a daemon thread; returns self so `standin = SlackStandIn().start()` reads naturally."""
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # A short poll interval makes stop() quick, which adds up over a test suite.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-standin",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Root of the server, e.g. http://127.0.0.1:51234."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """What to pass as `WebClient(base_url=...)`."""
        return f"{self.base_url}/api/"

    # ----- fixtures ------------------------------------------------------------------------------------

    def _add_defaults(self) -> None:
        self.add_user(self.bot_user_id, "every8d", "EVERY8D SMS", is_bot=True)
        for user_id, name, real_name in _DEFAULT_HUMANS:
            self.add_user(user_id, name, real_name)
        humans = [user_id for user_id, _, _ in _DEFAULT_HUMANS]
        for channel_id, name in _DEFAULT_CHANNELS:
            self.add_channel(channel_id, name, members=humans)
        self.add_usergroup("S_APPROVERS", "sms-approvers", ["U_APPROVER", "U_APPROVER2"])

    def add_user(self, user_id: str, name: str, real_name: str = "", is_bot: bool = False) -> None:
        """Add (or replace) a workspace member that users.info can find."""
        profile = {"real_name": real_name or name, "display_name": name, "real_name_normalized": real_name or name,
                   "display_name_normalized": name}
        if is_bot:
            profile["bot_id"] = self.bot_id
        with self._lock:
            self._users[user_id] = {
                "id": user_id, "team_id": self.team_id, "name": name, "real_name": real_name or name,
                "deleted": False, "is_bot": is_bot, "is_admin": False, "tz": "Asia/Taipei", "tz_offset": 28800,
                "profile": profile,
            }

    def add_usergroup(self, group_id: str, handle: str, user_ids: Iterable[str]) -> None:
        """Add (or replace) a user group for usergroups.users.list."""
        with self._lock:
            self._groups[group_id] = {"id": group_id, "handle": handle, "users": list(user_ids)}

    def add_channel(self, channel_id: str, name: str, members: Iterable[str] = (), is_member: bool = True) -> None:
        """Add (or replace) a public channel; `is_member` says whether the bot is in it."""
        people = [self.bot_user_id] if is_member else []
        people += [m for m in members if m != self.bot_user_id]
        with self._lock:
            self._channels[channel_id] = {"id": channel_id, "name": name, "members": people, "is_im": False}

    def add_file(self, content: bytes, name: str, mimetype: str, filetype: str, user: str = "U_REQUESTER") -> str:
        """Store a file (as if a user uploaded it, e.g. through a modal's file_input) and return its id."""
        with self._lock:
            file_id = self._new_id("F")
            self._files[file_id] = self._new_file(file_id, name, name, mimetype, filetype, user, content)
            return file_id

    def add_message(self, channel: str, text: str, *, user: str, thread_ts: str | None = None,
                    blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Record a message a person wrote (e.g. a reply in a thread) and return it, ts included."""
        with self._lock:
            return copy.deepcopy(self._post(self._channel(channel)["id"], text, blocks or [], thread_ts, user=user))

    def new_response_url(self, channel: str | None = None, message_ts: str | None = None,
                         user: str | None = None) -> str:
        """A response_url on this server. Bound to a message, replace/delete_original act on it like Slack."""
        key = secrets.token_hex(8)
        with self._lock:
            self._response_urls[key] = {"channel": channel, "message_ts": message_ts, "user": user, "uses": 0}
        return f"{self.base_url}/response/{key}"

    def file_object(self, file_id: str) -> dict[str, Any]:
        """The file JSON Slack puts in files.info and in a file_input's state (for payload builders)."""
        with self._lock:
            return self._file_json(self._files[file_id])

    def on_event(self, callback: Listener) -> None:
        """Call `callback(kind, payload)` after every state change (see the module docstring)."""
        with self._lock:
            self._listeners.append(callback)

    # ----- recordings ----------------------------------------------------------------------------------

    def _clear_recordings(self) -> None:
        self._calls: list[Call] = []
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._responses: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._stacks: dict[str | None, list[str]] = {}
        self._homes: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._uploads: list[dict[str, Any]] = []
        self._function_results: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        """Forget calls, messages, views, responses and uploads; keep users, channels, files and faults."""
        with self._lock:
            self._clear_recordings()

    def _snapshot(self, value: Any) -> Any:
        with self._lock:
            return copy.deepcopy(value)

    @property
    def calls(self) -> list[Call]:
        """Every request answered, in arrival order."""
        return self._snapshot(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method."""
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages of a channel (a user id means the bot's DM with that user), as they are now."""
        with self._lock:
            posted = self._messages.get(self._dm_id(channel) if channel in self._users else channel, [])
            return self._snapshot([m for m in posted if m["thread_ts"] in (None, m["ts"])])

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Replies in a thread (the parent excluded), in order."""
        with self._lock:
            posted = self._messages.get(self._dm_id(channel) if channel in self._users else channel, [])
            return self._snapshot([m for m in posted if m["thread_ts"] == thread_ts and m["ts"] != thread_ts])

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages (chat.postEphemeral and ephemeral response_url posts), optionally for one user."""
        return [e for e in self._snapshot(self._ephemerals) if user is None or e["user"] == user]

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Posts to response_url endpoints, in order."""
        return self._snapshot(self._responses)

    def open_views(self, user: str | None = None) -> list[dict[str, Any]]:
        """Modals currently open (bottom of each stack first), optionally for one user."""
        with self._lock:
            ids = [v for u, stack in self._stacks.items() if user is None or u == user for v in stack]
            return self._snapshot([self._views[v] for v in ids])

    def home(self, user: str) -> dict[str, Any] | None:
        """The App Home view last published for a user."""
        return self._snapshot(self._homes.get(user))

    def function_result(self, execution_id: str) -> dict[str, Any] | None:
        """How a Workflow Builder step execution was ended: {"ok": True, "outputs": …} or {"ok": False,
        "error": …}; None while it is still running."""
        return self._snapshot(self._function_results.get(execution_id))

    @property
    def uploads(self) -> list[dict[str, Any]]:
        """Files shared through upload v2: file_id, name, title, content, channel, thread_ts, initial_comment."""
        return self._snapshot(self._uploads)

    # ----- HTTP routing --------------------------------------------------------------------------------

    def handle(self, verb: str, target: str, headers: Any, body: bytes) -> _Reply:
        """Answer one HTTP request (called by the request handler thread)."""
        if self.faults.latency:
            time.sleep(self.faults.latency)
        url = urlsplit(target)
        route = url.path.strip("/").split("/")
        if route[0] == "api" and len(route) == 2:
            return self._api(route[1], url.query, headers, body)
        if self.faults.is_down:
            return _text_reply(503, "Service Unavailable")
        if route[0] == "files-pri" and verb == "GET" and len(route) >= 3:
            return self._download(route[1].rpartition("-")[2], headers)
        if route[:2] == ["upload", "v1"] and len(route) == 3:
            return self._upload(route[2], body)
        if route[0] == "response" and len(route) == 2:
            return self._respond(route[1], body)
        return _text_reply(404, "Not Found")

    def _record(self, method: str, params: dict[str, Any], at: float, status: int) -> None:
        with self._lock:
            self._calls.append(Call(method, params, at, status))

    def _api(self, method: str, query: str, headers: Any, body: bytes) -> _Reply:
        at = time.time()
        try:
            params = _parse_params(query, headers.get("Content-Type", ""), body)
        except ValueError:
            params = {}
            reply = _json_reply({"ok": False, "error": "invalid_json"})
        else:
            auth = headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else params.get("token")
            params.pop("token", None)
            reply = self._answer(method, token, params)
        self._record(method, params, at, reply.status)
        return reply

    def _answer(self, method: str, token: str | None, params: dict[str, Any]) -> _Reply:
        if self.faults.is_down:
            return _text_reply(503, "Service Unavailable")
        retry_after = self.faults.take_rate_limit(method)
        if retry_after is not None:
            return _json_reply({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(retry_after)})
        if method not in _METHODS:
            return _json_reply({"ok": False, "error": "unknown_method", "req_method": method})
        injected = self.faults.take_failure(method, params.get("channel"))
        if injected:
            return _json_reply({"ok": False, "error": injected})
        kind, scope, handler = _METHODS[method]
        headers = {"x-oauth-scopes": ",".join(self.scopes)}
        try:
            self._check_token(kind, token)
            if scope and scope not in self.scopes:
                raise SlackError("missing_scope", needed=scope, provided=",".join(self.scopes))
            with self._lock:
                result = handler(self, params)
        except SlackError as e:
            return _json_reply({"ok": False, "error": e.error, **e.extra}, headers=headers)
        except Exception:  # arguments of a shape the stand-in did not expect: say so, like Slack, and log why
            log.exception("slack stand-in could not handle %s", method)
            return _json_reply({"ok": False, "error": "invalid_arguments"}, headers=headers)
        return _json_reply({"ok": True, **result}, headers=headers)

    def _check_token(self, kind: str, token: str | None) -> None:
        if kind == "none":
            return
        if not token:
            raise SlackError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise SlackError("invalid_auth")
        if token != (self.app_token if kind == "app" else self.bot_token):
            raise SlackError("not_allowed_token_type")

    # ----- state helpers (called with the lock held) ---------------------------------------------------

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in self._listeners:
            try:
                listener(kind, copy.deepcopy(payload))
            except Exception:
                log.exception("slack stand-in listener failed on %s", kind)

    def _new_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:07d}"

    def _new_ts(self) -> str:
        """Unique, increasing message timestamps in Slack's "seconds.micros" form."""
        self._seq += 1
        micros = 1_700_000_000_000_000 + self._seq * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _dm_id(self, user_id: str) -> str:
        return f"D{user_id}"

    def _channel(self, channel_id: str | None, *, bot_must_be_member: bool = False) -> dict[str, Any]:
        """Look a channel up; a user id opens (or finds) the bot's DM with that user, like chat.postMessage."""
        if channel_id in self._users and channel_id not in self._channels:
            dm = self._dm_id(channel_id)
            self._channels.setdefault(dm, {"id": dm, "name": dm, "members": [self.bot_user_id, channel_id],
                                           "is_im": True})
            channel_id = dm
        channel = self._channels.get(channel_id or "")
        if channel is None:
            raise SlackError("channel_not_found")
        member = self.bot_user_id in channel["members"] or "chat:write.public" in self.scopes
        if bot_must_be_member and not member:
            raise SlackError("not_in_channel")
        return channel

    def _message(self, channel_id: str | None, ts: str | None) -> dict[str, Any]:
        for message in self._messages.get(self._channel(channel_id)["id"], []):
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")

    def _check_message_content(self, text: str, blocks: list[dict[str, Any]]) -> None:
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > 40_000:
            raise SlackError("msg_too_long")
        problems = _block_problems(blocks, _MESSAGE_BLOCK_LIMIT, "/blocks")
        if problems:
            raise SlackError("invalid_blocks", response_metadata={"messages": problems})

    def _post(self, channel_id: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None, *,
              user: str, files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        message = {"type": "message", "ts": self._new_ts(), "channel": channel_id, "text": text, "blocks": blocks,
                   "thread_ts": thread_ts or None, "user": user, "history": []}
        if user == self.bot_user_id:
            message["bot_id"] = self.bot_id
        if files:
            message["files"] = files
        self._messages.setdefault(channel_id, []).append(message)
        self._emit("message", message)
        return message

    def _edit(self, message: dict[str, Any], params: dict[str, Any]) -> None:
        """Apply chat.update: fields not given are kept, the previous version goes to `history`."""
        message["history"].append({"text": message["text"], "blocks": message["blocks"]})
        message["text"] = params.get("text", message["text"])
        message["blocks"] = params.get("blocks", message["blocks"])
        self._emit("message_changed", message)

    def _delete(self, message: dict[str, Any]) -> None:
        self._messages[message["channel"]].remove(message)
        self._emit("message_deleted", {"channel": message["channel"], "ts": message["ts"]})

    def _ephemeral(self, channel: str, user: str, text: str, blocks: list[dict[str, Any]],
                   thread_ts: str | None) -> dict[str, Any]:
        record = {"channel": channel, "user": user, "text": text, "blocks": blocks, "ts": self._new_ts(),
                  "thread_ts": thread_ts}
        self._ephemerals.append(record)
        self._emit("ephemeral", record)
        return record

    def _new_file(self, file_id: str, name: str, title: str, mimetype: str, filetype: str, user: str,
                  content: bytes) -> dict[str, Any]:
        return {"id": file_id, "name": name, "title": title, "mimetype": mimetype, "filetype": filetype,
                "user": user, "created": int(time.time()), "content": content}

    def _file_json(self, f: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.base_url}/files-pri/{self.team_id}-{f['id']}"
        public = {k: v for k, v in f.items() if k != "content"}
        return {**public, "timestamp": f["created"], "size": len(f["content"]), "pretty_type": f["filetype"].upper(),
                "mode": "hosted", "is_external": False, "url_private": f"{base}/{quote(f['name'])}",
                "url_private_download": f"{base}/download/{quote(f['name'])}"}

    def _trigger_user(self, trigger_id: str) -> str | None:
        """Payload builders put the user id in the trigger_id ("<n>.<user>.<hex>"); other strings work too."""
        parts = trigger_id.split(".")
        return parts[1] if len(parts) == 3 and parts[1] in self._users else None

    def _store_view(self, view: dict[str, Any], view_id: str, **links: Any) -> dict[str, Any]:
        stored = {**view, "id": view_id, "team_id": self.team_id, "app_id": "A0STANDIN", "bot_id": self.bot_id,
                  "state": {"values": {}}, "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
                  "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
                  "external_id": view.get("external_id", ""), **links}
        self._views[view_id] = stored
        return stored

    def _checked_view(self, params: dict[str, Any]) -> dict[str, Any]:
        problems = _view_problems(params.get("view"))
        if problems:
            raise SlackError("invalid_arguments", response_metadata={"messages": problems})
        return params["view"]

    def _trigger(self, params: dict[str, Any]) -> str | None:
        if not params.get("trigger_id"):
            raise SlackError("invalid_arguments", response_metadata={"messages": ["missing trigger_id"]})
        return self._trigger_user(params["trigger_id"])

    # ----- Web API methods -----------------------------------------------------------------------------

    @_method("api.test", token="none")
    def _api_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"args": p}

    @_method("auth.test")
    def _auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://standin.slack.com/", "team": "Stand-in", "user": self._users[self.bot_user_id]["name"],
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    @_method("apps.connections.open", token="app")
    def _apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://{self.host}:{self.port}/link/?ticket={secrets.token_hex(8)}"}

    @_method("chat.postMessage", "chat:write")
    def _chat_post_message(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p.get("channel"), bot_must_be_member=True)
        text, blocks = p.get("text", ""), p.get("blocks", [])
        self._check_message_content(text, blocks)
        message = self._post(channel["id"], text, blocks, p.get("thread_ts"), user=self.bot_user_id)
        if isinstance(p.get("metadata"), dict):
            message["metadata"] = p["metadata"]
        return {"channel": channel["id"], "ts": message["ts"], "message": message}

    @_method("chat.update", "chat:write")
    def _chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self._message(p.get("channel"), p.get("ts"))
        if message["user"] != self.bot_user_id:
            raise SlackError("cant_update_message")
        self._check_message_content(p.get("text", message["text"]), p.get("blocks", message["blocks"]))
        self._edit(message, p)
        return {"channel": message["channel"], "ts": message["ts"], "text": message["text"], "message": message}

    @_method("chat.postEphemeral", "chat:write")
    def _chat_post_ephemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p.get("channel"), bot_must_be_member=True)
        if p.get("user") not in channel["members"]:
            raise SlackError("user_not_in_channel")
        text, blocks = p.get("text", ""), p.get("blocks", [])
        self._check_message_content(text, blocks)
        record = self._ephemeral(channel["id"], p["user"], text, blocks, p.get("thread_ts"))
        return {"message_ts": record["ts"]}

    @_method("chat.delete", "chat:write")
    def _chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self._message(p.get("channel"), p.get("ts"))
        if message["user"] != self.bot_user_id:
            raise SlackError("cant_delete_message")
        self._delete(message)
        return {"channel": message["channel"], "ts": message["ts"]}

    @_method("chat.getPermalink", "chat:write")
    def _chat_get_permalink(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self._message(p.get("channel"), p.get("message_ts"))
        link = f"https://standin.slack.com/archives/{message['channel']}/p{message['ts'].replace('.', '')}"
        if message["thread_ts"] and message["thread_ts"] != message["ts"]:
            link += f"?thread_ts={message['thread_ts']}&cid={message['channel']}"
        return {"channel": message["channel"], "permalink": link}

    @_method("views.open")
    def _views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        user, view = self._trigger(p), self._checked_view(p)
        view_id = self._new_id("V")
        stored = self._store_view(view, view_id, root_view_id=view_id, previous_view_id=None)
        self._stacks[user] = [view_id]
        self._emit("view_opened", {"user": user, "view": stored})
        return {"view": stored}

    @_method("views.push")
    def _views_push(self, p: dict[str, Any]) -> dict[str, Any]:
        user, view = self._trigger(p), self._checked_view(p)
        stack = self._stacks.setdefault(user, [])
        if len(stack) >= 3:
            raise SlackError("push_limit_reached")
        view_id = self._new_id("V")
        links = {"root_view_id": stack[0] if stack else view_id, "previous_view_id": stack[-1] if stack else None}
        stored = self._store_view(view, view_id, **links)
        stack.append(view_id)
        self._emit("view_pushed", {"user": user, "view": stored})
        return {"view": stored}

    @_method("views.update")
    def _views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(p)
        by_external = {v["external_id"]: k for k, v in self._views.items() if v["external_id"]}
        view_id = p.get("view_id") or by_external.get(p.get("external_id", ""))
        old = self._views.get(view_id or "")
        if old is None:
            raise SlackError("not_found")
        if p.get("hash") and p["hash"] != old["hash"]:
            raise SlackError("hash_conflict")
        links = {"root_view_id": old["root_view_id"], "previous_view_id": old["previous_view_id"]}
        stored = self._store_view({"external_id": old["external_id"], **view}, old["id"], **links)
        self._emit("view_updated", {"view": stored})
        return {"view": stored}

    @_method("functions.completeSuccess")
    def _functions_complete_success(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._end_function(p, {"ok": True, "outputs": p.get("outputs") or {}})

    @_method("functions.completeError")
    def _functions_complete_error(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("error"):
            raise SlackError("invalid_arguments")
        return self._end_function(p, {"ok": False, "error": p["error"]})

    def _end_function(self, p: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """A step execution ends once, like Slack's (a second end is `execution_not_in_running_state`)."""
        execution = str(p.get("function_execution_id") or "")
        if not execution:
            raise SlackError("function_execution_not_found")
        if execution in self._function_results:
            raise SlackError("execution_not_in_running_state")
        self._function_results[execution] = result
        self._emit("function_ended", {"execution_id": execution, **result})
        return {}

    @_method("views.publish")
    def _views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        view, user = self._checked_view(p), p.get("user_id", "")
        old = self._homes.get(user)
        if old and p.get("hash") and p["hash"] != old["hash"]:
            raise SlackError("hash_conflict")
        view_id = old["id"] if old else self._new_id("V")
        self._homes[user] = self._store_view(view, view_id, root_view_id=view_id, previous_view_id=None)
        self._emit("home_published", {"user": user, "view": self._homes[user]})
        return {"view": self._homes[user]}

    @_method("users.info", "users:read")
    def _users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("user") not in self._users:
            raise SlackError("user_not_found")
        return {"user": self._users[p["user"]]}

    @_method("usergroups.users.list", "usergroups:read")
    def _usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("usergroup") not in self._groups:
            raise SlackError("no_such_subteam")
        return {"users": self._groups[p["usergroup"]]["users"]}

    def _channel_json(self, channel: dict[str, Any]) -> dict[str, Any]:
        return {"id": channel["id"], "name": channel["name"], "is_channel": not channel["is_im"],
                "is_im": channel["is_im"], "is_private": False, "is_archived": False,
                "is_general": channel["name"] == "general", "is_member": self.bot_user_id in channel["members"],
                "num_members": len(channel["members"])}

    @_method("conversations.info", "channels:read")
    def _conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel_json(self._channel(p.get("channel")))}

    def _history_json(self, message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
        """A message as conversations.history/replies return it: metadata only when asked for."""
        shown = {k: v for k, v in message.items() if k not in ("history", "metadata", "channel")}
        if with_metadata and "metadata" in message:
            shown["metadata"] = message["metadata"]
        return shown

    @staticmethod
    def _in_window(message: dict[str, Any], p: dict[str, Any]) -> bool:
        ts = float(message["ts"])
        return float(p.get("oldest") or 0) <= ts <= float(p.get("latest") or "inf")

    @_method("conversations.history", "channels:history")
    def _conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages, newest first, within oldest..latest (metadata with include_all_metadata)."""
        channel = self._channel(p.get("channel"), bot_must_be_member=True)
        limit = int(p.get("limit") or 100)
        top = [m for m in self._messages.get(channel["id"], []) if m["thread_ts"] in (None, m["ts"])]
        chosen = [m for m in reversed(top) if self._in_window(m, p)][:limit]
        with_metadata = _truthy(p.get("include_all_metadata"))
        return {"messages": [self._history_json(m, with_metadata) for m in chosen], "has_more": False,
                "response_metadata": {"next_cursor": ""}}

    @_method("conversations.replies", "channels:history")
    def _conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent, then its replies oldest first, within oldest..latest."""
        parent = self._message(p.get("channel"), p.get("ts"))
        limit = int(p.get("limit") or 100)
        thread = [m for m in self._messages.get(parent["channel"], [])
                  if m is parent or m["thread_ts"] == parent["ts"]]
        chosen = [m for m in thread if m is parent or self._in_window(m, p)][:limit]
        with_metadata = _truthy(p.get("include_all_metadata"))
        return {"messages": [self._history_json(m, with_metadata) for m in chosen], "has_more": False,
                "response_metadata": {"next_cursor": ""}}

    @_method("conversations.members", "channels:read")
    def _conversations_members(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p.get("channel"))
        return {"members": channel["members"], "response_metadata": {"next_cursor": ""}}

    @_method("conversations.join", "channels:join")
    def _conversations_join(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(p.get("channel"))
        if self.bot_user_id not in channel["members"]:
            channel["members"].insert(0, self.bot_user_id)
        return {"channel": self._channel_json(channel)}

    @_method("files.info", "files:read")
    def _files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("file") not in self._files:
            raise SlackError("file_not_found")
        return {"file": self._file_json(self._files[p["file"]])}

    @_method("files.getUploadURLExternal", "files:write")
    def _files_get_upload_url(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            raise SlackError("invalid_arguments")
        file_id, name = self._new_id("F"), p["filename"]
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        filetype = name.rpartition(".")[2].lower() if "." in name else "binary"
        self._pending[file_id] = self._new_file(file_id, name, name, mimetype, filetype, self.bot_user_id, b"")
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    @_method("files.completeUploadExternal", "files:write")
    def _files_complete_upload(self, p: dict[str, Any]) -> dict[str, Any]:
        wanted = p.get("files") or []
        if not wanted or any(f.get("id") not in self._pending for f in wanted):
            raise SlackError("file_not_found")
        targets = [c for c in [p.get("channel_id"), *str(p.get("channels", "")).split(",")] if c]
        channels = [self._channel(c, bot_must_be_member=True)["id"] for c in targets]
        done = []
        for item in wanted:
            f = self._pending.pop(item["id"])
            f["title"] = item.get("title") or f["name"]
            self._files[f["id"]] = f
            done.append(f)
        for channel in channels:
            self._share(done, channel, p)
        return {"files": [{"id": f["id"], "title": f["title"]} for f in done]}

    def _share(self, files: list[dict[str, Any]], channel: str, p: dict[str, Any]) -> None:
        """Post the shared files as one message (like Slack) and record each upload."""
        comment, thread_ts = p.get("initial_comment", ""), p.get("thread_ts")
        self._post(channel, comment, [], thread_ts, user=self.bot_user_id, files=[self._file_json(f) for f in files])
        for f in files:
            upload = {"file_id": f["id"], "name": f["name"], "title": f["title"], "content": f["content"],
                      "channel": channel, "thread_ts": thread_ts, "initial_comment": comment}
            self._uploads.append(upload)
            self._emit("file_shared", upload)

    # ----- other routes --------------------------------------------------------------------------------

    def _download(self, file_id: str, headers: Any) -> _Reply:
        """Bytes with the bot token; without it Slack's trap: HTTP 200 and an HTML sign-in page."""
        authorized = headers.get("Authorization", "") == f"Bearer {self.bot_token}"
        with self._lock:
            f = self._files.get(file_id)
        self._record("file_download", {"file_id": file_id, "authorized": authorized}, time.time(),
                     404 if f is None else 200)
        if f is None:
            return _text_reply(404, "Not Found")
        if not authorized:
            return _Reply(200, _SIGN_IN_PAGE, "text/html; charset=utf-8")
        return _Reply(200, f["content"], f["mimetype"])

    def _upload(self, file_id: str, body: bytes) -> _Reply:
        with self._lock:
            f = self._pending.get(file_id)
            if f is not None:
                f["content"] = body
        self._record("file_upload", {"file_id": file_id, "bytes": len(body)}, time.time(), 404 if f is None else 200)
        return _text_reply(404, "Not Found") if f is None else _text_reply(200, f"OK - {len(body)}")

    def _respond(self, key: str, body: bytes) -> _Reply:
        at = time.time()
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = None
        status, text = self._apply_response(key, payload) if isinstance(payload, dict) else (400, "invalid_payload")
        self._record("response_url", {"key": key, **(payload if isinstance(payload, dict) else {})}, at, status)
        return _text_reply(status, text)

    def _apply_response(self, key: str, payload: dict[str, Any]) -> tuple[int, str]:
        """Record a response_url post and act on it as Slack would (replace, delete, in-channel, ephemeral)."""
        with self._lock:
            binding = self._response_urls.get(key)
            if binding is None:
                return 404, "expired_url"
            if binding["uses"] >= _RESPONSE_URL_USES:
                return 404, "used_url"
            binding["uses"] += 1
            record = {"url": f"{self.base_url}/response/{key}",
                      "response_type": payload.get("response_type", "ephemeral"), "text": payload.get("text", ""),
                      "blocks": payload.get("blocks", []), "replace_original": _truthy(payload.get("replace_original")),
                      "delete_original": _truthy(payload.get("delete_original")),
                      "thread_ts": payload.get("thread_ts")}
            self._responses.append(record)
            self._emit("response", record)
            self._act_on_response(binding, record)
            return 200, "ok"

    def _act_on_response(self, binding: dict[str, Any], r: dict[str, Any]) -> None:
        channel, ts, user = binding["channel"], binding["message_ts"], binding["user"]
        try:
            if ts and channel and r["delete_original"]:
                self._delete(self._message(channel, ts))
            elif ts and channel and r["replace_original"]:
                ephemeral = next((e for e in self._ephemerals if e["ts"] == ts and e["user"] == user), None)
                if ephemeral is not None:  # a button in a message only this user sees: Slack replaces it
                    ephemeral.update(text=r["text"], blocks=r["blocks"])
                    self._emit("ephemeral", ephemeral)
                else:
                    self._edit(self._message(channel, ts), {"text": r["text"], "blocks": r["blocks"]})
            elif channel and r["response_type"] == "in_channel":
                self._post(self._channel(channel)["id"], r["text"], r["blocks"], r["thread_ts"], user=self.bot_user_id)
            elif channel and user:
                self._ephemeral(channel, user, r["text"], r["blocks"], r["thread_ts"])
        except SlackError:
            log.warning("response_url post refers to a message or channel the stand-in does not know")


class _Handler(BaseHTTPRequestHandler):
    """Reads one request and writes the stand-in's reply; keep-alive so benchmarks reuse connections."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle plus delayed ACK stall every
    # keep-alive call by ~40 ms on loopback.
    disable_nagle_algorithm = True
    standin: SlackStandIn

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = self.standin.handle(self.command, self.path, self.headers, body)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line."""
