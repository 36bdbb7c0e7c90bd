"""The address book and templates, driven as Slack drives them: approvers manage contacts and groups with
`/sms contacts` (or a CSV upload), anyone then types names and groups as recipients, delivery rows carry
the contact's name, and templates chosen in the compose modal fill the message."""

from __future__ import annotations

import json
from datetime import datetime

from slackstandin import payloads as p
from tests.harness import Product, SlackUser, all_text, wait_until
from tests.test_compose_modal import values

AMY = "+886912345678"
BEN = "+886922333444"


def approver(product: Product) -> SlackUser:
    return SlackUser(product, "U_APPROVER")


def answer(user: SlackUser, text: str) -> str:
    return all_text(user.command(text).json())


def add_contacts(product: Product) -> None:
    boss = approver(product)
    assert "已新增聯絡人" in answer(boss, "contacts add 王小明 0912345678 客戶,台北")
    assert "已新增聯絡人" in answer(boss, "contacts add 陳小華 0922-333-444")
    assert "已將 2 位加入群組「VIP客戶」" in answer(boss, "contacts group VIP客戶 王小明,0922333444")


def test_approvers_manage_contacts_and_everyone_sees_them_masked(product):
    requester = SlackUser(product, "U_REQUESTER")
    assert "只有核准者" in answer(requester, "contacts add 王小明 0912345678")
    assert product.store.contacts.count() == 0
    add_contacts(product)

    listing = answer(requester, "contacts")
    assert "王小明" in listing and "0912-***-678" in listing and "0912345678" not in listing
    assert "客戶,台北" in listing and "VIP客戶（2）" in listing
    assert "已更新聯絡人" in answer(approver(product), "contacts add 王大明 0912345678")
    assert product.store.contacts.names_for([AMY]) == {AMY: "王大明"}
    assert "只有核准者" in answer(requester, "contacts remove 王大明")
    assert "已移除" in answer(approver(product), "contacts remove 0912-345-678")
    assert "已刪除群組" in answer(approver(product), "contacts ungroup VIP客戶")
    assert product.store.contacts.groups() == [] and product.store.contacts.count() == 1
    actions = [a for kind in ("contact_saved", "group_members_added", "contact_removed", "group_removed")
               for a in product.store.audit.actions(kind)]
    assert len(actions) == 6 and {a["actor"] for a in actions} == {"U_APPROVER"}


def test_names_and_groups_are_recipients_and_deliveries_carry_the_names(product):
    add_contacts(product)
    requester = SlackUser(product, "U_REQUESTER")
    text = answer(requester, "send VIP客戶,0933444555 明天開會")
    assert "3 位收件人" in text, text
    product.settle()
    [card] = product.standin.messages("C_APPROVALS")
    approver(product).click("approve_request", "1", message=card)
    assert wait_until(lambda: product.store.requests.get(1).state == "sent")
    product.settle()
    [send] = [c for c in product.sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]
    assert set(send.params["DEST"].split(",")) == {AMY, BEN, "+886933444555"}

    batch_id = product.store.requests.get(1).batch_id
    assert wait_until(lambda: (product.poll(), product.store.batches.get(batch_id).state != "open")[1], timeout=10)
    names = {d.mobile: d.name for d in product.store.batches.deliveries(batch_id)}
    assert names == {AMY: "王小明", BEN: "陳小華", "+886933444555": ""}

    text = answer(requester, "send 王曉明,李四 測試")
    assert "找不到聯絡人或群組「王曉明」" in text and "李四" in text and "請輸入至少一個" not in text
    approver(product).command("contacts add 王小明 0955666777")
    assert "有 2 位聯絡人都叫「王小明」" in answer(requester, "send 王小明 測試")
    assert product.store.requests.get(2) is None


def test_a_csv_in_big5_with_chinese_headers_is_imported_with_counts_and_groups(product):
    add_contacts(product)
    boss = approver(product)
    boss.command("contacts import")
    [view] = wait_until(lambda: product.standin.open_views("U_APPROVER"))
    assert view["callback_id"] == "contacts_import"

    csv_text = "姓名,電話,標籤,群組\n王小明,0912345678,老客戶,台北店\n林美麗,0966-777-888,,台北店\n壞號碼,02-2345-6789,,\n"
    file_id = product.standin.add_file(csv_text.encode("cp950"), "客戶.csv", "text/csv", "csv", user="U_APPROVER")
    done = boss.submit(view, {"file": p.file_input("value", [product.standin.file_object(file_id)])}).json()
    assert done["response_action"] == "update", done
    shown = all_text(done["view"])
    assert "新增 1 位、更新 1 位、略過 1 列" in shown and "第 4 列" in shown and "02-2345-6789" in shown
    assert [c.name for c in product.store.contacts.group_members("台北店")] == ["林美麗", "王小明"]
    assert product.store.audit.actions("contacts_imported")

    bad = product.standin.add_file(b"a,b\n1,2\n", "x.csv", "text/csv", "csv", user="U_APPROVER")
    refused = boss.submit(view, {"file": p.file_input("value", [product.standin.file_object(bad)])}).json()
    assert refused["response_action"] == "errors" and "標題" in refused["errors"]["file"]


def test_templates_are_listed_checked_and_owned(product):
    requester = SlackUser(product, "U_REQUESTER")
    saved = answer(requester, "templates add 報價 {name} 您好，價格 {price}")
    assert "已新增範本" in saved and "{price} 會由發送時上傳的 CSV 名單同名欄位填入" in saved
    assert "已新增範本" in answer(requester, "templates add 提醒 {name} 您好，{date} 請記得繳費")
    assert "提醒" in answer(SlackUser(product, "U_OTHER"), "templates")
    assert "只有他或核准者" in answer(SlackUser(product, "U_OTHER"), "templates add 提醒 改掉")
    assert "只有範本的建立者" in answer(SlackUser(product, "U_OTHER"), "templates remove 提醒")
    assert "已刪除範本" in answer(approver(product), "templates remove 提醒")
    assert [t.name for t in product.store.templates.list()] == ["報價"]


def test_a_template_chosen_in_the_modal_fills_the_message_and_name_per_recipient(make_product):
    product = make_product(param_sms=False)  # one part per text: its message is that text
    add_contacts(product)
    requester = SlackUser(product, "U_REQUESTER")
    requester.command("templates add 提醒 {name} 您好，{date} 請記得繳費")
    requester.command("")
    [view] = wait_until(lambda: product.standin.open_views("U_REQUESTER"))
    assert "template" in {b.get("block_id") for b in view["blocks"]}

    state = {"kind": p.radio_buttons("compose_kind", "sms"), "recipients": p.plain_text_input("value", "王小明")}
    requester._post(p.block_actions(user_id="U_REQUESTER", action_id="compose_template", value="提醒",
                                    view={**view, "state": {"values": state}}, action_type="static_select"))
    today = datetime.now(product.runtime.voice.tz).strftime("%Y-%m-%d")
    filled = wait_until(lambda: [b for v in product.standin.open_views("U_REQUESTER") for b in v["blocks"]
                                 if b.get("block_id") == "message" and b["element"].get("initial_value")])
    [message_block] = filled
    assert message_block["element"]["initial_value"] == f"{{name}} 您好，{today} 請記得繳費"
    [view] = product.standin.open_views("U_REQUESTER")
    assert json.dumps(view, ensure_ascii=False).count("王小明") == 1  # the typed recipients are kept

    body = message_block["element"]["initial_value"]
    stranger = requester.submit(view, values(recipients="VIP客戶, 0933000111", message=body)).json()
    assert stranger["response_action"] == "errors"
    assert "0933-***-111 沒有 {name} 的值" in stranger["errors"]["message"]  # never a half-filled text
    one = requester.submit(view, values(recipients="王小明", message=body)).json()
    assert one["response_action"] == "push", one
    requester.submit(one["view"], {})
    assert product.store.requests.get(1).message == f"王小明 您好，{today} 請記得繳費"

    # A group: each member gets their own name, sent as one EVERY8D call per text.
    several = requester.submit(view, values(recipients="VIP客戶", message=body)).json()
    assert several["response_action"] == "push", several
    assert "個人化" in json.dumps(several["view"], ensure_ascii=False)
    requester.submit(several["view"], {})
    assert sorted(p.message for p in product.store.parts.of_request(2)) == [
        f"王小明 您好，{today} 請記得繳費", f"陳小華 您好，{today} 請記得繳費"]



def test_a_utf8_csv_with_bom_and_english_headers_imports_too(product):
    from services.audiences import import_contacts, resolve_recipients

    content = "\ufeffPhone,Name,Tags\n0912345678,Amy Lin,vip;north\n,Nobody,\n".encode()
    result = import_contacts(content, product.store, actor="U_APPROVER")
    assert (result.added, result.updated, result.skipped) == (1, 0, 1)
    assert [(c.name, c.e164, c.tags) for c in product.store.contacts.list()] == [("Amy Lin", AMY, "vip,north")]
    # A name with a space is one entry in a recipients field (the one-line send takes one word).
    assert resolve_recipients("Amy Lin、0922333444", product.store) == (f"{AMY}\n0922333444", {AMY: "Amy Lin"}, [])


def test_an_import_that_renames_existing_numbers_says_so_and_how_many(product):
    add_contacts(product)  # 王小明 0912345678, 陳小華 0922333444
    boss = approver(product)
    boss.command("contacts import")
    [view] = wait_until(lambda: product.standin.open_views("U_APPROVER"))
    csv_text = "姓名,電話\n王大明,0912345678\n陳小華,0922333444\n林美麗,0966777888\n"
    file_id = product.standin.add_file(csv_text.encode(), "客戶.csv", "text/csv", "csv", user="U_APPROVER")
    done = boss.submit(view, {"file": p.file_input("value", [product.standin.file_object(file_id)])}).json()
    shown = all_text(done["view"])
    assert "新增 1 位、更新 2 位" in shown
    assert "其中 1 位已在通訊錄中，名字改為檔案中的名字：王小明 → 王大明" in shown
    assert "1 of them were in the address book under another name" in shown


def test_the_audience_service_adds_a_group_only_when_every_entry_is_a_contact(tmp_path):
    """services/audiences.py `AudienceService`: a group entry that names nobody changes nothing (and says
    which); otherwise the group gets them, the change is audited at the service's clock."""
    from services.audiences import AudienceService
    from storage import Store

    store = Store(tmp_path / "bot.db")
    try:
        service = AudienceService(store, lambda: 1_800_000_000.0)
        assert service.save_contact(actor="U_A", name="王小明", e164=AMY, tags="") is False
        assert service.save_contact(actor="U_A", name="陳小華", e164=BEN, tags="vip") is False
        assert [c.name for c in service.contacts_matching("0922-333-444")] == ["陳小華"]
        assert [c.e164 for c in service.contacts_matching("王小明")] == [AMY]
        assert service.contacts_matching("02-2345-6789") == [] and service.contacts_matching("nobody") == []

        missing = service.add_to_group(actor="U_A", group="VIP", entries=["王小明", "林美麗", "0933444555"])
        assert missing.missing == ["林美麗", "0933444555"] and missing.added == 0
        assert store.contacts.group_members("VIP") is None and not store.audit.actions("group_members_added")

        added = service.add_to_group(actor="U_A", group="VIP", entries=["王小明", "0922333444"])
        assert (added.added, added.size, added.missing) == (2, 2, [])
        [audit] = store.audit.actions("group_members_added")
        assert audit["at"] == 1_800_000_000.0 and audit["actor"] == "U_A"

        book = service.address_book(1)
        assert (book.total, [c.name for c in book.contacts], book.groups) == (2, ["王小明"], [("VIP", 2)])
        assert service.save_template(actor="U_A", name="提醒", body="{name} 您好") is True
        assert service.template("提醒").created_by == "U_A"  # type: ignore[union-attr]
        assert [t.name for t in service.templates(10)] == ["提醒"] and service.template_names(10) == ["提醒"]
        assert service.remove_template(actor="U_A", name="提醒") and service.template("提醒") is None
        assert service.remove_group(actor="U_A", group="VIP") and service.remove_contact(actor="U_A", key=AMY) == 1
    finally:
        store.close()
