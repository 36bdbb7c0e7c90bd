"""SMS and MMS checks as a requester meets them in the form: every problem shown, by field, at once."""

from __future__ import annotations

import io
import zipfile

import pytest

from every8d.limits import Limits
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


def test_ascii_subject_is_limited_to_95_characters() -> None:
    assert validate_mms("A" * 95, "text", PNG) == []
    problems = validate_mms("A" * 96, "text", PNG)
    assert fields(problems) == ["subject"]
    assert "96" in problems[0].en and "95" in problems[0].en


def test_mms_text_is_limited_to_4000_characters() -> None:
    assert validate_mms("通知", "字" * 4000, PNG) == []
    problems = validate_mms("通知", "字" * 4001, PNG)
    assert fields(problems) == ["message"]
    assert "4,001" in problems[0].zh


def test_html_renamed_png_is_refused_judged_by_content() -> None:
    problems = validate_mms("通知", "內容", HTML)
    assert fields(problems) == ["image"]
    assert "依檔案內容判斷" in problems[0].zh and "JPG、PNG、GIF" in problems[0].zh


def test_gif_refused_when_the_account_allows_only_jpg_and_png() -> None:
    limits = Limits(mms_image_types=("jpg", "png"), mms_total_max_bytes=300 * 1024)
    problems = validate_mms("通知", "內容", GIF, limits)
    assert fields(problems) == ["image"]
    assert "JPG、PNG" in problems[0].zh
    assert validate_mms("通知", "內容", JPEG, limits) == []


def test_image_plus_text_at_most_50_kb_with_sizes_in_the_message() -> None:
    text = "您好"  # 6 bytes in UTF-8
    image = PNG + b"\x00" * (50 * 1024 - len(PNG) - 6)
    assert validate_mms("通知", text, image) == []
    problems = validate_mms("通知", text, image + b"\x00")
    assert fields(problems) == ["image"]
    assert "50.1 KB" in problems[0].zh and "上限 50 KB" in problems[0].zh
    assert "50.1 KB" in problems[0].en and "50 KB limit" in problems[0].en


def test_size_limit_follows_configuration() -> None:
    big = PNG + b"\x00" * (200 * 1024)
    assert fields(validate_mms("通知", "內容", big)) == ["image"]
    assert validate_mms("通知", "內容", big, Limits(mms_total_max_bytes=300 * 1024)) == []
