"""Composition root: builds the shared services (store, encoder, retriever, engine) from settings.

Domain packages never construct each other; entry points (CLI, bot) call these factories so that each
heavy component is created once and injected.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from knowledge.store import Store


@cache
def encoder():
    """The sentence encoder, loaded once per process and only when first needed."""
    from index.encoder import MiniLMEncoder

    return MiniLMEncoder()


def embed(texts: Sequence[str]) -> np.ndarray:
    """Normalised embeddings for the knowledge analysis (duplicate groups, off-topic answers)."""
    return encoder().encode(list(texts))


def open_store(data_dir: Path) -> Store:
    return Store.open(data_dir)


def open_retriever(data_dir: Path):
    """The retriever over the store in ``data_dir``; builds the index on first use or when stale."""
    from index.retriever import Retriever

    store = open_store(data_dir)
    return Retriever(store, encoder(), Path(data_dir) / "index")
