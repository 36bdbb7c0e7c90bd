"""`every8d-bot doctor` against the real Slack stand-in and the EVERY8D sandbox, good and broken configurations.

What an operator relies on: every problem is named on its own line with what to fix, the run keeps going
after a failure, the exit code says whether anything is wrong, the EVERY8D account gets exactly one login
attempt (it locks after failed logins), and no token or password ever appears in the output.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from bot import cli
from bot.config import DEFAULT_EVERY8D_BASE_URL, VARIABLES
from bot.doctor import MANIFEST, REQUIRED_SCOPES, mask, required_scopes, run_doctor
from every8d.endpoints import CREDIT
from every8d.sandbox import Sandbox
from slackstandin import SlackStandIn
from storage import Store

BOT_TOKEN = "xoxb-1111-2222-doctorbottoken"
APP_TOKEN = "xapp-1-A0STANDIN-3333-doctorapptoken"
EVERY8D_PWD = "s3cret-Every8d-pass"
CALLBACK_TOKEN = "cb-token-abcdefghijklmnop"
SIGNING_SECRET = "signing-secret-0123456789"
SECRETS = (BOT_TOKEN, APP_TOKEN, EVERY8D_PWD, CALLBACK_TOKEN, SIGNING_SECRET)
SYMBOLS = ("✅", "❌", "⚠️")


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(bot_token=BOT_TOKEN, app_token=APP_TOKEN, scopes=required_scopes()[0]) as stand_in:
        yield stand_in


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(uid="acme", pwd=EVERY8D_PWD, credit=1000.0, background=False) as sb:
        yield sb


@pytest.fixture
def env(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    """A complete, correct deployment: Socket Mode, every channel, a user and a group as approvers."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "EVERY8D_UID": "acme", "EVERY8D_PWD": EVERY8D_PWD, "EVERY8D_BASE_URL": sandbox.base_url,
        "EVERY8D_TIMEOUT_SECONDS": "2", "EVERY8D_CALLBACK_TOKEN": CALLBACK_TOKEN,
        "BOT_DB_PATH": str(tmp_path / "bot.db"), "BOT_APPROVERS": "U_APPROVER,S_APPROVERS",
        "BOT_APPROVAL_CHANNEL": "C_APPROVALS", "BOT_ALERT_CHANNEL": "C_ALERTS", "BOT_REPLIES_CHANNEL": "C_REPLIES",
        "BOT_LOW_CREDIT_THRESHOLD": "100",
    }


def doctor(env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    code = run_doctor(env, out=out)
    text = out.getvalue()
    for secret in SECRETS:
        assert secret not in text
    assert "Traceback" not in text
    return code, text


def check_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(SYMBOLS)]


def line(text: str, name: str) -> str:
    """The one check line for `name` (e.g. "SLACK_BOT_TOKEN"), symbol included."""
    found = [ln for ln in check_lines(text) if ln.split(" ", 1)[1].startswith(f"{name}:")]
    assert len(found) == 1, f"expected one line for {name} in:\n{text}"
    return found[0]


def fix_after(text: str, name: str) -> str:
    """The `→ …` fix printed under a check's line."""
    lines = text.splitlines()
    following = lines[lines.index(line(text, name)) + 1]
    assert following.lstrip().startswith("→"), f"no fix under {name}:\n{text}"
    return following


def credit_calls(sb: Sandbox) -> int:
    return sum(call.endpoint == CREDIT for call in sb.calls)


# ----- a good deployment ---------------------------------------------------------------------------------


def test_a_good_configuration_passes_every_line(env, slack, sandbox):
    code, text = doctor(env)

    assert code == 0, text
    lines = check_lines(text)
    assert lines and all(ln.startswith("✅") for ln in lines), text
    assert "Stand-in" in line(text, "SLACK_BOT_TOKEN") and "U0BOT" in line(text, "SLACK_BOT_TOKEN")
    assert "1,000.0" in line(text, "EVERY8D")
    assert "Socket Mode" in line(text, "SLACK_APP_TOKEN")
    assert "#sms-approvals" in line(text, "BOT_APPROVAL_CHANNEL")
    assert "Lin Approver" in line(text, "BOT_APPROVERS U_APPROVER")
    assert "2 member" in line(text, "BOT_APPROVERS S_APPROVERS")
    assert "BOT_CALLBACK_PORT 8090" in line(text, "EVERY8D_CALLBACK_TOKEN")
    assert "/every8d/callback/…mnop" in line(text, "EVERY8D_CALLBACK_TOKEN")
    assert credit_calls(sandbox) == 1
    assert [c.method for c in slack.calls_to("auth.test")] == ["auth.test"]


def test_secrets_are_shown_only_masked(env):
    _, text = doctor(env)  # doctor() asserts no secret appears

    assert mask(BOT_TOKEN) == "xoxb-…oken" and mask(BOT_TOKEN) in text
    assert mask(APP_TOKEN) in text
    assert mask("short") == "…"


def test_the_write_probe_leaves_nothing_behind(env):
    doctor(env)

    store = Store(env["BOT_DB_PATH"])
    try:
        assert store.settings.get("doctor_write_probe") is None
        assert store.pending_migrations() == []
    finally:
        store.close()


# ----- Slack ---------------------------------------------------------------------------------------------


def test_a_bad_bot_token_is_named_and_dependent_checks_say_they_were_skipped(env, slack):
    code, text = doctor({**env, "SLACK_BOT_TOKEN": "xoxb-not-the-right-token-9999"})

    assert code == 1
    assert line(text, "SLACK_BOT_TOKEN").startswith("❌")
    assert "invalid_auth" in line(text, "SLACK_BOT_TOKEN") and "…9999" in line(text, "SLACK_BOT_TOKEN")
    assert "OAuth & Permissions" in fix_after(text, "SLACK_BOT_TOKEN")
    assert "not checked" in line(text, "Slack")
    assert "xoxb-not-the-right-token-9999" not in text
    # The rest still ran: the operator sees everything at once.
    assert line(text, "EVERY8D").startswith("✅") and line(text, "BOT_DB_PATH").startswith("✅")


def test_a_missing_scope_is_named_with_reinstall_advice(env):
    scopes = [s for s in required_scopes()[0] if s != "usergroups:read"]
    with SlackStandIn(bot_token=BOT_TOKEN, app_token=APP_TOKEN, scopes=scopes) as narrow:
        code, text = doctor({**env, "SLACK_API_URL": narrow.api_url})

    assert code == 1
    assert line(text, "Slack scopes").startswith("❌") and "usergroups:read" in line(text, "Slack scopes")
    assert "reinstall the app after adding it" in fix_after(text, "Slack scopes")
    # The group approver cannot be resolved without that scope either, and says why.
    assert "missing_scope" in line(text, "BOT_APPROVERS S_APPROVERS")


def test_slack_unreachable_is_explained_not_a_stack_trace(env):
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/api/"
        code, text = doctor({**env, "SLACK_API_URL": url})

    assert code == 1
    assert f"Slack unreachable at SLACK_API_URL {url}" in line(text, "SLACK_BOT_TOKEN")
    assert line(text, "SLACK_APP_TOKEN").startswith("❌")


def test_a_wrong_app_token_fails_socket_mode(env):
    code, text = doctor({**env, "SLACK_APP_TOKEN": "xapp-1-A0OTHER-4444-wrongapptoken"})

    assert code == 1
    assert line(text, "SLACK_APP_TOKEN").startswith("❌") and "invalid_auth" in line(text, "SLACK_APP_TOKEN")
    assert "connections:write" in fix_after(text, "SLACK_APP_TOKEN")


def test_http_mode_needs_the_signing_secret(env):
    without_app = {**env, "SLACK_APP_TOKEN": ""}

    code, text = doctor({**without_app, "SLACK_SIGNING_SECRET": ""})
    assert code == 1 and line(text, "SLACK_SIGNING_SECRET").startswith("❌")

    code, text = doctor(without_app)
    assert code == 0, text
    assert "/slack/events" in line(text, "HTTP mode")
    assert "same port" in line(text, "EVERY8D_CALLBACK_TOKEN")


def test_a_channel_without_the_bot_and_an_unknown_channel_fail(env, slack):
    slack.add_channel("C_OUTSIDE", "outside", is_member=False)

    code, text = doctor({**env, "BOT_REPLIES_CHANNEL": "C_OUTSIDE", "BOT_ALERT_CHANNEL": "C_NOWHERE"})

    assert code == 1
    assert line(text, "BOT_REPLIES_CHANNEL").startswith("❌") and "not a member" in line(text, "BOT_REPLIES_CHANNEL")
    assert "/invite" in fix_after(text, "BOT_REPLIES_CHANNEL")
    assert line(text, "BOT_ALERT_CHANNEL").startswith("❌") and "C_NOWHERE not found" in line(text, "BOT_ALERT_CHANNEL")
    assert line(text, "BOT_APPROVAL_CHANNEL").startswith("✅")


def test_unset_channels_are_explained(env):
    unset = {**env, "BOT_APPROVAL_CHANNEL": "", "BOT_ALERT_CHANNEL": "", "BOT_REPLIES_CHANNEL": ""}

    code, text = doctor(unset)

    assert code == 0, text
    assert "where /sms runs" in line(text, "BOT_APPROVAL_CHANNEL")
    assert line(text, "BOT_ALERT_CHANNEL").startswith("⚠️") and "alerts are off" in line(text, "BOT_ALERT_CHANNEL")
    assert "thread" in line(text, "BOT_REPLIES_CHANNEL")


def test_each_unusable_approver_is_named(env, slack):
    slack.add_usergroup("S_EMPTY", "nobody", [])

    code, text = doctor({**env, "BOT_APPROVERS": "U_APPROVER,U_NOBODY,U0BOT,S_EMPTY,S_MISSING"})

    assert code == 1
    assert line(text, "BOT_APPROVERS U_APPROVER").startswith("✅")
    assert "no such user" in line(text, "BOT_APPROVERS U_NOBODY")
    assert "is a bot" in line(text, "BOT_APPROVERS U0BOT")
    assert "no members" in line(text, "BOT_APPROVERS S_EMPTY")
    assert "no such user group" in line(text, "BOT_APPROVERS S_MISSING")


def test_no_approvers_at_all_fails(env):
    code, text = doctor({**env, "BOT_APPROVERS": ""})

    assert code == 1
    assert "nobody could approve" in line(text, "BOT_APPROVERS")


# ----- EVERY8D -------------------------------------------------------------------------------------------


def test_a_wrong_every8d_password_fails_after_exactly_one_credit_call(env, sandbox):
    code, text = doctor({**env, "EVERY8D_PWD": "not-the-password-42"})

    assert code == 1
    assert line(text, "EVERY8D").startswith("❌")
    # -101 is EVERY8D's "wrong password" (delta notes §5; -100 is "no such account")
    assert "account or password wrong" in line(text, "EVERY8D") and "-101" in line(text, "EVERY8D")
    assert "locks the account" in fix_after(text, "EVERY8D")
    assert credit_calls(sandbox) == 1
    assert "not-the-password-42" not in text


def test_every8d_unavailable_names_the_url(env, sandbox):
    sandbox.faults.inject("http500", count=5)

    code, text = doctor(env)

    assert code == 1
    assert f"cannot reach EVERY8D at {sandbox.base_url}" in line(text, "EVERY8D")
    assert credit_calls(sandbox) == 1


def test_low_credit_is_a_warning_not_a_failure(env, sandbox):
    sandbox.set_credit(42.0)

    code, text = doctor(env)

    assert code == 0, text
    assert line(text, "EVERY8D").startswith("⚠️") and "42.0" in line(text, "EVERY8D")


def test_sandbox_mode_is_announced_and_proven(env, sandbox):
    code, text = doctor({**env, "EVERY8D_UID": "", "EVERY8D_PWD": ""})

    assert code == 0, text
    assert line(text, "EVERY8D").startswith("⚠️") and "sandbox mode" in line(text, "EVERY8D")
    assert "1,000.0" in line(text, "EVERY8D")  # the built-in sandbox answered
    assert credit_calls(sandbox) == 0


# ----- database and callbacks ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["parent_is_a_file", "path_is_a_directory"])
def test_an_unusable_database_path_is_named(env, tmp_path, layout):
    if layout == "parent_is_a_file":
        (tmp_path / "plain-file").write_text("not a directory")
        path = tmp_path / "plain-file" / "bot.db"
    else:
        path = tmp_path / "a-directory"
        path.mkdir()

    code, text = doctor({**env, "BOT_DB_PATH": str(path)})

    assert code == 1
    assert line(text, "BOT_DB_PATH").startswith("❌") and str(path) in line(text, "BOT_DB_PATH")
    assert "writable" in fix_after(text, "BOT_DB_PATH")
    assert line(text, "EVERY8D").startswith("✅")


def test_callbacks_off_is_a_warning(env):
    code, text = doctor({**env, "EVERY8D_CALLBACK_TOKEN": ""})

    assert code == 0, text
    assert line(text, "EVERY8D_CALLBACK_TOKEN").startswith("⚠️")
    assert "callbacks off; polling only" in line(text, "EVERY8D_CALLBACK_TOKEN")


# ----- configuration, entry point, manifest --------------------------------------------------------------


def test_configuration_that_does_not_parse_lists_each_problem_and_exits_2(env, slack, sandbox):
    code, text = doctor({**env, "EVERY8D_CALLBACK_TOKEN": "short", "BOT_TIMEZONE": "Mars/Olympus"})

    assert code == 2
    failed = check_lines(text)
    assert len(failed) == 2 and all(ln.startswith("❌") for ln in failed)
    assert any("EVERY8D_CALLBACK_TOKEN" in ln for ln in failed) and any("BOT_TIMEZONE" in ln for ln in failed)
    assert slack.calls == [] and credit_calls(sandbox) == 0


def test_the_cli_runs_the_doctor_on_the_process_environment(env, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no .env file here
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    for name, value in {**env, "EVERY8D_PWD": "not-the-password-42"}.items():
        monkeypatch.setenv(name, value)

    assert cli.main(["doctor"]) == 1
    assert "account or password wrong" in line(capsys.readouterr().out, "EVERY8D")


def test_the_built_in_scope_list_matches_the_manifest():
    assert required_scopes(None) == (REQUIRED_SCOPES, "built-in list")
    if not MANIFEST.is_file():
        pytest.skip("manifest.yml is not beside the package")
    scopes, source = required_scopes(MANIFEST)
    assert source == "manifest.yml"
    assert set(scopes) == set(REQUIRED_SCOPES)


# ----- EVERY8D hosts: the configured host does not answer, answers HTML, or answers like an old host -------
#
# Each case is a real HTTP server (or socket) on 127.0.0.1 behaving like that kind of host; host names that
# must not resolve are refused by a stand-in resolver, so no test ever reaches a real host.


@dataclass
class Received:
    path: str
    body: str


class FakeHost:
    """A tiny HTTP server: `answer(path, form) -> (status, headers, body)`; records every request."""

    def __init__(self, answer: Callable[[str, dict[str, str]], tuple[int, dict[str, str], str]]) -> None:
        self.received: list[Received] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                host.received.append(Received(self.path, body))
                status, headers, text = answer(self.path, dict(parse_qsl(body)))
                payload = text.encode()
                self.send_response(status)
                for name, value in {"Content-Type": "text/plain; charset=utf-8", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/API21/HTTP/"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def password_seen(self) -> bool:
        return any("PWD=" in r.body for r in self.received)


@pytest.fixture
def fake_host() -> Iterator[Callable[..., FakeHost]]:
    hosts: list[FakeHost] = []

    def make(answer: Callable[[str, dict[str, str]], tuple[int, dict[str, str], str]]) -> FakeHost:
        hosts.append(FakeHost(answer))
        return hosts[-1]

    yield make
    for host in hosts:
        host.close()


def old_host(path: str, form: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """A 2017-era host: the 2017 endpoints answer, the 2021 ones are 404."""
    if path.lower().endswith("/getcredit.ashx"):
        if form.get("UID") == "acme" and form.get("PWD") == EVERY8D_PWD:
            return 200, {}, "1000.00"
        return 200, {}, "-100, 帳號或密碼錯誤。"
    return 404, {"Content-Type": "text/html"}, "<html><head><title>404 - File or directory not found.</title></head></html>"


def unresolvable(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """The resolver says "no such host" for `names` (and only them), as DNS does for a retired name."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_the_default_host_is_the_one_of_the_newest_official_document():
    assert DEFAULT_EVERY8D_BASE_URL == "https://api.e8d.tw/API21/HTTP/"


def test_a_host_that_refuses_connections_is_named_and_the_hosts_to_try_listed(env):
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{closed.getsockname()[1]}/API21/HTTP/"
        code, text = doctor({**env, "EVERY8D_BASE_URL": base})

    assert code == 1
    assert line(text, "EVERY8D").startswith("❌")
    assert "does not answer: connection refused" in line(text, "EVERY8D") and "連線被拒" in line(text, "EVERY8D")
    assert "the account was not tried" in line(text, "EVERY8D")
    fix = fix_after(text, "EVERY8D")
    assert "https://api.e8d.tw/API21/HTTP/" in fix and "https://oms.e8d.tw/API21/HTTP/" in fix
    assert "enterprise-dedicated URL" in fix


def test_a_retired_host_whose_name_no_longer_resolves_is_named(env, monkeypatch):
    unresolvable(monkeypatch, "oms.every8d.com")

    code, text = doctor({**env, "EVERY8D_BASE_URL": "https://oms.every8d.com/API21/HTTP/"})

    assert code == 1
    assert "host name oms.every8d.com not found (DNS)" in line(text, "EVERY8D")
    assert "EVERY8D has retired this host" in line(text, "EVERY8D") and "已被 EVERY8D 停用" in line(text, "EVERY8D")
    assert "https://api.e8d.tw/API21/HTTP/" in fix_after(text, "EVERY8D")


def test_a_host_that_accepts_but_never_answers_is_a_timeout(env):
    with socket.socket() as silent:  # the kernel accepts connections; nobody ever reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        base = f"http://127.0.0.1:{silent.getsockname()[1]}/API21/HTTP/"
        started = time.monotonic()
        code, text = doctor({**env, "EVERY8D_BASE_URL": base, "EVERY8D_TIMEOUT_SECONDS": "1"})

    assert code == 1
    assert "did not answer within 1 s (EVERY8D_TIMEOUT_SECONDS)" in line(text, "EVERY8D")
    assert time.monotonic() - started < 10  # one wait, not one per call


def test_a_host_that_answers_a_web_page_is_named_and_never_gets_the_password(env, fake_host):
    portal = fake_host(lambda path, form: (200, {"Content-Type": "text/html; charset=utf-8"},
                                           "<!DOCTYPE html><html><head><title>EVERY8D 企業簡訊平台</title></head>"
                                           "<body>登入</body></html>"))

    code, text = doctor({**env, "EVERY8D_BASE_URL": portal.base_url})

    assert code == 1
    assert 'answers a web page "EVERY8D 企業簡訊平台" (HTML), not the EVERY8D API' in line(text, "EVERY8D")
    assert "…/API21/HTTP/" in fix_after(text, "EVERY8D") and "https://api.e8d.tw/" in fix_after(text, "EVERY8D")
    assert [r.path for r in portal.received] == ["/API21/HTTP/getReplyMessage.ashx"]
    assert not portal.password_seen()


def test_a_redirect_to_a_retired_host_is_named_and_not_followed(env, fake_host):
    moved = fake_host(lambda path, form: (301, {"Location": "https://oms.every8d.com" + path}, ""))

    code, text = doctor({**env, "EVERY8D_BASE_URL": moved.base_url})

    assert code == 1
    assert ("redirects (HTTP 301) to https://oms.every8d.com/API21/HTTP/getReplyMessage.ashx, a host EVERY8D "
            "has retired") in line(text, "EVERY8D")
    assert "https://api.e8d.tw/API21/HTTP/" in fix_after(text, "EVERY8D")
    assert len(moved.received) == 1 and not moved.password_seen()


def test_a_redirect_elsewhere_names_the_address_to_configure(env, fake_host):
    moved = fake_host(lambda path, form: (308, {"Location": "https://api.e8d.tw" + path}, ""))

    code, text = doctor({**env, "EVERY8D_BASE_URL": moved.base_url})

    assert code == 1
    assert "the bot does not follow redirects" in line(text, "EVERY8D")
    assert "set EVERY8D_BASE_URL=https://api.e8d.tw/API21/HTTP/" in fix_after(text, "EVERY8D")
    assert not moved.password_seen()


def test_an_old_host_without_the_2021_endpoints_is_a_warning_when_callbacks_are_off(env, fake_host):
    host = fake_host(old_host)

    code, text = doctor({**env, "EVERY8D_BASE_URL": host.base_url, "EVERY8D_CALLBACK_TOKEN": ""})

    assert code == 0, text  # sending works: a warning, not a failure
    assert line(text, "EVERY8D").startswith("✅") and "1,000.0" in line(text, "EVERY8D")
    platform = line(text, "EVERY8D platform")
    assert platform.startswith("⚠️")
    assert "answers like an old (2017) host" in platform and "getReplyMessage.ashx" in platform
    assert "replies would be missed" in platform
    assert "https://api.e8d.tw/API21/HTTP/" in fix_after(text, "EVERY8D platform")
    # The probe carried no account; the only call with the password is the one credit call.
    assert [("PWD=" in r.body, r.path.rsplit("/", 1)[1]) for r in host.received] == [
        (False, "getReplyMessage.ashx"), (True, "getCredit.ashx")]


def test_an_old_host_is_only_noted_when_push_callbacks_bring_the_replies(env, fake_host):
    host = fake_host(old_host)

    code, text = doctor({**env, "EVERY8D_BASE_URL": host.base_url})

    assert code == 0, text
    platform = line(text, "EVERY8D platform")
    assert platform.startswith("✅") and "old (2017) host" in platform and "replies still arrive by push" in platform


def test_no_every8d_api_under_the_configured_path(env, fake_host):
    nothing = fake_host(lambda path, form: (404, {}, "Not Found"))

    code, text = doctor({**env, "EVERY8D_BASE_URL": nothing.base_url})

    assert code == 1
    assert "no EVERY8D API under" in line(text, "EVERY8D") and "answered 404" in line(text, "EVERY8D")
    assert "path prefix (…/API21/HTTP/)" in fix_after(text, "EVERY8D")


def test_a_2021_host_passes_without_a_platform_line(env, fake_host):
    def current(path: str, form: dict[str, str]) -> tuple[int, dict[str, str], str]:
        if not form.get("UID") or not form.get("PWD"):
            return 200, {}, "-300, 帳號密碼不得為空值。"
        return 200, {}, "1000.00" if path.lower().endswith("/getcredit.ashx") else "0"

    host = fake_host(current)

    code, text = doctor({**env, "EVERY8D_BASE_URL": host.base_url})

    assert code == 0, text
    assert line(text, "EVERY8D").startswith("✅")
    assert not any(ln.split(" ", 1)[1].startswith("EVERY8D platform:") for ln in check_lines(text))


@pytest.mark.parametrize(("terms", "words"), [
    ("2021", "2021 MMS terms: image plus text up to 300 KB, jpg/png, subject 15/39 characters (Chinese/ASCII), "
             "3 points up to 50 KB, 5 above"),
    ("2017", "2017 MMS terms: image plus text up to 50 KB, jpg/png/gif, subject 15/95 characters (Chinese/ASCII), "
             "4 points each"),
])
def test_the_mms_terms_in_force_are_stated(env, terms, words):
    code, text = doctor({**env, "EVERY8D_MMS_TERMS": terms})

    assert code == 0, text
    assert line(text, "EVERY8D_MMS_TERMS").startswith("✅") and words in line(text, "EVERY8D_MMS_TERMS")


def test_the_doctor_leaves_no_new_database_file_behind(env, tmp_path):
    path = tmp_path / "not-yet" / "bot.db"
    path.parent.mkdir()
    code, text = doctor({**env, "BOT_DB_PATH": str(path)})
    assert line(text, "BOT_DB_PATH").startswith("✅") and "does not exist yet" in line(text, "BOT_DB_PATH")
    assert list(path.parent.iterdir()) == []  # nothing created, not even the probe's file
