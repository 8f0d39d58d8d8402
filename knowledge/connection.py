"""Opening the store's SQLite file: whether it can be written, reading it when it cannot, checking it once
per process, and sharing one connection between a process's threads (``SharedDatabase``)."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from knowledge.errors import StoreError

_CHECKED: set[tuple[int, int, int, int]] = set()  # files this process found intact, as they were then
_CHECKED_LOCK = threading.Lock()


def unwritable(db_path: Path) -> str | None:
    """Why ``db_path`` cannot be written (None: it can). Tried, not guessed from mode bits: root ignores
    them, and a read-only mount refuses even root. Opening for append changes nothing."""
    folder = db_path.parent
    if db_path.exists():
        try:
            os.close(os.open(db_path, os.O_WRONLY | os.O_APPEND))
        except OSError as exc:
            return _why_unwritable(exc, folder, f"the file {db_path.name}")
    try:
        handle, probe = tempfile.mkstemp(prefix=".tutor-write-test-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        if not db_path.exists():
            raise StoreError(
                f"cannot create the tutor database in {folder} ({exc.strerror or exc}); "
                "set TUTOR_DATA_DIR to a folder you can write"
            ) from None
        return _why_unwritable(exc, folder, f"the folder {folder}")
    return None


def safe_to_read_immutable(db_path: Path) -> bool:
    """A read-only file system (nothing here can write it) and no committed work waiting in a -wal."""
    try:
        read_only_fs = bool(os.statvfs(db_path.parent).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows): assume someone may write
        return False
    wal = db_path.with_name(db_path.name + "-wal")
    return read_only_fs and (not wal.exists() or wal.stat().st_size == 0)


def _why_unwritable(exc: OSError, folder: Path, what: str) -> str:
    if exc.errno == errno.EROFS:
        return f"{folder} is on a read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{what} is not writable by this user ({_whoami()}: {exc.strerror or exc})"
    return f"{what} cannot be written ({exc.strerror or exc})"  # a full disk, a quota


def _whoami() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return f"uid {os.getuid()}"


def check_once(conn: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check`` (reads every page, ~1 ms per MB) once per file state per process: the bot
    opens several stores on one file at start; a file written or replaced since is checked again."""
    stat = path.stat()
    key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _CHECKED_LOCK:
        if key in _CHECKED:
            return
    verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    if verdict != "ok":
        raise sqlite3.DatabaseError(verdict)
    with _CHECKED_LOCK:
        _CHECKED.add(key)


class SharedDatabase(sqlite_utils.Database):
    """sqlite-utils' ``Database`` over a connection the process's threads share (one ``Store`` per process).

    Its ``query()`` wraps every read in a SAVEPOINT, which outside a transaction begins one on the shared
    connection, so another thread's ``BEGIN`` fails or its ``COMMIT`` ends the reader's savepoint. Here a
    SELECT (or WITH) runs as a plain statement under the store's lock and is fetched at once: it sees only
    committed data, or the lock holder's own transaction. Every other statement goes the library's way.
    """

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self._shared_lock = lock  # before the library's __init__, which already executes statements
        super().__init__(conn)

    def query(self, sql: str, params: Sequence | dict[str, Any] | None = None) -> Iterator[dict]:
        if _FIRST_WORD.match(sql) is None:
            return super().query(sql, params)
        with self._shared_lock:
            cursor = self.conn.execute(sql, params if params is not None else ())
            keys = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return (dict(zip(keys, row, strict=True)) for row in rows)

    def execute(self, sql: str, parameters: Sequence | dict[str, Any] | None = None) -> Any:
        """A statement under the lock; a SELECT's rows are fetched under it too (``FetchedRows``), so no
        other thread's BEGIN, COMMIT or ROLLBACK lands while they are read."""
        with self._shared_lock:
            cursor = super().execute(sql, parameters)
            if _FIRST_WORD.match(sql) is None:
                return cursor
            return FetchedRows(cursor.fetchall(), cursor.description)


class FetchedRows:
    """The rows of a SELECT, already read: what callers use of a cursor (iteration, ``fetchone``,
    ``fetchall``, ``description``)."""

    def __init__(self, rows: list[tuple], description: Any) -> None:
        self._rows = rows
        self._next = 0
        self.description = description

    def __iter__(self) -> Iterator[tuple]:
        while self._next < len(self._rows):
            self._next += 1
            yield self._rows[self._next - 1]

    def fetchone(self) -> tuple | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest


_FIRST_WORD = re.compile(r"\s*(?:SELECT|WITH)\b", re.IGNORECASE)
