"""Who the bot is in Slack (its user id, bot id, team), learned with one auth.test, off the request path.

Bolt's default single-workspace authorization calls auth.test on the first request and, if Slack's Web
API is down at that moment, tells the user to reinstall the app and drops the request. Here the
identity is fetched at start (and again later if that failed); requests are authorized with the bot
token at once, whether or not the identity is known yet.
"""

from __future__ import annotations

import logging
import threading

from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

log = logging.getLogger("every8d_bot.slack")


class BotIdentity:
    def __init__(self, client: WebClient, token: str) -> None:
        self.client = client
        self.token = token
        self.user_id: str | None = None
        self.bot_id: str | None = None
        self.team_id: str | None = None
        self._lock = threading.Lock()
        self._fetching = False

    def refresh(self) -> bool:
        """One auth.test; True when the identity is known afterwards."""
        try:
            result = self.client.auth_test()
        except Exception as exc:  # noqa: BLE001 - Slack down or token bad: `doctor` explains; retry later
            log.warning("could not ask Slack who the bot is (auth.test: %s); will ask again", type(exc).__name__)
            return False
        self.user_id, self.bot_id, self.team_id = result.get("user_id"), result.get("bot_id"), result.get("team_id")
        return True

    def refresh_in_background(self) -> None:
        with self._lock:
            if self._fetching or self.user_id:
                return
            self._fetching = True

        def work() -> None:
            try:
                self.refresh()
            finally:
                with self._lock:
                    self._fetching = False

        threading.Thread(target=work, name="slack-identity", daemon=True).start()

    def authorizer(self):
        """Bolt's `authorize` hook (a plain function: Bolt passes arguments by their names): never a
        network call on the request path."""

        def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
            if self.user_id is None:
                self.refresh_in_background()
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id or self.team_id,
                bot_token=self.token,
                bot_user_id=self.user_id,
                bot_id=self.bot_id,
                user_id=user_id,
            )

        return authorize
