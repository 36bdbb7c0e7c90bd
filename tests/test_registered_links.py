"""Registered links (BOT_REGISTERED_LINKS): Taiwan's carriers block commercial SMS with a URL or phone
number not registered with them, so the preview names those, as a warning or as a refusal."""

from __future__ import annotations

import pytest

from services.links import RegisteredLinks
from tests.harness import SlackUser, all_text
from tests.test_compose_modal import open_compose, values

LIST = "shop.example.com.tw, https://lin.ee/abc, 02-2345-6789"


@pytest.mark.parametrize(("message", "flagged"), [
    ("週年慶 https://shop.example.com.tw/sale?id=1 來店禮", []),
    ("子網域 https://m.shop.example.com.tw/x", []),
    ("加 LINE https://lin.ee/abc 或 https://lin.ee/abcdef", ["https://lin.ee/abcdef"]),
    ("詳情 bit.ly/3xYz，或撥 (02)2345-6789、0800-123-456", ["bit.ly/3xYz", "0800-123-456"]),
    ("客服 +886 2 2345 6789 或 0223456789", []),
    ("打給 0912-345-678！官網 www.other.com.tw。", ["www.other.com.tw", "0912-345-678"]),
    ("訂單 20261203001 金額 1,234.5 元", []),
])
def test_links_and_numbers_are_checked_against_the_list_however_written(message, flagged):
    assert RegisteredLinks.parse(LIST).unregistered(message) == flagged


def test_an_empty_list_checks_nothing():
    assert RegisteredLinks.parse(" ") is None


def test_the_preview_warns_naming_the_unregistered_link_and_the_send_can_go_on(make_product):
    product = make_product(registered_links=LIST)
    user = SlackUser(product, "U_REQUESTER")
    view = open_compose(product, user)
    answer = user.submit(view, values(message="限時優惠 https://bit.ly/3xYz 詳見 https://shop.example.com.tw")).json()
    assert answer["response_action"] == "push"
    shown = all_text(answer["view"])
    assert "未登記的網址或電話" in shown and "bit.ly/3xYz" in shown and "shop.example.com.tw」" not in shown


def test_refuse_stops_the_draft_under_the_message(make_product):
    product = make_product(registered_links=LIST, refuse_unregistered_links=True)
    user = SlackUser(product, "U_REQUESTER")
    answer = user.submit(open_compose(product, user), values(message="回撥 0800-123-456")).json()
    assert answer["response_action"] == "errors" and "0800-123-456" in answer["errors"]["message"]
    one_line = all_text(user.command("send 0912345678 看 https://evil.example.net/x").json())
    assert "evil.example.net" in one_line and "無法送出申請" in one_line
    product.settle()
    assert product.store.requests.get(1) is None


def test_a_one_line_send_is_submitted_with_the_warning(make_product):
    product = make_product(registered_links=LIST)
    answer = all_text(SlackUser(product, "U_REQUESTER").command("send 0912345678 詳情 bit.ly/zz").json())
    assert "已送出發送申請 #1" in answer and "bit.ly/zz" in answer and "可能攔截" in answer


def test_a_personalised_column_carrying_a_link_is_checked_too(make_product):
    from tests.test_personalise import with_audience

    product = make_product(registered_links=LIST, refuse_unregistered_links=True)
    user = SlackUser(product, "U_REQUESTER")
    rows = "手機,連結\n0912345678,https://shop.example.com.tw/a\n0922333444,https://bit.ly/b\n"
    answer = user.submit(open_compose(product, user),
                         with_audience(values(recipients="", message="您的連結 {連結}"), product, rows.encode())).json()
    assert answer["response_action"] == "errors" and "https://bit.ly/b" in answer["errors"]["message"]
