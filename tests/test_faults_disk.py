"""A full disk and a read-only database (issue 12), for real: the database lives on a small tmpfs mounted
for the test, filled with a file until the kernel says ENOSPC, or remounted read-only. Skipped with the
reason when this machine does not let the test mount (not root, no tmpfs).

Nothing may be left without progress and without a word: a part EVERY8D accepted while the disk was full
is recorded (never resent) once space is back; past the send's patience the watchdog marks it "outcome
unknown" and says so; the bot refuses to start on a database it cannot write; an Approve on a read-only
database is answered with a clear word and changes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from every8d.sandbox import Sandbox
from storage import PartState, RequestState
from tests.faults_support import (
    REPO,
    BotProcess,
    assert_no_python_text,
    card_in,
    restart_safe_port,
    send_calls,
    settled,
    thread_text,
    wait_for,
    watchdog,  # noqa: F401 - fixture
)
from tests.harness import Product, SlackUser, all_text, make_config

pytestmark = pytest.mark.usefixtures("watchdog")

DISK_BYTES = 3 * 1024 * 1024


class Disk:
    """A tmpfs of DISK_BYTES at `path`: `fill()` takes every free byte, `free()` gives them back,
    `read_only()`/`read_write()` remount it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler.bin"

    def fill(self) -> None:
        """Write zeros until the kernel refuses with ENOSPC, in smaller and smaller writes."""
        with self.filler.open("ab", buffering=0) as f:
            for size in (65536, 4096, 512, 1):
                while True:
                    try:
                        f.write(b"\0" * size)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True, capture_output=True)

    def read_write(self) -> None:
        subprocess.run(["mount", "-o", "remount,rw", str(self.path)], check=True, capture_output=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    path = tmp_path / "disk"
    path.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root on Linux")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield Disk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def on_disk(disk: Disk, standin) -> Iterator[Callable[..., Product]]:
    """Build the product with its database on the small disk: `on_disk(send_chunk_size=1)`."""
    products: list[Product] = []

    def build(**overrides) -> Product:
        product = Product(make_config(standin, disk.path / "bot.db", **overrides), standin)
        products.append(product)
        return product

    yield build
    for product in products:
        with contextlib.suppress(Exception):
            product.stop()


def fill_after(disk: Disk, inner: Callable, *, times: int = 1) -> Callable:
    """`inner` (a real call: EVERY8D over HTTP, or the send itself), then the disk fills up: the moment
    between EVERY8D accepting a send and the bot writing it down."""
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        result = inner(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == times:
            disk.fill()
        return result

    return wrapped


def request_and_approve(product, text: str = "send 0912345678 明早九點停水通知") -> dict:
    SlackUser(product, "U_REQUESTER").command(text)
    product.settle()
    card = product.standin.messages("C_APPROVALS")[0]
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    return card


def drain(product) -> None:
    product.runtime.wait_idle(timeout=30)
    for _ in range(3):
        product.runtime.poster.drain()


def part_states(product, request_id: int = 1) -> list[PartState]:
    return [p.state for p in product.store.parts.of_request(request_id)]


# -- a full disk ----------------------------------------------------------------------------------------


def test_disk_full_after_every8d_accepted_is_recorded_once_space_is_back_and_never_resent(
    on_disk, disk: Disk
) -> None:
    product = on_disk()
    gateway = product.runtime.gateway
    gateway.send_sms = fill_after(disk, gateway.send_sms)
    card = request_and_approve(product)

    wait_for(lambda: send_calls(product.sandbox), timeout=10, what="EVERY8D to accept the send")
    time.sleep(1.0)  # the bot meets the full disk and waits for it
    assert product.store.requests.get(1).state is RequestState.SENDING
    disk.free()

    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=20,
             what="the part to be recorded once space is back")
    drain(product)
    assert len(send_calls(product.sandbox)) == 1
    row = product.store.requests.get(1)
    thread = thread_text(product.standin, "C_APPROVALS", card["ts"])
    assert row.batch_id and row.batch_id in thread
    assert "磁碟已滿或唯讀" in thread and "未重複發送" in thread
    assert_no_python_text(thread)


def test_disk_full_for_longer_than_the_send_waits_is_marked_unknown_by_the_watchdog_and_said(
    on_disk, disk: Disk
) -> None:
    """The disk stays full past the send's patience: the part stays claimed (never resent); once space is
    back the watchdog marks it "outcome unknown" and says so in the thread and the alert channel, with
    what an approver can do; a second run says nothing more. (Callbacks off: EVERY8D's report would
    otherwise settle the part as sent at once, which test_faults_crash covers.)"""
    product = on_disk(callback_token="")
    product.runtime.sending.record_patience = 0.5
    gateway = product.runtime.gateway
    gateway.send_sms = fill_after(disk, gateway.send_sms)
    card = request_and_approve(product)
    product.runtime.wait_idle(timeout=15)
    assert len(send_calls(product.sandbox)) == 1
    assert product.store.requests.get(1).state is RequestState.SENDING

    dog = product.runtime.watchdog
    dog.stale_seconds = 0.3
    assert dog.run().database is not None  # still full: said straight to Slack, once
    alarms = [m for m in product.standin.messages("C_ALERTS") if "資料庫無法寫入" in m["text"]]
    assert len(alarms) == 1
    dog.run()
    assert len([m for m in product.standin.messages("C_ALERTS") if "資料庫無法寫入" in m["text"]]) == 1

    disk.free()
    time.sleep(0.4)
    found = dog.run()
    assert found.unknown == [(1, 0)]
    drain(product)
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    assert part_states(product) == [PartState.UNKNOWN]
    thread = thread_text(product.standin, "C_APPROVALS", card["ts"])
    assert "監看" in thread and "已確認送出" in thread and "重新發送" in thread
    alerts = "\n".join(all_text(m) for m in product.standin.messages("C_ALERTS"))
    assert "#1" in alerts and "不會自動重送" in alerts and "資料庫已可寫入" in alerts
    assert_no_python_text(thread + alerts)

    before = len(product.standin.calls_to("chat.postMessage"))
    time.sleep(0.4)
    dog.run()
    drain(product)
    assert len(product.standin.calls_to("chat.postMessage")) == before  # said once
    assert len(send_calls(product.sandbox)) == 1


def test_disk_full_before_the_claim_leaves_approved_and_the_watchdog_sends_it_once_space_is_back(
    on_disk, disk: Disk
) -> None:
    """Approved, then the disk fills before the send claims the request: the send cannot start (it used
    to stay `approved` for ever, said nowhere). Once space is back the watchdog sends it, once."""
    product = on_disk()
    sending = product.runtime.sending
    real_send = sending.send

    def full_then_send(request_id: int):
        disk.fill()
        try:
            return real_send(request_id)
        finally:
            sending.send = real_send

    sending.send = full_then_send
    card = request_and_approve(product)
    product.runtime.wait_idle(timeout=15)
    assert product.store.requests.get(1).state is RequestState.APPROVED
    assert send_calls(product.sandbox) == []

    dog = product.runtime.watchdog
    dog.stale_seconds = 0.3
    assert dog.run().database is not None
    disk.free()
    time.sleep(0.4)
    assert dog.run().restarted == [1]
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=15, what="the send")
    drain(product)
    assert len(send_calls(product.sandbox)) == 1
    assert product.store.requests.get(1).batch_id in thread_text(product.standin, "C_APPROVALS", card["ts"])
    time.sleep(0.4)
    assert dog.run().restarted == []


def test_disk_full_between_two_parts_is_resumed_by_the_watchdog_without_resending_the_first(
    on_disk, disk: Disk
) -> None:
    """Part 1 recorded, then the disk fills before part 2 is claimed: the request stays `sending` with
    part 2 never attempted. The watchdog resumes it: part 2 goes out, part 1 is not sent again."""
    product = on_disk(send_chunk_size=1)
    sending = product.runtime.sending
    real_record = sending._record_part

    def record_then_fill(*args, **kwargs):
        real_record(*args, **kwargs)
        sending._record_part = real_record
        disk.fill()

    sending._record_part = record_then_fill
    card = request_and_approve(product, "send 0912345678,0922333444 明早九點停水通知")
    product.runtime.wait_idle(timeout=15)
    assert len(send_calls(product.sandbox)) == 1
    assert part_states(product) == [PartState.SENT, PartState.PENDING]
    assert product.store.requests.get(1).state is RequestState.SENDING

    disk.free()
    dog = product.runtime.watchdog
    dog.stale_seconds = 0.3
    time.sleep(0.4)
    assert dog.run().resumed == [1]
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=15, what="the rest")
    drain(product)
    assert [c.params["SB"].partition("@")[0] for c in send_calls(product.sandbox)] == ["#R1", "#R1.1"]
    assert "已送出 2 則" in thread_text(product.standin, "C_APPROVALS", card["ts"])


# -- posts Slack keeps refusing ------------------------------------------------------------------------


def test_a_post_failing_for_long_is_retried_now_and_said_once_in_the_alert_channel(make_product) -> None:
    product = make_product()
    product.standin.faults.fail("chat.postMessage", "internal_error", count=1)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.settle()
    assert product.standin.messages("C_APPROVALS") == []  # the card waits for its retry

    dog = product.runtime.watchdog
    dog.stale_seconds = 0.3
    time.sleep(0.4)
    assert len(dog.run().posts) == 1
    drain(product)
    assert len(product.standin.messages("C_APPROVALS")) == 1  # retried at once, not after its backoff
    alerts = [all_text(m) for m in product.standin.messages("C_ALERTS")]
    assert len(alerts) == 1 and "C_APPROVALS" in alerts[0] and "internal_error" in alerts[0]
    time.sleep(0.4)
    dog.run()
    drain(product)
    assert len(product.standin.messages("C_ALERTS")) == 1


# -- a read-only database -------------------------------------------------------------------------------


def test_run_refuses_a_read_only_database_with_one_clear_line(on_disk, disk: Disk, standin) -> None:
    db_path = disk.path / "bot.db"
    on_disk().stop()  # a database that exists, migrated
    disk.read_only()
    env = {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret", "SLACK_API_URL": standin.api_url, "BOT_DB_PATH": str(db_path),
    }
    done = subprocess.run([sys.executable, "-m", "bot", "run", "--http", "--port", "0"], env=env,
                          cwd=disk.path.parent, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "bot.db" in lines[0] and "BOT_DB_PATH" in lines[0] and "Traceback" not in done.stderr


def test_an_approve_on_a_database_that_cannot_be_written_is_answered_clearly_and_changes_nothing(
    on_disk, disk: Disk
) -> None:
    """The database stops taking writes while the bot runs (here the disk fills; a read-only remount is
    refused by the kernel while the bot holds the file open for writing, and a chmod does not stop root).
    The Approve is answered with what is wrong and that nothing was sent; the request is not approved, the
    alert channel hears it from the watchdog; once writes work, the same click approves and sends, once."""
    product = on_disk()
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.settle()
    card = product.standin.messages("C_APPROVALS")[0]
    disk.fill()
    try:
        approver = SlackUser(product, "U_APPROVER")
        approver.click("approve_request", "1", message=card)
        product.runtime.wait_idle()
        said = wait_for(lambda: [e for e in approver.ephemerals() if "無法寫入" in e["text"]], timeout=10,
                        what="the approver to be told")
        assert "沒有任何簡訊被送出" in said[0]["text"] and "nothing was sent" in said[0]["text"]
        assert_no_python_text(said[0]["text"])
        assert product.store.requests.get(1).state is RequestState.PENDING_APPROVAL
        assert send_calls(product.sandbox) == []
        assert product.runtime.watchdog.run().database is not None
        assert [m for m in product.standin.messages("C_ALERTS") if "資料庫無法寫入" in m["text"]]
    finally:
        disk.free()
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=15, what="the send")
    assert len(send_calls(product.sandbox)) == 1


# -- the real process: the watchdog job in the scheduler ------------------------------------------------


def test_in_the_running_bot_the_watchdog_job_says_a_full_disk_and_settles_the_part_once_space_is_back(
    disk: Disk, standin, tmp_path: Path
) -> None:
    """`every8d-bot run` as a process, its database on the small disk, BOT_WATCHDOG_MINUTES=0.05: the disk
    fills while EVERY8D is answering. The scheduler's watchdog says so in the alert channel at once; the
    send gives up waiting after BOT_WATCHDOG_MINUTES; once space is back the watchdog marks the part
    outcome unknown and says so in the thread and the alert channel. One send, never two."""
    with Sandbox(delivery_seconds=0.3) as sandbox:  # no push reports: the part stays in doubt
        bot = BotProcess(standin=standin, db_path=disk.path / "bot.db", every8d_url=sandbox.base_url,
                         workdir=tmp_path, port=restart_safe_port())
        bot.env.update({"BOT_WATCHDOG_MINUTES": "0.05", "BOT_ALERT_CHANNEL": "C_ALERTS"})
        try:
            bot.start()
            SlackUser(bot, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
            card = card_in(standin)
            sandbox.faults.latency = 1.0
            SlackUser(bot, "U_APPROVER").click("approve_request", "1", message=card)
            wait_for(lambda: send_calls(sandbox), timeout=10, what="the send to reach EVERY8D")
            disk.fill()
            wait_for(lambda: [m for m in standin.messages("C_ALERTS") if "資料庫無法寫入" in m["text"]],
                     timeout=15, what="the watchdog's alarm in the alert channel")
            time.sleep(4.0)  # past the send's patience (BOT_WATCHDOG_MINUTES): the part is left to the watchdog
            disk.free()
            row = settled(bot.db_path, 1, states=(RequestState.UNKNOWN,), timeout=20)
            assert row.state is RequestState.UNKNOWN
            assert len(send_calls(sandbox)) == 1
            thread = thread_text(standin, "C_APPROVALS", card["ts"])
            assert "監看" in thread and "已確認送出" in thread
            alerts = "\n".join(all_text(m) for m in standin.messages("C_ALERTS"))
            assert "不會自動重送" in alerts and "資料庫已可寫入" in alerts
            assert_no_python_text(thread + alerts)
            assert len([m for m in standin.messages("C_ALERTS") if "資料庫無法寫入" in m["text"]]) == 1
        finally:
            bot.kill()
            print(bot.logs())
