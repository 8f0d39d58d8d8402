"""The composition root: every command and the bot get their services here, and nowhere else.

Domain packages never construct each other. A process has one :class:`Root`: it opens the store, the
retriever over it, the quiz service and the demo client on first use (one of each, shared by everything
the command does) and closes them together. ``tutor bot`` hands the root's ``bot_services()`` to the bot;
a ``tutor`` command gets its root from ``for_command()``, closed when the command ends.

The models (encoders, the ranker, the grader) do not depend on the settings and are loaded once per
process, on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.store import Store

if TYPE_CHECKING:
    from bot.bot import Services
    from bot.guilds import GuildSettings
    from index.retriever import Retriever
    from knowledge.quiz.service import QuizService
    from tutor.settings import Settings


# --- models: one per process ----------------------------------------------------------------------------
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


# --- building blocks over a given store -----------------------------------------------------------------
def entry_encoder(store: Store, progress=None):
    """The plain encoder remembering entry texts in ``store`` (and shipped for the bundled notes): each
    text is embedded once, whether the ingest, the index or the quiz asks first."""
    from knowledge.vectors import TextVectors

    return TextVectors(store, encoder(), progress=progress)


def open_store(data_dir: Path) -> Store:
    return Store.open(data_dir)


def refresh_index(store: Store, progress=None) -> str | None:
    """Bring the store's retrieval index up to date; returns why it was rebuilt (None: it was current)."""
    from index import store_index

    directory = Path(store.path).parent / "index"
    _, reason = store_index.load_or_build(store, entry_encoder(store, progress), directory, expected=True)
    return reason


def retriever_over(store: Store, model_dir: Path | None = None, progress=None) -> Retriever:
    """The retriever over ``store``; builds the index (beside the store) on first use or when stale.

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
    index_dir = Path(store.path).parent / "index"
    return Retriever(store, entry_encoder(store, progress), index_dir, model=model, query_encoder=queries)


def open_retriever(data_dir: Path, model_dir: Path | None = None, progress=None) -> Retriever:
    """A retriever over a store of its own in ``data_dir`` (the benchmarks in ``bench/``; commands and the
    bot use their root's)."""
    return retriever_over(open_store(data_dir), model_dir, progress)


# --- the root -------------------------------------------------------------------------------------------
class Root:
    """One per process: the store, the retriever, the quiz service and the demo client, each opened once
    (on first use) over the settings, shared by whoever asks, and closed together by :meth:`close`."""

    def __init__(self, settings: Settings | None = None) -> None:
        if settings is None:
            from tutor.settings import load_settings

            settings = load_settings()
        self.settings = settings
        self._store: Store | None = None
        self._retriever: Retriever | None = None
        self._quiz: QuizService | None = None
        self._guilds: GuildSettings | None = None
        self._demos: tuple[Any, Any] | None = None
        self._bot: Services | None = None

    @property
    def store(self) -> Store:
        """The one store (``TUTOR_DATA_DIR``)."""
        if self._store is None:
            self._store = open_store(self.settings.data_dir)
        return self._store

    def retriever(self, model_dir: Path | None = None, progress=None) -> Retriever:
        """The one retriever, over :attr:`store`. The first call chooses the model (``model_dir``: not the
        shipped one) and who hears about a first index build (``progress``)."""
        if self._retriever is None:
            self._retriever = retriever_over(self.store, model_dir, progress)
        return self._retriever

    def quiz(self) -> QuizService:
        """The quiz service over :attr:`store`, grading with the trained grader."""
        if self._quiz is None:
            from knowledge.quiz.service import QuizService

            self._quiz = QuizService(self.store, encoder(), grader=quiz_grader())
        return self._quiz

    def guilds(self) -> GuildSettings:
        """Per-guild settings (answer channels, quiz defaults), in the bot's tables of :attr:`store`
        (``bot.repository``, whose migrations run on first use)."""
        if self._guilds is None:
            from bot.guilds import GuildSettings

            self._guilds = GuildSettings(self.store)
        return self._guilds

    def demo_client(self) -> tuple[Any, Any]:
        """``(runner, shared)``: the embedded ``DemoWorker`` (the default; started by its first demo or a
        warm-up) and None, or, with ``TUTOR_BROKER_URL``, the Celery ``DemoPool`` and the ``SharedSlots``
        that count the queue limits across bot processes."""
        if self._demos is None:
            from tutor.settings import pool_settings

            pool = pool_settings(self.settings)
            if pool is None:
                from engine.worker import DemoWorker

                self._demos = DemoWorker(max_pending=max(self.settings.demo_queue_total, 1)), None
            else:
                from engine.pool import DemoPool, SharedSlots

                self._demos = DemoPool(pool), SharedSlots(pool)
        return self._demos

    def bot_services(self) -> Services:
        """What ``TutorBot`` is given: the root's store, retriever (its index built if needed), quiz, guild
        settings, and the demo client behind the bot's per-user queue."""
        if self._bot is None:
            from bot.bot import Services
            from bot.demos import DemoQueue

            retriever = self.retriever()  # first: a missing or broken knowledge base fails before the rest
            worker, shared = self.demo_client()
            demos = DemoQueue(
                worker,
                per_user=self.settings.demo_queue_per_user,
                total=self.settings.demo_queue_total,
                max_budget_s=self.settings.demo_timeout_s,
                shared=shared,
            )
            self._bot = Services(
                settings=self.settings,
                store=self.store,
                retriever=retriever,
                demos=demos,
                quiz=self.quiz(),
                guilds=self.guilds(),
            )
        return self._bot

    def close(self) -> None:
        """Close whatever was opened, the store last; the root can be used again afterwards (reopening)."""
        worker, shared = self._demos or (None, None)
        closers = [
            worker.close if worker is not None else None,
            shared.close if shared is not None else None,
            self._quiz.close if self._quiz is not None else None,
            self._guilds.close if self._guilds is not None else None,
            self._store.close if self._store is not None else None,
        ]
        self._store = self._retriever = self._quiz = self._guilds = self._demos = self._bot = None
        failures = []
        for close in closers:
            if close is None:
                continue
            try:
                close()
            except Exception as exc:  # close the rest anyway
                failures.append(exc)
        if failures:
            raise failures[0]

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ROOT_KEY = "tutor.services.root"


def for_command() -> Root:
    """The root of the ``tutor`` command being run: made at first use, closed when the command ends (also
    for ``tutor start`` and ``/quiz`` inside ``tutor chat``, which share their command's)."""
    import click

    ctx = click.get_current_context().find_root()
    root = ctx.meta.get(_ROOT_KEY)
    if root is None:
        root = ctx.meta[_ROOT_KEY] = Root()
        ctx.call_on_close(root.close)
    return root
