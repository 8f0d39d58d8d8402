"""Embeddings of entry texts, computed once: kept in the store and shipped for the bundled notes.

An ingest embeds questions and answers (duplicate groups, off-topic answers), the index build embeds the
same questions and question+answer views, and the quiz embeds answers and card texts. ``TextVectors``
wraps the encoder so each distinct text is encoded once per model, ever: vectors live in the store's
``text_vectors`` table keyed by ``sha1(model_id, text)``. The bundled notes' vectors ship with the package
(``BUNDLED_VECTORS``, written by ``make vectors``), so a fresh install answers without embedding them;
a text the shipped file lacks (an edited source, another model) is simply encoded.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.store import Store

BUNDLED_VECTORS = Path(__file__).parent / "data" / "bundled_vectors.npz"
_LOOKUP_BATCH = 500  # keys per SELECT (under SQLite's bound-parameter limit)
_ENCODE_CHUNK = 128  # texts per encoder call when someone watches the progress
_WRITE_BATCH = 1000  # vectors per write transaction (~1.5 MB: a few ms of the write lock)

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed)

log = logging.getLogger(__name__)


def text_key(model_id: str, text: str) -> str:
    return hashlib.sha1(f"{model_id}\0{text}".encode()).hexdigest()


class TextVectors:
    """``encoder`` with a memory: ``encode`` looks each text up (store, then the shipped file) first.

    Has the encoder's ``model_id``, ``dim``, ``encode`` and ``encode_one`` (queries pass straight through:
    they are not entries), so the index build and the quiz take it in the encoder's place.
    """

    def __init__(
        self,
        store: Store,
        encoder: Any,
        bundled: Path | None = BUNDLED_VECTORS,
        progress: Progress | None = None,
    ):
        """``encoder``: has ``encode(texts)``, ``model_id`` and ``dim``, or is a bare ``embed(texts)``.
        ``progress`` hears how far each batch of new texts has got (a progress bar on a terminal)."""
        self.store = store
        self.progress = progress
        if isinstance(encoder, TextVectors):  # one memory is enough
            encoder = encoder.encoder
        self.encoder = encoder
        self._encode = encoder.encode if hasattr(encoder, "encode") else encoder
        self.model_id: str = getattr(encoder, "model_id", "")
        self._bundled_path = bundled
        self._bundled: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()
        self.encoded = 0  # texts this instance had to encode (benchmarks and tests read it)

    @property
    def dim(self) -> int | None:
        return getattr(self.encoder, "dim", None)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encoder.encode_one(text)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        keys = [text_key(self.model_id, t) for t in texts]
        found = self._stored(keys)
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            shipped = self._shipped()
            from_file = {k: shipped[k] for k in missing if k in shipped}
            found.update(from_file)
            first = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
            computed: dict[str, np.ndarray] = {}
            if first:
                vectors = self._encode_watched(list(first.values()))
                computed = dict(zip(first, vectors, strict=True))
                self.encoded += len(computed)
                found.update(computed)
            self._remember({**from_file, **computed})
        if not keys:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _encode_watched(self, texts: list[str]) -> np.ndarray:
        if self.progress is None:
            return np.asarray(self._encode(texts), dtype=np.float32)
        # Chunks of similar length, so that reporting costs no padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim or 0), dtype=np.float32) if self.dim else None
        parts = []
        self.progress(0, len(texts))
        for start in range(0, len(order), _ENCODE_CHUNK):
            rows = order[start : start + _ENCODE_CHUNK]
            part = np.asarray(self._encode([texts[i] for i in rows]), dtype=np.float32)
            if out is None:
                out = np.empty((len(texts), part.shape[1]), dtype=np.float32)
            parts.append((rows, part))
            self.progress(min(start + _ENCODE_CHUNK, len(texts)), len(texts))
        for rows, part in parts:
            out[rows] = part
        return out

    def _stored(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _LOOKUP_BATCH):
            chunk = unique[start : start + _LOOKUP_BATCH]
            marks = ",".join("?" * len(chunk))
            for key, blob in self.store.db.execute(
                f"SELECT key, vector FROM text_vectors WHERE key IN ({marks})", chunk
            ):
                vector = np.frombuffer(blob, dtype=np.float32)
                if self.dim is None or vector.shape == (self.dim,):  # another model's size: ignored
                    found[key] = vector
        return found

    def _remember(self, vectors: dict[str, np.ndarray]) -> None:
        """Keep new vectors, ``_WRITE_BATCH`` rows per transaction so the write lock is held briefly; inside
        a caller's transaction (a quiz step building its cards) they join it."""
        if not vectors or self.store.read_only is not None:
            return
        rows = [(k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()]
        for start in range(0, len(rows), _WRITE_BATCH):
            with self.store.transaction():
                self.store.db.conn.executemany(
                    "INSERT OR REPLACE INTO text_vectors (key, vector) VALUES (?, ?)",
                    rows[start : start + _WRITE_BATCH],
                )

    def _shipped(self) -> dict[str, np.ndarray]:
        if self.dim is None:
            return {}
        with self._lock:
            if self._bundled is None:
                self._bundled = load_bundled(self._bundled_path, self.dim)
            return self._bundled


def load_bundled(path: Path | None, dim: int) -> dict[str, np.ndarray]:
    """The shipped vectors by key; a missing or unreadable file is only a slower start, never an error."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, vectors = data["keys"], data["vectors"]
        if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape != (len(keys), dim):
            raise ValueError(f"shape {vectors.shape} {vectors.dtype}, expected ({len(keys)}, {dim}) float32")
        return {str(k): v for k, v in zip(keys, vectors, strict=True)}
    except (OSError, ValueError, KeyError) as exc:
        log.info("shipped vectors %s not used (%s): the bundled notes will be embedded", path, exc)
        return {}


def write_bundled(store: Store, path: Path = BUNDLED_VECTORS) -> int:
    """Write every vector in ``store`` to ``path`` (sorted by key, so the file is reproducible)."""
    rows = sorted(store.db.execute("SELECT key, vector FROM text_vectors").fetchall())
    keys = np.array([k for k, _ in rows], dtype="U40")
    vectors = np.stack([np.frombuffer(v, dtype=np.float32) for _, v in rows]) if rows else np.zeros((0, 0))
    with open(path, "wb") as fh:
        np.savez_compressed(fh, keys=keys, vectors=vectors.astype(np.float32))
    return len(rows)
