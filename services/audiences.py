"""Audiences: the address book's names and groups used as recipients, CSV imports into it, and message
templates with `{variable}` placeholders.

People think of recipients by name ("王小明", "VIP客戶"), not by number; the phone rules only know numbers.
`resolve_recipients` sits in front of them: each entry that names a contact or a group becomes that
contact's or group's numbers, and the names travel with the request so delivery rows show who each
number belongs to. Plain Python over the store; no Slack, no EVERY8D.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from every8d.phones import Recipient, parse_phone, split_entries
from every8d.problems import Problem
from storage.models import Contact, Template

if TYPE_CHECKING:
    from services.ports import Clock
    from storage.db import Store

#: What `prepare` calls to read names and groups: text -> (entries for the phone rules, {e164: name}, problems).
Resolver = Callable[[str], tuple[list[str], dict[str, str], list[Problem]]]

#: Separators that always end an entry (the phone rules' own, so a name with spaces is tried whole first).
_SEPARATORS = re.compile(r"[,，;；、\r\n]+")
#: How many rows one CSV import may hold.
MAX_IMPORT_ROWS = 10_000
#: How many skipped rows an import answer names.
REASONS_LISTED = 5
#: Template variables and what fills them.
VARIABLES = ("name", "date", "time")
VARIABLE_PATTERN = re.compile(r"\{([^{}\s]{1,30})\}")

_HEADERS = {
    "name": ("name", "姓名", "名稱", "名字"),
    "phone": ("phone", "mobile", "number", "電話", "手機", "號碼", "手機號碼"),
    "tags": ("tags", "tag", "標籤"),
    "group": ("group", "groups", "群組"),
}


# -- recipients ---------------------------------------------------------------------------------------------


def resolve_recipients(text: str, store: Store) -> tuple[str, dict[str, str], list[Problem]]:
    """Replace contact and group names in a recipients field by their numbers: `resolve_entries` with the
    entries as text, one per line."""
    entries, names, problems = resolve_entries(text, store)
    return "\n".join(entries), names, problems


def resolve_entries(text: str, store: Store) -> tuple[list[str], dict[str, str], list[Problem]]:
    """Replace contact and group names in a recipients field by their numbers.

    Returns the entries for the phone rules, already split (handed on as a list, not joined into text to
    be split again), {e164: contact name} for every number that is in the address book (typed directly or
    reached by name), and the problems: a name that matches nothing, a contact name two contacts share, an
    empty group. Entries with digits are left to the phone rules, which say precisely what is wrong with a
    mistyped number."""
    entries: list[str] = []
    problems: list[Problem] = []
    lookup = _Lookup(store)
    for piece in _SEPARATORS.split(text):
        piece = piece.strip()
        if not piece:
            continue
        whole = lookup(piece) if _has_letters(piece) and " " in piece else None
        if whole is not None:
            _take(piece, whole, entries, problems)
            continue
        for entry in split_entries(piece):
            if not _has_letters(entry):
                entries.append(entry)
                continue
            _take(entry, lookup(entry), entries, problems)
    numbers = [r.e164 for r in map(parse_phone, entries) if isinstance(r, Recipient)]
    return entries, store.contacts.names_for(numbers), problems


def resolver(store: Store) -> Resolver:
    """`resolve_entries` bound to a store, for `compose.prepare(resolve=...)`."""
    return lambda text: resolve_entries(text, store)


@dataclass(frozen=True)
class _Found:
    numbers: list[str]
    problem: Problem | None = None


def _has_letters(entry: str) -> bool:
    return any(ch.isalpha() for ch in unicodedata.normalize("NFKC", entry))


def _take(entry: str, found: _Found | None, entries: list[str], problems: list[Problem]) -> None:
    """Add what `entry` named, or the reason it cannot be used. An unknown entry with digits stays for the
    phone rules (e.g. `0912345678分機12` gets the extension reason)."""
    if found is None:
        if any(ch.isdigit() for ch in entry):
            entries.append(entry)
        else:
            shown = _shown(entry)
            problems.append(Problem("recipients", f"找不到聯絡人或群組「{shown}」，請檢查名稱或改填手機號碼。",
                                    f'No contact or group named "{shown}"; check the name or enter the number.'))
    elif found.problem is not None:
        problems.append(found.problem)
    else:
        entries.extend(found.numbers)


#: After this many name lookups in one field, every name is read once instead (a pasted list of names,
#: or junk: 30,000 words were 60,000 queries and took longer than Slack's three seconds).
_LOOKUPS_BEFORE_PREFETCH = 50
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class _Lookup:
    """`_lookup` for one recipients field: after a few names, the address book's names and group names
    are read once, and a word that is neither is answered without a query. (SQLite's NOCASE folds ASCII
    only, and so does this filter; a word it lets through is still looked up exactly.)"""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls = 0
        self.known: set[str] | None = None

    def __call__(self, name: str) -> _Found | None:
        self.calls += 1
        if self.known is None and self.calls > _LOOKUPS_BEFORE_PREFETCH:
            names = [c.name for c in self.store.contacts.list(limit=-1)]
            names += [group for group, _ in self.store.contacts.groups()]
            self.known = {n.translate(_ASCII_LOWER) for n in names}
        if self.known is not None and name.translate(_ASCII_LOWER) not in self.known:
            return None
        return _lookup(name, self.store)


def _lookup(name: str, store: Store) -> _Found | None:
    """The numbers a name stands for: a contact (exact name, any case), else a group; None if neither."""
    shown = _shown(name)
    contacts = store.contacts.by_name(name)
    members = store.contacts.group_members(name)
    if len(contacts) > 1:
        return _Found([], Problem(
            "recipients", f"有 {len(contacts)} 位聯絡人都叫「{shown}」，請改填手機號碼。",
            f'{len(contacts)} contacts are named "{shown}"; enter the number instead.'))
    if contacts and members is not None:
        return _Found([], Problem(
            "recipients", f"「{shown}」同時是聯絡人和群組名稱，請改填手機號碼或重新命名群組。",
            f'"{shown}" is both a contact and a group; enter the number or rename the group.'))
    if contacts:
        return _Found([contacts[0].e164])
    if members is None:
        return None
    if not members:
        return _Found([], Problem("recipients", f"群組「{shown}」沒有成員。", f'The group "{shown}" has no members.'))
    return _Found([m.e164 for m in members])


def _shown(text: str) -> str:
    return text if len(text) <= 30 else text[:29] + "…"


# -- CSV import ---------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What an import did: counts, and the first reasons rows were skipped (row number, zh, en)."""

    added: int = 0
    updated: int = 0
    skipped: int = 0
    reasons: list[tuple[int, str, str]] = field(default_factory=list)
    groups: set[str] = field(default_factory=set)
    #: Numbers already in the address book under another name, which the import renamed: how many, and the
    #: first few (old name, new name), so nobody is surprised that a contact changed name.
    renamed: int = 0
    renames: list[tuple[str, str]] = field(default_factory=list)


class CsvImportError(Exception):
    """The file as a whole cannot be read (not CSV, no name/phone columns, too many rows)."""

    def __init__(self, zh: str, en: str) -> None:
        self.zh = zh
        self.en = en
        super().__init__(en)


def decode_csv(content: bytes) -> str:
    """UTF-8 (with or without BOM) first, then Big5/cp950, which Excel in Taiwan saves by default."""
    for encoding in ("utf-8-sig", "cp950"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvImportError("無法辨識檔案的文字編碼，請存成 UTF-8 的 CSV。", "Unreadable text encoding; save the file as UTF-8 CSV.")


def import_contacts(content: bytes, store: Store, *, actor: str, now: float | None = None) -> ImportResult:
    """Read a CSV with a header row (name, phone[, tags][, group]; English or 中文 headers) and upsert each
    row whose number can receive SMS. A row's group (if any) gets the contact as a member."""
    rows = list(csv.reader(io.StringIO(decode_csv(content))))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise CsvImportError("檔案是空的。", "The file is empty.")
    columns = _columns(rows[0])
    if len(rows) - 1 > MAX_IMPORT_ROWS:
        raise CsvImportError(f"最多 {MAX_IMPORT_ROWS:,} 列，這個檔案有 {len(rows) - 1:,} 列。",
                           f"At most {MAX_IMPORT_ROWS:,} rows; this file has {len(rows) - 1:,}.")
    result = ImportResult()
    valid: list[tuple[str, str, str]] = []
    groups: list[str] = []
    names = name_index(_address_book_names(store))
    for number, row in enumerate(rows[1:], start=2):
        cell = {key: (row[i].strip() if i is not None and i < len(row) else "") for key, i in columns.items()}
        checked = _row_problem(cell)
        if not isinstance(checked, tuple):
            checked = _row_name_problem(cell, names) or checked
        if isinstance(checked, tuple):
            result.skipped += 1
            if len(result.reasons) < REASONS_LISTED:
                result.reasons.append((number, *checked))
            continue
        valid.append((cell["name"], checked.e164, _tags(cell["tags"])))
        groups.append(cell["group"])
    with store.immediate():  # the rows, their groups and the audit record land together or not at all
        before = store.contacts.names_of(e164 for _, e164, _ in valid)
        for name, e164, _ in valid:
            if e164 in before and before[e164] != name:
                result.renamed += 1
                if len(result.renames) < REASONS_LISTED:
                    result.renames.append((before[e164], name))
        ids, result.added = store.contacts.upsert_many(valid, actor=actor, now=now)
        result.updated = len(valid) - result.added
        members: dict[str, list[int]] = {}
        for group, contact_id in zip(groups, ids, strict=True):
            if group:
                members.setdefault(group, []).append(contact_id)
        for group, group_ids in members.items():
            store.contacts.add_to_group(group, group_ids, actor=actor, now=now)
            result.groups.add(group)
        store.audit.record(actor, "contacts_imported", now=now, added=result.added, updated=result.updated,
                           skipped=result.skipped, groups=sorted(result.groups), renamed=result.renamed)
    return result


# -- names: what people read must be what is stored -------------------------------------------------------

#: Letters that draw nothing though they are not format characters (Hangul fillers, the braille blank,
#: the combining grapheme joiner): as invisible as U+200B in a name.
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800")
_SPACES = re.compile(r"\s+")


class NameRefused(Exception):
    """A contact, group or template name that would look like another, or hides characters; the words
    say which character or which existing name (nothing is saved)."""

    def __init__(self, zh: str, en: str) -> None:
        self.zh = zh
        self.en = en
        super().__init__(en)


def invisible_characters(name: str) -> list[str]:
    """The characters of `name` that do not show (`U+200B` style, in order, each once): format characters
    (Cf: zero-width space, right-to-left override, BOM, …), controls, surrogates and blank letters."""
    found = [ch for ch in name if unicodedata.category(ch) in ("Cf", "Cc", "Cs") or ch in _BLANK_LETTERS]
    return [f"U+{ord(ch):04X}" for ch in dict.fromkeys(found)]


def name_key(name: str) -> str:
    """What a name looks like: width and compatibility forms folded (NFKC), invisible characters dropped,
    runs of spaces made one, the ends trimmed, case folded. Two names with one key read the same."""
    folded = unicodedata.normalize("NFKC", name)
    visible = "".join(ch for ch in folded if not invisible_characters(ch))
    return _SPACES.sub(" ", visible).strip().casefold()


def name_index(names: Iterable[str]) -> dict[str, dict[str, str]]:
    """{name_key: {the name as SQLite's NOCASE compares it: the name}} for `check_name` (built once, so an
    import of thousands of rows compares each against every name without recomputing their keys)."""
    index: dict[str, dict[str, str]] = {}
    for name in names:
        index.setdefault(name_key(name), {})[name.translate(_ASCII_LOWER)] = name
    return index


def check_name(name: str, index: dict[str, dict[str, str]], *, what: tuple[str, str]) -> None:
    """Refuse a new or changed name (NameRefused) that hides characters, starts or ends with a space, or
    reads the same as an existing name (in `index`, see `name_index`) that is stored differently. The same
    name, or one SQLite's NOCASE treats as the same (ASCII case), is the existing entry itself: that is
    an update, not a look-alike."""
    zh_what, en_what = what
    hidden = invisible_characters(name)
    if hidden:
        listed = "、".join(hidden[:5])
        raise NameRefused(f"{zh_what}名稱含有看不見的字元（{listed}），請重新輸入，不要從別處複製貼上。",
                          f"The {en_what} name contains invisible characters ({', '.join(hidden[:5])}); "
                          "type it again rather than pasting it.")
    if name != name.strip():
        raise NameRefused(f"{zh_what}名稱的開頭或結尾不可有空白。", f"A {en_what} name cannot start or end with a space.")
    same = name.translate(_ASCII_LOWER)
    for nocase, other in index.get(name_key(name), {}).items():
        if nocase != same:
            shown = _visible(other)
            raise NameRefused(
                f"{zh_what}名稱「{_shown(name)}」看起來和現有的「{shown}」相同（只差看不見的字元、空白或大小寫），"
                "請改用明顯不同的名稱，或直接使用現有的。",
                f'The {en_what} name "{_shown(name)}" reads the same as the existing "{shown}" (they differ only by '
                "invisible characters, spaces or case); choose a clearly different name, or use the existing one.")


def _visible(name: str) -> str:
    """A stored name with its invisible characters written out (`王‹U+200B›小明`), so people can tell it apart."""
    return _shown("".join(f"‹U+{ord(ch):04X}›" if invisible_characters(ch) else ch for ch in name))


_CONTACT, _GROUP, _TEMPLATE = ("聯絡人", "contact"), ("群組", "group"), ("範本", "template")


def _address_book_names(store: Store) -> list[str]:
    """Every contact and group name: a contact and a group that read the same are as confusing as two
    contacts (a recipients field takes either)."""
    return [c.name for c in store.contacts.list(limit=-1)] + [g for g, _ in store.contacts.groups()]


# -- changes an admin makes (each one transaction: the change and its audit record) ------------------


def save_contact(store: Store, *, actor: str, name: str, e164: str, tags: str, now: float) -> bool:
    """Add a contact or rename/retag the one with this number; True if it already existed. Raises
    NameRefused for a name that hides characters or reads the same as another (nothing is saved)."""
    with store.immediate():
        check_name(name, name_index(_address_book_names(store)), what=_CONTACT)
        existed = store.contacts.by_number(e164) is not None
        store.contacts.upsert(name, e164, tags=tags, actor=actor, now=now)
        store.audit.record(actor, "contact_saved", now=now, name=name, number=e164, tags=tags)
    return existed


def remove_contact(store: Store, *, actor: str, key: str, now: float) -> int:
    """Remove the contacts with this name or number; how many went."""
    with store.immediate():
        removed = store.contacts.remove(key)
        if removed:
            store.audit.record(actor, "contact_removed", now=now, key=key, count=removed)
    return removed


def add_group_members(store: Store, *, actor: str, group: str, contact_ids: list[int], now: float) -> int:
    """Add contacts to a group (created if new); the group's size afterwards. Raises NameRefused for a
    new group name that hides characters or reads the same as another name."""
    with store.immediate():
        if store.contacts.group_members(group) is None:
            check_name(group, name_index(_address_book_names(store)), what=_GROUP)
        store.contacts.add_to_group(group, contact_ids, actor=actor, now=now)
        store.audit.record(actor, "group_members_added", now=now, group=group, contact_ids=contact_ids)
        return len(store.contacts.group_members(group) or [])


def remove_group(store: Store, *, actor: str, group: str, now: float) -> bool:
    """Delete a group (its contacts stay); False if there was none."""
    with store.immediate():
        removed = store.contacts.remove_group(group)
        if removed:
            store.audit.record(actor, "group_removed", now=now, group=group)
    return removed


def save_template(store: Store, *, actor: str, name: str, body: str, now: float) -> bool:
    """Create or replace a template; True if it was new. Raises NameRefused for a name that hides
    characters or reads the same as another template's."""
    with store.immediate():
        check_name(name, name_index(t.name for t in store.templates.list(-1)), what=_TEMPLATE)
        new = store.templates.save(name, body, actor=actor, now=now)
        store.audit.record(actor, "template_saved", now=now, name=name, body=body)
    return new


def remove_template(store: Store, *, actor: str, name: str, now: float) -> bool:
    with store.immediate():
        removed = store.templates.remove(name)
        if removed:
            store.audit.record(actor, "template_removed", now=now, name=name)
    return removed


# -- the service the Slack surface calls ------------------------------------------------------------------


@dataclass(frozen=True)
class AddressBook:
    """What `/sms contacts` lists: how many contacts in all, the first few, and every group with its size."""

    total: int
    contacts: list[Contact]
    groups: list[tuple[str, int]]


@dataclass(frozen=True)
class GroupChange:
    """What adding members to a group did: nothing when any entry matched no contact (`missing` names
    them, so the group is never half-changed), else how many were added and the group's size afterwards."""

    added: int = 0
    size: int = 0
    missing: list[str] = field(default_factory=list)


class AudienceService:
    """The address book and the templates as the Slack surface reads and changes them: lists, lookups and
    the audited changes (each change and its audit record in one transaction, see the functions above).
    The store and the clock stay inside, so handlers hold neither."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def address_book(self, limit: int) -> AddressBook:
        """The count, the first `limit` contacts (by name) and every group with its member count."""
        return AddressBook(total=self.store.contacts.count(), contacts=self.store.contacts.list(limit=limit),
                           groups=self.store.contacts.groups())

    def contacts_matching(self, entry: str) -> list[Contact]:
        """The contacts an entry names: by number when it has digits (none if it is not a mobile number),
        else by exact name (any case; two contacts may share one)."""
        if any(ch.isdigit() for ch in entry):
            parsed = parse_phone(entry)
            contact = self.store.contacts.by_number(parsed.e164) if isinstance(parsed, Recipient) else None
            return [contact] if contact else []
        return self.store.contacts.by_name(entry)

    def save_contact(self, *, actor: str, name: str, e164: str, tags: str) -> bool:
        """`save_contact`, now: True if the number was already a contact. Raises NameRefused."""
        return save_contact(self.store, actor=actor, name=name, e164=e164, tags=tags, now=self.clock())

    def remove_contact(self, *, actor: str, key: str) -> int:
        """`remove_contact`, now: how many contacts with this name or number went."""
        return remove_contact(self.store, actor=actor, key=key, now=self.clock())

    def add_to_group(self, *, actor: str, group: str, entries: list[str]) -> GroupChange:
        """Add the contacts the entries name (each a name or a number already in the address book) to a
        group, creating it. Any entry that names nobody: nothing changes and `missing` lists them. Raises
        NameRefused for a new group name that hides characters or reads the same as another name."""
        ids: list[int] = []
        missing: list[str] = []
        for entry in entries:
            found = self.contacts_matching(entry)
            ids.extend(c.id for c in found)
            if not found:
                missing.append(entry)
        if missing:
            return GroupChange(missing=missing)
        size = add_group_members(self.store, actor=actor, group=group, contact_ids=ids, now=self.clock())
        return GroupChange(added=len(ids), size=size)

    def remove_group(self, *, actor: str, group: str) -> bool:
        """`remove_group`, now: False if there was no such group."""
        return remove_group(self.store, actor=actor, group=group, now=self.clock())

    def import_csv(self, content: bytes, *, actor: str) -> ImportResult:
        """`import_contacts`, now. Raises CsvImportError for a file that cannot be read as a whole."""
        return import_contacts(content, self.store, actor=actor, now=self.clock())

    def templates(self, limit: int) -> list[Template]:
        """The first `limit` templates by name."""
        return self.store.templates.list(limit)

    def template_names(self, limit: int) -> list[str]:
        """The names a template chooser offers (the compose modal's select, the `@template` hint)."""
        return [t.name for t in self.store.templates.list(limit)]

    def template(self, name: str) -> Template | None:
        """The template with this name, or None (`/sms send <numbers> @<name>`)."""
        return self.store.templates.get(name)

    def save_template(self, *, actor: str, name: str, body: str) -> bool:
        """`save_template`, now: True if it was new. Raises NameRefused. Who may replace whose template is
        the caller's check (services/permissions.py `may`, Action.EDIT_TEMPLATE)."""
        return save_template(self.store, actor=actor, name=name, body=body, now=self.clock())

    def remove_template(self, *, actor: str, name: str) -> bool:
        """`remove_template`, now: False if there was none."""
        return remove_template(self.store, actor=actor, name=name, now=self.clock())


def _columns(header: list[str]) -> dict[str, int | None]:
    names = [unicodedata.normalize("NFKC", h).strip().lower() for h in header]
    columns: dict[str, int | None] = {}
    for key, accepted in _HEADERS.items():
        columns[key] = next((i for i, h in enumerate(names) if h in accepted), None)
    if columns["name"] is None or columns["phone"] is None:
        raise CsvImportError("第一列需是標題列，至少含「姓名」和「電話」（或 name、phone）兩欄。",
                           "The first row must be a header with at least name and phone columns (or 姓名, 電話).")
    return columns


def _row_name_problem(cell: dict[str, str], names: dict[str, dict[str, str]]) -> tuple[str, str] | None:
    """Why a row's contact or group name is refused (see `check_name`), or None. The names a row adds
    join `names`, so a later row cannot bring a look-alike of an earlier one."""
    for name, what in ((cell["name"], _CONTACT), (cell["group"], _GROUP)):
        if not name:
            continue
        try:
            check_name(name, names, what=what)
        except NameRefused as refused:
            return refused.zh, refused.en
    for name in (cell["name"], cell["group"]):
        if name:
            names.setdefault(name_key(name), {})[name.translate(_ASCII_LOWER)] = name
    return None


def _row_problem(cell: dict[str, str]) -> Recipient | tuple[str, str]:
    """The row's number, or why the row is skipped."""
    if not cell["name"]:
        return "沒有姓名", "no name"
    if not cell["phone"]:
        return f"「{_shown(cell['name'])}」沒有電話", f'"{_shown(cell["name"])}" has no phone'
    parsed = parse_phone(cell["phone"])
    if isinstance(parsed, Recipient):
        return parsed
    return parsed.zh, parsed.en


def _tags(text: str) -> str:
    """Tags as stored: comma-separated, trimmed, in the order given (any of , ， 、 ; separate)."""
    return ",".join(t.strip() for t in _SEPARATORS.split(text) if t.strip())


# -- templates ----------------------------------------------------------------------------------------------


def unknown_variables(body: str) -> list[str]:
    """The `{variables}` in a template that nothing fills, in order of appearance."""
    return list(dict.fromkeys(v for v in VARIABLE_PATTERN.findall(body) if v not in VARIABLES))


def fill_template(body: str, *, now: float, tz: ZoneInfo, name: str | None = None) -> str:
    """`{date}` and `{time}` become today's date and the time in the bot's zone; `{name}` the recipient's
    contact name when given, else it is kept for the compose check to explain."""
    moment = datetime.fromtimestamp(now, tz=tz)
    values = {"date": f"{moment:%Y-%m-%d}", "time": f"{moment:%H:%M}"}
    if name is not None:
        values["name"] = name
    return VARIABLE_PATTERN.sub(lambda m: values.get(m.group(1), m.group(0)), body)
