"""The Slack stand-in behaves like Slack for a real slack-sdk WebClient, and its signed requests pass Bolt."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from slackstandin import SlackStandIn, payloads, post_signed
from slackstandin.payloads import FORM_TYPE, JSON_TYPE

SECRET = "test-signing-secret"


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    """A fresh stand-in per test, so recordings never leak between tests."""
    with SlackStandIn() as s:
        yield s


@pytest.fixture
def client(standin: SlackStandIn) -> WebClient:
    return WebClient(base_url=standin.api_url, token=standin.bot_token)


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(SlackApiError) as caught:
        call(*args, **kwargs)
    return caught.value.response["error"]


# ----- messages ---------------------------------------------------------------------------------------------

def test_post_thread_update_delete_and_permalink(standin: SlackStandIn, client: WebClient) -> None:
    card = client.chat_postMessage(channel="C_APPROVALS", text="request", blocks=[{"type": "divider"}])
    assert card["ts"] == "1700000000.000100" and card["message"]["user"] == "U0BOT"
    reply = client.chat_postMessage(channel="C_APPROVALS", text="sent", thread_ts=card["ts"])
    client.chat_postMessage(channel="C_APPROVALS", text="second", thread_ts=card["ts"])
    client.chat_update(channel="C_APPROVALS", ts=card["ts"], text="approved")

    [top] = standin.messages("C_APPROVALS")
    assert top["text"] == "approved" and top["blocks"] == [{"type": "divider"}]  # blocks kept when not given
    assert top["history"] == [{"text": "request", "blocks": [{"type": "divider"}]}]
    assert [m["text"] for m in standin.thread("C_APPROVALS", card["ts"])] == ["sent", "second"]
    assert reply["ts"] > card["ts"]

    link = client.chat_getPermalink(channel="C_APPROVALS", message_ts=card["ts"])["permalink"]
    assert link.endswith("/archives/C_APPROVALS/p1700000000000100")
    client.chat_delete(channel="C_APPROVALS", ts=reply["ts"])
    assert [m["text"] for m in standin.thread("C_APPROVALS", card["ts"])] == ["second"]
    assert error_of(client.chat_update, channel="C_APPROVALS", ts="1.2", text="x") == "message_not_found"


def test_slack_errors(standin: SlackStandIn, client: WebClient) -> None:
    standin.add_channel("C_QUIET", "quiet", is_member=False)
    assert error_of(client.chat_postMessage, channel="C_NOPE", text="x") == "channel_not_found"
    assert error_of(client.chat_postMessage, channel="C_QUIET", text="x") == "not_in_channel"
    assert error_of(client.chat_postMessage, channel="C_GENERAL", text="x",
                    blocks=[{"type": "divider"}] * 51) == "invalid_blocks"
    client.conversations_join(channel="C_QUIET")
    assert client.chat_postMessage(channel="C_QUIET", text="x")["ok"]
    assert error_of(client.users_info, user="U_NOBODY") == "user_not_found"
    assert error_of(client.usergroups_users_list, usergroup="S_NONE") == "no_such_subteam"
    assert error_of(WebClient(base_url=standin.api_url, token="xoxb-wrong").auth_test) == "invalid_auth"
    assert error_of(client.api_call, "chat.scheduleMessage") == "unknown_method"
    assert [c.status for c in standin.calls_to("chat.postMessage")] == [200] * 4


def test_missing_scope_names_the_scope() -> None:
    with SlackStandIn(scopes=["chat:write"]) as narrow:
        client = WebClient(base_url=narrow.api_url, token=narrow.bot_token)
        assert client.auth_test().headers["x-oauth-scopes"] == "chat:write"
        with pytest.raises(SlackApiError) as caught:
            client.users_info(user="U_REQUESTER")
        assert caught.value.response["needed"] == "users:read"


def test_users_groups_channels(client: WebClient) -> None:
    assert client.users_info(user="U_APPROVER")["user"]["name"] == "approver"
    assert client.usergroups_users_list(usergroup="S_APPROVERS")["users"] == ["U_APPROVER", "U_APPROVER2"]
    assert client.conversations_info(channel="C_ALERTS")["channel"]["is_member"] is True
    assert "U0BOT" in client.conversations_members(channel="C_REPLIES")["members"]


def test_ephemeral_and_dm(standin: SlackStandIn, client: WebClient) -> None:
    standin.add_user("U_NEW", "new")
    client.chat_postEphemeral(channel="C_GENERAL", user="U_REQUESTER", text="only you")
    assert error_of(client.chat_postEphemeral, channel="C_GENERAL", user="U_NEW", text="x") == "user_not_in_channel"
    assert [e["text"] for e in standin.ephemerals("U_REQUESTER")] == ["only you"]
    assert standin.messages("C_GENERAL") == []
    sent = client.chat_postMessage(channel="U_NEW", text="hello")
    assert sent["channel"] == "DU_NEW" and [m["text"] for m in standin.messages("U_NEW")] == ["hello"]


# ----- views ------------------------------------------------------------------------------------------------

MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Send SMS"}, "blocks": [], "external_id": "req-1"}


def test_views_open_update_push_publish(standin: SlackStandIn, client: WebClient) -> None:
    assert error_of(client.views_open, trigger_id="", view=MODAL) == "invalid_arguments"
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    assert error_of(client.views_open, trigger_id="t", view=long_title) == "invalid_arguments"

    opened = client.views_open(trigger_id=payloads.new_trigger_id("U_REQUESTER"), view=MODAL)["view"]
    updated = client.views_update(external_id="req-1", view={**MODAL, "blocks": [{"type": "divider"}]})["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"] and updated["state"] == {"values": {}}
    assert error_of(client.views_update, view_id=opened["id"], hash=opened["hash"], view=MODAL) == "hash_conflict"
    pushed = client.views_push(trigger_id=payloads.new_trigger_id("U_REQUESTER"), view=MODAL)["view"]
    assert pushed["previous_view_id"] == opened["id"]
    assert [v["id"] for v in standin.open_views("U_REQUESTER")] == [opened["id"], pushed["id"]]
    assert standin.open_views("U_OTHER") == []

    client.views_publish(user_id="U_APPROVER", view={"type": "home", "blocks": []})
    assert standin.home("U_APPROVER")["type"] == "home" and standin.home("U_OTHER") is None


# ----- files ------------------------------------------------------------------------------------------------

def test_file_download_needs_the_bot_token(standin: SlackStandIn, client: WebClient) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 20
    file_id = standin.add_file(png, "photo.png", "image/png", "png")
    url = client.files_info(file=file_id)["file"]["url_private_download"]
    assert url.startswith(standin.base_url)

    good = requests.get(url, headers={"Authorization": f"Bearer {standin.bot_token}"}, timeout=5)
    assert good.content == png and good.headers["Content-Type"] == "image/png"
    trap = requests.get(url, timeout=5)
    assert trap.status_code == 200 and trap.headers["Content-Type"].startswith("text/html")
    assert b"Sign in" in trap.content
    assert error_of(client.files_info, file="F_NONE") == "file_not_found"


def test_upload_v2_shares_into_a_thread(standin: SlackStandIn, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C_REPLIES", text="batch")["ts"]
    done = client.files_upload_v2(channel="C_REPLIES", thread_ts=parent, content=b"a,b\n1,2\n",
                                  filename="report.csv", title="Report", initial_comment="details")
    [upload] = standin.uploads
    assert upload["content"] == b"a,b\n1,2\n" and upload["title"] == "Report" and upload["thread_ts"] == parent
    [shared] = standin.thread("C_REPLIES", parent)
    assert shared["text"] == "details" and shared["files"][0]["id"] == done["file"]["id"]
    assert client.files_info(file=done["file"]["id"])["file"]["name"] == "report.csv"


# ----- response_url, recording, events ----------------------------------------------------------------------

def test_response_url_replaces_the_bound_message(standin: SlackStandIn, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C_APPROVALS", text="card")["ts"]
    url = standin.new_response_url("C_APPROVALS", ts, "U_APPROVER")
    assert requests.post(url, json={"replace_original": True, "text": "approved"}, timeout=5).text == "ok"
    requests.post(url, json={"text": "thanks"}, timeout=5)
    assert [r["text"] for r in standin.responses] == ["approved", "thanks"]
    assert standin.messages("C_APPROVALS")[0]["text"] == "approved"
    assert [e["text"] for e in standin.ephemerals("U_APPROVER")] == ["thanks"]
    assert requests.post(f"{standin.base_url}/response/nope", json={}, timeout=5).status_code == 404


def test_reset_keeps_fixtures_and_listeners_see_changes(standin: SlackStandIn, client: WebClient) -> None:
    seen: list[tuple[str, str]] = []
    standin.on_event(lambda kind, payload: seen.append((kind, payload.get("text", ""))))
    ts = client.chat_postMessage(channel="C_ALERTS", text="low credit")["ts"]
    client.chat_update(channel="C_ALERTS", ts=ts, text="recovered")
    assert seen == [("message", "low credit"), ("message_changed", "recovered")]
    standin.reset()
    assert standin.calls == [] and standin.messages("C_ALERTS") == []
    assert client.users_info(user="U_OTHER")["ok"] and client.chat_postMessage(channel="C_ALERTS", text="x")["ok"]


# ----- faults -----------------------------------------------------------------------------------------------

def test_rate_limit_is_retried_after_retry_after_nothing_lost(standin: SlackStandIn, client: WebClient) -> None:
    standin.faults.rate_limit_every(1, retry_after=7, methods=["chat.postMessage"])
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C_GENERAL", text="x")
    assert caught.value.response.status_code == 429 and caught.value.response.headers["Retry-After"] == "7"

    standin.reset()
    standin.faults.rate_limit_every(3, retry_after=1)
    patient = WebClient(base_url=standin.api_url, token=standin.bot_token,
                        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    for i in range(4):
        patient.chat_postMessage(channel="C_GENERAL", text=f"m{i}")
    assert [m["text"] for m in standin.messages("C_GENERAL")] == ["m0", "m1", "m2", "m3"]
    calls = standin.calls
    assert [c.status for c in calls] == [200, 200, 429, 200, 200]
    assert calls[3].at - calls[2].at >= 1.0  # the client waited as told


def test_injected_failures_outage_and_latency(standin: SlackStandIn, client: WebClient) -> None:
    standin.faults.fail("chat.update", "cant_update_message", count=2)
    ts = client.chat_postMessage(channel="C_GENERAL", text="x")["ts"]
    for _ in range(2):
        assert error_of(client.chat_update, channel="C_GENERAL", ts=ts, text="y") == "cant_update_message"
    assert client.chat_update(channel="C_GENERAL", ts=ts, text="y")["ok"]

    standin.faults.down(True)
    with pytest.raises(SlackApiError) as caught:
        client.auth_test()
    assert caught.value.response.status_code == 503
    standin.faults.clear()
    standin.faults.latency = 0.1
    started = time.monotonic()
    client.api_test()
    assert time.monotonic() - started >= 0.1


# ----- signed requests through Bolt -------------------------------------------------------------------------

@pytest.fixture
def bolt_url(standin: SlackStandIn) -> Iterator[str]:
    """A Bolt app on its own tiny WSGI server, its WebClient pointed at the stand-in."""
    app = App(client=WebClient(base_url=standin.api_url, token=standin.bot_token), signing_secret=SECRET,
              token_verification_enabled=False, process_before_response=True)

    @app.command("/sms")
    def sms(ack, respond, command) -> None:
        ack()
        respond(f"got {command['text']} from {command['user_id']}")

    @app.action("approve")
    def approve(ack, body, client) -> None:
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text=body["actions"][0]["value"])

    @app.view("send")
    def send(ack, view, body) -> None:
        values = view["state"]["values"]
        ack(response_action="errors", errors={"when": f"{values['text']['t']['value']}|{body['user']['id']}"})

    @app.event("message")
    def on_message(event, client) -> None:
        client.chat_postMessage(channel=event["channel"], thread_ts=event["thread_ts"], text="noted")

    class Quiet(WSGIRequestHandler):
        def log_message(self, format, *args) -> None:
            pass

    server: WSGIServer = make_server("127.0.0.1", 0, SlackRequestHandler(app), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/slack/events"
    server.shutdown()
    server.server_close()


def test_bolt_accepts_signed_slash_command_refuses_forged_and_stale(standin: SlackStandIn, bolt_url: str) -> None:
    body = payloads.slash_command("hello", user_id="U_REQUESTER", channel_id="C_GENERAL",
                                  response_url=standin.new_response_url("C_GENERAL", user="U_REQUESTER"))
    assert post_signed(bolt_url, body, SECRET, content_type=FORM_TYPE).status_code == 200
    assert [r["text"] for r in standin.responses] == ["got hello from U_REQUESTER"]

    assert post_signed(bolt_url, body, "forged-secret", content_type=FORM_TYPE).status_code == 401
    stale = int(time.time()) - 301
    assert post_signed(bolt_url, body, SECRET, content_type=FORM_TYPE, timestamp=stale).status_code == 401
    assert len(standin.responses) == 1


def test_bolt_routes_every_builder(standin: SlackStandIn, client: WebClient, bolt_url: str) -> None:
    ts = client.chat_postMessage(channel="C_APPROVALS", text="card")["ts"]
    click = payloads.block_actions(user_id="U_APPROVER", action_id="approve", value="approved",
                                   channel_id="C_APPROVALS", message_ts=ts)
    assert post_signed(bolt_url, click, SECRET, content_type=FORM_TYPE).status_code == 200
    assert standin.messages("C_APPROVALS")[0]["text"] == "approved"

    submit = payloads.view_submission(user_id="U_REQUESTER", view={"callback_id": "send"},
                                      values={"text": payloads.plain_text_input("t", "hi")})
    answer = post_signed(bolt_url, submit, SECRET, content_type=FORM_TYPE).json()
    assert answer["errors"] == {"when": "hi|U_REQUESTER"}

    batch = client.chat_postMessage(channel="C_REPLIES", text="batch")["ts"]
    reply = standin.add_message("C_REPLIES", "stop", user="U_OTHER", thread_ts=batch)
    event = payloads.event_callback(payloads.message_event("C_REPLIES", "U_OTHER", "stop", ts=reply["ts"],
                                                           thread_ts=batch))
    assert post_signed(bolt_url, event, SECRET, content_type=JSON_TYPE, retry_num=1).status_code == 200
    assert [m["text"] for m in standin.thread("C_REPLIES", batch)] == ["stop", "noted"]

    check = post_signed(bolt_url, payloads.url_verification("abc"), SECRET, content_type=JSON_TYPE)
    assert check.json() == {"challenge": "abc"}


def test_concurrent_posts_are_all_kept_with_unique_ts(standin: SlackStandIn) -> None:
    def post(worker: int) -> None:
        client = WebClient(base_url=standin.api_url, token=standin.bot_token)
        for i in range(25):
            client.chat_postMessage(channel="C_GENERAL", text=f"{worker}-{i}")

    threads = [threading.Thread(target=post, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    posted = standin.messages("C_GENERAL")
    assert len(posted) == 200 and len({m["ts"] for m in posted}) == 200
    assert [m["ts"] for m in posted] == sorted(m["ts"] for m in posted)
