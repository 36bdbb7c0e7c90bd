"""The layers a newcomer is promised (docs/ARCHITECTURE.md) hold in the code: a layer only imports the ones
below it, Slack stays above services/, SQL stays in storage/, and handlers/ holds no database handle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["every8d", "storage", "services", "handlers", "bot"]
SLACK = {"slack_bolt", "slack_sdk"}


def _imports(package: str) -> dict[str, set[str]]:
    """Top-level modules each file of `package` imports (at any depth of the file, lazy imports included)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_no_layer_imports_a_layer_above_it() -> None:
    upward = {}
    for i, package in enumerate(ORDER):
        above = set(ORDER[i + 1:])
        for path, names in _imports(package).items():
            if names & above:
                upward[path] = sorted(names & above)
    assert upward == {}


def test_slack_libraries_stay_in_handlers_and_bot() -> None:
    below = {path: sorted(names & SLACK) for package in ("every8d", "storage", "services")
             for path, names in _imports(package).items() if names & SLACK}
    assert below == {}


def test_handlers_hold_no_store() -> None:
    """Handlers turn Slack events into service calls; reads and writes go through services (issue #13)."""
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "handlers").rglob("*.py"))
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"\bstore\b|\bStore\b|storage\.db\b|sqlite3", line)]
    assert offenders == []


def test_sql_is_written_only_in_storage() -> None:
    sql = re.compile(r"""["'](SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE|BEGIN)\b""")
    offenders = [str(path.relative_to(ROOT)) for package in ("every8d", "services", "handlers", "bot")
                 for path in sorted((ROOT / package).rglob("*.py"))
                 if "sandbox" not in path.parts and sql.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
