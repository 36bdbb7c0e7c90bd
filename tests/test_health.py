"""`/healthz` and `/readyz` (issue 16): alive always, ready only when the bot can work, and a JSON body that
names each failed check, for every cause: database, scheduler, EVERY8D, Slack, outbox, shutting down.

The product runs as in every end-to-end test (tests/harness.py) and is also served with the service
paths mounted, as `every8d-bot run` serves it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from bot.wsgi import build_wsgi_app, serve_in_thread, stop_server
from every8d.errors import Every8dError
from tests.harness import CALLBACK_TOKEN, SIGNING_SECRET, Product, SlackUser, wait_until


@pytest.fixture
def serve() -> Iterator[Callable[[Product], str]]:
    """Serve a product's runtime with the service paths (what `every8d-bot run --http` serves); its URL."""
    servers = []

    def start(product: Product) -> str:
        runtime = product.runtime
        server, port = serve_in_thread(build_wsgi_app(runtime.app, runtime.receiver, runtime.endpoints),
                                       host="127.0.0.1", port=0, threads=4)
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        stop_server(server)


@pytest.fixture
def ops_url(product: Product, serve: Callable[[Product], str]) -> str:
    return serve(product)


def ready(url: str) -> tuple[int, dict]:
    response = requests.get(f"{url}/readyz", timeout=10)
    assert response.headers["Content-Type"].startswith("application/json")
    return response.status_code, response.json()


def make_ready(product: Product) -> None:
    """What a running bot has a moment after start: the scheduler runs, EVERY8D answered a credit check."""
    product.runtime.scheduler.start()
    product.runtime.credit.check()


def test_healthz_answers_alive_in_json(product: Product, ops_url: str) -> None:
    response = requests.get(f"{ops_url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "alive"


def test_ready_when_every_check_passes(product: Product, ops_url: str) -> None:
    make_ready(product)
    status, body = ready(ops_url)
    assert status == 200, body
    assert body["status"] == "ready" and body["failed"] == []
    assert set(body["checks"]) == {"accepting", "database", "scheduler", "every8d", "slack", "outbox"}


def test_not_ready_while_the_scheduler_is_not_running(product: Product, ops_url: str) -> None:
    product.runtime.credit.check()  # everything else is fine; the harness never starts the scheduler
    status, body = ready(ops_url)
    assert status == 503
    assert body["failed"] == ["scheduler"]
    assert "not running" in body["checks"]["scheduler"]["detail"]


def test_not_ready_when_the_database_takes_no_writes(product: Product, ops_url: str) -> None:
    make_ready(product)
    holder = sqlite3.connect(product.runtime.config.db_path, timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock and never lets go
    try:
        status, body = ready(ops_url)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == 503
    assert body["failed"] == ["database"]
    assert "OperationalError" in body["checks"]["database"]["detail"]
    assert ready(ops_url)[0] == 200


def test_not_ready_when_no_every8d_call_succeeded_recently(make_product, serve) -> None:
    product = make_product(ready_every8d_seconds=0.5)
    url = serve(product)
    product.runtime.scheduler.start(paused=True)  # no job runs: nothing reaches EVERY8D
    time.sleep(0.7)
    status, body = ready(url)
    assert status == 503
    assert body["failed"] == ["every8d"]
    assert "since start-up" in body["checks"]["every8d"]["detail"]

    product.runtime.credit.check()
    assert ready(url)[0] == 200

    product.sandbox.faults.inject("http500", count=10)  # EVERY8D in trouble from now on
    product.runtime.gateway._sleep = lambda _s: None
    with pytest.raises(Every8dError):
        product.runtime.gateway.get_credit()
    time.sleep(0.7)
    status, body = ready(url)
    assert body["failed"] == ["every8d"]
    assert "last failure: unavailable" in body["checks"]["every8d"]["detail"]


def test_not_ready_when_slack_keeps_failing(make_product, serve) -> None:
    product = make_product(ready_slack_seconds=0.5)
    url = serve(product)
    make_ready(product)
    product.standin.faults.down(True)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.runtime.wait_idle()
    product.runtime.poster.drain()  # the approval card: Slack answers 503
    assert ready(url)[0] == 200  # failing, but not for long yet
    time.sleep(0.7)
    status, body = ready(url)
    assert status == 503
    assert body["failed"] == ["slack"]
    assert "Slack calls fail (error)" in body["checks"]["slack"]["detail"]

    product.standin.faults.down(False)
    _all_due_now(product)
    product.runtime.poster.drain()
    assert ready(url)[0] == 200


def test_not_ready_when_posts_wait_too_long_for_slack(make_product, serve) -> None:
    product = make_product(ready_outbox_seconds=0.5)
    url = serve(product)
    make_ready(product)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.runtime.wait_idle()  # the approval card is queued; the poster does not run in tests
    time.sleep(0.7)
    status, body = ready(url)
    assert status == 503
    assert body["failed"] == ["outbox"]
    assert "1 posts wait for Slack" in body["checks"]["outbox"]["detail"]

    product.runtime.poster.drain()
    assert ready(url)[0] == 200


def test_not_ready_once_shutting_down(product: Product, ops_url: str) -> None:
    make_ready(product)
    product.runtime.begin_shutdown()
    status, body = ready(ops_url)
    assert status == 503
    assert body["failed"] == ["accepting"]
    assert requests.get(f"{ops_url}/healthz", timeout=5).status_code == 200


def test_bodies_hold_no_secret(make_product, serve) -> None:
    product = make_product(ready_every8d_seconds=0.1)
    url = serve(product)
    time.sleep(0.2)
    texts = [requests.get(f"{url}{path}", timeout=5).text for path in ("/healthz", "/readyz", "/metrics")]
    config = product.runtime.config
    for secret in (SIGNING_SECRET, CALLBACK_TOKEN, config.slack_bot_token, config.db_path, "sandbox"):
        assert not any(secret in text for text in texts), secret
    assert json.loads(texts[1])["failed"]  # not ready, and still nothing secret said about why


def test_service_paths_take_get_only_and_others_are_not_found(product: Product, ops_url: str) -> None:
    assert requests.post(f"{ops_url}/readyz", timeout=5).status_code == 405
    assert requests.get(f"{ops_url}/nothing-here", timeout=5).status_code == 404


def _all_due_now(product: Product) -> None:
    """Make every waiting post due now (their backoff would otherwise make the test wait)."""
    db = product.store.db
    with product.store.immediate():
        db.execute("UPDATE outbox SET next_attempt_at = 0 WHERE state = 'pending'")
    assert wait_until(lambda: product.store.outbox.due(), timeout=1)


def test_the_socket_mode_callback_port_serves_the_service_paths(product: Product) -> None:
    """In Socket Mode the callback port has no Slack path; it serves health, readiness, metrics and
    (with a token) EVERY8D's callbacks."""
    runtime = product.runtime
    server, port = serve_in_thread(build_wsgi_app(None, runtime.receiver, runtime.endpoints),
                                   host="127.0.0.1", port=0, threads=2)
    url = f"http://127.0.0.1:{port}"
    try:
        make_ready(product)
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        assert ready(url)[0] == 200
        assert "every8d_bot_requests" in requests.get(f"{url}/metrics", timeout=5).text
        assert requests.post(f"{url}/slack/events", data="x", timeout=5).status_code == 404
        assert requests.get(f"{url}/every8d/callback/{CALLBACK_TOKEN}?x=1", timeout=5).status_code == 400
    finally:
        stop_server(server)
