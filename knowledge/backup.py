"""Backups of the store with SQLite's online backup API, and restoring one in place of a damaged file.

The database holds what cannot be re-ingested (quiz history, feedback, server settings), so a damaged file
is never "moved aside and re-ingested" without a way back: ``tutor kb backup`` copies it while it is in use,
a copy is made automatically before migrations change the schema, and ``tutor kb restore`` puts a checked
copy back, keeping the damaged file beside it.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from knowledge.errors import StoreError

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


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """Write a consistent copy of ``source`` to ``target`` atomically (a temp file renamed into place)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        dest = sqlite3.connect(tmp)
        try:
            source.backup(dest)
        finally:
            dest.close()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def backup(
    conn: sqlite3.Connection, db_path: Path, target: Path | None = None, reason: str = "manual"
) -> Path:
    """Copy the open database to ``target`` (default: the backups folder beside it) and return the path."""
    if target is None:
        folder = backups_dir(db_path)
        folder.mkdir(parents=True, exist_ok=True)
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
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
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


def restore(db_path: Path, backup_path: Path) -> Path | None:
    """Put a checked copy of ``backup_path`` in place of ``db_path``; return where the old file was kept.

    Run it while nothing else has the database open (stop the bot first).
    """
    check(backup_path)
    kept = None
    if db_path.exists():
        kept = db_path.with_name(f"{db_path.name}.replaced-{_stamp()}")
        os.replace(db_path, kept)
        for suffix in ("-wal", "-shm"):  # they belong to the replaced file, never to the restored one
            side = db_path.with_name(db_path.name + suffix)
            if side.exists():
                os.replace(side, kept.with_name(kept.name + suffix))
    source = sqlite3.connect(f"{backup_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        _copy(source, db_path)
    finally:
        source.close()
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
