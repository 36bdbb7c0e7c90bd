"""Configuration from the environment (and a `.env` file), checked once at start.

Every variable is listed in `VARIABLES` with its default and meaning; the README's configuration table
is tested against this list, so a variable cannot be added without documenting it. A bad value is
reported with the variable's name and what to set, all problems at once, never as a stack trace.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from every8d.hosts import OFFICIAL_2021_BASE_URL
from every8d.limits import DEFAULT_LIMITS, DEFAULT_MMS_TERMS, MMS_TERMS, Limits, limits_for_mms_terms
from services.links import RegisteredLinks
from services.policy import Policy
from services.quiet_hours import TAIWAN_DEFAULT, QuietHours

#: The host of the newest official document (HTTP API v2.1.5, 2021); README "EVERY8D hosts" lists the others.
DEFAULT_EVERY8D_BASE_URL = OFFICIAL_2021_BASE_URL


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable("SLACK_BOT_TOKEN", "", "Bot token (`xoxb-…`) from OAuth & Permissions. Required for `run`."),
    Variable("SLACK_SIGNING_SECRET", "", "Signing secret from Basic Information. Required for `run --http`."),
    Variable("SLACK_APP_TOKEN", "", "App-level token (`xapp-…`, scope `connections:write`): Socket Mode when set."),
    Variable("SLACK_API_URL", "https://slack.com/api/", "Base URL of Slack's Web API (a stand-in for tests)."),
    Variable("EVERY8D_UID", "", "EVERY8D account. Empty: the built-in sandbox is used and nothing is delivered."),
    Variable("EVERY8D_PWD", "", "EVERY8D password (sent in POST bodies only, never logged)."),
    Variable("EVERY8D_BASE_URL", DEFAULT_EVERY8D_BASE_URL, "EVERY8D base URL, path prefix included."),
    Variable("EVERY8D_TIMEOUT_SECONDS", "15", "How long to wait for EVERY8D's answer."),
    Variable("EVERY8D_MMS_TERMS", DEFAULT_MMS_TERMS,
             "The account's MMS terms: `2021` (300 KB, jpg/png, subject 15/39, 3 or 5 points) or `2017` "
             "(50 KB, gif too, subject 15/95, 4 points)."),
    Variable("EVERY8D_REPLY_LOOKUP", "true",
             "Read each batch's replies with getReplyMessage (2021 API) every BOT_REPLY_POLL_SECONDS while it is in "
             "its reply window: replies arrive without callbacks. A platform without it is reported once, then skipped."),
    Variable("EVERY8D_PARAM_SMS", "true",
             "Send personalised texts with SendParamSMS (2021 API): up to BOT_SEND_CHUNK_SIZE recipients per call "
             "whatever their texts. false (or a platform without it): one call per distinct text."),
    Variable("EVERY8D_CALLBACK_TOKEN", "", "Secret in the push-callback path `/every8d/callback/<token>`; empty: callbacks off."),
    Variable("BOT_CALLBACK_PORT", "8090", "Port of the callback receiver in Socket Mode (HTTP mode uses `--port`)."),
    Variable("BOT_DB_PATH", "every8d-bot.db", "SQLite database file (created and migrated at start)."),
    Variable("BOT_APPROVERS", "", "Who may approve: Slack user ids (`U…`) and/or user group ids (`S…`), comma-separated."),
    Variable("BOT_APPROVAL_CHANNEL", "", "Channel id for approval requests; empty: the channel where `/sms` ran."),
    Variable("BOT_ALLOW_SELF_APPROVAL", "false", "Whether a requester may approve their own request."),
    Variable("BOT_AUTO_APPROVE_UNDER", "", "Requests costing fewer points than this are approved automatically; empty: never."),
    Variable("BOT_ANSWERS_NEED_APPROVAL", "false",
             "Whether a one-to-one answer typed under a reply waits for an approver; false: it is sent at once."),
    Variable("BOT_ANSWER_MAX_POINTS", "5",
             "An answer costing more points than this waits for an approver even when answers are sent at once "
             "(default: one SMS)."),
    Variable("BOT_TIMEZONE", "Asia/Taipei", "Time zone for times shown and typed (scheduled sends)."),
    Variable("BOT_QUIET_HOURS", TAIWAN_DEFAULT,
             "Quiet hours, one or more `HH:MM-HH:MM` windows separated by commas, in BOT_TIMEZONE: a send inside "
             "them asks to be scheduled or confirmed; empty: off."),
    Variable("BOT_REGISTERED_LINKS", "",
             "Domains, URLs and phone numbers registered with the carriers, comma-separated: a message with any "
             "other link or number is flagged in the preview (Taiwan blocks unregistered ones); empty: no check."),
    Variable("BOT_UNREGISTERED_LINKS", "warn",
             "`warn` (the preview names unregistered links and numbers) or `refuse` (they stop the draft)."),
    Variable("BOT_THREAD_ANSWERS", "confirm",
             "A message typed in a batch's thread after a reply: `confirm` asks its author privately whether to "
             "text it to that number, `direct` texts it at once, `off` never (the Answer button still works)."),
    Variable("BOT_AUTOREPLY_COOLDOWN_HOURS", "24",
             "An auto-reply rule answers the same number at most once in this many hours (`/sms autoreply`)."),
    Variable("BOT_BUDGET_OVER", "approve",
             "A request over a monthly budget (`/sms budget`): `approve` (an approver must choose \"Approve over "
             "budget\") or `refuse` (the draft is refused in the preview)."),
    Variable("BOT_LANGUAGE", "both", "`zh-TW`, `en`, or `both`."),
    Variable("BOT_MASK_NUMBERS", "true", "Mask phone numbers in channel posts (`0912-***-678`)."),
    Variable("BOT_STATUS_POLL_SECONDS", "60", "How often open batches are polled for delivery status."),
    Variable("BOT_CREDIT_POLL_SECONDS", "600", "How often the credit is checked (also after each send)."),
    Variable("BOT_LOW_CREDIT_THRESHOLD", "500", "Below this many points, one low-credit alert is posted."),
    Variable("BOT_LOW_CREDIT_MARGIN", "50", "Credit must recover above threshold + margin before the next alert."),
    Variable("BOT_ALERT_CHANNEL", "", "Channel id for credit alerts; empty: the approval channel if set, else none."),
    Variable("BOT_REPLIES_CHANNEL", "", "Channel id where every inbound reply is also posted; empty: thread only."),
    Variable("BOT_EXPIRY_MARGIN_MINUTES", "60", "After validity plus this margin, recipients with no report are marked expired."),
    Variable("BOT_REPLY_WINDOW_HOURS", "72", "A completed batch is still polled for late replies this many hours."),
    Variable("BOT_REPLY_POLL_SECONDS", "300", "How often completed batches in their reply window are polled."),
    Variable("BOT_SERIES_GRACE_MINUTES", "60",
             "A recurring send missed while the bot was down runs once on start if at most this late; older ones are reported and skipped."),
    Variable("BOT_SEND_CHUNK_SIZE", "1000",
             "Recipients per EVERY8D call: a larger send goes out as several calls (parts), each sent exactly once."),
    Variable("BOT_WATCHDOG_MINUTES", "5",
             "A request, part or Slack post that has not moved for this long is retried if safe, else marked "
             "outcome unknown and said in its thread and the alert channel."),
    Variable("BOT_WEEKLY_REPORT", "true", "Post the weekly report (messages, points, delivery, failures, replies) to the alert channel."),
    Variable("BOT_WEEKLY_REPORT_TIME", "MON 09:00", "When the weekly report is posted, in BOT_TIMEZONE: a weekday and HH:MM."),
    Variable("BOT_HTTP_THREADS", "8", "Worker threads of the HTTP server (waitress) in HTTP mode."),
    Variable("BOT_LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING, ERROR."),
    Variable("BOT_LOG_FORMAT", "text", "Log format: `text` (one readable line) or `json` (one JSON object per line)."),
    Variable("BOT_READY_EVERY8D_SECONDS", "1800",
             "`/readyz` fails when no EVERY8D call has succeeded for this long (the credit check calls regularly)."),
    Variable("BOT_READY_SLACK_SECONDS", "300", "`/readyz` fails when Slack calls keep failing for this long."),
    Variable("BOT_READY_OUTBOX_SECONDS", "600", "`/readyz` fails when a post has waited for Slack this long."),
    Variable("BOT_SHUTDOWN_SECONDS", "20",
             "On SIGTERM: how long to let sends in flight finish and posts reach Slack before exiting."),
    Variable("SANDBOX_CREDIT", "1000", "Starting points of the built-in sandbox account."),
    Variable("SANDBOX_SEED", "0", "Seed of the sandbox (batch ids, outcomes, replies)."),
    Variable("SANDBOX_DELIVERY_SECONDS", "3", "Seconds until a sandbox message reaches its final status."),
    Variable("SANDBOX_REPLY_RATE", "0.2", "Probability that a sandbox recipient replies."),
)

_DEFAULTS = {v.name: v.default for v in VARIABLES}


class ConfigError(Exception):
    """One or more settings are missing or invalid; the message names each and what to set."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Config:
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    every8d_uid: str = ""
    every8d_pwd: str = field(default="", repr=False)
    every8d_base_url: str = DEFAULT_EVERY8D_BASE_URL
    every8d_timeout: float = 15.0
    mms_terms: str = DEFAULT_MMS_TERMS
    reply_lookup: bool = True
    param_sms: bool = True
    callback_token: str = field(default="", repr=False)
    callback_port: int = 8090
    db_path: str = "every8d-bot.db"
    approvers: tuple[str, ...] = ()
    approval_channel: str = ""
    allow_self_approval: bool = False
    auto_approve_under: float | None = None
    answers_need_approval: bool = False
    answer_max_points: float = 5.0
    timezone: str = "Asia/Taipei"
    quiet_hours: str = TAIWAN_DEFAULT
    registered_links: str = ""
    autoreply_cooldown_hours: float = 24.0
    thread_answers: str = "confirm"
    refuse_unregistered_links: bool = False
    budget_over: str = "approve"
    language: str = "both"
    mask_numbers: bool = True
    status_poll_seconds: float = 60.0
    credit_poll_seconds: float = 600.0
    low_credit_threshold: float = 500.0
    low_credit_margin: float = 50.0
    alert_channel: str = ""
    replies_channel: str = ""
    expiry_margin_minutes: float = 60.0
    reply_window_hours: float = 72.0
    reply_poll_seconds: float = 300.0
    series_grace_minutes: float = 60.0
    send_chunk_size: int = 1000
    watchdog_minutes: float = 5.0
    weekly_report: bool = True
    weekly_report_time: str = "MON 09:00"
    http_threads: int = 8
    log_level: str = "INFO"
    log_format: str = "text"
    ready_every8d_seconds: float = 1800.0
    ready_slack_seconds: float = 300.0
    ready_outbox_seconds: float = 600.0
    shutdown_seconds: float = 20.0
    sandbox_credit: float = 1000.0
    sandbox_seed: int = 0
    sandbox_delivery_seconds: float = 3.0
    sandbox_reply_rate: float = 0.2

    @property
    def sandbox(self) -> bool:
        """No EVERY8D account configured: the built-in sandbox stands in and nothing is delivered."""
        return not self.every8d_uid

    @property
    def limits(self) -> Limits:
        """Limits and prices under the account's MMS terms (EVERY8D_MMS_TERMS)."""
        return limits_for_mms_terms(self.mms_terms)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def link_rules(self) -> RegisteredLinks | None:
        """BOT_REGISTERED_LINKS with BOT_UNREGISTERED_LINKS; None when no list is set (no check)."""
        return RegisteredLinks.parse(self.registered_links, refuse=self.refuse_unregistered_links)

    @property
    def quiet_window(self) -> QuietHours | None:
        """BOT_QUIET_HOURS read in BOT_TIMEZONE; None when off."""
        return QuietHours.parse(self.quiet_hours, self.timezone)

    @property
    def approver_users(self) -> frozenset[str]:
        return frozenset(a for a in self.approvers if not a.startswith("S"))

    @property
    def approver_groups(self) -> frozenset[str]:
        return frozenset(a for a in self.approvers if a.startswith("S"))

    @property
    def weekly_report_at(self) -> tuple[str, int, int]:
        """(`mon`…`sun`, hour, minute) of BOT_WEEKLY_REPORT_TIME, as a cron trigger takes them."""
        day, hour, minute = _WEEKLY_TIME_RE.match(self.weekly_report_time.strip()).groups()  # type: ignore[union-attr]
        return day.lower(), int(hour), int(minute)

    @property
    def effective_alert_channel(self) -> str:
        return self.alert_channel or self.approval_channel

    def policy(self, group_members: Callable[[str], frozenset[str]] | None = None) -> Policy:
        """The rules the workflows read (services/policy.py), from this configuration. A Policy field takes
        the Config value of the same name; only the few that are derived (units, parsed forms) are listed in
        `POLICY_DERIVED`, so a new setting is named once in Config and once in Policy, never copied by hand."""
        values = {f.name: getattr(self, f.name) for f in fields(Policy)
                  if f.name in _CONFIG_FIELDS and f.name not in POLICY_DERIVED}
        values.update({name: derive(self) for name, derive in POLICY_DERIVED.items()})
        return Policy(**values, group_members=group_members)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: str | Path | None = ".env") -> Config:
        """Read the environment (values already set win over the `.env` file). Raises ConfigError."""
        values = dict(_read_dotenv(dotenv)) if dotenv else {}
        values.update(os.environ if env is None else env)
        return _parse({k: values.get(k, _DEFAULTS[k]).strip() for k in _DEFAULTS})

    def require_for_run(self, *, http: bool) -> None:
        """What `every8d-bot run` needs beyond what every command needs."""
        problems = []
        if not self.slack_bot_token:
            problems.append("SLACK_BOT_TOKEN 未設定 / is not set: copy the Bot User OAuth Token (xoxb-…) "
                            "from your app's OAuth & Permissions page.")
        elif not self.slack_bot_token.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN 應以 xoxb- 開頭 / should start with xoxb- (the Bot User OAuth Token).")
        if http and not self.slack_signing_secret:
            problems.append("SLACK_SIGNING_SECRET 未設定 / is not set: HTTP mode verifies Slack's signatures with it "
                            "(Basic Information → Signing Secret).")
        if not http and not self.slack_app_token:
            problems.append("SLACK_APP_TOKEN 未設定 / is not set: Socket Mode needs an app-level token (xapp-…) "
                            "with connections:write; or start with `every8d-bot run --http --port 3000`.")
        elif not http and not self.slack_app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN 應以 xapp- 開頭 / should start with xapp- (an app-level token).")
        if problems:
            raise ConfigError(problems)


def _read_dotenv(path: str | Path) -> dict[str, str]:
    from dotenv import dotenv_values

    if not Path(path).is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


_CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9_]+$")
_USER_RE = re.compile(r"^[UWS][A-Z0-9_]+$")
_WEEKLY_TIME_RE = re.compile(r"^(MON|TUE|WED|THU|FRI|SAT|SUN)\s+([01]?\d|2[0-3]):([0-5]\d)$", re.IGNORECASE)


def _chunk_size(value: float, problems: list[str]) -> int:
    """Recipients per EVERY8D call: at most what one request may hold (every8d/limits.py)."""
    cap = DEFAULT_LIMITS.max_recipients_per_request
    if value > cap:
        problems.append(f"BOT_SEND_CHUNK_SIZE 最多 {cap} / must be at most {cap} (recipients per EVERY8D call).")
    return int(min(value, cap))


def _base_url_problem(base: str) -> str | None:
    """What is wrong with EVERY8D_BASE_URL, in the words the EVERY8D client's own check would refuse it
    with (every8d/client.py), so a bad value is one config line at start instead of a traceback when the
    client is built. A URL with credentials in it is never echoed: the password would reach the log."""
    try:
        parts = urlsplit(base)
        host, has_user, has_password = parts.hostname, parts.username is not None, parts.password is not None
        parts.port  # noqa: B018 - reading it checks it (a port over 65535 raises here)
    except ValueError:  # e.g. an invalid port or an unbalanced [IPv6 bracket
        return f"EVERY8D_BASE_URL 不是網址 / is not a URL, e.g. {DEFAULT_EVERY8D_BASE_URL}"
    if has_user or has_password or "@" in parts.netloc:
        return ("EVERY8D_BASE_URL 不可包含帳號或密碼（user:password@）；帳號密碼請設在 EVERY8D_UID、EVERY8D_PWD / "
                "must not carry a user name or password (user:password@): put them in EVERY8D_UID and EVERY8D_PWD, "
                f"e.g. {DEFAULT_EVERY8D_BASE_URL}")
    if parts.scheme not in ("http", "https") or not host or any(ch.isspace() for ch in base):
        return f"EVERY8D_BASE_URL={base!r} 不是網址 / is not a URL, e.g. {DEFAULT_EVERY8D_BASE_URL}"
    if parts.query or parts.fragment:
        return (f"EVERY8D_BASE_URL={base!r} 不可包含 ? 或 # 之後的部分 / must not carry a query (?…) or a "
                f"fragment (#…), e.g. {DEFAULT_EVERY8D_BASE_URL}")
    return None


def _budget_over(value: str, problems: list[str]) -> str:
    """BOT_BUDGET_OVER: `approve` or `refuse` (services/budgets.py)."""
    value = value.lower() or "approve"
    if value not in ("approve", "refuse"):
        problems.append(f"BOT_BUDGET_OVER={value!r}: 請填 approve 或 refuse / use approve or refuse.")
        return "approve"
    return value


def _parse(raw: dict[str, str]) -> Config:
    problems: list[str] = []

    def number(name: str, *, minimum: float = 0.0, integer: bool = False) -> float:
        try:
            value = int(raw[name]) if integer else float(raw[name])
        except ValueError:
            problems.append(f"{name}={raw[name]!r} 不是數字 / is not a number (default {_DEFAULTS[name]}).")
            return float(_DEFAULTS[name])
        if value < minimum:
            problems.append(f"{name} 必須至少為 {minimum:g} / must be at least {minimum:g}.")
        return value

    def flag(name: str) -> bool:
        value = raw[name].lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        problems.append(f"{name}={raw[name]!r}: 請填 true 或 false / use true or false.")
        return False

    def channel(name: str) -> str:
        value = raw[name].lstrip("#")
        if value and not _CHANNEL_RE.match(value):
            problems.append(f"{name}={raw[name]!r}: 請填頻道 ID（如 C0123456789）/ use a channel id such as "
                            "C0123456789 (channel details → bottom), not its name.")
        return value

    approvers = tuple(a.strip().lstrip("@") for a in re.split(r"[,\s]+", raw["BOT_APPROVERS"]) if a.strip())
    for a in approvers:
        if not _USER_RE.match(a):
            problems.append(f"BOT_APPROVERS: {a!r} 不是使用者或群組 ID / is not a user id (U…) or user group id (S…).")

    if raw["EVERY8D_UID"] and not raw["EVERY8D_PWD"]:
        problems.append("EVERY8D_PWD 未設定 / is not set: EVERY8D_UID is set, so its password is needed too.")
    base = raw["EVERY8D_BASE_URL"]
    base_problem = _base_url_problem(base)
    if base_problem:
        problems.append(base_problem)
    if not re.match(r"^https?://[^/\s]+", raw["SLACK_API_URL"]):
        problems.append(f"SLACK_API_URL={raw['SLACK_API_URL']!r} 不是網址 / is not a URL.")
    try:
        ZoneInfo(raw["BOT_TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"BOT_TIMEZONE={raw['BOT_TIMEZONE']!r} 不是時區 / is not a time zone, e.g. Asia/Taipei.")
    try:
        QuietHours.parse(raw["BOT_QUIET_HOURS"])
    except ValueError as exc:
        problems.append(f"BOT_QUIET_HOURS={raw['BOT_QUIET_HOURS']!r} ({exc}): 請填一或多個 HH:MM-HH:MM，以逗號分隔，"
                        "如 12:30-13:30,21:00-08:00，留空為關閉 / use one or more HH:MM-HH:MM windows separated by "
                        "commas, e.g. 12:30-13:30,21:00-08:00, or leave it empty to turn quiet hours off.")
    if raw["BOT_THREAD_ANSWERS"].lower() not in ("confirm", "direct", "off"):
        problems.append(f"BOT_THREAD_ANSWERS={raw['BOT_THREAD_ANSWERS']!r}: 請填 confirm、direct 或 off / use confirm, "
                        "direct or off.")
    if raw["BOT_UNREGISTERED_LINKS"].lower() not in ("warn", "refuse"):
        problems.append(f"BOT_UNREGISTERED_LINKS={raw['BOT_UNREGISTERED_LINKS']!r}: 請填 warn 或 refuse / use warn or refuse.")
    budget_over = _budget_over(raw["BOT_BUDGET_OVER"], problems)
    language = raw["BOT_LANGUAGE"]
    if language not in ("both", "zh-TW", "en"):
        problems.append(f"BOT_LANGUAGE={language!r}: 請填 zh-TW、en 或 both / use zh-TW, en or both.")
    token = raw["EVERY8D_CALLBACK_TOKEN"]
    if token and (len(token) < 16 or not re.match(r"^[A-Za-z0-9_-]+$", token)):
        problems.append("EVERY8D_CALLBACK_TOKEN 需至少 16 個英數字元 / needs at least 16 letters, digits, - or _ "
                        "(e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(24))'`).")
    auto = raw["BOT_AUTO_APPROVE_UNDER"]
    if not _WEEKLY_TIME_RE.match(raw["BOT_WEEKLY_REPORT_TIME"]):
        problems.append(f"BOT_WEEKLY_REPORT_TIME={raw['BOT_WEEKLY_REPORT_TIME']!r}: 請填星期與時間，如 MON 09:00 / "
                        "use a weekday and a time, e.g. MON 09:00.")
    mms_terms = raw["EVERY8D_MMS_TERMS"]
    if mms_terms not in MMS_TERMS:
        problems.append(f"EVERY8D_MMS_TERMS={mms_terms!r}: 請填 2021 或 2017（依帳號合約的多媒體簡訊條件）/ use 2021 "
                        "or 2017, the MMS terms of the account's contract (README: MMS terms).")
        mms_terms = DEFAULT_MMS_TERMS
    log_level = raw["BOT_LOG_LEVEL"].upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"BOT_LOG_LEVEL={raw['BOT_LOG_LEVEL']!r}: use DEBUG, INFO, WARNING or ERROR.")
    log_format = raw["BOT_LOG_FORMAT"].lower() or "text"
    if log_format not in ("text", "json"):
        problems.append(f"BOT_LOG_FORMAT={raw['BOT_LOG_FORMAT']!r}: use text or json.")

    config = Config(
        slack_bot_token=raw["SLACK_BOT_TOKEN"],
        slack_signing_secret=raw["SLACK_SIGNING_SECRET"],
        slack_app_token=raw["SLACK_APP_TOKEN"],
        slack_api_url=raw["SLACK_API_URL"].rstrip("/") + "/",
        every8d_uid=raw["EVERY8D_UID"],
        every8d_pwd=raw["EVERY8D_PWD"],
        every8d_base_url=base,
        every8d_timeout=number("EVERY8D_TIMEOUT_SECONDS", minimum=1),
        mms_terms=mms_terms,
        reply_lookup=flag("EVERY8D_REPLY_LOOKUP"),
        param_sms=flag("EVERY8D_PARAM_SMS"),
        callback_token=token,
        callback_port=int(number("BOT_CALLBACK_PORT", minimum=1, integer=True)),
        db_path=raw["BOT_DB_PATH"] or "every8d-bot.db",
        approvers=approvers,
        approval_channel=channel("BOT_APPROVAL_CHANNEL"),
        allow_self_approval=flag("BOT_ALLOW_SELF_APPROVAL"),
        auto_approve_under=number("BOT_AUTO_APPROVE_UNDER") if auto else None,
        answers_need_approval=flag("BOT_ANSWERS_NEED_APPROVAL"),
        answer_max_points=number("BOT_ANSWER_MAX_POINTS"),
        timezone=raw["BOT_TIMEZONE"],
        quiet_hours=raw["BOT_QUIET_HOURS"],
        registered_links=raw["BOT_REGISTERED_LINKS"],
        autoreply_cooldown_hours=number("BOT_AUTOREPLY_COOLDOWN_HOURS"),
        thread_answers=raw["BOT_THREAD_ANSWERS"].lower(),
        refuse_unregistered_links=raw["BOT_UNREGISTERED_LINKS"].lower() == "refuse",
        budget_over=budget_over,
        language=language,
        mask_numbers=flag("BOT_MASK_NUMBERS"),
        status_poll_seconds=number("BOT_STATUS_POLL_SECONDS", minimum=1),
        credit_poll_seconds=number("BOT_CREDIT_POLL_SECONDS", minimum=10),
        low_credit_threshold=number("BOT_LOW_CREDIT_THRESHOLD"),
        low_credit_margin=number("BOT_LOW_CREDIT_MARGIN"),
        alert_channel=channel("BOT_ALERT_CHANNEL"),
        replies_channel=channel("BOT_REPLIES_CHANNEL"),
        expiry_margin_minutes=number("BOT_EXPIRY_MARGIN_MINUTES"),
        reply_window_hours=number("BOT_REPLY_WINDOW_HOURS"),
        reply_poll_seconds=number("BOT_REPLY_POLL_SECONDS", minimum=1),
        series_grace_minutes=number("BOT_SERIES_GRACE_MINUTES", minimum=0),
        send_chunk_size=_chunk_size(number("BOT_SEND_CHUNK_SIZE", minimum=1, integer=True), problems),
        watchdog_minutes=number("BOT_WATCHDOG_MINUTES", minimum=0.05),
        weekly_report=flag("BOT_WEEKLY_REPORT"),
        weekly_report_time=raw["BOT_WEEKLY_REPORT_TIME"],
        http_threads=int(number("BOT_HTTP_THREADS", minimum=1, integer=True)),
        log_level=log_level,
        log_format=log_format,
        ready_every8d_seconds=number("BOT_READY_EVERY8D_SECONDS", minimum=1),
        ready_slack_seconds=number("BOT_READY_SLACK_SECONDS", minimum=1),
        ready_outbox_seconds=number("BOT_READY_OUTBOX_SECONDS", minimum=1),
        shutdown_seconds=number("BOT_SHUTDOWN_SECONDS", minimum=0),
        sandbox_credit=number("SANDBOX_CREDIT"),
        sandbox_seed=int(number("SANDBOX_SEED", integer=True)),
        sandbox_delivery_seconds=number("SANDBOX_DELIVERY_SECONDS"),
        sandbox_reply_rate=number("SANDBOX_REPLY_RATE"),
    )
    if problems:
        raise ConfigError(problems)
    return config


#: Policy fields whose value is not the Config field of the same name (another unit or a parsed form).
POLICY_DERIVED: dict[str, Callable[[Config], object]] = {
    "approver_users": lambda c: c.approver_users,
    "approver_groups": lambda c: c.approver_groups,
    "alert_channel": lambda c: c.effective_alert_channel,
    "expiry_margin_seconds": lambda c: c.expiry_margin_minutes * 60,
    "reply_window_seconds": lambda c: c.reply_window_hours * 3600,
    "quiet_hours": lambda c: c.quiet_window,
    "registered_links": lambda c: c.link_rules,
    "sandbox": lambda c: c.sandbox,
    "reply_text_by_push": lambda c: bool(c.callback_token),
}
_CONFIG_FIELDS = frozenset(f.name for f in fields(Config))
