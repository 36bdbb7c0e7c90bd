"""Outside audit of what arrives from Slack: each case is a signed HTTP request shaped as Slack sends it
(bolt-python's fixtures and Slack's documentation), checked on what the Slack stand-in recorded and on the store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.harness import SlackUser, wait_until
from tests.test_compose_modal import open_compose, values
from tests.test_series import clocked, compose_values  # noqa: F401,F811 - clocked is a fixture


def _preview(product, user: SlackUser) -> dict:
    view = open_compose(product, user)
    answer = user.submit(view, values(recipients="0912345678", message="您好")).json()
    assert answer["response_action"] == "push"
    return {**answer["view"], "id": "VPREVIEW1"}


def test_a_preview_submitted_twice_at_once_makes_one_request(product) -> None:
    user = SlackUser(product, "U_REQUESTER")
    preview = _preview(product, user)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: user.submit(preview, {}), range(8)))
    assert all(a.status_code == 200 for a in answers)
    product.settle()
    assert product.store.requests.get(1) is not None
    assert product.store.requests.get(2) is None


def test_a_repeating_preview_submitted_twice_at_once_makes_one_series(clocked) -> None:  # noqa: F811
    product, clock = clocked()
    user = SlackUser(product, "U_REQUESTER")
    assert user.command("").status_code == 200
    [view] = wait_until(lambda: product.standin.open_views(user.user_id))
    first = int(clock.now // 60 * 60 + 3600)
    answer = user.submit(view, compose_values(first)).json()
    assert answer["response_action"] == "push"
    preview = {**answer["view"], "id": "VPREVIEW2"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: user.submit(preview, {}), range(8)))
    assert all(a.status_code == 200 for a in answers)
    product.settle()
    assert product.store.series.get(1) is not None
    assert product.store.series.get(2) is None
    assert len(product.standin.messages("C_APPROVALS")) == 1  # one card to approve
