"""Database-level pieces of `every8d-bot backup` and `restore` (bot/backup.py does the files and words).

- `copy_database`: SQLite's online backup API. It copies from one read transaction, so the copy is a
  consistent snapshot even while the bot writes (WAL lets the bot go on writing meanwhile), which a
  plain file copy of the database and its `-wal` file is not.
- `inspect_database`: is a file a sound database of this app (integrity check, our migrations table,
  no migration this version does not know)?
- `in_use`: does some process have the database open? A running bot keeps connections open, and an
  open connection to a WAL database holds a shared lock in its `-shm` file; asking for an exclusive lock
  fails at once while any is open.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from storage.schema import MIGRATIONS

MIGRATIONS_TABLE = "_sqlite_migrations"


@dataclass(frozen=True)
class DatabaseCheck:
    """What `inspect_database` found. `problem` is None for a sound database of this app."""

    problem: str | None
    migrations: list[str] = field(default_factory=list)
    requests: int = 0


def known_migrations() -> list[str]:
    """Every migration this version of the app knows, oldest first."""
    return [m.name for m in MIGRATIONS.pending(Database(memory=True))]


def copy_database(source: str | Path, target: str | Path) -> None:
    """Copy `source` into a new file `target` (which must not exist) with the online backup API, as one
    self-contained file (rollback journal, no `-wal` beside it)."""
    src = sqlite3.connect(f"file:{Path(source).resolve()}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()


def inspect_database(path: str | Path) -> DatabaseCheck:
    """Read-only checks of a database file: SQLite's integrity check, this app's migrations table, and
    only migrations this version knows (a backup from a newer version would be half understood)."""
    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return DatabaseCheck(f"cannot open it ({type(exc).__name__})")
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            return DatabaseCheck(f"SQLite's integrity check failed: {'; '.join(map(str, result[:3]))}")
        has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 [MIGRATIONS_TABLE]).fetchone()
        if not has_table:
            return DatabaseCheck("it is an SQLite database, but not one of this bot (no migrations table)")
        names = [row[0] for row in conn.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY rowid", [MIGRATIONS.name])]
        if not names:
            return DatabaseCheck("it is an SQLite database, but not one of this bot (no migration of this app)")
        unknown = [n for n in names if n not in known_migrations()]
        if unknown:
            return DatabaseCheck(f"it was written by a newer version of the bot (migrations {', '.join(unknown)})",
                                 names)
        requests = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        return DatabaseCheck(None, names, int(requests))
    except sqlite3.DatabaseError as exc:
        return DatabaseCheck(f"it is not a readable SQLite database ({exc})")
    finally:
        conn.close()


def in_use(path: str | Path) -> bool:
    """True when another connection has the database open (or holds a lock on it), i.e. the bot runs."""
    if not Path(path).exists():
        return False
    conn = sqlite3.connect(str(path), timeout=0)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    except sqlite3.DatabaseError:  # not a database at all (a damaged file): nobody can be using it
        return False
    finally:
        conn.close()
