"""A 10,000-recipient send through SendService with the real EVERY8D client: calls made, wall time against
bare `requests` posts of the same chunks, and peak memory from 1,000 to 100,000 recipients.

The sandbox runs in a child process, so its own work (parsing the numbers, keeping 100,000 records)
is neither in the product's memory figures nor competing for the product's GIL. Each send is a fresh
approved request set up through storage (outside the timings); `SendService.send` then claims it, reads
its recipients, calls EVERY8D and records the batch (one delivery row per recipient), the credit, the
audit line and the Slack posts, part by part (BOT_SEND_CHUNK_SIZE, 1,000 by default). The bare baseline
posts the exact forms the client sent (as captured by the sandbox, one per part) with one keep-alive
`requests.Session`, so the sandbox's time is in both columns.

Peak memory is tracemalloc's peak during `send` (Python allocations only). "Flat" is defined here as: the
100,000-recipient peak is at most 3x the 1,000-recipient peak.

    python bench/big_send.py [--quick] [--json PATH]
"""

from __future__ import annotations

import gc
import multiprocessing
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import requests

try:
    from bench import common
except ModuleNotFoundError:  # run as `python bench/big_send.py` from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import common

from bench.common import Figure
from every8d.client import Every8dClient
from services.policy import Policy
from services.sending import SendService
from storage import RequestState, Store

SEND_SIZE = 10_000
TARGET_RATIO = 1.2
FLAT_FACTOR = 3.0
FLAT_SIZE = 100_000
MIB = 1024 * 1024


def sandbox_process(conn: Connection) -> None:
    """Child process: a sandbox that answers "calls" with the requests received since the last ask."""
    from every8d.sandbox import Sandbox

    with Sandbox(credit=1e12, delivery_seconds=3600, background=False) as sandbox:
        conn.send(sandbox.base_url)
        while conn.recv() == "calls":
            calls = list(sandbox.calls)
            sandbox.calls.clear()
            conn.send([(call.endpoint, call.params) for call in calls])


class RemoteSandbox:
    """The parent's handle on the child's sandbox."""

    def __init__(self, conn: Connection, base_url: str) -> None:
        self._conn = conn
        self.base_url = base_url

    def take_calls(self) -> list[tuple[str, dict[str, str]]]:
        """(endpoint, params with PWD masked) of every request since the last call."""
        self._conn.send("calls")
        return self._conn.recv()


@contextmanager
def remote_sandbox() -> Iterator[RemoteSandbox]:
    """Start the sandbox in a spawned child process; stop it on exit."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=sandbox_process, args=(child,), daemon=True)
    process.start()
    try:
        yield RemoteSandbox(parent, parent.recv())
    finally:
        parent.send("stop")
        process.join(timeout=10)


class Sender:
    """SendService wired as the product wires it, over a fresh store and the real client."""

    def __init__(self, store: Store, base_url: str) -> None:
        self.store = store
        self.client = Every8dClient(base_url, "sandbox", "sandbox", timeout=120)
        policy = Policy(approval_channel="C_APPROVALS", status_poll_seconds=60.0, sandbox=True)
        self.service = SendService(store, self.client, policy, time.time)

    def prepare(self, size: int) -> int:
        """An approved request for `size` recipients, ready to send (set-up, outside every timing)."""
        return common.new_request(self.store, common.mobiles(0, size))

    def send(self, request_id: int) -> None:
        """Send it; a send that does not end `sent` would make every figure meaningless, so it raises."""
        state = self.service.send(request_id)
        if state is not RequestState.SENT:
            raise RuntimeError(f"the send ended {state}, not sent")


def timed(call: Callable[[], object]) -> float:
    """Seconds one call took."""
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def peak_memory(sender: Sender, size: int) -> int:
    """tracemalloc's peak (bytes) during one send of `size` recipients."""
    request_id = sender.prepare(size)
    gc.collect()
    tracemalloc.start()
    try:
        sender.send(request_id)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(quick: bool) -> list[Figure]:
    """Warm-up send (its form is the bare baseline's), timed pairs, then the memory peaks."""
    repeats = 2 if quick else 5
    sizes = (1_000, SEND_SIZE) if quick else (1_000, SEND_SIZE, FLAT_SIZE)
    with tempfile.TemporaryDirectory(prefix="every8d-bench-") as tmp, remote_sandbox() as sandbox:
        sender = Sender(Store(Path(tmp) / "bot.db"), sandbox.base_url)
        sender.send(sender.prepare(SEND_SIZE))  # warm-up, and the form the client sends
        calls = sandbox.take_calls()
        posts = [(f"{sandbox.base_url}{endpoint}", {**params, "PWD": "sandbox"})
                 for endpoint, params in calls if endpoint.endswith("sendSMS.ashx")]
        session = requests.Session()

        def bare() -> None:
            for url, form in posts:
                session.post(url, data=form, timeout=120).raise_for_status()

        product_times, bare_times = [], []
        for _ in range(repeats):
            bare_times.append(timed(bare))
            request_id = sender.prepare(SEND_SIZE)
            product_times.append(timed(lambda request_id=request_id: sender.send(request_id)))
        peaks = {size: peak_memory(sender, size) for size in sizes}
        session.close()
        sender.client.close()
        sender.store.close()
    return figures(calls, statistics.median(product_times), statistics.median(bare_times), peaks, repeats)


def figures(
    calls: list[tuple[str, dict[str, str]]],
    product_s: float,
    bare_s: float,
    peaks: dict[int, int],
    repeats: int,
) -> list[Figure]:
    """Calls made, wall time against bare, and one peak per size (the largest judged for flatness)."""
    sends = [params for endpoint, params in calls if endpoint.endswith("sendSMS.ashx")]
    per_call = [len(params.get("DEST", "").split(",")) for params in sends]
    rows = [
        Figure(
            f"{SEND_SIZE:,}-recipient send: EVERY8D calls",
            len(calls),
            "calls",
            note=f"{len(sends)} sendSMS POST(s) with {sorted(set(per_call))} numbers in DEST",
        ),
        Figure(
            f"{SEND_SIZE:,}-recipient send: wall time",
            product_s * 1000,
            "ms",
            target=f"<= {TARGET_RATIO}x bare",
            ok=product_s <= TARGET_RATIO * bare_s,
            baseline=bare_s * 1000,
            ratio=common.ratio(product_s, bare_s),
            note=f"median of {repeats}; bare: the same forms (as the sandbox received them, one per part) posted "
            "with one requests.Session",
        ),
    ]
    smallest = min(peaks)
    for size, peak in peaks.items():
        flat_row = size == FLAT_SIZE
        rows.append(
            Figure(
                f"send peak memory, {size:,} recipients",
                peak / MIB,
                "MiB",
                target=f"<= {FLAT_FACTOR:.0f}x the {smallest:,} peak (flat)" if flat_row else "info",
                ok=peak <= FLAT_FACTOR * peaks[smallest] if flat_row else None,
                baseline=peaks[smallest] / MIB if size != smallest else None,
                ratio=common.ratio(peak, peaks[smallest]) if size != smallest else None,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> list[Figure]:
    """Command line: `--quick`, `--json PATH`; prints the table and returns the figures."""
    return common.main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
