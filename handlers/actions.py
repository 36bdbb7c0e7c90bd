"""Buttons: Approve, Reject, Cancel scheduled, Mark as sent, Send again.

Each acks at once, then asks the workflow to decide. A refusal (not an approver, own request, already
decided) is told only to the person who clicked; the card itself changes through the outbox, so two
clicks never produce two edits that disagree.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers import cards, home
from handlers.context import HandlerContext
from handlers.texts import points
from services.approval import Decision, Verdict
from services.cancel import CancelVerdict


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
        try:
            return int(body["actions"][0]["value"])
        except (KeyError, IndexError, ValueError):
            return None

    def explain(decision: Decision, tell: Callable[[str, str], None]) -> None:
        request = decision.request
        if decision.verdict is Verdict.NOT_FOUND:
            tell("找不到這筆申請。", "This request no longer exists.")
        elif decision.verdict is Verdict.NOT_APPROVER:
            tell("只有核准者可以核准或駁回發送申請。", "Only approvers can approve or reject send requests.")
        elif decision.verdict is Verdict.SELF_APPROVAL:
            tell("不能核准自己提出的申請，請另一位核准者處理。",
                 "You cannot approve your own request; another approver must.")
        elif decision.verdict is Verdict.ALREADY_DECIDED and request is not None:
            who = f"<@{request.decided_by}>" if request.decided_by and request.decided_by != "auto" else "auto"
            tell(f"這筆申請已由 {who} 處理過了。", f"This request was already handled by {who}.")
        elif decision.verdict is Verdict.NOT_UNKNOWN:
            tell("這筆申請的結果已經確定，不需要再處理。", "This request's outcome is already settled.")

    def refresh_home(body: dict, client: WebClient) -> None:
        """A decision taken in App Home shows there at once (the buttons of a decided request go)."""
        if (body.get("view") or {}).get("type") == "home":
            client.views_publish(user_id=body["user"]["id"], view=home.home_view(ctx, body["user"]["id"]))

    def decide(ack: Ack, body: dict, respond: Respond, client: WebClient, *, approve: bool) -> None:
        ack()
        request_id = request_id_of(body)
        if request_id is None:
            return
        decision = ctx.approval.decide(request_id, body["user"]["id"], approve=approve)
        if decision.changed:
            refresh_home(body, client)
        explain(decision, teller(body, respond, client))
        ctx.wake_poster()

    @app.action(cards.APPROVE)
    def approve(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, approve=True)

    @app.action(cards.REJECT)
    def reject(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, approve=False)

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
            elif outcome.error is not None:
                tell(f"取消失敗：{outcome.error.zh} {outcome.error.support_note()}",
                     f"Cancel failed: {outcome.error.en}")
            if outcome.verdict is CancelVerdict.CANCELLED:
                refresh_home(body, client)
            ctx.wake_poster()

        ctx.runner(work)
