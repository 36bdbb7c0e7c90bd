"""Ack time of `/sms send 0912345678 測試` and of an Approve click while EVERY8D answers only after 5 s.

Slack gives an app 3 seconds to ack; the product aims at a p99 under 100 ms even when EVERY8D is slow,
because nothing on the ack path may wait for EVERY8D. The real product (Runtime served by waitress,
Slack poster and scheduler running, sandbox with `faults.latency = 5.0`) gets signed requests shaped as
Slack's, one at a time, each on a new connection as Slack opens them. The baseline is the same request,
in the same loop, to a trivial Bolt app that only acks, on the same server stack (waitress, 8 threads).

N slash commands create N requests; each is then approved once (the real path: a decision, the card
queued, a send handed to the background, where it waits 5 s for the sandbox), then clicked once more
(already decided: the clicker is told so).

    python bench/ack_time.py [--quick] [--json PATH]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

try:
    from bench import common
except ModuleNotFoundError:  # run as `python bench/ack_time.py` from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import common

from bench.common import SIGNING_SECRET, Figure, percentile
from slackstandin import SlackStandIn, payloads
from slackstandin.signing import post_signed
from storage import RequestState

SANDBOX_LATENCY_SECONDS = 5.0
TARGET_P99_MS = 100.0
COMMAND_TEXT = "send 0912345678 測試"
WARMUP = 5


class Series:
    """Ack times of one kind of request, against the product and against the baseline app."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.product: list[float] = []
        self.baseline: list[float] = []
        self.bad_answers = 0

    def figures(self, context: str = "") -> list[Figure]:
        """Median (informational) and p99 (against the target), each beside the baseline's."""
        median, base_median = statistics.median(self.product), statistics.median(self.baseline)
        p99, base_p99 = percentile(self.product, 99), percentile(self.baseline, 99)
        note = f"{len(self.product)} requests, max {max(self.product):.1f} ms"
        if self.bad_answers:
            note += f"; {self.bad_answers} answers were not 200"
        if context:
            note += f"; {context}"
        return [
            Figure(
                f"ack {self.name}, median",
                median,
                "ms",
                baseline=base_median,
                ratio=common.ratio(median, base_median),
            ),
            Figure(
                f"ack {self.name}, p99",
                p99,
                "ms",
                target=f"< {TARGET_P99_MS:.0f} ms (Slack: 3,000)",
                ok=p99 < TARGET_P99_MS and not self.bad_answers,
                baseline=base_p99,
                ratio=common.ratio(p99, base_p99),
                note=note,
            ),
        ]


def post(url: str, body: str, content_type: str) -> tuple[float, int]:
    """POST a signed body; (milliseconds until the answer was read, HTTP status)."""
    began = time.perf_counter()
    answer = post_signed(url, body, SIGNING_SECRET, content_type=content_type)
    return (time.perf_counter() - began) * 1000, answer.status_code


def command_body(standin: SlackStandIn) -> str:
    """`/sms send` as Slack sends it, with a fresh response_url (answers to it land in the stand-in)."""
    response_url = standin.new_response_url(channel="C_GENERAL", user="U_REQUESTER")
    return payloads.slash_command(
        COMMAND_TEXT, user_id="U_REQUESTER", channel_id="C_GENERAL", response_url=response_url
    )


def approve_body(standin: SlackStandIn, request_id: int, card_ts: str | None) -> str:
    """An approver's click on the request's Approve button, as Slack sends it."""
    response_url = standin.new_response_url(channel="C_APPROVALS", message_ts=card_ts, user="U_APPROVER")
    return payloads.block_actions(
        user_id="U_APPROVER",
        action_id="approve_request",
        value=str(request_id),
        channel_id="C_APPROVALS",
        message_ts=card_ts or "",
        response_url=response_url,
    )


def measure_pair(
    series: Series | None, product_url: str, baseline_url: str, body: str, content_type: str
) -> None:
    """The same body to the baseline, then to the product; recorded unless warming up (series None)."""
    base_ms, _ = post(baseline_url, body, content_type)
    product_ms, status = post(product_url, body, content_type)
    if series is not None:
        series.baseline.append(base_ms)
        series.product.append(product_ms)
        series.bad_answers += status != 200


def measure(quick: bool) -> list[Figure]:
    """N commands, N first approvals, N clicks on decided requests; each beside the trivial app's ack."""
    count = 20 if quick else 200
    commands, approvals, decided = (
        Series("/sms send"),
        Series("Approve click"),
        Series("Approve, already decided"),
    )
    with common.running_product() as product, common.serve(common.trivial_bolt_app(product.standin)) as base:
        standin, store = product.standin, product.store
        product.runtime.poster.start()  # as `every8d-bot run` does: posts and polls go on during the acks
        product.runtime.scheduler.start()
        product.sandbox.faults.latency = SANDBOX_LATENCY_SECONDS
        baseline_url = f"{base}/slack/events"
        for index in range(WARMUP + count):
            measure_pair(
                commands if index >= WARMUP else None,
                product.events_url,
                baseline_url,
                command_body(standin),
                payloads.FORM_TYPE,
            )
        pending = store.requests.in_states(RequestState.PENDING_APPROVAL, limit=WARMUP + count)
        for series in (approvals, decided):
            for index, request in enumerate(pending):
                card_ts = (store.requests.get(request.id) or request).approval_ts
                measure_pair(
                    series if index >= WARMUP else None,
                    product.events_url,
                    baseline_url,
                    approve_body(standin, request.id, card_ts),
                    payloads.FORM_TYPE,
                )
        sends = sum(call.endpoint.endswith("sendSMS.ashx") for call in product.sandbox.calls)
    context = (
        f"sandbox answered after {SANDBOX_LATENCY_SECONDS:.0f} s; {len(pending)} approvals, {sends} sends "
        "had reached the sandbox when the clicks ended"
    )
    return [*commands.figures(), *approvals.figures(context), *decided.figures()]


def main(argv: list[str] | None = None) -> list[Figure]:
    """Command line: `--quick`, `--json PATH`; prints the table and returns the figures."""
    return common.main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
