"""EVERY8D push callbacks: how many per second the product accepts durably, and whether it holds 300/s.

Each callback is a real status report: a final STATUS (mostly 100, some 101-107) for a different
recipient of a known 10,000-recipient batch, so every one is a forward merge committed to SQLite
before the 200 goes out, then a completion check and a summary update queued for Slack. The Slack
poster runs meanwhile, as in production.

1. Throughput: C keep-alive connections send back to back (closed loop). Baseline: a bare WSGI app
   answering "OK" on the same server stack (waitress, 8 threads), same paths, same load generator. The
   product answers pushes in the server's loop thread (bot/push_lane.py); a bare app served that way too
   is shown beside it (info), the floor of that path.
2. Sustained: 300 callbacks/s for 60 s (open loop; 5 s with --quick); latency counted from when each
   request was due. Afterwards every 200 is checked against the database: each must have changed its row.

The load generator (bench/loadgen.py) runs in its own process so it does not share the server's GIL; it
still shares the machine's cores, so its own CPU time per request is shown in the notes.

    python bench/callback_rate.py [--quick] [--json PATH]
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:
    from bench import common
except ModuleNotFoundError:  # run as `python bench/callback_rate.py` from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import common

from bench.common import Figure
from bot.push_lane import PushLane
from bot.wsgi import serve_in_thread, stop_server
from every8d.sandbox.callbacks import callback_query
from every8d.sandbox.engine import CallbackEvent
from services.sending import request_tag
from storage import RequestState, Store

BATCH_SIZE = 10_000
SMALL_BATCH = 1_000
CONNECTIONS = 8
PACED_CONNECTIONS = 16
SUSTAINED_RATE = 300.0
TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0
#: Final statuses the reports cycle through: mostly delivered, some of each failure.
STATUSES = (100, 100, 100, 101, 100, 100, 102, 100, 103, 100, 100, 104, 100, 105, 100, 107)
LOADGEN = Path(__file__).resolve().with_name("loadgen.py")


def prepare_batch(store: Store, group: int, size: int) -> tuple[str, int, list[str]]:
    """A sent batch of `size` recipients, every one still pending (status 0), set up through storage."""
    now = time.time()
    recipients = common.mobiles(group, size)
    request_id = common.new_request(store, recipients, now=now)
    batch_id = f"BENCH{group:04d}"
    store.batches.create(
        batch_id=batch_id,
        request_id=request_id,
        kind="sms",
        send_at=None,
        validity_until=now + 86400,
        first_poll_at=now + 86400,
        recipients=recipients,
        initial_status=0,
        now=now,
    )
    store.requests.transition(
        request_id, [RequestState.APPROVED], RequestState.SENT, batch_id=batch_id, now=now
    )
    return batch_id, request_id, recipients


def callback_paths(
    prefix: str, batches: list[tuple[str, int, list[str]]], first: int, count: int
) -> list[str]:
    """Request targets for reports first..first+count-1: report k goes to batch k % B, recipient k // B,
    so every report is for a recipient that has none yet."""
    now = time.time()
    paths = []
    for k in range(first, first + count):
        batch_id, request_id, recipients = batches[k % len(batches)]
        event = CallbackEvent(
            batch_id=batch_id,
            mobile=recipients[k // len(batches)],
            at=now,
            status=STATUSES[k % len(STATUSES)],
            text="",
            record_no=k + 1,
            subject=request_tag(request_id),
            name="",
        )
        paths.append(f"{prefix}?{callback_query(event)}")
    return paths


def load(mode: str, base_url: str, paths: list[str], connections: int, rate: float = 0.0) -> dict[str, Any]:
    """Run bench/loadgen.py against `base_url` in a child process; its JSON result."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="ascii", delete=False) as handle:
        handle.write("\n".join(paths))
    port = str(urlsplit(base_url).port)
    command = [
        sys.executable,
        str(LOADGEN),
        mode,
        "--port",
        port,
        "--paths",
        handle.name,
        "--connections",
        str(connections),
        "--rate",
        str(rate),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        finished = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    finally:
        Path(handle.name).unlink()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    outcome = json.loads(finished.stdout)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)  # with its start-up
    outcome["loadgen_cpu_ms"] = 1000 * cpu / max(1, outcome["sent"])
    return outcome


class _BareLane(PushLane):
    """Every request served by the loop thread, no database: the floor of the product's push path."""

    def wants(self, request: Any) -> bool:
        return not request.error

    @contextlib.contextmanager
    def turn(self, wait: float) -> Any:
        yield True


@contextlib.contextmanager
def serve_in_loop(application: Any) -> Any:
    """`application` served as the product serves pushes (waitress, its loop thread answering)."""
    server, port = serve_in_thread(application, host="127.0.0.1", port=0, threads=common.HTTP_THREADS,
                                   lane=_BareLane())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(server)


def stored_reports(store: Store) -> int:
    """Delivery rows a callback moved forward (each report in this benchmark changes exactly one)."""
    rows = store.db.query("SELECT COUNT(*) AS n FROM deliveries WHERE source = 'callback'")
    return int(next(iter(rows))["n"])


def measure(quick: bool) -> list[Figure]:
    """Throughput against the bare app, the sustained run, then the durability check."""
    throughput_count = 400 if quick else 6000
    small_count = 200 if quick else SMALL_BATCH
    sustained_seconds = 5 if quick else 60
    sustained_count = int(SUSTAINED_RATE * sustained_seconds)
    with (
        common.running_product() as product,
        common.serve(common.bare_wsgi_app) as bare_url,
        serve_in_loop(common.bare_wsgi_app) as bare_loop_url,
    ):
        product.runtime.poster.start()
        store = product.store
        count = math.ceil((throughput_count + sustained_count) / BATCH_SIZE)
        batches = [prepare_batch(store, group, BATCH_SIZE) for group in range(count)]
        small = [prepare_batch(store, count, SMALL_BATCH)]
        prefix = urlsplit(product.callback_url).path
        paths = callback_paths(prefix, batches, 0, throughput_count)
        load("closed", bare_url, paths[:200], CONNECTIONS)  # warm up: threads, connections, caches
        bare = load(
            "closed", bare_url, paths * 3, CONNECTIONS
        )  # it ignores the query: more samples, same cost each
        bare_loop = load("closed", bare_loop_url, paths * 3, CONNECTIONS)
        lane = product.server.task_dispatcher.lane
        served = (lane.served_here, lane.handed_over)
        real = load("closed", product.url, paths, CONNECTIONS)
        served = (lane.served_here - served[0], lane.handed_over - served[1])
        real_small = load("closed", product.url, callback_paths(prefix, small, 0, small_count), CONNECTIONS)
        paced = load(
            "paced",
            product.url,
            callback_paths(prefix, batches, throughput_count, sustained_count),
            PACED_CONNECTIONS,
            SUSTAINED_RATE,
        )
        answered = sum(result["statuses"].get("200", 0) for result in (real, real_small, paced))
        lost = answered - stored_reports(store)
    return figures(bare, real, real_small, paced, lost, sustained_seconds, bare_loop, served)


def figures(
    bare: dict[str, Any],
    real: dict[str, Any],
    small: dict[str, Any],
    paced: dict[str, Any],
    lost: int,
    seconds: int,
    bare_loop: dict[str, Any] | None = None,
    served: tuple[int, int] = (0, 0),
) -> list[Figure]:
    """Rates against the bare app, the sustained run against its targets, and the durability check."""

    def not_ok(result: dict[str, Any]) -> int:
        return sum(n for status, n in result["statuses"].items() if status != "200")

    window = f"{SUSTAINED_RATE:.0f}/s for {seconds} s"
    return [
        Figure(
            f"callbacks accepted durably per second ({BATCH_SIZE:,}-recipient batch)",
            real["rate"],
            "/s",
            target=f">= {TARGET_RATIO}x bare",
            ok=real["rate"] >= TARGET_RATIO * bare["rate"] and not not_ok(real),
            baseline=bare["rate"],
            ratio=common.ratio(real["rate"], bare["rate"]),
            note=f"{real['sent']} callbacks over {CONNECTIONS} keep-alive connections; product median "
            f"{real['median_ms']:.1f} ms, bare {bare['median_ms']:.1f} ms; answers {real['statuses']}; "
            f"{served[0]} answered by the server's loop thread, {served[1]} by its workers; load generator "
            f"CPU {real['loadgen_cpu_ms']:.3f} ms per request (bare run: {bare['loadgen_cpu_ms']:.3f} ms)",
        ),
        Figure(
            f"callbacks accepted durably per second ({SMALL_BATCH:,}-recipient batch)",
            small["rate"],
            "/s",
            baseline=bare["rate"],
            ratio=common.ratio(small["rate"], bare["rate"]),
            note=f"{small['sent']} callbacks; the same work on a smaller batch shows what grows with "
            "batch size",
        ),
        *(
            [
                Figure(
                    "callbacks accepted durably per second vs bare in the loop thread",
                    real["rate"],
                    "/s",
                    baseline=bare_loop["rate"],
                    ratio=common.ratio(real["rate"], bare_loop["rate"]),
                    note="the same product run against the floor of its push path (a bare app served by "
                    f"waitress's loop thread, as bot/push_lane.py serves pushes); bare median "
                    f"{bare_loop['median_ms']:.1f} ms; load generator CPU {bare_loop['loadgen_cpu_ms']:.3f} ms "
                    "per request",
                )
            ]
            if bare_loop
            else []
        ),
        Figure(
            f"callbacks {window}: p99 latency",
            paced["p99_ms"],
            "ms",
            target=f"< {TARGET_P99_MS:.0f} ms",
            ok=paced["p99_ms"] < TARGET_P99_MS,
            note=f"from when each was due; median {paced['median_ms']:.1f} ms, max {paced['max_ms']:.1f} ms",
        ),
        Figure(
            f"callbacks {window}: answers other than 200",
            not_ok(paced),
            "answers",
            target="0",
            ok=not_ok(paced) == 0,
            note=f"answers {paced['statuses']}",
        ),
        Figure(
            f"callbacks {window}: achieved rate",
            paced["rate"],
            "/s",
            target=f">= {0.99 * SUSTAINED_RATE:.0f} /s",
            ok=paced["rate"] >= 0.99 * SUSTAINED_RATE,
            note=f"{paced['sent']} sent in {paced['seconds']:.1f} s",
        ),
        Figure(
            "callbacks answered 200 but not stored",
            lost,
            "answers",
            target="0",
            ok=lost == 0,
            note="every report changes one delivery row; rows changed by callbacks vs 200 answers",
        ),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    """Command line: `--quick`, `--json PATH`; prints the table and returns the figures."""
    return common.main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
