"""Hostile Slack input (issue 12): forged and malformed bodies, junk modal values, oversized pastes.

Everything goes over real HTTP to the running product (tests/harness.py). A request without Slack's
signature is refused with 401 before its body is read; a signed body Bolt cannot read is a 400; junk in a
signed modal becomes a field error or a plain sentence; and none of it leaves a traceback in the log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from urllib.parse import urlencode

import pytest
import requests

from bot.slack_guard import MAX_BODY_BYTES
from handlers import modals
from slackstandin import payloads
from tests.faults_support import send_calls, wait_for, watchdog  # noqa: F401 - fixture
from tests.harness import SIGNING_SECRET, SlackUser, all_text

pytestmark = pytest.mark.usefixtures("watchdog")

FORM = payloads.FORM_TYPE
JSON = payloads.JSON_TYPE

MALFORMED = [
    (b"\xff\xfe\xff", FORM),
    (b"\xff", JSON),
    (b"payload=%7Bnot-json", FORM),
    (b"payload=%5B1%2C2%5D", FORM),  # a JSON list
    (b"payload=null", FORM),
    (b"payload=%22text%22", FORM),
    (b"[1, 2]", JSON),
    (b"null", JSON),
    (b"{\"unclosed\": ", JSON),
    (b"payload=" + b"%5B" * 100_000, FORM),  # nested past Python's recursion limit
]
IDS = ["0xff-form", "0xff-json", "payload-not-json", "payload-list", "payload-null", "payload-string",
       "json-list", "json-null", "json-truncated", "payload-nested-deep"]


def signed_headers(body: bytes, content_type: str, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's v0 signature over raw bytes (slackstandin signs text; these bodies need not be UTF-8)."""
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def assert_no_traceback_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in caplog.text, caplog.text[-3000:]
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


def assert_nothing_happened(product) -> None:
    product.settle()
    assert product.store.requests.get(1) is None
    assert product.store.outbox.pending_count() == 0
    assert send_calls(product.sandbox) == []


# -- 1. the body of a request ------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "content_type"), MALFORMED, ids=IDS)
def test_an_unsigned_malformed_body_gets_401_and_no_traceback(product, caplog, body: bytes,
                                                              content_type: str) -> None:
    caplog.set_level(logging.DEBUG)
    response = requests.post(product.events_url, data=body, headers={"Content-Type": content_type}, timeout=10)
    assert response.status_code == 401
    forged = signed_headers(body, content_type, secret="not-the-signing-secret")
    assert requests.post(product.events_url, data=body, headers=forged, timeout=10).status_code == 401
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


@pytest.mark.parametrize(("body", "content_type"), MALFORMED, ids=IDS)
def test_a_signed_malformed_body_gets_400_and_no_traceback(product, caplog, body: bytes,
                                                           content_type: str) -> None:
    caplog.set_level(logging.DEBUG)
    response = requests.post(product.events_url, data=body, headers=signed_headers(body, content_type), timeout=10)
    assert response.status_code == 400
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "user": 5},
        {"type": "block_actions", "user": {"id": "U_REQUESTER"}, "actions": 5},
        {"type": "block_actions", "user": {"id": "U_REQUESTER"}, "actions": [5]},
        {"type": "view_submission", "user": {"id": "U_REQUESTER"}, "view": None},
        {"type": "view_submission", "user": {"id": "U_REQUESTER"}, "view": "x"},
        {"type": "view_submission", "user": {"id": "U_REQUESTER"}, "view": {"callback_id": modals.COMPOSE_CALLBACK,
                                                                            "state": 5}},
        {"team": 5},
        {"enterprise": 5},
        {"authorizations": 5},
    ],
    ids=["user-int", "actions-int", "action-int", "view-null", "view-string", "state-int", "team-int",
         "enterprise-int", "authorizations-int"],
)
def test_a_signed_interaction_of_the_wrong_shape_gets_400_and_no_traceback(product, caplog, payload: dict) -> None:
    caplog.set_level(logging.DEBUG)
    body = urlencode({"payload": json.dumps(payload)}).encode()
    response = requests.post(product.events_url, data=body, headers=signed_headers(body, FORM), timeout=10)
    assert response.status_code == 400
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


@pytest.mark.parametrize("event", [5, "x", {"type": "message", "channel": 5, "user": 6, "ts": 7, "thread_ts": 8}],
                         ids=["event-int", "event-string", "message-of-numbers"])
def test_a_signed_event_of_the_wrong_shape_gets_400_and_no_traceback(product, caplog, event) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"type": "event_callback", "team_id": payloads.TEAM_ID, "event": event}).encode()
    response = requests.post(product.events_url, data=body, headers=signed_headers(body, JSON), timeout=10)
    assert response.status_code == 400
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


def test_a_signed_slash_command_without_its_fields_gets_400_and_no_traceback(product, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    body = urlencode({"command": "/sms", "text": "send 0912345678 hi"}).encode()
    response = requests.post(product.events_url, data=body, headers=signed_headers(body, FORM), timeout=10)
    assert response.status_code == 400
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


def test_a_body_over_the_size_cap_is_refused_unread(product, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    body = b"x" * (MAX_BODY_BYTES + 1)
    response = requests.post(product.events_url, data=body, headers=signed_headers(body, FORM), timeout=30)
    assert response.status_code == 413
    assert_no_traceback_logged(caplog)


def test_well_formed_signed_requests_still_work(product) -> None:
    """The guard passes Slack's real bodies on untouched: a command, Slack's URL check, its ssl_check."""
    user = SlackUser(product, "U_REQUESTER")
    assert "1 位收件人" in all_text(user.command("send 0912345678 您好").json())
    body = payloads.url_verification("challenge-123")
    response = requests.post(product.events_url, data=body.encode(),
                             headers=signed_headers(body.encode(), JSON), timeout=10)
    assert response.status_code == 200 and "challenge-123" in response.text
    check = urlencode({"ssl_check": "1", "token": payloads.VERIFICATION_TOKEN}).encode()
    assert requests.post(product.events_url, data=check, headers={"Content-Type": FORM}, timeout=10).status_code == 200
    product.settle()
    assert product.store.requests.get(1) is not None


# -- 2. junk in a signed modal -----------------------------------------------------------------------------


def open_compose(product, user: SlackUser) -> dict:
    assert user.command("").status_code == 200
    views = wait_for(lambda: product.standin.open_views(user.user_id), timeout=5, what="the compose modal")
    return views[-1]


def compose_state(*, recipients: str = "0912345678", message: str = "您好", send_at=None, validity=None) -> dict:
    return {
        "kind": payloads.radio_buttons(modals.KIND_ACTION, "sms"),
        "recipients": payloads.plain_text_input("value", recipients),
        "message": payloads.plain_text_input("value", message),
        "subject": payloads.plain_text_input("value", None),
        "send_at": {"value": {"type": "datetimepicker", "selected_date_time": send_at}},
        "validity": {"value": {"type": "number_input", "value": validity}},
    }


def submit(product, view: dict, values: dict) -> requests.Response:
    body = payloads.view_submission(user_id="U_REQUESTER", view=view, values=values)
    return requests.post(product.events_url, data=body.encode(), headers=signed_headers(body.encode(), FORM),
                         timeout=10)


def errors_of(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["response_action"] == "errors", answer
    return answer["errors"]


@pytest.mark.parametrize(
    ("field", "state", "words"),
    [
        ("validity", {"validity": "abc"}, "有效期限需為 1 到 4320 之間的整數"),
        ("validity", {"validity": "1e20"}, "有效期限需為 1 到 4320 之間的整數"),
        ("validity", {"validity": "12.5"}, "有效期限需為 1 到 4320 之間的整數"),
        ("validity", {"validity": [5]}, "有效期限需為 1 到 4320 之間的整數"),
        ("send_at", {"send_at": 1e20}, "預約時間無法辨識"),
        ("send_at", {"send_at": "1e20"}, "預約時間無法辨識"),
        ("send_at", {"send_at": "abc"}, "預約時間無法辨識"),
        ("send_at", {"send_at": -(10**18)}, "預約時間無法辨識"),
        ("send_at", {"send_at": True}, "預約時間無法辨識"),
    ],
    ids=["validity-abc", "validity-1e20", "validity-decimal", "validity-list", "send_at-1e20-number",
         "send_at-1e20-string", "send_at-abc", "send_at-huge-negative", "send_at-bool"],
)
def test_junk_values_in_the_compose_modal_get_a_field_error(product, caplog, field: str, state: dict,
                                                            words: str) -> None:
    caplog.set_level(logging.DEBUG)
    user = SlackUser(product, "U_REQUESTER")
    errors = errors_of(submit(product, open_compose(product, user), compose_state(**state)))
    assert set(errors) == {field} and words in errors[field]
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


def test_a_compose_view_whose_state_has_no_values_gets_field_errors(product, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    for state in ({}, {"recipients": 5, "message": "x", "kind": {"value": 7}}):
        errors = errors_of(submit(product, view, state))
        assert "請輸入至少一個手機號碼" in errors["recipients"]
    # No `values` at all under `state`.
    payload = {**payloads._common("view_submission", "U_REQUESTER", payloads.TEAM_ID),
               "view": {**view, "state": {}}}
    raw = urlencode({"payload": json.dumps(payload)}).encode()
    response = requests.post(product.events_url, data=raw, headers=signed_headers(raw, FORM), timeout=10)
    assert "請輸入至少一個手機號碼" in errors_of(response)["recipients"]
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


@pytest.mark.parametrize(
    "metadata",
    ["not json", "[1, 2]", "null", "5", json.dumps({"channel_id": 5}), json.dumps({"channel_id": "<!channel>"}),
     json.dumps({"channel_id": "C" + "X" * 5000})],
    ids=["not-json", "list", "null", "number", "channel-number", "channel-mention", "oversized"],
)
def test_junk_private_metadata_in_the_compose_modal_is_a_clear_word(product, caplog, metadata: str) -> None:
    caplog.set_level(logging.DEBUG)
    user = SlackUser(product, "U_REQUESTER")
    view = {**open_compose(product, user), "private_metadata": metadata}
    response = submit(product, view, compose_state())
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "update"
    assert "這個視窗的資料無法辨識" in all_text(answer["view"])
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


@pytest.mark.parametrize("metadata", ["not json", "[1]", json.dumps({"draft_id": 5}), json.dumps({"draft_id": None}),
                                      json.dumps({"draft_id": "x" * 4000})],
                         ids=["not-json", "list", "draft-number", "draft-null", "oversized"])
def test_junk_private_metadata_in_the_preview_step_is_a_clear_word(product, caplog, metadata: str) -> None:
    caplog.set_level(logging.DEBUG)
    user = SlackUser(product, "U_REQUESTER")
    pushed = errors_or_view(submit(product, open_compose(product, user), compose_state()))
    preview = {**pushed, "id": "VPREVIEW1", "private_metadata": metadata}
    response = submit(product, preview, {})
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "update"
    assert "這個視窗的資料無法辨識" in all_text(answer["view"])
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


def errors_or_view(response: requests.Response) -> dict:
    answer = response.json()
    assert answer["response_action"] == "push", answer
    return answer["view"]


def junk_recipients(megabytes: float) -> str:
    """Words that look like contact names (each would be looked up) and broken numbers, `megabytes` long."""
    unit = "王小明 abc 0912-34x 廣告名單 +886-9x "
    return unit * int(megabytes * 1024 * 1024 / len(unit.encode()))


@pytest.mark.parametrize("megabytes", [1.5, 3.0])
def test_a_megabytes_long_recipients_list_is_refused_fast_with_the_limit(product, caplog, megabytes: float) -> None:
    caplog.set_level(logging.INFO)
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    text = junk_recipients(megabytes)
    assert len(text.encode()) > megabytes * 1024 * 1024 * 0.99
    started = time.monotonic()
    response = submit(product, view, compose_state(recipients=text))
    elapsed = time.monotonic() - started
    errors = errors_of(response)
    assert set(errors) == {"recipients"}
    assert "收件人欄最多 320,000 個字元" in errors["recipients"]
    assert elapsed < 1.5, f"{elapsed:.2f} s: Slack gives up after 3 s"
    print(f"\n{megabytes} MB recipients list refused in {elapsed * 1000:.0f} ms (HTTP round trip)")
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


def test_many_short_junk_entries_under_the_character_cap_are_refused_fast(product) -> None:
    """300,000 characters of one-letter "names": each would be a contact lookup; refused by count first."""
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    text = "a " * 150_000
    started = time.monotonic()
    errors = errors_of(submit(product, view, compose_state(recipients=text)))
    elapsed = time.monotonic() - started
    assert "150,000" in errors["recipients"] and "最多" in errors["recipients"]
    assert elapsed < 1.5, f"{elapsed:.2f} s"
    print(f"\n150,000 one-letter entries refused in {elapsed * 1000:.0f} ms (HTTP round trip)")
    assert_nothing_happened(product)


@pytest.mark.parametrize("metadata", ["not json", "[1]", json.dumps({"reply_id": "1"}), json.dumps({"reply_id": -1}),
                                      json.dumps({"reply_id": True}), json.dumps({"reply_id": 1, "channel_id": 5})],
                         ids=["not-json", "list", "reply-text", "reply-negative", "reply-bool", "channel-number"])
def test_junk_private_metadata_in_the_answer_form_is_a_clear_word(product, caplog, metadata: str) -> None:
    from handlers.conversations import ANSWER_CALLBACK

    caplog.set_level(logging.DEBUG)
    view = {"id": "VANSWER1", "callback_id": ANSWER_CALLBACK, "private_metadata": metadata}
    response = submit(product, view, {"message": payloads.plain_text_input("value", "好")})
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "update" and "這個視窗的資料無法辨識" in all_text(answer["view"])
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)


@pytest.mark.parametrize("state", [None, {}, {"values": {"file": 5}}, {"values": {"file": {"value": {"files": [5]}}}}],
                         ids=["no-state", "no-values", "block-number", "file-number"])
def test_a_contacts_import_without_a_usable_file_is_a_field_error(product, caplog, state) -> None:
    caplog.set_level(logging.DEBUG)
    from handlers.audiences import IMPORT_BLOCK, IMPORT_CALLBACK

    payload = {**payloads._common("view_submission", "U_APPROVER", payloads.TEAM_ID),
               "view": {"id": "VIMPORT1", "type": "modal", "callback_id": IMPORT_CALLBACK, "private_metadata": "",
                        **({"state": state} if state is not None else {})}}
    raw = urlencode({"payload": json.dumps(payload)}).encode()
    response = requests.post(product.events_url, data=raw, headers=signed_headers(raw, FORM), timeout=10)
    assert "請上傳一個 CSV 檔案" in errors_of(response)[IMPORT_BLOCK]
    assert_no_traceback_logged(caplog)
    assert product.store.contacts.count() == 0


@pytest.mark.parametrize(
    "headers",
    [{"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "v0=00"},
     {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"},
     {"X-Slack-Request-Timestamp": "\u0661\u0662\u0663", "X-Slack-Signature": "v0=00"},  # Arabic-Indic digits
     {"X-Slack-Request-Timestamp": "-1", "X-Slack-Signature": "v0=00"},
     {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=\u00e9\u00e9"}],
    ids=["timestamp-5000-digits", "timestamp-letters", "timestamp-arabic-digits", "timestamp-negative",
         "signature-not-ascii"],
)
def test_junk_signature_headers_get_401_and_no_traceback(product, caplog, headers: dict) -> None:
    caplog.set_level(logging.DEBUG)
    encoded = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
    response = requests.post(product.events_url, data=b"payload=%7B%7D", timeout=10,
                             headers={"Content-Type": FORM, **encoded})
    assert response.status_code == 401
    assert_no_traceback_logged(caplog)
    assert_nothing_happened(product)
