"""manifest.yml is what an admin pastes into Slack: it must be valid for Slack's schema, ask for the
scopes the app uses and no more, and match what the code listens to."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT.parent / "shared" / "slack" / "manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))


@pytest.mark.skipif(not SCHEMA.exists(), reason="Slack's manifest schema is provided beside the repo in shared/")
def test_manifest_is_valid_for_slacks_schema(manifest):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(manifest, schema)


def test_socket_mode_interactivity_app_home_and_the_sms_command(manifest):
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/sms"]
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]


def test_every_scope_is_explained_in_the_readme(manifest):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Scopes"):]
    for scope in manifest["oauth_config"]["scopes"]["bot"]:
        assert f"`{scope}`" in section, f"README does not say why the app needs {scope}"


def test_the_code_only_calls_methods_the_scopes_allow(manifest):
    """A Web API method the code calls needs its scope in the manifest (a missing one fails at run time)."""
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    needs = {"chat_": "chat:write", "files_info": "files:read", "users_info": "users:read",
             "usergroups_users_list": "usergroups:read", "conversations_info": "channels:read"}
    sources = "\n".join(p.read_text(encoding="utf-8") for d in ("bot", "handlers") for p in (ROOT / d).glob("*.py"))
    for prefix, scope in needs.items():
        if re.search(rf"\.{prefix}\w*\(", sources):
            assert scope in scopes, f"code calls {prefix}… but the manifest lacks {scope}"
