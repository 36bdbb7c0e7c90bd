"""Every code EVERY8D documents, produced by the sandbox on request and read by the client over real HTTP:
each delivery status (either official revision and the later one) with its zh-TW and English meaning,
final or not, failure or not; each endpoint error code in words a user understands, with its retry rule
(authentication codes never retried, -99 retried only where a call may be repeated, cancel's -3/-4 as
"nothing to cancel" and -8 retried); any other negative code as "EVERY8D error code N" with the server's
text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from every8d.callback import parse_callback
from every8d.client import Every8dClient
from every8d.codes import documented_codes
from every8d.endpoints import CANCEL_MMS, CANCEL_SMS, CREDIT, SEND_MMS, SEND_SMS, STATUS_MMS, STATUS_SMS
from every8d.errors import CredentialError, ProviderError
from every8d.results import CancelResult, NothingToCancel, ParamRecipient
from every8d.sandbox import Sandbox
from every8d.status import Outcome, all_statuses, is_known, status_for
from tests.harness import all_text
from tests.test_client_against_sandbox import (
    PNG,
    FakeClock,
    _Receiver,
    calls_to,
    clock,  # noqa: F401 - fixture
    connect,
    later,
    sleeps,  # noqa: F401 - fixture
)
from tests.test_tracking import send_approved

#: Every delivery code of either version (delta notes §9), the later revision's -8 and -10 included.
EVERY_DELIVERY_CODE = [0, 100, 101, 102, 103, 104, 105, 106, 107, 300, 301, 303, 500, 700, 888, 999,
                       -1, -2, -3, -4, -5, -6, -8, -10]
FAILURES = {101, 102, 103, 104, 105, 106, 107, 301, 500, -1, -2, -3, -4, -5, -6, -8, -10}
FORCED = "0912000005"


# -- the table ---------------------------------------------------------------------------------------------


def test_every_delivery_code_has_both_meanings_finality_and_outcome():
    table = {s.code: s for s in all_statuses()}
    assert sorted(table) == sorted(EVERY_DELIVERY_CODE)
    for code, status in table.items():
        assert status.zh and status.en and "未知" not in status.zh and "unknown" not in status.en, code
        assert (status.outcome is Outcome.FAILED) == (code in FAILURES), code
        if code in FAILURES:
            assert status.final, f"a failure code closes the recipient at once: {code}"
    assert not table[0].final and not table[300].final
    # 700: the MMS table's last state (it has no delivered or failed); final, not a failure (delta §9)
    assert table[700].final and table[700].outcome is Outcome.SENT
    assert table[100].outcome is Outcome.DELIVERED and table[303].outcome is Outcome.CANCELLED
    assert table[888].outcome is Outcome.TEST and table[999].outcome is Outcome.REPLY
    # 104 is the blacklist; 105/106 carry both readings: equipment (2017/2021) and content blocked (later).
    assert "blacklist" in table[104].en and "黑名單" in table[104].zh
    for code in (105, 106):
        assert "blocked" in table[code].en and "攔截" in table[code].zh and "equipment" in table[code].en


def test_a_code_no_table_knows_reads_unknown_code_n_and_stays_pending():
    status = status_for(4242)
    assert (status.zh, status.en) == ("未知代碼 4242", "unknown code 4242")
    assert status.outcome is Outcome.UNKNOWN and not status.final and not is_known(4242)


# -- delivery statuses, produced by the sandbox and read over HTTP ------------------------------------------


@pytest.fixture
def pushes() -> Iterator[_Receiver]:
    receiver = _Receiver()
    yield receiver
    receiver.close()


@pytest.mark.parametrize("code", [c for c in EVERY_DELIVERY_CODE if c != 999] + [4242])
def test_the_sandbox_produces_every_delivery_code_read_by_poll_and_push(
    code: int, clock: FakeClock, sleeps: list[float], pushes: _Receiver  # noqa: F811
):
    with Sandbox(clock=clock, background=False, callback_url=pushes.url, delivery_seconds=2.0) as sandbox:
        sandbox.faults.force_status(FORCED, code)
        with connect(sandbox, sleeps) as client:
            batch_id = client.send_sms(message="代碼測試", recipients=["0912000001", FORCED]).batch_id
            later(clock, sandbox, 3)
            records = {r.mobile: r.status for r in client.iter_delivery_status(batch_id)}
    assert records["+886912000001"].code == 100
    polled = records["+886912000005"]
    assert polled.code == code and polled == status_for(code)
    pushed = [parse_callback(q) for q in pushes.queries]
    last = [r for r in pushed if r.mobile == "+886912000005"][-1]
    assert last.status.code == code and last.batch_id == batch_id
    if code < 0 or code in (301, 500):
        # Refused up front: one push only, nothing charged, final at once.
        assert len([r for r in pushed if r.mobile == "+886912000005"]) == 1 and last.charge == 0.0


def test_a_forced_failure_in_an_mms_batch(clock: FakeClock, sleeps: list[float]):  # noqa: F811
    with Sandbox(clock=clock, background=False) as sandbox:
        sandbox.faults.force_status(FORCED, -10)
        with connect(sandbox, sleeps) as client:
            batch_id = client.send_mms(subject="週年慶", message="圖", image=PNG, image_type="png",
                                       recipients=[FORCED]).batch_id
            later(clock, sandbox, 3)
            [record] = client.iter_delivery_status(batch_id, mms=True)
    assert record.status.code == -10 and "多媒體" in record.status.zh


# -- endpoint errors ------------------------------------------------------------------------------------------


def _call(client: Every8dClient, endpoint: str):
    if endpoint == SEND_SMS:
        return client.send_sms(message="hi", recipients=["0912345678"])
    if endpoint == SEND_MMS:
        return client.send_mms(subject="s", message="m", image=PNG, image_type="png", recipients=["0912345678"])
    if endpoint in (STATUS_SMS, STATUS_MMS):
        return list(client.iter_delivery_status("220478cc-8506-49b2-93b7-2505f651c12e", mms=endpoint == STATUS_MMS))
    if endpoint == CREDIT:
        return client.get_credit()
    return (client.cancel_mms if endpoint == CANCEL_MMS else client.cancel_sms)("220478cc-8506-49b2-93b7-2505f651c12e")


CASES = [(endpoint, code) for endpoint in (SEND_SMS, SEND_MMS, STATUS_SMS, STATUS_MMS, CREDIT, CANCEL_SMS, CANCEL_MMS)
         for code in documented_codes(endpoint)]


@pytest.mark.parametrize(("endpoint", "code"), CASES)
def test_each_documented_endpoint_code_in_words_with_its_retry_rule(
    endpoint: str, code: int, clock: FakeClock, sleeps: list[float]  # noqa: F811
):
    with Sandbox(clock=clock, background=False) as sandbox:
        sandbox.faults.inject(str(code), count=10, endpoint=endpoint)
        with connect(sandbox, sleeps) as client:
            if endpoint in (CANCEL_SMS, CANCEL_MMS) and code in (-3, -4):
                answer = _call(client, endpoint)
                assert isinstance(answer, NothingToCancel) and answer.code == code
                assert calls_to(sandbox, endpoint) == 1
                return
            with pytest.raises(ProviderError if code not in (-100, -101, -300) else CredentialError) as caught:
                _call(client, endpoint)
    error = caught.value
    assert error.code == code and error.server_message  # EVERY8D's own text kept for support
    assert "error code" not in error.en and "錯誤代碼" not in error.zh  # words, not a bare number
    retried = code == -99 and endpoint not in (SEND_SMS, SEND_MMS) or code == -8
    assert calls_to(sandbox, endpoint) == (3 if retried else 1), "retry rule"
    if code in (-100, -101, -300):
        assert "not retried" in error.en and "不會自動重試" in error.zh


@pytest.mark.parametrize("endpoint", [SEND_SMS, CREDIT, CANCEL_SMS, STATUS_SMS])
def test_any_other_negative_code_is_every8d_error_code_n_keeping_the_server_text(
    endpoint: str, clock: FakeClock, sleeps: list[float]  # noqa: F811
):
    with Sandbox(clock=clock, background=False) as sandbox:
        sandbox.faults.inject("-77", endpoint=endpoint)
        with connect(sandbox, sleeps) as client, pytest.raises(ProviderError) as caught:
            _call(client, endpoint)
    assert caught.value.en == "EVERY8D error code -77" and caught.value.zh == "EVERY8D 錯誤代碼 -77"
    assert caught.value.server_message == "發生錯誤。" and "發生錯誤。" in caught.value.describe("en")
    assert calls_to(sandbox, endpoint) == 1


def test_a_cancel_refused_with_minus_8_once_succeeds_on_the_clients_retry(
    clock: FakeClock, sleeps: list[float]  # noqa: F811
):
    with Sandbox(clock=clock, background=False) as sandbox, connect(sandbox, sleeps) as client:
        send_at = datetime.fromtimestamp(clock.now, tz=UTC) + timedelta(hours=2)
        batch_id = client.send_sms(message="預約", recipients=["0912345678"], send_at=send_at).batch_id
        sandbox.faults.inject("-8", endpoint=CANCEL_SMS)
        answer = client.cancel_sms(batch_id)
    assert isinstance(answer, CancelResult) and answer.deleted == 1
    assert calls_to(sandbox, CANCEL_SMS) == 2 and sleeps


def test_a_personalised_sends_pushes_carry_each_recipients_own_text_and_mr(
    clock: FakeClock, sleeps: list[float], pushes: _Receiver  # noqa: F811
):
    with Sandbox(clock=clock, background=False, callback_url=pushes.url, delivery_seconds=2.0) as sandbox:
        with connect(sandbox, sleeps) as client:
            batch_id = client.send_param_sms(recipients=[ParamRecipient("0912000001", "王先生您好", mr="r1"),
                                                         ParamRecipient("0912000002", "Amy, hello", mr="r2")],
                                             subject="#R1@abcd").batch_id
            later(clock, sandbox, 3)
    pushed = [parse_callback(q) for q in pushes.queries]
    assert {(r.mobile, r.text, r.record_no, r.subject) for r in pushed if r.status.code == 100} == {
        ("+886912000001", "王先生您好", "r1", "#R1@abcd"), ("+886912000002", "Amy, hello", "r2", "#R1@abcd")}
    assert all(r.batch_id == batch_id and "SB" not in r.raw for r in pushed)


def test_a_recipient_refused_for_a_wrong_password_alerts_a_person_once(make_product):
    product = make_product(callback_token="")  # polling alone reads it
    product.sandbox.faults.force_status("0912345678", -2)
    send_approved(product, "send 0912345678,0922333444 帳密測試")
    for _ in range(3):
        product.poll()
        time.sleep(0.4)
    alerts = [all_text(m) for m in product.standin.messages("C_ALERTS") if "-2" in all_text(m)]
    assert len(alerts) == 1 and "EVERY8D_PWD" in alerts[0] and "帳號或密碼錯誤" in alerts[0]
