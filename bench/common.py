"""What every benchmark shares: the `Figure` each one reports (value, baseline measured in the same run,
ratio, target, met or not), the table they are printed in, percentiles, the command line (`--quick`,
`--json`), the real product on loopback, and the trivial apps that serve as baselines on the same
server stack (waitress, same thread count), so a ratio compares the product with the stack's own floor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.wsgi import build_wsgi_app, serve_in_thread
from services.parts import DEFAULT_CHUNK_SIZE, plan_parts
from slackstandin import SlackStandIn
from storage import RequestState, Store
from tests.harness import SIGNING_SECRET, Product, make_config

#: Worker threads of every server in the benchmarks: as tests/harness.py serves the product (and the
#: default of Config.http_threads), so product and baselines share one server configuration.
HTTP_THREADS = 8
#: Units whose values are whole counts (printed without decimals).
COUNT_UNITS = frozenset({"calls", "answers", "posts", "replies", "rows", "requests"})

__all__ = [
    "HTTP_THREADS",
    "SIGNING_SECRET",
    "Figure",
    "bare_wsgi_app",
    "main",
    "mobiles",
    "new_request",
    "percentile",
    "ratio",
    "render_table",
    "running_product",
    "serve",
    "show",
    "trivial_bolt_app",
    "write_json",
]


@dataclass(frozen=True)
class Figure:
    """One measured figure. `ok` is None when no target was set (the figure is informational)."""

    name: str
    value: float
    unit: str
    target: str = "info"
    ok: bool | None = None
    baseline: float | None = None
    ratio: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """A plain dict for results.json (and for run_all, which reads each benchmark's file back)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        """The figure `to_json` wrote; keys it does not know are ignored."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def ratio(value: float, baseline: float) -> float | None:
    """value / baseline, or None when the baseline is zero (nothing to compare with)."""
    return value / baseline if baseline else None


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least `pct` % of the samples at or below it."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def show(value: float | None, unit: str = "") -> str:
    """A number for people: counts whole, other values with three significant digits, then the unit."""
    if value is None:
        return "—"
    if unit in COUNT_UNITS or (value == int(value) and abs(value) >= 1000):
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    if value == 1 and unit in COUNT_UNITS:
        unit = unit[:-1]  # "1 call", not "1 calls"
    return f"{text} {unit}".strip()


def render_table(figures: Iterable[Figure]) -> str:
    """The one table: name | value | baseline | ratio | target | ok, then each figure's note below it."""
    figures = list(figures)
    rows = [("name", "value", "baseline", "ratio", "target", "ok")]
    for f in figures:
        ok = "info" if f.ok is None else ("yes" if f.ok else "NO")
        rows.append(
            (
                f.name,
                show(f.value, f.unit),
                show(f.baseline, f.unit),
                "—" if f.ratio is None else f"{f.ratio:.2f}x",
                f.target,
                ok,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    notes = [f"  [{f.name}] {f.note}" for f in figures if f.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def environment() -> dict[str, Any]:
    """Where the figures were measured: they only compare within one run on one machine."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def write_json(path: Path, figures: Iterable[Figure], **extra: Any) -> None:
    """The figures with where and when they were measured, for the lead's README table and later runs."""
    payload = {**environment(), **extra, "figures": [f.to_json() for f in figures]}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(doc: str, measure: Callable[[bool], list[Figure]], argv: list[str] | None = None) -> list[Figure]:
    """The command line every benchmark module shares: `--quick` (tiny sizes) and `--json PATH`."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with quiet_logs():
        figures = measure(args.quick)
    print(render_table(figures))
    print(f"({time.perf_counter() - started:.1f} s{', quick sizes' if args.quick else ''})")
    if args.json:
        write_json(args.json, figures, quick=args.quick)
    return figures


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Only errors reach the terminal while measuring: the product's INFO lines (one per send, per
    callback) would drown the table and cost time inside the measurements. Levels are restored after,
    so a test run that calls a benchmark keeps its own logging."""
    names = (
        "",
        "every8d_bot",
        "every8d",
        "slackstandin",
        "waitress",
        "apscheduler",
        "slack_bolt",
        "slack_sdk",
    )
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# ----- servers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_product(**overrides: Any) -> Iterator[Product]:
    """The real product (Runtime: Bolt app, services, store, in-process sandbox) served by waitress on
    loopback, with its own Slack stand-in and a database in a temporary directory. Quiet hours are off
    (make_config's default), so a run at night measures the same sends as one by day."""
    with tempfile.TemporaryDirectory(prefix="every8d-bench-") as tmp, SlackStandIn() as standin:
        product = Product(make_config(standin, Path(tmp) / "bot.db", **overrides), standin)
        try:
            yield product
        finally:
            if product.sandbox is not None:
                product.sandbox.faults.clear()  # sends still queued behind a 5 s latency finish at once
            product.stop()


@contextlib.contextmanager
def serve(application: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app exactly as the product is served (waitress, `HTTP_THREADS`); yields its base URL."""
    server, port = serve_in_thread(application, host="127.0.0.1", port=0, threads=HTTP_THREADS)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def trivial_bolt_app(standin: SlackStandIn) -> Any:
    """The ack floor: Bolt, same signing checks, same routing, listeners that only ack. Wrapped like the
    product (`build_wsgi_app`), so the only difference measured is the product's own work."""
    app = App(
        client=WebClient(token=standin.bot_token, base_url=standin.api_url),
        signing_secret=SIGNING_SECRET,
        token_verification_enabled=False,
        process_before_response=False,
    )

    @app.command("/sms")
    def command(ack: Any) -> None:
        ack()

    @app.action("approve_request")
    def action(ack: Any) -> None:
        ack()

    return build_wsgi_app(app, None)


def bare_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The HTTP floor: answers every request 200 "OK" without reading it."""
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "2")])
    return [b"OK"]


# ----- data set up straight through storage -------------------------------------------------------


def new_request(
    store: Store, recipients: Sequence[str], *, approved: bool = True, now: float | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE, messages: dict[str, str] | None = None, per_recipient: bool = True,
) -> int:
    """A one-line SMS request for `recipients` (E.164), stored as the request workflow would store it (in
    parts of `chunk_size`); approved unless told otherwise. `messages` ({e164: text}) makes it personalised
    (SendParamSMS parts unless `per_recipient` is False). Setting up through storage keeps the set-up
    out of the timings."""
    now = now or time.time()
    fields = {
        "now": now,
        "requester": "U_REQUESTER",
        "origin_channel": "C_GENERAL",
        "kind": "sms",
        "subject": "",
        "message": "bench 測試",
        "validity_minutes": 1440,
        "recipient_count": len(recipients),
        "taiwan_count": len(recipients),
        "international_count": 0,
        "chars": 7,
        "parts": 1,
        "points": float(len(recipients)),
        "approval_channel": "C_APPROVALS",
        "sandbox": 1,
    }
    ordered, parts = plan_parts(recipients, chunk_size=chunk_size, message=str(fields["message"]),
                                price=lambda _text, numbers: float(len(numbers)), messages=messages,
                                per_recipient=per_recipient)
    request_id = store.requests.create(fields, ordered, parts=parts, messages=messages)
    if approved:
        store.requests.transition(
            request_id,
            [RequestState.PENDING_APPROVAL],
            RequestState.APPROVED,
            decided_by="U_APPROVER",
            decided_at=now,
            now=now,
        )
    return request_id


def mobiles(group: int, count: int) -> list[str]:
    """`count` distinct Taiwan mobile numbers in E.164 (+886 9gg nnnnnn), distinct across `group`s (0-89)."""
    if not 0 <= group < 90 or count > 1_000_000:
        raise ValueError("group must be 0-89 and count at most 1,000,000")
    return [f"+8869{group + 10:02d}{i:06d}" for i in range(count)]
