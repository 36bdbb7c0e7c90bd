"""Logging set-up with a last line of defence: whatever a library prints, Slack tokens and the EVERY8D
password are replaced by `***` before a log line is written.

Two formats (BOT_LOG_FORMAT): `text`, one readable line per event, and `json`, one JSON object per line
for log collectors (`time`, `level`, `logger`, `message`, `thread`, and `exception` with the traceback).
Both scrub the message and the traceback the same way.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_TOKEN = re.compile(r"\b(xox[abposr]|xapp)-[0-9A-Za-z-]+")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Scrubber:
    """Replaces Slack tokens (by their shape) and the configured secrets (by value) with `***`."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(self, text: str) -> str:
        cleaned = _TOKEN.sub(r"\1-***", text)
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, "***")
        return cleaned


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.scrub = Scrubber(secrets)
        self.secrets = self.scrub.secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class ScrubbingTextFormatter(logging.Formatter):
    """The text format, with the traceback scrubbed too (an exception's text may quote a secret)."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__(TEXT_FORMAT)
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Fields are scrubbed before encoding, so JSON escaping cannot hide a secret
    from the scrubber."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.scrub(record.getMessage()),
            "thread": record.threadName,
        }
        if record.exc_info:
            event["exception"] = self.scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            event["exception"] = self.scrub(record.exc_text)
        if record.stack_info:
            event["stack"] = self.scrub(self.formatStack(record.stack_info))
        return json.dumps(event, ensure_ascii=False)


def make_formatter(log_format: str, secrets: list[str]) -> logging.Formatter:
    scrub = Scrubber(secrets)
    return JsonFormatter(scrub) if log_format == "json" else ScrubbingTextFormatter(scrub)


def setup_logging(level: str, secrets: list[str], log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(log_format, secrets))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "waitress", "urllib3", "slack_sdk", "slack_bolt"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
