"""Small file and timing helpers shared by the packages above (index, engine benchmarks, the quiz model)."""

from __future__ import annotations

import hashlib
import sqlite3
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (index files and model files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def connect_read_only(path: Path, *, immutable: bool = False, **kwargs) -> sqlite3.Connection:
    """An SQLite connection that cannot write ``path``: a ``file:`` URI built from the resolved path, so
    a name with ``?``, ``#`` or spaces is still that file. ``immutable``: nothing will change the file
    while it is open (a read-only mount), so SQLite needs no lock or WAL index beside it."""
    flags = "mode=ro&immutable=1" if immutable else "mode=ro"
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?{flags}", uri=True, **kwargs)


def first_mismatch(directory: Path, names: Iterable[str], expected: Mapping[str, str]) -> str | None:
    """The first of ``names`` in ``directory`` whose SHA-256 differs from its manifest entry, or None.

    Raises ``OSError`` for a missing file and ``KeyError`` for a name the manifest lacks.
    """
    for name in names:
        if sha256(Path(directory) / name) != expected[name]:
            return name
    return None


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50, p99 and n of latencies in milliseconds (benchmarks report these)."""
    ordered = sorted(samples_ms)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "n": len(ordered),
    }
