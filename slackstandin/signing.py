"""Sign requests the way Slack signs what it sends to an app, so tests reach Bolt through its real checks.

Slack's scheme (v0): HMAC-SHA256 over "v0:<timestamp>:<raw body>" with the app's signing secret, sent as
`X-Slack-Signature: v0=<hex>` beside `X-Slack-Request-Timestamp`. Bolt refuses a bad signature and a
timestamp more than five minutes away from its clock.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import requests


def sign(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The two signature headers for `body`; pass an old `timestamp` to build a stale (replayed) request."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def post_signed(
    url: str,
    body: str,
    secret: str,
    *,
    content_type: str,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    timeout: float = 10,
) -> requests.Response:
    """POST a signed body like Slack does; `retry_num` adds the headers of Slack's redelivery of an event."""
    headers = {"Content-Type": content_type, **sign(body, secret, timestamp)}
    if retry_num is not None:
        headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
    return requests.post(url, data=body.encode(), headers=headers, timeout=timeout)
