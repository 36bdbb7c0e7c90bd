"""Documentation that cannot fall behind: a variable, command or subcommand that the code knows but the
READMEs do not mention fails here (sqlite-utils' habit: a test that fails when something is undocumented)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import VARIABLES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
README_ZH = (ROOT / "README.zh-TW.md").read_text(encoding="utf-8")


def test_readme_starts_with_the_run_and_test_commands_and_ci_runs_the_test_command():
    head = README[:600]
    assert "make run" in head and "make test" in head
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)


def test_every_configuration_variable_is_in_both_readme_tables_with_its_default():
    for variable in VARIABLES:
        for readme in (README, README_ZH):
            row = next((line for line in readme.splitlines() if line.startswith(f"| `{variable.name}` |")), None)
            assert row is not None, f"{variable.name} is missing from a README configuration table"
            if variable.default:
                assert f"`{variable.default}`" in row, f"{variable.name}'s default differs in the README"


def test_every_cli_command_is_documented():
    cli = (ROOT / "bot" / "cli.py").read_text(encoding="utf-8")
    commands = re.findall(r'add_parser\(\s*"([a-z]+)"', cli)
    assert {"run", "sandbox", "console", "doctor"} <= set(commands)
    for command in commands:
        assert f"every8d-bot {command}" in README or f"every8d-bot {command}" in README_ZH, command


def test_every_sms_subcommand_is_documented():
    source = (ROOT / "handlers" / "commands.py").read_text(encoding="utf-8")
    words = set(re.findall(r'word == "([a-z]+)"', source))
    for module in (ROOT / "handlers").glob("*.py"):
        words |= set(re.findall(r'subcommands\["([a-z]+)"\]', module.read_text(encoding="utf-8")))
    assert {"send", "credit", "status", "scheduled"} <= words
    for word in words | {"help"}:
        assert f"`/sms {word}" in README and f"`/sms {word}" in README_ZH, word


def test_the_architecture_map_names_only_modules_that_exist():
    """docs/ARCHITECTURE.md is how a newcomer finds a behaviour: every path it names must be real."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:bot|handlers|services|storage|every8d|slackstandin|tests)/[\w/]*(?:\.py)?)`", text))
    assert len(paths) > 20
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/ARCHITECTURE.md names missing paths: {missing}"


def test_the_readmes_benchmark_block_holds_the_table_only():
    section = README.split("### Benchmarks", 1)[1]
    block = section.split("```", 2)[1].strip("\n").splitlines()
    assert block and block[0].startswith("name ") and set(block[1]) <= set("-+ ")
    noise = [line for line in block[2:] if line.count(" | ") < 5]
    assert not noise, f"not table rows (installer or progress output?): {noise[:3]}"
