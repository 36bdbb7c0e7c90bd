"""Run every benchmark and print ONE table: each figure, its baseline measured in the same run, the ratio,
the target and whether it was met. The table is also written as JSON (bench/results.json; with --quick,
bench/results-quick.json, so a smoke run never overwrites the full figures).

Each benchmark runs in its own process (`python bench/<name>.py --json ...`), so threads and memory left
by one cannot slow the next. Exit status: 0 when every benchmark ran (missed targets are figures, shown
as NO in the table), 1 when one crashed or timed out.

    python bench/run_all.py [--quick] [--only NAME ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

try:
    from bench import common
except ModuleNotFoundError:  # run as `python bench/run_all.py` from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import common

from bench.common import Figure

HERE = Path(__file__).resolve().parent
#: Longest one benchmark may take before it is stopped and reported as failed.
TIMEOUT_SECONDS = {False: 540.0, True: 120.0}


@dataclass(frozen=True)
class Benchmark:
    name: str
    full_args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)


BENCHMARKS = (
    Benchmark("client_overhead", ("--calls", "100"), ("--calls", "20")),
    Benchmark("ack_time"),
    Benchmark("callback_rate"),
    Benchmark("poll_cycle"),
    Benchmark("big_send"),
    Benchmark("personalised_send"),
    Benchmark("reply_burst"),
    Benchmark("checks_per_submission"),
)


def client_overhead_figures(data: dict) -> list[Figure]:
    """bench/client_overhead.py writes its own JSON shape (one entry per operation): make it figures."""
    return [
        Figure(
            f"EVERY8D client per call: {operation}, median",
            row["client_median_ms"],
            "ms",
            baseline=row["bare_median_ms"],
            ratio=row["ratio_median"],
            note=f"{row['calls']} calls; p95 {row['client_p95_ms']:.2f} ms vs {row['bare_p95_ms']:.2f} ms "
            "bare (requests.post on one Session); no target was set for this figure",
        )
        for operation, row in data.items()
    ]


def read_figures(name: str, path: Path) -> list[Figure]:
    """The figures a benchmark wrote with --json."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if name == "client_overhead":
        return client_overhead_figures(data)
    return [Figure.from_json(item) for item in data["figures"]]


def run(benchmark: Benchmark, quick: bool) -> tuple[list[Figure], float, str]:
    """Run one benchmark in a child process; (its figures, seconds, error text or "")."""
    with tempfile.TemporaryDirectory(prefix="every8d-bench-") as tmp:
        out = Path(tmp) / "figures.json"
        args = benchmark.quick_args if quick else benchmark.full_args
        command = [sys.executable, str(HERE / f"{benchmark.name}.py"), *args, "--json", str(out)]
        began = time.perf_counter()
        try:
            finished = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS[quick])
        except subprocess.TimeoutExpired:
            return [], time.perf_counter() - began, f"stopped after {TIMEOUT_SECONDS[quick]:.0f} s"
        seconds = time.perf_counter() - began
        if finished.returncode != 0 or not out.exists():
            tail = (finished.stderr or finished.stdout).strip().splitlines()[-5:]
            return [], seconds, " / ".join(tail) or f"exit status {finished.returncode}"
        return read_figures(benchmark.name, out), seconds, ""


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks, print the table, write the JSON; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: every benchmark in seconds")
    parser.add_argument(
        "--only", action="append", choices=[b.name for b in BENCHMARKS], help="run only these"
    )
    parser.add_argument("--json", type=Path, help="where to write the figures (default bench/results.json)")
    args = parser.parse_args(argv)
    selected = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    figures: list[Figure] = []
    modules: dict[str, dict] = {}
    began = time.perf_counter()
    for benchmark in selected:
        print(f"running {benchmark.name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        found, seconds, error = run(benchmark, args.quick)
        modules[benchmark.name] = {"seconds": round(seconds, 1), "error": error}
        if error:
            found = [
                Figure(f"{benchmark.name}: did not finish", 0.0, "", target="runs", ok=False, note=error)
            ]
        figures.extend(found)
        print(f"  {benchmark.name}: {seconds:.1f} s{' FAILED: ' + error if error else ''}", file=sys.stderr)
    total = time.perf_counter() - began
    print(common.render_table(figures))
    judged = [f for f in figures if f.ok is not None]
    print(
        f"\n{sum(bool(f.ok) for f in judged)} of {len(judged)} targets met; "
        f"{len(figures) - len(judged)} figures informational; {total:.0f} s in all"
        f"{' (quick sizes)' if args.quick else ''}"
    )
    path = args.json or HERE / ("results-quick.json" if args.quick else "results.json")
    common.write_json(path, figures, quick=args.quick, seconds=round(total, 1), modules=modules)
    print(f"written to {path}")
    return 1 if any(m["error"] for m in modules.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
