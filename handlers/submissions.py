"""The compose modal's submissions: check (inline errors in the ack), preview the cost, then submit.

Checking happens before the ack, because Slack only shows field errors sent back in it. It makes no
call to EVERY8D (the credit shown is the last one read), so it fits well inside Slack's 3 seconds.

A send that would go out inside quiet hours gets a choice on the preview (schedule for the next allowed
time, the default, or send anyway, which is audited); numbers on the opt-out list are left out.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from slack_bolt import Ack, App
from slack_sdk import WebClient

from handlers import cards, modals, reach, repeat_fields
from handlers import series as series_ui
from handlers.context import HandlerContext
from handlers.files import FileFetchError, fetch_slack_file
from services.audiences import CsvImportError
from services.compose import ComposeInput, Preview
from services.crashpoints import crash_point
from services.drafts import Verdict
from services.personalise import read_audience_csv
from services.recurrence import Rule

log = logging.getLogger("every8d_bot.handlers")


def register(app: App, ctx: HandlerContext) -> None:
    voice = ctx.voice

    @app.action(modals.KIND_ACTION)
    def switch_kind(ack: Ack, body: dict, client: WebClient) -> None:
        """SMS <-> MMS: redraw the modal with or without the image field, keeping what was typed."""
        ack()
        view = body.get("view")
        if not isinstance(view, dict):
            return  # the kind radio of a message, not of our modal: nothing to redraw
        meta = modals.read_metadata(view)
        if meta is None or not view.get("id"):
            return  # not a view this app drew: nothing to redraw
        values = modals.read_compose(_state_values(view), voice.tz)
        channel = meta.get("channel_id", "")
        initial = {"recipients_text": values.recipients, "message": values.message, "subject": values.subject}
        modals.update_view(
            client, view_id=view["id"], hash=view.get("hash"),
            view=modals.compose_view(voice, channel_id=channel, kind=values.kind, initial=initial,
                                     templates=template_names(ctx), limits=ctx.limits),
        )

    @app.view(modals.COMPOSE_CALLBACK)
    def compose_submitted(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        user = body["user"]["id"]
        meta = modals.read_metadata(view)
        if meta is None:
            ack(response_action="update", view=modals.damaged_view(voice))
            return
        channel = meta.get("channel_id", "")
        values = modals.read_compose(_state_values(view), voice.tz)
        repeat = repeat_fields.read(_state_values(view))
        rule = None
        if repeat.kind:  # a recurring send: its first run is the scheduled time (or the rule's next day)
            found = series_ui.rule_for(ctx, values.send_at, repeat)
            if isinstance(found, dict):
                ack(response_action="errors", errors=found)
                return
            rule = found
            values = replace(values, send_at=series_ui.first_run(rule, values.send_at))
        image = None
        image_name = ""
        if values.kind == "mms" and values.file_ids:
            try:
                fetched = fetch_slack_file(client, values.file_ids[0], token=ctx.bot_token, timeout=ctx.file_timeout)
            except FileFetchError as exc:
                ack(response_action="errors", errors={"image": voice.t(exc.zh, exc.en)})
                return
            image, image_name = fetched.content, fetched.name
        audience = None
        if values.audience_file_ids:
            try:
                fetched = fetch_slack_file(client, values.audience_file_ids[0], token=ctx.bot_token,
                                           timeout=ctx.file_timeout)
                audience = read_audience_csv(fetched.content, fetched.name, international=values.kind != "mms")
            except FileFetchError as exc:
                ack(response_action="errors", errors={"audience": voice.t(exc.zh, exc.en)})
                return
            except CsvImportError as exc:
                ack(response_action="errors", errors={"audience": voice.t(exc.zh, exc.en)})
                return
        preview = ctx.drafts.check(
            ComposeInput(
                kind=values.kind,
                recipients_text=values.recipients,
                message=values.message,
                subject=values.subject,
                image=image,
                image_name=image_name,
                send_at=values.send_at,
                validity_minutes=values.validity,
                audience=audience,
            ),
            requester=user, channel=channel,
        )
        if values.problems or not preview.ok:
            ack(response_action="errors", errors=field_errors(ctx, [*values.problems, *preview.problems], values.kind))
            return
        if rule is not None and ctx.drafts.quiet_until(preview) is not None:
            ack(response_action="errors", errors={"send_at": voice.t(
                "重複發送的時間落在勿擾時段，請選擇其他時間。", "The repeating send's time falls in quiet hours; pick another time.")})
            return
        # The draft keeps the list resolved here: confirming the preview reads no recipient again.
        draft_id = ctx.drafts.keep(preview, user=user, channel=channel,
                                   series=rule.to_columns() if rule is not None else None)
        shown = modals.preview_view(voice, preview, draft_id=draft_id, channel_id=channel,
                                    quiet_until=None if rule else ctx.drafts.quiet_until(preview),
                                    budget=ctx.drafts.budget(preview, user, channel))
        if rule is not None and preview.quote is not None and preview.input.send_at is not None:
            shown = series_ui.with_series(voice, shown, rule, preview.input.send_at.timestamp(), preview.quote.points)
        ack(response_action="push", view=shown)

    @app.view(modals.PREVIEW_CALLBACK)
    def preview_submitted(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        user = body["user"]["id"]
        meta = modals.read_metadata(view, text_keys=("draft_id", "channel_id"))
        if meta is None or not meta.get("draft_id") or len(meta["draft_id"]) > MAX_DRAFT_ID:
            ack(response_action="update", view=modals.damaged_view(voice))
            return
        channel = meta.get("channel_id", "")
        draft = ctx.drafts.load(meta["draft_id"], user, channel=channel)
        if draft is None:
            earlier = ctx.drafts.submitted_from(meta["draft_id"], user)
            series_id = ctx.series.created_from(f"draft:{meta['draft_id']}", user) \
                if earlier is None and ctx.series is not None else None
            if series_id is not None:
                ack(response_action="update", view=series_ui.submitted_view(voice, series_id))
                return
            ack(response_action="update", view=_gone_view(ctx) if earlier is None else
                modals.submitted_view(voice, earlier.request_id, earlier.auto_approved))
            return
        if draft.series and ctx.series is not None:
            preview = ctx.drafts.confirm(draft)
            if not preview.ok:
                ack(response_action="update", view=_problem_view(ctx, _problem_lines(ctx, preview)))
                return
            series_id = ctx.series.create(preview, Rule.from_columns(draft.series), requester=user,
                                          origin_channel=channel, source=f"draft:{draft.id}")
            crash_point("after_draft_submitted")
            ctx.drafts.discard(draft.id)
            ack(response_action="update", view=series_ui.submitted_view(voice, series_id))
            ctx.wake_poster()
            reach.warn_if_card_unreachable(ctx, client, channel, _direct_teller(ctx, client, user))
            return
        outcome = ctx.drafts.submit_preview(draft, choice=modals.read_quiet_choice(_state_values(view)))
        assert outcome.preview is not None
        if outcome.verdict is Verdict.ASK:
            # Quiet hours began while the preview was open: ask before anything is submitted.
            ack(response_action="update", view=modals.preview_view(
                voice, outcome.preview, draft_id=draft.id, channel_id=channel, quiet_until=outcome.quiet_until,
                budget=outcome.budget))
            return
        if outcome.verdict is Verdict.INVALID:
            # Time passed since the preview (e.g. the scheduled time is now past): go back and say why.
            ack(response_action="update", view=_problem_view(ctx, _problem_lines(ctx, outcome.preview)))
            return
        submitted = outcome.submitted
        assert submitted is not None
        ack(response_action="update", view=modals.submitted_view(voice, submitted.request_id, submitted.auto_approved))
        ctx.wake_poster()
        reach.warn_if_card_unreachable(ctx, client, channel, _direct_teller(ctx, client, user),
                                       request_id=submitted.request_id)


def _direct_teller(ctx: HandlerContext, client: WebClient, user: str):
    """Tell `user` in their direct messages with the bot (a modal has no channel to answer in)."""
    def tell(zh: str, en: str) -> None:
        text, blocks = cards.ephemeral(ctx.voice, zh, en)
        client.chat_postMessage(channel=user, text=text, blocks=blocks, unfurl_links=False)
    return tell


#: Draft ids are short tokens (storage/drafts.py); a longer one was not written by this app.
MAX_DRAFT_ID = 100


def _state_values(view: dict) -> dict:
    """`view.state.values`, or nothing when Slack's envelope lacks it (checked in bot/slack_guard.py)."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    return values if isinstance(values, dict) else {}


def template_names(ctx: HandlerContext) -> list[str]:
    """The names the compose modal's template chooser offers."""
    return ctx.audiences.template_names(modals.MAX_TEMPLATE_OPTIONS)


def _problem_lines(ctx: HandlerContext, preview: Preview) -> str:
    return "\n".join(f"• {ctx.voice.t(p.zh, p.en)}" for p in preview.problems)


def field_errors(ctx: HandlerContext, problems, kind: str) -> dict[str, str]:
    """Problems -> {block_id: message}; Slack shows each under its field (one message per field, at most
    2,000 characters). Repeated sentences are said once, and a field's text stops growing at the limit:
    pasted junk can bring tens of thousands of problems, and joining them all took longer than Slack waits."""
    lines: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for problem in problems:
        block = problem.field if problem.field in modals.FIELDS else "message"
        if block == "image" and kind != "mms":
            block = "message"
        text = ctx.voice.t(problem.zh, problem.en)
        said = lines.setdefault(block, [])
        if sizes.get(block, 0) > MAX_ERROR_CHARS or text in said:
            continue
        said.append(text)
        sizes[block] = sizes.get(block, 0) + len(text) + 1
    return {block: "\n".join(said)[:MAX_ERROR_CHARS] for block, said in lines.items()}


#: Slack's limit on one field error's text.
MAX_ERROR_CHARS = 2000


def _gone_view(ctx: HandlerContext) -> dict:
    return _problem_view(ctx, ctx.voice.t("這份草稿已過期，請重新開啟 /sms。", "This draft expired; open /sms again."))


def _problem_view(ctx: HandlerContext, text: str) -> dict:
    from slack_sdk.models.views import View

    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
              *[b.to_dict() for b in cards.sandbox_block(ctx.voice)]]
    return View(type="modal", title={"type": "plain_text", "text": "⚠️ 無法送出 Not sent"},
                close={"type": "plain_text", "text": "關閉 Close"}, blocks=blocks).to_dict()
