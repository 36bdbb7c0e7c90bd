"""Quiet hours, driven as Slack drives them, on a product whose clock is fixed at 22:30 Taipei time: a send
that would go out inside them is not submitted until the person chooses to schedule it for 08:00 or to send
anyway (audited, shown on the card); the window itself crosses midnight and is configurable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config, ConfigError
from services.quiet_hours import QuietHours
from slackstandin import payloads as p
from tests.harness import Product, SlackUser, all_text, button, make_config, wait_until
from tests.test_conversations import answered, type_in_thread

TAIPEI = ZoneInfo("Asia/Taipei")
QUIET = QuietHours.parse("21:00-08:00")


def at(hour: int, minute: int = 0, *, day: int = 0) -> datetime:
    """A Taipei time a few days ahead of the real clock (so a time scheduled from it is ahead for the sandbox)."""
    base = datetime.now(TAIPEI).date() + timedelta(days=3 + day)
    return datetime.combine(base, time(hour, minute), tzinfo=TAIPEI)


NIGHT = at(22, 30)
MORNING = at(8, 0, day=1)


class FixedClock:
    """The product's clock: stands still at `now` until a test moves it."""

    def __init__(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def night(standin, tmp_path):
    """The product at 22:30 (or `at`), quiet hours 21:00-08:00 (BOT_QUIET_HOURS's default)."""
    built: list[Product] = []

    def build(moment: datetime = NIGHT, **overrides) -> Product:
        config = make_config(standin, tmp_path / f"bot{len(built)}.db", quiet_hours="21:00-08:00", **overrides)
        product = Product(config, standin, clock=FixedClock(moment))
        built.append(product)
        return product

    yield build
    for product in built:
        product.stop()


def sends(product: Product) -> list:
    return [c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]


# -- the window ------------------------------------------------------------------------------------------------


def test_the_window_crosses_midnight_and_ends_at_its_end():
    assert QUIET.contains(at(21, 0)) and QUIET.contains(at(23, 59)) and QUIET.contains(at(3, 0))
    assert not QUIET.contains(at(8, 0)) and not QUIET.contains(at(20, 59)) and not QUIET.contains(at(12, 0))
    assert QUIET.next_allowed(at(22, 30)) == at(8, 0, day=1)
    assert QUIET.next_allowed(at(3, 0)) == at(8, 0)
    assert QUIET.next_allowed(at(12, 0)) == at(12, 0)
    assert QUIET.contains(at(14, 0).astimezone(UTC)) is False and QUIET.contains(at(23, 0).astimezone(UTC))


def test_a_window_within_one_day_and_the_off_switch():
    lunch = QuietHours.parse("12:00-13:30")
    assert lunch.contains(at(12, 0)) and lunch.contains(at(13, 29)) and not lunch.contains(at(13, 30))
    assert lunch.next_allowed(at(12, 15)) == at(13, 30)
    assert QuietHours.parse("") is None


@pytest.mark.parametrize("value", ["25:00-08:00", "21:00", "9pm-8am", "08:00-08:00"])
def test_a_bad_setting_is_refused_naming_the_variable(value):
    with pytest.raises(ConfigError) as error:
        Config.from_env({"BOT_QUIET_HOURS": value}, dotenv=None)
    assert "BOT_QUIET_HOURS" in str(error.value)


def test_quiet_hours_are_on_by_default_and_can_be_turned_off():
    default = Config.from_env({}, dotenv=None).quiet_window
    assert default is not None and default.label == "12:30-13:30, 21:00-08:00"  # lunch break and night
    assert Config.from_env({"BOT_QUIET_HOURS": "21:00-08:00"}, dotenv=None).quiet_window == QUIET
    assert Config.from_env({"BOT_QUIET_HOURS": ""}, dotenv=None).quiet_window is None


@pytest.mark.parametrize(("local", "inside", "allowed"), [
    ("12:29", False, "12:29"), ("12:30", True, "13:30"), ("13:29", True, "13:30"), ("13:30", False, "13:30"),
    ("20:59", False, "20:59"), ("23:00", True, "08:00"), ("07:59", True, "08:00"), ("08:00", False, "08:00"),
])
def test_the_taiwan_default_has_a_lunch_window_and_a_night_window(local, inside, allowed):
    quiet = QuietHours.parse("12:30-13:30,21:00-08:00")
    hour, minute = (int(x) for x in local.split(":"))
    moment = datetime(2026, 12, 3, hour, minute, tzinfo=TAIPEI)
    assert quiet.contains(moment) is inside
    assert f"{quiet.next_allowed(moment):%H:%M}" == allowed


def test_overlapping_windows_end_at_the_last_end_and_bad_parts_are_named():
    quiet = QuietHours.parse("21:00-23:00, 22:30-08:00")
    after = quiet.next_allowed(datetime(2026, 12, 3, 21, 30, tzinfo=TAIPEI))
    assert (after.day, f"{after:%H:%M}") == (4, "08:00")
    with pytest.raises(ValueError, match="25:00-26:00"):
        QuietHours.parse("12:30-13:30,25:00-26:00")
    with pytest.raises(ConfigError, match="'lunch'"):
        Config.from_env({"BOT_QUIET_HOURS": "12:30-13:30,lunch"}, dotenv=None)


# -- the one-line send -----------------------------------------------------------------------------------------


def test_a_send_at_night_asks_first_and_scheduling_it_sends_at_eight(night):
    product = night()
    requester = SlackUser(product, "U_REQUESTER")
    question = requester.command("send 0912345678 明早開會").json()
    assert "勿擾時段" in all_text(question) and "#1" not in all_text(question)
    schedule = button(question, "quiet_hours_schedule")
    assert schedule is not None and "08:00" in all_text(question)
    product.settle()
    assert product.store.requests.get(1) is None and product.standin.messages("C_APPROVALS") == []

    SlackUser(product, "U_OTHER").click("quiet_hours_schedule", schedule["value"])  # not their draft
    assert wait_until(lambda: any("不是您的" in all_text(r) for r in product.standin.responses))
    assert product.store.requests.get(1) is None

    requester.click("quiet_hours_schedule", schedule["value"])
    assert wait_until(lambda: any("#1" in all_text(r) for r in product.standin.responses))
    assert product.standin.responses[-1]["replace_original"]  # the question is replaced by the answer
    product.settle()
    request = product.store.requests.get(1)
    assert request.send_at == MORNING.timestamp() and not request.quiet_override
    [card] = product.standin.messages("C_APPROVALS")
    assert "預約發送" in all_text(card) and "08:00" in all_text(card)

    requester.click("quiet_hours_override", schedule["value"])  # a second press creates nothing
    # ... and names the request the first made (it used to say "expired, type /sms send again": a second request)
    assert wait_until(lambda: any("已處理過" in all_text(r) and "#1" in all_text(r) for r in product.standin.responses))
    product.settle()
    assert product.store.requests.get(2) is None

    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    assert wait_until(lambda: product.store.requests.get(1).state == "sent")
    assert sends(product)[0].params["ST"] == MORNING.strftime("%Y%m%d%H%M%S")


def test_send_now_anyway_is_audited_and_shown_on_the_card(night):
    product = night()
    requester = SlackUser(product, "U_REQUESTER")
    override = button(requester.command("send 0912345678 緊急通知").json(), "quiet_hours_override")
    requester.click("quiet_hours_override", override["value"])
    assert wait_until(lambda: product.store.requests.get(1))
    product.settle()
    request = product.store.requests.get(1)
    assert request.quiet_override and request.send_at is None
    assert [a["actor"] for a in product.store.audit.actions("quiet_hours_override")] == ["U_REQUESTER"]
    [card] = product.standin.messages("C_APPROVALS")
    assert "於勿擾時段發送（已確認）" in all_text(card)
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    assert wait_until(lambda: product.store.requests.get(1).state == "sent")
    assert not sends(product)[0].params.get("ST")


def test_auto_approved_sends_are_not_exempt(night):
    product = night(auto_approve_under=100.0)
    question = SlackUser(product, "U_REQUESTER").command("send 0912345678 小額通知").json()
    assert button(question, "quiet_hours_schedule") is not None
    product.settle()
    assert product.store.requests.get(1) is None and sends(product) == []


def test_a_send_by_day_asks_nothing(night):
    product = night(at(10, 0))
    answer = SlackUser(product, "U_REQUESTER").command("send 0912345678 白天通知").json()
    assert "#1" in all_text(answer) and button(answer, "quiet_hours_schedule") is None


# -- the compose modal -----------------------------------------------------------------------------------------


def preview_of(product: Product, user: SlackUser, send_at: datetime | None = None) -> dict:
    user.command("")
    [view] = wait_until(lambda: product.standin.open_views(user.user_id))
    values = {
        "kind": p.radio_buttons("compose_kind", "sms"),
        "recipients": p.plain_text_input("value", "0912345678"),
        "message": p.plain_text_input("value", "您好"),
        "send_at": p.datetimepicker("value", int(send_at.timestamp()) if send_at else None),
    }
    return user.submit(view, values).json()["view"]


def test_a_time_chosen_inside_quiet_hours_is_moved_to_eight_by_default(night):
    product = night()
    user = SlackUser(product, "U_REQUESTER")
    preview = preview_of(product, user, send_at=at(23, 0, day=1))
    assert "勿擾時段" in all_text(preview) and "quiet" in {b.get("block_id") for b in preview["blocks"]}
    user.submit(preview, {"quiet": p.radio_buttons("value", "schedule")})
    product.settle()
    request = product.store.requests.get(1)
    assert request.send_at == at(8, 0, day=2).timestamp() and not request.quiet_override


def test_the_modal_override_is_audited(night):
    product = night()
    user = SlackUser(product, "U_REQUESTER")
    preview = preview_of(product, user)
    user.submit(preview, {"quiet": p.radio_buttons("value", "override")})
    product.settle()
    request = product.store.requests.get(1)
    assert request.quiet_override and request.send_at is None
    assert json.loads(product.store.audit.actions("quiet_hours_override")[0]["detail_json"]) == {}


def test_a_preview_opened_before_quiet_hours_asks_when_submitted_inside_them(night):
    product = night(at(20, 50))
    user = SlackUser(product, "U_REQUESTER")
    preview = preview_of(product, user)
    assert "quiet" not in {b.get("block_id") for b in preview["blocks"]}
    product.runtime.clock.now = at(21, 10).timestamp()
    asked = user.submit(preview, {}).json()
    assert asked["response_action"] == "update" and "quiet" in {b.get("block_id") for b in asked["view"]["blocks"]}
    assert product.store.requests.get(1) is None
    user.submit(asked["view"], {"quiet": p.radio_buttons("value", "schedule")})
    product.settle()
    assert product.store.requests.get(1).send_at == at(8, 0, day=1).timestamp()


# -- one-to-one answers ----------------------------------------------------------------------------------------


def test_a_one_to_one_answer_at_night_is_sent_without_asking(night):
    product = night()
    requester = SlackUser(product, "U_REQUESTER")
    override = button(requester.command("send 0912345678 明早開會").json(), "quiet_hours_override")
    requester.click("quiet_hours_override", override["value"])
    assert wait_until(lambda: product.store.requests.get(1))
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    SlackUser(product, "U_APPROVER").click("approve_request", "1", message=card)
    assert wait_until(lambda: product.store.requests.get(1).state == "sent")
    product.sandbox.simulate_reply(product.store.requests.get(1).batch_id, "+886912345678", "幾點？")
    assert wait_until(lambda: product.store.replies.count() == 1)
    product.settle()

    type_in_thread(product, "U_OTHER", "十點，謝謝", card["ts"])
    answered(product)  # the answer went out at 22:30: the person has just texted us
    assert sends(product)[-1].params["MSG"] == "十點，謝謝" and not sends(product)[-1].params.get("ST")
    assert not product.store.requests.get(2).quiet_override


def test_a_scheduled_send_approved_more_than_a_day_late_is_refused_with_a_word_not_failed(night):
    """EVERY8D fails every recipient of a booking more than 24 h past (status -4): the approver is told and
    nothing is sent or changed."""
    product = night()
    requester = SlackUser(product, "U_REQUESTER")
    schedule = button(requester.command("send 0912345678 明早開會").json(), "quiet_hours_schedule")
    requester.click("quiet_hours_schedule", schedule["value"])
    assert wait_until(lambda: product.store.requests.get(1) is not None)
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")

    product.runtime.clock.now = MORNING.timestamp() + 25 * 3600  # the approver comes back a day late
    approver = SlackUser(product, "U_APPROVER")
    approver.click("approve_request", "1", message=card)
    assert wait_until(lambda: any("超過一天" in all_text(r) and "passed more than a day ago" in all_text(r)
                                  for r in product.standin.responses))
    product.settle()
    assert product.store.requests.get(1).state == "pending_approval" and sends(product) == []
