"""A burst of 1,000 inbound SMS replies while Slack rate-limits one call in five: time until every reply is
in Slack, nothing dropped, order kept in each thread.

The product runs with its Slack poster thread started, as in production. Ten sent requests (their cards
and threads already in Slack) each get 100 replies pushed as EVERY8D callbacks (STATUS 999), one
connection per thread sending its replies in order, all ten at once. Each reply becomes two posts: in
its request's thread and in the replies channel. The clock stops when the outbox is empty.

The stand-in answers every fifth Web API call with HTTP 429 and `Retry-After: 0` (the smallest it
allows, to keep the run short); slack_sdk's RateLimitErrorRetryHandler still waits 0-1 s of jitter
before each retry, so the poster spends about half a second per 429. The baseline is the same burst on
ten other requests with no rate limit, in the same run.

    python bench/reply_burst.py [--quick] [--json PATH]
"""

from __future__ import annotations

import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

try:
    from bench import common
except ModuleNotFoundError:  # run as `python bench/reply_burst.py` from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import common

from bench.common import Figure
from every8d.sandbox.callbacks import callback_query
from every8d.sandbox.engine import CallbackEvent
from tests.harness import Product

RATE_LIMIT_EVERY = 5
RETRY_AFTER_SECONDS = 0
RECIPIENTS = 3
DELIVERY_DEADLINE_SECONDS = 900.0
#: Reply texts carry "r<thread>-<sequence>", so each post can be traced back to its reply.
TAG = re.compile(r"\br(\d{2})-(\d{4})\b")
#: How long a sandbox delivery takes: longer than the run, so no status report mixes in.
SANDBOX_DELIVERY_SECONDS = 3600.0


@dataclass(frozen=True)
class Thread:
    """One sent request whose thread receives replies."""

    index: int
    batch_id: str
    card_ts: str
    recipients: list[str]


@dataclass(frozen=True)
class Burst:
    """What one burst delivered, read back from the Slack stand-in."""

    replies: int
    seconds: float
    dropped: int
    duplicated: int
    out_of_order: int
    rate_limited: int
    refused_callbacks: int


def open_threads(product: Product, first: int, count: int) -> list[Thread]:
    """`count` requests sent to the sandbox, their cards, send results and summaries posted."""
    threads = []
    for index in range(first, first + count):
        recipients = common.mobiles(index, RECIPIENTS)
        request_id = common.new_request(product.store, recipients)
        product.runtime.sending.send(request_id)
        product.settle()
        request = product.store.requests.get(request_id)
        if request is None or not request.batch_id or not request.approval_ts:
            raise RuntimeError(f"request {request_id} was not sent and posted")
        threads.append(Thread(index, request.batch_id, request.approval_ts, recipients))
    return threads


def push_replies(product: Product, thread: Thread, count: int) -> int:
    """Push `count` replies to one thread's batch, in order, on one keep-alive connection; returns how
    many callbacks were not answered 200."""
    refused = 0
    with requests.Session() as session:
        for sequence in range(count):
            event = CallbackEvent(
                batch_id=thread.batch_id,
                mobile=thread.recipients[sequence % RECIPIENTS],
                at=time.time(),
                status=999,
                text=f"r{thread.index:02d}-{sequence:04d} 收到，謝謝",
                record_no=sequence + 1,
                subject="",
                name="",
            )
            answer = session.get(f"{product.callback_url}?{callback_query(event)}", timeout=30)
            refused += answer.status_code != 200
    return refused


def wait_for_outbox(product: Product) -> None:
    """Until the poster has delivered every post (bounded, so a stuck poster shows as dropped replies)."""
    deadline = time.monotonic() + DELIVERY_DEADLINE_SECONDS
    while product.store.outbox.pending_count() and time.monotonic() < deadline:
        time.sleep(0.02)


def burst(product: Product, threads: list[Thread], per_thread: int) -> Burst:
    """All threads' replies at once; then what reached Slack, checked post by post."""
    calls_before = len(product.standin.calls)
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(threads)) as pool:
        refused = sum(pool.map(lambda thread: push_replies(product, thread, per_thread), threads))
    wait_for_outbox(product)
    seconds = time.perf_counter() - began
    calls = product.standin.calls[calls_before:]
    rate_limited = sum(call.status == 429 for call in calls)
    wanted = {t.index: list(range(per_thread)) for t in threads}
    in_threads = {t.index: tags(product.standin.thread("C_APPROVALS", t.card_ts), t.index) for t in threads}
    in_channel = tags(product.standin.messages("C_REPLIES"), None)
    dropped = duplicated = out_of_order = 0
    for index, expected in wanted.items():
        for seen in (in_threads[index], [s for i, s in in_channel if i == index]):
            dropped += len(set(expected) - set(seen))
            duplicated += len(seen) - len(set(seen))
            out_of_order += sum(1 for a, b in zip(seen, seen[1:], strict=False) if b < a)
    return Burst(len(threads) * per_thread, seconds, dropped, duplicated, out_of_order, rate_limited, refused)


def tags(messages: list[dict], thread_index: int | None) -> list:
    """Reply tags in post order: sequences of one thread, or (thread, sequence) pairs for the channel."""
    found = []
    for message in messages:
        match = TAG.search(message.get("text", ""))
        if match is None:
            continue
        index, sequence = int(match.group(1)), int(match.group(2))
        if thread_index is None:
            found.append((index, sequence))
        elif index == thread_index:
            found.append(sequence)
    return found


def measure(quick: bool) -> list[Figure]:
    """Two bursts in one product: without rate limits (baseline), then with one call in five refused."""
    thread_count, per_thread = (2, 10) if quick else (10, 100)
    with common.running_product(sandbox_delivery_seconds=SANDBOX_DELIVERY_SECONDS) as product:
        calm_threads = open_threads(product, 0, thread_count)
        limited_threads = open_threads(product, thread_count, thread_count)
        product.runtime.poster.start()
        calm = burst(product, calm_threads, per_thread)
        product.standin.faults.rate_limit_every(RATE_LIMIT_EVERY, retry_after=RETRY_AFTER_SECONDS)
        limited = burst(product, limited_threads, per_thread)
        product.standin.faults.clear()
    return figures(calm, limited, thread_count)


def figures(calm: Burst, limited: Burst, thread_count: int) -> list[Figure]:
    """Delivery time (beside the calm burst's), dropped replies and out-of-order posts (targets: 0)."""
    name = f"{limited.replies:,}-reply burst, 1 Slack call in {RATE_LIMIT_EVERY} answered 429"
    return [
        Figure(
            f"{name}: time to deliver all",
            limited.seconds,
            "s",
            baseline=calm.seconds,
            ratio=common.ratio(limited.seconds, calm.seconds),
            note=f"{2 * limited.replies:,} posts over {thread_count} threads + the replies channel; "
            f"{limited.rate_limited} answers were 429 (Retry-After {RETRY_AFTER_SECONDS}); baseline: "
            f"the same burst without rate limits ({calm.rate_limited} 429s)",
        ),
        Figure(
            f"{name}: replies dropped",
            limited.dropped + limited.refused_callbacks,
            "replies",
            target="0",
            ok=limited.dropped == 0 and limited.refused_callbacks == 0 and calm.dropped == 0,
            baseline=calm.dropped + calm.refused_callbacks,
            note=f"posts missing in a thread or the channel; {limited.refused_callbacks} callbacks not "
            f"answered 200; {limited.duplicated} posted twice",
        ),
        Figure(
            f"{name}: posts out of order",
            limited.out_of_order,
            "posts",
            target="0",
            ok=limited.out_of_order == 0 and calm.out_of_order == 0,
            baseline=calm.out_of_order,
            note="per thread, and per thread within the replies channel",
        ),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    """Command line: `--quick`, `--json PATH`; prints the table and returns the figures."""
    return common.main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
