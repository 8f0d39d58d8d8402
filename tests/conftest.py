"""Shared fixtures. The real embedding model is loaded at most once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory):
    """No test reads or writes the developer's own knowledge base (the default data folder)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TUTOR_DATA_DIR", str(tmp_path_factory.mktemp("tutor-data")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def encoder():
    """The project's real MiniLM encoder (shared by every test that needs embeddings)."""
    from tutor.services import encoder as make_encoder

    return make_encoder()


@pytest.fixture(scope="session")
def retrieval_model():
    """The shipped, trained retrieval model (ranker, calibrator, cut-offs, query adapter)."""
    from tutor.services import retrieval_model as load

    return load()


@pytest.fixture(scope="session")
def query_encoder(retrieval_model):
    """MiniLM with the trained query adapter merged in (shared by every test that asks questions)."""
    from tutor.services import query_encoder as make

    return make()


@pytest.fixture(scope="session")
def embed(encoder):
    return lambda texts: encoder.encode(list(texts))


@pytest.fixture(scope="session")
def seeded_store_path(tmp_path_factory, embed):
    """A store with the five source documents ingested once; tests copy it rather than re-ingest."""
    from tests.stores import ingest_bundled

    return ingest_bundled(tmp_path_factory.mktemp("seeded") / "tutor.db", embed)


@pytest.fixture
def seeded_store(seeded_store_path, tmp_path):
    """A private copy of the seeded store."""
    from tests.stores import open_copy

    with open_copy(seeded_store_path, tmp_path) as store:
        yield store


@pytest.fixture(scope="session")
def seeded_index_dir(tmp_path_factory, seeded_store_path, encoder):
    """The retrieval index of the seeded store, built once per session; tests copy it."""
    from index import store_index
    from knowledge.store import Store

    directory = tmp_path_factory.mktemp("seeded-index") / "index"
    store = Store(seeded_store_path)
    store_index.build(store, encoder, directory)
    store.close()
    return directory


@pytest.fixture
def retriever(seeded_store, seeded_index_dir, encoder, query_encoder, retrieval_model, tmp_path):
    """A Retriever with the shipped model over a private copy of the seeded store and its index."""
    import shutil

    from index.retriever import Retriever

    index_dir = tmp_path / "index"
    shutil.copytree(seeded_index_dir, index_dir)
    return Retriever(seeded_store, encoder, index_dir, model=retrieval_model, query_encoder=query_encoder)


@pytest.fixture(scope="session")
def demo_worker():
    """The engine's warm demo worker process, shared by the bot's tests; started on first use."""
    from engine import DemoWorker

    worker = DemoWorker(max_pending=8)
    yield worker
    worker.close()


@pytest.fixture(scope="session")
def quiz_store_path(tmp_path_factory, seeded_store_path, encoder):
    """The seeded store with the quiz's card vectors cached (the first catalogue build encodes every card)."""
    import shutil

    from knowledge.quiz import QuizService
    from knowledge.store import Store

    path = tmp_path_factory.mktemp("quiz-seeded") / "tutor.db"
    shutil.copy(seeded_store_path, path)
    store = Store(path)
    with QuizService(store, encoder) as quiz:
        quiz.catalogue()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.fixture
def quiz_retriever(quiz_store_path, seeded_index_dir, encoder, query_encoder, retrieval_model, tmp_path):
    """A Retriever over a private copy of the quiz-ready seeded store (same items, so the same index)."""
    import shutil

    from index.retriever import Retriever
    from knowledge.store import Store

    target = tmp_path / "tutor.db"
    shutil.copy(quiz_store_path, target)
    index_dir = tmp_path / "index"
    shutil.copytree(seeded_index_dir, index_dir)
    store = Store(target)
    yield Retriever(store, encoder, index_dir, model=retrieval_model, query_encoder=query_encoder)
    store.close()
