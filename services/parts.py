"""Cut a request into parts: one EVERY8D call each.

sendSMS takes one text per call, so personalised messages sent that way need one call per distinct text;
and a large audience in one call would hold every number in memory at once and make one lost answer cover
everyone. So recipients sharing a text are put side by side (in the order their text first appears), and
each run of one text is cut into parts of at most `chunk_size` numbers.

SendParamSMS (2021 API) carries each recipient's own text in one call. With `per_recipient`, personalised
recipients (still grouped by text, in the same order) are cut into parts of `chunk_size` whatever their
texts: a part holding several texts is a "param" part, one holding a single text stays a plain "text" part.
A 10,000-recipient audience with 10,000 different texts is then 10 calls instead of 10,000. Because the
order is the same either way, `replan_text_parts` can turn the param parts not yet sent back into
one-call-per-text parts (a platform without SendParamSMS) over the same positions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from storage import PartPlan

#: Default number of recipients per EVERY8D call (BOT_SEND_CHUNK_SIZE).
DEFAULT_CHUNK_SIZE = 1000
PARAM = "param"
TEXT = "text"

#: Points of one text sent to some numbers (e.g. `quote_sms(text, numbers).points`).
Price = Callable[[str, Sequence[str]], float]


def plan_parts(
    recipients: Sequence[str],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    messages: Mapping[str, str] | None = None,
    message: str = "",
    price: Price | None = None,
    per_recipient: bool = False,
) -> tuple[list[str], list[PartPlan]]:
    """Return the recipients in send order and the parts covering them.

    Without `messages` every recipient gets the request's `message` and the order is kept. With
    `messages` ({e164: personalised text}), recipients are grouped by text (stable: first appearance
    first) and each part carries its text, or (`per_recipient`: SendParamSMS is usable) parts of
    `chunk_size` mix texts. `price` fills each part's points (shown per part)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if messages:
        groups: dict[str, list[str]] = {}
        for number in recipients:
            groups.setdefault(messages.get(number, message), []).append(number)
        runs = list(groups.items())
    else:
        runs = [(message, list(recipients))]
    if messages and per_recipient:
        return _mixed_parts(runs, chunk_size, price)
    ordered: list[str] = []
    plans: list[PartPlan] = []
    for text, numbers in runs:
        for start in range(0, len(numbers), chunk_size):
            chunk = numbers[start:start + chunk_size]
            first = len(ordered)
            ordered.extend(chunk)
            points = price(text, chunk) if price is not None else 0.0
            plans.append(PartPlan(first, len(ordered) - 1, text if messages else None, points))
    return ordered, plans


def _mixed_parts(
    runs: list[tuple[str, list[str]]], chunk_size: int, price: Price | None
) -> tuple[list[str], list[PartPlan]]:
    """Recipients in text order, cut every `chunk_size` whatever the text; each part priced per text."""
    ordered = [number for _, numbers in runs for number in numbers]
    texts = [text for text, numbers in runs for _ in numbers]
    plans: list[PartPlan] = []
    for first in range(0, len(ordered), chunk_size):
        last = min(first + chunk_size, len(ordered)) - 1
        plans.append(_part(ordered, texts, first, last, price))
    return ordered, plans


def _part(ordered: Sequence[str], texts: Sequence[str], first: int, last: int, price: Price | None) -> PartPlan:
    """One part over positions first..last: "param" when it holds several texts, else a plain text part."""
    by_text: dict[str, list[str]] = {}
    for position in range(first, last + 1):
        by_text.setdefault(texts[position], []).append(ordered[position])
    points = sum(price(text, numbers) for text, numbers in by_text.items()) if price is not None else 0.0
    mode = PARAM if len(by_text) > 1 else TEXT
    return PartPlan(first, last, texts[first], points, mode)


def replan_text_parts(
    first_position: int, recipients: Iterable[tuple[str, str]], *, chunk_size: int, price: Price | None = None
) -> list[PartPlan]:
    """One-call-per-text parts over the recipients from `first_position` on ((number, text) in position
    order, grouped by text as `plan_parts` left them): each run of one text cut every `chunk_size`."""
    plans: list[PartPlan] = []
    run_text: str | None = None
    run: list[str] = []
    start = first_position

    def close() -> None:
        for offset in range(0, len(run), chunk_size):
            chunk = run[offset:offset + chunk_size]
            first = start + offset
            points = price(run_text or "", chunk) if price is not None else 0.0
            plans.append(PartPlan(first, first + len(chunk) - 1, run_text, points, TEXT))

    for number, text in recipients:
        if run and text != run_text:
            close()
            start += len(run)
            run = []
        run_text = text
        run.append(number)
    if run:
        close()
    return plans
