"""EVERY8D_BASE_URL with credentials or junk in it (issue 12): `run` and `doctor` say so in one config line,
exit with the config code, print no traceback and never echo the password."""

from __future__ import annotations

import pytest

from bot.config import Config, ConfigError
from tests.test_cli import run_cli

PASSWORD = "s3cret-Passw0rd"
RUN_ENV = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_APP_TOKEN": "xapp-1", "EVERY8D_UID": "acme",
           "EVERY8D_PWD": "pw-in-its-own-variable"}

BAD_URLS = [
    (f"https://user:{PASSWORD}@oms.every8d.com/API21/HTTP/", "must not carry a user name or password"),
    (f"https://{PASSWORD}@oms.every8d.com/API21/HTTP/", "must not carry a user name or password"),
    ("https://oms.every8d.com/API21/HTTP/?x=1", "must not carry a query"),
    ("https://oms.every8d.com:99999/API21/", "is not a URL"),
    ("https://[::1/API21/", "is not a URL"),
    ("ftp://oms.every8d.com/", "is not a URL"),
]
IDS = ["user-and-password", "password-only", "query", "bad-port", "unbalanced-bracket", "ftp"]


@pytest.mark.parametrize(("url", "words"), BAD_URLS, ids=IDS)
def test_the_config_loader_names_the_problem_without_the_password(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env({**RUN_ENV, "EVERY8D_BASE_URL": url}, dotenv=None)
    [problem] = raised.value.problems
    assert problem.startswith("EVERY8D_BASE_URL") and words in problem
    assert PASSWORD not in problem and "\n" not in problem


@pytest.mark.parametrize("command", [["run"], ["run", "--http", "--port", "0"], ["doctor"]])
def test_run_and_doctor_refuse_credentials_in_the_base_url_in_one_line(tmp_path, command: list[str]) -> None:
    env = {**RUN_ENV, "SLACK_SIGNING_SECRET": "s", "BOT_DB_PATH": str(tmp_path / "bot.db"),
           "EVERY8D_BASE_URL": f"https://user:{PASSWORD}@oms.every8d.com/API21/HTTP/"}
    result = run_cli(command, env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "ValueError" not in output
    assert PASSWORD not in output
    lines = [line for line in output.splitlines() if "EVERY8D_BASE_URL" in line]
    assert len(lines) == 1 and "must not carry a user name or password" in lines[0], output


def test_a_plain_base_url_is_still_accepted() -> None:
    config = Config.from_env({**RUN_ENV, "EVERY8D_BASE_URL": "https://oms.every8d.com/prepaid/API21/HTTP"}, dotenv=None)
    assert config.every8d_base_url == "https://oms.every8d.com/prepaid/API21/HTTP"
