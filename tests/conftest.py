"""Shared fixtures. The real embedding model is loaded at most once per test session.

Two sets of the same fixtures: ``encoder``, ``seeded_store``, ``retriever``, ``quiz_retriever`` ... use the
real MiniLM model, for tests whose subject is the model or the answers' quality; ``fake_encoder``,
``fake_store``, ``fake_retriever``, ``fake_quiz_retriever`` ... use ``tests.stores.HashingEncoder`` (no model,
milliseconds), for tests whose subject is not (bot plumbing, errors, quiz flow, store mechanics). The fake
retriever keeps the shipped ranker and cut-offs, so an entry asked about in its own words is answered.

A test that requests a real-model fixture is marked ``model`` automatically (``-m "not model"`` runs
without the model), and the summary says whether the run loaded the model and which test did first.
"""

from __future__ import annotations

import os
import shutil
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

# The fixtures below that embed with the real model (directly or through what they build).
REAL_MODEL_FIXTURES = frozenset(
    {
        "encoder",
        "query_encoder",
        "embed",
        "seeded_store_path",
        "seeded_store",
        "seeded_index_dir",
        "retriever",
        "quiz_store_path",
        "quiz_retriever",
    }
)
# What the real encoder runs on: index/encoder.py imports it when an encoder is built, and nothing that a
# test without the model runs imports it.
_MODEL_RUNTIME = "onnxruntime"
_model_loaded_by: list[str] = []


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        uses_model = REAL_MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses_model and item.get_closest_marker("model") is None:
            item.add_marker(pytest.mark.model)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    loaded_before = _MODEL_RUNTIME in sys.modules
    try:
        return (yield)
    finally:
        if not loaded_before and _MODEL_RUNTIME in sys.modules and not _model_loaded_by:
            _model_loaded_by.append(item.nodeid)


def pytest_terminal_summary(terminalreporter) -> None:
    if _model_loaded_by:
        terminalreporter.write_line(f"real embedding model: loaded, first by {_model_loaded_by[0]}")
    elif _MODEL_RUNTIME in sys.modules:
        terminalreporter.write_line("real embedding model: loaded before the first test")
    else:
        terminalreporter.write_line("real embedding model: not loaded")


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
    """The shipped, trained retrieval model (ranker, calibrator, cut-offs, query adapter); loading it loads
    no embedding model (the adapter is merged into one by ``query_encoder``)."""
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
def fake_encoder():
    """The stand-in encoder (``tests.stores.HashingEncoder``) for entries and questions alike."""
    from tests.stores import HashingEncoder

    return HashingEncoder()


@pytest.fixture(scope="session")
def fake_embed(fake_encoder):
    return lambda texts: fake_encoder.encode(list(texts))


# --- the seeded store, its index and retrievers over it: built once per session per encoder -------------
def _seeded(tmp_path_factory, name: str, embed):
    """A store with the five source documents ingested once; tests copy it rather than re-ingest."""
    from tests.stores import ingest_bundled

    return ingest_bundled(tmp_path_factory.mktemp(name) / "tutor.db", embed)


def _index(tmp_path_factory, name: str, store_path, encoder):
    """The retrieval index of a seeded store, built once per session; tests copy it."""
    from index import store_index
    from knowledge.store import Store

    directory = tmp_path_factory.mktemp(name) / "index"
    store = Store(store_path)
    store_index.build(store, encoder, directory)
    store.close()
    return directory


def _with_quiz(tmp_path_factory, name: str, store_path, encoder):
    """A copy of a seeded store with the quiz's card vectors cached (the first catalogue build encodes every
    card)."""
    from knowledge.quiz import QuizService
    from knowledge.store import Store

    path = tmp_path_factory.mktemp(name) / "tutor.db"
    shutil.copy(store_path, path)
    store = Store(path)
    with QuizService(store, encoder) as quiz:
        quiz.catalogue()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


def _retriever(store_path, index_dir, encoder, model, query_encoder, tmp_path):
    """A Retriever over private copies of a seeded store and its index (an index serves any copy of the
    store it was built from: same items)."""
    from index.retriever import Retriever
    from knowledge.store import Store

    shutil.copy(store_path, tmp_path / "tutor.db")
    shutil.copytree(index_dir, tmp_path / "index")
    store = Store(tmp_path / "tutor.db")
    try:
        yield Retriever(store, encoder, tmp_path / "index", model=model, query_encoder=query_encoder)
    finally:
        store.close()


@pytest.fixture(scope="session")
def seeded_store_path(tmp_path_factory, embed):
    """The five source documents ingested with the real model."""
    return _seeded(tmp_path_factory, "seeded", embed)


@pytest.fixture
def seeded_store(seeded_store_path, tmp_path):
    """A private copy of the seeded store."""
    from tests.stores import open_copy

    with open_copy(seeded_store_path, tmp_path) as store:
        yield store


@pytest.fixture(scope="session")
def seeded_index_dir(tmp_path_factory, seeded_store_path, encoder):
    return _index(tmp_path_factory, "seeded-index", seeded_store_path, encoder)


@pytest.fixture
def retriever(seeded_store, seeded_index_dir, encoder, query_encoder, retrieval_model, tmp_path):
    """A Retriever with the shipped model over a private copy of the seeded store and its index."""
    from index.retriever import Retriever

    index_dir = tmp_path / "index"
    shutil.copytree(seeded_index_dir, index_dir)
    return Retriever(seeded_store, encoder, index_dir, model=retrieval_model, query_encoder=query_encoder)


@pytest.fixture(scope="session")
def quiz_store_path(tmp_path_factory, seeded_store_path, encoder):
    """The seeded store with the quiz's card vectors cached."""
    return _with_quiz(tmp_path_factory, "quiz-seeded", seeded_store_path, encoder)


@pytest.fixture
def quiz_retriever(quiz_store_path, seeded_index_dir, encoder, query_encoder, retrieval_model, tmp_path):
    """A Retriever over a private copy of the quiz-ready seeded store (same items, so the same index)."""
    yield from _retriever(
        quiz_store_path, seeded_index_dir, encoder, retrieval_model, query_encoder, tmp_path
    )


@pytest.fixture(scope="session")
def fake_store_path(tmp_path_factory, fake_embed):
    """The five source documents ingested with the stand-in encoder (about a second)."""
    return _seeded(tmp_path_factory, "fake-seeded", fake_embed)


@pytest.fixture
def fake_store(fake_store_path, tmp_path):
    """A private copy of the store ingested with the stand-in encoder."""
    from tests.stores import open_copy

    with open_copy(fake_store_path, tmp_path) as store:
        yield store


@pytest.fixture(scope="session")
def fake_index_dir(tmp_path_factory, fake_store_path, fake_encoder):
    return _index(tmp_path_factory, "fake-index", fake_store_path, fake_encoder)


@pytest.fixture
def fake_retriever(fake_store_path, fake_index_dir, fake_encoder, retrieval_model, tmp_path):
    """A Retriever with the shipped ranker and cut-offs, the stand-in encoder for entries and questions,
    over private copies of the fake-seeded store and its index."""
    yield from _retriever(
        fake_store_path, fake_index_dir, fake_encoder, retrieval_model, fake_encoder, tmp_path
    )


@pytest.fixture(scope="session")
def fake_quiz_store_path(tmp_path_factory, fake_store_path, fake_encoder):
    return _with_quiz(tmp_path_factory, "fake-quiz", fake_store_path, fake_encoder)


@pytest.fixture
def fake_quiz_retriever(fake_quiz_store_path, fake_index_dir, fake_encoder, retrieval_model, tmp_path):
    """``fake_retriever`` over a quiz-ready copy (card vectors cached): for the bot's quiz tests."""
    yield from _retriever(
        fake_quiz_store_path, fake_index_dir, fake_encoder, retrieval_model, fake_encoder, tmp_path
    )


@pytest.fixture(scope="session")
def demo_worker():
    """The engine's warm demo worker process, shared by the bot's tests; started on first use."""
    from engine import DemoWorker

    worker = DemoWorker(max_pending=8)
    yield worker
    worker.close()
