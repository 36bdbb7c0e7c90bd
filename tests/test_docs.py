"""Documentation that cannot fall behind: a variable, command or subcommand that the code knows but the
READMEs do not mention fails here (sqlite-utils' habit: a test that fails when something is undocumented)."""

from __future__ import annotations

import re
from itertools import zip_longest
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


def test_the_architecture_map_names_every_module():
    """A module the map does not name is a behaviour a newcomer cannot find by its name."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    modules = [p.relative_to(ROOT).as_posix() for package in ("bot", "handlers", "services", "storage", "every8d")
               for p in sorted((ROOT / package).glob("*.py")) if p.name != "__init__.py"]
    assert [m for m in modules if f"`{m}`" not in text] == []


def test_the_readmes_benchmark_block_holds_the_table_only():
    section = README.split("### Benchmarks", 1)[1]
    block = section.split("```", 2)[1].strip("\n").splitlines()
    assert block and block[0].startswith("name ") and set(block[1]) <= set("-+ ")
    noise = [line for line in block[2:] if line.count(" | ") < 5]
    assert not noise, f"not table rows (installer or progress output?): {noise[:3]}"


# -- the two READMEs stay parallel -------------------------------------------------------------------
# README.zh-TW.md is a full translation, not a summary: a reader of either language gets every section and
# every name they must type. When one README gains a section or an interface the other lacks, these fail
# and say exactly what to add, so whoever merges two branches closes the gap before it ships.

def _prose(markdown: str) -> str:
    """The text outside fenced code blocks (a fence's contents are examples, not inline spans)."""
    return "".join(part for i, part in enumerate(re.split(r"^[ \t]*```.*$", markdown, flags=re.MULTILINE)) if i % 2 == 0)


def _sections(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", _prose(markdown), flags=re.MULTILINE)


# a run of backticks, then anything up to the same run (CommonMark: a span may wrap a line, not a paragraph)
_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", flags=re.DOTALL)


def _inline_spans(markdown: str) -> list[tuple[str, bool]]:
    """Every `code span` outside fences (a line break inside one read as a space), with whether it sits in a
    table row."""
    prose = _prose(markdown)
    spans = []
    for match in _SPAN.finditer(prose):
        line = prose[prose.rfind("\n", 0, match.start()) + 1:match.start()]
        spans.append((" ".join(match.group(2).split()), line.lstrip().startswith("|")))
    return spans


_COMMAND = re.compile(r"(every8d-bot|\.venv/bin/|/sms|make |pip |git |--)")
_ENV_VARIABLE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?:=\S*)?")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")  # audit actions, states: `quiet_hours_override`
_NUMBER = re.compile(r"[-+]?\d[\d,.]*")  # status codes and defaults
_FILE_NAME = re.compile(r"[\w.…<>*-]*\.[a-z]{2,8}")  # `manifest.yml`, `sms-audit-<from>-<to>.csv`


def _is_interface(span: str, in_table: bool) -> bool:
    """Whether a README span names something a reader types, sets, opens or sees as a code: a command,
    an environment variable, a file, an endpoint or URL, an identifier, a number, or any value of a table
    (the configuration, scopes, status codes and troubleshooting tables are looked up by their values)."""
    if in_table or _COMMAND.match(span) or span.startswith(("/", "./", ".", "http://", "https://")):
        return True
    if re.match(r"(GET|POST|PUT|DELETE|HEAD) /", span):
        return True
    if " " not in span and ("/" in span or _FILE_NAME.fullmatch(span)):
        return True
    return any(pattern.fullmatch(span) for pattern in (_ENV_VARIABLE, _IDENTIFIER, _NUMBER))


_PLACEHOLDER = re.compile(r"<[^<>]*>|\[[^\[\]]*\]")


def _placeholder_pattern(span: str) -> re.Pattern[str]:
    """The span, with each `<placeholder>` or `[optional]` free to be translated (`<batch id or #request>` →
    `<批次代碼或 #申請編號>`, `[tags]` → `[標籤]`); everything else must be spelled the same."""
    pattern = ""
    for i, part in enumerate(_PLACEHOLDER.split(span)):
        pattern += ("" if i == 0 else f"(?:{_PLACEHOLDER.pattern})") + re.escape(part)
    return re.compile(pattern)


def test_the_chinese_readme_has_a_section_for_every_english_section_in_the_same_order():
    english, chinese = _sections(README), _sections(README_ZH)
    if len(english) != len(chinese):
        rows = "\n".join(
            f"  {i:2}. {en!r:50} ↔ {zh!r}" for i, (en, zh) in enumerate(zip_longest(english, chinese, fillvalue=""), 1)
        )
        raise AssertionError(
            f"README.md has {len(english)} '## ' sections, README.zh-TW.md {len(chinese)}; translate the missing "
            f"ones into README.zh-TW.md at the same place (pairs below are by position, the first "
            f"mismatch is where they part):\n{rows}"
        )
    # within each pair of sections, the same number of `### ` subsections (HTTP mode, Scopes, Benchmarks …)
    uneven = [
        f"  ## {en_heading} {_subsections(en_body)}  ↔  ## {zh_heading} {_subsections(zh_body)}"
        for (en_heading, en_body), (zh_heading, zh_body) in zip(_split_sections(README), _split_sections(README_ZH),
                                                                strict=True)
        if len(_subsections(en_body)) != len(_subsections(zh_body))
    ]
    assert not uneven, "'### ' subsections differ; translate the missing ones:\n" + "\n".join(uneven)
    # each README's contents list names its sections in order, with links that work on GitHub
    for readme, name in ((README, "README.md"), (README_ZH, "README.zh-TW.md")):
        contents = _split_sections(readme)[1][1]
        listed = re.findall(r"^- \[([^\]]+)\]\(#([^)]+)\)", contents, flags=re.MULTILINE)
        titles = [title for title, _ in listed]
        assert titles == _sections(readme)[1:], (
            f"{name}: its contents list does not name its sections in order; not listed: "
            f"{[s for s in _sections(readme)[1:] if s not in titles]}, listed but no such section: "
            f"{[s for s in titles if s not in _sections(readme)]}. The list it needs:\n"
            + "\n".join(f"- [{s}](#{_github_anchor(s)})" for s in _sections(readme)[1:])
        )
        broken = [f"[{title}](#{anchor})" for title, anchor in listed if anchor != _github_anchor(title)]
        assert not broken, f"{name}: contents links that GitHub would not resolve: {broken}"


def _github_anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation (full-width too) dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _subsections(body: str) -> list[str]:
    return re.findall(r"^### (.+)$", body, flags=re.MULTILINE)


def _split_sections(markdown: str) -> list[tuple[str, str]]:
    """(heading, body) per `## ` section, the text before the first one as heading ''."""
    parts = re.split(r"^## (.+)$", _prose(markdown), flags=re.MULTILINE)
    return [("", parts[0])] + list(zip(parts[1::2], parts[2::2], strict=True))


def _missing_interfaces(english: str, chinese: str) -> list[str]:
    """The English interfaces no Chinese span matches. A span of 8 characters or more may also stand inside a
    longer one (`every8d-bot backup` in `every8d-bot backup PATH`, `BOT_DB_PATH` in `BOT_DB_PATH=/data/…`);
    a short one (`ok`, `200`, `-4`) must be a span of its own."""
    chinese_spans = {span for span, _ in _inline_spans(chinese)}
    missing = []
    for span, in_table in _inline_spans(english):
        if not _is_interface(span, in_table) or span in chinese_spans:
            continue
        pattern = _placeholder_pattern(span)
        inside = re.compile(rf"(?<![\w-]){pattern.pattern}(?![\w-])")
        if not any(pattern.fullmatch(zh) or (len(span) >= 8 and inside.search(zh)) for zh in chinese_spans):
            missing.append(span)
    return list(dict.fromkeys(missing))


def test_every_interface_the_english_readme_names_is_in_the_chinese_readme():
    """Section by section when both have the same sections (so a paragraph left untranslated is caught even if
    its variables appear elsewhere), else over the whole file."""
    english, chinese = _split_sections(README), _split_sections(README_ZH)
    if len(english) != len(chinese):
        english, chinese = [("(whole file)", README)], [("(whole file)", README_ZH)]
    missing = [
        f"  ## {heading or '(top of the file)'}  ↔  ## {zh_heading or '(top of the file)'}:  `{span}`"
        for (heading, body), (zh_heading, zh_body) in zip(english, chinese, strict=True)
        for span in _missing_interfaces(body, zh_body)
    ]
    assert not missing, (
        f"README.zh-TW.md lacks {len(missing)} code span(s) that README.md names (commands, variables, files, "
        f"endpoints, table values); add each to the matching section of README.zh-TW.md, spelled exactly as in "
        f"README.md (only <placeholders> and [optional] parts may be translated):\n" + "\n".join(missing)
    )
