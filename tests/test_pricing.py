"""The cost preview approvers decide on: EVERY8D's table at every edge, x3 abroad, estimates labelled."""

from __future__ import annotations

import pytest

from every8d.limits import LIMITS_2017, Limits, limits_for_mms_terms
from every8d.phones import parse_recipients
from every8d.pricing import Quote, count_chars, quote_mms, quote_sms, sms_parts_and_points

CHINESE = "親愛的會員您好本週六門市盤點暫停營業一天造成不便敬請見諒謝謝"


def chinese(n: int) -> str:
    """n characters of real Chinese text."""
    return (CHINESE * (n // len(CHINESE) + 1))[:n]


def test_chinese_characters_count_one_each_and_crlf_counts_once() -> None:
    assert count_chars("您好，明天見") == 6
    assert count_chars("第一行\r\n第二行") == count_chars("第一行\n第二行") == 7


@pytest.mark.parametrize(
    ("chars", "points"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4), (268, 4), (269, 5), (333, 5)],
)
def test_taiwan_table_edges_in_chinese(chars: int, points: int) -> None:
    assert sms_parts_and_points(chinese(chars), international=False) == (1, float(points), False)


@pytest.mark.parametrize(
    ("chars", "parts", "points"),
    [(334, 2, 6.0), (666, 2, 10.0), (667, 3, 11.0), (1000, 4, 16.0)],
)
def test_past_333_split_into_333_character_parts_and_labelled_estimate(
    chars: int, parts: int, points: float
) -> None:
    assert sms_parts_and_points(chinese(chars), international=False) == (parts, points, True)


@pytest.mark.parametrize(
    ("chars", "parts", "points", "estimate"),
    [(1, 1, 3.0, False), (70, 1, 3.0, False), (71, 2, 6.0, True), (140, 2, 6.0, True), (333, 5, 15.0, True)],
)
def test_international_is_split_by_70_and_costs_three_times(
    chars: int, parts: int, points: float, estimate: bool
) -> None:
    assert sms_parts_and_points(chinese(chars), international=True) == (parts, points, estimate)


def test_empty_text_costs_nothing() -> None:
    assert sms_parts_and_points("", international=False) == (0, 0.0, False)


def test_quote_prices_taiwan_and_international_apart() -> None:
    recipients = parse_recipients("0912345678, 0922333444, +1 202 555 0100")
    quote = quote_sms(chinese(100), recipients)
    assert quote == Quote(
        kind="sms",
        chars=100,
        parts=1,
        taiwan_count=2,
        international_count=1,
        points_per_taiwan=2.0,
        points_per_international=6.0,
        points=10.0,
        estimate=True,
        international_parts=2,
    )


def test_quote_of_short_text_to_taiwan_only_is_exact() -> None:
    recipients = parse_recipients("0912345678, 0922333444").recipients
    quote = quote_sms("明天下午三點開會，請準時出席。", recipients)
    assert (quote.points, quote.parts, quote.estimate) == (2.0, 1, False)


def test_quote_over_333_is_an_estimate() -> None:
    quote = quote_sms(chinese(334), parse_recipients("0912345678"))
    assert quote.estimate and quote.points == 6.0 and quote.parts == 2


def test_credit_after_and_shortfall() -> None:
    quote = quote_sms(chinese(71), parse_recipients("0912345678, 0922333444, 0933111222"))
    assert quote.points == 6.0
    assert quote.after(10.0) == 4.0
    assert quote.short_of(10.0) == 0.0
    assert quote.after(4.5) == -1.5
    assert quote.short_of(4.5) == 1.5


def test_mms_costs_four_points_each_under_the_2017_terms() -> None:
    recipients = parse_recipients("0912345678, 0922333444", allow_international=False)
    quote = quote_mms(recipients, LIMITS_2017, message="週年慶優惠")
    assert (quote.kind, quote.points, quote.points_per_taiwan, quote.chars, quote.estimate) == (
        "mms",
        8.0,
        4.0,
        5,
        False,
    )


def test_2017_mms_price_is_flat_whatever_the_size() -> None:
    one = parse_recipients("0912345678", allow_international=False)
    assert quote_mms(one, LIMITS_2017, message="hi", image=b"x" * 49_000).points == 4.0
    assert quote_mms(one, LIMITS_2017, message="hi", image=b"x" * 200_000).points == 4.0


@pytest.mark.parametrize(
    ("image_bytes", "points"),
    [(1_000, 3.0), (50_000 - 6, 3.0), (50_000 - 5, 5.0), (120_000, 5.0), (300_000 - 6, 5.0)],
    ids=["small", "exactly-50KB", "one-byte-over-50KB", "120KB", "exactly-300KB"],
)
def test_2021_mms_costs_3_points_up_to_50_kb_inclusive_and_5_above(image_bytes: int, points: float) -> None:
    recipients = parse_recipients("0912345678, 0922333444", allow_international=False)
    quote = quote_mms(recipients, message="您好", image=b"\xff" * image_bytes)  # text: 6 bytes of UTF-8
    assert quote.size_bytes == image_bytes + 6
    assert (quote.points_per_taiwan, quote.points) == (points, 2 * points)


def test_mms_price_bands_follow_the_setting() -> None:
    assert limits_for_mms_terms("2021").mms_points(50_000) == 3.0
    assert limits_for_mms_terms("2021").mms_points(50_001) == 5.0
    assert limits_for_mms_terms("2017").mms_points(50_001) == 4.0
    assert not limits_for_mms_terms("2021").mms_flat_price and limits_for_mms_terms("2017").mms_flat_price


def test_mms_refuses_international_recipients() -> None:
    with pytest.raises(ValueError):
        quote_mms(parse_recipients("+1 202 555 0100"))


def test_prices_follow_configured_limits() -> None:
    limits = Limits(mms_price=3.5, international_multiplier=2)
    assert quote_mms(parse_recipients("0912345678"), limits).points == 3.5
    assert sms_parts_and_points("hi", international=True, limits=limits) == (1, 2.0, False)


def test_a_table_that_cannot_price_its_own_parts_is_refused() -> None:
    with pytest.raises(ValueError):
        Limits(sms_tiers=((70, 1), (134, 2)))
