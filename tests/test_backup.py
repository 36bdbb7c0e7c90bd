"""`every8d-bot backup` and `restore` (issue 16): a consistent copy while the bot writes, and a restore
that refuses a running bot or a file that is not this app's database, and keeps the old file aside."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bot.cli import main
from storage import Store
from tests.faults_support import approve_first_card
from tests.harness import Product


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The CLI as a deployment runs it: BOT_DB_PATH from the environment, no `.env` in the folder."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "bot.db"
    monkeypatch.setenv("BOT_DB_PATH", str(db))
    return db


def count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_backups_taken_under_constant_writes_are_each_a_consistent_snapshot(env: Path, tmp_path: Path,
                                                                             capsys) -> None:
    """A writer commits an audit row and a credit row in one transaction, as fast as it can; in every
    backup the two counts are equal (a copy of the files mid-write could split a transaction)."""
    store = Store(env)
    stop = threading.Event()
    written = [0]

    def write() -> None:
        while not stop.is_set():
            with store.immediate():
                store.audit.record("test", "tick", request_id=None)
                store.credit.record(100.0, source="test")
            written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copies = []
        for n in range(5):
            time.sleep(0.05)
            target = tmp_path / f"copy{n}.db"
            assert main(["backup", str(target)]) == 0
            copies.append(target)
    finally:
        stop.set()
        writer.join()
        store.close()
    seen = [count(c, "audit") for c in copies]
    assert all(count(c, "audit") == count(c, "credit_history") for c in copies), seen
    assert seen == sorted(seen) and seen[-1] > 0 and written[0] >= seen[-1]
    for copy in copies:
        assert sqlite3.connect(copy).execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert not Path(f"{copy}-wal").exists()  # one self-contained file
    assert "backed up" in capsys.readouterr().out


def test_a_backup_of_the_running_product_holds_its_requests(product: Product, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    approve_first_card(product)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_DB_PATH", product.runtime.config.db_path)
    folder = tmp_path / "backups"
    assert main(["backup", f"{folder}/"]) == 0  # a trailing slash: a folder, made if missing
    [copy] = folder.glob("*.db")
    copied = Store(copy)
    try:
        assert copied.requests.get(1).batch_id == product.store.requests.get(1).batch_id
    finally:
        copied.close()


def test_backup_refuses_to_write_over_the_database_itself(env: Path, capsys) -> None:
    Store(env).close()
    assert main(["backup", str(env)]) == 1
    assert "must not be the database itself" in capsys.readouterr().err


def test_restore_puts_the_backup_back_and_keeps_the_old_file_aside(env: Path, tmp_path: Path, capsys) -> None:
    store = Store(env)
    store.credit.record(111.0, source="before")
    store.close()
    assert main(["backup", str(tmp_path / "good.db")]) == 0
    store = Store(env)
    store.credit.record(222.0, source="after the backup")
    store.close()

    assert main(["restore", str(tmp_path / "good.db")]) == 0
    out = capsys.readouterr().out
    assert "restored" in out and "kept as" in out
    store = Store(env)
    try:
        assert store.credit.latest()[0] == 111.0
    finally:
        store.close()
    [aside] = tmp_path.glob("bot.db.before-restore-*")
    assert aside.name.endswith("Z")
    assert count(aside, "credit_history") == 2  # the old file, whole


def test_restore_refuses_while_the_bot_has_the_database_open(env: Path, tmp_path: Path, capsys) -> None:
    running = Store(env)  # what a running bot holds (its connections stay open)
    running.credit.record(1.0, source="live")
    try:
        assert main(["backup", str(tmp_path / "good.db")]) == 0
        assert main(["restore", str(tmp_path / "good.db")]) == 1
        assert "stop the bot first" in capsys.readouterr().err
        assert not list(tmp_path.glob("bot.db.before-restore-*"))
        assert running.credit.latest()[0] == 1.0
    finally:
        running.close()


@pytest.mark.parametrize("kind", ["not sqlite", "another app", "newer version", "damaged"])
def test_restore_refuses_a_file_that_is_not_a_sound_database_of_this_app(env: Path, tmp_path: Path, capsys,
                                                                          kind: str) -> None:
    Store(env).close()
    before = env.read_bytes()
    bad = tmp_path / "bad.db"
    if kind == "not sqlite":
        bad.write_text("hello, this is a text file\n" * 100)
    elif kind == "another app":
        conn = sqlite3.connect(bad)
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
        conn.commit()
        conn.close()
    elif kind == "newer version":
        assert main(["backup", str(bad)]) == 0
        conn = sqlite3.connect(bad)
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                     "VALUES ('every8d-slack-bot', '9999_from_the_future', '2030-01-01')")
        conn.commit()
        conn.close()
    else:
        assert main(["backup", str(bad)]) == 0
        data = bytearray(bad.read_bytes())
        data[4096: 4096 + 64] = b"\xff" * 64  # scribble over the second page's header
        bad.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["restore", str(bad)]) == 1
    error = capsys.readouterr().err
    assert "Nothing was changed" in error and "Traceback" not in error
    assert env.read_bytes() == before
    assert not list(tmp_path.glob("bot.db.before-restore-*"))
