"""Named points in the send path where the fault-injection tests kill the process (SIGKILL-like exit).

Set `EVERY8D_BOT_CRASH_AT=<name>` and the process exits at once, without cleanup, when it reaches that
point; unset, a crash point costs one dictionary lookup. This is how the tests prove that a crash at
any step never causes a second send and never loses the request (tests/test_faults_crash.py).

    after_approval           the approval is committed, the send not yet started
    after_claim              the request is claimed (`sending`), no part claimed yet
    after_part_claimed       a part is claimed (`sending`), EVERY8D not yet called for it
    after_every8d_accepted   EVERY8D accepted a part, nothing of it recorded yet
    after_part_recorded      a part's batch is recorded, the next part not yet claimed
    after_send_recorded      every part is recorded and the request settled, its posts not yet in Slack
    after_slack_posted       Slack took a post (bot/slack_poster.py), its outbox row not yet marked done
    after_draft_submitted    a confirmed preview became a request (services/drafts.py) or a series
                             (handlers/submissions.py), its draft not yet removed nor the modal answered
"""

from __future__ import annotations

import os

ENV = "EVERY8D_BOT_CRASH_AT"
POINTS = ("after_approval", "after_claim", "after_part_claimed", "after_every8d_accepted", "after_part_recorded",
          "after_send_recorded", "after_slack_posted", "after_draft_submitted")
#: What SIGKILL leaves as exit status (128 + 9); the tests check the process died here, not elsewhere.
EXIT_CODE = 137


def crash_point(name: str) -> None:
    """Exit the process immediately (no cleanup, no flush: the state SIGKILL leaves) if `name` is armed."""
    if os.environ.get(ENV) == name:
        os._exit(EXIT_CODE)
