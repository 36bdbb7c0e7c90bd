"""A 10,000-recipient personalised send (one text per recipient) through SendService with the real EVERY8D
client, against the same audience with one shared text, with the sandbox answering each call after 100 ms
(a real EVERY8D round trip, not loopback's fraction of a millisecond).

Personalised texts go out with SendParamSMS in parts of BOT_SEND_CHUNK_SIZE (1,000), so the audience is ten
calls either way; without it, it would be one sendSMS call per distinct text: 10,000 calls, about 10,000 x
100 ms = 17 minutes of round trips alone (stated, not run). The target: the personalised send takes at most
1.5x the shared-text send's wall time. The sandbox runs in a child process, so its own work does not
compete with the product's; each send is a fresh approved request set up through storage (outside the
timings), then claimed, sent, recorded and posted part by part by `SendService.send`.

    python bench/personalised_send.py [--quick] [--json PATH]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

try:
    from bench import common
except ModuleNotFoundError:  # run as `python bench/personalised_send.py` from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import common

from bench.big_send import Sender, timed
from bench.common import Figure
from storage import Store

SEND_SIZE = 10_000
LATENCY_SECONDS = 0.1
TARGET_RATIO = 1.5
SHARED = "bench 測試：本月帳單已寄出，請於期限內繳費"


def sandbox_process(conn: Connection, latency: float) -> None:
    """Child process: a sandbox answering every call after `latency`; "calls" returns what it received."""
    from every8d.sandbox import Sandbox

    with Sandbox(credit=1e12, delivery_seconds=3600, background=False) as sandbox:
        sandbox.faults.latency = latency
        conn.send(sandbox.base_url)
        while conn.recv() == "calls":
            calls = list(sandbox.calls)
            sandbox.calls.clear()
            conn.send([(call.endpoint, len((call.document or {}).get("RecipientDataList", []))
                        or len(call.params.get("DEST", "").split(","))) for call in calls])


@contextmanager
def slow_sandbox(latency: float) -> Iterator[tuple[Connection, str]]:
    """The sandbox in a spawned child process; yields (pipe, base URL)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=sandbox_process, args=(child, latency), daemon=True)
    process.start()
    try:
        yield parent, parent.recv()
    finally:
        parent.send("stop")
        process.join(timeout=10)


def take_calls(conn: Connection) -> list[tuple[str, int]]:
    """(endpoint, recipients in the call) of every request since the last ask."""
    conn.send("calls")
    return conn.recv()


def personal_texts(numbers: list[str]) -> dict[str, str]:
    """One text per recipient, as a CSV audience with a name and an amount per row makes them."""
    return {number: f"客戶{n:05d} 您好，您本月帳單 {100 + n % 900} 元已寄出，請於期限內繳費"
            for n, number in enumerate(numbers)}


def measure(quick: bool) -> list[Figure]:
    """A warm-up of each kind, then timed pairs (shared text, personalised), median of each."""
    repeats = 1 if quick else 3
    numbers = common.mobiles(0, SEND_SIZE)
    texts = personal_texts(numbers)
    with tempfile.TemporaryDirectory(prefix="every8d-bench-") as tmp, slow_sandbox(LATENCY_SECONDS) as (conn, url):
        sender = Sender(Store(Path(tmp) / "bot.db"), url)

        def shared() -> int:
            return common.new_request(sender.store, numbers)

        def personalised() -> int:
            return common.new_request(sender.store, numbers, messages=texts)

        sender.send(shared())
        shared_calls = take_calls(conn)
        sender.send(personalised())
        personal_calls = take_calls(conn)
        shared_times, personal_times = [], []
        for _ in range(repeats):
            request_id = shared()
            shared_times.append(timed(lambda request_id=request_id: sender.send(request_id)))
            request_id = personalised()
            personal_times.append(timed(lambda request_id=request_id: sender.send(request_id)))
        sender.client.close()
        sender.store.close()
    return figures(shared_calls, personal_calls, statistics.median(shared_times), statistics.median(personal_times),
                   repeats)


def figures(shared_calls: list[tuple[str, int]], personal_calls: list[tuple[str, int]], shared_s: float,
            personal_s: float, repeats: int) -> list[Figure]:
    """Calls of each send, and the personalised send's wall time against the shared text's."""
    param = [count for endpoint, count in personal_calls if endpoint == "SendParamSMS.ashx"]
    return [
        Figure(
            f"{SEND_SIZE:,} personal texts: EVERY8D calls",
            len(personal_calls),
            "calls",
            target="<= 10",
            ok=len(personal_calls) <= 10,
            baseline=len(shared_calls),
            note=f"{len(param)} SendParamSMS call(s) with {sorted(set(param))} recipients; the baseline is the same "
            f"audience with one shared text; one sendSMS per text would be {SEND_SIZE:,} calls",
        ),
        Figure(
            f"{SEND_SIZE:,} personal texts: wall time, EVERY8D answering after {LATENCY_SECONDS * 1000:.0f} ms",
            personal_s * 1000,
            "ms",
            target=f"<= {TARGET_RATIO}x shared text",
            ok=personal_s <= TARGET_RATIO * shared_s,
            baseline=shared_s * 1000,
            ratio=common.ratio(personal_s, shared_s),
            note=f"median of {repeats}; baseline: the same {SEND_SIZE:,} recipients with one shared text "
            f"({len(shared_calls)} sendSMS calls); one call per text would take about "
            f"{SEND_SIZE * LATENCY_SECONDS / 60:.0f} min of round trips alone",
        ),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    """Command line: `--quick`, `--json PATH`; prints the table and returns the figures."""
    return common.main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
