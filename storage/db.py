"""The SQLite store: one file, WAL, a busy timeout, one connection per thread, and migrations on open.

Bolt's listener threads, the scheduler's, the callback server's and the Slack poster all touch the
database; sqlite3 connections refuse use from another thread, so each thread gets its own. Anything
that *decides* (claiming a request to send, recording a decision) runs in `immediate()`: a
`BEGIN IMMEDIATE` transaction takes the write lock up front, so two deciders never both read
"pending" and both win.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage.schema import MIGRATIONS

#: How long a writer waits for another one before "database is locked" (seconds).
BUSY_TIMEOUT_SECONDS = 30.0


class StorageError(Exception):
    """The database cannot be opened or written (path not writable, disk full, locked too long)."""


class Store:
    """Entry point to every query: `store.requests`, `store.batches`, `store.outbox`, ... (see storage/).

    Opening a Store applies pending migrations, so an upgrade needs no manual step.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Writers of this process queue here instead of in SQLite's busy handler, which sleeps in
        # growing steps (up to 100 ms) and turned a burst of callbacks into seconds of tail latency.
        # Other processes (doctor, a second tool) still meet the busy timeout.
        self._write_lock = threading.RLock()
        try:
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(
                f"資料庫無法開啟或寫入：{self.path} / cannot open or write the database {self.path}: {exc}"
            ) from exc
        from storage.audit import AuditLog
        from storage.autoreplies import AutoReplies
        from storage.batches import Batches
        from storage.budgets import Budgets
        from storage.contacts import Contacts
        from storage.credit import CreditLog
        from storage.drafts import Drafts
        from storage.optouts import OptOuts
        from storage.outbox import Outbox
        from storage.parts import Parts
        from storage.replies import Replies
        from storage.requests import Requests
        from storage.series import SeriesStore
        from storage.settings import Settings
        from storage.templates import Templates
        from storage.workflow_steps import WorkflowSteps

        self.requests = Requests(self)
        self.batches = Batches(self)
        self.parts = Parts(self)
        self.replies = Replies(self)
        self.outbox = Outbox(self)
        self.credit = CreditLog(self)
        self.settings = Settings(self)
        self.audit = AuditLog(self)
        self.drafts = Drafts(self)
        self.optouts = OptOuts(self)
        self.contacts = Contacts(self)
        self.templates = Templates(self)
        self.workflow_steps = WorkflowSteps(self)
        self.autoreplies = AutoReplies(self)
        self.budgets = Budgets(self)
        self.series = SeriesStore(self)

    # -- connections -------------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        """This thread's connection (created on first use)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            self._local.db = db
        return db

    def _connect(self) -> Database:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._all.append(conn)
        return Database(conn, execute_plugins=False)

    def rows(self, sql: str, params: list | tuple | dict = ()) -> list[dict]:
        """A read as a list of dicts, straight from sqlite3. sqlite-utils' `query()` guards each statement
        with a savepoint (three statements per read); the hot paths (a callback does a handful of reads)
        use this instead. Only for SELECTs."""
        cursor = self.db.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def close(self) -> None:
        """Close every connection this store opened (tests and shutdown)."""
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    def _migrate(self) -> None:
        db = self.db
        if db.journal_mode != "wal" and self.path != ":memory:":
            db.enable_wal()
        MIGRATIONS.apply(db)

    def schema_version(self) -> list[str]:
        """Names of the applied migrations, oldest first (for `doctor`)."""
        return [m.name for m in MIGRATIONS.applied(self.db)]

    def pending_migrations(self) -> list[str]:
        return [m.name for m in MIGRATIONS.pending(self.db)]

    # -- transactions ------------------------------------------------------------------------------

    def move_state(
        self, table: str, key: Mapping[str, Any], from_states: Iterable[str], to_state: str, fields: dict[str, Any]
    ) -> bool:
        """Set `state` to `to_state` (and `fields`, and `updated_at` to `fields["now"]` or now) on the row of
        `table` matching `key` only if its state is one of `from_states`: one conditional UPDATE, whose row
        count says whether this caller won. Every state machine of the store moves this way."""
        froms = list(from_states)
        now = fields.pop("now", None) or time.time()
        values = {**fields, "state": to_state, "updated_at": now}
        assignments = ", ".join(f"{name} = ?" for name in values)
        where = " AND ".join(f"{name} = ?" for name in key)
        with self.immediate() as db:
            cursor = db.execute(
                f"UPDATE {table} SET {assignments} WHERE {where} AND state IN ({', '.join('?' for _ in froms)})",
                [*values.values(), *key.values(), *froms],
            )
            return cursor.rowcount == 1

    @contextlib.contextmanager
    def write_turn_if_free(self, wait: float = 0.0) -> Iterator[bool]:
        """For a thread that must not queue behind other writers (the HTTP server's loop, which answers
        pushes itself: bot/push_lane.py): yields True once it holds both this process's write lock (if
        that came free within `wait` seconds) and SQLite's (if no other process holds it: no busy wait),
        else False at once, holding nothing, so the caller hands the work to a thread that may wait.

        With True, the transaction is begun (`BEGIN IMMEDIATE`) but belongs to the next `immediate()` of
        this thread, which commits or rolls it back as if it had begun it; if none comes (the request was
        refused before any write), it is rolled back here."""
        lock = self._write_lock
        if not (lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)):
            yield False
            return
        try:
            conn = self.db.conn
            conn.execute("PRAGMA busy_timeout=0")
            try:
                conn.execute("BEGIN IMMEDIATE")
                begun = True
            except sqlite3.OperationalError:  # another process writes: let a thread that may wait do it
                begun = False
            finally:
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            if not begun:
                yield False
                return
            self._local.begun_for_next = True
            try:
                yield True
            finally:
                self._local.begun_for_next = False
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        finally:
            lock.release()

    @contextlib.contextmanager
    def immediate(self) -> Iterator[Database]:
        """A `BEGIN IMMEDIATE` transaction: take the write lock first, then read and decide."""
        db = self.db
        if db.conn.in_transaction:
            if getattr(self._local, "begun_for_next", False):
                # `write_turn_if_free` began it for this one: commit or roll back as the owner.
                self._local.begun_for_next = False
                yield from self._own(db)
                return
            # Nested use joins the outer transaction, which already holds the lock.
            yield db
            return
        with self._write_lock:
            db.conn.execute("BEGIN IMMEDIATE")
            yield from self._own(db)

    @staticmethod
    def _own(db: Database) -> Iterator[Database]:
        """The body of a transaction this caller owns: commit at the end, roll back on any exception."""
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        else:
            db.conn.execute("COMMIT")
