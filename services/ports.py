"""What the workflows need from the outside, as small protocols: the tests, the console and the bot
each plug in their own (the sandbox-backed client, a fake clock, a thread pool or an inline runner)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from every8d.results import CancelResult, DeliveryRecord, NothingToCancel, SendResult

#: Seconds since the epoch, UTC. Injected so tests can move time.
Clock = Callable[[], float]

#: Runs a piece of work in the background (a thread pool in the bot, inline in some tests).
Runner = Callable[[Callable[[], None]], None]


class Gateway(Protocol):
    """The EVERY8D calls the workflows make (implemented by every8d.client.Every8dClient)."""

    def send_sms(
        self,
        *,
        message: str,
        recipients: Sequence[str],
        subject: str = "",
        send_at: datetime | None = None,
        validity_minutes: int | None = None,
    ) -> SendResult: ...

    def send_mms(
        self,
        *,
        subject: str,
        message: str,
        image: bytes,
        image_type: str,
        recipients: Sequence[str],
        send_at: datetime | None = None,
        validity_minutes: int | None = None,
    ) -> SendResult: ...

    def iter_delivery_status(self, batch_id: str, *, mms: bool = False) -> Iterator[DeliveryRecord]: ...

    def get_credit(self) -> float: ...

    def cancel_sms(self, batch_id: str) -> CancelResult | NothingToCancel: ...

    def cancel_mms(self, batch_id: str) -> CancelResult | NothingToCancel: ...


def run_inline(work: Callable[[], None]) -> None:
    """A Runner that runs the work at once, in the caller's thread (tests, scripts)."""
    work()
