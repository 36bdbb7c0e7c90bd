"""Reply lookup (getReplyMessage) through the real product: with callbacks off a reply reaches the batch thread
and the replies channel by the lookup job alone; the same reply seen by push, poll and lookup is one reply;
a platform without the endpoint is reported once ("not supported by this account's platform"), then the
job stops calling it; rows EVERY8D's format broke are skipped and counted."""

from __future__ import annotations

import logging
import time

from bot.doctor import _platform
from every8d.endpoints import REPLIES
from services import capabilities
from tests.harness import all_text
from tests.test_tracking import (
    against,
    batch_id_of,
    external_sandbox,  # noqa: F401 - fixture
    reply_posts,
    send_approved,
    status_pages,
    wait_for,
)


def lookups(sandbox) -> int:
    return sum(1 for call in sandbox.calls if call.endpoint == REPLIES)


def test_with_callbacks_off_the_lookup_job_brings_a_reply_into_the_thread(make_product):
    product = make_product(callback_token="", sandbox_delivery_seconds=3600)
    card = send_approved(product, "send 0912345678 明天開會，請回覆")
    batch_id = batch_id_of(product)

    product.sandbox.simulate_reply(batch_id, "0912345678", "好的，會準時到")
    assert product.store.replies.count() == 0  # no push, no poll: nothing knows yet
    product.runtime.lookup_replies_once()
    product.settle()

    in_thread, in_channel = reply_posts(product, card)
    assert len(in_thread) == 1 and len(in_channel) == 1
    assert "好的，會準時到" in all_text(in_thread[0]) and "0912-***-678" in all_text(in_thread[0])
    [reply] = product.store.replies.for_batch(batch_id)
    assert reply.source == "lookup" and reply.mobile == "+886912345678"
    assert lookups(product.sandbox) == 1

    product.runtime.lookup_replies_once()  # asked again: nothing new, nothing posted twice
    product.settle()
    assert product.store.replies.count() == 1 and len(reply_posts(product, card)[0]) == 1


def test_the_same_reply_from_push_poll_and_lookup_is_one_reply_in_the_thread(make_product):
    product = make_product(sandbox_delivery_seconds=3600)
    card = send_approved(product, "send 0912345678 週五聚餐，請回覆")
    batch_id = batch_id_of(product)

    product.sandbox.simulate_reply(batch_id, "0912345678", "我會到 thanks")
    wait_for(lambda: product.sandbox.pending_callbacks == 0 and product.store.replies.count() == 1,
             what="the reply's push")
    product.runtime.lookup_replies_once()
    product.poll()
    product.runtime.lookup_replies_once()
    product.settle()

    assert product.store.replies.count() == 1
    in_thread, in_channel = reply_posts(product, card)
    assert len(in_thread) == 1 and len(in_channel) == 1
    assert lookups(product.sandbox) == 2


def test_a_completed_batch_is_still_looked_up_inside_its_reply_window_only(make_product):
    product = make_product(callback_token="", sandbox_delivery_seconds=0.2)
    send_approved(product, "send 0912345678 晚點回覆")
    batch_id = batch_id_of(product)
    time.sleep(0.3)
    product.poll()
    assert product.store.batches.get(batch_id).state == "complete"
    product.sandbox.simulate_reply(batch_id, "0912345678", "收到")
    product.runtime.lookup_replies_once()
    assert product.store.replies.count() == 1

    product.runtime.reply_lookup.clock = lambda: time.time() + 73 * 3600  # past BOT_REPLY_WINDOW_HOURS (72)
    calls = lookups(product.sandbox)
    product.runtime.lookup_replies_once()
    assert lookups(product.sandbox) == calls


def test_a_platform_without_getreplymessage_is_reported_once_and_no_longer_called(
        make_product, external_sandbox, caplog):  # noqa: F811
    sandbox = external_sandbox(legacy_platform=True, delivery_seconds=3600)
    product = make_product(**against(sandbox))
    send_approved(product, "send 0912345678 舊平台")
    batch_id = batch_id_of(product)
    sandbox.simulate_reply(batch_id, "0912345678", "hi")

    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            run = product.runtime.reply_lookup.run()
    assert run.unsupported
    assert lookups(sandbox) == 1  # asked once, then never again
    said = [r for r in caplog.records if "not supported by this account's platform" in r.getMessage()]
    assert len(said) == 1 and REPLIES in said[0].getMessage()
    assert len(product.store.audit.actions("endpoint_unsupported")) == 1
    [check] = _platform(product.store)
    assert REPLIES in check.name and "not supported by this account's platform" in check.detail_en and check.warning

    # A day later it is tried again (an account may move to a newer platform); still missing: quiet.
    later = time.time() + capabilities.REPROBE_SECONDS + 60
    assert not capabilities.is_unsupported(product.store, REPLIES, later)
    sandbox.legacy_platform = False
    product.runtime.reply_lookup.clock = lambda: later
    run = product.runtime.reply_lookup.run()
    assert not run.unsupported and run.new_replies == 1
    assert capabilities.unsupported_endpoints(product.store) == {}


def test_rows_broken_by_a_tab_or_line_break_are_skipped_and_counted(make_product, caplog):
    product = make_product(callback_token="", sandbox_delivery_seconds=3600)
    send_approved(product, "send 0912345678 請回覆")
    batch_id = batch_id_of(product)
    product.sandbox.simulate_reply(batch_id, "0912345678", "第一行\n第二行")
    product.sandbox.simulate_reply(batch_id, "0912345678", "好")

    with caplog.at_level(logging.WARNING):
        run = product.runtime.reply_lookup.run()
    assert run.suspect == 2 and run.new_replies == 1
    with caplog.at_level(logging.WARNING):
        again = product.runtime.reply_lookup.run()  # the broken rows are still listed: counted, not re-logged
    assert again.suspect == 2 and again.new_replies == 0
    said = [r for r in caplog.records if "unexpected field count" in r.getMessage()]
    assert len(said) == 1 and "2 reply rows" in said[0].getMessage()


def test_reply_lookup_can_be_turned_off(make_product):
    product = make_product(callback_token="", sandbox_delivery_seconds=3600, reply_lookup=False)
    send_approved(product, "send 0912345678 請回覆")
    product.runtime.lookup_replies_once()
    assert lookups(product.sandbox) == 0
    assert "reply-lookup" not in {job.id for job in product.runtime.scheduler.get_jobs()}


def test_a_wrong_login_pauses_the_lookup_instead_of_asking_again_every_run(make_product, external_sandbox):  # noqa: F811
    sandbox = external_sandbox(delivery_seconds=3600)
    product = make_product(**against(sandbox))
    send_approved(product, "send 0912345678 請回覆")
    sandbox._engine._pwd = b"changed-on-the-portal"  # the account's password changed under the bot
    for _ in range(3):
        product.runtime.reply_lookup.run()
    assert lookups(sandbox) == 1
    assert capabilities.unsupported_endpoints(product.store) == {}  # a wrong login is not a missing endpoint


def test_with_no_push_and_no_lookup_a_polled_reply_is_posted_without_its_text_and_says_why(make_product):
    """getDeliveryStatus carries no reply text (delta §4.5): where neither the push nor getReplyMessage can
    bring it, the reply still reaches the thread, once, with the reason and the setting that fixes it."""
    product = make_product(callback_token="", reply_lookup=False, reply_poll_seconds=0.2)
    card = send_approved(product, "send 0912345678 明天開會，請回覆")
    batch_id = batch_id_of(product)
    wait_for(lambda: (product.poll(), product.store.batches.get(batch_id).state == "complete")[1], 10, "delivery")
    product.sandbox.simulate_reply(batch_id, "0912345678", "好的")
    wait_for(lambda: (product.poll(), product.store.replies.count() == 1)[1], 10, "the polled reply")
    for _ in range(3):  # polled again: still one reply
        time.sleep(0.25)
        product.poll()
    product.settle()
    in_thread, in_channel = reply_posts(product, card)
    assert len(in_thread) == 1 and len(in_channel) == 1
    text = all_text(in_thread[0])
    assert "0912-***-678" in text and "EVERY8D_CALLBACK_TOKEN" in text and "好的" not in text
    [reply] = product.store.replies.for_batch(batch_id)
    assert reply.source == "poll" and reply.text == ""


def test_with_the_lookup_on_a_polled_reply_row_waits_for_its_text(make_product):
    product = make_product(callback_token="", reply_poll_seconds=0.2)
    send_approved(product, "send 0912345678 請回覆")
    batch_id = batch_id_of(product)
    wait_for(lambda: (product.poll(), product.store.batches.get(batch_id).state == "complete")[1], 10, "delivery")
    product.sandbox.simulate_reply(batch_id, "0912345678", "收到")
    polls = len(status_pages(product.sandbox))
    wait_for(lambda: (product.poll(), len(status_pages(product.sandbox)) >= polls + 2)[1], 10, "two polls")
    product.settle()
    assert product.store.replies.count() == 0  # the lookup brings it, with its text
    product.runtime.lookup_replies_once()
    assert [r.text for r in product.store.replies.for_batch(batch_id)] == ["收到"]
