"""Every benchmark still runs (with --quick sizes) and still measures what it claims, so `make bench`
does not rot between releases. Timing targets are NOT asserted here (a loaded CI machine would make
them flaky); what is asserted is that each benchmark set up real work: the open batches were polled,
the callbacks were stored, the send reached EVERY8D, every reply was traced back from Slack."""

from __future__ import annotations

import json
import math
import re

import pytest

from bench import (
    ack_time,
    big_send,
    callback_rate,
    checks_per_submission,
    personalised_send,
    poll_cycle,
    reply_burst,
    run_all,
)
from bench.common import Figure, percentile, render_table


def run_quick(module, tmp_path) -> dict[str, Figure]:
    out = tmp_path / "figures.json"
    figures = module.main(["--quick", "--json", str(out)])
    written = [Figure.from_json(item) for item in json.loads(out.read_text(encoding="utf-8"))["figures"]]
    assert written == figures
    assert all(math.isfinite(f.value) for f in figures)
    by_name = {f.name: f for f in figures}
    assert len(by_name) == len(figures), "figure names must be unique"
    return by_name


def test_ack_time_measures_both_acks_against_the_baseline(tmp_path):
    figures = run_quick(ack_time, tmp_path)
    p99 = figures["ack /sms send, p99"]
    assert p99.baseline and p99.baseline > 0 and p99.ratio is not None
    assert p99.target.startswith("< 100 ms") and p99.ok is not None
    assert "20 requests" in figures["ack Approve click, p99"].note
    assert "not 200" not in figures["ack Approve, already decided, p99"].note


def test_callback_rate_stores_every_callback_it_counts(tmp_path):
    figures = run_quick(callback_rate, tmp_path)
    assert figures["callbacks answered 200 but not stored"].value == 0
    assert figures["callbacks 300/s for 5 s: answers other than 200"].value == 0
    rate = figures["callbacks accepted durably per second (10,000-recipient batch)"]
    assert rate.value > 0 and rate.baseline and rate.baseline > 0


def test_poll_cycle_polls_the_ten_open_batches(tmp_path):
    figures = run_quick(poll_cycle, tmp_path)
    calls = figures["poll cycle EVERY8D calls, 10 open + 1,000 finished"]
    assert calls.baseline == 10  # one status page per open batch, with no history
    assert (
        figures["poll cycle Slack calls, 10 open + 100 finished"].baseline == 10
    )  # first check: 10 summaries


def test_big_send_reaches_every8d_and_reports_memory(tmp_path):
    figures = run_quick(big_send, tmp_path)
    calls = figures["10,000-recipient send: EVERY8D calls"]
    assert calls.value == 10 and calls.note.startswith("10 sendSMS POST(s) with [1000] numbers")  # in parts
    assert figures["send peak memory, 10,000 recipients"].value > 0


def test_personalised_send_is_ten_sendparamsms_calls_timed_against_one_shared_text(tmp_path):
    figures = run_quick(personalised_send, tmp_path)
    calls = figures["10,000 personal texts: EVERY8D calls"]
    assert calls.value == 10 and calls.baseline == 10
    assert calls.note.startswith("10 SendParamSMS call(s) with [1000] recipients")
    wall = figures["10,000 personal texts: wall time, EVERY8D answering after 100 ms"]
    assert wall.baseline and wall.baseline >= 1000  # ten calls, each answered after 100 ms
    assert wall.ratio is not None and wall.ok is not None


def test_reply_burst_traces_every_reply_back_from_slack(tmp_path):
    figures = run_quick(reply_burst, tmp_path)
    name = "20-reply burst, 1 Slack call in 5 answered 429"
    assert figures[f"{name}: replies dropped"].value == 0
    assert figures[f"{name}: posts out of order"].value == 0
    limited = re.search(r"(\d+) answers were 429", figures[f"{name}: time to deliver all"].note)
    assert limited and int(limited.group(1)) > 0  # the fault was on ("10 answers" once read as "0 answers")


def test_checks_per_submission_counts_one_full_check_per_submission(tmp_path):
    figures = run_quick(checks_per_submission, tmp_path)
    for scenario, _, _ in checks_per_submission.SCENARIOS:
        assert figures[f"{scenario}: prepare"].value == 1 and figures[f"{scenario}: prepare"].ok
        assert figures[f"{scenario}: phone-rule passes"].value == 1  # the list is read once, then kept
    assert figures["(a) modal, night, schedule: address-book passes"].note.endswith("before services/drafts.py: 3")
    assert figures["(a) modal, by day: text splits"].value == 2  # one per typed piece; the entries not joined


def test_run_all_collects_client_overhead_into_the_one_table(tmp_path, capsys):
    out = tmp_path / "all.json"
    assert run_all.main(["--quick", "--only", "client_overhead", "--json", str(out)]) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))["figures"]
    assert [f["name"] for f in figures] == [
        "EVERY8D client per call: get_credit, median",
        "EVERY8D client per call: status_page (1000 rows), median",
    ]
    assert all(f["baseline"] > 0 and f["ratio"] > 0 for f in figures)
    assert "name | value | baseline | ratio | target | ok" in capsys.readouterr().out.replace("  ", "")


def test_table_says_which_targets_were_missed():
    table = render_table(
        [
            Figure("fast", 12.0, "ms", target="< 100 ms", ok=True, baseline=10.0, ratio=1.2),
            Figure(
                "slow", 250.0, "/s", target=">= 0.5x bare", ok=False, baseline=1000.0, ratio=0.25, note="why"
            ),
            Figure("count", 1, "calls"),
        ]
    )
    lines = table.splitlines()
    assert [cell.strip() for cell in lines[0].split("|")] == [
        "name",
        "value",
        "baseline",
        "ratio",
        "target",
        "ok",
    ]
    assert lines[2].split("|")[-1].strip() == "yes"
    assert lines[3].split("|")[-1].strip() == "NO" and "0.25x" in lines[3]
    assert "1 call " in lines[4] + " " and lines[4].split("|")[-1].strip() == "info"
    assert "[slow] why" in table


@pytest.mark.parametrize(
    ("samples", "pct", "expected"),
    [
        ([5.0], 99, 5.0),
        (list(range(1, 101)), 99, 99),
        (list(range(1, 201)), 99, 198),
        ([3.0, 1.0, 2.0], 50, 2.0),
    ],
)
def test_percentile_is_nearest_rank(samples, pct, expected):
    assert percentile(samples, pct) == expected
