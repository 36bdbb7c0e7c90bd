"""Hostile and absurd input (issue 7): each gets a specific refusal, in words naming the problem, and
changes nothing (no request, no post, no send); text we did not write is shown inert in Slack.
"""

from __future__ import annotations

import io
import time
import zipfile
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from slackstandin import payloads
from slackstandin.signing import post_signed
from tests.faults_support import (
    approve_first_card,
    send_calls,
    wait_for,
    watchdog,  # noqa: F401 - fixture
)
from tests.harness import CALLBACK_TOKEN, SIGNING_SECRET, SlackUser, all_text

pytestmark = pytest.mark.usefixtures("watchdog")

TAIPEI = ZoneInfo("Asia/Taipei")


def numbers(count: int) -> str:
    """`count` distinct, valid Taiwan mobile numbers, comma-separated."""
    return ",".join(f"0912{i:06d}" for i in range(count))


def assert_nothing_changed(product) -> None:
    """No request, no post queued or made, nothing sent."""
    product.settle()
    assert product.store.requests.get(1) is None
    assert product.store.outbox.pending_count() == 0
    assert product.standin.messages("C_APPROVALS") == []
    assert send_calls(product.sandbox) == []


def refusal(response: requests.Response) -> str:
    assert response.status_code == 200
    text = all_text(response.json())
    assert "無法送出申請" in text
    return text


# -- /sms send --------------------------------------------------------------------------------------------


def test_ten_thousand_numbers_are_one_request_and_ten_thousand_and_one_are_refused(product) -> None:
    user = SlackUser(product, "U_REQUESTER")
    text = refusal(user.command(f"send {numbers(10_001)} 測試"))
    assert "一次最多 10,000 個收件人，這次輸入了 10,001 筆" in text
    assert_nothing_changed(product)

    started = time.monotonic()
    response = user.command(f"send {numbers(10_000)} 測試")
    assert time.monotonic() - started < 3.0  # still inside Slack's ack deadline
    assert "10000 位收件人" in all_text(response.json()) or "10,000 位收件人" in all_text(response.json())
    product.settle()
    request = product.store.requests.get(1)
    assert request.recipient_count == 10_000 and request.state == "pending_approval"
    [card] = product.standin.messages("C_APPROVALS")
    assert len(all_text(card)) < 10_000  # five numbers shown, "and 9,995 more": not the whole list


def test_a_100_kb_message_is_refused_with_its_length(product) -> None:
    text = refusal(SlackUser(product, "U_REQUESTER").command("send 0912345678 " + "颱" * 100_000))
    assert "內容有 100,000 個字，最多 10,000 個字" in text
    assert_nothing_changed(product)


@pytest.mark.parametrize(("char", "code"), [("\x00", "U+0000"), ("\x07", "U+0007"), ("\x1b", "U+001B"),
                                            ("\x7f", "U+007F")])
def test_control_characters_are_refused_by_name(product, char: str, code: str) -> None:
    text = refusal(SlackUser(product, "U_REQUESTER").command(f"send 0912345678 您好{char}明天見"))
    assert "看不見的控制字元" in text and code in text
    assert_nothing_changed(product)


def test_mentions_and_links_in_a_message_are_shown_inert_on_the_card(product) -> None:
    message = "<!channel> 請 <@U_OTHER> 點 <http://x|y> 領獎 <!here> *粗體*"
    SlackUser(product, "U_REQUESTER").command(f"send 0912345678 {message}")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    shown = [b for b in card["blocks"] if b.get("type") == "section" and b.get("text", {}).get("text") == message]
    assert shown and shown[0]["text"]["type"] == "plain_text"  # Slack shows plain_text literally
    mrkdwn = [t for t in _mrkdwn_texts(card)] + [card["text"]]
    for active in ("<!channel>", "<@U_OTHER>", "<http://x|y>", "<!here>"):
        assert not any(active in t for t in mrkdwn), f"{active} is live in {mrkdwn}"
    assert product.store.requests.get(1).message == message  # stored and sent exactly as typed


@pytest.mark.parametrize(
    "typed",
    ["send 0912345678,<!channel> 您好", "send <http://evil.example|0912345678> 您好", "status <!channel>"],
)
def test_mentions_and_links_typed_where_a_number_belongs_are_quoted_inert(product, typed: str) -> None:
    user = SlackUser(product, "U_REQUESTER")
    response = user.command(typed)
    product.settle()
    ack = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    answers = [ack, *user.ephemerals()]
    said = [t for answer in answers for t in (*_mrkdwn_texts(answer), answer.get("text", ""))]
    assert any("&lt;" in t for t in said), said  # quoted, escaped
    assert not any("<!channel>" in t or "<http://evil" in t for t in said), said
    assert_nothing_changed(product)


def test_a_reply_sms_with_mentions_and_links_is_posted_inert(product) -> None:
    """The other side is hostile too: a recipient's reply is text we did not write."""
    approve_first_card(product)
    batch_id = product.store.requests.get(1).batch_id
    reply = "<!channel> 退訂 <http://evil.example|點我> <@U_APPROVER>"
    product.sandbox.simulate_reply(batch_id, "+886912345678", reply)
    wait_for(lambda: product.store.replies.count() == 1, timeout=10, what="the reply to be stored")
    product.settle()
    posted = [m for m in product.standin.messages("C_REPLIES")]
    card = product.standin.messages("C_APPROVALS")[0]
    posted += product.standin.thread("C_APPROVALS", card["ts"])
    [inert] = [m for m in posted if m["channel"] == "C_REPLIES"]
    assert any(b.get("text", {}).get("type") == "plain_text" and b["text"]["text"] == reply for b in inert["blocks"])
    for message in posted:
        for text in (*_mrkdwn_texts(message), message["text"]):
            assert "<!channel>" not in text and "<http://evil" not in text and "<@U_APPROVER>" not in text


def _mrkdwn_texts(message: dict) -> list[str]:
    """Every mrkdwn text of a message (where Slack would turn `<!channel>` into a real ping)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node.get("text", ""))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks") or [])
    return found


# -- the compose modal ------------------------------------------------------------------------------------


def open_compose(product, user: SlackUser) -> dict:
    assert user.command("").status_code == 200
    views = wait_for(lambda: product.standin.open_views(user.user_id), timeout=5, what="the compose modal")
    return views[-1]


def compose(kind: str = "sms", recipients: str = "0912345678", message: str = "您好", subject: str | None = None,
            send_at: int | None = None, files: list[dict] | None = None) -> dict:
    """view.state.values of the compose modal, block ids and action ids as handlers/modals.py has them."""
    state = {
        "kind": payloads.radio_buttons("compose_kind", kind),
        "recipients": payloads.plain_text_input("value", recipients),
        "message": payloads.plain_text_input("value", message),
        "subject": payloads.plain_text_input("value", subject),
        "send_at": payloads.datetimepicker("value", send_at),
        "validity": payloads.number_input("value", None),
    }
    if files is not None:
        state["image"] = payloads.file_input("value", files)
    return state


def field_errors(product, values: dict) -> dict[str, str]:
    user = SlackUser(product, "U_REQUESTER")
    answer = user.submit(open_compose(product, user), values).json()
    assert answer["response_action"] == "errors", answer
    return answer["errors"]


def zip_bomb() -> bytes:
    """A small zip that would expand to 50 MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("zeros.bin", b"\x00" * (50 * 1024 * 1024))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "name", "mimetype", "filetype"),
    [
        (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "photo.png", "image/png", "png"),
        (None, "funny.gif", "image/gif", "gif"),  # the zip bomb, built once per run
    ],
    ids=["html-renamed-png", "zip-bomb-renamed-gif"],
)
def test_an_mms_image_that_is_not_an_image_is_refused_under_the_image_field(
    product, content: bytes | None, name: str, mimetype: str, filetype: str
) -> None:
    data = content if content is not None else zip_bomb()
    file_id = product.standin.add_file(data, name, mimetype, filetype)
    errors = field_errors(product, compose(kind="mms", subject="停水通知", message="明天停水",
                                           files=[product.standin.file_object(file_id)]))
    assert set(errors) == {"image"}
    assert "不是 JPG、PNG 圖片（依檔案內容判斷，不看副檔名）" in errors["image"]  # 2021 terms: no gif
    assert_nothing_changed(product)


@pytest.mark.parametrize(
    ("year", "words"),
    [(1999, "預約時間已經過去或太接近現在"), (2999, "預約時間太遠，最多可預約 365 天內")],
)
def test_a_scheduled_time_in_1999_or_2999_is_refused_under_the_time_field(product, year: int, words: str) -> None:
    epoch = int(datetime(year, 6, 1, 9, 0, tzinfo=TAIPEI).timestamp())
    errors = field_errors(product, compose(send_at=epoch))
    assert set(errors) == {"send_at"} and words in errors["send_at"]
    assert_nothing_changed(product)


def test_ten_thousand_and_one_numbers_in_the_modal_are_refused_under_the_recipients_field(product) -> None:
    errors = field_errors(product, compose(recipients="\n".join(numbers(10_001).split(","))))
    assert set(errors) == {"recipients"} and "一次最多 10,000 個收件人" in errors["recipients"]
    assert len(errors["recipients"]) <= 2000  # Slack's limit on an error text
    assert_nothing_changed(product)


# -- signatures and callbacks -------------------------------------------------------------------------------


def slash_body(product) -> str:
    return payloads.slash_command("send 0912345678 偽造", user_id="U_REQUESTER", channel_id="C_GENERAL",
                                  response_url=product.standin.new_response_url())


@pytest.mark.parametrize(
    ("secret", "age"),
    [("not-the-signing-secret", 0), (SIGNING_SECRET, 10 * 60)],
    ids=["forged", "stale-replayed"],
)
def test_forged_and_stale_slack_signatures_get_401_and_change_nothing(product, secret: str, age: int) -> None:
    response = post_signed(product.events_url, slash_body(product), secret, content_type=payloads.FORM_TYPE,
                           timestamp=int(time.time()) - age)
    assert response.status_code == 401
    assert_nothing_changed(product)


def test_an_unsigned_request_gets_401(product) -> None:
    response = requests.post(product.events_url, data=slash_body(product).encode(),
                             headers={"Content-Type": payloads.FORM_TYPE}, timeout=10)
    assert response.status_code == 401
    assert_nothing_changed(product)


def _report_count(product) -> int:
    return product.store.replies.count() + len(product.store.replies.unmatched_reports(limit=1000))


def test_a_callback_with_a_wrong_secret_is_404_and_stores_nothing(product) -> None:
    query = "BatchID=abc&RM=%2b886912345678&STATUS=100&RT=20261125101010&SM=&MR=1"
    base = product.callback_url.rsplit("/", 1)[0]
    for token in ("wrong-token-0123456789abcdef", CALLBACK_TOKEN[:-1], "", CALLBACK_TOKEN + "x"):
        assert requests.get(f"{base}/{token}?{query}", timeout=10).status_code == 404
    assert _report_count(product) == 0


@pytest.mark.parametrize("field", ["SM", "BatchID", "RM", "junk"])
def test_a_callback_with_10_kb_parameters_is_refused_and_stores_nothing(product, field: str) -> None:
    params = {"BatchID": "abc", "RM": "+886912345678", "STATUS": "999", "RT": "20261125101010", "SM": "hi",
              "MR": "1", field: "x" * 10_240}
    response = requests.get(product.callback_url, params=params, timeout=10)
    assert 400 <= response.status_code < 500
    response = requests.post(product.callback_url, data=params, timeout=10)
    assert 400 <= response.status_code < 500
    assert _report_count(product) == 0
    assert product.store.outbox.pending_count() == 0
