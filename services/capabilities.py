"""Which optional EVERY8D endpoints this account's platform has (SendParamSMS, getReplyMessage).

The 2021 revision added endpoints that older or dedicated platforms may not have (delta §11 item 12).
When one answers 404 (or, for replies, something that is not its format) the bot says once, in the log and
the audit trail and in `every8d-bot doctor`, that it is "not supported by this account's platform", and
stops calling it. The mark lives in the settings table, so a restart does not ask again; it is re-probed
quietly once a day, so an account moved to a newer platform starts using the endpoint again.
"""

from __future__ import annotations

import logging

from every8d.errors import Every8dError
from storage import Store

log = logging.getLogger("every8d_bot.capabilities")

#: Settings key prefix of an endpoint found missing; the value is the epoch time it was last seen missing.
_KEY = "unsupported_endpoint:"
#: A missing endpoint is tried again after this long (a 404 costs nothing and sends nothing).
REPROBE_SECONDS = 24 * 3600.0


def is_unsupported(store: Store, endpoint: str, now: float) -> bool:
    """True while the endpoint is known to be missing and not yet due for another try."""
    seen = store.settings.get(_KEY + endpoint)
    if seen is None:
        return False
    try:
        return now - float(seen) < REPROBE_SECONDS
    except ValueError:
        return True


def mark_unsupported(store: Store, endpoint: str, error: Every8dError, now: float) -> bool:
    """Remember that the platform lacks `endpoint`. Returns True the first time (then it is reported:
    a warning in the log and an audit line); a re-probe that finds it still missing stays quiet."""
    first = store.settings.get(_KEY + endpoint) is None
    with store.immediate():
        store.settings.set(_KEY + endpoint, repr(now))
        if first:
            store.audit.record("bot", "endpoint_unsupported", now=now, endpoint=endpoint,
                               error=error.describe("en"))
    if first:
        log.warning("%s is not supported by this account's platform (此帳號的 EVERY8D 平台不支援) %s; the bot "
                    "stops calling it and says so in `every8d-bot doctor`", endpoint, error.support_note())
    return first


def mark_supported(store: Store, endpoint: str) -> None:
    """The endpoint answered in its own format: forget an earlier "missing" mark (a platform upgrade)."""
    if store.settings.get(_KEY + endpoint) is not None and store.settings.delete(_KEY + endpoint):
        log.info("%s works on this account's platform again", endpoint)


def unsupported_endpoints(store: Store) -> dict[str, float]:
    """Every endpoint marked missing, with when it was last seen missing (for `doctor`)."""
    found: dict[str, float] = {}
    for key, value in store.settings.with_prefix(_KEY).items():
        try:
            found[key.removeprefix(_KEY)] = float(value)
        except ValueError:
            found[key.removeprefix(_KEY)] = 0.0
    return found
