"""EVERY8D misbehaving (issue 7): down, slow, answering -99, HTML or garbage, or accepting a send and
losing the answer, during a send, delivery polling and credit checks.

What a person must see: a clear sentence in zh-TW in the thread or the answer (never Python exception
text), no crash, no second send unless an approver explicitly asks for one, and polling that recovers
by itself once EVERY8D does.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from every8d.endpoints import CREDIT, SEND_SMS, STATUS_SMS
from storage import RequestState
from tests.faults_support import (
    approve_first_card,
    assert_no_python_text,
    send_calls,
    thread_text,
    wait_for,
    watchdog,  # noqa: F401 - fixture
    without_backoff,
)
from tests.harness import SlackUser, all_text, button

pytestmark = pytest.mark.usefixtures("watchdog")

UNKNOWN_ZH = "無法確定 EVERY8D 是否收到這次發送"
#: Faults the EVERY8D client reports with the Python exception's name in its sentence (a known bug).
TRANSPORT_FAULTS = ("reset", "hang")
NOT_SENT_ZH = "沒有簡訊被送出，也沒有扣點"


def thread_of(product, card: dict) -> str:
    return thread_text(product.standin, "C_APPROVALS", card["ts"])


# -- during a send --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "state", "words"),
    [
        ("-99", RequestState.FAILED, "EVERY8D 主機端發生不明錯誤，簡訊未送出"),
        ("http500", RequestState.UNKNOWN, UNKNOWN_ZH),
        ("html", RequestState.UNKNOWN, UNKNOWN_ZH),
        ("garbage", RequestState.UNKNOWN, UNKNOWN_ZH),
        ("empty", RequestState.UNKNOWN, UNKNOWN_ZH),
        ("reset", RequestState.UNKNOWN, UNKNOWN_ZH),
        ("hang", RequestState.UNKNOWN, UNKNOWN_ZH),
    ],
)
def test_a_send_that_every8d_spoils_is_called_once_and_explained_in_the_thread(
    make_product, fault: str, state: RequestState, words: str
) -> None:
    product = make_product(every8d_timeout=1.0, callback_token="")
    product.sandbox.faults.hang_seconds = 1.5
    product.sandbox.faults.inject(fault, endpoint=SEND_SMS)
    card = approve_first_card(product)

    request = product.store.requests.get(1)
    assert request.state is state
    assert len(send_calls(product.sandbox)) == 1  # a send is never retried once it may have arrived
    thread = thread_of(product, card)
    assert words in thread
    if state is RequestState.FAILED:
        assert NOT_SENT_ZH in thread and "（EVERY8D -99" in thread  # EVERY8D's own code, for support
    else:
        assert "不會自動重送" in thread
        result = product.standin.thread("C_APPROVALS", card["ts"])[0]
        assert button(result, "mark_sent") and button(result, "resend_request")
    shown = thread + all_text(product.standin.messages("C_APPROVALS")[0])
    assert_no_python_text(shown)


@pytest.fixture
def dead_every8d_url() -> Iterator[str]:
    """An address where nothing listens: the port is bound (so no other server can take it) but not
    listening, so every connection is refused, as when EVERY8D is down."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{reserved.getsockname()[1]}/API21/HTTP/"


def test_every8d_down_during_a_send_fails_clearly_as_not_sent(make_product, dead_every8d_url: str) -> None:
    """Nothing listens at EVERY8D's address: the request surely never left, so the thread says it was
    not sent (not "unknown") and the requester can simply ask again."""
    product = make_product(every8d_uid="sandbox", every8d_pwd="sandbox", every8d_base_url=dead_every8d_url)
    without_backoff(product)
    card = approve_first_card(product)

    assert product.store.requests.get(1).state is RequestState.FAILED
    thread = thread_of(product, card)
    assert "無法連線 EVERY8D，簡訊未送出" in thread and NOT_SENT_ZH in thread
    assert_no_python_text(thread)


@pytest.mark.parametrize("fault", [*TRANSPORT_FAULTS, "down"])
def test_transport_failures_are_explained_without_python_exception_names(
    make_product, dead_every8d_url: str, fault: str
) -> None:
    if fault == "down":
        product = make_product(every8d_uid="sandbox", every8d_pwd="sandbox", every8d_base_url=dead_every8d_url)
        without_backoff(product)
    else:
        product = make_product(every8d_timeout=1.0, callback_token="")
        product.sandbox.faults.hang_seconds = 1.5
        product.sandbox.faults.inject(fault, endpoint=SEND_SMS)
    card = approve_first_card(product)
    assert_no_python_text(thread_of(product, card) + all_text(product.standin.messages("C_APPROVALS")[0]))


# -- accepted, answer lost -----------------------------------------------------------------------------


def lost_answer(make_product, **overrides):
    """EVERY8D takes the send and charges it, then never answers within the bot's timeout."""
    product = make_product(every8d_timeout=1.0, **overrides)
    product.sandbox.faults.hang_seconds = 1.5
    product.sandbox.faults.inject("accept_then_hang", endpoint=SEND_SMS)
    card = approve_first_card(product)
    assert len(send_calls(product.sandbox)) == 1 and len(product.sandbox.batches) == 1
    return product, card


def test_accepted_but_answer_lost_is_unknown_and_mark_as_sent_settles_it_without_a_send(make_product) -> None:
    product, card = lost_answer(make_product, callback_token="")
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    thread = thread_of(product, card)
    assert UNKNOWN_ZH in thread and "切勿直接重送" in thread
    assert_no_python_text(thread)

    card_now = product.standin.messages("C_APPROVALS")[0]
    assert "結果不明" in all_text(card_now)
    other = SlackUser(product, "U_OTHER")
    other.click("mark_sent", "1", message=card_now)  # not an approver: refused, nothing changes
    product.settle()
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    assert any("只有核准者" in all_text(m) for m in other.ephemerals())
    SlackUser(product, "U_APPROVER2").click("mark_sent", "1", message=card_now)
    product.settle()

    assert product.store.requests.get(1).state is RequestState.SENT
    assert len(send_calls(product.sandbox)) == 1
    thread = thread_of(product, card)
    assert "<@U_APPROVER2> 已確認此批次已送出（不再重送）" in thread
    assert button(product.standin.messages("C_APPROVALS")[0], "resend_request") is None
    assert "marked_sent" in [a["action"] for a in product.store.audit.for_request(1)]


def test_accepted_but_answer_lost_then_send_again_sends_exactly_one_more(make_product) -> None:
    product, card = lost_answer(make_product, callback_token="")
    card_now = product.standin.messages("C_APPROVALS")[0]
    approvers = [SlackUser(product, "U_APPROVER"), SlackUser(product, "U_APPROVER2")] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:  # several approvers press "Send again" at once
        list(pool.map(lambda u: u.click("resend_request", "1", message=card_now), approvers))
    product.settle()

    request = product.store.requests.get(1)
    assert request.state is RequestState.SENT
    assert len(send_calls(product.sandbox)) == 2
    assert len(product.sandbox.batches) == 2 and request.batch_id in product.sandbox.batches
    thread = thread_of(product, card)
    assert "已確認重新發送" in thread and request.batch_id in thread and "已送出 1 則" in thread
    assert [a["action"] for a in product.store.audit.for_request(1)].count("resend") == 1


def test_accepted_but_answer_lost_is_settled_by_the_report_every8d_already_pushed(make_product) -> None:
    """EVERY8D pushes its first report the moment it accepts, while our call is still waiting. That
    report names a batch nobody knows yet; once the call gives up, the bot finds it (subject #R1) and
    settles the request as sent, with no resend and no approver needed."""
    product, card = lost_answer(make_product)
    wait_for(lambda: product.store.requests.get(1).state is RequestState.SENT, timeout=10,
             what="the request to be reconciled from EVERY8D's report")
    product.settle()

    [batch_id] = list(product.sandbox.batches)
    request = product.store.requests.get(1)
    assert request.batch_id == batch_id
    assert len(send_calls(product.sandbox)) == 1
    thread = thread_of(product, card)
    assert f"已確認：EVERY8D 確實收到此發送申請（批次代碼 {batch_id}）" in thread
    assert_no_python_text(thread)
    assert "None" not in thread
    card_now = product.standin.messages("C_APPROVALS")[0]
    assert button(card_now, "resend_request") is None and batch_id in all_text(card_now)


def test_a_stray_report_from_before_the_send_does_not_settle_it(make_product) -> None:
    """A report tagged #R1 that came before this send was even made (forged, or from another bot on the
    same account) must not turn a later unknown send into "sent" with the wrong batch."""
    product = make_product(every8d_timeout=1.0)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.settle()
    stray = {"BatchID": "stray-batch", "RM": "+886912345678", "STATUS": "100", "RT": "20261125101010",
             "SM": "", "MR": "1", "SB": "#R1"}
    assert requests.get(product.callback_url, params=stray, timeout=10).status_code == 200  # kept aside
    product.sandbox.faults.inject("reset", endpoint=SEND_SMS)
    card = product.standin.messages("C_APPROVALS")[0]
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()

    request = product.store.requests.get(1)
    assert request.state is RequestState.UNKNOWN and request.batch_id is None
    assert "stray-batch" not in thread_of(product, card)


def test_a_report_tagged_by_another_bot_on_the_same_account_does_not_settle_a_send(make_product) -> None:
    """Staging and production share one EVERY8D account, and EVERY8D pushes every report to one callback
    URL: production's `#R1@<its tag>` must never settle this bot's unknown request #1."""
    product = make_product(every8d_timeout=1.0)
    SlackUser(product, "U_REQUESTER").command("send 0912345678 明早九點停水通知")
    product.settle()
    product.sandbox.faults.inject("reset", endpoint=SEND_SMS)
    card = product.standin.messages("C_APPROVALS")[0]
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    product.settle()
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    other = "0000" if product.runtime.sending.deployment != "0000" else "ffff"
    report = {"BatchID": "other-bot-batch", "RM": "+886912345678", "STATUS": "0", "RT": "20261125101010",
              "SM": "", "MR": "1", "SB": f"#R1@{other}"}
    assert requests.get(product.callback_url, params=report, timeout=10).status_code == 200  # kept aside
    product.settle()
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    assert "other-bot-batch" not in thread_of(product, card)


# -- polling ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["-99", "http500", "html", "garbage", "empty", "reset"])
def test_polling_survives_a_broken_every8d_and_works_again_once_it_is_fixed(make_product, fault: str) -> None:
    product = make_product(callback_token="")  # reports come only from polling here
    without_backoff(product)
    card = approve_first_card(product)
    batch_id = product.store.requests.get(1).batch_id
    posts_before = len(product.standin.calls)

    product.sandbox.faults.inject(fault, count=10, endpoint=STATUS_SMS)
    product.poll()  # every attempt fails: logged, backed off, nothing said in Slack, nothing raised
    batch = product.store.batches.get(batch_id)
    assert batch.state == "open" and batch.poll_failures == 1
    assert batch.next_poll_at > time.time() + 1  # backed off, not hammering a sick EVERY8D
    assert len(product.standin.calls) == posts_before

    product.sandbox.faults.clear()
    wait_for(lambda: all(r.status == 100 for r in product.sandbox.batches[batch_id].records), timeout=5,
             what="the sandbox to deliver")
    product.poll()
    batch = product.store.batches.get(batch_id)
    assert batch.poll_failures == 0 and batch.state == "complete"
    thread = thread_of(product, card)
    assert "已送達 1" in thread and "（已完成）" in thread
    assert_no_python_text(thread)


def test_polling_recovers_on_its_own_schedule_after_every8d_comes_back(make_product) -> None:
    """With the real scheduler running: EVERY8D answers garbage for a while, then recovers; the batch is
    completed without anyone doing anything."""
    product = make_product(status_poll_seconds=1.0, callback_token="")
    without_backoff(product)
    product.sandbox.faults.inject("garbage", count=4, endpoint=STATUS_SMS)  # one failed cycle of 4 tries
    card = approve_first_card(product)
    batch_id = product.store.requests.get(1).batch_id
    product.runtime.scheduler.start()
    product.runtime.poster.start()
    try:
        wait_for(lambda: product.store.batches.get(batch_id).state == "complete", timeout=20,
                 what="polling to recover and complete the batch")
        wait_for(lambda: "（已完成）" in thread_of(product, card), timeout=10, what="the final summary")
    finally:
        product.runtime.scheduler.shutdown(wait=True)
    statuses = [c for c in product.sandbox.calls if c.endpoint == STATUS_SMS]
    assert len(statuses) > 4  # it came back after the failed cycle, by itself
    assert_no_python_text(thread_of(product, card))


def test_a_slow_every8d_times_out_polls_and_credit_checks_without_harm(make_product) -> None:
    """Every answer takes longer than the bot waits: polls and credit checks time out, are backed off or
    answered "not available", and everything works again once EVERY8D is fast."""
    product = make_product(every8d_timeout=1.0, callback_token="")
    without_backoff(product)
    card = approve_first_card(product)
    batch_id = product.store.requests.get(1).batch_id
    product.sandbox.faults.latency = 1.5

    product.poll()
    assert product.store.batches.get(batch_id).poll_failures == 1
    assert product.runtime.credit.check() is None

    product.sandbox.faults.latency = 0.0
    wait_for(lambda: all(r.status == 100 for r in product.sandbox.batches[batch_id].records), timeout=5,
             what="the sandbox to deliver")
    product.poll()
    assert product.store.batches.get(batch_id).state == "complete"
    assert product.runtime.credit.check() == 999.0
    assert "已送達 1" in thread_of(product, card)
    assert_no_python_text(thread_of(product, card))


def test_an_internal_error_during_a_send_leaves_it_unknown_not_stuck(make_product, monkeypatch) -> None:
    """A bug of ours while calling EVERY8D: the request must not stay `sending` forever, and the thread
    must not blame EVERY8D in Python words."""
    product = make_product(callback_token="")

    def broken(**_fields: object) -> None:
        raise KeyError("DEST")

    monkeypatch.setattr(product.runtime.gateway, "send_sms", broken)
    card = approve_first_card(product)
    assert product.store.requests.get(1).state is RequestState.UNKNOWN
    thread = thread_of(product, card)
    assert "發送時發生內部錯誤" in thread and "不會自動重送" in thread
    assert_no_python_text(thread)
    assert "KeyError" not in thread


# -- credit ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["-99", "http500", "html", "garbage", "reset"])
def test_credit_check_while_every8d_is_broken_says_so_and_shows_the_last_known_balance(
    make_product, fault: str
) -> None:
    product = make_product()
    without_backoff(product)
    user = SlackUser(product, "U_REQUESTER")

    product.sandbox.faults.inject(fault, count=10, endpoint=CREDIT)
    assert product.runtime.credit.check() is None  # the scheduled check: no exception, no alert
    user.command("credit")
    product.settle()
    answer = all_text(user.ephemerals()[-1])
    assert "目前無法取得點數，EVERY8D 暫時沒有回應" in answer
    assert_no_python_text(answer)
    assert product.standin.messages("C_ALERTS") == []

    product.sandbox.faults.clear()
    assert product.runtime.credit.check() == 1000.0
    product.sandbox.faults.inject(fault, count=10, endpoint=CREDIT)
    user.command("credit")
    product.settle()
    answer = all_text(user.ephemerals()[-1])
    assert "1,000.0 點" in answer and "EVERY8D 暫時沒有回應" in answer  # last known, and its age said
    assert_no_python_text(answer)
