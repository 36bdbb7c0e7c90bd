"""`every8d-bot backup PATH` and `every8d-bot restore PATH`.

backup: a consistent copy of BOT_DB_PATH while the bot runs (SQLite's online backup, storage/snapshot.py),
written beside PATH first and renamed into place, so a half-written file never sits under PATH (a nightly
job that dies leaves the previous backup intact).

restore: only with the bot stopped (refused while any process has the database open); only a sound
database of this app (integrity check, its migrations table, nothing newer than this version); the
current file (and its `-wal`/`-shm`) is kept aside as `<name>.before-restore-<UTC time>`, never deleted.
The restored file is then opened once as the bot does, which applies any migration it lacks.

Messages are for a person at a terminal: what happened, or what to do; never a stack trace.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from storage import Store
from storage.snapshot import copy_database, in_use, inspect_database

SIDE_FILES = ("-wal", "-shm")


class BackupError(Exception):
    """A backup or restore was refused or failed; the message says why and what to do (both languages)."""


@dataclass(frozen=True)
class Outcome:
    path: Path
    requests: int
    migrations: list[str]
    kept_aside: Path | None = None


def backup(db_path: str | Path, target: str | Path) -> Outcome:
    """Copy the live database to `target` (a file path; an existing file is replaced only once the new
    copy is complete and checked)."""
    folder = str(target).endswith(("/", os.sep))  # "backups/": a folder, made if missing
    source, target = Path(db_path), Path(target)
    if not source.is_file():
        raise BackupError(f"找不到資料庫 / no database at {source}: check BOT_DB_PATH.")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError("備份路徑不能是資料庫本身 / the backup path must not be the database itself.")
    if folder:
        target.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        target = target / f"{source.stem}-{_stamp()}.db"
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        copy_database(source, partial)
        check = inspect_database(partial)
        if check.problem:
            raise BackupError(f"備份檔檢查失敗 / the copy failed its check: {check.problem}")
        _fsync(partial)
        os.replace(partial, target)
    except OSError as exc:
        raise BackupError(f"無法寫入備份 / cannot write the backup to {target}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return Outcome(target, check.requests, check.migrations)


def restore(backup_path: str | Path, db_path: str | Path) -> Outcome:
    """Put a backup in place of the (stopped) bot's database, keeping the current one aside."""
    source, target = Path(backup_path), Path(db_path)
    if not source.is_file():
        raise BackupError(f"找不到備份檔 / no backup file at {source}.")
    if target.exists() and source.resolve() == target.resolve():
        raise BackupError("備份檔就是目前的資料庫 / the backup is the database itself.")
    check = inspect_database(source)
    if check.problem:
        raise BackupError(f"這不是可還原的備份 / not a backup that can be restored: {check.problem}. "
                          "Nothing was changed.")
    if in_use(target):
        raise BackupError("機器人仍在使用資料庫，請先停止 / the database is in use: stop the bot first "
                          "(e.g. `docker compose stop bot`), then restore. Nothing was changed.")
    incoming = target.with_name(target.name + ".restoring")
    incoming.unlink(missing_ok=True)
    kept = None
    try:
        copy_database(source, incoming)
        _fsync(incoming)
        if target.exists():
            kept = _free_name(target.with_name(f"{target.name}.before-restore-{_stamp()}"))
            for suffix in ("", *SIDE_FILES):
                current = Path(f"{target}{suffix}")
                if current.exists():
                    os.replace(current, f"{kept}{suffix}")
        os.replace(incoming, target)
    except OSError as exc:
        raise BackupError(f"無法還原 / cannot restore into {target}: {exc.strerror or exc}") from None
    finally:
        incoming.unlink(missing_ok=True)
    store = Store(target)  # as the bot opens it: WAL back on, migrations this backup lacks applied
    try:
        migrations = store.schema_version()
    finally:
        store.close()
    return Outcome(target, check.requests, migrations, kept)


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _free_name(path: Path) -> Path:
    """`path`, or `path-2`, `path-3`, ... when taken: a second restore in the same second keeps both."""
    candidate, n = path, 1
    while any(Path(f"{candidate}{suffix}").exists() for suffix in ("", *SIDE_FILES)):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _fsync(path: Path) -> None:
    """The copy is on disk before it is renamed into place (a crash never leaves an empty file there)."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
