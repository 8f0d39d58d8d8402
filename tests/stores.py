"""Stores for tests: the bundled notes ingested once with a given encoder, and private copies of it; and
stand-in encoders for tests whose subject is not the model.

Ingesting takes seconds with the real model, so a session or module ingests once and each test works on a
copy (``open_copy``); the checkpoint first makes the copied file complete without its WAL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from knowledge.analysis import Embed
from knowledge.loader import SOURCES_DIR, collect_paths, load_document
from knowledge.models import DocumentMeta, Entry, ParsedDocument
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


def random_embed(texts: Sequence[str], dim: int = 64) -> np.ndarray:
    """A unit vector per text, seeded by its hash: deterministic, unrelated texts unrelated, identical texts
    identical (so repeated questions are exact duplicates), and about 10 µs a text."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        out[row] = np.random.default_rng(seed).standard_normal(dim, dtype=np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


class TimedStore(Store):
    """Times every write transaction (COMMIT included) and, after each commit, calls ``after_commit``."""

    def __init__(self, path: Path, after_commit: Callable[[], None] | None = None) -> None:
        self.durations: list[float] = []
        self.after_commit = after_commit
        super().__init__(path)

    @contextlib.contextmanager
    def transaction(self):
        started = time.perf_counter()
        with super().transaction():
            yield
        self.durations.append(time.perf_counter() - started)
        if self.after_commit is not None:
            self.after_commit()


class RandomEncoder:
    """``random_embed`` as an encoder (model id, size, ``encode``): what `tutor.services.encoder` returns in
    CLI tests whose subject is not the model."""

    model_id = "test-random-64"
    dim = 64

    def encode(self, texts, batch_size: int = 64):
        return random_embed(list(texts))


_WORD = re.compile(r"\w+")


class HashingEncoder:
    """A stand-in for MiniLM in tests whose subject is not the model (bot plumbing, errors, quiz flow, store
    mechanics): a normalised bag of hashed words. No model is loaded and encoding is microseconds a text.

    Deterministic; identical texts get identical vectors and texts sharing words get similar ones, so a
    question asked in an entry's own words finds that entry (through the lexical signal too). Its input
    contract is the real encoder's: ``encode`` takes a sequence of ``str`` (``TypeError`` otherwise),
    ``encode_one`` one ``str``, and text that is not valid Unicode (a lone surrogate) raises
    ``UnicodeEncodeError``, as the tokenizer does. Use it as both the entry and the query encoder.
    """

    model_id = "test/hashing-256"
    dim = 256

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a sequence of str, got {type(texts).__name__}")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{row}] must be a str, got {type(text).__name__}")
            text.encode("utf-8")  # a lone surrogate fails here, as in the tokenizer
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        out[:, 0] += 1e-3  # no all-zero rows
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_one(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.encode([text])[0]


def space_deck(key: str, pairs: list[tuple[str, str]]) -> ParsedDocument:
    """A server's cards as the bot stores them: ``guild_<key>.jsonl`` in the space ``key``."""
    entries = tuple(Entry(q, a, n) for n, (q, a) in enumerate(pairs, 1))
    digest = hashlib.sha256(json.dumps(pairs).encode()).hexdigest()
    meta = DocumentMeta(source=f"guild_{key}.jsonl", title=f"{key} cards", layout="jsonl")
    return ParsedDocument(meta, entries, digest, "discord", key)
