"""Stores for tests: the bundled notes ingested once with a given encoder, and private copies of it.

Ingesting takes seconds with the real model, so a session or module ingests once and each test works on a
copy (``open_copy``); the checkpoint first makes the copied file complete without its WAL.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from knowledge.analysis import Embed
from knowledge.loader import SOURCES_DIR, collect_paths, load_document
from knowledge.store import Store


def ingest_bundled(path: Path, embed: Embed) -> Path:
    """A store at ``path`` holding the bundled sources, embedded with ``embed``, checkpointed and closed."""
    store = Store(path)
    store.ingest([load_document(p) for p in collect_paths([SOURCES_DIR])], embed)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@contextlib.contextmanager
def open_copy(source: Path, directory: Path) -> Iterator[Store]:
    """A private copy of the store at ``source``, in ``directory``, open for the duration."""
    target = directory / "tutor.db"
    shutil.copy(source, target)
    store = Store(target)
    try:
        yield store
    finally:
        store.close()
