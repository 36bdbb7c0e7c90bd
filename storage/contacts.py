"""The address book: contacts (name, number, tags) and named groups of contacts."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from storage.models import Contact, row_to

if TYPE_CHECKING:
    from storage.db import Store


class Contacts:
    def __init__(self, store: Store) -> None:
        self._store = store

    def upsert(self, name: str, e164: str, *, tags: str = "", actor: str = "", now: float | None = None) -> int:
        """Add a contact, or rename/retag the one with this number. Returns its id."""
        with self._store.immediate() as db:
            db.execute(
                "INSERT INTO contacts (name, e164, tags, created_by, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(e164) DO UPDATE SET name = excluded.name, tags = excluded.tags",
                [name, e164, tags, actor, now or time.time()],
            )
            return int(next(iter(db.query("SELECT id FROM contacts WHERE e164 = ?", [e164])))["id"])

    def upsert_many(
        self, rows: Iterable[tuple[str, str, str]], *, actor: str = "", now: float | None = None
    ) -> tuple[list[int], int]:
        """Upsert (name, e164, tags) rows in one transaction (a CSV import of 10,000 rows must answer
        within Slack's 3 seconds). Returns each row's contact id and how many of the numbers were new."""
        rows = list(rows)
        now = now or time.time()
        with self._store.immediate() as db:
            before = int(next(iter(db.query("SELECT COUNT(*) AS n FROM contacts")))["n"])
            db.conn.executemany(
                "INSERT INTO contacts (name, e164, tags, created_by, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(e164) DO UPDATE SET name = excluded.name, tags = excluded.tags",
                [(name, e164, tags, actor, now) for name, e164, tags in rows],
            )
            after = int(next(iter(db.query("SELECT COUNT(*) AS n FROM contacts")))["n"])
            ids = {r[0]: r[1] for r in db.conn.execute("SELECT e164, id FROM contacts")}
        return [ids[e164] for _, e164, _ in rows], after - before

    def names_of(self, numbers: Iterable[str]) -> dict[str, str]:
        """{e164: its contact's name} for the numbers already in the address book."""
        wanted = list(dict.fromkeys(numbers))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found.update(self._store.db.conn.execute(
                f"SELECT e164, name FROM contacts WHERE e164 IN ({', '.join('?' for _ in chunk)})", chunk).fetchall())
        return found

    def by_number(self, e164: str) -> Contact | None:
        rows = list(self._store.db.query("SELECT id, name, e164, tags FROM contacts WHERE e164 = ?", [e164]))
        return row_to(Contact, rows[0]) if rows else None  # type: ignore[return-value]

    def remove(self, name_or_e164: str) -> int:
        """Remove contacts with this exact name (any case) or number; returns how many."""
        with self._store.immediate() as db:
            return db.execute(
                "DELETE FROM contacts WHERE e164 = ? OR name = ? COLLATE NOCASE", [name_or_e164, name_or_e164]
            ).rowcount

    def by_name(self, name: str) -> list[Contact]:
        return [row_to(Contact, r) for r in self._store.db.query(  # type: ignore[misc]
            "SELECT id, name, e164, tags FROM contacts WHERE name = ? COLLATE NOCASE ORDER BY id", [name])]

    def names_for(self, numbers: Iterable[str]) -> dict[str, str]:
        """{e164: name} for the numbers that are in the address book."""
        numbers = list(dict.fromkeys(numbers))
        names: dict[str, str] = {}
        for start in range(0, len(numbers), 500):
            chunk = numbers[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for r in self._store.db.query(f"SELECT e164, name FROM contacts WHERE e164 IN ({marks})", chunk):
                names[r["e164"]] = r["name"]
        return names

    def list(self, *, tag: str | None = None, limit: int = 500) -> list[Contact]:
        sql = "SELECT id, name, e164, tags FROM contacts"
        params: list[object] = []
        if tag:
            sql += " WHERE ',' || tags || ',' LIKE ?"
            params.append(f"%,{tag},%")
        sql += " ORDER BY name COLLATE NOCASE LIMIT ?"
        params.append(limit)
        return [row_to(Contact, r) for r in self._store.db.query(sql, params)]  # type: ignore[misc]

    def count(self) -> int:
        return int(next(iter(self._store.db.query("SELECT COUNT(*) AS n FROM contacts")))["n"])

    # -- groups ------------------------------------------------------------------------------------

    def add_to_group(self, group: str, contact_ids: Iterable[int], *, actor: str = "", now: float | None = None) -> None:
        with self._store.immediate() as db:
            db.execute("INSERT OR IGNORE INTO contact_groups (name, created_by, created_at) VALUES (?, ?, ?)",
                       [group, actor, now or time.time()])
            canonical = next(iter(db.query("SELECT name FROM contact_groups WHERE name = ?", [group])))["name"]
            db.conn.executemany(
                "INSERT OR IGNORE INTO contact_group_members (group_name, contact_id) VALUES (?, ?)",
                [(canonical, cid) for cid in contact_ids],
            )

    def remove_group(self, group: str) -> bool:
        with self._store.immediate() as db:
            db.execute("DELETE FROM contact_group_members WHERE group_name = ? COLLATE NOCASE", [group])
            return db.execute("DELETE FROM contact_groups WHERE name = ?", [group]).rowcount == 1

    def group_members(self, group: str) -> list[Contact] | None:
        """The group's contacts, or None if there is no such group."""
        if not list(self._store.db.query("SELECT 1 FROM contact_groups WHERE name = ?", [group])):
            return None
        return [row_to(Contact, r) for r in self._store.db.query(  # type: ignore[misc]
            "SELECT c.id, c.name, c.e164, c.tags FROM contacts c JOIN contact_group_members m ON m.contact_id = c.id "
            "WHERE m.group_name = ? COLLATE NOCASE ORDER BY c.name COLLATE NOCASE", [group])]

    def groups(self) -> list[tuple[str, int]]:
        """(group name, member count), by name."""
        return [(r["name"], r["n"]) for r in self._store.db.query(
            "SELECT g.name, COUNT(m.contact_id) AS n FROM contact_groups g "
            "LEFT JOIN contact_group_members m ON m.group_name = g.name GROUP BY g.name ORDER BY g.name")]
