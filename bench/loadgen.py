"""HTTP load generator for the callback benchmarks, run in its own process so it never competes with the
server for the server's GIL.

Two modes, both over keep-alive `http.client` connections (one per thread), loopback only, bounded:

* `closed`: each of C connections sends its share of the paths back to back; the rate is what the
  server sustains with C requests in flight (throughput).
* `paced`: request k is due at start + k / rate (open loop); its latency is counted from when it was
  due, not from when it went out, so a server that falls behind cannot hide it (no coordinated omission).

    python bench/loadgen.py closed --port 8080 --paths paths.txt --connections 8
    python bench/loadgen.py paced --port 8080 --paths paths.txt --connections 16 --rate 300

`--paths` holds one request target (path and query) per line; each is sent once, as GET. The result is
one JSON object on stdout: sent, seconds, rate, statuses (answer code -> count; "error" for a broken
connection), and latency median/p99/max in milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 30.0


class Worker:
    """One connection: sends its requests in order, reconnecting after a broken connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self._conn: http.client.HTTPConnection | None = None

    def get(self, target: str) -> None:
        """One GET; its answer's status is counted, a broken connection as "error" (then reconnect)."""
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_SECONDS)
            self._conn.request("GET", target)
            answer = self._conn.getresponse()
            answer.read()
            self.statuses[str(answer.status)] += 1
            if answer.will_close:
                self.close()
        except (OSError, http.client.HTTPException):
            self.statuses["error"] += 1
            self.close()

    def close(self) -> None:
        """Drop the connection; the next request opens a new one."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def run_closed(port: int, targets: list[str], connections: int) -> dict[str, Any]:
    """Every connection sends its slice back to back; elapsed from the common start to the last answer."""
    workers = [Worker(port) for _ in range(connections)]
    start = threading.Barrier(connections + 1)

    def loop(worker: Worker, share: list[str]) -> None:
        start.wait()
        for target in share:
            began = time.perf_counter()
            worker.get(target)
            worker.latencies.append(time.perf_counter() - began)
        worker.close()

    threads = [
        threading.Thread(target=loop, args=(w, targets[i::connections])) for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return result(workers, time.perf_counter() - began)


def run_paced(port: int, targets: list[str], connections: int, rate: float) -> dict[str, Any]:
    """Request k is due at start + k / rate, sent by connection k % C; latency counts from the due time."""
    workers = [Worker(port) for _ in range(connections)]
    began = time.perf_counter() + 0.2  # every thread is up before the first request is due

    def loop(index: int, worker: Worker) -> None:
        for k in range(index, len(targets), connections):
            due = began + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            worker.get(targets[k])
            worker.latencies.append(time.perf_counter() - due)
        worker.close()

    threads = [threading.Thread(target=loop, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result(workers, time.perf_counter() - began)


def result(workers: list[Worker], seconds: float) -> dict[str, Any]:
    """What the parent needs, small enough for one JSON line: counts, rate and latency percentiles."""
    latencies = sorted(x for w in workers for x in w.latencies)
    statuses: Counter[str] = Counter()
    for worker in workers:
        statuses.update(worker.statuses)

    def pct(p: float) -> float:
        return latencies[max(1, math.ceil(p / 100 * len(latencies))) - 1] * 1000 if latencies else 0.0

    return {
        "sent": len(latencies),
        "seconds": seconds,
        "rate": len(latencies) / seconds if seconds > 0 else 0.0,
        "statuses": dict(statuses),
        "median_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line (see the module's docstring); prints the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("closed", "paced"))
    parser.add_argument("--port", type=int, required=True, help="loopback port of the server")
    parser.add_argument("--paths", type=Path, required=True, help="file: one request target per line")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second (paced mode)")
    args = parser.parse_args(argv)
    targets = [line for line in args.paths.read_text(encoding="ascii").splitlines() if line]
    if args.mode == "closed":
        outcome = run_closed(args.port, targets, args.connections)
    else:
        outcome = run_paced(args.port, targets, args.connections, args.rate)
    json.dump(outcome, sys.stdout)
    sys.stdout.write("\n")
    return outcome


if __name__ == "__main__":
    main()
