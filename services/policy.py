"""The rules an organisation sets: who approves, when approval is automatic, how often to poll, where
alerts and replies go. Built from configuration by bot/; the workflows only read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from services.links import RegisteredLinks
from services.quiet_hours import QuietHours


@dataclass(frozen=True)
class Policy:
    approver_users: frozenset[str] = frozenset()
    approver_groups: frozenset[str] = frozenset()
    allow_self_approval: bool = False
    auto_approve_under: float | None = None
    approval_channel: str = ""
    alert_channel: str = ""
    replies_channel: str = ""
    status_poll_seconds: float = 60.0
    expiry_margin_seconds: float = 3600.0
    #: A completed batch is still read for late replies this long, this often (without callbacks,
    #: polling is the only way a reply after the last delivery report reaches the thread).
    reply_window_seconds: float = 72 * 3600.0
    reply_poll_seconds: float = 300.0
    #: Recipients per EVERY8D call: a larger request is sent as several parts (services/parts.py).
    send_chunk_size: int = 1000
    #: Personalised SMS go out with SendParamSMS (up to send_chunk_size recipients a call whatever their
    #: texts) unless the platform proved not to have it (EVERY8D_PARAM_SMS; services/parts.py).
    param_sms: bool = True
    #: Where a reply's text comes from: EVERY8D's push (a callback token is set) and getReplyMessage
    #: (EVERY8D_REPLY_LOOKUP); with neither, a reply seen by polling is posted without its text.
    reply_text_by_push: bool = True
    reply_lookup: bool = True
    low_credit_threshold: float = 500.0
    low_credit_margin: float = 50.0
    sandbox: bool = False
    #: One-to-one answers typed under a reply: False (default) sends them without an approver (recorded as
    #: approved by "answer-policy"); True makes them wait for an approver like any send.
    answers_need_approval: bool = False
    #: An answer costing more points than this waits for an approver even when answers skip approval
    #: (BOT_ANSWER_MAX_POINTS; anyone in the channel can answer, so speed is capped by cost).
    answer_max_points: float = 5.0
    #: Show numbers masked (`0912-***-678`) in posts the services word themselves (thread notes).
    mask_numbers: bool = True
    #: When sends should not go out (BOT_QUIET_HOURS); None: no quiet hours.
    quiet_hours: QuietHours | None = None
    #: What a message typed in a batch's thread does (BOT_THREAD_ANSWERS): `confirm` asks its author first,
    #: `direct` texts it at once, `off` never texts it (the Answer button still does).
    thread_answers: str = "confirm"
    #: Links and numbers registered with the carriers (BOT_REGISTERED_LINKS); None: no check.
    registered_links: RegisteredLinks | None = None
    #: A draft over a monthly budget (services/budgets.py): "approve" (an approver must override) or "refuse".
    budget_over: str = "approve"
    #: How to list a Slack user group's members (Slack-backed in the bot); None: groups unused.
    group_members: Callable[[str], frozenset[str]] | None = field(default=None, compare=False)

    def card_channel(self, origin: str, origin_name: str = "") -> str | None:
        """Where a request made in `origin` asks for approval: BOT_APPROVAL_CHANNEL, else `origin` itself,
        except a direct message (an id starting with D, or the name Slack gives a DM or a group DM in a
        command or shortcut: `directmessage`, `mpdm-…`): no approver sees a card there, and the bot cannot
        post in a DM between people, so the request would wait unseen. None: there is nowhere to ask."""
        if self.approval_channel:
            return self.approval_channel
        direct = origin.startswith("D") or origin_name == "directmessage" or origin_name.startswith("mpdm-")
        return origin if origin and not direct else None

    def is_approver(self, user_id: str) -> bool:
        """Listed by id, or a member of a listed user group. With no approvers configured nobody is one:
        sending must be a deliberate choice of the admin, not a default."""
        if user_id in self.approver_users:
            return True
        if self.group_members is None:
            return False
        return any(user_id in self.group_members(group) for group in self.approver_groups)
