"""Both languages, cleanly: everything the bot says, driven through a broad scenario, is checked in each
mode. In `en` nothing Chinese may appear (with every typed input in ASCII, any CJK character or full-width
punctuation comes from the bot's own words), English counts have their plurals; in `both` no sentence may
be put inside the other language's half (`Request #3 is 已駁回 / rejected`)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from handlers.texts import Voice
from slackstandin import payloads as p
from tests.harness import SlackUser, all_text, button, wait_until
from tests.test_compose_modal import open_compose, values
from tests.test_tracking import against, approve, external_sandbox

__all__ = ["external_sandbox"]

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
ONE_PLURAL = re.compile(r"(?<![\d.,])1 (recipients|messages|points|parts|batches|rows|replies|numbers|days|entries)\b")


def drive_everything(make_product, external_sandbox, language: str) -> tuple[object, list[str]]:
    """Requests, refusals, a rejection, a send with failures, a resend, a reply, low credit, the compose
    window, App Home, reports and every /sms subcommand, with ASCII input; returns the product and every
    answer Slack got in HTTP responses."""
    now = [time.time()]
    sandbox = external_sandbox(clock=lambda: now[0], background=False, failing_numbers={"0933444555": 101})
    product = make_product(language=language, every8d_timeout=1.0, **against(sandbox))
    requester, approver = SlackUser(product, "U_REQUESTER"), SlackUser(product, "U_APPROVER")
    acks: list[str] = []

    def said(response) -> None:
        if response.text:
            acks.append(response.text)

    for text in ("help", "sned 0912345678 hi", "0912345678 hi", "credit", "status #99", "scheduled", "optout",
                 "contacts", "templates", "audit 7d", "report", "send 02-2345-6789 hello",
                 "budget", "budget set here 5"):
        said(requester.command(text))
    for text in ("contacts add Amy 0912345678", "contacts add Ben 0922333444 vip", "contacts group VIPs Amy,Ben",
                 "contacts", "templates add greet Hello {name}", "templates", "optout add 0955666777", "optout",
                 "audit 7d", "report 7d", "audit 2026-13-01 2026-11-30", "budget set <#C_GENERAL|general> 1000",
                 "budget set <@U_REQUESTER> 500", "budget", "budget set #general 5", "budget remove <@U_REQUESTER>"):
        said(approver.command(text))
    said(requester.command("send 0912345678,0933444555 Meeting at ten"))
    said(requester.command("send 0922333444 Please ignore"))
    product.settle()
    cards = product.standin.messages("C_APPROVALS")
    first = next(c for c in cards if (button(c, "approve_request") or {}).get("value") == "1")
    second = next(c for c in cards if (button(c, "approve_request") or {}).get("value") == "2")
    said(requester.click("approve_request", "1", message=first))  # own request: refused
    approve(product, first, 1)
    approver.click("reject_request", "2", message=second)
    [view] = wait_until(lambda: product.standin.open_views("U_APPROVER"))
    said(approver.submit(view, {"reason": p.plain_text_input("value", "Wrong list")}))
    product.settle()
    now[0] += 10
    product.poll()
    summary = next(m for m in product.standin.thread("C_APPROVALS", first["ts"]) if button(m, "resend_failed"))
    SlackUser(product, "U_OTHER", channel="C_APPROVALS").click("resend_failed", "1", message=summary)
    sandbox.simulate_reply(product.store.requests.get(1).batch_id, "0912345678", "Thanks, see you")
    product.poll()
    sandbox.set_credit(12.0)
    product.runtime.credit.check()
    said(requester.command("status #1"))
    # a send whose answer is lost: outcome unknown, then marked as sent
    sandbox.faults.hang_seconds = 1.5
    sandbox.faults.inject("accept_then_hang", endpoint="sendSMS.ashx")
    said(requester.command("send 0944555666 Lost answer"))
    product.settle()
    lost = product.standin.messages("C_APPROVALS")[-1]
    approve(product, lost, 4)
    lost = next(m for m in product.standin.messages("C_APPROVALS") if button(m, "mark_sent"))
    said(approver.click("mark_sent", "4", message=lost))
    # a scheduled send, listed and cancelled
    view = open_compose(product, requester)
    pushed = requester.submit(view, values(recipients="0912345678", message="Later", send_at=int(time.time()) + 7200))
    said(pushed)
    said(requester.submit(pushed.json()["view"], {}))
    product.settle()
    scheduled = next(m for m in product.standin.messages("C_APPROVALS") if (button(m, "approve_request") or {}).get("value") == "5")
    approve(product, scheduled, 5)
    said(requester.command("scheduled"))
    said(requester.click("cancel_scheduled", "5", message=scheduled))
    product.settle()
    view = open_compose(product, requester)
    said(requester.submit(view, values(recipients="02-2345-6789", message="Hello")))
    answer = requester.submit(view, values(recipients="0912345678", message="Hello " + "x" * 80))
    said(answer)
    for user in ("U_REQUESTER", "U_APPROVER"):
        SlackUser(product, user)._post(p.event_callback(p.app_home_opened(user)), content_type=p.JSON_TYPE)
    product.settle()
    return product, acks


def everything_said(product, acks: list[str]) -> Iterator[tuple[str, str]]:
    """(where, text) for every text the bot handed Slack: API calls, response_url posts, HTTP answers."""
    for call in product.standin.calls:
        params = call.params
        for key in ("text", "initial_comment", "title", "alt_txt"):
            if isinstance(params.get(key), str):
                yield f"{call.method}.{key}", params[key]
        for key in ("blocks", "view"):
            value = params.get(key)
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    continue
            if value:
                yield f"{call.method}.{key}", all_text(value if isinstance(value, dict) else {"blocks": value})
    for response in product.standin.responses:
        yield "response_url", all_text(response.get("body", response))
    for ack in acks:
        try:
            answer = json.loads(ack)
        except ValueError:
            yield "ack", ack
            continue
        yield "ack", all_text(answer) if isinstance(answer, dict) else str(answer)


@pytest.fixture
def no_nesting(monkeypatch):
    """Each `Voice.t` output is marked; a call whose zh or en half already holds a marked output is one
    language nested inside the other."""
    nested: list[str] = []
    mark = "\u2063"
    original = Voice.t

    def t(self, zh: str, en: str) -> str:
        if self.language == "both" and (mark in zh or mark in en):
            nested.append(f"{zh.replace(mark, '')} | {en.replace(mark, '')}")
        out = original(self, zh, en)
        return f"{mark}{out}{mark}" if self.language == "both" else out

    monkeypatch.setattr(Voice, "t", t)
    return nested


def test_english_mode_says_nothing_in_chinese_and_counts_in_english(make_product, external_sandbox):
    product, acks = drive_everything(make_product, external_sandbox, "en")
    seen = list(everything_said(product, acks))
    assert len(seen) > 60  # the scenario reached many surfaces
    chinese = sorted({f"{where}: {line.strip()}" for where, text in seen for line in text.splitlines()
                      if CJK.search(line)})
    assert not chinese, "Chinese in English mode:\n" + "\n".join(chinese[:40])
    plurals = sorted({f"{where}: {m.group()}" for where, text in seen for m in ONE_PLURAL.finditer(text)})
    assert not plurals, plurals


def test_both_mode_never_puts_one_language_inside_the_other(make_product, external_sandbox, no_nesting):
    product, acks = drive_everything(make_product, external_sandbox, "both")
    assert len(list(everything_said(product, acks))) > 60
    assert not no_nesting, "nested pairs:\n" + "\n".join(sorted(set(no_nesting))[:40])
