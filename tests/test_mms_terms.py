"""EVERY8D_MMS_TERMS end to end: the compose modal (signed requests through Bolt), its preview, the price
recorded on the request and the sandbox's charge all follow the account's MMS terms, 2021 or 2017.

2021 (the default): image plus text up to 300 KB, jpg/png only, subject 15 (with Chinese) / 39 (ASCII),
3 points up to 50 KB and 5 above. 2017: 50 KB, gif too, subject 15 / 95, 4 points flat. 1 KB = 1000 bytes.
"""

from __future__ import annotations

import pytest

from bot.config import Config, ConfigError
from every8d.limits import DEFAULT_LIMITS, LIMITS_2017
from slackstandin import payloads as p
from tests.harness import SlackUser, all_text, wait_until
from tests.test_compose_modal import open_compose, values

JPEG_MAGIC = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
GIF_MAGIC = b"GIF89a"
TEXT = "全館八折"  # 12 bytes of UTF-8


def image(magic: bytes, total: int, text: str = TEXT) -> bytes:
    """An image whose bytes plus `text`'s UTF-8 bytes come to exactly `total` (what the terms measure)."""
    return magic + b"\x00" * (total - len(magic) - len(text.encode("utf-8")))


def mms_view(product, user: SlackUser) -> dict:
    """The compose modal switched to MMS (the radio button redraws it with the image upload)."""
    view = open_compose(product, user)
    user._post(p.block_actions(user_id=user.user_id, action_id="compose_kind", value="mms", view={
        **view, "state": {"values": {"kind": p.radio_buttons("compose_kind", "mms")}}}, action_type="radio_buttons"))
    [redrawn] = wait_until(lambda: [v for v in product.standin.open_views(user.user_id)
                                    if "image" in {b.get("block_id") for b in v["blocks"]}])
    return redrawn


def submit_mms(product, user: SlackUser, view: dict, data: bytes, *, name: str = "sale.jpg", filetype: str = "jpg",
               subject: str = "週年慶", recipients: str = "0912345678") -> dict:
    file_id = product.standin.add_file(data, name, f"image/{filetype}", filetype)
    return user.submit(view, values(kind="mms", recipients=recipients, subject=subject, message=TEXT,
                                    files=[product.standin.file_object(file_id)])).json()


def block(view: dict, block_id: str) -> dict:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def approve_and_send(product) -> None:
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()


def mms_sends(product) -> list:
    return [c for c in product.sandbox.calls if c.endpoint.endswith("sendMMS.ashx")]


# ----- 2021 (the default) ----------------------------------------------------------------------------------


def test_the_2021_form_accepts_jpg_and_png_only_and_states_the_2021_limits(product):
    view = mms_view(product, SlackUser(product, "U_REQUESTER"))

    upload = block(view, "image")
    assert upload["element"]["filetypes"] == ["jpg", "jpeg", "png"]
    assert "300 KB" in upload["hint"]["text"] and "50 KB 以下每則 3 點，以上 5 點" in upload["hint"]["text"]
    assert "純英數最多 39 字" in block(view, "subject")["hint"]["text"]


def test_a_2021_mms_over_50_kb_is_previewed_recorded_and_charged_at_5_points(product):
    user = SlackUser(product, "U_REQUESTER")
    data = image(JPEG_MAGIC, 120_000)

    answer = submit_mms(product, user, mms_view(product, user), data, recipients="0912345678, 0922333444")

    assert answer["response_action"] == "push", answer
    text = all_text(answer["view"])
    assert "圖片加文字 120.0 KB（上限 300 KB）· 每則 5 點（2021 年版條件）" in text
    assert "10.0 點" in text and "*Cost* 10.0 points" in text
    user.submit(answer["view"], {})
    approve_and_send(product)
    assert product.store.requests.get(1).points == 10.0
    [send] = mms_sends(product)
    assert send.params["TYPE"] == "jpg"
    assert product.sandbox.credit == 1000.0 - 10.0  # the sandbox charged what the preview said


def test_a_2021_mms_of_exactly_50_kb_costs_3_points_and_one_byte_more_costs_5(make_product):
    product = make_product()
    user = SlackUser(product, "U_REQUESTER")

    at_bound = submit_mms(product, user, mms_view(product, user), image(JPEG_MAGIC, 50_000))
    over = submit_mms(product, user, mms_view(product, user), image(JPEG_MAGIC, 50_001))

    assert "每則 3 點" in all_text(at_bound["view"]) and "3.0 點" in all_text(at_bound["view"])
    assert "每則 5 點" in all_text(over["view"]) and "5.0 點" in all_text(over["view"])


def test_a_2021_gif_is_refused_under_the_image_field_with_a_clear_word(product):
    user = SlackUser(product, "U_REQUESTER")

    answer = submit_mms(product, user, mms_view(product, user), image(GIF_MAGIC, 20_000), name="a.gif",
                        filetype="gif")

    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"image"}
    assert "這是 GIF 圖片" in answer["errors"]["image"] and "只接受 JPG、PNG" in answer["errors"]["image"]
    assert product.store.requests.get(1) is None and mms_sends(product) == []


def test_2021_limits_300_kb_and_a_39_character_ascii_subject(product):
    user = SlackUser(product, "U_REQUESTER")

    answer = submit_mms(product, user, mms_view(product, user), image(JPEG_MAGIC, 300_001), subject="A" * 40)

    assert answer["response_action"] == "errors"
    assert "300.1 KB" in answer["errors"]["image"] and "上限 300 KB" in answer["errors"]["image"]
    assert "40" in answer["errors"]["subject"] and "最多 39" in answer["errors"]["subject"]
    assert product.store.requests.get(1) is None


# ----- 2017 ------------------------------------------------------------------------------------------------


def test_the_2017_form_also_takes_gif_and_states_the_2017_limits(make_product):
    product = make_product(mms_terms="2017")
    view = mms_view(product, SlackUser(product, "U_REQUESTER"))

    upload = block(view, "image")
    assert upload["element"]["filetypes"] == ["jpg", "jpeg", "png", "gif"]
    assert "jpg、png 或 gif" in upload["hint"]["text"] and "50 KB" in upload["hint"]["text"]
    assert "每則 4 點" in upload["hint"]["text"]
    assert "純英數最多 95 字" in block(view, "subject")["hint"]["text"]


def test_a_2017_gif_is_sent_at_4_points_and_a_long_ascii_subject_is_fine(make_product):
    product = make_product(mms_terms="2017")
    user = SlackUser(product, "U_REQUESTER")

    answer = submit_mms(product, user, mms_view(product, user), image(GIF_MAGIC, 45_000), name="a.gif",
                        filetype="gif", subject="Anniversary sale: everything 20 percent off")

    assert answer["response_action"] == "push", answer
    assert "每則 4 點（2017 年版條件）" in all_text(answer["view"]) and "4.0 點" in all_text(answer["view"])
    user.submit(answer["view"], {})
    approve_and_send(product)
    [send] = mms_sends(product)
    assert send.params["TYPE"] == "gif"
    assert product.sandbox.credit == 1000.0 - 4.0


def test_the_2017_limit_is_50_kb(make_product):
    product = make_product(mms_terms="2017")
    user = SlackUser(product, "U_REQUESTER")

    answer = submit_mms(product, user, mms_view(product, user), image(JPEG_MAGIC, 120_000))

    assert answer["response_action"] == "errors"
    assert "共 120 KB" in answer["errors"]["image"] and "上限 50 KB" in answer["errors"]["image"]


# ----- the setting -----------------------------------------------------------------------------------------


def test_the_setting_defaults_to_2021_and_a_bad_value_is_named():
    assert Config.from_env({}, dotenv=None).limits == DEFAULT_LIMITS
    assert Config.from_env({"EVERY8D_MMS_TERMS": "2017"}, dotenv=None).limits == LIMITS_2017
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"EVERY8D_MMS_TERMS": "2019"}, dotenv=None)
    assert any("EVERY8D_MMS_TERMS='2019'" in problem and "2021" in problem for problem in caught.value.problems)
