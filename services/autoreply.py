"""Auto-replies: a reply that is exactly a rule's keyword (any case, full or half width, spaces ignored, as
opt-out keywords are read) gets that rule's SMS back; a reply inside quiet hours gets the out-of-hours text.

Each number gets one automatic answer per rule per cool-down (BOT_AUTOREPLY_COOLDOWN_HOURS), however often
it writes; an opt-out keyword never triggers one. The automatic answer is an ordinary request in the batch's
thread (card, result and delivery as for a typed answer), checked, priced, opt-out filtered, audited, and
approved by the rule itself (`autoreply`), since the approver approved the rule when setting it. Rules are
managed by approvers (`/sms autoreply`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from every8d.limits import DEFAULT_LIMITS, Limits
from services.compose import ComposeInput, prepare
from services.optout import is_opt_out, normalize
from services.permissions import Action, may
from services.policy import Policy
from services.ports import Clock
from services.requests import AUTOREPLY_APPROVER, RequestService
from storage import Store
from storage.autoreplies import AutoReplyRule

log = logging.getLogger("every8d_bot.autoreply")

#: The out-of-hours rule's key (no keyword normalizes to it: it has a space).
OUT_OF_HOURS = "out of hours"
MAX_KEYWORD_CHARS = 30
MAX_BODY_CHARS = 1000


class RuleVerdict(StrEnum):
    ADDED = "added"
    REPLACED = "replaced"
    REMOVED = "removed"
    NOT_FOUND = "not_found"
    NOT_APPROVER = "not_approver"
    INVALID = "invalid"


@dataclass(frozen=True)
class RuleChange:
    verdict: RuleVerdict
    zh: str = ""
    en: str = ""


class AutoReplyService:
    def __init__(self, store: Store, requests: RequestService, policy: Policy, clock: Clock, *,
                 cooldown_seconds: float = 24 * 3600.0, limits: Limits = DEFAULT_LIMITS) -> None:
        self.store = store
        self.requests = requests
        self.policy = policy
        self.clock = clock
        self.cooldown_seconds = cooldown_seconds
        self.limits = limits

    # -- rules (approvers) ---------------------------------------------------------------------------

    def rules(self) -> list[AutoReplyRule]:
        return self.store.autoreplies.all()

    def set_rule(self, actor: str, keyword: str, body: str) -> RuleChange:
        """A keyword rule; `body` is the answer's text or `@template`."""
        if not may(self.policy, actor, Action.MANAGE_LISTS):
            return RuleChange(RuleVerdict.NOT_APPROVER)
        key = normalize(keyword)
        if not key or len(key) > MAX_KEYWORD_CHARS:
            return RuleChange(RuleVerdict.INVALID, f"關鍵字需為 1 到 {MAX_KEYWORD_CHARS} 個字。",
                              f"A keyword has 1 to {MAX_KEYWORD_CHARS} characters.")
        if is_opt_out(keyword):
            return RuleChange(RuleVerdict.INVALID, f"「{keyword}」是退訂關鍵字，不能設為自動回覆。",
                              f'"{keyword}" is an opt-out keyword; it cannot trigger an auto-reply.')
        return self._put(actor, key, keyword.strip(), body)

    def set_out_of_hours(self, actor: str, body: str | None) -> RuleChange:
        """The answer to replies inside quiet hours; None removes it."""
        if not may(self.policy, actor, Action.MANAGE_LISTS):
            return RuleChange(RuleVerdict.NOT_APPROVER)
        if body is None:
            return self.remove_rule(actor, OUT_OF_HOURS)
        return self._put(actor, OUT_OF_HOURS, OUT_OF_HOURS, body)

    def remove_rule(self, actor: str, keyword: str) -> RuleChange:
        if not may(self.policy, actor, Action.MANAGE_LISTS):
            return RuleChange(RuleVerdict.NOT_APPROVER)
        key = keyword if keyword == OUT_OF_HOURS else normalize(keyword)
        now = self.clock()
        with self.store.immediate():
            removed = self.store.autoreplies.remove(key)
            if removed:
                self.store.audit.record(actor, "autoreply_removed", now=now, keyword=keyword)
        return RuleChange(RuleVerdict.REMOVED if removed else RuleVerdict.NOT_FOUND)

    def _put(self, actor: str, key: str, keyword: str, body: str) -> RuleChange:
        body = body.strip()
        if not body or len(body) > MAX_BODY_CHARS:
            return RuleChange(RuleVerdict.INVALID, f"回覆內容需為 1 到 {MAX_BODY_CHARS} 個字，或 @範本名稱。",
                              f"The answer has 1 to {MAX_BODY_CHARS} characters, or is @template.")
        if body.startswith("@") and self.store.templates.get(body[1:]) is None:
            return RuleChange(RuleVerdict.INVALID, f"找不到範本「{body[1:40]}」。", f'There is no template "{body[1:40]}".')
        now = self.clock()
        with self.store.immediate():
            replaced = self.store.autoreplies.put(key, keyword, body, actor=actor, now=now)
            self.store.audit.record(actor, "autoreply_set", now=now, keyword=keyword, body=body)
        return RuleChange(RuleVerdict.REPLACED if replaced else RuleVerdict.ADDED)

    # -- answering -----------------------------------------------------------------------------------

    def on_reply(self, reply_id: int) -> int | None:
        """Answer a stored reply if a rule applies; returns the automatic request's id, or None."""
        reply = self.store.replies.get(reply_id)
        if reply is None or not reply.matched or not reply.batch_id or is_opt_out(reply.text):
            return None
        request = self.store.requests.by_batch(reply.batch_id)
        if request is None:
            return None
        rule = self.store.autoreplies.get(normalize(reply.text))
        if rule is None and self._in_quiet_hours(reply.received_at):
            rule = self.store.autoreplies.get(OUT_OF_HOURS)
        if rule is None:
            return None
        now = self.clock()
        if not self.store.autoreplies.claim(rule.key, reply.mobile, now=now, cooldown_seconds=self.cooldown_seconds):
            log.info("auto-reply %r to reply %s skipped: answered this number within the cool-down", rule.keyword,
                     reply_id)
            return None
        text = self._text(rule)
        preview = prepare(ComposeInput(kind="sms", recipients_text=reply.mobile, message=text or ""),
                          clock=self.clock, last_credit=self.store.credit.latest(), limits=self.limits,
                          opted_out=self.store.optouts.among) if text else None
        if preview is None or not preview.ok:
            self.store.autoreplies.release(rule.key, reply.mobile)
            why = "; ".join(p.en for p in preview.problems) if preview else "its template is gone"
            self.store.audit.record(AUTOREPLY_APPROVER, "autoreply_failed", request_id=request.id, now=now,
                                    keyword=rule.keyword, reason=why)
            log.warning("auto-reply %r to reply %s not sent: %s", rule.keyword, reply_id, why)
            return None
        thread_ts = request.posts_thread_ts
        submitted = self.requests.submit(
            preview, requester=AUTOREPLY_APPROVER, origin_channel=request.approval_channel,
            thread=(request.posts_channel, thread_ts) if thread_ts else None, reply_to=reply.id,
            source_event=f"autoreply:{reply.id}", approved_by=AUTOREPLY_APPROVER,
        )
        if not submitted.duplicate:
            self.store.audit.record(AUTOREPLY_APPROVER, "autoreply_sent", request_id=submitted.request_id, now=now,
                                    keyword=rule.keyword, reply_id=reply.id)
        return submitted.request_id

    def _in_quiet_hours(self, received_at: float | None) -> bool:
        quiet = self.policy.quiet_hours
        moment = datetime.fromtimestamp(received_at if received_at is not None else self.clock(), tz=UTC)
        return quiet is not None and quiet.contains(moment)

    def _text(self, rule: AutoReplyRule) -> str | None:
        if rule.body.startswith("@"):
            template = self.store.templates.get(rule.body[1:])
            return template.body if template is not None else None
        return rule.body
