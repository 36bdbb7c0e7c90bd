"""The watchdog: nothing may stand still without progress and without a word.

Every run (a scheduler job, about once a minute) looks for what has not moved for longer than
BOT_WATCHDOG_MINUTES and does the one safe thing for each:

- the database refuses a committed write (disk full, read-only file): said at once in the alert channel,
  straight to Slack (the outbox is in that database), once per outage, and again when it works;
- a request `approved` but never claimed: its send is run again (the claim is a conditional update, so
  a send already under way wins and this one does nothing);
- a request `sending` with no part claimed (its sender died between two parts): back to `approved` and
  sent; the parts not yet sent were never claimed, so none can go twice;
- a part claimed (`sending`) long ago with no call in flight in this process: it may have reached
  EVERY8D, so it is marked "outcome unknown", never resent, and the request's thread and the alert
  channel say so with what an approver can do (Mark as sent / Send again on the card);
- a post Slack has refused for that long: tried again now, and said once in the alert channel;
- a post set aside after a permanent refusal (the bot removed from a channel, a missing scope): said once
  in the alert channel with where it went and what it was (an approval card nobody saw left its request
  waiting in silence; the set-aside post was only counted in /metrics).

Each finding is said once: the posts carry dedupe keys (storage/outbox.py).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from services import notices
from services.policy import Policy
from services.ports import Clock
from services.sending import SendService
from services.series import SERIES_CARD, SERIES_NOTE
from storage import RequestState, Store
from storage import watchdog as queries

log = logging.getLogger("every8d_bot.watchdog")

#: Posts set aside up to this long ago are still said (a first run after an upgrade does not dig up years).
SET_ASIDE_LOOKBACK_SECONDS = 7 * 24 * 3600.0
#: What a set-aside post was, in words (zh, en); other kinds are named by their kind.
_POST_WORDS = {
    notices.APPROVAL_CARD: ("申請卡：核准者還沒看到，申請在等待核准",
                            "the request's approval card: the approvers have not seen it, and it waits for a decision"),
    notices.SEND_RESULT: ("發送結果", "the send result"),
    notices.BATCH_SUMMARY: ("發送摘要", "the delivery summary"),
    notices.REPLY_IN_THREAD: ("收到的回覆", "a reply received"),
    notices.REPLY_IN_CHANNEL: ("收到的回覆", "a reply received"),
    notices.THREAD_NOTE: ("申請串中的說明", "a note in the request's thread"),
    notices.REQUESTER_UPDATE: ("給申請人的私訊", "a direct message to the requester"),
    notices.WORKFLOW_OUTCOME: ("工作流程步驟的結果：步驟尚未結束",
                               "the Workflow Builder step's outcome: the step is not ended"),
    notices.WEEKLY_REPORT: ("每週報告", "the weekly report"),
    notices.CREDIT_LOW: ("點數不足警示", "the low-credit alert"),
    notices.CANCEL_RESULT: ("取消結果", "the cancel result"),
    SERIES_CARD: ("重複發送的卡片", "a recurring send's card"),
    SERIES_NOTE: ("重複發送討論串中的說明", "a note in a recurring send's thread"),
}

#: Say something straight to Slack, bypassing the outbox: (zh, en) -> whether Slack took it (False: tried
#: again at the next run). Used only when the database itself cannot be written, so the outbox cannot hold
#: the message.
Alarm = Callable[[str, str], bool]


@dataclass
class Findings:
    """What one run found and did (for logs and tests)."""

    database: str | None = None
    restarted: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    unknown: list[tuple[int, int]] = field(default_factory=list)
    posts: list[int] = field(default_factory=list)
    set_aside: list[int] = field(default_factory=list)


class Watchdog:
    def __init__(
        self,
        store: Store,
        policy: Policy,
        clock: Clock,
        sending: SendService,
        *,
        start_send: Callable[[int], None],
        wake_poster: Callable[[], None],
        stale_seconds: float,
        alarm: Alarm | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.sending = sending
        self.start_send = start_send
        self.wake_poster = wake_poster
        self.stale_seconds = stale_seconds
        self.alarm = alarm
        self._database_down: str | None = None
        self._alarm_said = False
        self._restarted_at: dict[int, float] = {}

    @property
    def minutes(self) -> float:
        return round(self.stale_seconds / 60, 2)

    def run(self) -> Findings:
        """One look at everything; safe to run at any time and any number of times."""
        now = self.clock()
        problem = self._check_database(now)
        if problem is not None:
            return Findings(database=problem)
        # A row stamped later than `after` was written before the clock was set back: as stale as can be.
        before, after = now - self.stale_seconds, now + self.stale_seconds
        findings = Findings()
        findings.restarted = self._restart_approved(before, after, now)
        findings.resumed = self._resume_stopped(before, after)
        findings.unknown = self._settle_abandoned_parts(before, after)
        findings.posts = self._retry_failing_posts(before, after)
        findings.set_aside = self._say_set_aside_posts(now)
        self.wake_poster()
        return findings

    # -- the database ------------------------------------------------------------------------------

    def _check_database(self, now: float) -> str | None:
        """None when a committed write goes through; else why not (said once per outage, once Slack took it)."""
        try:
            queries.heartbeat(self.store, now)
        except sqlite3.Error as exc:
            problem = str(exc)
            if self._database_down is None:
                log.error("the database cannot be written (%s): sends and approvals are held until it can", problem)
                self._alarm_said = False
            if not self._alarm_said:  # until Slack takes it: an alarm lost to a Slack error left the outage unsaid
                self._alarm_said = self.alarm is None or self.alarm(
                    f"⚠️ 資料庫無法寫入（{problem}）：核准與發送暫停，沒有任何簡訊因此被送出或重送。"
                    "請管理員釋放磁碟空間或修正檔案權限；恢復後機器人會自動繼續並在此告知。",
                    f"⚠️ The database cannot be written ({problem}): approvals and sends are on hold, and "
                    "nothing was sent or resent because of it. An admin should free disk space or fix the "
                    "file's permissions; the bot resumes by itself and says so here.",
                ) is not False
            self._database_down = problem
            return problem
        if self._database_down is not None:
            log.warning("the database takes writes again")
            notices.alert_note(
                self.store, self.policy.alert_channel,
                "✅ 資料庫已可寫入，機器人已繼續處理暫停的核准與發送。",
                "✅ The database takes writes again; held approvals and sends go on.",
                f"database_back:{now:.0f}",
            )
            self._database_down = None
        return None

    # -- requests and parts ------------------------------------------------------------------------

    def _restart_approved(self, before: float, after: float, now: float) -> list[int]:
        """Approved long ago and never claimed: run the send again (at most once per period each)."""
        restarted = []
        stale = queries.stale_requests(self.store, RequestState.APPROVED, before, after)
        self._restarted_at = {k: v for k, v in self._restarted_at.items() if k in stale}
        for request_id in stale:
            if before < self._restarted_at.get(request_id, 0.0) <= now:  # later than now: the clock went back
                continue
            self._restarted_at[request_id] = now
            log.warning("watchdog: request %s approved over %g min ago but never sent; sending it now",
                        request_id, self.minutes)
            self.start_send(request_id)
            restarted.append(request_id)
        return restarted

    def _resume_stopped(self, before: float, after: float) -> list[int]:
        """`sending` with no part claimed: nothing is in doubt, so go on with the parts never attempted."""
        resumed = []
        for request_id in queries.stuck_in_sending_without_a_part_in_flight(self.store, before, after):
            if self.sending.resume_stopped(request_id):
                log.warning("watchdog: request %s stopped between two parts; sending the rest", request_id)
                self.start_send(request_id)
                resumed.append(request_id)
        return resumed

    def _settle_abandoned_parts(self, before: float, after: float) -> list[tuple[int, int]]:
        """Claimed long ago, no call in flight here: outcome unknown, said in the thread and the alerts."""
        by_request: dict[int, list[int]] = defaultdict(list)
        for request_id, part in queries.parts_claimed_before(self.store, before, after):
            by_request[request_id].append(part)
        settled = []
        active = self.sending.active()
        for request_id, parts in by_request.items():
            if request_id in active:
                continue
            moved = self.sending.abandon_parts(request_id, parts, self.minutes)
            if moved:
                log.warning("watchdog: request %s parts %s stood still in `sending`; marked outcome unknown",
                            request_id, moved)
                self._say_unknown(request_id, moved)
                settled += [(request_id, p) for p in moved]
        return settled

    def _say_unknown(self, request_id: int, parts: list[int]) -> None:
        request = self.store.requests.get(request_id)
        if request is None:
            return
        which_zh = "、".join(f"第 {p + 1} 批" for p in parts)
        which_en = ", ".join(f"part {p + 1}" for p in parts)
        what_zh = (f"{which_zh}在發送途中停住超過 {self.minutes:g} 分鐘，無法確定 EVERY8D 是否已收到，不會自動重送。"
                   "核准者可在申請卡上按「已確認送出」（收件人已收到時）或「重新發送」。")
        what_en = (f"{which_en} stood still while sending for over {self.minutes:g} minutes; EVERY8D may or may "
                   "not have received it, and it will not be resent automatically. An approver can press "
                   "\"Mark as sent\" (if the recipients got it) or \"Send again\" on the request's card.")
        key = f"watchdog_unknown:{request_id}:{'.'.join(map(str, parts))}:{request.send_attempts}"
        notices.thread_note(self.store, request_id, request.approval_channel, f"⚠️ 監看：{what_zh}",
                            f"⚠️ Watchdog: {what_en}", key)
        notices.alert_note(self.store, self.policy.alert_channel, f"⚠️ 發送申請 #{request_id}（<#{request.approval_channel}>）："
                           f"{what_zh}", f"⚠️ Send request #{request_id} (<#{request.approval_channel}>): {what_en}",
                           key, request_id=request_id)

    # -- posts -------------------------------------------------------------------------------------

    def _retry_failing_posts(self, before: float, after: float) -> list[int]:
        """Posts Slack has refused for long: due now, and said once in the alert channel (unless that is
        where they fail: a post about a failing post there would only fail too; but the weekly report is
        said, since what fails there is its chart's upload more often than the channel)."""
        rows = [r for r in queries.posts_failing_since(self.store, before, after) if r["kind"] != notices.ALERT_NOTE]
        if not rows:
            return []
        self.store.outbox.retry_now([r["id"] for r in rows])
        for row in rows:
            if not self.policy.alert_channel or (row["channel"] == self.policy.alert_channel
                                                 and row["kind"] != notices.WEEKLY_REPORT):
                continue
            error = str(row["last_error"] or "?")[:100]
            where = _where(str(row["channel"] or ""))  # a channel, a person's direct messages, or a workflow
            what_zh, what_en = (f"（{_POST_WORDS[row['kind']][0]}）", f" ({_POST_WORDS[row['kind']][1]})") \
                if row["kind"] in _POST_WORDS else ("", "")
            notices.alert_note(
                self.store, self.policy.alert_channel,
                f"⚠️ 發到 {where} 的訊息{what_zh}已失敗 {row['attempts']} 次（Slack：{error}），仍會持續重試。"
                "請確認機器人仍在該頻道且有權限。",
                f"⚠️ A post to {where}{what_en} has failed {row['attempts']} times (Slack: {error}); it is still "
                "being retried. Check that the bot is still in that channel and allowed to post.",
                f"watchdog_post:{row['id']}",
            )
        log.warning("watchdog: %d posts to Slack have been failing for over %g min; retrying them now", len(rows),
                    self.minutes)
        return [r["id"] for r in rows]

    def _say_set_aside_posts(self, now: float) -> list[int]:
        """Posts Slack refused for good (set aside, never tried again): said once each in the alert channel,
        where they went, what they were and which request; the admin can put the bot back in the channel
        or grant the scope, and `/sms status` still shows the request."""
        channel = self.policy.alert_channel
        if not channel:
            return []
        self._say_alerts_unseen(channel, now)
        rows = queries.posts_set_aside_untold(self.store, now - SET_ASIDE_LOOKBACK_SECONDS,
                                              told_prefix=notices.alert_key(SET_ASIDE_KEY), skip_kind=notices.ALERT_NOTE)
        for row in rows:
            what_zh, what_en = _POST_WORDS.get(row["kind"], (row["kind"], row["kind"]))
            where = _where(str(row["channel"] or ""))
            error = str(row["last_error"] or "?")[:100]
            request = row["request_id"]
            about_zh = f"發送申請 #{request} 可用 `/sms status #{request}` 查看。" if request is not None else ""
            about_en = f"Send request #{request}: `/sms status #{request}` shows it. " if request is not None else ""
            notices.alert_note(
                self.store, channel,
                f"⚠️ 發到 {where} 的訊息被 Slack 拒絕 {row['attempts']} 次（{error}），已放棄，不會再送。那是{what_zh}。"
                f"{about_zh}請確認機器人仍在該頻道且有權限；修正後執行 `every8d-bot repost` 即會重新送出。",
                f"⚠️ Slack refused a post to {where} {row['attempts']} times ({error}); it is set aside and will not "
                f"be tried again. It was {what_en}. {about_en}Check that the bot is still in that channel and allowed "
                "to post; once fixed, `every8d-bot repost` posts it again.",
                SET_ASIDE_KEY + str(row["id"]), request_id=request,
            )
            log.error("watchdog: a %s post to %s was set aside (%s); said in the alert channel", row["kind"],
                      row["channel"], error)
        return [int(r["id"]) for r in rows]


    def _say_alerts_unseen(self, channel: str, now: float) -> None:
        """The alert channel refuses the bot (removed from it, archived): every alert is set aside there and
        nobody hears anything. The approvers' channel is told, once a day, what is wrong and what to do."""
        approvals = self.policy.approval_channel
        if not approvals or approvals == channel:
            return
        dead = queries.last_set_aside(self.store, kind=notices.ALERT_NOTE, channel=channel,
                                      since=now - SET_ASIDE_LOOKBACK_SECONDS)
        if dead is None:
            return
        error = str(dead["last_error"] or "?")[:100]
        day = int(now // 86400)
        notices.alert_note(
            self.store, approvals,
            f"⚠️ 機器人無法在警示頻道 <#{channel}> 發言（Slack：{error}），監看與警示訊息都沒有送出。"
            f"請管理員把機器人加回該頻道（`/invite`），再執行 `every8d-bot repost` 補發。",
            f"⚠️ The bot cannot post in the alert channel <#{channel}> (Slack: {error}), so its watchdog's and "
            "alerts' messages are not being seen. An admin should add the bot back (`/invite`), then run "
            "`every8d-bot repost` to post them.",
            f"alerts_unseen:{channel}:{day}",
        )
        log.error("the alert channel %s refuses the bot (%s); said in the approval channel", channel, error)


#: The key (after notices' own prefix) of the word about the set-aside post with this id (appended).
SET_ASIDE_KEY = "watchdog_dead:"


def repost_set_aside(store: Store) -> int:
    """`every8d-bot repost`: every post set aside is queued again (once the admin fixed what Slack refused),
    and said again if Slack refuses it for good once more. Returns how many."""
    return store.outbox.revive_dead(told_prefix=notices.alert_key(SET_ASIDE_KEY))


def _where(channel: str) -> str:
    """A post's destination as Slack shows it: a channel, a person (a direct message), or a workflow."""
    if channel.startswith(("C", "G")):
        return f"<#{channel}>"
    if channel.startswith(("U", "W")):
        return f"<@{channel}>"
    return "Workflow Builder"
