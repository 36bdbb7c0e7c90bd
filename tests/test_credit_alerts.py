"""Credit: one low-credit alert per crossing below the threshold (100 in the test configuration), a
recovery notice once it is back above threshold + margin (120), checked on the schedule and after
each send; `/sms credit` shows the balance and its trend."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from every8d.client import Every8dClient
from tests.harness import SlackUser, all_text
from tests.test_tracking import send_approved, wait_for


def alerts(product) -> list[dict]:
    return product.standin.messages("C_ALERTS")


def check(product, credit: float) -> None:
    """EVERY8D's balance is now `credit`; the scheduled check reads it; posts are delivered."""
    product.sandbox.set_credit(credit)
    product.runtime.credit.check()
    product.settle()


def test_low_credit_alerts_once_per_crossing_and_recovers(product):
    check(product, 500)
    assert alerts(product) == []

    check(product, 80)
    check(product, 60)
    check(product, 110)  # above the threshold but within the margin: still low, no notice
    check(product, 90)
    [low] = alerts(product)
    assert "點數不足" in all_text(low) and "80.0" in all_text(low) and "100.0" in all_text(low)

    check(product, 130)  # recovered past threshold + margin
    check(product, 140)
    assert len(alerts(product)) == 2 and "點數已回復" in all_text(alerts(product)[1])

    check(product, 95)  # a second crossing alerts again
    assert len(alerts(product)) == 3 and "95.0" in all_text(alerts(product)[2])


def test_a_send_that_takes_credit_below_the_threshold_alerts_without_waiting_for_the_schedule(make_product):
    product = make_product(sandbox_credit=101.0)
    send_approved(product, "send 0912345678,0922333444 扣點")
    [low] = alerts(product)
    assert "99.0" in all_text(low)


def test_simultaneous_readings_post_one_alert(product):
    """A send's reading and the scheduled check can land at the same moment."""
    start = threading.Barrier(8)

    def reading(_: int) -> None:
        start.wait()
        product.runtime.credit.observe(10.0)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(reading, range(8)))
    product.settle()
    assert len(alerts(product)) == 1


def test_a_restart_while_credit_is_low_does_not_repeat_the_alert(make_product):
    first = make_product()
    check(first, 50)
    assert len(alerts(first)) == 1
    first.stop()
    second = make_product()
    check(second, 50)
    assert len(alerts(second)) == 1


def test_credit_check_failures_are_logged_once_per_streak(product, caplog):
    with caplog.at_level(logging.INFO, logger="every8d_bot"):
        product.sandbox.faults.inject("-99", count=2, endpoint="getCredit.ashx")
        # No client-side retries: one failing call per check (retry pauses are the client's business).
        product.runtime.credit.gateway = Every8dClient(product.sandbox.base_url, "sandbox", "sandbox", retries=0)
        assert product.runtime.credit.check() is None
        assert product.runtime.credit.check() is None
        product.sandbox.faults.clear()
        assert product.runtime.credit.check() == 1000.0
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "credit check failed" in m]) == 1
    assert len([m for m in messages if "credit check works again" in m]) == 1


def test_sms_credit_shows_the_balance_and_its_trend(product):
    day = 86400.0
    now = time.time()
    for at, credit in ((now - 3 * day, 1600.0), (now - 2 * day, 1400.0), (now - day - 60, 1200.0)):
        product.store.credit.record(credit, source="poll", now=at)
    user = SlackUser(product, "U_REQUESTER")
    assert user.command("credit").status_code == 200
    wait_for(lambda: any("剩餘點數" in all_text(e) for e in user.ephemerals()), what="the credit answer")

    [answer] = [e for e in user.ephemerals() if "剩餘點數" in all_text(e)]
    text = all_text(answer)
    assert "1,000.0 點" in text  # the live balance
    assert "24 小時內 -200.0 點" in text  # against the reading a day ago
    assert "每日約用" in text and "天" in text  # burn rate and days left
