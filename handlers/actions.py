"""Buttons: Approve, Reject (with an optional reason, asked in a small window), Cancel scheduled, Mark as
sent, Send again.

Each acks at once, then asks the workflow to decide. A refusal (not an approver, own request, already
decided) is told only to the person who clicked; the card itself changes through the outbox, so two
clicks never produce two edits that disagree.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ContextBlock, InputBlock, MarkdownTextObject, PlainTextInputElement
from slack_sdk.models.views import View

from handlers import cards, commands, home, modals
from handlers.context import HandlerContext
from handlers.texts import points
from services.approval import MAX_REASON_CHARS, Decision, Verdict
from services.cancel import CancelVerdict

log = logging.getLogger("every8d_bot.handlers")

#: The Reject window: its callback id and the reason field's block.
REJECT_CALLBACK = "reject_reason"
REASON_BLOCK = "reason"


def register(app: App, ctx: HandlerContext) -> None:
    voice = ctx.voice

    def teller(body: dict, respond: Respond, client: WebClient) -> Callable[[str, str], None]:
        """How to answer only the person who clicked: an ephemeral message for a click in a message;
        for a click in App Home (which has no response_url), the refreshed Home with the answer on top."""

        def tell(zh: str, en: str) -> None:
            if body.get("response_url"):
                text, blocks = cards.ephemeral(voice, zh, en)
                respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
            elif (body.get("view") or {}).get("type") == "home":
                user = body["user"]["id"]
                view = home.home_view(ctx, user)
                notice = {"type": "section", "text": {"type": "mrkdwn", "text": voice.t(zh, en)}}
                view["blocks"] = [notice, *view["blocks"]][:100]
                client.views_publish(user_id=user, view=view)

        return tell

    def request_id_of(body: dict) -> int | None:
        return cards.clicked_id(body)

    def explain(decision: Decision, tell: Callable[[str, str], None]) -> None:
        request = decision.request
        if decision.verdict is Verdict.NOT_FOUND:
            tell("找不到這筆申請。", "This request no longer exists.")
        elif decision.verdict is Verdict.NOT_APPROVER:
            tell("只有核准者可以核准或駁回發送申請。", "Only approvers can approve or reject send requests.")
        elif decision.verdict is Verdict.SELF_APPROVAL:
            tell("不能核准自己提出的申請，請另一位核准者處理。",
                 "You cannot approve your own request; another approver must.")
        elif decision.verdict is Verdict.SELF_RESEND:
            tell("不能對自己提出的申請按「重新發送」，請另一位核准者確認後再重送。",
                 "You cannot send your own request again; another approver must decide.")
        elif decision.verdict is Verdict.ALREADY_DECIDED and request is not None:
            who = f"<@{request.decided_by}>" if request.decided_by and request.decided_by != "auto" else "auto"
            tell(f"這筆申請已由 {who} 處理過了。", f"This request was already handled by {who}.")
        elif decision.verdict is Verdict.TIME_PASSED and request is not None and request.send_at is not None:
            when = voice.time(request.send_at)
            tell(f"預約時間 {when} 已超過一天，EVERY8D 不會再發送這筆簡訊。請駁回並請申請人重新設定時間。",
                 f"Its scheduled time ({when}) passed more than a day ago, so EVERY8D would not send it. "
                 "Reject it and ask the requester for a new time.")
        elif decision.verdict is Verdict.NOT_UNKNOWN:
            tell("這筆申請的結果已經確定，不需要再處理。", "This request's outcome is already settled.")
        elif decision.verdict is Verdict.OVER_BUDGET and decision.budget is not None:
            over = decision.budget.over_by
            tell(f"⚠️ 未核准：這筆申請超出本月預算 {over:,.1f} 點。若仍要發送，請按卡片上的「超出預算仍核准」。",
                 f"⚠️ Not approved: this request is {over:,.1f} points over this month's budget. To send it anyway, "
                 "press \"Approve over budget\" on the card.")

    def refresh_home(body: dict, client: WebClient) -> None:
        """A decision taken in App Home shows there at once (the buttons of a decided request go)."""
        if (body.get("view") or {}).get("type") == "home":
            client.views_publish(user_id=body["user"]["id"], view=home.home_view(ctx, body["user"]["id"]))

    def decide(ack: Ack, body: dict, respond: Respond, client: WebClient, *, approve: bool,
               override_budget: bool = False) -> None:
        ack()
        request_id = request_id_of(body)
        if request_id is None:
            return
        decision = ctx.approval.decide(request_id, body["user"]["id"], approve=approve,
                                       override_budget=override_budget)
        if decision.changed:
            refresh_home(body, client)
        explain(decision, teller(body, respond, client))
        ctx.wake_poster()

    @app.action(cards.APPROVE)
    def approve(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, approve=True)

    @app.action(cards.APPROVE_OVER_BUDGET)
    def approve_over_budget(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        """The explicit override on a request over a monthly budget (audited as `budget_override`)."""
        decide(ack, body, respond, client, approve=True, override_budget=True)

    @app.action(cards.REJECT)
    def reject(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        """Ask for an optional reason first; refusals (not an approver, already decided) are said at once."""
        ack()
        request_id = request_id_of(body)
        if request_id is None:
            return
        refusal = ctx.approval.refusal(request_id, body["user"]["id"], approve=False)
        if refusal is not None:
            explain(refusal, teller(body, respond, client))
            return
        where = {"request_id": request_id, "home": (body.get("view") or {}).get("type") == "home"}
        try:
            client.views_open(trigger_id=body["trigger_id"], view=reject_view(voice, request_id, where))
        except (SlackApiError, KeyError) as exc:  # an expired trigger: say so, decide nothing
            log.info("the Reject window could not open: %s", type(exc).__name__)
            teller(body, respond, client)("無法開啟駁回視窗，請再按一次「駁回」。",
                                          "The Reject window did not open; press Reject again.")

    @app.view_submission(REJECT_CALLBACK)
    def reject_submitted(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        meta = modals.read_metadata(view, text_keys=(), int_keys=("request_id",))
        if meta is None:  # not the window this app drew: decide nothing, and say so
            ack(response_action="update", view=modals.damaged_view(voice))
            return
        request_id = meta["request_id"]
        values = (view.get("state") or {}).get("values") or {}
        reason = str(((values.get(REASON_BLOCK) or {}).get("value") or {}).get("value") or "")
        decision = ctx.approval.decide(request_id, body["user"]["id"], approve=False, reason=reason)
        if decision.changed:
            ack()
            if meta.get("home"):
                client.views_publish(user_id=body["user"]["id"], view=home.home_view(ctx, body["user"]["id"]))
        else:
            said: list[str] = []
            explain(decision, lambda zh, en: said.append(voice.t(zh, en)))
            ack(response_action="errors", errors={REASON_BLOCK: " ".join(said)[:150] or voice.t("無法駁回。", "Not rejected.")})
        ctx.wake_poster()

    def resolve(ack: Ack, body: dict, respond: Respond, client: WebClient, *, resend: bool) -> None:
        ack()
        request_id = request_id_of(body)
        if request_id is None:
            return
        explain(ctx.approval.resolve_unknown(request_id, body["user"]["id"], resend=resend),
                teller(body, respond, client))
        ctx.wake_poster()

    @app.action(cards.MARK_SENT)
    def mark_sent(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        resolve(ack, body, respond, client, resend=False)

    @app.action(cards.RESEND)
    def resend(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        resolve(ack, body, respond, client, resend=True)

    @app.action(cards.RESEND_FAILED)
    def resend_failed(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        """A new request for the recipients worth another try: checked, priced and approved as usual."""
        ack()
        request_id = request_id_of(body)
        if request_id is None:
            return
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id", "")
        answer = commands.resend_failed_answer(ctx, request_id, user=user, channel=channel)
        respond(**answer, response_type="ephemeral", replace_original=False)
        ctx.wake_poster()

    @app.action(cards.CANCEL_SCHEDULED)
    def cancel(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        ack()
        request_id = request_id_of(body)
        if request_id is None:
            return
        user = body["user"]["id"]
        tell = teller(body, respond, client)

        def work() -> None:
            outcome = ctx.cancel.cancel(request_id, user)
            if outcome.verdict is CancelVerdict.CANCELLED:
                tell(f"已取消預約 #{request_id}，退回 {points(outcome.refunded)}。",
                     f"Cancelled #{request_id}; {outcome.refunded:,.1f} points refunded.")
            elif outcome.verdict is CancelVerdict.NOT_ALLOWED:
                tell("只有申請人或核准者可以取消預約。", "Only the requester or an approver can cancel.")
            elif outcome.verdict in (CancelVerdict.NOT_SCHEDULED, CancelVerdict.NOTHING_FOUND):
                tell("這批簡訊已經發送或已取消，無法再取消。", "This send already went out or was cancelled.")
            elif outcome.verdict is CancelVerdict.NOT_FOUND:
                tell("找不到這筆申請。", "This request no longer exists.")
            elif outcome.verdict is CancelVerdict.RETRYING and outcome.error is not None:
                minutes = max(1, round((outcome.retry_in or 60) / 60))
                tell(f"EVERY8D 暫時無法取消（{outcome.error.zh}），機器人將於約 {minutes} 分鐘後自動再試，結果會貼在討論串。",
                     f"EVERY8D cannot cancel right now ({outcome.error.en}); the bot will try again in about "
                     f"{minutes} min and post the result in the thread.")
            elif outcome.error is not None:
                tell(f"取消失敗：{outcome.error.zh} {outcome.error.support_note()}",
                     f"Cancel failed: {outcome.error.en}")
            if outcome.verdict is CancelVerdict.CANCELLED:
                refresh_home(body, client)
            ctx.wake_poster()

        ctx.runner(work)


def reject_view(voice, request_id: int, metadata: dict) -> dict:
    """`駁回申請 #3`: one optional field, the reason the requester and the card will show."""
    title = voice.t(f"駁回申請 #{request_id}", f"Reject #{request_id}") if voice.language != "both" else f"駁回 Reject #{request_id}"
    return View(
        type="modal",
        callback_id=REJECT_CALLBACK,
        title={"type": "plain_text", "text": title[:24]},
        submit={"type": "plain_text", "text": voice.t("駁回", "Reject") if voice.language != "both" else "駁回 Reject"},
        close={"type": "plain_text", "text": voice.t("取消", "Cancel") if voice.language != "both" else "取消 Cancel"},
        private_metadata=json.dumps(metadata),
        blocks=[
            InputBlock(
                block_id=REASON_BLOCK, optional=True,
                label=voice.t("理由（選填）", "Reason (optional)") if voice.language != "both" else "理由（選填） Reason (optional)",
                element=PlainTextInputElement(action_id="value", multiline=True, max_length=MAX_REASON_CHARS,
                                              placeholder=voice.t("例如：內容需經法務確認", "e.g. legal must check the wording")),
            ),
            ContextBlock(elements=[MarkdownTextObject(text=voice.t(
                "申請人會私下收到駁回通知與理由，核准卡片也會顯示理由。",
                "The requester is told privately, with the reason; the card shows it too."))]),
        ],
    ).to_dict()
