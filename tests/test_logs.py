"""BOT_LOG_FORMAT (issue 16): `json` writes one JSON object per line, scrubbed of secrets like the text
format; `text` stays the default. (The bot run as a real process with JSON logs: tests/test_sigterm.py.)"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bot.config import Config, ConfigError
from bot.logs import setup_logging

PASSWORD = "every8d-password-42"
TOKEN = "xoxb-1234-5678-abcdefghijkl"


@pytest.fixture
def root_logging() -> Iterator[None]:
    """setup_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(log_format: str) -> None:
    setup_logging("INFO", [PASSWORD], log_format)
    log = logging.getLogger("every8d_bot.test")
    log.info("logged in with %s and %s", PASSWORD, TOKEN)
    try:
        raise RuntimeError(f"EVERY8D refused PWD={PASSWORD}")
    except RuntimeError:
        log.exception("send failed")


def test_json_logs_are_one_scrubbed_object_per_line(root_logging, capsys) -> None:
    emit("json")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    events = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message", "thread"} <= set(events[0])
    assert events[0]["level"] == "INFO" and events[0]["logger"] == "every8d_bot.test"
    assert events[0]["message"] == "logged in with *** and xoxb-***"
    assert events[1]["level"] == "ERROR" and "RuntimeError" in events[1]["exception"]
    text = "\n".join(lines)
    assert PASSWORD not in text and TOKEN not in text


def test_text_logs_stay_the_default_and_scrub_tracebacks_too(root_logging, capsys) -> None:
    assert Config.from_env({}, dotenv=None).log_format == "text"
    emit("text")
    text = capsys.readouterr().err
    assert "INFO every8d_bot.test: logged in with *** and xoxb-***" in text
    assert "Traceback" in text and "RuntimeError" in text
    assert PASSWORD not in text and TOKEN not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_an_unknown_log_format_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"BOT_LOG_FORMAT": "xml"}, dotenv=None)
    assert "BOT_LOG_FORMAT" in str(refused.value)
    assert Config.from_env({"BOT_LOG_FORMAT": "JSON"}, dotenv=None).log_format == "json"
