"""Names that differ only by what does not show (issue 12): a contact, group or template name with a
zero-width space, a right-to-left override or another format character is refused, and so is one that reads
the same as an existing name; driven through signed `/sms contacts` / `/sms templates` commands and the
CSV import modal of the running product."""

from __future__ import annotations

import pytest

from slackstandin import payloads as p
from tests.harness import SlackUser, all_text, wait_until

ZWSP, RLO, ZWJ, BOM, SHY, WORD_JOINER = "\u200b", "\u202e", "\u200d", "\ufeff", "\u00ad", "\u2060"


def said(user: SlackUser, text: str) -> str:
    return all_text(user.command(text).json())


@pytest.mark.parametrize(
    ("hidden", "code"),
    [(ZWSP, "U+200B"), (RLO, "U+202E"), (ZWJ, "U+200D"), (BOM, "U+FEFF"), (SHY, "U+00AD"), (WORD_JOINER, "U+2060"),
     ("\u3164", "U+3164")],
    ids=["zero-width-space", "rtl-override", "zero-width-joiner", "bom", "soft-hyphen", "word-joiner",
         "hangul-filler"],
)
def test_a_name_with_an_invisible_character_is_refused_by_code(product, hidden: str, code: str) -> None:
    boss = SlackUser(product, "U_APPROVER")
    answer = said(boss, f"contacts add 王{hidden}小明 0912345678")
    assert "看不見的字元" in answer and code in answer
    assert product.store.contacts.count() == 0
    answer = said(SlackUser(product, "U_REQUESTER"), f"templates add 提醒{hidden} 明天開會")
    assert "看不見的字元" in answer and code in answer
    assert product.store.templates.list() == []
    said(boss, "contacts add 陳小華 0922333444")
    answer = said(boss, f"contacts group VIP{hidden} 陳小華")
    assert "看不見的字元" in answer and code in answer
    assert product.store.contacts.groups() == []


def test_a_look_alike_of_an_existing_name_is_refused_and_names_it(product) -> None:
    boss = SlackUser(product, "U_APPROVER")
    assert "已新增聯絡人" in said(boss, "contacts add 王小明 0912345678")
    assert "已新增範本" in said(boss, "templates add 提醒 明天開會")
    assert "已將 1 位加入群組" in said(boss, "contacts group VIP客戶 王小明")

    for typed in ("contacts add 王小明 0922333444", "contacts add Amy 0933444555", "contacts add amy 0933444556"):
        said(boss, typed)  # the same name twice (two people) and ASCII case stay allowed, as before
    assert product.store.contacts.count() == 4

    look_alikes = ["contacts add ＡＭＹ 0944555666",  # full-width: NFKC reads it as AMY, stored differently
                   "contacts add 王小明\u2800 0955666777",  # a braille blank at the end
                   "templates add 提醒\u00a0 改掉"]
    for typed in look_alikes:
        answer = said(boss, typed)
        assert "看起來和現有的" in answer or "開頭或結尾不可有空白" in answer or "看不見的字元" in answer, answer
    assert product.store.contacts.count() == 4
    assert [t.body for t in product.store.templates.list()] == ["明天開會"]
    answer = said(boss, "contacts group ＶＩＰ客戶 王小明")
    assert "看起來和現有的「VIP客戶」相同" in answer
    assert [g for g, _ in product.store.contacts.groups()] == ["VIP客戶"]


def test_a_stored_name_with_a_hidden_character_is_shown_with_it_written_out(product) -> None:
    """A look-alike stored before this rule is named with its hidden character spelled out."""
    product.store.contacts.upsert(f"王{ZWSP}小明", "+886912345678", actor="old-version")
    answer = said(SlackUser(product, "U_APPROVER"), "contacts add 王小明 0922333444")
    assert "看起來和現有的「王‹U+200B›小明」相同" in answer
    assert product.store.contacts.count() == 1


def test_csv_rows_with_invisible_or_look_alike_names_are_skipped_with_the_reason(product) -> None:
    boss = SlackUser(product, "U_APPROVER")
    said(boss, "contacts add 王小明 0912345678")
    boss.command("contacts import")
    [view] = wait_until(lambda: product.standin.open_views("U_APPROVER"))
    csv_text = (f"姓名,電話,群組\n林{RLO}美麗,0966777888,\n王小明{ZWSP},0966777889,\n陳小華,0966777890,台北{ZWSP}店\n"
                "Li四,0966777891,\nＬＩ四,0966777892,\n張三,0966777893,\n")
    file_id = product.standin.add_file(csv_text.encode("utf-8"), "c.csv", "text/csv", "csv", user="U_APPROVER")
    done = boss.submit(view, {"file": p.file_input("value", [product.standin.file_object(file_id)])}).json()
    shown = all_text(done["view"])
    assert "新增 2 位、更新 0 位、略過 4 列" in shown, shown
    assert "U+202E" in shown and "U+200B" in shown and "看起來和現有的「Li四」相同" in shown
    assert sorted(c.name for c in product.store.contacts.list()) == sorted(["Li四", "張三", "王小明"])
    assert product.store.contacts.groups() == []
