"""Resend to failed: a new request for the recipients of a send that did not get it, when trying again can
help. It goes through the usual check, price, opt-out, quiet hours and approval; nothing is sent by
pressing the button.

Left out on purpose: numbers that cannot receive SMS (no such number, invalid, blacklisted, international
not enabled, a text the platform refused): a resend would fail the same way and cost points. Also left out:
recipients for whom no report ever came (`no report before validity ended`): they may well have got the
message, and a resend could text them twice. Numbers that opted out since are dropped by the usual check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from every8d.status import Outcome, status_for
from services.compose import ComposeInput
from services.personalise import Audience, AudienceRow
from storage import Store

#: Failure codes after which a new attempt may reach the phone (handset off, network fault, expired, no
#: credit at the time, a scheduled time the platform refused). Not 105/106: the later revision reads them as
#: content blocked by the carrier or the platform, which a resend of the same text would meet again.
RESENDABLE_CODES: frozenset[int] = frozenset({101, 102, 107, 301, -4, -6})
#: The variable that carries each recipient's own text when the original was personalised.
PERSONAL_TEXT = "message"
MAX_RESEND = 10_000


def resendable(counts: Mapping[int, int]) -> int:
    """How many recipients of these status counts a resend would try again."""
    return sum(n for code, n in counts.items() if code in RESENDABLE_CODES)


@dataclass(frozen=True)
class ResendDraft:
    """What a resend would send: the compose input, and how many failures were left out (and why)."""

    compose: ComposeInput
    count: int
    left_out: int


def resend_draft(store: Store, request_id: int) -> ResendDraft | None:
    """The draft of a resend to this request's failed recipients; None when nobody can be tried again
    (or the request is gone, or is an MMS, whose image is not kept for a second send)."""
    request = store.requests.get(request_id)
    if request is None or request.kind != "sms":
        return None
    batch_ids = [b.batch_id for b in store.batches.of_request(request_id)]
    if not batch_ids:
        return None
    counts = store.batches.counts(*batch_ids)
    failed_codes = [code for code in counts if status_for(code).outcome is Outcome.FAILED]
    failures = store.batches.deliveries(batch_ids, codes=failed_codes, limit=MAX_RESEND) if failed_codes else []
    numbers = list(dict.fromkeys(d.mobile for d in failures if d.status_code in RESENDABLE_CODES))
    if not numbers:
        return None
    left_out = len({d.mobile for d in failures}) - len(numbers)
    texts = store.requests.personal_texts(request_id, numbers)
    if texts:  # each recipient gets exactly the text they were meant to get
        rows = tuple(AudienceRow(n, {PERSONAL_TEXT: texts.get(n, request.message)}) for n in numbers)
        compose = ComposeInput(kind="sms", recipients_text="", message="{" + PERSONAL_TEXT + "}",
                               validity_minutes=request.validity_minutes,
                               audience=Audience(rows, f"#{request_id}", (PERSONAL_TEXT,)))
    else:
        compose = ComposeInput(kind="sms", recipients_text="\n".join(numbers), message=request.message,
                               validity_minutes=request.validity_minutes)
    return ResendDraft(compose, len(numbers), left_out)


def source_event(request_id: int) -> str:
    """One resend request per original: a double click or a second person finds the first."""
    return f"resend_failed:{request_id}"
