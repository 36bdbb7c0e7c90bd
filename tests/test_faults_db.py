"""The database locked by another writer for a few seconds (issue 7): a backup tool, a migration, an
admin's sqlite3 shell. Requests that arrive meanwhile (a slash command, an Approve click, an EVERY8D
callback) wait for the lock and succeed; nothing is lost, nothing is done twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from every8d.sandbox.callbacks import callback_query
from every8d.sandbox.engine import CallbackEvent
from storage import RequestState
from tests.faults_support import (
    approve_first_card,
    send_calls,
    thread_text,
    watchdog,  # noqa: F401 - fixture
)
from tests.harness import SlackUser, all_text, button

pytestmark = pytest.mark.usefixtures("watchdog")

HOLD_SECONDS = 2.0  # under Slack's 3-second ack deadline: a command must still be answered in time


@contextlib.contextmanager
def locked(db_path: Path, seconds: float = HOLD_SECONDS) -> Iterator[float]:
    """Another writer (its own connection, like a backup tool or an admin's sqlite3 shell) holds the write
    lock (BEGIN IMMEDIATE) for `seconds`. Yields the time it took the lock; exits once it let go."""
    taken = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db_path, timeout=10)
        try:
            conn.execute("BEGIN IMMEDIATE")
            taken.set()
            time.sleep(seconds)
            conn.execute("COMMIT")
        finally:
            conn.close()

    holder = threading.Thread(target=hold, name="other-writer")
    holder.start()
    assert taken.wait(10), "could not take the database lock"
    try:
        yield time.monotonic()
    finally:
        holder.join(timeout=seconds + 10)


def callback(product, batch_id: str, status: int, text: str = "", record_no: int = 1) -> requests.Response:
    """EVERY8D's push for the one recipient of the batch, as the sandbox encodes it."""
    event = CallbackEvent(batch_id, "+886912345678", time.time(), status, text, record_no, "#R1", "")
    return requests.get(f"{product.callback_url}?{callback_query(event)}", timeout=15)


def test_a_command_during_a_lock_waits_and_is_answered_in_time(make_product) -> None:
    product = make_product(callback_token="")
    requester = SlackUser(product, "U_REQUESTER")
    with locked(Path(product.store.path)) as start:
        response = requester.command("send 0912345678 停電通知")
        waited = time.monotonic() - start
    assert response.status_code == 200 and "#1" in all_text(response.json())
    assert HOLD_SECONDS - 0.3 < waited < 3.0  # it waited for the lock, and still beat Slack's deadline
    product.settle()
    assert product.store.requests.get(1).state is RequestState.PENDING_APPROVAL
    assert len(product.standin.messages("C_APPROVALS")) == 1


def test_approve_command_and_callback_together_during_a_lock_all_succeed_once(make_product) -> None:
    product = make_product(sandbox_delivery_seconds=30)
    card = approve_first_card(product)
    batch_id = product.store.requests.get(1).batch_id
    SlackUser(product, "U_REQUESTER").command("send 0922333444 第二則")
    product.settle()
    second_card = product.standin.messages("C_APPROVALS")[1]
    assert button(second_card, "approve_request") is not None

    with locked(Path(product.store.path)), ThreadPoolExecutor(max_workers=4) as pool:
        clicks = [pool.submit(SlackUser(product, "U_APPROVER").click, "approve_request", "2", message=second_card),
                  pool.submit(SlackUser(product, "U_APPROVER2").click, "approve_request", "2", message=second_card)]
        command = pool.submit(SlackUser(product, "U_OTHER").command, "send 0933444555 第三則")
        reply = pool.submit(callback, product, batch_id, 999, "收到，謝謝", 2)
        responses = [f.result(timeout=20) for f in (*clicks, command, reply)]
    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    product.settle()

    assert product.store.requests.get(2).state is RequestState.SENT
    assert product.store.requests.get(3).state is RequestState.PENDING_APPROVAL
    assert len(send_calls(product.sandbox)) == 2  # request 1 and request 2, each once
    assert [a["action"] for a in product.store.audit.for_request(2)].count("approved") == 1
    assert "收到，謝謝" in thread_text(product.standin, "C_APPROVALS", card["ts"])
    assert product.store.outbox.pending_count() == 0


def test_a_callback_during_a_lock_is_stored_not_refused(make_product) -> None:
    """EVERY8D retries a push only 10 times: a locked database must delay the answer, not lose it."""
    product = make_product(sandbox_delivery_seconds=30)
    card = approve_first_card(product)
    batch_id = product.store.requests.get(1).batch_id
    with locked(Path(product.store.path)):
        response = callback(product, batch_id, 100)
    assert response.status_code == 200
    product.settle()
    assert product.store.batches.counts(batch_id) == {100: 1}
    assert product.store.batches.get(batch_id).state == "complete"
    assert "已送達 1" in thread_text(product.standin, "C_APPROVALS", card["ts"])
