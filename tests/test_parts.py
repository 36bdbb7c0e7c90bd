"""A send larger than BOT_SEND_CHUNK_SIZE goes out as parts: one EVERY8D call each, each sent exactly once,
one send result and one summary in the thread, and a failure or a lost answer in one part never re-sends
the others. Driven through signed Slack requests against the sandbox and the Slack stand-in."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from every8d.sandbox import Sandbox
from services.compose import ComposeInput, prepare
from services.parts import plan_parts
from services.sending import parse_tag, request_tag
from slackstandin import payloads as p
from storage import PartState, RequestState
from tests.harness import SlackUser, all_text, button, wait_until
from tests.test_tracking import (
    against,
    approve,
    external_sandbox,  # noqa: F401 - fixture
    only_summary,
    thread,
    wait_for,
)

NUMBERS = "0912000001,0912000002,0912000003,0912000004,0912000005"
SEND = "sendSMS.ashx"


def sends(sandbox: Sandbox) -> list[dict[str, str]]:
    return [c.params for c in sandbox.calls if c.endpoint.endswith(SEND)]


def tags(sandbox: Sandbox) -> list[str]:
    """The SB tags sent, without this deployment's `@xxxx` (one deployment per test)."""
    found = [c["SB"] for c in sends(sandbox)]
    assert len({t.partition("@")[2] for t in found}) <= 1 and all(len(t.partition("@")[2]) == 4 for t in found)
    return [t.partition("@")[0] for t in found]


def compose(product, text: str) -> dict:
    SlackUser(product, "U_REQUESTER").command(text)
    product.settle()
    return next(c for c in product.standin.messages("C_APPROVALS") if button(c, "approve_request"))


def card_now(product) -> dict:
    return product.standin.messages("C_APPROVALS")[0]


def thread_texts(product, card: dict) -> list[str]:
    return [all_text(m) for m in thread(product, card)]


def lost_answer_in_part_2(make_product, external_sandbox):  # noqa: F811
    """Five numbers in parts of two, approved; part 2 reaches EVERY8D but its answer is lost."""
    sandbox = external_sandbox(delivery_seconds=0.2)
    sandbox.faults.hang_seconds = 3
    product = make_product(send_chunk_size=2, every8d_timeout=1, **against(sandbox))
    card = compose(product, f"send {NUMBERS} 明天上午停水")
    sandbox.faults.inject("accept_then_hang", endpoint=SEND, after=1)
    approve(product, card)
    return product, sandbox


# -- planning ------------------------------------------------------------------------------------------


def test_parts_cut_runs_of_one_text_and_keep_the_order():
    numbers, parts = plan_parts(["a", "b", "c", "d", "e"], chunk_size=2)
    assert numbers == ["a", "b", "c", "d", "e"]
    assert [(p.first_position, p.last_position, p.message) for p in parts] == [(0, 1, None), (2, 3, None), (4, 4, None)]

    texts = {"a": "hi A", "b": "hi B", "c": "hi A", "d": "hi A"}
    numbers, parts = plan_parts(["a", "b", "c", "d"], chunk_size=2, messages=texts, price=lambda t, ns: len(ns))
    assert numbers == ["a", "c", "d", "b"]  # same text side by side, first appearance first
    assert [(p.first_position, p.last_position, p.message, p.points) for p in parts] == [
        (0, 1, "hi A", 2), (2, 2, "hi A", 1), (3, 3, "hi B", 1)]


def test_the_subject_tag_names_request_part_and_deployment_and_reads_back():
    assert request_tag(12) == "#R12" and request_tag(12, 3) == "#R12.3" and request_tag(12, 3, "ab12") == "#R12.3@ab12"
    assert parse_tag("#R12 notice") == (12, 0, None)
    assert parse_tag("#R12.3@ab12 notice") == (12, 3, "ab12")
    assert parse_tag("#R12@ab12") == (12, 0, "ab12")
    assert parse_tag("#R12.3.4") is None and parse_tag("#R12@abcdef") is None and parse_tag("no tag") is None


# -- the whole path ------------------------------------------------------------------------------------


def test_a_send_larger_than_the_chunk_size_goes_out_in_parts_with_one_result_and_one_summary(
    make_product, external_sandbox  # noqa: F811
):
    sandbox = external_sandbox(delivery_seconds=0.2, background=True)
    product = make_product(send_chunk_size=2, **against(sandbox))
    card = compose(product, f"send {NUMBERS} 明天上午停水")
    assert "分 3 批發送" in all_text(card)
    approve(product, card)

    calls = sends(sandbox)
    assert [c["DEST"].count(",") + 1 for c in calls] == [2, 2, 1]
    assert tags(sandbox) == ["#R1", "#R1.1", "#R1.2"]
    request = product.store.requests.get(1)
    assert request.state is RequestState.SENT and request.sent_count == 5 and request.cost == 5.0
    assert len(product.store.batches.of_request(1)) == 3

    time.sleep(0.4)
    product.poll()
    product.poll()
    texts = thread_texts(product, card)
    assert sum("已送出 5 則" in t for t in texts) == 1, texts  # one send result for the whole request
    summary = only_summary(product, card)
    assert "已送達 5" in all_text(summary) and "共 3 批" in all_text(summary)
    assert "已送出 3/3 批" in all_text(card_now(product))


def test_a_lost_answer_in_one_part_stops_the_rest_and_mark_sent_then_sends_only_the_rest(
    make_product, external_sandbox  # noqa: F811
):
    product, sandbox = lost_answer_in_part_2(make_product, external_sandbox)

    request = product.store.requests.get(1)
    assert request.state is RequestState.UNKNOWN
    assert [p.state for p in product.store.parts.of_request(1)] == [PartState.SENT, PartState.UNKNOWN,
                                                                     PartState.PENDING]
    assert len(sends(sandbox)) == 2  # part 3 was not attempted while part 2 is in doubt
    assert "1 批未發送" in all_text(card_now(product))

    # The approver checks the EVERY8D portal: part 2 did go out. Only part 3 is sent now.
    SlackUser(product, "U_APPROVER").click("mark_sent", "1", message=card_now(product))
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, what="the rest to go out")
    product.settle()
    assert tags(sandbox) == ["#R1", "#R1.1", "#R1.2"]
    assert [p.state for p in product.store.parts.of_request(1)] == [PartState.SENT] * 3


def test_send_again_after_a_lost_answer_resends_only_the_part_in_doubt_and_the_rest(
    make_product, external_sandbox  # noqa: F811
):
    product, sandbox = lost_answer_in_part_2(make_product, external_sandbox)
    assert product.store.requests.get(1).state is RequestState.UNKNOWN

    SlackUser(product, "U_APPROVER").click("resend_request", "1", message=card_now(product))
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, what="the resend")
    product.settle()
    # Part 1 is never sent again; part 2 is (the approver chose so), then part 3.
    assert tags(sandbox) == ["#R1", "#R1.1", "#R1.1", "#R1.2"]


def test_a_refused_part_fails_the_request_and_says_what_was_sent(make_product, external_sandbox):  # noqa: F811
    sandbox = external_sandbox(delivery_seconds=0.2)
    product = make_product(send_chunk_size=2, **against(sandbox))
    card = compose(product, f"send {NUMBERS} 明天上午停水")
    sandbox.faults.inject("-99", endpoint=SEND, after=1)
    approve(product, card)

    request = product.store.requests.get(1)
    assert request.state is RequestState.FAILED
    assert request.sent_count == 2 and len(sends(sandbox)) == 2
    texts = "\n".join(thread_texts(product, card))
    assert "已送出的部分照常追蹤：2 則" in texts and "沒有簡訊被送出" not in texts
    assert "已送出 1/3 批" in all_text(card_now(product)) and "2 批未發送" in all_text(card_now(product))


def test_a_report_tagged_with_a_later_part_reconciles_that_part_and_resumes_the_rest(make_product):
    """With callbacks: EVERY8D's push for part 2 (SB `#R1.1`) settles it, and part 3 then goes out."""
    product = make_product(send_chunk_size=2, every8d_timeout=1)
    product.sandbox.faults.hang_seconds = 3
    card = compose(product, f"send {NUMBERS} 明天上午停水")
    product.sandbox.faults.inject("accept_then_hang", endpoint=SEND, after=1)
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=15,
             what="part 2 reconciled from its report and part 3 sent")
    product.settle()
    assert tags(product.sandbox) == ["#R1", "#R1.1", "#R1.2"]
    parts = product.store.parts.of_request(1)
    assert all(p.batch_id for p in parts) and len({p.batch_id for p in parts}) == 3
    assert "reconciled" in [a["action"] for a in product.store.audit.for_request(1)]


def test_cancelling_a_scheduled_send_in_parts_cancels_every_batch(make_product, external_sandbox):  # noqa: F811
    sandbox = external_sandbox(delivery_seconds=0.2)
    product = make_product(send_chunk_size=2, **against(sandbox))
    send_at = datetime.fromtimestamp(int(time.time()) + 3600, tz=UTC)
    preview = prepare(ComposeInput(kind="sms", recipients_text=NUMBERS, message="預約通知", send_at=send_at),
                      clock=time.time, last_credit=None)
    product.runtime.requests.submit(preview, requester="U_REQUESTER", origin_channel="C_GENERAL")
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    approve(product, card)
    assert product.store.requests.get(1).state is RequestState.SENT

    SlackUser(product, "U_REQUESTER").click("cancel_scheduled", "1", message=card_now(product))
    wait_for(lambda: product.store.requests.get(1).state is RequestState.CANCELLED, what="the cancel")
    erased = [c.params["BID"] for c in sandbox.calls if c.endpoint.endswith("eraseBooking.ashx")]
    assert sorted(erased) == sorted(b.batch_id for b in product.store.batches.of_request(1))


def test_app_home_shows_a_request_sent_in_parts_as_one_line(make_product, external_sandbox):  # noqa: F811
    sandbox = external_sandbox(delivery_seconds=0.2)
    product = make_product(send_chunk_size=2, **against(sandbox))
    approve(product, compose(product, f"send {NUMBERS} 明天上午停水"))
    SlackUser(product, "U_APPROVER")._post(p.event_callback(p.app_home_opened("U_APPROVER")), content_type=p.JSON_TYPE)
    home = wait_until(lambda: product.standin.home("U_APPROVER"))
    shown = json.dumps(home, ensure_ascii=False)
    lead, *others = [b.batch_id for b in product.store.batches.of_request(1)]
    assert lead in shown and not any(b in shown for b in others)  # one line for the request
    assert "5 位" in shown and "共 3 批" in shown


def test_the_chunk_size_is_checked_when_the_bot_starts():
    import pytest

    from bot.config import Config, ConfigError

    assert Config.from_env({}, dotenv=None).send_chunk_size == 1000
    for bad in ("0", "20000", "many"):
        with pytest.raises(ConfigError, match="BOT_SEND_CHUNK_SIZE"):
            Config.from_env({"BOT_SEND_CHUNK_SIZE": bad}, dotenv=None)


def test_status_of_a_request_sent_in_parts_counts_every_batch(make_product, external_sandbox):  # noqa: F811
    from tests.test_commands import answers_for

    sandbox = external_sandbox(delivery_seconds=0.1, background=True)
    product = make_product(send_chunk_size=2, **against(sandbox))
    approve(product, compose(product, f"send {NUMBERS} 明天上午停水"))
    time.sleep(0.3)
    requester = SlackUser(product, "U_REQUESTER")
    requester.command("status #1")
    text = wait_until(lambda: "發送狀態" in answers_for(product, requester) and answers_for(product, requester))
    assert "已送達 5" in text and "共 3 批" in text


def test_what_a_stopped_request_is_follows_from_its_parts():
    from services.sending import request_state

    sent, skipped, pending = PartState.SENT, PartState.SKIPPED, PartState.PENDING
    assert request_state([sent, skipped]) is RequestState.SENT
    assert request_state([skipped, skipped]) is RequestState.FAILED  # nobody left to send to
    assert request_state([sent, PartState.UNKNOWN, pending]) is RequestState.UNKNOWN
    assert request_state([sent, PartState.FAILED, pending]) is RequestState.FAILED
    # A report settled the part that stopped the send, before the request was settled: go on, not "failed".
    assert request_state([sent, sent, pending]) is RequestState.APPROVED
