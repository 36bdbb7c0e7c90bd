"""Recipients as people paste them: every common shape accepted, every bad entry refused by name."""

from __future__ import annotations

import random
import time

import pytest

from every8d.limits import Limits
from every8d.phones import (
    Recipient,
    Rejected,
    display,
    mask,
    parse_phone,
    parse_recipients,
    split_entries,
)

TAIWAN_SHAPES = [
    "0912-345-678",
    "0912 345 678",
    "0912345678",
    "+886912345678",
    "886912345678",
    "+886 912 345 678",
    "(0912)345-678",
    "０９１２３４５６７８",
    "０９１２－３４５－６７８",
    "+886-0912-345-678",
]


@pytest.mark.parametrize("entry", TAIWAN_SHAPES)
def test_every_common_taiwan_shape_is_the_same_mobile(entry: str) -> None:
    result = parse_phone(entry)
    assert isinstance(result, Recipient)
    assert result.e164 == "+886912345678"
    assert result.for_api == "+886912345678"
    assert result.region == "TW"
    assert result.is_taiwan
    assert result.national == "0912-345-678"
    assert result.original == entry


@pytest.mark.parametrize(
    ("entry", "e164", "region", "national"),
    [
        ("+1 202 555 0100", "+12025550100", "US", "+1 202-555-0100"),
        ("+81 90-1234-5678", "+819012345678", "JP", "+81 90-1234-5678"),
        ("0081 90 1234 5678", "+819012345678", "JP", "+81 90-1234-5678"),
        ("00 1 202 555 0100", "+12025550100", "US", "+1 202-555-0100"),
        ("002 81 90 1234 5678", "+819012345678", "JP", "+81 90-1234-5678"),
        ("+852 9123 4567", "+85291234567", "HK", "+852 9123 4567"),
    ],
)
def test_international_numbers_in_e164_and_00_form(entry: str, e164: str, region: str, national: str) -> None:
    result = parse_phone(entry)
    assert isinstance(result, Recipient)
    assert (result.e164, result.region, result.national) == (e164, region, national)
    assert not result.is_taiwan
    assert result.for_api == e164


@pytest.mark.parametrize(
    ("entry", "zh_words", "en_words"),
    [
        ("02-2345-6789", "是市話，無法接收簡訊", "is a landline and cannot receive SMS"),
        ("+886 2 2345 6789", "是市話", "landline"),
        ("+44 20 7946 0958", "是市話", "landline"),
        ("113", "特碼", "short code"),
        ("1922", "特碼", "short code"),
        ("0912345678#123", "分機", "extension"),
        ("0912345678 ext 123", "分機", "extension"),
        ("0912345678 ext. 9", "分機", "extension"),
        ("0912345678x1", "分機", "extension"),
        ("0912-abc-678", "含有文字", "letters"),
        ("王小明", "含有文字", "letters"),
        ("0912@345678", "符號 @", "symbols"),
        ("091234", "太短", "too short"),
        ("09123456789012", "太長", "too long"),
        ("0990-123-456", "不是手機號碼", "not a mobile number"),
        ("0800-000-123", "不是手機號碼", "not a mobile number"),
        ("+999 123456", "國碼無法辨識", "country code"),
        ("+44 7700 900123", "不是有效的電話號碼", "not a valid phone number"),
        ("+", "不是電話號碼", "not a phone number"),
    ],
)
def test_each_bad_entry_is_refused_naming_it_and_the_reason(entry: str, zh_words: str, en_words: str) -> None:
    result = parse_phone(entry)
    assert isinstance(result, Rejected)
    assert result.entry == entry
    assert f"「{entry}」" in result.zh and zh_words in result.zh
    assert f'"{entry}"' in result.en and en_words in result.en


def test_landline_message_reads_like_the_house_style() -> None:
    result = parse_phone("02-2345-6789")
    assert isinstance(result, Rejected)
    assert result.zh == "「02-2345-6789」是市話，無法接收簡訊。"
    assert result.en == '"02-2345-6789" is a landline and cannot receive SMS.'


def test_a_very_long_junk_entry_is_shortened_in_the_message() -> None:
    entry = "這不是號碼" * 20
    result = parse_phone(entry)
    assert isinstance(result, Rejected)
    assert result.entry == entry
    assert entry not in result.zh and "…" in result.zh


def test_us_numbers_count_as_possibly_mobile() -> None:
    assert isinstance(parse_phone("+1 650 253 0000"), Recipient)


def test_split_keeps_spaced_numbers_whole_and_splits_everything_else() -> None:
    text = "0912 345 678, 0922-333-444、+1 202 555 0100；0933111222\n0944111222 0955111222 ， 0912345678 ext 12;;"
    assert split_entries(text) == [
        "0912 345 678",
        "0922-333-444",
        "+1 202 555 0100",
        "0933111222",
        "0944111222",
        "0955111222",
        "0912345678 ext 12",
    ]


def test_split_on_full_width_comma_semicolon_and_ideographic_space() -> None:
    assert split_entries("0912345678，0922333444；0933111222\u30000944111222") == [
        "0912345678",
        "0922333444",
        "0933111222",
        "0944111222",
    ]


def test_parse_recipients_keeps_order_and_reports_duplicates_however_written() -> None:
    result = parse_recipients(
        "0922-333-444, 0912345678, +886 912 345 678, ０９１２３４５６７８, +1 202 555 0100"
    )
    assert [r.e164 for r in result.recipients] == ["+886922333444", "+886912345678", "+12025550100"]
    assert result.duplicates == ["+886 912 345 678", "０９１２３４５６７８"]
    assert result.taiwan_count == 2 and result.international_count == 1
    assert result.problems() == []


def test_parse_recipients_accepts_entries_already_split() -> None:
    result = parse_recipients(["0912 345 678", "  ", "", "0922333444"])
    assert [r.national for r in result.recipients] == ["0912-345-678", "0922-333-444"]


def test_international_refused_when_not_allowed_with_a_reason() -> None:
    result = parse_recipients("0912345678, +1 202 555 0100", allow_international=False)
    assert [r.e164 for r in result.recipients] == ["+886912345678"]
    assert [r.entry for r in result.rejected] == ["+1 202 555 0100"]
    assert "國際號碼" in result.rejected[0].zh and "MMS" in result.rejected[0].en
    assert len(result.problems()) == 1


def test_one_problem_lists_every_rejected_entry_capped_with_how_many_more() -> None:
    bad = ["02-2345-6789", "113", "0912345678#1", "abc", "091234", "0990123456", "0800000123", "+9991234"]
    result = parse_recipients(", ".join(["0912345678", *bad]))
    problems = result.problems()
    assert len(problems) == 1
    problem = problems[0]
    assert problem.field == "recipients"
    assert "8 筆" in problem.zh and "8 entries" in problem.en
    for entry in bad[:5]:
        assert f"「{entry}」" in problem.zh
        assert f'"{entry}"' in problem.en
    assert "0800000123" not in problem.zh
    assert problem.zh.endswith("…還有 3 筆")
    assert problem.en.endswith("…and 3 more")


def test_an_empty_field_is_a_problem() -> None:
    problems = parse_recipients(" ,\n ").problems()
    assert [p.field for p in problems] == ["recipients"]
    assert "至少" in problems[0].zh


def test_too_many_recipients_is_a_problem_not_a_crash() -> None:
    numbers = [f"0912{n:06d}" for n in range(30)]
    result = parse_recipients(numbers, limits=Limits(max_recipients_per_request=10))
    assert len(result.recipients) == 11
    assert result.unchecked == 19
    problems = result.problems()
    assert len(problems) == 1
    assert "10" in problems[0].zh and "30" in problems[0].zh
    assert "At most 10 recipients" in problems[0].en


def test_exactly_at_the_limit_is_fine() -> None:
    numbers = [f"0912{n:06d}" for n in range(10)]
    result = parse_recipients(numbers, limits=Limits(max_recipients_per_request=10))
    assert len(result.recipients) == 10 and result.problems() == []


def test_ten_thousand_numbers_in_one_field_parse_quickly() -> None:
    rng = random.Random(8)
    numbers = [f"09{rng.randrange(90):02d}{rng.randrange(10**6):06d}" for _ in range(10_000)]
    spaced = [f"{n[:4]} {n[4:7]} {n[7:]}" for n in numbers[:5000]]
    text = "\n".join(spaced + numbers[5000:])
    parse_phone.cache_clear()
    started = time.perf_counter()
    result = parse_recipients(text)
    elapsed = time.perf_counter() - started
    accounted = len(result.recipients) + len(result.rejected) + len(result.duplicates)
    assert accounted == 10_000
    assert len(result.recipients) + len(result.duplicates) == 10_000
    assert elapsed < 5


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+886912345678", "0912-***-678"),
        ("+12025550100", "+1 202-***-0100"),
        ("+819012345678", "+81 90-***-5678"),
        ("+85291234567", "+852 9-***-4567"),
    ],
)
def test_mask_hides_the_middle(e164: str, masked: str) -> None:
    assert mask(e164) == masked


def test_mask_never_shows_an_unreadable_number_whole() -> None:
    assert mask("12345678901") == "123-***-01"
    assert mask("abc") == "***"


def test_display_shows_the_full_number() -> None:
    assert display("+886912345678") == "0912-345-678"
    assert display("+12025550100") == "+1 202-555-0100"
    assert display("not a number") == "not a number"
