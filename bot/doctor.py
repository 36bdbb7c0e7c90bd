"""`every8d-bot doctor`: check a deployment's configuration end to end and say, line by line, what to fix.

Why it exists: a misconfigured bot fails late and far from the cause (a card never appears because the bot
is not in the channel; a send fails because the EVERY8D password changed). The doctor asks every party once,
the way the bot will: Slack (token, scopes, Socket Mode, channels, approvers), EVERY8D (one credit call), the
database (open, migrate, write) and the callback settings. It keeps going after a failure so the operator
sees everything at once, prints zh-TW then English, and never prints a secret (at most its last 4 chars).

EVERY8D locks an account after failed logins, so the doctor makes exactly one credit call and never
retries it. Exit code: 0 all good (warnings allowed), 1 something to fix, 2 configuration does not parse.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.web import SlackResponse

from bot.config import Config, ConfigError
from every8d.client import Every8dClient
from every8d.endpoints import REPLIES
from every8d.errors import CredentialError, Every8dError, UnavailableError
from every8d.hosts import (
    KNOWN_HOSTS,
    OFFICIAL_2021_BASE_URL,
    PROBE_ENDPOINT,
    HostProbe,
    is_retired,
    probe_host,
)
from every8d.limits import KB
from services import capabilities
from storage import StorageError, Store

EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2

#: The app manifest at the repository root; its `oauth_config.scopes.bot` is what the app must be granted.
MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"

#: The bot scopes when manifest.yml is not at hand (an installed package). Keep in step with manifest.yml.
REQUIRED_SCOPES: tuple[str, ...] = (
    "commands", "chat:write", "files:read", "files:write", "users:read", "usergroups:read", "channels:read",
    "groups:read", "channels:history", "groups:history",
)

_SECRET_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "EVERY8D_PWD",
                     "EVERY8D_CALLBACK_TOKEN")
_SECRET_PREFIXES = ("xoxb-", "xapp-", "xoxp-")
_SLACK_TIMEOUT_SECONDS = 10
_TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                           "not_allowed_token_type"})
# slack_sdk logs transport failures at ERROR; the doctor explains them itself, so keep stderr clean.
_SLACK_LOG = logging.getLogger("every8d_bot.doctor.slack")
_SLACK_LOG.addHandler(logging.NullHandler())
_SLACK_LOG.propagate = False


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it is right, and what to do if not.

    `warning` marks a line worth reading that does not fail the run (sandbox mode, callbacks off)."""

    name: str
    ok: bool
    detail_zh: str
    detail_en: str
    fix: str = ""
    warning: bool = False

    @property
    def symbol(self) -> str:
        if not self.ok:
            return "❌"
        return "⚠️" if self.warning else "✅"


def _passed(name: str, zh: str, en: str) -> Check:
    return Check(name, True, zh, en)


def _warned(name: str, zh: str, en: str, fix: str = "") -> Check:
    return Check(name, True, zh, en, fix, warning=True)


def _failed(name: str, zh: str, en: str, fix: str) -> Check:
    return Check(name, False, zh, en, fix)


def mask(secret: str) -> str:
    """A secret as it may be shown: a known prefix and the last 4 characters (`xoxb-…abcd`), or `…`."""
    prefix = next((p for p in _SECRET_PREFIXES if secret.startswith(p)), "")
    if len(secret) - len(prefix) < 12:
        return f"{prefix}…"
    return f"{prefix}…{secret[-4:]}"


# ----- entry point ---------------------------------------------------------------------------------------


def run_doctor(env: Mapping[str, str] | None = None, *, out: TextIO | None = None,
               manifest: Path | None = MANIFEST) -> int:
    """Check everything, print the report, and return the exit code (0 good, 1 something to fix, 2 config).

    `env` None reads the process environment and `.env` like `every8d-bot run`; a mapping is used as is.
    `out` None is the current `sys.stdout` (looked up at call time, so redirections apply)."""
    out = sys.stdout if out is None else out
    source = os.environ if env is None else env
    secrets = [source.get(name, "") for name in _SECRET_VARIABLES]
    try:
        config = Config.from_env() if env is None else Config.from_env(env, dotenv=None)
    except ConfigError as exc:
        _report([_failed("設定 configuration", problem, "", "") for problem in exc.problems], out, secrets)
        print("→ 修正後再執行 every8d-bot doctor / fix the above, then run every8d-bot doctor again "
              "(README: configuration)", file=out)
        return EXIT_CONFIG
    checks = diagnose(config, manifest=manifest)
    _report(checks, out, [*secrets, config.slack_bot_token, config.slack_app_token, config.slack_signing_secret,
                          config.every8d_pwd, config.callback_token])
    return EXIT_OK if all(c.ok for c in checks) else EXIT_PROBLEMS


def diagnose(config: Config, *, manifest: Path | None = MANIFEST) -> list[Check]:
    """Every check, in the order an operator fixes things; later checks run even when earlier ones fail."""
    slack = _Slack(config)
    token_check, auth = _guarded("SLACK_BOT_TOKEN", lambda: _bot_token(config, slack))
    checks = [token_check]
    if auth is not None:
        checks += _each("Slack scopes", lambda: [_scopes(auth, *required_scopes(manifest))])
    checks += _each("Slack mode", lambda: [_mode(config, slack)])
    if auth is not None:
        checks += _each("Slack channels", lambda: _channels(config, slack))
    else:
        checks.append(_warned("Slack", "頻道與核准人未檢查：需要有效的 SLACK_BOT_TOKEN",
                              "channels and approvers not checked: they need a working SLACK_BOT_TOKEN"))
    checks += _each("BOT_APPROVERS", lambda: _approvers(config, slack if auth is not None else None))
    checks += _each("EVERY8D", lambda: _every8d(config))
    checks += _each("EVERY8D_MMS_TERMS", lambda: [_mms_terms(config)])
    checks += _each("BOT_DB_PATH", lambda: _database(config.db_path))
    checks += _each("EVERY8D_CALLBACK_TOKEN", lambda: [_callbacks(config)])
    return checks


def _guarded(name: str, run: Callable[[], tuple[Check, Any]]) -> tuple[Check, Any]:
    """Run one check; an unexpected exception becomes a failed line, never a stack trace."""
    try:
        return run()
    except Exception as exc:  # the doctor must report, not crash
        return _unexpected(name, exc), None


def _each(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    """Run a group of checks; an unexpected exception becomes one failed line."""
    try:
        return run()
    except Exception as exc:  # the doctor must report, not crash
        return [_unexpected(name, exc)]


def _unexpected(name: str, exc: Exception) -> Check:
    return _failed(name, f"檢查時發生意外錯誤：{type(exc).__name__}",
                   f"unexpected error while checking: {type(exc).__name__}: {exc}",
                   "請回報此問題 / please report this, with the line above")


def _report(checks: Iterable[Check], out: TextIO, secrets: Iterable[str]) -> None:
    """One line per check, the fix indented under it; secrets replaced by their masked form."""
    hidden = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def clean(text: str) -> str:
        for secret in hidden:
            text = text.replace(secret, mask(secret))
        return text

    checks = list(checks)
    print("every8d-bot doctor — 檢查設定 / checking the configuration", file=out)
    for check in checks:
        detail = " / ".join(part for part in (check.detail_zh, check.detail_en) if part)
        print(clean(f"{check.symbol} {check.name}: {detail}"), file=out)
        if check.fix and (not check.ok or check.warning):
            print(clean(f"   → {check.fix}"), file=out)
    failures = sum(not c.ok for c in checks)
    warnings = sum(c.ok and c.warning for c in checks)
    if failures:
        print(f"結果：{failures} 項需要修正、{warnings} 項提醒 / result: {failures} to fix, {warnings} warning(s)",
              file=out)
    else:
        print(f"結果：全部通過（{warnings} 項提醒）/ result: all good ({warnings} warning(s))", file=out)


# ----- Slack ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """A Slack answer or why there is none: `error` is Slack's code ("invalid_auth") or a transport reason."""

    data: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    unreachable: bool = False

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name), None)


class _Slack:
    """Slack's Web API at SLACK_API_URL, every failure turned into an `_Answer` instead of an exception."""

    def __init__(self, config: Config) -> None:
        self.url = config.slack_api_url
        self.client = WebClient(token=config.slack_bot_token, base_url=config.slack_api_url,
                                timeout=_SLACK_TIMEOUT_SECONDS, logger=_SLACK_LOG,
                                retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])

    def ask(self, call: Callable[[WebClient], SlackResponse]) -> _Answer:
        try:
            response = call(self.client)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = data.get("error") or f"HTTP {exc.response.status_code}: {str(exc)[:120]}"
            return _Answer(dict(data), dict(exc.response.headers or {}), str(error))
        except (SlackClientError, OSError, ValueError) as exc:  # URLError, refused, timeout, bad URL
            return _Answer(error=f"{type(exc).__name__}: {exc}"[:200], unreachable=True)
        data = response.data if isinstance(response.data, dict) else {}
        return _Answer(dict(data), dict(response.headers or {}))

    def unreachable(self, name: str, answer: _Answer) -> Check:
        return _failed(name, f"無法連上 Slack（SLACK_API_URL {self.url}）",
                       f"Slack unreachable at SLACK_API_URL {self.url}: {answer.error}",
                       "檢查網路、防火牆或 proxy，以及 SLACK_API_URL（通常不必設定）/ check the network, firewall "
                       "or proxy, and SLACK_API_URL (normally left unset)")


def _bot_token(config: Config, slack: _Slack) -> tuple[Check, _Answer | None]:
    """auth.test with the bot token; the answer (team, bot user, granted scopes) feeds the next checks."""
    name, token = "SLACK_BOT_TOKEN", config.slack_bot_token
    copy_it = ("從 app 的 OAuth & Permissions 頁複製 Bot User OAuth Token / copy the Bot User OAuth Token "
               "(xoxb-…) from your app's OAuth & Permissions page")
    if not token:
        return _failed(name, "未設定", "is not set", copy_it), None
    if not token.startswith("xoxb-"):
        return _failed(name, f"應以 xoxb- 開頭（目前 {mask(token)}）",
                       f"should start with xoxb- (now {mask(token)}): use the bot token, not a user or app token",
                       copy_it), None
    answer = slack.ask(lambda c: c.auth_test())
    if answer.unreachable:
        return slack.unreachable(name, answer), None
    if answer.error:
        return _failed(name, f"Slack 拒絕此 token {mask(token)}（{answer.error}）",
                       f"Slack refused the token {mask(token)} ({answer.error})",
                       copy_it + "; 若已撤銷請重新安裝 app / reinstall the app if it was revoked"), None
    data = answer.data
    bot = f"@{data.get('user', '?')} ({data.get('user_id', '?')})"
    return _passed(name, f"有效（{mask(token)}）：工作區 {data.get('team', '?')}，機器人 {bot}",
                   f"valid ({mask(token)}): workspace {data.get('team', '?')}, bot user {bot}"), answer


def required_scopes(manifest: Path | None = MANIFEST) -> tuple[tuple[str, ...], str]:
    """(bot scopes the app must have, where the list came from): manifest.yml if readable, else REQUIRED_SCOPES."""
    if manifest is None or not manifest.is_file():
        return REQUIRED_SCOPES, "built-in list"
    try:
        import yaml

        scopes = yaml.safe_load(manifest.read_text(encoding="utf-8"))["oauth_config"]["scopes"]["bot"]
    except (ImportError, OSError, ValueError, KeyError, TypeError):  # yaml.YAMLError is a ValueError
        return REQUIRED_SCOPES, "built-in list (manifest.yml unreadable)"
    return tuple(str(s) for s in scopes), manifest.name


def _scopes(auth: _Answer, required: tuple[str, ...], source: str) -> Check:
    """Slack lists the granted scopes in auth.test's `x-oauth-scopes` header; every required one must be there."""
    name = "Slack scopes"
    header = auth.header("x-oauth-scopes")
    if header is None:
        return _warned(name, "Slack 未回報已授權的權限，無法比對", "Slack did not report the granted scopes "
                       "(no x-oauth-scopes header); compare them with manifest.yml by hand")
    granted = {s.strip() for s in header.split(",") if s.strip()}
    missing = [s for s in required if s not in granted]
    if missing:
        listed = ", ".join(missing)
        return _failed(name, f"缺少權限：{listed}", f"missing scope(s): {listed} (asked for by {source})",
                       f"在 OAuth & Permissions 加上 {listed} 後重新安裝 app / add {listed} under OAuth & "
                       "Permissions → Bot Token Scopes (or update the manifest), then reinstall the app after adding it")
    return _passed(name, f"已授權所需的 {len(required)} 項權限", f"all {len(required)} scopes granted "
                   f"({', '.join(required)}; from {source})")


def _mode(config: Config, slack: _Slack) -> Check:
    """Socket Mode needs a working app-level token; HTTP mode needs the signing secret."""
    app_token = config.slack_app_token
    if not app_token:
        if config.slack_signing_secret:
            return _passed("HTTP mode", "SLACK_APP_TOKEN 未設定，使用 HTTP 模式；SLACK_SIGNING_SECRET 已設定",
                           "SLACK_APP_TOKEN is not set, so HTTP mode (`every8d-bot run --http`); "
                           "SLACK_SIGNING_SECRET is set; Request URL: https://<your host>/slack/events")
        return _failed("SLACK_SIGNING_SECRET", "未設定：HTTP 模式需要它來驗證 Slack 的請求",
                       "is not set: without SLACK_APP_TOKEN the bot runs in HTTP mode, which needs it to verify "
                       "Slack's requests", "從 Basic Information → Signing Secret 複製，或設定 SLACK_APP_TOKEN 改用 "
                       "Socket Mode / copy it from Basic Information → Signing Secret, or set SLACK_APP_TOKEN")
    fix = ("在 Basic Information → App-Level Tokens 建立具 connections:write 的 token 並開啟 Socket Mode / "
           "create an app-level token with connections:write (Basic Information → App-Level Tokens) and "
           "enable Socket Mode")
    if not app_token.startswith("xapp-"):
        return _failed("SLACK_APP_TOKEN", f"應以 xapp- 開頭（目前 {mask(app_token)}）",
                       f"should start with xapp- (now {mask(app_token)})", fix)
    answer = slack.ask(lambda c: c.apps_connections_open(app_token=app_token))
    if answer.unreachable:
        return slack.unreachable("SLACK_APP_TOKEN", answer)
    if answer.error:
        return _failed("SLACK_APP_TOKEN", f"Socket Mode 無法連線（{answer.error}）",
                       f"Socket Mode cannot connect with it ({answer.error})", fix)
    return _passed("SLACK_APP_TOKEN", f"Socket Mode 可連線（{mask(app_token)}）",
                   f"Socket Mode connection opens ({mask(app_token)})")


_CHANNEL_UNSET = {
    "BOT_APPROVAL_CHANNEL": ("未設定：核准卡片會發在執行 /sms 的頻道",
                             "not set: approval cards go to the channel where /sms runs"),
    "BOT_REPLIES_CHANNEL": ("未設定：收到的回覆只會出現在各批次的討論串",
                            "not set: replies appear only in each batch's thread"),
}


def _channels(config: Config, slack: _Slack) -> list[Check]:
    """Each configured channel must exist and have the bot in it (else its posts fail with not_in_channel)."""
    checks = []
    for name, channel in (("BOT_APPROVAL_CHANNEL", config.approval_channel),
                          ("BOT_ALERT_CHANNEL", config.alert_channel),
                          ("BOT_REPLIES_CHANNEL", config.replies_channel)):
        if channel:
            checks.append(_channel(name, channel, slack))
        elif name == "BOT_ALERT_CHANNEL" and config.approval_channel:
            checks.append(_passed(name, "未設定：點數不足警示會發到核准頻道",
                                  "not set: low-credit alerts go to the approval channel"))
        elif name == "BOT_ALERT_CHANNEL":
            checks.append(_warned(name, "未設定：不會發出點數不足警示", "not set: low-credit alerts are off",
                                  "設定 BOT_ALERT_CHANNEL 或 BOT_APPROVAL_CHANNEL / set BOT_ALERT_CHANNEL "
                                  "or BOT_APPROVAL_CHANNEL to get them"))
        else:
            checks.append(_passed(name, *_CHANNEL_UNSET[name]))
    return checks


def _channel(name: str, channel: str, slack: _Slack) -> Check:
    answer = slack.ask(lambda c: c.conversations_info(channel=channel))
    if answer.unreachable:
        return slack.unreachable(name, answer)
    if answer.error == "channel_not_found":
        return _failed(name, f"找不到頻道 {channel}（私人頻道若機器人不在其中也會如此）",
                       f"channel {channel} not found (a private channel the bot is not in looks the same)",
                       "確認頻道 ID（頻道詳細資料最下方），私人頻道請先邀請機器人 / check the id (channel details → "
                       "bottom); for a private channel, invite the bot first")
    if answer.error:
        return _failed(name, f"無法查詢頻道 {channel}（{answer.error}）", f"cannot look up {channel} ({answer.error})",
                       _slack_fix(answer))
    info = answer.data.get("channel", {})
    label = f"#{info.get('name', channel)} ({channel})"
    if info.get("is_archived"):
        return _failed(name, f"{label} 已封存", f"{label} is archived", "改用未封存的頻道 / use a live channel")
    if not info.get("is_member"):
        return _failed(name, f"機器人不在 {label}", f"the bot is not a member of {label}",
                       f"在 {label} 輸入 /invite 加入機器人 / type /invite @<bot> in {label}")
    return _passed(name, f"{label}，機器人已加入", f"{label}, the bot is a member")


def _slack_fix(answer: _Answer) -> str:
    if answer.error == "missing_scope":
        needed = answer.data.get("needed", "?")
        return f"加上權限 {needed} 後重新安裝 app / add scope {needed}, then reinstall the app after adding it"
    return "見 Slack 錯誤碼說明 / see Slack's documentation of this error"


def _approvers(config: Config, slack: _Slack | None) -> list[Check]:
    """Someone must be able to approve: every listed user exists and is a person, every group has members."""
    if not config.approvers:
        return [_failed("BOT_APPROVERS", "未設定：沒有人能核准發送", "is empty: nobody could approve a send",
                        "填入 Slack 使用者 ID（U…）或使用者群組 ID（S…），以逗號分隔 / set Slack user ids (U…) "
                        "and/or user group ids (S…), comma-separated")]
    if slack is None:
        return []
    return [_group(a, slack) if a.startswith("S") else _user(a, slack) for a in config.approvers]


def _user(user: str, slack: _Slack) -> Check:
    name = f"BOT_APPROVERS {user}"
    answer = slack.ask(lambda c: c.users_info(user=user))
    if answer.unreachable:
        return slack.unreachable(name, answer)
    fix = ("用成員 ID：個人檔案 → ⋯ → 複製成員 ID / use the member id: profile → ⋯ → Copy member ID")
    if answer.error == "user_not_found":
        return _failed(name, "找不到此使用者", "no such user in this workspace", fix)
    if answer.error:
        return _failed(name, f"無法查詢（{answer.error}）", f"cannot look the user up ({answer.error})",
                       _slack_fix(answer))
    info = answer.data.get("user", {})
    who = f"{info.get('real_name') or info.get('name', '?')} (@{info.get('name', '?')})"
    if info.get("deleted"):
        return _failed(name, f"{who} 已停用", f"{who} is deactivated", "換成在職的核准人 / list an active approver")
    if info.get("is_bot"):
        return _failed(name, f"{who} 是機器人，無法按核准", f"{who} is a bot and cannot click Approve",
                       "換成真人 / list a person")
    return _passed(name, who, "can approve")


def _group(group: str, slack: _Slack) -> Check:
    name = f"BOT_APPROVERS {group}"
    answer = slack.ask(lambda c: c.usergroups_users_list(usergroup=group))
    if answer.unreachable:
        return slack.unreachable(name, answer)
    if answer.error == "no_such_subteam":
        return _failed(name, "找不到此使用者群組", "no such user group",
                       "確認群組 ID（S…）/ check the user group id (S…)")
    if answer.error:
        return _failed(name, f"無法查詢（{answer.error}）", f"cannot list its members ({answer.error})",
                       _slack_fix(answer))
    members = answer.data.get("users") or []
    if not members:
        return _failed(name, "群組沒有成員，無人能核准", "the group has no members, so nobody in it can approve",
                       "在群組加入核准人 / add approvers to the group")
    return _passed(name, f"群組有 {len(members)} 位成員", f"user group with {len(members)} member(s)")


# ----- EVERY8D -------------------------------------------------------------------------------------------


def _credit(base_url: str, uid: str, pwd: str, timeout: float) -> float | Every8dError:
    """Exactly one getCredit call, never retried: EVERY8D locks accounts after failed logins."""
    try:
        with Every8dClient(base_url, uid, pwd, timeout=timeout, retries=0) as client:
            return client.get_credit()
    except Every8dError as exc:
        return exc


def _every8d(config: Config) -> list[Check]:
    """Sandbox mode proves the built-in gateway answers. Otherwise: first a credential-free probe says what
    the configured host is (no answer, a web page, a redirect: stop there, the password goes nowhere), then
    exactly one credit call with the account, then whether the host has the 2021 endpoints."""
    if config.sandbox:
        return [_sandbox(config)]
    base = config.every8d_base_url
    probe = probe_host(base, timeout=config.every8d_timeout)
    if probe.kind in ("unreachable", "html", "redirect"):
        return [_host_unusable(base, probe)]
    result = _credit(base, config.every8d_uid, config.every8d_pwd, config.every8d_timeout)
    if probe.kind == "not_found" and isinstance(result, UnavailableError) and "HTTP 404" in result.en:
        return [_failed("EVERY8D", f"{base} 下沒有 EVERY8D API：{PROBE_ENDPOINT} 回應 404，查詢點數也失敗"
                        f"（{result.describe('zh-TW')}）",
                        f"no EVERY8D API under {base}: {PROBE_ENDPOINT} answered 404 and the credit call failed "
                        f"({result.describe('en')})",
                        "確認主機與路徑前綴 …/API21/HTTP/ / check the host and the path prefix (…/API21/HTTP/); "
                        + _hosts_to_try(base))]
    checks = [_credit_check(config, result)]
    answered = not isinstance(result, UnavailableError)  # a number or an EVERY8D refusal: the API is there
    if answered and (probe.kind == "not_found" or is_retired(base)):
        checks.append(_old_platform(config, probe))
    return checks


def _mms_terms(config: Config) -> Check:
    """Which MMS terms the bot applies: a wrong choice prices and checks every MMS wrongly, so say it."""
    limits = config.limits
    types = "/".join(dict.fromkeys("jpg" if k == "jpeg" else k for k in limits.mms_image_types))
    cap = limits.mms_total_max_bytes // KB
    if limits.mms_flat_price:
        price_zh, price_en = f"每則 {limits.mms_points(0):g} 點", f"{limits.mms_points(0):g} points each"
    else:
        (bound, low), *_ = limits.mms_price_bands
        high = limits.mms_price_bands[-1][1]
        price_zh = f"{bound // KB} KB 以下 {low:g} 點、以上 {high:g} 點"
        price_en = f"{low:g} points up to {bound // KB} KB, {high:g} above"
    subject = f"{limits.mms_subject_max_cjk}/{limits.mms_subject_max_ascii}"
    return _passed("EVERY8D_MMS_TERMS",
                   f"{limits.mms_terms} 年版多媒體簡訊條件：圖加文最多 {cap} KB、{types}、主旨 {subject} 字、{price_zh}",
                   f"{limits.mms_terms} MMS terms: image plus text up to {cap} KB, {types}, subject {subject} "
                   f"characters (Chinese/ASCII), {price_en}; must match the account's contract (README: MMS terms)")


def _credit_check(config: Config, result: float | Every8dError) -> Check:
    name, account = "EVERY8D", f"{config.every8d_uid} @ {config.every8d_base_url}"
    if isinstance(result, CredentialError):
        note = result.support_note()
        return _failed(name, f"帳號或密碼錯誤 {note}", f"account or password wrong {note} ({account})",
                       "確認 EVERY8D_UID 與 EVERY8D_PWD（可先登入 EVERY8D 網站驗證）；勿反覆重試，連續登入失敗會鎖帳號 / "
                       "check EVERY8D_UID and EVERY8D_PWD (try logging in on EVERY8D's website); do not retry "
                       "repeatedly: EVERY8D locks the account after failed logins")
    if isinstance(result, UnavailableError):
        return _failed(name, f"無法連上 {config.every8d_base_url}：{result.describe('zh-TW')}",
                       f"cannot reach EVERY8D at {config.every8d_base_url}: {result.describe('en')}",
                       "確認 EVERY8D_BASE_URL 與網路、防火牆 / check EVERY8D_BASE_URL and the network or firewall; "
                       + _hosts_to_try(config.every8d_base_url))
    if isinstance(result, Every8dError):
        return _failed(name, result.describe("zh-TW"), f"{result.describe('en')} ({account})",
                       "依上列 EVERY8D 訊息處理，或聯繫 EVERY8D / act on EVERY8D's message above, or contact EVERY8D")
    return _credit_line(name, config, result, f"帳號 {account}", f"account {account}")


_UNREACHABLE: dict[str, tuple[str, str]] = {
    "dns": ("找不到主機名稱 {host}（DNS 查無此名稱）", "host name {host} not found (DNS)"),
    "refused": ("連線被拒（{host} 沒有在這個埠提供服務）", "connection refused ({host} is not listening on that port)"),
    "timeout": ("連線逾時（{seconds} 秒內連不上 {host}）", "connection timed out ({host} not reached within {seconds} s)"),
    "no_answer": ("已連上 {host}，但 {seconds} 秒內沒有回應", "{host} accepted the connection but did not answer within "
                  "{seconds} s (EVERY8D_TIMEOUT_SECONDS)"),
    "tls": ("安全連線（TLS）失敗", "the secure (TLS) connection to {host} failed"),
    "other": ("無法連線", "cannot connect to {host}"),
}


def _host_unusable(base: str, probe: HostProbe) -> Check:
    """The configured host is not EVERY8D's API: no answer, a web page, or a redirect. The account is not tried."""
    retired_zh = "；此主機已被 EVERY8D 停用" if is_retired(base) else ""
    retired_en = "; EVERY8D has retired this host" if is_retired(base) else ""
    not_tried_zh, not_tried_en = "；未送出帳號密碼", "; the account was not tried"
    hosts = _hosts_to_try(base)
    if probe.kind == "unreachable":
        zh, en = _UNREACHABLE.get(probe.reason, _UNREACHABLE["other"])
        fields = {"host": probe.host, "seconds": f"{probe.seconds:g}"}
        detail = f": {probe.detail}" if probe.reason in ("tls", "other") and probe.detail else ""
        return _failed("EVERY8D", f"EVERY8D_BASE_URL {base} 沒有回應：{zh.format(**fields)}{retired_zh}{not_tried_zh}",
                       f"the configured host does not answer: {en.format(**fields)}{detail} (EVERY8D_BASE_URL "
                       f"{base}){retired_en}{not_tried_en}",
                       "確認網路、防火牆與 EVERY8D_BASE_URL / check the network or firewall and EVERY8D_BASE_URL; " + hosts)
    if probe.kind == "html":
        title = f"「{probe.title}」" if probe.title else ""
        title_en = f' "{probe.title}"' if probe.title else ""
        return _failed("EVERY8D", f"EVERY8D_BASE_URL {base} 回應的是網頁{title}，不是 EVERY8D API{not_tried_zh}",
                       f"the configured host answers a web page{title_en} (HTML), not the EVERY8D API "
                       f"(EVERY8D_BASE_URL {base}){retired_en}{not_tried_en}",
                       "EVERY8D_BASE_URL 應是 API 網址（含 /API21/HTTP/），不是網站或入口頁 / EVERY8D_BASE_URL must be the "
                       "API address with its path prefix (…/API21/HTTP/), not the website or portal; " + hosts)
    if probe.redirect_to_retired:
        return _failed("EVERY8D", f"EVERY8D_BASE_URL {base} 轉址到已停用的主機 {probe.redirect_host}"
                       f"（HTTP {probe.status} → {probe.location}）{not_tried_zh}",
                       f"the configured host redirects (HTTP {probe.status}) to {probe.location}, a host EVERY8D "
                       f"has retired: it answers like an old host (EVERY8D_BASE_URL {base}){not_tried_en}",
                       "改用仍在服務的主機 / switch to a host in service; " + hosts)
    suggested = probe.suggested_base_url
    return _failed("EVERY8D", f"EVERY8D_BASE_URL {base} 轉址到 {probe.location}（HTTP {probe.status}），機器人不跟隨轉址"
                   f"{not_tried_zh}",
                   f"the configured host redirects (HTTP {probe.status}) to {probe.location}; the bot does not follow "
                   f"redirects (a POST would lose its body) (EVERY8D_BASE_URL {base}){retired_en}{not_tried_en}",
                   f"若那是 EVERY8D 的網址，請設定 EVERY8D_BASE_URL={suggested} / if that is EVERY8D's address, set "
                   f"EVERY8D_BASE_URL={suggested}; otherwise " + hosts)


def _old_platform(config: Config, probe: HostProbe) -> Check:
    """The API answers but the host is a 2017-era one: without callbacks, replies would be missed."""
    name, base = "EVERY8D platform", config.every8d_base_url
    if probe.kind == "not_found":
        zh = (f"{probe.host} 像 2017 年的舊主機：沒有 2021 年的端點 {PROBE_ENDPOINT}（HTTP 404），"
              "無法查詢回覆，個人化簡訊也只能逐則呼叫")
        en = (f"{probe.host} answers like an old (2017) host: it has no {PROBE_ENDPOINT}, a 2021 endpoint (HTTP 404), "
              "so replies cannot be looked up and personalised texts go one call each")
    else:
        zh = f"{probe.host} 是 2017 年文件的主機，EVERY8D 已於 2022 年停用，隨時可能停止服務"
        en = f"{probe.host} is a host of the 2017 document that EVERY8D retired in 2022; it may stop answering"
    if config.callback_token:
        return _passed(name, f"{zh}；回覆仍會經由主動回報送達（可改用 {OFFICIAL_2021_BASE_URL}）",
                       f"{en}; replies still arrive by push callback (for the 2021 endpoints try "
                       f"{OFFICIAL_2021_BASE_URL})")
    return _warned(name, f"{zh}；未開啟主動回報，回覆會漏接", f"{en}; with push callbacks off, replies would be missed",
                   "改用 2021 年的主機，或設定 EVERY8D_CALLBACK_TOKEN 接收主動回報 / switch to a 2021 host or set "
                   f"EVERY8D_CALLBACK_TOKEN for push callbacks; {_hosts_to_try(base)}")


def _hosts_to_try(base: str) -> str:
    """The known hosts other than the configured one, newest first (README: EVERY8D hosts)."""
    current = urlsplit(base).hostname or ""
    listed = [f"{url} ({note})" for url, note in KNOWN_HOSTS if urlsplit(url).hostname != current]
    return ("可嘗試 / try: " + ", ".join(listed) + ", 或企業專屬網址 / or your enterprise-dedicated URL "
            "(README: EVERY8D hosts)")


def _sandbox(config: Config) -> Check:
    from bot.runtime import SANDBOX_PWD, SANDBOX_UID
    from every8d.sandbox import Sandbox

    with Sandbox(uid=SANDBOX_UID, pwd=SANDBOX_PWD, credit=config.sandbox_credit, seed=config.sandbox_seed,
                 background=False) as sandbox:
        result = _credit(sandbox.base_url, SANDBOX_UID, SANDBOX_PWD, config.every8d_timeout)
    if isinstance(result, Every8dError):
        return _failed("EVERY8D", f"內建沙盒無法使用：{result.describe('zh-TW')}",
                       f"the built-in sandbox does not answer: {result.describe('en')}",
                       "請回報此問題 / please report this")
    return _warned("EVERY8D", f"沙盒模式：EVERY8D_UID 未設定，不會真的發送；沙盒回應剩餘點數 {result:,.1f}",
                   f"sandbox mode: EVERY8D_UID is not set, so no real messages go out; the built-in sandbox "
                   f"answered a credit call ({result:,.1f} points)",
                   "要真的發送請設定 EVERY8D_UID 與 EVERY8D_PWD / set EVERY8D_UID and EVERY8D_PWD to send for real")


def _credit_line(name: str, config: Config, credit: float, where_zh: str, where_en: str) -> Check:
    threshold = config.low_credit_threshold
    if credit < threshold:
        return _warned(name, f"{where_zh} 可用；剩餘點數 {credit:,.1f}，低於警戒值 {threshold:,.0f}",
                       f"{where_en} works; credit {credit:,.1f} points is below BOT_LOW_CREDIT_THRESHOLD "
                       f"{threshold:,.0f}", "向 EVERY8D 儲值 / buy points from EVERY8D")
    return _passed(name, f"{where_zh} 可用；剩餘點數 {credit:,.1f}", f"{where_en} works; credit {credit:,.1f} points")


# ----- database and callbacks ----------------------------------------------------------------------------


class _RollBack(Exception):
    """Raised inside the write probe's transaction so that nothing it wrote is kept."""


def _database(path: str) -> list[Check]:
    """Open (create and migrate) the store, then prove a write goes through, and roll it back."""
    name, shown = "BOT_DB_PATH", _shown_path(path)
    fix = (f"讓 {shown} 所在目錄可由執行機器人的使用者寫入，或改設 BOT_DB_PATH / make the directory of {shown} "
           "writable by the bot's user, or set BOT_DB_PATH to a file in a writable directory")
    if path != ":memory:" and not os.path.lexists(path):
        return [_would_create(name, shown, path, fix)]
    try:
        store = Store(path)
    except (StorageError, OSError) as exc:
        reason = exc.__cause__ or exc
        return [_failed(name, f"無法開啟或建立資料庫 {shown}", f"cannot open or create the database {shown}: "
                        f"{reason}", fix)]
    try:
        return [_migrations(name, shown, store), _write_probe(name, shown, store, fix), *_platform(store)]
    finally:
        store.close()


def _would_create(name: str, shown: str, path: str, fix: str) -> Check:
    """No database yet: `run` will create it. The doctor only proves it could (a file made and removed in
    its directory), so a check never leaves a database behind where none was asked for."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".every8d-doctor-"):
            pass
    except OSError as exc:
        return _failed(name, f"無法在 {directory} 建立資料庫 {shown}", f"cannot create the database {shown} in "
                       f"{directory}: {exc.strerror or exc}", fix)
    return _passed(name, f"{shown} 尚不存在，啟動時會建立（目錄可寫入）",
                   f"{shown} does not exist yet; `run` creates it (its directory is writable)")


def _shown_path(path: str) -> str:
    absolute = os.path.abspath(path)
    return path if path in (absolute, ":memory:") else f"{path} ({absolute})"


def _migrations(name: str, shown: str, store: Store) -> Check:
    pending = store.pending_migrations()
    if pending:
        return _failed(name, f"{shown} 尚有未套用的結構更新：{', '.join(pending)}",
                       f"{shown} still has pending migrations: {', '.join(pending)}",
                       "確認沒有舊版程式同時使用此檔案 / make sure no older version uses this file")
    applied = store.schema_version()
    latest = applied[-1] if applied else "none"
    return _passed(name, f"{shown} 已開啟，結構為最新版", f"{shown} opens; schema up to date ({latest})")


def _write_probe(name: str, shown: str, store: Store, fix: str) -> Check:
    try:
        with store.immediate():
            store.settings.set("doctor_write_probe", str(time.time()))
            raise _RollBack
    except _RollBack:
        return _passed(f"{name} write", f"{shown} 可寫入", f"{shown} is writable")
    except (sqlite3.Error, StorageError, OSError) as exc:
        return _failed(f"{name} write", f"{shown} 無法寫入", f"cannot write {shown}: {exc}", fix)


def _platform(store: Store) -> list[Check]:
    """Optional 2021 endpoints the running bot found missing on this account's platform (it stopped using
    them): said plainly, with what still works instead."""
    checks = []
    for endpoint, seen in sorted(capabilities.unsupported_endpoints(store).items()):
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seen)) if seen else "?"
        instead_zh, instead_en = (("回覆改由回報網址或狀態查詢取得", "replies still come by callback or polling")
                                  if endpoint == REPLIES else
                                  ("個人化簡訊改為每種內容各呼叫一次", "personalised sends use one call per text"))
        checks.append(_warned(
            f"EVERY8D {endpoint}", f"此帳號的 EVERY8D 平台不支援（{when} 發現）；{instead_zh}",
            f"not supported by this account's platform (found {when}); {instead_en}",
            "向 EVERY8D 詢問升級至 2021 年版 API（v2.1.5）的主機 / ask EVERY8D for a host with the 2021 API (v2.1.5)"))
    return checks


def _callbacks(config: Config) -> Check:
    """Push callbacks need the secret URL given to EVERY8D; without it the bot polls, which still works."""
    name = "EVERY8D_CALLBACK_TOKEN"
    if not config.callback_token:
        return _warned(name, f"未設定：不接收 EVERY8D 回報，只每 {config.status_poll_seconds:g} 秒查詢",
                       f"callbacks off; polling only (every {config.status_poll_seconds:g} s)",
                       "要即時回報請設定 EVERY8D_CALLBACK_TOKEN 並把回報網址給 EVERY8D / for prompt reports set "
                       "EVERY8D_CALLBACK_TOKEN and give EVERY8D the callback URL")
    url = f"https://<your host>/every8d/callback/{mask(config.callback_token)}"
    if config.slack_app_token:
        where_zh = f"Socket Mode：由 BOT_CALLBACK_PORT {config.callback_port} 接收"
        where_en = f"Socket Mode: served on BOT_CALLBACK_PORT {config.callback_port}"
    else:
        where_zh, where_en = "HTTP 模式：與 Slack 請求同一個埠（--port）", "HTTP mode: served on the same port (--port)"
    return _passed(name, f"回報網址請給 EVERY8D：{url}；{where_zh}",
                   f"give EVERY8D the URL {url} (the full token in place of …); {where_en}")
