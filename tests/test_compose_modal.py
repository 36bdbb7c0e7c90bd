"""The compose modal: `/sms` opens it, problems come back inline under their fields, a valid draft gets
a cost preview, and submitting the preview requests approval. MMS takes an image from a Slack upload."""

from __future__ import annotations

import base64
import struct
import time
import zlib

from slackstandin import payloads as p
from tests.harness import SlackUser, all_text, wait_until


def png_bytes(size: int = 64) -> bytes:
    """A real (tiny) PNG image."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def open_compose(product, user: SlackUser) -> dict:
    assert user.command("").status_code == 200
    [view] = wait_until(lambda: product.standin.open_views(user.user_id))
    assert view["callback_id"] == "sms_compose"
    return view


def values(recipients="0912345678", message="您好", subject=None, kind="sms", send_at=None, validity=None,
           files=None) -> dict:
    state = {
        "kind": p.radio_buttons("compose_kind", kind),
        "recipients": p.plain_text_input("value", recipients),
        "message": p.plain_text_input("value", message),
        "subject": p.plain_text_input("value", subject),
        "send_at": p.datetimepicker("value", send_at),
        "validity": p.number_input("value", validity),
    }
    if files is not None:
        state["image"] = p.file_input("value", files)
    return state


def test_slash_sms_opens_the_compose_modal_with_every_field(product):
    view = open_compose(product, SlackUser(product, "U_REQUESTER"))
    blocks = {b.get("block_id") for b in view["blocks"]}
    assert {"kind", "recipients", "message", "subject", "send_at", "validity"} <= blocks
    assert "image" not in blocks  # SMS first; MMS adds the upload


def test_problems_are_shown_inline_under_each_field_and_nothing_is_stored(product):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    past = int(time.time()) - 3600
    response = user.submit(view, values(recipients="02-2345-6789, 0912345678", message="  ", send_at=past))
    answer = response.json()
    assert answer["response_action"] == "errors"
    errors = answer["errors"]
    assert "02-2345-6789" in errors["recipients"]
    assert "message" in errors
    assert "過去" in errors["send_at"]
    assert product.store.requests.get(1) is None


def test_valid_draft_shows_the_exact_cost_then_requests_approval(product):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    message = "週年慶優惠" * 15  # 75 characters: 2 points per Taiwan number
    response = user.submit(view, values(recipients="0912345678\n0922-333-444\n0912345678", message=message))
    answer = response.json()
    assert answer["response_action"] == "push"
    preview = answer["view"]
    text = all_text(preview)
    assert preview["callback_id"] == "sms_preview"
    assert "4.0 點" in text  # 2 recipients (duplicate removed) x 2 points
    assert "75 字" in text and "重複" in text

    confirm = user.submit(preview, {})
    assert confirm.json()["response_action"] == "update"
    product.settle()
    request = product.store.requests.get(1)
    assert request.state == "pending_approval" and request.points == 4.0 and request.recipient_count == 2
    [card] = product.standin.messages("C_APPROVALS")
    assert "4.0 點" in all_text(card)


def test_scheduled_send_is_sent_with_its_time_and_can_be_cancelled_with_refund(product):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    later = int(time.time()) + 2 * 3600
    preview = user.submit(view, values(send_at=later)).json()["view"]
    assert "預約" in all_text(preview) or "（台北時間）" in all_text(preview)
    user.submit(preview, {})
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    [send] = [c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]
    assert len(send.params["ST"]) == 14  # yyyyMMddHHmmss

    listing = user.command("scheduled").json()
    assert "#1" in all_text(listing)
    assert any(e.get("action_id") == "cancel_scheduled" for b in listing["blocks"] for e in b.get("elements", []))
    credit_before = product.sandbox.credit
    user.click("cancel_scheduled", "1")
    product.settle()
    assert product.store.requests.get(1).state == "cancelled"
    assert product.sandbox.credit == credit_before + 1.0
    [card] = product.standin.messages("C_APPROVALS")
    thread = product.standin.thread("C_APPROVALS", card["ts"])
    assert any("退回" in all_text(m) for m in thread)


def test_mms_with_an_uploaded_image_is_sent_with_the_image(product):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    user._post(p.block_actions(user_id=user.user_id, action_id="compose_kind", value="mms", view={
        **view, "state": {"values": {"kind": p.radio_buttons("compose_kind", "mms")}}}, action_type="radio_buttons"))
    view = wait_until(lambda: [v for v in product.standin.open_views(user.user_id)
                               if "image" in {b.get("block_id") for b in v["blocks"]}])[0]
    assert "image" in {b.get("block_id") for b in view["blocks"]}

    image = png_bytes()
    file_id = product.standin.add_file(image, "sale.png", "image/png", "png")
    answer = user.submit(view, values(kind="mms", subject="週年慶", message="全館八折",
                                      files=[product.standin.file_object(file_id)])).json()
    assert answer["response_action"] == "push", answer
    assert "3.0 點" in all_text(answer["view"])  # 2021 terms (the default): 3 points up to 50 KB
    user.submit(answer["view"], {})
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    [send] = [c for c in product.sandbox.calls if c.endpoint.endswith("sendMMS.ashx")]
    assert send.params["TYPE"] == "png"
    assert base64.b64decode(send.params["ATTACHMENT"]) == image
    assert send.params["SB"] == "週年慶"


def test_mms_image_that_is_html_renamed_png_is_refused_inline(product):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    file_id = product.standin.add_file(b"<!DOCTYPE html><html>sign in</html>", "photo.png", "image/png", "png")
    answer = user.submit(view, values(kind="mms", subject="test", message="hi",
                                      files=[product.standin.file_object(file_id)])).json()
    assert answer["response_action"] == "errors"
    assert "image" in answer["errors"]
    assert product.store.requests.get(1) is None


def test_mms_refuses_international_numbers_and_long_chinese_subject(product):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    file_id = product.standin.add_file(png_bytes(), "a.png", "image/png", "png")
    answer = user.submit(view, values(kind="mms", recipients="+1 202 555 0100", subject="這是一個超過十五個字的中文主旨喔喔喔",
                                      message="hi", files=[product.standin.file_object(file_id)])).json()
    assert answer["response_action"] == "errors"
    assert "recipients" in answer["errors"] and "subject" in answer["errors"]


def test_a_redraw_that_meets_a_hash_conflict_is_retried_quietly(product, caplog):
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    product.standin.faults.fail("views.update", "hash_conflict")  # another redraw got there first
    response = user._post(p.block_actions(user_id=user.user_id, action_id="compose_kind", value="mms", view={
        **view, "state": {"values": {"kind": p.radio_buttons("compose_kind", "mms")}}}, action_type="radio_buttons"))
    assert response.status_code == 200
    redrawn = wait_until(lambda: [v for v in product.standin.open_views(user.user_id)
                                  if "image" in {b.get("block_id") for b in v["blocks"]}])
    assert redrawn, "the window was not redrawn after the conflict"
    updates = product.standin.calls_to("views.update")
    assert [c.status for c in updates] == [200, 200] and "hash" not in updates[-1].params
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
