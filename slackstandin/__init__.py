"""A local stand-in for Slack: a Web API server that records every call, and the signed requests Slack sends.

Used by the test suite, the local console (Slack for people without a workspace), `every8d-bot doctor`
tests and benchmarks. See `server` for the API, `signing` and `payloads` for requests to the app.
"""

from slackstandin import payloads
from slackstandin.payloads import (
    block_actions,
    event_callback,
    slash_command,
    url_verification,
    view_closed,
    view_submission,
)
from slackstandin.server import DEFAULT_SCOPES, Call, Faults, SlackError, SlackStandIn
from slackstandin.signing import post_signed, sign

__all__ = [
    "DEFAULT_SCOPES", "Call", "Faults", "SlackError", "SlackStandIn", "block_actions", "event_callback",
    "payloads", "post_signed", "sign", "slash_command", "url_verification", "view_closed", "view_submission",
]
