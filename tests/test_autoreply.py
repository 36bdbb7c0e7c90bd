"""Auto-replies (`/sms autoreply`): a reply that is exactly a keyword gets the rule's SMS back, once per
number per cool-down; a reply inside quiet hours gets the out-of-hours text; an opt-out never triggers one.
Each automatic answer is an ordinary request in the batch's thread, priced and audited."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.harness import SlackUser, all_text, wait_until
from tests.test_tracking import against, batch_id_of, external_sandbox, send_approved, thread

__all__ = ["external_sandbox"]
TAIPEI = ZoneInfo("Asia/Taipei")


def answer(product, user: str, text: str) -> str:
    return all_text(SlackUser(product, user).command(f"autoreply {text}").json())


def sent(sandbox) -> list[tuple[str, str]]:
    return [(c.params["DEST"], c.params["MSG"]) for c in sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]


def delivered(make_product, external_sandbox, **config):
    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], background=False)
    product = make_product(**against(sandbox), **config)
    card = send_approved(product, "send 0912345678,0922333444 週年慶開跑")
    return product, sandbox, card, now


def test_a_keyword_reply_gets_the_rules_answer_once_per_cooldown(make_product, external_sandbox):
    product, sandbox, card, now = delivered(make_product, external_sandbox)
    assert "已新增" in answer(product, "U_APPROVER", "add 營業時間 週一至週五 9:00-18:00")
    batch = batch_id_of(product)
    sandbox.simulate_reply(batch, "0912345678", "ＢＵＳＩＮＥＳＳ")  # not a rule: nothing
    sandbox.simulate_reply(batch, "0912345678", " 營業 時間 ")
    product.poll()
    product.runtime.lookup_replies_once()  # the reply texts: getReplyMessage, not status rows
    wait_until(lambda: len(sent(sandbox)) == 2)
    product.settle()
    assert sent(sandbox)[-1] == ("+886912345678", "週一至週五 9:00-18:00")
    assert any("自動回覆" in all_text(m) for m in thread(product, card))  # shown in the batch's thread
    assert product.store.audit.actions("autoreply_sent")
    now[0] += 5
    sandbox.simulate_reply(batch, "0912345678", "營業時間")  # again within the cool-down: no second answer
    product.poll()
    product.runtime.lookup_replies_once()  # the reply texts: getReplyMessage, not status rows
    product.settle()
    assert len(sent(sandbox)) == 2


def test_the_out_of_hours_text_answers_replies_inside_quiet_hours_and_opt_outs_never(make_product, external_sandbox):
    later = datetime.now(TAIPEI) + timedelta(hours=2)  # a window that starts two hours from now
    window = f"{later:%H:%M}-{later + timedelta(minutes=30):%H:%M}"
    product, sandbox, card, now = delivered(make_product, external_sandbox, quiet_hours=window)
    assert "已新增" in answer(product, "U_APPROVER", "outofhours 已收到，我們明早回覆")
    batch = batch_id_of(product)
    sandbox.simulate_reply(batch, "0912345678", "現在呢？")  # outside the window: no answer
    inside = (later + timedelta(minutes=10)).timestamp()
    now[0] = inside
    sandbox.simulate_reply(batch, "0922333444", "退訂", at=inside)
    sandbox.simulate_reply(batch, "0912345678", "請問何時出貨？", at=inside)
    product.poll()
    product.runtime.lookup_replies_once()  # the reply texts: getReplyMessage, not status rows
    wait_until(lambda: len(sent(sandbox)) == 2)
    product.settle()
    assert sent(sandbox)[1:] == [("+886912345678", "已收到，我們明早回覆")]  # not to the one who opted out


def test_only_approvers_change_rules_and_bad_rules_are_named(product):
    assert "只有核准者" in answer(product, "U_REQUESTER", "add 價格 請見官網")
    assert "退訂關鍵字" in answer(product, "U_APPROVER", "add STOP ok")
    assert "找不到範本" in answer(product, "U_APPROVER", "add 價格 @沒有這個")
    assert "尚未設定自動回覆" in answer(product, "U_REQUESTER", "")
    assert "已新增" in answer(product, "U_APPROVER", "add 價格 請見官網")
    assert "`價格` → 請見官網" in answer(product, "U_REQUESTER", "")
    assert "已移除" in answer(product, "U_APPROVER", "remove 價格")
