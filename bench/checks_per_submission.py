"""Checks per submission: how many times one person's send runs the full check (`services.compose.prepare`)
and reads its recipient list, from the first Slack event to the request.

Counted on the real product (Runtime behind waitress, Slack stand-in, sandbox), driven by signed requests
as Slack sends them. Every function below is wrapped wherever a module holds it (`from x import f` copies
included), for the duration of one scenario only:

* `prepare`: `services.compose.prepare`, the whole check (address book, phone rules, texts, price).
* address-book passes: `services.audiences.resolve_recipients` (names and groups -> numbers, one
  `parse_phone` per entry, joined back into text).
* phone-rule passes: `every8d.phones.parse_recipients` (the entries read into a list).
* text splits: `every8d.phones.split_entries` (a field cut into entries: once per comma-separated piece by
  the address-book pass, and once more when its entries were joined into text for the phone rules).

Scenarios: (a) the compose modal (`/sms` opens it, the compose view is submitted, its preview
confirmed), by day and, with the clock at 22:30 inside quiet hours, with "schedule for 08:00" chosen on
the preview; (b) `/sms send` one-line, by day and at night (then the "Schedule" button); (c) a thread
answer: typed in a batch's thread under a reply, with BOT_THREAD_ANSWERS=confirm (then "Send as SMS")
and =direct. Set-up (the batch the thread belongs to) is not counted.

Recipients typed: `0912345678, 0922333444` (two pieces). Before services/drafts.py (measured 2026-12-03
on the code of commit 01f1eeb), per scenario prepare / address-book passes / phone-rule passes / text
splits, then after:

    scenario                           before          after
    (a) modal, by day                  2 / 2 / 2 / 6   1 / 1 / 1 / 2
    (a) modal, night, schedule         3 / 3 / 3 / 9   1 / 1 / 1 / 2
    (b) /sms send, by day              1 / 1 / 1 / 3   1 / 1 / 1 / 2
    (b) /sms send, night, schedule     2 / 2 / 2 / 6   1 / 1 / 1 / 2
    (c) thread answer, confirm         1 / 0 / 1 / 1   1 / 0 / 1 / 1
    (c) thread answer, direct          1 / 0 / 1 / 1   1 / 0 / 1 / 1

After: the kept draft holds the resolved list and confirming re-checks only time, opt-outs, credit and
budgets (services/drafts.py); the address book hands its entries to the phone rules as a list
(services/audiences.py `resolve_entries`). Target: one full check per submission (`prepare` at most
once); the other counts are informational.

    python bench/checks_per_submission.py [--quick] [--json PATH]
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

try:
    from bench import common
except ModuleNotFoundError:  # run as `python bench/checks_per_submission.py` from a checkout not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import common

import every8d.phones
import services.audiences
import services.compose
from bench.common import Figure
from slackstandin import SlackStandIn, payloads
from slackstandin.signing import post_signed
from tests.harness import SIGNING_SECRET, Product, SlackUser, button, make_config, wait_until

TAIPEI = ZoneInfo("Asia/Taipei")
RECIPIENTS = "0912345678, 0922333444"
#: (label, module, function name): what is counted, in the table's order. The address-book pass is
#: `resolve_entries` where it exists (`resolve_recipients` only joins its entries into text), else, in
#: code before it, `resolve_recipients`.
COUNTED = (
    ("prepare", services.compose, "prepare"),
    ("address-book passes", services.audiences,
     "resolve_entries" if hasattr(services.audiences, "resolve_entries") else "resolve_recipients"),
    ("phone-rule passes", every8d.phones, "parse_recipients"),
    ("text splits", every8d.phones, "split_entries"),
)


class Counts:
    """Calls of each counted function while `counting()` is open (Bolt's listener threads included)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Wrap each counted function in every loaded module that holds it; put the originals back after."""
        patched: list[tuple[Any, str, Any]] = []
        for label, module, name in COUNTED:
            original = getattr(module, name)
            wrapper = self._wrap(label, original)
            for holder in list(sys.modules.values()):
                for attr, value in list(vars(holder).items()) if holder is not None else []:
                    if value is original:
                        patched.append((holder, attr, original))
                        setattr(holder, attr, wrapper)
        try:
            yield
        finally:
            for holder, attr, original in patched:
                setattr(holder, attr, original)

    def _wrap(self, label: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[label] += 1
            return original(*args, **kwargs)
        return counted


class FixedClock:
    """The product's clock, standing still (quiet hours depend on the time of day)."""

    def __init__(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now


def taipei(hour: int, minute: int = 0) -> datetime:
    """A Taipei time three days ahead of the real clock (so what is scheduled from it is ahead for the sandbox)."""
    day = datetime.now(TAIPEI).date() + timedelta(days=3)
    return datetime.combine(day, clock_time(hour, minute), tzinfo=TAIPEI)


@contextlib.contextmanager
def product(standin: SlackStandIn, tmp: Path, name: str, *, at: datetime | None = None, **overrides: Any
            ) -> Iterator[Product]:
    """A fresh product for one scenario; with `at`, its clock stands at that time and quiet hours are on."""
    if at is not None:
        overrides.setdefault("quiet_hours", "21:00-08:00")
    config = make_config(standin, tmp / f"{name}.db", **overrides)
    running = Product(config, standin, clock=FixedClock(at) if at is not None else time.time)
    try:
        yield running
    finally:
        running.stop()


def compose_values(message: str = "明天上午十點開會") -> dict:
    return {
        "kind": payloads.radio_buttons("compose_kind", "sms"),
        "recipients": payloads.plain_text_input("value", RECIPIENTS),
        "message": payloads.plain_text_input("value", message),
    }


def modal(running: Product, counts: Counts, *, choice: str | None = None) -> int:
    """Open compose, submit it, confirm the preview (with the quiet-hours `choice` if asked); the request."""
    user = SlackUser(running, "U_REQUESTER")
    with counts.counting():
        user.command("")
        [view] = wait_until(lambda: running.standin.open_views("U_REQUESTER"))
        preview = user.submit(view, compose_values()).json()["view"]
        values = {"quiet": payloads.radio_buttons("value", choice)} if choice else {}
        answer = user.submit(preview, values).json()
        running.settle()
    assert answer.get("response_action") == "update", answer
    return _one_request(running)


def one_line(running: Product, counts: Counts, *, press: str | None = None) -> int:
    """`/sms send`; at night, then the question's button `press`."""
    user = SlackUser(running, "U_REQUESTER")
    with counts.counting():
        answer = user.command(f"send {RECIPIENTS} 明天上午十點開會").json()
        if press:
            found = button(answer, press)
            assert found is not None, answer
            user.click(press, found["value"])
            wait_until(lambda: running.store.requests.get(1))
        running.settle()
    return _one_request(running)


def thread_answer(running: Product, counts: Counts, *, confirm: bool) -> int:
    """A batch sent and replied to (not counted), then an answer typed in its thread (and Send pressed)."""
    SlackUser(running, "U_REQUESTER").command("send 0912345678 請回覆")
    running.settle()
    [card] = running.standin.messages("C_APPROVALS")
    SlackUser(running, "U_APPROVER").click("approve_request", "1", message=card)
    assert wait_until(lambda: running.store.requests.get(1).state == "sent")
    running.sandbox.simulate_reply(running.store.requests.get(1).batch_id, "+886912345678", "好的")
    assert wait_until(lambda: running.store.replies.count() == 1), "the reply's callback"
    running.settle()
    with counts.counting():
        typed = running.standin.add_message("C_APPROVALS", "三樓會議室", user="U_OTHER", thread_ts=card["ts"])
        body = payloads.event_callback(payloads.message_event("C_APPROVALS", "U_OTHER", "三樓會議室", ts=typed["ts"],
                                                              thread_ts=card["ts"]))
        post_signed(running.events_url, body, SIGNING_SECRET, content_type=payloads.JSON_TYPE)
        if confirm:
            asked = wait_until(lambda: [e for e in running.standin.ephemerals("U_OTHER")
                                        if button(e, "thread_answer_send")])
            assert asked, "no question was asked"
            found = button(asked[-1], "thread_answer_send")
            SlackUser(running, "U_OTHER", channel="C_APPROVALS").click("thread_answer_send", found["value"],
                                                                      message=asked[-1])
        assert wait_until(lambda: running.store.requests.get(2)), "the answer was not submitted"
        running.settle()
    return 2


def _one_request(running: Product) -> int:
    request = running.store.requests.get(1)
    assert request is not None and running.store.requests.get(2) is None, "one submission, one request"
    return request.id


#: The counts measured before services/drafts.py (commit 01f1eeb), shown beside each figure.
BEFORE = {
    "(a) modal, by day": {"prepare": 2, "address-book passes": 2, "phone-rule passes": 2, "text splits": 6},
    "(a) modal, night, schedule": {"prepare": 3, "address-book passes": 3, "phone-rule passes": 3, "text splits": 9},
    "(b) /sms send, by day": {"prepare": 1, "address-book passes": 1, "phone-rule passes": 1, "text splits": 3},
    "(b) /sms send, night, schedule": {"prepare": 2, "address-book passes": 2, "phone-rule passes": 2,
                                       "text splits": 6},
    "(c) thread answer, confirm": {"prepare": 1, "address-book passes": 0, "phone-rule passes": 1, "text splits": 1},
    "(c) thread answer, direct": {"prepare": 1, "address-book passes": 0, "phone-rule passes": 1, "text splits": 1},
}

SCENARIOS: tuple[tuple[str, dict, Callable[[Product, Counts], int]], ...] = (
    ("(a) modal, by day", {}, modal),
    ("(a) modal, night, schedule", {"at": taipei(22, 30)}, lambda p, c: modal(p, c, choice="schedule")),
    ("(b) /sms send, by day", {}, one_line),
    ("(b) /sms send, night, schedule", {"at": taipei(22, 30)},
     lambda p, c: one_line(p, c, press="quiet_hours_schedule")),
    ("(c) thread answer, confirm", {"thread_answers": "confirm"}, lambda p, c: thread_answer(p, c, confirm=True)),
    ("(c) thread answer, direct", {"thread_answers": "direct"}, lambda p, c: thread_answer(p, c, confirm=False)),
)


def count_all() -> dict[str, Counter[str]]:
    """{scenario: {counted label: calls}}, each scenario on its own fresh product and Slack stand-in."""
    found: dict[str, Counter[str]] = {}
    with _tempdir() as tmp:
        for index, (name, options, run) in enumerate(SCENARIOS):
            counts = Counts()
            with SlackStandIn() as standin, product(standin, tmp, f"s{index}", **options) as running:
                run(running, counts)
            found[name] = counts.calls
    return found


@contextlib.contextmanager
def _tempdir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="every8d-bench-") as tmp:
        yield Path(tmp)


def measure(quick: bool) -> list[Figure]:
    """One figure per scenario and counted function (the same small counts with or without --quick: each
    scenario is one submission)."""
    figures = []
    for scenario, calls in count_all().items():
        for label, _, name in COUNTED:
            note = f"calls of {name}; before services/drafts.py: {BEFORE[scenario][label]}"
            if label == "prepare":
                figures.append(Figure(f"{scenario}: {label}", calls[label], "calls", target="<= 1",
                                      ok=calls[label] <= 1, note=note))
            else:
                figures.append(Figure(f"{scenario}: {label}", calls[label], "calls", note=note))
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """Command line: `--quick`, `--json PATH`; prints the table and returns the figures."""
    return common.main(__doc__, measure, argv)


if __name__ == "__main__":
    main()
