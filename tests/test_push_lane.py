"""EVERY8D's pushes answered by the HTTP server's loop thread (bot/push_lane.py): the same answers as
through waitress's worker threads (404 for a wrong secret, 400 for junk, 503 when the report cannot be
stored, 200 only once it is committed), a long write of the process sends pushes to the workers instead of
stalling the port, so does another process's writer (the push is delayed, not refused), and a push
answered 200 is in the database even when the process is killed right after (a real process, SIGKILL).
"""

from __future__ import annotations

import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from bot.push_lane import PushLane
from every8d.sandbox import Sandbox
from tests.faults_support import BotProcess, open_store
from tests.harness import CALLBACK_TOKEN
from tests.test_callback_receiver import push, reply_report
from tests.test_tracking import batch_id_of, send_approved, wait_for


def lane_of(product) -> PushLane:
    return product.server.task_dispatcher.lane


def stray_report(n: int) -> dict[str, str]:
    """A final report for a batch this bot never sent: kept aside (one row each), a write like any other."""
    return {"BatchID": "STRAYBATCH0001", "RM": f"+8869120{n:05d}", "RT": "20261203093000", "STATUS": "100",
            "MR": str(n + 1)}


@pytest.fixture
def sent(make_product):
    """A product with request #1 sent (the sandbox reports nothing final for an hour)."""
    product = make_product(sandbox_delivery_seconds=3600)
    send_approved(product, "send 0912345678 狀態")
    product.settle()
    return product, batch_id_of(product)


def test_a_push_is_answered_by_the_loop_thread_once_committed(sent):
    product, batch_id = sent
    lane = lane_of(product)
    before = lane.served_here
    report = {"BatchID": batch_id, "RM": "+886912345678", "RT": "20261203093000", "STATUS": "100", "MR": "1"}
    assert push(product, report).status_code == 200
    assert lane.served_here == before + 1
    assert product.store.batches.counts(batch_id) == {100: 1}  # committed before the 200 was read


def test_the_loop_answers_404_400_and_503_like_the_workers(sent, monkeypatch):
    product, batch_id = sent
    lane = lane_of(product)
    product.settle()
    before = lane.served_here + lane.handed_over
    assert push(product, reply_report(batch_id), token="wrong-secret-0123456789abcdef").status_code == 404
    assert requests.get(f"{product.url}/every8d/callback/", timeout=5).status_code == 404
    assert push(product, {"BatchID": "x", "STATUS": "abc", "RM": "+886912345678"}).status_code == 400
    assert push(product, "%zz&&=junk").status_code == 400

    def disk_full(**kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(product.store.replies, "add", disk_full)
    assert push(product, reply_report(batch_id)).status_code == 503
    assert product.store.replies.count() == 0
    assert lane.served_here + lane.handed_over == before + 5 and lane.served_here > 0
    monkeypatch.undo()
    assert push(product, reply_report(batch_id)).status_code == 200  # EVERY8D's retry
    assert product.store.replies.count() == 1


def test_a_long_write_sends_pushes_to_the_workers_and_never_stalls_the_port(make_product):
    product = make_product()
    lane = lane_of(product)
    holding, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with product.store.immediate():  # e.g. a poll merging a page of 1,000 records
            holding.set()
            release.wait(5)

    writer = threading.Thread(target=long_write)
    writer.start()
    holding.wait(5)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = [pool.submit(push, product, stray_report(n)) for n in range(2)]
        started = time.monotonic()
        for _ in range(5):  # the port keeps answering while the pushes wait for the write lock
            assert requests.get(f"{product.url}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 1.0
        assert not any(a.done() for a in answers)  # no 200 before the report is committed
        release.set()
        assert [a.result().status_code for a in answers] == [200, 200]
    writer.join()
    assert lane.handed_over == 2
    assert len(product.store.replies.unmatched_reports()) == 2


def test_another_process_writing_delays_a_push_without_stalling_the_port(make_product):
    product = make_product()
    lane = lane_of(product)
    other = sqlite3.connect(product.store.path, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another process (a tool, an admin's shell) holds SQLite's write lock
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            answer = pool.submit(push, product, stray_report(1))
            started = time.monotonic()
            for _ in range(5):
                assert requests.get(f"{product.url}/healthz", timeout=5).status_code == 200
            assert time.monotonic() - started < 1.0
            time.sleep(0.3)
            assert not answer.done()  # waiting for the lock in a worker: no answer before the commit
            other.rollback()
            assert answer.result().status_code == 200
    finally:
        other.close()
    assert lane.handed_over == 1
    assert len(product.store.replies.unmatched_reports()) == 1
    assert push(product, stray_report(2)).status_code == 200
    assert lane.served_here >= 1 and lane.handed_over == 1


@pytest.fixture
def bot(standin, tmp_path: Path, bot_port: int) -> Iterator[BotProcess]:
    with Sandbox() as sandbox:
        process = BotProcess(standin=standin, db_path=tmp_path / "bot.db", every8d_url=sandbox.base_url,
                             workdir=tmp_path, port=bot_port)
        try:
            yield process
        finally:
            process.kill()


@pytest.mark.slow
def test_every_push_answered_200_is_stored_when_the_process_is_killed(bot):
    """Four connections push back to back; the bot is SIGKILLed mid-stream. Reopened, the database holds
    every report that was answered 200 (and nothing answered otherwise was needed)."""
    bot.start()
    answered: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def pusher(first: int) -> None:
        session = requests.Session()
        n = first
        while not stop.is_set():
            query = urlencode(stray_report(n))
            try:
                code = session.get(f"{bot.url}/every8d/callback/{CALLBACK_TOKEN}?{query}", timeout=5).status_code
            except requests.RequestException:
                return
            if code == 200:
                with lock:
                    answered.append(n)
            n += 4

    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(answered) >= 200, timeout=20, what="200 pushes answered")
    bot.kill()
    stop.set()
    for thread in threads:
        thread.join(10)
    with open_store(bot.db_path) as store:
        kept = {report.mobile for report in store.replies.unmatched_reports(limit=100_000)}
    missing = [n for n in answered if stray_report(n)["RM"] not in kept]
    assert answered and not missing


def test_a_post_push_and_two_pipelined_pushes_are_answered_in_order(make_product):
    """EVERY8D may POST the form; a client may pipeline: the loop serves the first, a worker the next, and
    the answers come back in order on the one connection."""
    product = make_product()
    form = urlencode(stray_report(1))
    answer = requests.post(f"{product.url}/every8d/callback/{CALLBACK_TOKEN}", data=form, timeout=5,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200
    wire = b"".join(
        f"GET /every8d/callback/{token}?{urlencode(stray_report(n))} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for n, token in ((2, CALLBACK_TOKEN), (3, "wrong-secret-0123456789abcdef"), (4, CALLBACK_TOKEN))
    )
    with socket.create_connection(("127.0.0.1", product.port), timeout=5) as conn:
        conn.sendall(wire)
        received = b""
        while received.count(b"HTTP/1.1 ") < 3 or not received.endswith((b"OK", b"not found")):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", received) == [b"200", b"404", b"200"]
    assert len(product.store.replies.unmatched_reports()) == 3


def test_the_poster_is_woken_only_by_a_push_that_queued_a_post(make_product):
    """Most reports only change a count whose summary update is already queued: waking the Slack poster for
    those made it query the outbox on every push. A push that queues something still wakes it."""
    product = make_product(sandbox_delivery_seconds=3600)
    send_approved(product, "send 0912345678,0922333444,0933444555 狀態")
    batch_id = batch_id_of(product)
    product.settle()
    wakes: list[int] = []
    product.runtime.receiver.on_stored = lambda: wakes.append(1)

    def report(mobile: str) -> dict[str, str]:
        return {"BatchID": batch_id, "RM": mobile, "RT": "20261203093000", "STATUS": "100", "MR": "1"}

    assert push(product, report("+886912345678")).status_code == 200
    assert len(wakes) == 1  # the summary update queued
    assert push(product, report("+886922333444")).status_code == 200
    assert len(wakes) == 1  # the same update still queued: nothing new to post
    assert push(product, report("+886922333444")).status_code == 200
    assert len(wakes) == 1  # a repeat changes nothing
    assert push(product, reply_report(batch_id)).status_code == 200
    assert len(wakes) == 2  # a reply is posted
    product.settle()
    assert product.store.outbox.pending_count() == 0
