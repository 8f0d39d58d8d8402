"""Composition root: builds the shared services (store, encoder, retriever, engine) from settings.

Domain packages never construct each other; entry points (CLI, bot) call these factories so that each
heavy component is created once and injected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np

from knowledge.store import Store

T = TypeVar("T")


@cache
def encoder():
    """The plain sentence encoder (entries, quiz cards), loaded once per process and only when first used."""
    from index.encoder import LazyEncoder

    return LazyEncoder()


@cache
def retrieval_model():
    """The trained ranker, calibrator and cut-offs shipped in ``index/model/`` (checked against its manifest)."""
    from index.model import load_model

    return load_model()


@cache
def query_encoder():
    """The encoder for messages: MiniLM with the trained adapter merged in (entries use the plain one)."""
    from index.encoder import MiniLMEncoder

    return MiniLMEncoder(adapter=retrieval_model().adapter)


@cache
def quiz_grader():
    """The trained grader shipped in ``knowledge/quiz/model/`` over the plain encoder (manifest checked)."""
    from knowledge.quiz.learned import load_grader

    return load_grader(encoder())


def embed(texts: Sequence[str]) -> np.ndarray:
    """Normalised embeddings, remembered nowhere (``entry_encoder`` remembers them in a store)."""
    return encoder().encode(list(texts))


def entry_encoder(store: Store, progress=None):
    """The plain encoder remembering entry texts in ``store`` (and shipped for the bundled notes): each
    text is embedded once, whether the ingest, the index or the quiz asks first."""
    from knowledge.vectors import TextVectors

    return TextVectors(store, encoder(), progress=progress)


def open_store(data_dir: Path) -> Store:
    return Store.open(data_dir)


def read_store(read: Callable[[Store], T]) -> T:
    """``read(store)`` on the configured store (``TUTOR_DATA_DIR``), closed afterwards."""
    from tutor.settings import load_settings

    store = open_store(load_settings().data_dir)
    try:
        return read(store)
    finally:
        store.close()


def refresh_index(store: Store, progress=None) -> str | None:
    """Bring the store's retrieval index up to date; returns why it was rebuilt (None: it was current)."""
    from index import store_index

    directory = Path(store.path).parent / "index"
    _, reason = store_index.load_or_build(store, entry_encoder(store, progress), directory, expected=True)
    return reason


def open_retriever(data_dir: Path, model_dir: Path | None = None, progress=None):
    """The retriever over the store in ``data_dir``; builds the index on first use or when stale.

    ``model_dir``: another trained model than the shipped one (``tutor eval --model``).
    """
    from index.encoder import MiniLMEncoder
    from index.model import load_model
    from index.retriever import Retriever

    if model_dir is None:
        model, queries = retrieval_model(), query_encoder()
    else:
        model = load_model(Path(model_dir))
        queries = MiniLMEncoder(adapter=model.adapter)
    store = open_store(data_dir)
    entries = entry_encoder(store, progress)
    return Retriever(store, entries, Path(data_dir) / "index", model=model, query_encoder=queries)
