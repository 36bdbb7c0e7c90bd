"""SMS and MMS checks as a requester meets them in the form: every problem shown, by field, at once."""

from __future__ import annotations

import io
import zipfile

import pytest

from every8d.limits import DEFAULT_LIMITS, LIMITS_2017, Limits, limits_for_mms_terms
from every8d.mms import sniff_image_type, validate_mms, validate_sms

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 100
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 100
GIF = b"GIF89a" + b"\x00" * 100
HTML = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    return buffer.getvalue()


def fields(problems: list) -> list[str]:
    return [p.field for p in problems]


@pytest.mark.parametrize(("data", "kind"), [(JPEG, "jpg"), (PNG, "png"), (GIF, "gif"), (b"GIF87a...", "gif")])
def test_images_are_recognised_by_their_bytes(data: bytes, kind: str) -> None:
    assert sniff_image_type(data) == kind


@pytest.mark.parametrize("data", [HTML, zip_bytes(), b"", b"\x89PN", b"%PDF-1.7"])
def test_anything_else_is_not_an_image(data: bytes) -> None:
    assert sniff_image_type(data) is None


def test_a_good_sms_has_no_problems() -> None:
    assert validate_sms("各位同仁好：\r\n明天上午九點開會。\t謝謝") == []


@pytest.mark.parametrize("message", ["", "   ", "\n\t　"])
def test_empty_sms_is_refused(message: str) -> None:
    problems = validate_sms(message)
    assert fields(problems) == ["message"]
    assert "請輸入簡訊內容" in problems[0].zh


def test_unreasonably_long_sms_is_refused() -> None:
    assert validate_sms("好" * 10_000) == []
    problems = validate_sms("好" * 10_001)
    assert fields(problems) == ["message"]
    assert "10,001" in problems[0].zh and "10,000" in problems[0].en


def test_control_characters_are_named() -> None:
    problems = validate_sms("您好\x07明天\x1b見", subject="備註\x00")
    assert fields(problems) == ["message", "subject"]
    assert "U+0007" in problems[0].zh and "U+001B" in problems[0].en
    assert "U+0000" in problems[1].zh


def test_a_good_mms_has_no_problems() -> None:
    assert validate_mms("週年慶優惠", "全館八折，歡迎光臨！", PNG) == []
    assert validate_mms("Anniversary sale", "20% off", JPEG) == []


def test_every_mms_problem_is_shown_at_once() -> None:
    problems = validate_mms("", "", None)
    assert fields(problems) == ["subject", "message", "image"]


def test_chinese_subject_is_limited_to_15_characters() -> None:
    assert validate_mms("週年慶全館八折優惠只到本週日止", "內容", PNG) == []
    problems = validate_mms("週年慶全館八折優惠只到本週日止！", "內容", PNG)
    assert fields(problems) == ["subject"]
    assert "16" in problems[0].zh and "15" in problems[0].zh


def test_one_chinese_character_makes_the_15_limit_apply() -> None:
    subject = "Anniversary sale 週"
    assert fields(validate_mms(subject, "內容", PNG)) == ["subject"]
    assert validate_mms(subject.replace("週", "W"), "內容", PNG) == []


def test_ascii_subject_is_limited_to_95_characters_under_the_2017_terms() -> None:
    assert validate_mms("A" * 95, "text", PNG, LIMITS_2017) == []
    problems = validate_mms("A" * 96, "text", PNG, LIMITS_2017)
    assert fields(problems) == ["subject"]
    assert "96" in problems[0].en and "95" in problems[0].en


def test_mms_text_is_limited_to_4000_characters() -> None:
    assert validate_mms("通知", "字" * 4000, PNG) == []
    problems = validate_mms("通知", "字" * 4001, PNG)
    assert fields(problems) == ["message"]
    assert "4,001" in problems[0].zh


def test_html_renamed_png_is_refused_judged_by_content() -> None:
    problems = validate_mms("通知", "內容", HTML, LIMITS_2017)
    assert fields(problems) == ["image"]
    assert "依檔案內容判斷" in problems[0].zh and "JPG、PNG、GIF" in problems[0].zh
    assert "不是 JPG、PNG 圖片（依檔案內容判斷" in validate_mms("通知", "內容", HTML)[0].zh


def test_gif_refused_when_the_account_allows_only_jpg_and_png() -> None:
    limits = Limits(mms_image_types=("jpg", "png"), mms_total_max_bytes=300 * 1024)
    problems = validate_mms("通知", "內容", GIF, limits)
    assert fields(problems) == ["image"]
    assert "JPG、PNG" in problems[0].zh
    assert validate_mms("通知", "內容", JPEG, limits) == []


def test_image_plus_text_at_most_50_kb_with_sizes_in_the_message() -> None:
    """2017 terms; a KB is 1000 bytes (the stricter reading: neither document says)."""
    text = "您好"  # 6 bytes in UTF-8
    image = PNG + b"\x00" * (50 * 1000 - len(PNG) - 6)
    assert validate_mms("通知", text, image, LIMITS_2017) == []
    problems = validate_mms("通知", text, image + b"\x00", LIMITS_2017)
    assert fields(problems) == ["image"]
    assert "50.1 KB" in problems[0].zh and "上限 50 KB" in problems[0].zh
    assert "50.1 KB" in problems[0].en and "50 KB limit" in problems[0].en


def test_size_limit_follows_configuration() -> None:
    big = PNG + b"\x00" * (200 * 1024)
    assert fields(validate_mms("通知", "內容", big, LIMITS_2017)) == ["image"]
    assert validate_mms("通知", "內容", big, Limits(mms_total_max_bytes=300 * 1024)) == []


# --- the 2021 terms (the default): 300 KB, jpg/png only, subject 15 with Chinese / 39 in ASCII --------------


def test_the_default_terms_are_the_2021_ones_and_the_setting_picks_either() -> None:
    assert limits_for_mms_terms("2021") == DEFAULT_LIMITS and DEFAULT_LIMITS.mms_terms == "2021"
    assert limits_for_mms_terms("2017") == LIMITS_2017
    with pytest.raises(ValueError, match="2017, 2021"):
        limits_for_mms_terms("2019")


def test_2021_ascii_subject_is_limited_to_39_characters() -> None:
    assert validate_mms("A" * 39, "text", PNG) == []
    problems = validate_mms("A" * 40, "text", PNG)
    assert fields(problems) == ["subject"]
    assert "40" in problems[0].en and "at most 39" in problems[0].en and "最多 39" in problems[0].zh


def test_2021_subject_with_chinese_is_still_limited_to_15() -> None:
    assert validate_mms("週年慶全館八折優惠只到本週日止", "內容", PNG) == []
    assert fields(validate_mms("週年慶全館八折優惠只到本週日止！", "內容", PNG)) == ["subject"]
    # One non-ASCII character anywhere makes the 15 limit apply, even to a 16-character mostly-ASCII subject.
    assert fields(validate_mms("Sale 2026 週年慶 go", "內容", PNG)) == ["subject"]


def test_2021_refuses_gif_with_a_clear_word_and_2017_accepts_it() -> None:
    problems = validate_mms("通知", "內容", GIF)
    assert fields(problems) == ["image"]
    assert "這是 GIF 圖片" in problems[0].zh and "只接受 JPG、PNG" in problems[0].zh and "2021" in problems[0].zh
    assert "This is a GIF image" in problems[0].en and "accept only JPG, PNG" in problems[0].en
    assert validate_mms("通知", "內容", GIF, LIMITS_2017) == []
    assert validate_mms("通知", "內容", JPEG) == []


def test_2021_image_plus_text_at_most_300_kb_of_1000_bytes() -> None:
    text = "您好"  # 6 bytes in UTF-8: the text counts as its UTF-8 bytes
    image = JPEG + b"\x00" * (300_000 - len(JPEG) - 6)
    assert validate_mms("通知", text, image) == []
    problems = validate_mms("通知", text, image + b"\x00")
    assert fields(problems) == ["image"]
    assert "300.1 KB" in problems[0].zh and "上限 300 KB" in problems[0].zh
    assert "300 KB limit" in problems[0].en
    # The same MMS is far over the 2017 limit.
    assert "上限 50 KB" in validate_mms("通知", text, image, LIMITS_2017)[0].zh
