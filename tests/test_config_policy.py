"""Each setting is read once (bot/config.py) and reaches the workflows' Policy without a hand-written copy."""

from __future__ import annotations

from dataclasses import fields

from bot.config import _CONFIG_FIELDS, POLICY_DERIVED, Config
from services.policy import Policy


def test_every_policy_rule_comes_from_a_setting() -> None:
    # A Policy field neither named in Config nor derived would silently keep its default in production.
    wired = _CONFIG_FIELDS | set(POLICY_DERIVED) | {"group_members"}
    assert [f.name for f in fields(Policy) if f.name not in wired] == []


def test_settings_reach_the_policy_in_the_workflows_units() -> None:
    config = Config.from_env({
        "BOT_APPROVERS": "U1,S2", "BOT_APPROVAL_CHANNEL": "C_APPROVE", "BOT_REPLIES_CHANNEL": "C_REPLIES",
        "BOT_EXPIRY_MARGIN_MINUTES": "30", "BOT_REPLY_WINDOW_HOURS": "2", "BOT_SEND_CHUNK_SIZE": "250",
        "BOT_THREAD_ANSWERS": "off", "BOT_QUIET_HOURS": "",
    }, dotenv=None)
    policy = config.policy()
    assert policy.approver_users == {"U1"} and policy.approver_groups == {"S2"}
    assert policy.alert_channel == "C_APPROVE"  # no alert channel set: alerts go to the approvers
    assert policy.replies_channel == "C_REPLIES" and policy.send_chunk_size == 250
    assert policy.expiry_margin_seconds == 1800 and policy.reply_window_seconds == 7200
    assert policy.thread_answers == "off" and policy.quiet_hours is None and policy.sandbox is True
