"""services/drafts.py driven directly (no Bolt, no Slack): a draft is checked once, kept with the recipient
list it resolved, and that list is what its confirmation submits; confirming re-checks only what can change
while a preview is open (time, opt-outs, credit, budgets); the quiet-hours choice submits once."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

import services.audiences
import services.compose
from services.compose import ComposeInput
from services.drafts import OVERRIDE, SCHEDULE, DraftService, KeptAnswer, Verdict
from services.policy import Policy
from services.quiet_hours import QuietHours
from services.requests import RequestService
from storage import Store

TAIPEI = ZoneInfo("Asia/Taipei")
FIRST, SECOND, THIRD = "+886912345678", "+886922333444", "+886933444555"


def at(hour: int, minute: int = 0, *, day: int = 0) -> datetime:
    base = datetime.now(TAIPEI).date() + timedelta(days=3 + day)
    return datetime.combine(base, time(hour, minute), tzinfo=TAIPEI)


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "bot.db")
    yield opened
    opened.close()


def service(store: Store, moment: datetime = at(10, 0), **policy) -> DraftService:
    """Drafts over a real store, with quiet hours 21:00-08:00 and the clock at `moment`."""
    rules = Policy(approval_channel="C_APPROVALS", quiet_hours=QuietHours.parse("21:00-08:00"), **policy)
    clock = Clock(moment)
    requests = RequestService(store, rules, clock, on_approved=lambda request_id: None)
    return DraftService(store, rules, clock, requests)


def group(store: Store, name: str, *numbers: str) -> None:
    ids = [store.contacts.upsert(f"客戶{n[-3:]}", n) for n in numbers]
    store.contacts.add_to_group(name, ids)


@pytest.fixture
def reads(monkeypatch) -> dict[str, int]:
    """How often the full check runs and the recipient list is read (address book, phone rules)."""
    counted = {"prepare": 0, "resolve": 0, "parse": 0}

    def counting(name, original):
        def wrapper(*args, **kwargs):
            counted[name] += 1
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr("services.drafts.prepare", counting("prepare", services.compose.prepare))
    monkeypatch.setattr("services.audiences.resolve_entries", counting("resolve", services.audiences.resolve_entries))
    monkeypatch.setattr("services.compose.parse_recipients", counting("parse", services.compose.parse_recipients))
    return counted


# -- check -> keep -> confirm -> submit ------------------------------------------------------------------------


def test_a_kept_draft_is_submitted_once_and_then_gone(store):
    drafts = service(store)
    preview = drafts.check(ComposeInput("sms", "0912345678, 0922-333-444", "明天開會"), requester="U_A")
    assert preview.ok and len(preview.recipients.recipients) == 2
    draft_id = drafts.keep(preview, user="U_A", channel="C_GENERAL")
    assert drafts.load(draft_id, "U_OTHER") is None  # only its author
    draft = drafts.load(draft_id, "U_A")
    assert draft is not None and draft.channel == "C_GENERAL"

    outcome = drafts.submit_preview(draft, choice=None)

    assert outcome.verdict is Verdict.SUBMITTED and outcome.submitted is not None
    request = store.requests.get(outcome.submitted.request_id)
    assert request.requester == "U_A" and request.origin_channel == "C_GENERAL" and request.points == 2.0
    assert store.requests.recipients(request.id) == [FIRST, SECOND]
    assert drafts.load(draft_id, "U_A") is None  # used up


def test_confirming_reads_no_recipient_again(store, reads):
    drafts = service(store)
    group(store, "VIP", FIRST, SECOND)
    preview = drafts.check(ComposeInput("sms", "VIP, 0933444555", "週年慶"), requester="U_A")
    assert reads == {"prepare": 1, "resolve": 1, "parse": 1}
    draft = drafts.load(drafts.keep(preview, user="U_A", channel="C_GENERAL"), "U_A")

    outcome = drafts.submit_preview(draft, choice=None)

    assert outcome.verdict is Verdict.SUBMITTED
    assert reads == {"prepare": 1, "resolve": 1, "parse": 1}  # the preview's list, not a second reading
    assert sorted(store.requests.recipients(outcome.submitted.request_id)) == [FIRST, SECOND, THIRD]


def test_the_confirmed_list_is_the_previewed_one_even_if_the_group_changed(store):
    """The person confirmed the preview's recipients and price: someone added to the group meanwhile is not
    texted by that confirmation (they will be by the next send to the group)."""
    drafts = service(store)
    group(store, "VIP", FIRST, SECOND)
    preview = drafts.check(ComposeInput("sms", "VIP", "週年慶"), requester="U_A")
    draft = drafts.load(drafts.keep(preview, user="U_A", channel="C_GENERAL"), "U_A")
    group(store, "VIP", THIRD)  # added after the preview was shown

    outcome = drafts.submit_preview(draft, choice=None)

    assert sorted(store.requests.recipients(outcome.submitted.request_id)) == [FIRST, SECOND]
    assert outcome.preview.quote.points == preview.quote.points == 2.0


def test_a_number_that_opted_out_meanwhile_is_left_out_and_the_price_follows(store):
    drafts = service(store)
    preview = drafts.check(ComposeInput("sms", "0912345678, 0922333444", "通知"), requester="U_A")
    draft = drafts.load(drafts.keep(preview, user="U_A", channel="C_GENERAL"), "U_A")
    store.optouts.add(SECOND, source="reply", keyword="STOP")

    outcome = drafts.submit_preview(draft, choice=None)

    assert outcome.verdict is Verdict.SUBMITTED
    request = store.requests.get(outcome.submitted.request_id)
    assert store.requests.recipients(request.id) == [FIRST] and request.points == 1.0
    assert request.optout_skipped == 1


def test_nobody_left_after_opt_outs_submits_nothing(store):
    drafts = service(store)
    draft = drafts.load(drafts.keep(drafts.check(ComposeInput("sms", "0912345678", "通知")), user="U_A",
                                    channel="C"), "U_A")
    store.optouts.add(FIRST, source="reply", keyword="STOP")
    outcome = drafts.submit_preview(draft, choice=None)
    assert outcome.verdict is Verdict.INVALID and "退訂" in outcome.preview.problems[0].zh
    assert store.requests.get(1) is None


def test_a_scheduled_time_that_came_too_close_is_refused_at_confirmation(store):
    drafts = service(store, at(10, 0))
    preview = drafts.check(ComposeInput("sms", "0912345678", "通知", send_at=at(10, 30)), requester="U_A")
    draft = drafts.load(drafts.keep(preview, user="U_A", channel="C"), "U_A")
    drafts.clock.now = at(10, 30).timestamp()  # the preview was left open half an hour
    outcome = drafts.submit_preview(draft, choice=None)
    assert outcome.verdict is Verdict.INVALID and [p.field for p in outcome.preview.problems] == ["send_at"]


def test_a_draft_kept_by_an_earlier_version_is_checked_in_full(store, reads):
    drafts = service(store)
    draft_id = store.drafts.save("U_A", {"kind": "sms", "recipients_text": "0912345678", "message": "舊草稿"})
    draft = drafts.load(draft_id, "U_A", channel="C_GENERAL")
    assert draft is not None and not draft.resolved and draft.channel == "C_GENERAL"
    outcome = drafts.submit_preview(draft, choice=None)
    assert outcome.verdict is Verdict.SUBMITTED and reads["prepare"] == 1
    assert store.requests.recipients(outcome.submitted.request_id) == [FIRST]


# -- sending at once, and the quiet-hours choice -------------------------------------------------------------


def test_a_send_by_day_is_submitted_at_once(store, reads):
    outcome = service(store).send(ComposeInput("sms", "0912345678", "白天"), requester="U_A", channel="C")
    assert outcome.verdict is Verdict.SUBMITTED and store.requests.get(1) is not None
    assert reads == {"prepare": 1, "resolve": 1, "parse": 1}


def test_a_send_at_night_asks_and_scheduling_it_submits_the_kept_list_for_eight(store, reads):
    drafts = service(store, at(22, 30))
    asked = drafts.send(ComposeInput("sms", "0912345678", "明早開會"), requester="U_A", channel="C_GENERAL")
    assert asked.verdict is Verdict.ASK and asked.quiet_until == at(8, 0, day=1) and store.requests.get(1) is None

    assert drafts.choose_quiet(asked.draft_id, "U_OTHER", override=False).verdict is Verdict.GONE  # not theirs
    chosen = drafts.choose_quiet(asked.draft_id, "U_A", override=False)

    assert chosen.verdict is Verdict.SUBMITTED
    request = store.requests.get(chosen.submitted.request_id)
    assert request.send_at == at(8, 0, day=1).timestamp() and not request.quiet_override
    assert request.origin_channel == "C_GENERAL"
    assert reads == {"prepare": 1, "resolve": 1, "parse": 1}  # the question's draft was not read again
    assert drafts.choose_quiet(asked.draft_id, "U_A", override=True).verdict is Verdict.GONE  # once only
    assert store.requests.get(2) is None


def test_send_anyway_is_a_confirmed_override(store):
    drafts = service(store, at(22, 30))
    asked = drafts.send(ComposeInput("sms", "0912345678", "緊急"), requester="U_A", channel="C")
    chosen = drafts.choose_quiet(asked.draft_id, "U_A", override=True)
    request = store.requests.get(chosen.submitted.request_id)
    assert request.quiet_override and request.send_at is None
    assert [a["actor"] for a in store.audit.actions("quiet_hours_override")] == ["U_A"]


def test_the_modal_asks_when_quiet_hours_began_while_its_preview_was_open(store):
    drafts = service(store, at(20, 55))
    preview = drafts.check(ComposeInput("sms", "0912345678", "晚安"), requester="U_A")
    assert drafts.quiet_until(preview) is None  # nothing to ask when it was shown
    draft = drafts.load(drafts.keep(preview, user="U_A", channel="C"), "U_A")
    drafts.clock.now = at(21, 5).timestamp()

    asked = drafts.submit_preview(draft, choice=None)
    assert asked.verdict is Verdict.ASK and asked.draft_id == draft.id and store.requests.get(1) is None

    chosen = drafts.submit_preview(draft, choice=SCHEDULE)
    assert store.requests.get(chosen.submitted.request_id).send_at == at(8, 0, day=1).timestamp()


def test_the_modal_override_is_only_an_override_inside_quiet_hours(store):
    drafts = service(store, at(10, 0))
    draft = drafts.load(drafts.keep(drafts.check(ComposeInput("sms", "0912345678", "白天")), user="U_A",
                                    channel="C"), "U_A")
    outcome = drafts.submit_preview(draft, choice=OVERRIDE)
    assert not store.requests.get(outcome.submitted.request_id).quiet_override


# -- kept answers ------------------------------------------------------------------------------


def test_a_kept_answer_is_only_its_authors(store):
    drafts = service(store)
    draft_id = drafts.keep_answer("U_A", KeptAnswer("C", "1.0", "2.0", "三樓會議室", 7))
    assert drafts.kept_answer(draft_id, "U_B") is None
    assert drafts.kept_answer(draft_id, "U_A") == KeptAnswer("C", "1.0", "2.0", "三樓會議室", 7)
    assert drafts.load(draft_id, "U_A") is None  # an answer is not a send draft
    drafts.discard(draft_id)
    assert drafts.kept_answer(draft_id, "U_A") is None


def test_one_message_is_kept_once_even_when_slack_delivers_it_twice_at_once(store):
    """A redelivered event can run beside the first delivery: eight keeps of one message keep one answer."""
    import threading

    drafts = service(store)
    answer = KeptAnswer("C", "1.0", "2.0", "三樓會議室", 7)
    kept: list[str | None] = []
    threads = [threading.Thread(target=lambda: kept.append(drafts.keep_answer("U_A", answer))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([k for k in kept if k is not None]) == 1
