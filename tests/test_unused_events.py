"""Events and interactions the app does not use are acked 200 and ignored: anything else makes Slack retry
them (and log them as failures in the app's dashboard). Shapes as Slack's Events API documents them."""

from __future__ import annotations

import time

import pytest

from slackstandin import payloads as p
from tests.harness import SlackUser


def _ts() -> str:
    return f"{time.time():.6f}"


UNUSED_EVENTS = {
    "app_mention": {"type": "app_mention", "user": "U_REQUESTER", "text": f"<@{p.BOT_USER_ID}> 你好",
                    "ts": "1700000000.000100", "channel": "C_GENERAL", "event_ts": "1700000000.000100"},
    "reaction_added": {"type": "reaction_added", "user": "U_REQUESTER", "reaction": "thumbsup",
                       "item_user": p.BOT_USER_ID,
                       "item": {"type": "message", "channel": "C_APPROVALS", "ts": "1700000000.000200"},
                       "event_ts": "1700000000.000300"},
    "tokens_revoked": {"type": "tokens_revoked", "tokens": {"oauth": ["U_REQUESTER"], "bot": [p.BOT_USER_ID]},
                       "event_ts": "1700000000.000400"},
    "app_home_opened (messages tab)": p.app_home_opened("U_REQUESTER", tab="messages"),
}


@pytest.mark.parametrize("name", sorted(UNUSED_EVENTS))
def test_an_unused_event_is_acked_and_changes_nothing(product, name):
    response = SlackUser(product, "U_REQUESTER")._post(p.event_callback(UNUSED_EVENTS[name]), content_type=p.JSON_TYPE)
    assert response.status_code == 200
    product.settle()
    assert product.standin.calls_to("chat.postMessage") == [] and product.store.requests.get(1) is None


def test_closing_a_modal_is_acked(product):
    view = {"id": "V123", "callback_id": "compose", "type": "modal"}
    response = SlackUser(product, "U_REQUESTER")._post(p.view_closed(user_id="U_REQUESTER", view=view))
    assert response.status_code == 200
