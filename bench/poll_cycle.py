"""EVERY8D and Slack calls per delivery-poll cycle with 10 open batches beside 0, 100 and 10,000 finished
ones, and the cycle's time: a cycle must cost what the open batches cost, never what history holds.

For each history size a fresh product (own database, sandbox and Slack stand-in) gets the finished
batches straight through storage (requests.create, batches.create, batches.complete), then 10 real
sends through SendService to the sandbox (deliveries take an hour there, so the batches stay open and
every cycle sees the same state). Every open batch is made due, one cycle runs (`Runtime.poll_once`),
and the Slack poster delivers what the cycle queued. EVERY8D calls are counted in `sandbox.calls`, Slack
calls in `standin.calls`. The first cycle announces each batch's summary (its first check); the later
ones change nothing. The time is `poll_once` alone (the EVERY8D reads and the merges), not the Slack posts.

    python bench/poll_cycle.py [--quick] [--json PATH]
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    from bench import common
except ModuleNotFoundError:  # run as `python bench/poll_cycle.py` from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import common

from bench.common import Figure
from storage import RequestState, Store
from tests.harness import Product

OPEN_BATCHES = 10
RECIPIENTS_PER_OPEN_BATCH = 3
#: How long a sandbox delivery takes: far longer than the benchmark, so nothing changes between cycles.
SANDBOX_DELIVERY_SECONDS = 3600.0


@dataclass(frozen=True)
class Cycles:
    """What each cycle cost, for one history size."""

    finished: int
    every8d_calls: list[int]
    slack_calls: list[int]
    seconds: list[float]


def add_finished_batches(store: Store, count: int) -> None:
    """`count` requests sent and completed long ago, in one transaction (set-up, not measured)."""
    long_ago = time.time() - 30 * 86400
    with store.immediate():
        for index in range(count):
            recipient = f"+8869{10 + index % 80:02d}{index:06d}"
            request_id = common.new_request(store, [recipient], now=long_ago)
            batch_id = f"DONE{index:08d}"
            store.requests.transition(
                request_id, [RequestState.APPROVED], RequestState.SENT, batch_id=batch_id, now=long_ago
            )
            store.batches.create(
                batch_id=batch_id,
                request_id=request_id,
                kind="sms",
                send_at=None,
                validity_until=long_ago + 86400,
                first_poll_at=long_ago,
                recipients=[recipient],
                initial_status=100,
                now=long_ago,
            )
            store.batches.complete(batch_id, long_ago + 60)


def open_batches(product: Product) -> None:
    """OPEN_BATCHES real sends to the sandbox through SendService, their posts delivered."""
    for group in range(OPEN_BATCHES):
        request_id = common.new_request(product.store, common.mobiles(group, RECIPIENTS_PER_OPEN_BATCH))
        product.runtime.sending.send(request_id)
    product.settle()


def run_cycles(product: Product, cycles: int) -> tuple[list[int], list[int], list[float]]:
    """Per cycle: EVERY8D calls, Slack calls (after the poster delivered), seconds in `poll_once`."""
    store, sandbox, standin = product.store, product.sandbox, product.standin
    every8d, slack, seconds = [], [], []
    for _ in range(cycles):
        for batch in store.batches.due(time.time() + 10**9, limit=1000):
            store.batches.poll_soon(batch.batch_id, 0)
        e8d_before, slack_before = len(sandbox.calls), len(standin.calls)
        began = time.perf_counter()
        product.runtime.poll_once()
        seconds.append(time.perf_counter() - began)
        product.settle()
        every8d.append(len(sandbox.calls) - e8d_before)
        slack.append(len(standin.calls) - slack_before)
    return every8d, slack, seconds


def measure_history(finished: int, cycles: int) -> Cycles:
    """The cycles of a fresh product holding `finished` finished batches beside the open ones."""
    with common.running_product(sandbox_delivery_seconds=SANDBOX_DELIVERY_SECONDS) as product:
        add_finished_batches(product.store, finished)
        open_batches(product)
        return Cycles(finished, *run_cycles(product, cycles))


def measure(quick: bool) -> list[Figure]:
    """One fresh product per history size; the first (empty) history is the baseline."""
    histories = (0, 100, 1000) if quick else (0, 100, 10_000)
    cycles = 3 if quick else 6
    results = [measure_history(finished, cycles) for finished in histories]
    return figures(results[0], results[1:])


def figures(base: Cycles, others: list[Cycles]) -> list[Figure]:
    """Call counts judged against the 0-finished product (every cycle must match), times shown beside it."""
    rows = []
    for kind, counts in (("EVERY8D", lambda c: c.every8d_calls), ("Slack", lambda c: c.slack_calls)):
        for other in others:
            first, base_first = counts(other)[0], counts(base)[0]
            rows.append(
                Figure(
                    f"poll cycle {kind} calls, {OPEN_BATCHES} open + {other.finished:,} finished",
                    first,
                    "calls",
                    target=f"= with 0 finished ({base_first})",
                    ok=counts(other) == counts(base),
                    baseline=base_first,
                    ratio=common.ratio(first, base_first),
                    note=f"per cycle {counts(other)} vs {counts(base)} with 0 finished (first cycle shown)",
                )
            )
    base_ms = statistics.median(base.seconds) * 1000
    for other in others:
        median_ms = statistics.median(other.seconds) * 1000
        rows.append(
            Figure(
                f"poll cycle time, {OPEN_BATCHES} open + {other.finished:,} finished",
                median_ms,
                "ms",
                baseline=base_ms,
                ratio=common.ratio(median_ms, base_ms),
                note=f"median of {len(other.seconds)} cycles; baseline: the same with 0 finished",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> list[Figure]:
    """Command line: `--quick`, `--json PATH`; prints the table and returns the figures."""
    return common.main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
