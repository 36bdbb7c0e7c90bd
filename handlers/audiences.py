"""Slack surface of the address book and templates (issue 6): `/sms contacts`, `/sms templates`, the CSV
import modal, and the compose modal's template chooser.

    /sms contacts                                  contacts (numbers masked per BOT_MASK_NUMBERS) and groups
    /sms contacts add 王小明 0912345678 [標籤,…]    add or update a contact (approvers)
    /sms contacts remove 王小明|0912345678          remove a contact (approvers)
    /sms contacts group VIP客戶 王小明,0922333444    add contacts to a group, creating it (approvers)
    /sms contacts ungroup VIP客戶                   delete a group; its contacts stay (approvers)
    /sms contacts import                           upload a CSV: 姓名,電話[,標籤][,群組] (approvers)
    /sms templates                                 the templates
    /sms templates add 提醒 {name} 您好，{date} …   save a template (anyone; replacing someone else's: approvers)
    /sms templates remove 提醒                      remove one (its author or an approver)

Changes to the address book are approvers-only because names decide who receives a message; each change
is audited. Names and groups are then usable in every recipients field (services/audiences.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import MarkdownTextObject, PlainTextObject, SectionBlock
from slack_sdk.models.views import View

from every8d.phones import Recipient, parse_phone
from handlers import cards, modals
from handlers.commands import SubcommandCall
from handlers.context import HandlerContext
from handlers.files import FileFetchError, fetch_slack_file
from handlers.submissions import template_names
from handlers.texts import Voice, clip, escape
from services.audiences import CsvImportError, NameRefused, fill_template, unknown_variables
from services.permissions import Action, may

log = logging.getLogger("every8d_bot.handlers")

IMPORT_CALLBACK = "contacts_import"
IMPORT_BLOCK = "file"
#: How many contacts / templates a list shows (the count says how many there are).
LISTED = 30
_LINES_PER_BLOCK = 10
_NAME_MAX = 40


def register(app: App, ctx: HandlerContext) -> None:
    """Add `/sms contacts` and `/sms templates`, the import modal and the template chooser."""
    ctx.subcommands["contacts"] = lambda ack, call: contacts_command(ctx, ack, call)
    ctx.subcommands["templates"] = lambda ack, call: templates_command(ctx, ack, call)

    @app.view(IMPORT_CALLBACK)
    def import_submitted(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        state = view.get("state")
        values = state.get("values") if isinstance(state, dict) else None
        ack(**import_answer(ctx, client, body["user"]["id"], values if isinstance(values, dict) else {}))

    @app.action(modals.TEMPLATE_ACTION)
    def template_chosen(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        update = template_redraw(ctx, body)
        if update is not None:
            modals.update_view(client, **update)


# -- /sms contacts ----------------------------------------------------------------------------------------


def contacts_command(ctx: HandlerContext, ack: Ack, call: SubcommandCall) -> None:
    """List for anyone; changes for approvers. Everything answers in the ack (no EVERY8D call)."""
    voice = ctx.voice
    word, _, rest = call.rest.partition(" ")
    word, rest = word.lower(), rest.strip()
    if not word or word == "list":
        ack(**contacts_listing(ctx))
    elif word not in ("add", "remove", "group", "ungroup", "import"):
        ack(**_contacts_usage(voice))
    elif not may(ctx.policy, call.user, Action.MANAGE_LISTS):
        ack(**_answer(voice, "只有核准者可以修改通訊錄。", "Only approvers can change the address book."))
    elif word == "import":
        ack()
        call.client.views_open(trigger_id=call.trigger_id, view=import_view(voice))
    else:
        change = {"add": add_contact, "remove": remove_contact, "group": group_contacts, "ungroup": ungroup}[word]
        ack(**change(ctx, call.user, rest))


def contacts_listing(ctx: HandlerContext) -> dict:
    voice = ctx.voice
    book = ctx.audiences.address_book(LISTED)
    total, groups = book.total, book.groups
    if not total and not groups:
        return _answer(voice, "通訊錄是空的。用 `/sms contacts add 王小明 0912345678` 新增。",
                       "The address book is empty. Add with `/sms contacts add Amy 0912345678`.")
    lines = []
    for contact in book.contacts:
        tags = f" · 🏷 {escape(contact.tags)}" if contact.tags else ""
        lines.append(f"• {escape(contact.name)} · {voice.number(contact.e164)}{tags}")
    if total > LISTED:
        lines.append(voice.t(f"…另有 {total - LISTED} 位", f"…and {total - LISTED} more"))
    if groups:
        listed_zh = "、".join(f"{escape(name)}（{n}）" for name, n in groups[:LISTED])
        listed_en = ", ".join(f"{escape(name)} ({n})" for name, n in groups[:LISTED])
        lines.append(voice.t(f"👥 群組：{listed_zh}", f"👥 Groups: {listed_en}"))
    blocks = ["\n".join(lines[i:i + _LINES_PER_BLOCK]) for i in range(0, len(lines), _LINES_PER_BLOCK)]
    return _answer(voice, f"📇 通訊錄：{total} 位聯絡人、{len(groups)} 個群組（收件人欄可直接填姓名或群組名稱）",
                   f"Address book: {total} contacts, {len(groups)} groups (type a name or group as a recipient)",
                   extra=blocks)


def add_contact(ctx: HandlerContext, user: str, rest: str) -> dict:
    """`王小明 0912345678 [tags]`: the name is everything before the first word with digits."""
    voice = ctx.voice
    words = rest.split()
    at = next((i for i, w in enumerate(words) if any(ch.isdigit() for ch in w)), None)
    if at is None or at == 0:
        return _contacts_usage(voice)
    name = " ".join(words[:at])[:_NAME_MAX]
    parsed = parse_phone(words[at])
    if not isinstance(parsed, Recipient):  # the problem quotes what was typed: inert, like every echo
        return _answer(voice, escape(parsed.zh), escape(parsed.en))
    if any(ch.isdigit() for ch in name) or not any(ch.isalpha() for ch in name):
        return _answer(voice, "姓名需含文字、不能含數字（才能和電話號碼區分）。",
                       "A name needs letters and no digits (so it cannot be mistaken for a number).")
    tags = ",".join(t for t in re.split(r"[,，、;；\s]+", " ".join(words[at + 1:])) if t)
    try:
        existed = ctx.audiences.save_contact(actor=user, name=name, e164=parsed.e164, tags=tags)
    except NameRefused as refused:
        return _answer(voice, escape(refused.zh), escape(refused.en))
    shown_zh = f"{escape(name)}（{voice.number(parsed.e164)}）"
    shown_en = f"{escape(name)} ({voice.number(parsed.e164)})"
    if existed:
        return _answer(voice, f"📇 已更新聯絡人 {shown_zh}。", f"Contact {shown_en} was updated.")
    return _answer(voice, f"📇 已新增聯絡人 {shown_zh}。", f"Contact {shown_en} was added.")


def remove_contact(ctx: HandlerContext, user: str, rest: str) -> dict:
    voice = ctx.voice
    if not rest:
        return _contacts_usage(voice)
    parsed = parse_phone(rest) if any(ch.isdigit() for ch in rest) else None
    key = parsed.e164 if isinstance(parsed, Recipient) else rest
    removed = ctx.audiences.remove_contact(actor=user, key=key)
    shown = escape(clip(rest, _NAME_MAX))
    if not removed:
        return _answer(voice, f"通訊錄中沒有「{shown}」。", f"\"{shown}\" is not in the address book.")
    return _answer(voice, f"🗑 已移除「{shown}」（{removed} 位聯絡人）。", f"Removed \"{shown}\" ({removed} contacts).")


def group_contacts(ctx: HandlerContext, user: str, rest: str) -> dict:
    """`VIP客戶 王小明,0922333444`: every member must already be a contact (by exact name or number)."""
    voice = ctx.voice
    group, _, members = rest.partition(" ")
    entries = [e.strip() for e in re.split(r"[,，、;；\n]+", members) if e.strip()]
    if not group or not entries:
        return _contacts_usage(voice)
    try:
        change = ctx.audiences.add_to_group(actor=user, group=group[:_NAME_MAX], entries=entries)
    except NameRefused as refused:
        return _answer(voice, escape(refused.zh), escape(refused.en))
    if change.missing:
        listed = "、".join(escape(clip(entry, _NAME_MAX)) for entry in change.missing[:10])
        return _answer(voice, f"通訊錄中找不到：{listed}。請先用 `/sms contacts add` 新增，群組未變更。",
                       f"Not in the address book: {listed}. Add them first with `/sms contacts add`; "
                       "the group was not changed.")
    shown = escape(group[:_NAME_MAX])
    return _answer(voice, f"👥 已將 {change.added} 位加入群組「{shown}」（共 {change.size} 位）。",
                   f"Added {change.added} to the group \"{shown}\" ({change.size} in all).")


def ungroup(ctx: HandlerContext, user: str, rest: str) -> dict:
    voice = ctx.voice
    if not rest:
        return _contacts_usage(voice)
    shown = escape(clip(rest, _NAME_MAX))
    if not ctx.audiences.remove_group(actor=user, group=rest):
        return _answer(voice, f"沒有名為「{shown}」的群組。", f"There is no group named \"{shown}\".")
    return _answer(voice, f"🗑 已刪除群組「{shown}」（聯絡人仍保留）。",
                   f"The group \"{shown}\" was deleted (its contacts stay).")


def _contacts_usage(voice: Voice) -> dict:
    return _answer(
        voice,
        "用法：`/sms contacts`、`/sms contacts add 王小明 0912345678 [標籤]`、`/sms contacts remove 王小明`、"
        "`/sms contacts group VIP客戶 王小明,陳小華`、`/sms contacts ungroup VIP客戶`、`/sms contacts import`",
        "Usage: `/sms contacts`, `/sms contacts add Amy 0912345678 [tags]`, `/sms contacts remove Amy`, "
        "`/sms contacts group VIP Amy,Ben`, `/sms contacts ungroup VIP`, `/sms contacts import`",
    )


# -- CSV import -------------------------------------------------------------------------------------------


def import_view(voice: Voice) -> dict:
    """The import modal: one CSV file."""
    return View(
        type="modal",
        callback_id=IMPORT_CALLBACK,
        title=_plain(voice.t("匯入聯絡人", "Import contacts") if voice.language != "both" else "匯入 Import"),
        submit=_plain(voice.t("匯入", "Import") if voice.language != "both" else "匯入 Import"),
        close=_plain(voice.t("取消", "Cancel") if voice.language != "both" else "取消 Cancel"),
        blocks=[
            SectionBlock(text=voice.t(
                "CSV 第一列為標題：姓名,電話[,標籤][,群組]（也接受 name,phone,tags,group）。同號碼會更新姓名與標籤。",
                "The CSV's first row is a header: name,phone[,tags][,group] (or 姓名,電話,標籤,群組). "
                "A known number gets its name and tags updated.")).to_dict(),
            {"type": "input", "block_id": IMPORT_BLOCK, "label": _plain(voice.t("CSV 檔案", "CSV file")).to_dict(),
             "element": {"type": "file_input", "action_id": modals.VALUE, "filetypes": ["csv"], "max_files": 1}},
        ],
    ).to_dict()


def import_answer(ctx: HandlerContext, client: WebClient, user: str, state: dict[str, Any]) -> dict:
    """The ack for a submitted import: an inline error on the file field, or the counts."""
    voice = ctx.voice
    if not may(ctx.policy, user, Action.MANAGE_LISTS):
        return _field_error(voice, "只有核准者可以匯入聯絡人。", "Only approvers can import contacts.")
    block = state.get(IMPORT_BLOCK)
    field = block.get(modals.VALUE) if isinstance(block, dict) else None
    files = field.get("files") if isinstance(field, dict) else None
    files = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    if not files:
        return _field_error(voice, "請上傳一個 CSV 檔案。", "Upload one CSV file.")
    try:
        fetched = fetch_slack_file(client, files[0].get("id", ""), token=ctx.bot_token, timeout=ctx.file_timeout)
        result = ctx.audiences.import_csv(fetched.content, actor=user)
    except (FileFetchError, CsvImportError) as exc:
        return _field_error(voice, exc.zh, exc.en)
    lines = [voice.t(f"第 {row} 列：{escape(zh)}", f"Row {row}: {escape(en)}") for row, zh, en in result.reasons]
    if result.skipped > len(result.reasons):
        lines.append(voice.t(f"…另有 {result.skipped - len(result.reasons)} 列略過",
                             f"…and {result.skipped - len(result.reasons)} more skipped"))
    text = voice.t(f"📇 匯入完成：新增 {result.added} 位、更新 {result.updated} 位、略過 {result.skipped} 列。",
                   f"Import done: {result.added} added, {result.updated} updated, {result.skipped} skipped.")
    blocks = [SectionBlock(text=_md(text)).to_dict()]
    if result.renamed:
        shown_zh = "、".join(f"{escape(old)} → {escape(new)}" for old, new in result.renames)
        shown_en = ", ".join(f"{escape(old)} → {escape(new)}" for old, new in result.renames)
        more = result.renamed - len(result.renames)
        zh = f"✏️ 其中 {result.renamed} 位已在通訊錄中，名字改為檔案中的名字：{shown_zh}" + (" 等" if more else "")
        en = (f"✏️ {result.renamed} of them were in the address book under another name and were renamed: "
              f"{shown_en}" + (f" and {more} more" if more else ""))
        blocks.append(SectionBlock(text=_md(voice.t(zh, en))).to_dict())
    if lines:
        blocks.append(SectionBlock(text=_md("\n".join(lines))).to_dict())
    view = View(type="modal", title=_plain(voice.t("匯入完成", "Imported") if voice.language != "both" else "匯入完成 Done"),
                close=_plain(voice.t("關閉", "Close") if voice.language != "both" else "關閉 Close"), blocks=blocks)
    return {"response_action": "update", "view": view.to_dict()}


def _field_error(voice: Voice, zh: str, en: str) -> dict:
    return {"response_action": "errors", "errors": {IMPORT_BLOCK: voice.t(zh, en)}}


# -- /sms templates ---------------------------------------------------------------------------------------


def templates_command(ctx: HandlerContext, ack: Ack, call: SubcommandCall) -> None:
    word, _, rest = call.rest.partition(" ")
    word, rest = word.lower(), rest.strip()
    if not word or word == "list":
        ack(**templates_listing(ctx))
    elif word == "add":
        ack(**save_template(ctx, call.user, rest))
    elif word == "remove":
        ack(**remove_template(ctx, call.user, rest))
    else:
        ack(**_templates_usage(ctx.voice))


def templates_listing(ctx: HandlerContext) -> dict:
    voice = ctx.voice
    templates = ctx.audiences.templates(LISTED)
    if not templates:
        return _answer(voice, "還沒有範本。用 `/sms templates add 名稱 內容` 新增，內容可用 {name}、{date}、{time}。",
                       "No templates yet. Add one with `/sms templates add name text`; use {name}, {date}, {time}.")
    lines = [f"• *{escape(t.name)}* · {escape(clip(t.body, 120))} · <@{t.created_by}>" for t in templates]
    blocks = ["\n".join(lines[i:i + _LINES_PER_BLOCK]) for i in range(0, len(lines), _LINES_PER_BLOCK)]
    return _answer(voice, f"📝 範本 {len(templates)} 個（在 `/sms` 發送視窗中選用）",
                   f"{len(templates)} templates (choose one in the `/sms` compose window)", extra=blocks)


def save_template(ctx: HandlerContext, user: str, rest: str) -> dict:
    """Anyone may add a template; replacing someone else's needs an approver (it changes what they send)."""
    voice = ctx.voice
    name, _, body = rest.partition(" ")
    body = body.strip()
    if not name or not body:
        return _templates_usage(voice)
    if len(name) > _NAME_MAX:
        return _answer(voice, f"範本名稱最多 {_NAME_MAX} 字。", f"A template name has at most {_NAME_MAX} characters.")
    existing = ctx.audiences.template(name)
    if existing and not may(ctx.policy, user, Action.EDIT_TEMPLATE, owner=existing.created_by):
        return _answer(voice, f"範本「{escape(name)}」是 <@{existing.created_by}> 建立的，只有他或核准者可以修改。",
                       f"The template \"{escape(name)}\" belongs to <@{existing.created_by}>; only they or an "
                       "approver can change it.")
    try:
        new = ctx.audiences.save_template(actor=user, name=name, body=body)
    except NameRefused as refused:
        return _answer(voice, escape(refused.zh), escape(refused.en))
    verb = ("已新增", "added") if new else ("已更新", "updated")
    zh, en = f"📝 {verb[0]}範本「{escape(name)}」。", f"Template \"{escape(name)}\" {verb[1]}."
    from_csv = unknown_variables(body)
    if from_csv:
        listed = "、".join("{" + escape(v) + "}" for v in from_csv)
        zh += f"\n{listed} 會由發送時上傳的 CSV 名單同名欄位填入（{{name}} 也可來自通訊錄，{{date}}、{{time}} 自動填入）。"
        en += (f"\n{listed} will be filled from the same-named columns of the CSV audience uploaded when sending "
               "({name} may also come from the address book; {date} and {time} are filled automatically).")
    return _answer(voice, zh, en)


def remove_template(ctx: HandlerContext, user: str, name: str) -> dict:
    voice = ctx.voice
    if not name:
        return _templates_usage(voice)
    existing = ctx.audiences.template(name)
    if existing is None:
        return _answer(voice, f"沒有名為「{escape(clip(name, _NAME_MAX))}」的範本。",
                       f"There is no template named \"{escape(clip(name, _NAME_MAX))}\".")
    if not may(ctx.policy, user, Action.EDIT_TEMPLATE, owner=existing.created_by):
        return _answer(voice, "只有範本的建立者或核准者可以刪除它。", "Only the template's author or an approver can remove it.")
    ctx.audiences.remove_template(actor=user, name=existing.name)
    return _answer(voice, f"🗑 已刪除範本「{escape(existing.name)}」。", f"Template \"{escape(existing.name)}\" removed.")


def _templates_usage(voice: Voice) -> dict:
    return _answer(voice, "用法：`/sms templates`、`/sms templates add 名稱 {name} 您好，…`、`/sms templates remove 名稱`",
                   "Usage: `/sms templates`, `/sms templates add name Hello {name}, …`, `/sms templates remove name`")


def template_redraw(ctx: HandlerContext, body: dict) -> dict | None:
    """A template was chosen in the compose modal: the `views.update` arguments that redraw it with the
    message filled ({date} and {time} now; {name} when the draft is checked), keeping what was typed."""
    view = body.get("view")
    option = body["actions"][0].get("selected_option")
    selected = option.get("value") if isinstance(option, dict) else None
    meta = modals.read_metadata(view)
    template = ctx.audiences.template(selected) if isinstance(selected, str) else None
    if template is None or meta is None or not view.get("id"):
        return None
    state = view.get("state")
    values = modals.read_compose(state.get("values") if isinstance(state, dict) else {}, ctx.voice.tz)
    channel = meta.get("channel_id", "")
    initial = {"recipients_text": values.recipients, "subject": values.subject, "template": template.name,
               "message": fill_template(template.body, now=ctx.clock(), tz=ctx.voice.tz)}
    fresh = f"{modals.VALUE}.{int(ctx.clock() * 1000) % 100_000_000}"  # a new action_id shows the new text
    redrawn = modals.compose_view(ctx.voice, channel_id=channel, kind=values.kind, initial=initial,
                                  templates=template_names(ctx), message_action=fresh, limits=ctx.limits)
    return {"view_id": view["id"], "hash": view.get("hash"), "view": redrawn}


# -- shared -----------------------------------------------------------------------------------------------


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text[:2900])


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text[:24], emoji=True)


def _answer(voice: Voice, zh: str, en: str, *, extra: list[str] | None = None) -> dict:
    text, blocks = cards.ephemeral(voice, zh, en, extra=extra or [])
    return {"text": text, "blocks": blocks}
