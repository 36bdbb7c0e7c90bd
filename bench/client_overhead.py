"""What the EVERY8D client costs per call, beyond the HTTP exchange itself.

Runs an in-process sandbox and times N calls of `get_credit` and of a full 1,000-record status page,
once through `Every8dClient` and once as bare `requests.post` calls on one keep-alive Session (same form,
same server, same run). The ratio of the medians says how much the client's encoding, checks, parsing into
typed records and logging add; the server's own time is in both columns, so the ratio is conservative.

    python bench/client_overhead.py [--calls 200] [--records 1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import requests

try:
    from every8d.client import FORM_CONTENT_TYPE, Every8dClient
    from every8d.sandbox import Sandbox
except ModuleNotFoundError:  # run from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from every8d.client import FORM_CONTENT_TYPE, Every8dClient
    from every8d.sandbox import Sandbox

WARMUP = 10
#: A loopback answer slower than this means the server stalls (e.g. Nagle plus delayed ACK, about 40 ms),
#: which hides the client's overhead in the ratio.
STALL_MS = 20.0


def timings(call: Callable[[], object], count: int) -> list[float]:
    """Seconds per call, after a few untimed warm-up calls (connection set up, caches filled)."""
    for _ in range(WARMUP):
        call()
    measured = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        measured.append(time.perf_counter() - started)
    return measured


def summary(samples: list[float]) -> dict[str, float]:
    """Median and 95th percentile, in milliseconds."""
    p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]
    return {"median_ms": statistics.median(samples) * 1000, "p95_ms": p95 * 1000}


def measure(calls: int, records: int) -> dict[str, dict[str, float]]:
    """Figures for both operations: bare and client median/p95 per call, and client/bare ratios."""
    with Sandbox(credit=float(records) * 10, background=False) as sandbox:
        client = Every8dClient(sandbox.base_url, sandbox.uid, sandbox.pwd, retries=0)
        batch_id = client.send_sms(message="bench", recipients=[f"09{n:08d}" for n in range(records)]).batch_id
        session = requests.Session()

        def bare(endpoint: str, **fields: str) -> Callable[[], object]:
            url = sandbox.base_url + endpoint
            body = urlencode({"UID": sandbox.uid, "PWD": sandbox.pwd, **fields}).encode("ascii")
            headers = {"Content-Type": FORM_CONTENT_TYPE}
            return lambda: session.post(url, data=body, headers=headers, timeout=(5, 15)).content

        operations: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
            "get_credit": (bare("getCredit.ashx"), client.get_credit),
            f"status_page ({records} rows)": (
                bare("getDeliveryStatus.ashx", BID=batch_id, PNO="1"),
                lambda: client.delivery_status_page(batch_id, 1),
            ),
        }
        results = {}
        for name, (bare_call, client_call) in operations.items():
            bare_figures = summary(timings(bare_call, calls))
            client_figures = summary(timings(client_call, calls))
            results[name] = {
                "calls": calls,
                "bare_median_ms": bare_figures["median_ms"],
                "bare_p95_ms": bare_figures["p95_ms"],
                "client_median_ms": client_figures["median_ms"],
                "client_p95_ms": client_figures["p95_ms"],
                "ratio_median": client_figures["median_ms"] / bare_figures["median_ms"],
                "ratio_p95": client_figures["p95_ms"] / bare_figures["p95_ms"],
            }
        client.close()
        session.close()
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    header = f"{'operation':<26}{'bare med':>10}{'bare p95':>10}{'client med':>12}{'client p95':>12}{'ratio':>8}"
    lines = [header, "-" * len(header)]
    for name, row in results.items():
        lines.append(
            f"{name:<26}{row['bare_median_ms']:>8.2f}ms{row['bare_p95_ms']:>8.2f}ms"
            f"{row['client_median_ms']:>10.2f}ms{row['client_p95_ms']:>10.2f}ms{row['ratio_median']:>7.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="timed calls per operation and variant")
    parser.add_argument("--records", type=int, default=1000, help="records in the status page (1000 = full page)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    results = measure(args.calls, args.records)
    print(f"EVERY8D client overhead vs bare requests.post, {args.calls} calls each (in-process sandbox)")
    print(table(results))
    if results["get_credit"]["bare_median_ms"] > STALL_MS:
        print(
            f"warning: a bare getCredit takes over {STALL_MS:.0f} ms on loopback; the server stalls "
            "(Nagle/delayed ACK?), so these ratios understate the client's overhead"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
