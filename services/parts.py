"""Cut a request into parts: one EVERY8D call each.

EVERY8D takes one text per call, so personalised messages need one call per distinct text, and a large
audience in one call would hold every number in memory at once and make one lost answer cover everyone.
So recipients sharing a text are put side by side (in the order their text first appears), and each run
of one text is cut into parts of at most `chunk_size` numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from storage import PartPlan

#: Default number of recipients per EVERY8D call (BOT_SEND_CHUNK_SIZE).
DEFAULT_CHUNK_SIZE = 1000

#: Points of one text sent to some numbers (e.g. `quote_sms(text, numbers).points`).
Price = Callable[[str, Sequence[str]], float]


def plan_parts(
    recipients: Sequence[str],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    messages: Mapping[str, str] | None = None,
    message: str = "",
    price: Price | None = None,
) -> tuple[list[str], list[PartPlan]]:
    """Return the recipients in send order and the parts covering them.

    Without `messages` every recipient gets the request's `message` and the order is kept. With
    `messages` ({e164: personalised text}), recipients are grouped by text (stable: first appearance
    first) and each part carries its text. `price` fills each part's points (shown per part)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if messages:
        groups: dict[str, list[str]] = {}
        for number in recipients:
            groups.setdefault(messages.get(number, message), []).append(number)
        runs = list(groups.items())
    else:
        runs = [(message, list(recipients))]
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
