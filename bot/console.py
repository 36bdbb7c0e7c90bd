"""`every8d-bot console`: try the real product on this machine, with a terminal standing in for Slack.

What runs is what `every8d-bot run` runs: the same `Runtime` (Bolt listeners, storage, scheduler, Slack
poster, callback receiver), reached the way Slack reaches it, by signed HTTP requests to /slack/events.
Only the two outsiders are stood in: Slack by the local `SlackStandIn` (whose recordings are rendered
here as text) and EVERY8D by the built-in sandbox, unless EVERY8D_UID/EVERY8D_PWD are set. No
workspace, token or account is needed, so it is the README's first command (`make run`).

A person types what they would type in Slack (`/sms send 0912345678 您好`, `/sms`, a plain message) plus
a few console commands (`/as`, `/press`, `/fill`, `/submit`, … see HELP). `--script FILE` runs the same
lines without a terminal and exits 1 at the first step that fails, naming its line, so a scenario is
also a test (examples/demo.console runs in CI).

Why the database is never BOT_DB_PATH: the console's poster delivers the outbox to the stand-in, so
sharing the real bot's database would divert its posts away from Slack. In sandbox mode the database
is a fresh temporary file (the sandbox forgets its batches at exit); with a real EVERY8D account it is
`every8d-bot-console.db` in the current directory, so batches sent for real keep being tracked.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import queue
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import requests

from bot.config import Config
from bot.console_modal import FillError, Modal, ModalStacks, fill, shown_value
from bot.console_render import (
    Button,
    ButtonBook,
    Container,
    boxed,
    mrkdwn,
    plain,
    render_message,
    render_view,
)
from bot.logs import RedactSecrets
from bot.runtime import Runtime
from bot.wsgi import build_wsgi_app, serve_in_thread, stop_server
from every8d.phones import mask
from slackstandin import SlackStandIn, payloads
from slackstandin.signing import post_signed

#: The people and channels of the stood-in workspace. U_APPROVER is always an approver.
CAST: tuple[tuple[str, str], ...] = (
    ("U_REQUESTER", "Wang Requester"), ("U_APPROVER", "Lin Approver"), ("U_APPROVER2", "Chen Approver"),
    ("U_OTHER", "Other Person"),
)
CHANNELS: tuple[tuple[str, str], ...] = (
    ("C_GENERAL", "general"), ("C_APPROVALS", "sms-approvals"), ("C_REPLIES", "sms-replies"),
    ("C_ALERTS", "sms-alerts"),
)
CONSOLE_DB = "every8d-bot-console.db"
#: Where files the bot uploads (the audit CSV, the weekly chart) are saved, under the current directory.
CONSOLE_FILES = "console-files"
DEFAULT_WAIT_SECONDS = 30.0
SETTLE_SECONDS = 10.0

#: Words with which the bot refuses or apologises in a direct answer (see handlers/commands.py,
#: actions.py, submissions.py, app.py). A step whose answer says one of them failed, unless marked with `!`.
REFUSALS: tuple[str, ...] = (
    "無法送出", "無法取得", "找不到", "只有核准者", "只有申請人", "不能核准", "處理過了", "抱歉", "取消失敗",
    "請在 send", "請提供", "已經確定", "無法再取消", "已過期", "未核准：",
    "was not sent", "not available", "nothing found", "no longer exists", "only approvers", "only the requester",
    "cannot approve", "already handled", "sorry", "cancel failed", "give numbers", "give a batch",
    "already settled", "already went out", "expired", "not approved:",
)

HELP = """\
Type what you would type in Slack:
  /sms send 0912345678,0922333444 您好     one-line send request (an approval card appears)
  /sms                                      open the compose window (then /fill, /submit)
  /sms credit · /sms scheduled · /sms status #1 · /sms help
  any other text                            a message in the current channel (or thread)
Console commands:
  /as <user>           act as someone else (e.g. /as U_APPROVER); /users lists who is here
  /in <channel>        move to a channel (#general, #sms-approvals, …)
  /thread <msg n|off>  type into the thread of message n;  /reply <msg n> <text> for one message
  /press <n|label|action_id>   press button [n], or the newest button with that label or action id
  /fill <field> <value>        fill a field of your open modal (\\n for a new line; empty clears it);
                               send_at takes `2026-12-01 09:00` or `+2h`, image a file path
  /submit · /cancel    submit or close your open modal
  /home                open your App Home
  /shortcut send_as_sms <msg n|last> · /shortcut compose_sms   the message and global shortcuts
  /workflow recipients=<numbers> message=<text>           a Workflow Builder step "Send SMS" run by you
  /wait <seconds>      let time pass;  /wait-for [20s] <text>  wait until something shown contains text
  /expect <text>       fail unless something shown so far contains text
  /tick                poll delivery status and check the credit now
  /sandbox reply <latest|#request|batch id> <text>   the first recipient of that batch replies
  /sandbox credit <points>                            set the sandbox's credit (try 100 for a low-credit alert)
  /help · /quit
In scripts: `# …` is a comment; `! <line>` means the step must be refused (e.g. `! /submit` with a bad
number, `! /expect text` that must not have appeared)."""


class StepFailed(Exception):
    """A step could not run or did not do what it should; the message says why in one line."""


class _Quit(Exception):
    """`/quit`: leave the console."""


@dataclass(frozen=True)
class Place:
    """Where the person is typing: a channel, optionally inside a thread."""

    channel: str
    thread_ts: str | None = None


def console_config(base: Config, explicit: Mapping[str, str], standin: SlackStandIn, db_path: str, *,
                   scripted: bool) -> Config:
    """The configuration of the console: the environment's (`base`: EVERY8D account, language,
    thresholds, …) with Slack's side pointed at the stand-in, its channels, and short intervals so
    things happen while one watches. Sandbox replies are off in scripts, so a scenario is deterministic,
    unless SANDBOX_REPLY_RATE is set (`explicit`: the variables actually set)."""
    return replace(
        base,
        slack_bot_token=standin.bot_token,
        slack_signing_secret=secrets.token_hex(16),
        slack_app_token="",
        slack_api_url=standin.api_url,
        callback_token=secrets.token_urlsafe(24),
        db_path=db_path,
        approvers=tuple(dict.fromkeys(("U_APPROVER", *base.approvers))),
        approval_channel="C_APPROVALS",
        replies_channel="C_REPLIES",
        alert_channel="C_ALERTS",
        status_poll_seconds=2.0,
        credit_poll_seconds=5.0,
        sandbox_delivery_seconds=base.sandbox_delivery_seconds if "SANDBOX_DELIVERY_SECONDS" in explicit else 2.0,
        sandbox_reply_rate=base.sandbox_reply_rate if "SANDBOX_REPLY_RATE" in explicit else (0.0 if scripted else 0.3),
        # At the prompt, quiet hours are run's (the default included), so what one tries is what Slack
        # does. A script must play the same at any hour: there, only when BOT_QUIET_HOURS is set.
        quiet_hours=base.quiet_hours if "BOT_QUIET_HOURS" in explicit or not scripted else "",
    )


def environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """The variables in effect: `env` when given (tests), else the process environment over `.env`."""
    if env is not None:
        return dict(env)
    return {**_dotenv(), **os.environ}


def _dotenv() -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(".env").items() if v is not None} if Path(".env").is_file() else {}


class _ScreenLog(logging.Handler):
    """The product's warnings and errors, shown in the console (secrets redacted); errors also fail the
    script step during which they happen."""

    def __init__(self, console: Console, secrets_: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.console = console
        self.addFilter(RedactSecrets(secrets_))

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.levelname.lower()} · {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        self.console.logged(record.levelno, text)


class Console:
    """One console session: the stand-in, the product, the screen, and the person's commands."""

    def __init__(self, env: Mapping[str, str] | None, out: IO[str], *, script_dir: Path | None = None,
                 files_dir: Path | None = None) -> None:
        self.env, self.out, self.script_dir = env, out, script_dir
        self.files_dir = files_dir if files_dir is not None else Path.cwd() / CONSOLE_FILES
        self.scripted = script_dir is not None
        self.user, self.place = "U_REQUESTER", Place("C_GENERAL")
        self.buttons, self.modals = ButtonBook(), ModalStacks()
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._seen = threading.Condition()
        self._transcript: list[str] = []
        self._answers: list[tuple[str, str]] = []  # (user, text) of direct answers, for refusal checks
        self._errors: list[str] = []  # product ERROR log lines
        self._numbers: dict[tuple[str, str], int] = {}
        self._messages: dict[int, tuple[str, str, str | None]] = {}  # n -> (channel, ts, thread_ts)
        self._bodies: dict[str, list[str]] = {}  # message container -> its lines as last shown
        self._at_prompt = ""
        self._started = False
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._log_handler: _ScreenLog | None = None
        self.standin: SlackStandIn | None = None
        self.runtime: Runtime | None = None
        self.config = Config()
        self.people: dict[str, str] = {}
        self.events_url = ""
        self._server: Any = None  # waitress's server object
        self._workflow_runs = 0
        self._printer = threading.Thread(target=self._print_loop, name="console-screen", daemon=True)

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the stand-in, the product and the screen: a few seconds, no network beyond loopback."""
        self._printer.start()
        self.standin = SlackStandIn().start()
        self._tempdir = tempfile.TemporaryDirectory(prefix="every8d-console-")
        explicit = environment(self.env)
        base = Config.from_env(explicit, dotenv=None)
        db_path = str(Path(self._tempdir.name) / "console.db") if base.sandbox else str(Path.cwd() / CONSOLE_DB)
        self.config = console_config(base, explicit, self.standin, db_path, scripted=self.scripted)
        self._populate(self.config.approvers)
        self.standin.on_event(lambda kind, payload: self._events.put((kind, payload)))
        self._log_handler = _ScreenLog(self, [self.config.every8d_pwd, self.config.slack_signing_secret,
                                              self.config.callback_token])
        logging.getLogger().addHandler(self._log_handler)
        # Bind first (the system picks the port), then build the product: its sandbox needs the callback
        # URL, and a port only probed as free could be taken by the sandbox's own server meanwhile.
        application: list[Any] = []
        self._server, port = serve_in_thread(lambda environ, start: application[0](environ, start),
                                             host="127.0.0.1", port=0, threads=8)
        callback_url = f"http://127.0.0.1:{port}/every8d/callback/{self.config.callback_token}"
        self.runtime = Runtime(self.config, callback_url=callback_url)
        application.append(build_wsgi_app(self.runtime.app, self.runtime.receiver))
        self.events_url = f"http://127.0.0.1:{port}/slack/events"
        self.runtime.start()
        self._started = True
        self._settle()

    def _populate(self, approvers: Iterable[str]) -> None:
        """The stood-in workspace: the cast (plus any approver from BOT_APPROVERS) in every channel."""
        assert self.standin is not None
        people = dict(CAST)
        people.update({a: a for a in approvers if a.startswith("U") and a not in people})
        for user_id, name in people.items():
            self.standin.add_user(user_id, user_id.lower(), name)
        for channel_id, name in CHANNELS:
            self.standin.add_channel(channel_id, name, members=list(people))
        self.people = people

    def stop(self) -> None:
        """Stop everything started, in the reverse order; safe after a partial start."""
        if self._server is not None:
            stop_server(self._server)
        if self.runtime is not None:
            self.runtime.stop()
        if self.standin is not None:
            self.standin.stop()
        if self._printer.is_alive():
            self._events.put(("stop", None))
            self._printer.join(timeout=5)
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
        if self._tempdir is not None:
            self._tempdir.cleanup()

    @property
    def product(self) -> Runtime:
        """The running product (after start())."""
        assert self.runtime is not None, "start() first"
        return self.runtime

    @property
    def slack(self) -> SlackStandIn:
        """The Slack stand-in (after start())."""
        assert self.standin is not None, "start() first"
        return self.standin

    # -- running lines -----------------------------------------------------------------------------

    def run_script(self, lines: list[str]) -> int:
        """Run each line as a step; exit 1 at the first that fails, naming its line; 0 at the end."""
        self._write(f"every8d-bot console · {self._mode()} · script of {len(lines)} lines\n  {self._quiet_hours()}\n")
        steps = 0
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line:
                self.say("")
                continue
            if line.startswith("#"):
                self.say(line)
                continue
            self.say(f"{self.prompt()}{line}")
            try:
                problems = self.step(line)
            except _Quit:
                break
            steps += 1
            if problems:
                self.say(f"✗ line {number} failed: {line}\n  " + "\n  ".join(problems))
                self._events.join()
                return 1
        self.say(f"✓ script passed: {steps} steps")
        self._events.join()
        return 0

    def interact(self, stdin: IO[str]) -> int:
        """The prompt: one line at a time until /quit or end of input."""
        self._write(self.banner())
        echo = not _isatty(stdin)
        if not echo:
            try:
                import readline  # noqa: F401 - importing it gives input() line editing and history
            except ImportError:
                pass
        while True:
            try:
                line = self._read(stdin, echo=echo)
            except EOFError:
                self.say("bye")
                break
            if not line.strip():
                continue
            try:
                problems = self.step(line.strip())
            except _Quit:
                self.say("bye")
                break
            for problem in problems:
                self.say(f"✗ {problem}")
        self._events.join()
        return 0

    def _read(self, stdin: IO[str], *, echo: bool) -> str:
        prompt = self.prompt()
        self._events.join()
        self._at_prompt = prompt
        try:
            if stdin is sys.stdin and self.out is sys.stdout and not echo:
                return input(prompt)  # a terminal: input() gets readline's editing and history
            self._write(prompt)
            line = stdin.readline()
            if not line:
                raise EOFError
            if echo:
                self._write(line if line.endswith("\n") else line + "\n")
            return line
        finally:
            self._at_prompt = ""

    def step(self, line: str) -> list[str]:
        """Run one line and settle; returns what went wrong (empty: it worked). `! line` inverts."""
        must_refuse = line.startswith("!")
        if must_refuse:
            line = line[1:].strip()
        answers, errors = len(self._answers), len(self._errors)
        problems: list[str] = []
        try:
            self.execute(line)
        except StepFailed as exc:
            problems.append(str(exc))
        self._settle()
        problems += [f"the bot refused: {text}" for user, text in self._answers[answers:]
                     if user == self.user and _refusal(text)]
        problems += [f"the product logged an error: {text}" for text in self._errors[errors:]]
        if not must_refuse:
            return problems
        if problems:
            self.say(f"  (refused, as expected: {_clip(problems[0], 100)})")
            return []
        return ["expected this step to be refused, but it was not"]

    def execute(self, line: str) -> None:
        """One line: a Slack slash command, a console command, or a message in the current place."""
        name, _, args = line.partition(" ")
        if name == "/sms":
            self._slash(name, args.strip())
        elif name.startswith("/"):
            command = self._commands().get(name)
            if command is None:
                raise StepFailed(f"unknown command {name} (/help lists them)")
            command(args.strip())
        else:
            self._message(line, self.place)

    def _commands(self) -> dict[str, Callable[[str], None]]:
        return {
            "/help": lambda _: self.say(HELP), "/users": self._users, "/as": self._as, "/in": self._in,
            "/thread": self._thread, "/reply": self._reply, "/press": self._press, "/click": self._press,
            "/fill": self._fill, "/submit": self._submit, "/cancel": self._cancel, "/home": self._home,
            "/wait": self._wait, "/wait-for": self._wait_for, "/expect": self._expect, "/tick": self._tick,
            "/sandbox": self._sandbox, "/quit": self._quit, "/exit": self._quit,
            "/shortcut": self._shortcut, "/workflow": self._workflow,
        }

    # -- talking to the app, as Slack does ---------------------------------------------------------

    def _post(self, body: str, content_type: str = payloads.FORM_TYPE) -> requests.Response:
        try:
            response = post_signed(self.events_url, body, self.config.slack_signing_secret,
                                   content_type=content_type, timeout=15)
        except requests.RequestException as exc:
            raise StepFailed(f"the app did not answer: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise StepFailed(f"the app answered HTTP {response.status_code}: {response.text[:200]}")
        return response

    def _slash(self, command: str, text: str) -> None:
        channel = self.place.channel
        response_url = self.slack.new_response_url(channel=channel, user=self.user)
        body = payloads.slash_command(text, user_id=self.user, channel_id=channel, response_url=response_url,
                                      command=command, channel_name=self._channel_name(channel))
        self._events.put(("hold", None))  # Slack shows the command's answer first, then what it caused
        try:
            answer = _json(self._post(body))
            if answer:
                self._events.put(("answer", {"user": self.user, "channel": channel,
                                             "command": f"{command} {text}", "answer": answer}))
        finally:
            self._events.put(("release", None))

    def _message(self, text: str, place: Place) -> None:
        message = self.slack.add_message(place.channel, text, user=self.user, thread_ts=place.thread_ts)
        event = payloads.message_event(place.channel, self.user, text, ts=message["ts"], thread_ts=place.thread_ts)
        self._post(payloads.event_callback(event), payloads.JSON_TYPE)

    def _shortcut(self, args: str) -> None:
        """`/shortcut send_as_sms <msg n>` on a message, or `/shortcut compose_sms` from anywhere."""
        name, _, ref = args.partition(" ")
        if name == "compose_sms":
            self._post(payloads.global_shortcut(name, user_id=self.user))
            return
        if name != "send_as_sms" or not ref.strip():
            raise StepFailed("usage: /shortcut send_as_sms <msg n|last>  ·  /shortcut compose_sms")
        ref = ref.strip()
        if ref == "last":  # the newest message shown in the channel you are in
            numbers = [n for n, (channel, _, _) in self._messages.items() if channel == self.place.channel]
            ref = str(max(numbers)) if numbers else ""
        found = self._messages.get(int(ref.lstrip("#"))) if ref.lstrip("#").isdigit() else None
        if found is None:
            raise StepFailed(f"no message {ref!r}; messages are numbered `msg n` where they are shown")
        channel, ts, _ = found
        message = next((m for m in self.slack.messages(channel) if m["ts"] == ts), None) or {"ts": ts, "text": ""}
        response_url = self.slack.new_response_url(channel=channel, user=self.user)
        self._post(payloads.message_shortcut(name, user_id=self.user, channel_id=channel, response_url=response_url,
                                             message={"ts": ts, "text": message.get("text", ""),
                                                      "user": message.get("user", "")}))

    def _workflow(self, args: str) -> None:
        """`/workflow recipients=0912345678 message=您好 [send_at=+2h]`: a Workflow Builder step "Send SMS"
        runs as you (requested_by); its end is shown when the request settles."""
        inputs: dict[str, str] = {"requested_by": self.user}
        for part in re.split(r"\s+(?=\w+=)", args.strip()):
            key, eq, value = part.partition("=")
            if not eq or key not in ("recipients", "message", "send_at", "requested_by"):
                raise StepFailed("usage: /workflow recipients=<numbers> message=<text> [send_at=<epoch>]")
            inputs[key] = value.replace("\\n", "\n")
        self._workflow_runs += 1
        execution = f"Fx{self._workflow_runs:04d}"
        self._post(payloads.function_executed("send_sms", inputs, execution_id=execution,
                                              bot_access_token=self.slack.bot_token), payloads.JSON_TYPE)
        self.say(f"  ⚙️ workflow step {execution} started (Send SMS, requested by @{self.user})")

    def _home(self, _: str) -> None:
        self._post(payloads.event_callback(payloads.app_home_opened(self.user)), payloads.JSON_TYPE)

    def _press(self, ref: str) -> None:
        if not ref:
            raise StepFailed("usage: /press <button number | label | action_id>")
        button = self.buttons.get(int(ref)) if ref.isdigit() else self.buttons.find(ref, self.user)
        if button is None:
            raise StepFailed(f"no button {ref!r} is shown to @{self.user}")
        if not button.live:
            raise StepFailed(f"button [{button.number}] {button.label} is no longer shown")
        owner = button.container.owner
        if owner not in (None, self.user):
            raise StepFailed(f"button [{button.number}] is only shown to @{owner}; /as {owner} first")
        self.say(f"  (@{self.user} presses [{button.number}] {button.label})")
        self._post(self._click_body(button))

    def _click_body(self, button: Button) -> str:
        c = button.container
        common = {"user_id": self.user, "action_id": button.action_id, "value": button.value,
                  "block_id": button.block_id}
        if c.kind in ("message", "ephemeral"):
            ts = c.payload.get("ts") if c.kind == "message" else None
            response_url = self.slack.new_response_url(channel=c.channel, message_ts=ts, user=self.user)
            return payloads.block_actions(**common, channel_id=c.channel, message_ts=c.payload.get("ts"),
                                          message=dict(c.payload), response_url=response_url)
        modal = self.modals.top(self.user)
        view = modal.with_state() if c.kind == "modal" and modal else dict(c.payload)
        return payloads.block_actions(**common, view=view)

    # -- modals --------------------------------------------------------------------------------------

    def _open_modal(self) -> Modal:
        modal = self.modals.top(self.user)
        if modal is None:
            raise StepFailed(f"@{self.user} has no modal open (type /sms to open the compose window)")
        return modal

    def _fill(self, args: str) -> None:
        modal = self._open_modal()
        field, _, value = args.partition(" ")
        block = modal.inputs().get(field)
        if block is None:
            raise StepFailed(f"this modal has no field {field!r}; its fields: {', '.join(modal.inputs())}")
        try:
            entry, shown = fill(block, value, tz=self.config.tz, upload=self._upload)
        except (FillError, OSError) as exc:
            raise StepFailed(f"{field}: {exc}") from None
        modal.filled[field], modal.shown[field] = entry, shown
        modal.errors.pop(field, None)
        self.say(f"  ✎ {field} = {shown.replace(chr(10), ' ⏎ ') or '(empty)'}")
        if block.get("dispatch_action"):  # Slack tells the app at once (the compose window redraws for MMS)
            element = block.get("element", {})
            option = next(iter(entry.values())).get("selected_option") or {}
            self._post(payloads.block_actions(
                user_id=self.user, action_id=element.get("action_id", ""), value=option.get("value", ""),
                block_id=field, view=modal.with_state(), action_type=element.get("type", "button")))

    def _upload(self, path: Path) -> dict[str, Any]:
        """A file_input upload: the file goes to the stand-in, as if the person had attached it in Slack."""
        if not path.is_absolute() and not path.exists() and self.script_dir is not None:
            path = self.script_dir / path
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        filetype = path.suffix.lstrip(".").lower() or "binary"
        file_id = self.slack.add_file(path.read_bytes(), path.name, mimetype, filetype, user=self.user)
        return self.slack.file_object(file_id)

    def _submit(self, _: str) -> None:
        modal = self._open_modal()
        if not modal.view.get("submit"):
            raise StepFailed("this modal has nothing to submit (/cancel closes it)")
        body = payloads.view_submission(user_id=self.user, view=modal.view, values=modal.state_values())
        answer = _json(self._post(body))
        self._events.put(("submitted", {"user": self.user, "answer": answer}))
        errors = (answer or {}).get("errors") if (answer or {}).get("response_action") == "errors" else None
        if errors:
            listed = "; ".join(f"{field}: {text.splitlines()[0]}" for field, text in errors.items())
            raise StepFailed(f"the app refused the submission: {listed}")

    def _cancel(self, _: str) -> None:
        modal = self.modals.top(self.user)
        if modal is None:
            raise StepFailed(f"@{self.user} has no modal open")
        if modal.view.get("notify_on_close"):
            self._post(payloads.view_closed(user_id=self.user, view=modal.view))
        self._events.put(("closed", {"user": self.user}))

    # -- who, where ----------------------------------------------------------------------------------

    def _users(self, _: str) -> None:
        lines = []
        for user_id, name in self.people.items():
            role = "approver" if self.product.policy.is_approver(user_id) else ""
            here = "← you" if user_id == self.user else ""
            lines.append(f"  {user_id:<14} {name:<16} {role:<9} {here}".rstrip())
        self.say("\n".join(lines))

    def _as(self, who: str) -> None:
        user = who.lstrip("@")
        if user not in self.people:
            raise StepFailed(f"no user {who!r} here; /users lists them")
        self.user = user
        self.say(f"  you are now @{user}")

    def _in(self, where: str) -> None:
        channel = self._channel_id(where)
        if channel is None:
            names = ", ".join(f"#{name}" for _, name in CHANNELS)
            raise StepFailed(f"no channel {where!r}; channels: {names}")
        self.place = Place(channel)
        self.say(f"  you are now in #{self._channel_name(channel)}")

    def _thread(self, ref: str) -> None:
        if ref in ("off", "none", ""):
            self.place = Place(self.place.channel)
            self.say(f"  back in #{self._channel_name(self.place.channel)}")
            return
        self.place = self._thread_of(ref)
        self.say(f"  typing into the thread of msg {ref.lstrip('#')} (/thread off to leave)")

    def _reply(self, args: str) -> None:
        ref, _, text = args.partition(" ")
        if not text.strip():
            raise StepFailed("usage: /reply <msg n> <text>")
        self._message(text.strip(), self._thread_of(ref))

    def _thread_of(self, ref: str) -> Place:
        found = self._messages.get(int(ref.lstrip("#"))) if ref.lstrip("#").isdigit() else None
        if found is None:
            raise StepFailed(f"no message {ref!r}; messages are numbered `msg n` where they are shown")
        channel, ts, thread_ts = found
        return Place(channel, thread_ts or ts)

    def _channel_id(self, where: str) -> str | None:
        wanted = where.lstrip("#")
        return next((cid for cid, name in CHANNELS if wanted in (cid, name)), None)

    def _channel_name(self, channel: str) -> str:
        if channel.startswith("D"):
            return f"DM {channel[1:]}"
        return next((name for cid, name in CHANNELS if cid == channel), channel)

    def prompt(self) -> str:
        """`@U_REQUESTER #general> `: who is typing, and where their words go."""
        where = f"#{self._channel_name(self.place.channel)}"
        if self.place.thread_ts:
            number = self._numbers.get((self.place.channel, self.place.thread_ts))
            where += f" (thread of msg {number})"
        return f"@{self.user} {where}> "  # plain ASCII: input() writes it to any terminal

    # -- time, expectations, the sandbox -----------------------------------------------------------------

    def _wait(self, seconds: str) -> None:
        try:
            time.sleep(max(0.0, float(seconds or "1")))
        except ValueError:
            raise StepFailed("usage: /wait <seconds>") from None

    def _wait_for(self, args: str) -> None:
        timeout, text = DEFAULT_WAIT_SECONDS, args
        first, _, rest = args.partition(" ")
        if first.endswith("s") and _is_number(first[:-1]) and rest.strip():
            timeout, text = float(first[:-1]), rest.strip()
        if not text:
            raise StepFailed("usage: /wait-for [20s] <text>")
        deadline = time.monotonic() + timeout
        with self._seen:
            while not self._shown(text):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StepFailed(f"nothing shown contains {text!r} after {timeout:g} s")
                self._seen.wait(min(left, 0.5))

    def _expect(self, text: str) -> None:
        if not text:
            raise StepFailed("usage: /expect <text>")
        self._settle()
        with self._seen:
            if not self._shown(text):
                raise StepFailed(f"nothing shown so far contains {text!r}")

    def _shown(self, text: str) -> bool:
        wanted = text.casefold()
        return any(wanted in entry for entry in self._transcript)

    def _tick(self, _: str) -> None:
        store = self.product.store
        for batch in store.batches.due(time.time() + 10**9):
            store.batches.poll_soon(batch.batch_id, 0)
        self.product.poll_once()
        self.product.credit.check()
        self.product.poster.wake()

    def _sandbox(self, args: str) -> None:
        sandbox = self.product.sandbox
        if sandbox is None:
            raise StepFailed("/sandbox only works in sandbox mode (EVERY8D_UID is set)")
        what, _, rest = args.partition(" ")
        if what == "credit" and _is_number(rest.strip()):
            sandbox.set_credit(float(rest))
            self.say(f"  🧪 sandbox credit is now {float(rest):,.1f} points (the next credit check, every "
                     f"{self.config.credit_poll_seconds:g} s or /tick, reads it)")
        elif what == "reply" and len(rest.split(" ", 1)) == 2:
            ref, text = rest.split(" ", 1)
            batch_id = self._batch_id(ref)
            batch = sandbox.batches.get(batch_id)
            if batch is None or not batch.records:
                raise StepFailed(f"the sandbox has no batch {batch_id}")
            mobile = batch.records[0].mobile
            sandbox.simulate_reply(batch_id, mobile, text.strip())
            self.say(f"  🧪 {mask(mobile)} replies “{text.strip()}” (to batch {batch_id[:8]}…)")
        else:
            raise StepFailed("usage: /sandbox credit <points> | /sandbox reply <latest|#request|batch id> <text>")

    def _batch_id(self, ref: str) -> str:
        store = self.product.store
        if ref == "latest":
            recent = store.batches.recent(1)
            if not recent:
                raise StepFailed("nothing has been sent yet, so there is no batch to reply to")
            return recent[0].batch_id
        if ref.lstrip("#").isdigit():
            request = store.requests.get(int(ref.lstrip("#")))
            if request is None or not request.batch_id:
                raise StepFailed(f"request {ref} has no batch (not sent yet?)")
            return request.batch_id
        match = [b.batch_id for b in store.batches.recent(100) if b.batch_id.startswith(ref)]
        if not match:
            raise StepFailed(f"no batch {ref!r}")
        return match[0]

    def _quit(self, _: str) -> None:
        raise _Quit

    # -- the screen ------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Console's own words (echoes, notes): shown in order, never matched by /expect."""
        self._events.put(("say", text))

    def logged(self, level: int, text: str) -> None:
        """A product log record: errors fail the step; warnings are shown once the console is up."""
        if level >= logging.ERROR:
            self._errors.append(text)
        if level >= logging.ERROR or self._started:
            self._events.put(("say", f"  ⚠ {text}"))

    def _settle(self) -> None:
        """Let the step's effects finish and show them: Bolt's listeners and background work (which
        `Runtime.wait_idle` waits for), then the posts they queued, then the screen."""
        for _ in range(2):
            self.product.wait_idle(SETTLE_SECONDS)
            try:
                self.product.poster.drain()
            except Exception as exc:  # noqa: BLE001 - the poster's own thread retries; just report it
                self._errors.append(f"delivering posts failed: {type(exc).__name__}")
        self._events.join()

    def _print_loop(self) -> None:
        held: list[tuple[str, Any]] | None = None
        while True:
            kind, payload = self._events.get()
            try:
                if kind == "stop":
                    return
                if kind == "hold":
                    held = []
                elif kind == "release":
                    for event in held or []:
                        self._show(*event)
                    held = None
                elif held is not None and kind != "answer":
                    held.append((kind, payload))
                else:
                    self._show(kind, payload)
            except Exception as exc:  # noqa: BLE001 - a rendering bug must not stop the screen
                self._write(f"  ! could not show a {kind}: {type(exc).__name__}: {exc}\n")
            finally:
                self._events.task_done()

    def _show(self, kind: str, payload: Any) -> None:
        if kind == "say":
            self._write(payload.rstrip("\n") + "\n")
            return
        text = self._render(kind, payload)
        if text:
            self._write(text)

    def _remember(self, lines: list[str]) -> None:
        """What Slack would show (a message, an answer, a view; not the console's titles), for /expect."""
        with self._seen:
            self._transcript.append("\n".join(lines).casefold())
            self._seen.notify_all()

    def _write(self, text: str) -> None:
        if self._at_prompt and _isatty(self.out):  # background news while at the prompt: redraw the prompt
            text = "\r\x1b[K" + text + self._at_prompt + _typed_so_far()
        try:
            try:
                self.out.write(text)
            except UnicodeEncodeError:  # a terminal that cannot show Chinese or emoji: show what it can
                encoding = getattr(self.out, "encoding", None) or "ascii"
                self.out.write(text.encode(encoding, "replace").decode(encoding))
            self.out.flush()
        except (OSError, ValueError):  # the output is gone (a closed pipe): the steps still run and count
            pass

    # -- rendering what the stand-in recorded --------------------------------------------------------

    def _render(self, kind: str, payload: Any) -> str:
        if kind in ("message", "message_changed"):
            return self._render_message(payload, updated=kind == "message_changed")
        if kind == "message_deleted":
            n = self._numbers.get((payload["channel"], payload["ts"]))
            self.buttons.forget(f"msg:{payload['channel']}:{payload['ts']}")
            return f"🗑 msg {n} in #{self._channel_name(payload['channel'])} was deleted\n"
        if kind == "ephemeral":
            return self._render_ephemeral(payload)
        if kind == "answer":
            return self._render_answer(payload)
        if kind in ("view_opened", "view_pushed"):
            stack = self.modals.open if kind == "view_opened" else self.modals.push
            return self._render_modal(payload["user"], stack(payload["user"], payload["view"]))
        if kind == "view_updated":
            found = self.modals.update(payload["view"])
            return self._render_modal(*found, updated=True) if found else ""
        if kind == "home_published":
            return self._render_home(payload["user"], payload["view"])
        if kind == "submitted":
            return self._apply_submission(payload["user"], payload["answer"])
        if kind == "closed":
            return self._close_modal(payload["user"])
        if kind == "file_shared":
            return self._save_file(payload)
        if kind == "function_ended":
            line = (f"⚙️ workflow step {payload['execution_id']} completed: {json.dumps(payload.get('outputs'), ensure_ascii=False)}"
                    if payload.get("ok") else f"⚙️ workflow step {payload['execution_id']} failed: {payload.get('error')}")
            self._remember([line])
            return line + "\n"
        return ""  # response: shown as the ephemeral or edit it causes

    def _save_file(self, upload: Mapping[str, Any]) -> str:
        """A file the bot shared in Slack is kept where one can open it (Slack would offer a download)."""
        name = Path(str(upload.get("name") or "file")).name or "file"
        content = upload.get("content") or b""
        data = content if isinstance(content, bytes) else str(content).encode("utf-8")
        try:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            target, n = self.files_dir / name, 1
            while target.exists():
                n += 1
                target = self.files_dir / f"{Path(name).stem}-{n}{Path(name).suffix}"
            target.write_bytes(data)
        except OSError as exc:
            return f"  ! could not save {name}: {exc.strerror or exc}\n"
        return f"  💾 {name} saved to {target}\n"

    def _number_of(self, channel: str, ts: str, thread_ts: str | None) -> int:
        key = (channel, ts)
        if key not in self._numbers:
            self._numbers[key] = len(self._numbers) + 1
            self._messages[self._numbers[key]] = (channel, ts, thread_ts if thread_ts != ts else None)
        return self._numbers[key]

    def _render_message(self, message: dict[str, Any], *, updated: bool) -> str:
        channel, ts, thread_ts = message["channel"], message["ts"], message.get("thread_ts")
        n = self._number_of(channel, ts, thread_ts)
        container = Container(f"msg:{channel}:{ts}", "message", message, channel=channel)
        number = self.buttons.register(container, message.get("blocks") or [])
        who = "EVERY8D SMS" if message.get("bot_id") else f"@{message.get('user')}"
        body = render_message(message, number, self._channel_name)
        self._remember(body)
        before, self._bodies[container.key] = self._bodies.get(container.key), body
        mark = ""
        if updated and before is not None:  # an edit in place: show what changed, not the whole card again
            unchanged = len([line for line in body if line in before])
            body = [line for line in body if line not in before] or ["(no visible change)"]
            mark = f" · ✎ updated ({unchanged} lines as before)"
        if thread_ts and thread_ts != ts:
            parent = self._number_of(channel, thread_ts, None)
            title = f"↳ #{self._channel_name(channel)} · thread of msg {parent} · msg {n} · {who}{mark}"
            return boxed(title, body, indent="    ")
        return boxed(f"#{self._channel_name(channel)} · msg {n} · {who}{mark}", body)

    def _render_ephemeral(self, record: dict[str, Any]) -> str:
        container = Container(f"eph:{record['ts']}", "ephemeral", record, channel=record["channel"],
                              owner=record["user"])
        number = self.buttons.register(container, record.get("blocks") or [])
        self._answers.append((record["user"], mrkdwn(record.get("text", ""))))
        where = f"#{self._channel_name(record['channel'])}"
        body = render_message(record, number, self._channel_name)
        self._remember(body)
        return boxed(f"🔒 only @{record['user']} sees · {where}", body)

    def _render_answer(self, payload: dict[str, Any]) -> str:
        answer, user = payload["answer"], payload["user"]
        record = {"ts": f"answer-{len(self._answers)}", "channel": payload["channel"], "user": user,
                  "text": answer.get("text", ""), "blocks": answer.get("blocks") or []}
        container = Container(f"ans:{record['ts']}", "ephemeral", record, channel=payload["channel"], owner=user)
        number = self.buttons.register(container, record["blocks"])
        self._answers.append((user, mrkdwn(record["text"])))
        title = f"🔒 only @{user} sees · answer to {payload['command'].strip()}"
        body = render_message(record, number, self._channel_name)
        self._remember(body)
        return boxed(title, body)

    def _render_modal(self, user: str, modal: Modal, *, updated: bool = False) -> str:
        view = modal.view
        container = Container(f"view:{modal.view_id}", "modal", view, owner=user)
        number = self.buttons.register(container, view.get("blocks", []))
        values = {block_id: shown_value(modal, block_id) or "" for block_id in modal.inputs()}
        title = plain(view.get("title"))
        self._answers.append((user, title))
        mark = " · ✎ updated" if updated else ""
        body = render_view(view, number, values=values, errors=modal.errors)
        self._remember([title, *body])
        return boxed(f"▣ modal “{title}” · only @{user} sees{mark}", body)

    def _render_home(self, user: str, view: dict[str, Any]) -> str:
        container = Container(f"home:{user}", "home", view, owner=user)
        number = self.buttons.register(container, view.get("blocks", []))
        body = render_view(view, number)
        self._remember(body)
        return boxed(f"🏠 App Home of @{user}", body)

    def _apply_submission(self, user: str, answer: dict[str, Any] | None) -> str:
        """What Slack does with a view_submission's answer: close, show errors, update or push a view."""
        action = (answer or {}).get("response_action")
        modal = self.modals.top(user)
        if modal is None:
            return ""
        if action == "errors":
            modal.errors = dict(answer.get("errors") or {})
            return self._render_modal(user, modal)
        if action == "update":
            modal.replace_view({**answer["view"], "id": modal.view_id})
            return self._render_modal(user, modal, updated=True)
        if action == "push":
            pushed = self.modals.push(user, {**answer["view"], "id": f"V_LOCAL{secrets.token_hex(4).upper()}"})
            return self._render_modal(user, pushed)
        closed = self.modals.clear(user) if action == "clear" else [self.modals.pop(user)]
        return self._after_close(user, [m for m in closed if m is not None])

    def _close_modal(self, user: str) -> str:
        """The close button: back to the previous view of the stack, or all closed with clear_on_close."""
        top = self.modals.top(user)
        if top is not None and top.view.get("clear_on_close"):
            return self._after_close(user, self.modals.clear(user))
        closed = self.modals.pop(user)
        return self._after_close(user, [closed] if closed else [])

    def _after_close(self, user: str, closed: list[Modal]) -> str:
        for modal in closed:
            self.buttons.forget(f"view:{modal.view_id}")
        text = f"▣ modal closed for @{user}\n"
        back = self.modals.top(user)
        return text + (self._render_modal(user, back) if back else "")

    # -- banner ------------------------------------------------------------------------------------------

    def _mode(self) -> str:
        if self.config.sandbox:
            return "🧪 sandbox mode: EVERY8D is the built-in sandbox, nothing is delivered"
        return "⚠️ REAL EVERY8D account (EVERY8D_UID is set): approved sends are delivered and charged"

    def _quiet_hours(self) -> str:
        """Said at start, since a send typed at night asks whether to wait (as the real bot does)."""
        if self.config.quiet_hours:
            return (f"🌙 quiet hours {self.config.quiet_hours} ({self.config.timezone}): sends asked for then "
                    "are offered a later time (BOT_QUIET_HOURS; empty turns them off)")
        if self.scripted:
            return "🌙 quiet hours off in scripts, so a scenario plays the same at any hour (set BOT_QUIET_HOURS to test them)"
        return "🌙 quiet hours off (BOT_QUIET_HOURS is empty)"

    def banner(self) -> str:
        """What a newcomer sees first: the mode, who and where they are, and three lines to try."""
        db = ("a fresh temporary database" if self.config.sandbox
              else f"{self.config.db_path} (kept between runs)")
        approvers = ", ".join(self.config.approvers)
        return (
            "every8d-bot console: the real bot, with Slack stood in on this machine (no workspace or token)\n"
            f"  {self._mode()}\n"
            f"  you are @{self.user} in #general · approvers: {approvers} · {db}\n"
            "  approval cards go to #sms-approvals, replies to #sms-replies, credit alerts to #sms-alerts\n"
            f"  {self._quiet_hours()}\n"
            "  try:\n"
            "    /sms send 0912345678 您好       ask to send an SMS (an approval card appears)\n"
            "    /as U_APPROVER                  become the approver, then: /press 核准\n"
            "    /sms                            the compose window (/fill recipients …, /submit)\n"
            "  /help lists every command · /quit leaves\n\n"
        )


def _json(response: requests.Response) -> dict[str, Any] | None:
    text = response.text.strip()
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"text": text}
    return parsed if isinstance(parsed, dict) else {"text": text}


def _refusal(text: str) -> bool:
    folded = text.casefold()
    return any(marker.casefold() in folded for marker in REFUSALS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _typed_so_far() -> str:
    """What the person has typed at the prompt (with readline), so a redrawn prompt keeps it."""
    readline = sys.modules.get("readline")
    return readline.get_line_buffer() if readline is not None else ""


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def run_console(script: str | None = None, *, env: Mapping[str, str] | None = None, out: IO[str] = sys.stdout,
                stdin: IO[str] | None = None, files_dir: Path | None = None) -> int:
    """Run the console: interactively (a prompt on stdin), or the lines of `script`. Returns the exit
    code: 0 done, 1 a script step failed, 2 the script cannot be read, 130 interrupted.

    `env` replaces the environment (and `.env`) when given, which tests use to stay in sandbox mode.
    Files the bot uploads are saved in `files_dir` (default `./console-files`)."""
    lines: list[str] | None = None
    if script is not None:
        try:
            lines = Path(script).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            out.write(f"every8d-bot console: cannot read the script {script}: {exc.strerror or exc}\n")
            return 2
    console = Console(env, out, script_dir=Path(script).resolve().parent if script is not None else None,
                      files_dir=files_dir)
    try:
        console.start()
        return console.run_script(lines) if lines is not None else console.interact(stdin or sys.stdin)
    except KeyboardInterrupt:
        out.write("\ninterrupted\n")
        return 130
    finally:
        console.stop()
