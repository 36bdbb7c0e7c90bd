"""EVERY8D's pushes answered by the HTTP server's own loop thread, not handed to a worker thread.

A push is tiny and its work is short (parse, one SQLite transaction of a few statements, commit): about
0.1 ms. Waitress hands every request from its loop thread to a worker thread and the answer back, and
on this stack that handoff, not the work, was most of a push's cost (two thread switches and a wake-up
pipe per request; measured in bench/callback_rate.py: a push cost 3x a bare app, and with this lane it
costs under 2x). So for a complete request on the push path the loop thread serves it itself, when it
will not wait for it:

* only if this process's database write lock comes free within `LOOP_WAIT_SECONDS` (another push's
  transaction takes a fraction of a millisecond); otherwise (a send or a poll is writing) the request goes
  to the worker threads as any other, and for the next `COOLDOWN_SECONDS` pushes go there at once unless
  the lock is free, so a long write never costs the loop more than a few milliseconds in a hundred, and
* only if no other process holds SQLite's write lock (a tool, an admin's shell): the loop begins the
  push's transaction without waiting (storage/db.py, `write_turn_if_free`) and the push's own transaction
  takes it over; otherwise a worker thread waits for the lock as before (the push is delayed, not refused),

so Slack's requests and /healthz on the same port never queue behind a slow write. Nothing about the
answer changes: the same WSGI app answers, 200 only once the report is committed.

It plugs into waitress through its channel and task dispatcher classes (`install`), checked against
waitress 3.0; anything else (Slack's requests, service paths, a pipelined second request) takes
waitress's ordinary path.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from waitress.channel import HTTPChannel
from waitress.task import ThreadedTaskDispatcher

from bot.callback_receiver import CallbackReceiver

log = logging.getLogger("every8d_bot.http")

#: How long the loop thread waits for this process's write lock before handing a push to a worker.
LOOP_WAIT_SECONDS = 0.005
#: After such a wait timed out (a long write is on), how long the loop only takes a lock that is free.
COOLDOWN_SECONDS = 0.1


class PushLane:
    """Which requests the loop thread may answer itself: pushes to the receiver's path, by GET or POST.
    `receiver` may be set after the server started (tests build the server before the runtime)."""

    def __init__(self, receiver: CallbackReceiver | None = None) -> None:
        self.receiver = receiver
        self.patient_after = 0.0  # monotonic time before which the loop does not wait for the lock
        self.served_here = 0  # pushes the loop thread answered (for tests and the benchmark's note)
        self.handed_over = 0  # pushes it gave to the worker threads because a long write was on

    def turn(self, wait: float) -> contextlib.AbstractContextManager[bool]:
        """True (holding the database's write lock, a transaction begun for the push) when the loop may
        serve the push without waiting behind another writer; False at once otherwise."""
        assert self.receiver is not None  # `wants` said so
        return self.receiver.tracking.write_turn_if_free(wait)

    def wants(self, request: Any) -> bool:
        """A complete, well-formed request (waitress's parser) for the push path."""
        return (
            self.receiver is not None
            and not request.error
            and request.command in ("GET", "POST")
            and CallbackReceiver.handles(request.path)
        )


class _LaneDispatcher(ThreadedTaskDispatcher):
    """Waitress's worker pool, except that a push the loop thread is reading is marked for the loop."""

    def __init__(self, lane: PushLane) -> None:
        super().__init__()
        self.lane = lane

    def add_task(self, task: Any) -> None:
        if getattr(task, "reading_thread", None) == threading.get_ident() and self.lane.wants(task.requests[0]):
            task.serve_here = True  # served by the loop once `received` released the channel's locks
            return
        super().add_task(task)


class _LaneChannel(HTTPChannel):
    """A connection whose pushes the loop thread serves after reading them (see the module's docstring)."""

    reading_thread: int | None = None
    serve_here = False
    lane: PushLane

    def handle_read(self) -> None:
        self.reading_thread = threading.get_ident()
        try:
            super().handle_read()
        finally:
            self.reading_thread = None
        if self.serve_here:
            self.serve_here = False
            self._serve_push()

    def _serve_push(self) -> None:
        lane = self.lane
        now = time.monotonic()
        wait = LOOP_WAIT_SECONDS if now >= lane.patient_after else 0.0
        try:
            with lane.turn(wait) as free:
                if free:
                    lane.served_here += 1
                    self.service()  # runs the WSGI app and queues the answer; the loop sends it
                    return
        except Exception:  # noqa: BLE001 - the loop must outlive anything; service() answers app errors
            log.exception("serving a push in the server's loop failed")
            self.close_when_flushed = True
            return
        if wait:
            lane.patient_after = now + COOLDOWN_SECONDS
        lane.handed_over += 1
        ThreadedTaskDispatcher.add_task(self.server.task_dispatcher, self)  # busy: a worker waits instead


def install(lane: PushLane) -> dict[str, Any]:
    """Keyword arguments for waitress's `create_server` that add the push lane, and the channel class to
    set on the server it returns (`server.channel_class`)."""
    channel = type("PushLaneChannel", (_LaneChannel,), {"lane": lane})
    return {"_dispatcher": _LaneDispatcher(lane), "channel_class": channel}
