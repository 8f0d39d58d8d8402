"""Backups of the store with SQLite's online backup API, and restoring one in place of a damaged file.

The database holds what cannot be re-ingested (quiz history, feedback, server settings), so a damaged file
is never "moved aside and re-ingested" without a way back: ``tutor kb backup`` copies it while it is in use,
a copy is made automatically before migrations change the schema, and ``tutor kb restore`` puts a checked
copy back, keeping the damaged file beside it.

Two rules keep a 0-byte or swapped file from passing for a database: a new database appears whole (created
under a temp name, linked into place) so an empty file always means damage; and every open store holds a
shared lock on ``<db>.lock`` that a restore must take exclusively, so nothing is restored under a running bot.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from knowledge.errors import StoreError
from knowledge.files import connect_read_only

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, restore trusts the user to stop the bot
    fcntl = None  # type: ignore[assignment]

BACKUPS_DIR = "backups"
KEEP_AUTOMATIC = 5  # automatic copies kept per database; manual ones are never pruned
AUTOMATIC = "auto"


def backups_dir(db_path: Path) -> Path:
    return db_path.parent / BACKUPS_DIR


def list_backups(db_path: Path) -> list[Path]:
    """This database's backups, newest first."""
    folder = backups_dir(db_path)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(f"{db_path.stem}-*.db") if p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _temp_beside(path: Path, kind: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{kind}")


def _copy_to_temp(source: sqlite3.Connection, target: Path) -> Path:
    """A consistent copy of ``source`` in a temp file beside ``target`` (same filesystem: renames are atomic)."""
    tmp = _temp_beside(target)
    tmp.unlink(missing_ok=True)
    try:
        dest = sqlite3.connect(tmp)
        try:
            source.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file; a store sets WAL again
        finally:
            dest.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for suffix in ("-wal", "-shm", "-journal"):
            tmp.with_name(tmp.name + suffix).unlink(missing_ok=True)
    return tmp


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """Write a consistent copy of ``source`` to ``target`` atomically."""
    tmp = _copy_to_temp(source, target)
    try:
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def create_if_absent(db_path: Path) -> None:
    """Create an empty database (header written, WAL mode) unless one exists, without a 0-byte moment."""
    if db_path.exists():
        return
    tmp = _temp_beside(db_path, "new")
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        try:
            os.link(tmp, db_path)  # fails if another process created it meanwhile: theirs is kept
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links
            if not db_path.exists():
                os.replace(tmp, db_path)
    finally:
        tmp.unlink(missing_ok=True)


class InUse:
    """The lock every open store holds (shared) and a restore needs (exclusive) on ``<db>.lock``."""

    def __init__(self, db_path: Path, exclusive: bool = False, shared_optional: bool = False) -> None:
        """``shared_optional``: a reader in a folder it cannot write takes the lock if the file is there."""
        self._fh = None
        if fcntl is None:
            return
        lock_path = db_path.with_name(db_path.name + ".lock")
        try:
            fh = open(lock_path, "rb" if shared_optional else "a+b")  # noqa: SIM115 - held until release()
        except OSError:
            if shared_optional:
                return
            raise
        try:
            fcntl.flock(fh, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            if exclusive:
                raise StoreError(
                    f"{db_path} is in use (the bot or another tutor command has it open); stop it, then restore"
                ) from None
            raise StoreError(f"{db_path} is being restored from a backup; try again in a moment") from None
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


def make_folder(folder: Path, what: str, fix: str) -> None:
    """``mkdir -p`` whose failure is a ``StoreError`` naming the folder and the way out, not a traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {what} {folder} ({exc.strerror or exc}); {fix}") from None


def backup(
    conn: sqlite3.Connection, db_path: Path, target: Path | None = None, reason: str = "manual"
) -> Path:
    """Copy the open database to ``target`` (default: the backups folder beside it) and return the path."""
    if target is None:
        folder = backups_dir(db_path)
        make_folder(
            folder, "the backups folder", "give the backup a path you can write: `tutor kb backup OUT.db`"
        )
        target = folder / f"{db_path.stem}-{_stamp()}-{reason}.db"
    elif target.is_dir():
        raise StoreError(f"{target} is a folder; give the backup a file name")
    try:
        _copy(conn, target)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"could not write the backup {target} ({exc})") from exc
    if reason == AUTOMATIC:
        automatic = [p for p in list_backups(db_path) if p.stem.endswith(f"-{AUTOMATIC}")]
        for old in automatic[KEEP_AUTOMATIC:]:
            old.unlink(missing_ok=True)
    return target


def check(path: Path) -> None:
    """Raise StoreError unless ``path`` is a readable, undamaged tutor database."""
    if not path.is_file():
        raise StoreError(f"{path}: no such backup file")
    if path.stat().st_size == 0:
        raise StoreError(f"{path}: the file is empty (0 bytes)")
    try:
        conn = connect_read_only(path)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise StoreError(f"{path}: damaged ({result})")
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchone():
                raise StoreError(f"{path}: an SQLite file, but not a tutor database")
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a readable database ({exc})") from exc


def _move_aside(db_path: Path) -> Path:
    """Rename the database (and its WAL files, which belong to it) to ``<name>.replaced-<time>``."""
    kept = db_path.with_name(f"{db_path.name}.replaced-{_stamp()}")
    os.replace(db_path, kept)
    for suffix in ("-wal", "-shm"):
        side = db_path.with_name(db_path.name + suffix)
        if side.exists():
            os.replace(side, kept.with_name(kept.name + suffix))
    return kept


def restore(db_path: Path, backup_path: Path) -> Path | None:
    """Put a checked copy of ``backup_path`` in place of ``db_path``; return where the old file was kept.

    Refused while any store has the database open. The copy is written and checked beside the database
    first; only then is the old file renamed aside and the copy renamed into place, so a failure at any step
    leaves either the old database or the restored one at ``db_path``, never neither.
    """
    check(backup_path)
    lock = InUse(db_path, exclusive=True)
    try:
        try:
            source = connect_read_only(backup_path)
            try:
                copy = _copy_to_temp(source, db_path)
            finally:
                source.close()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"could not copy {backup_path} beside {db_path} ({exc}); nothing was changed"
            ) from exc
        try:
            check(copy)
            kept = _move_aside(db_path) if db_path.exists() else None
            try:
                os.replace(copy, db_path)
            except OSError:
                if kept is not None:  # put the old file back rather than leave no database at all
                    os.replace(kept, db_path)
                raise
        except OSError as exc:
            raise StoreError(f"could not restore {db_path} ({exc}); nothing was changed") from exc
        finally:
            copy.unlink(missing_ok=True)
    finally:
        lock.release()
    return kept


def damaged_message(db_path: Path, detail: str) -> str:
    """What went wrong with the database and how to get it back without losing anything."""
    newest = list_backups(db_path)
    if newest:
        when = datetime.fromtimestamp(newest[0].stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
        how = (
            f"Restore the newest backup ({newest[0]}, {when}) with `tutor kb restore`; "
            "the damaged file is kept beside it."
        )
    else:
        how = (
            f"There is no backup in {backups_dir(db_path)}. Keep this file: it holds the quiz progress, and "
            f"`sqlite3 {db_path} .recover` can save what is still readable. To start over, move it aside "
            "(not delete) and run `tutor kb ingest`."
        )
    return f"{db_path}: the tutor database is damaged ({detail}). {how}"
