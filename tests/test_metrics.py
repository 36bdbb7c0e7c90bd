"""`/metrics` (issue 16): Prometheus text from the official client, names by Prometheus conventions, and
figures that move when the bot works: a send counts its EVERY8D call, its part, its points and its
request's state; posts count Slack calls and empty the outbox; callbacks count by answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics, record_watchdog_finding
from bot.wsgi import build_wsgi_app, serve_in_thread, stop_server
from tests.faults_support import approve_first_card
from tests.harness import CALLBACK_TOKEN, Product, SlackUser


@pytest.fixture
def ops_url(product: Product) -> Iterator[str]:
    runtime = product.runtime
    server, port = serve_in_thread(build_wsgi_app(runtime.app, runtime.receiver, runtime.endpoints),
                                   host="127.0.0.1", port=0, threads=4)
    yield f"http://127.0.0.1:{port}"
    stop_server(server)


def scrape(url: str) -> tuple[dict[tuple[str, tuple], float], str]:
    """Every sample of /metrics as {(name, sorted labels): value}, and the raw text."""
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, response.text


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_are_exposed_with_conventional_names(product: Product, ops_url: str) -> None:
    samples, text = scrape(ops_url)
    names = {name for name, _ in samples}
    for expected in ("every8d_bot_requests", "every8d_bot_request_parts", "every8d_bot_parts_total",
                     "every8d_bot_outbox_pending", "every8d_bot_outbox_oldest_age_seconds",
                     "every8d_bot_poll_lag_seconds", "every8d_bot_open_batches", "every8d_bot_callbacks_total",
                     "every8d_bot_points_spent_total", "every8d_bot_database_readable"):
        assert expected in names, expected
    # Counters end in _total, durations are histograms in seconds; every series has its HELP text.
    assert "# TYPE every8d_bot_every8d_call_duration_seconds histogram" in text
    assert "# TYPE every8d_bot_parts_total counter" in text
    assert value(samples, "every8d_bot_requests", state="sent") == 0


def test_a_send_moves_the_figures(product: Product, ops_url: str) -> None:
    before, _ = scrape(ops_url)
    approve_first_card(product)
    product.settle()
    after, text = scrape(ops_url)

    assert value(after, "every8d_bot_every8d_calls_total", endpoint="sendSMS.ashx", result="ok") == 1
    assert value(after, "every8d_bot_every8d_call_duration_seconds_count", endpoint="sendSMS.ashx") == 1
    assert value(after, "every8d_bot_parts_total", outcome="sent") == 1
    assert value(after, "every8d_bot_sends_total", outcome="sent") == 1
    points = value(after, "every8d_bot_points_spent_total")
    assert points and points == product.store.requests.get(1).cost
    assert value(after, "every8d_bot_requests", state="sent") == 1
    assert value(after, "every8d_bot_request_parts", state="sent") == 1
    assert value(after, "every8d_bot_credit_points") == product.store.credit.latest()[0]
    assert value(after, "every8d_bot_open_batches") == 1
    # The card and the thread posts went out through the poster: counted, and the outbox is empty.
    assert (value(after, "every8d_bot_slack_calls_total", method="chat.postMessage", result="ok") or 0) >= 1
    assert value(after, "every8d_bot_outbox_pending") == 0
    assert value(after, "every8d_bot_outbox_oldest_age_seconds") == 0
    assert value(before, "every8d_bot_parts_total", outcome="sent") == 0


def test_outbox_depth_and_age_while_posts_wait(product: Product, ops_url: str) -> None:
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.runtime.wait_idle()  # the card is queued, the poster does not run in tests
    time.sleep(0.3)
    samples, _ = scrape(ops_url)
    assert value(samples, "every8d_bot_outbox_pending") == 1
    assert value(samples, "every8d_bot_outbox_oldest_age_seconds") >= 0.3
    assert value(samples, "every8d_bot_requests", state="pending_approval") == 1


def test_poll_lag_grows_when_a_batch_is_overdue(product: Product, ops_url: str) -> None:
    approve_first_card(product)
    batch_id = product.store.requests.get(1).batch_id
    product.store.batches.poll_soon(batch_id, time.time() - 42)
    samples, _ = scrape(ops_url)
    assert 42 <= value(samples, "every8d_bot_poll_lag_seconds") < 60


def test_failed_every8d_calls_are_counted_by_result(product: Product, ops_url: str) -> None:
    product.runtime.gateway._sleep = lambda _s: None
    product.sandbox.faults.inject("http500", count=10, endpoint="getCredit.ashx")
    with pytest.raises(Exception):  # noqa: B017 - the kind is what the metric says
        product.runtime.gateway.get_credit()
    samples, _ = scrape(ops_url)
    assert value(samples, "every8d_bot_every8d_calls_total", endpoint="getCredit.ashx", result="unavailable") == 1


def test_callbacks_are_counted_by_answer(product: Product, ops_url: str) -> None:
    approve_first_card(product)
    batch_id = product.store.requests.get(1).batch_id
    report = {"BatchID": batch_id, "RM": "+886912345678", "RT": "20260105093000", "STATUS": "999", "SM": "好",
              "MR": "1"}
    assert requests.get(f"{ops_url}/every8d/callback/{CALLBACK_TOKEN}?{urlencode(report)}", timeout=5).ok
    assert requests.get(f"{ops_url}/every8d/callback/wrong-token?{urlencode(report)}",
                        timeout=5).status_code == 404
    samples, _ = scrape(ops_url)
    assert value(samples, "every8d_bot_callbacks_total", result="stored") == 1
    assert value(samples, "every8d_bot_callbacks_total", result="refused") == 1
    assert value(samples, "every8d_bot_callbacks_total", result="retry") == 0


def test_watchdog_findings_are_counted_by_kind(product: Product, ops_url: str) -> None:
    product.runtime.metrics.watchdog_finding("stuck_sending")
    record_watchdog_finding("stuck_sending")  # the newest runtime's metrics, when none is named
    samples, _ = scrape(ops_url)
    assert value(samples, "every8d_bot_watchdog_findings_total", kind="stuck_sending") == 2


def test_each_runtime_has_its_own_registry(product: Product) -> None:
    """Several runtimes in one process (as in tests) never clash over a metric name."""
    other = Metrics(None, process=False)
    other.watchdog_finding("x")
    assert other.registry is not product.runtime.metrics.registry
    assert product.runtime.metrics.registry.get_sample_value(
        "every8d_bot_watchdog_findings_total", {"kind": "x"}) is None
