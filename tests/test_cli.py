"""`every8d-bot run` with missing or bad configuration: one clear message naming what to set, a non-zero
exit code, never a stack trace (operators script against this)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "EVERY8D_", "BOT_", "SANDBOX_"))}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "bot", *args], env={**clean, **env}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def test_run_without_tokens_names_what_to_set(tmp_path):
    result = run_cli(["run"], {}, tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "SLACK_APP_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_http_mode_needs_the_signing_secret(tmp_path):
    result = run_cli(["run", "--http", "--port", "0"], {"SLACK_BOT_TOKEN": "xoxb-1-2-abc"}, tmp_path)
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET" in result.stderr and "Traceback" not in result.stderr


def test_bad_values_are_all_reported_at_once(tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_APP_TOKEN": "xapp-1", "BOT_TIMEZONE": "Mars/Olympus",
           "BOT_STATUS_POLL_SECONDS": "often", "BOT_APPROVAL_CHANNEL": "#sms-approvals", "EVERY8D_UID": "acme"}
    result = run_cli(["run"], env, tmp_path)
    assert result.returncode == 2
    for name in ("BOT_TIMEZONE", "BOT_STATUS_POLL_SECONDS", "BOT_APPROVAL_CHANNEL", "EVERY8D_PWD"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    from bot.config import Config

    (tmp_path / ".env").write_text("BOT_LANGUAGE=en\nBOT_LOW_CREDIT_THRESHOLD=42\n", encoding="utf-8")
    config = Config.from_env({"BOT_LANGUAGE": "zh-TW"}, dotenv=tmp_path / ".env")
    assert config.language == "zh-TW" and config.low_credit_threshold == 42


def test_unwritable_database_is_a_clear_message(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    env = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "s", "BOT_DB_PATH": str(blocker / "bot.db")}
    result = run_cli(["run", "--http", "--port", "0"], env, tmp_path)
    assert result.returncode == 2
    assert "BOT_DB_PATH" in result.stderr and "Traceback" not in result.stderr
