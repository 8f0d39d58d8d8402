"""Index files written safely when several processes (the bot, `tutor ask`, a second bot) share a data dir.

Every file is written under a temp name unique to the writer and renamed into place, and a rebuild holds an
exclusive lock on ``.build.lock`` so a second process waits for the first build and then loads it instead
of building the same index again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: builds are still atomic, just not serialised
    fcntl = None  # type: ignore[assignment]


def _read_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()  # read once, at import: os.umask() briefly changes it for the whole process


def temp_path_for(path: Path) -> Path:
    """A fresh, unique, empty file beside ``path`` (same filesystem, so ``os.replace`` is atomic)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(name, 0o666 & ~_UMASK)  # as open() would create it: the bot and the CLI may be other users
    return Path(name)


def remove_leftovers(directory: Path, names: tuple[str, ...] = ()) -> None:
    """Temp files of a build that was killed midway, and anything but a plain file where one of ``names``
    belongs (a folder or a link left by accident would make every write fail). Call with the build lock held.
    """
    for leftover in directory.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
    for name in names:
        path = directory / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def clear_non_folder(directory: Path) -> None:
    """The index folder must be a folder: a file in its place (not ours to keep) is removed."""
    if (directory.is_symlink() or directory.exists()) and not directory.is_dir():  # a file or a dead link
        directory.unlink()


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``path``, on failure it is removed."""
    tmp = temp_path_for(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """Exclusive, process-wide lock for rebuilding the index in ``directory`` (released on exit or crash)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)
