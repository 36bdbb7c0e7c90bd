"""Named points in the send path where the fault-injection tests kill the process (SIGKILL-like exit).

Set `EVERY8D_BOT_CRASH_AT=<name>` and the process exits at once, without cleanup, when it reaches that
point; unset, a crash point costs one dictionary lookup. This is how the tests prove that a crash at
any step never causes a second send and never loses the request.
"""

from __future__ import annotations

import os

POINTS = ("after_approval", "after_claim", "after_every8d_accepted", "after_send_recorded")


def crash_point(name: str) -> None:
    if os.environ.get("EVERY8D_BOT_CRASH_AT") == name:
        os._exit(137)
