"""What a quiz per space costs with many spaces: the catalogue over every card, and one scope's view of it.

    python -m bench.quiz_scopes                              # 100,000 cards in 1,000 spaces + 200 shared
    python -m bench.quiz_scopes --spaces 10 --shared 50000   # a large shared base, few spaces

A store is filled with ``--shared`` shared entries and ``--spaces`` spaces of ``--per-space`` cards each (a
server's cards: ``guild_<n>.jsonl``), ingested with a stand-in encoder (a pseudo-random 384-d unit vector
per text), and a few hides and corrections. Then, with ``QuizService``: the one catalogue build over every
card (embeddings come from the store's vector cache), and per scope (median over ``--rounds`` spaces) the
view a quiz draws from (``Catalogue.within``: its cards, vectors, options; a space's first view computes
its cards' key terms and options, kept in the catalogue after), the cards alone (topics,
statistics), ``topics``, a whole ``start`` (the store's content version, the view, planning and writing the
session) in free and multiple-choice mode, and a ``question`` + ``answer`` step (the overrides read each
time). Last, one space adds a card: the catalogue's rebuild (reusing every unchanged card) against a full
build.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:
    sys.exit("run it from the repository root as a module: python -m bench.quiz_scopes")

from fsrs import Scheduler

from knowledge import overrides
from knowledge.models import DocumentMeta, Entry, ParsedDocument
from knowledge.overrides import load_overrides
from knowledge.quiz import QuizService
from knowledge.scope import Scope
from knowledge.store import Store
from tests.stores import random_embed

DIM = 384


class Encoder:
    model_id = "bench/random-384"
    dim = DIM

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        return random_embed(list(texts), DIM)


def deck(source: str, key: str | None, first: int, count: int) -> ParsedDocument:
    words = ("gradient", "kernel", "stride", "padding", "dropout", "softmax", "momentum", "batch", "layer")
    entries = tuple(
        Entry(
            f"What does rule {first + i} say about the {words[i % len(words)]}?",
            f"Rule {first + i}: the {words[i % len(words)]} and the {words[(i * 7) % len(words)]} of step "
            f"{i} in this deck, with enough words to be asked as multiple choice sometimes {first + i}",
            i + 1,
        )
        for i in range(count)
    )
    meta = DocumentMeta(source=source, title=f"deck {source}", layout="jsonl")
    return ParsedDocument(meta, entries, f"hash-{source}-{count}", "discord" if key else "", key)


def timed(fn, rounds: list) -> list[float]:
    out = []
    for arg in rounds:
        started = time.perf_counter()
        fn(arg)
        out.append(time.perf_counter() - started)
    return out


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.1f} ms, max {max(values) * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spaces", type=int, default=1000)
    parser.add_argument("--per-space", type=int, default=100)
    parser.add_argument("--shared", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    encoder = Encoder()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "tutor.db")
        started = time.perf_counter()
        docs = [deck("shared.jsonl", None, 0, args.shared)] if args.shared else []
        docs += [
            deck(f"guild_{k}.jsonl", str(k), args.shared + k * args.per_space, args.per_space)
            for k in range(1, args.spaces + 1)
        ]
        store.ingest(docs, encoder.encode)
        print(f"store          {len(store.items()):,} items in {len(docs):,} documents, ingested in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        keys = [str(k) for k in range(1, args.spaces + 1, max(1, args.spaces // args.rounds))][: args.rounds]
        for key in keys:  # each measured space hides one shared item and corrects one of its cards
            shared_item = (
                store.items(source="shared.jsonl")[int(key) % max(args.shared, 1)] if args.shared else None
            )
            own = store.items(source=f"guild_{key}.jsonl")[0]
            if shared_item is not None:
                overrides.hide(store, Scope.of(key), shared_item.id, "bench")
            overrides.correct(store, key, own.id, f"A corrected answer for space {key}", "bench")
        quiz = QuizService(store, encoder, scheduler=Scheduler(enable_fuzzing=False))
        started = time.perf_counter()
        catalogue = quiz.catalogue()
        print(f"catalogue      {len(catalogue.cards):,} cards built in {time.perf_counter() - started:.1f} s "
              "(once per content of the store)")  # fmt: skip
        started = time.perf_counter()
        seen = load_overrides(store)
        print(f"overrides      read in {(time.perf_counter() - started) * 1000:.1f} ms")
        started = time.perf_counter()
        store.content_hash()
        hashed = time.perf_counter() - started
        started = time.perf_counter()
        store.content_version()
        print(
            f"content hash   {hashed * 1000:.0f} ms (the index's check); content version "
            f"{(time.perf_counter() - started) * 1000:.2f} ms (what every start compares)"
        )
        scopes = [Scope.of(k) for k in keys]
        cold = timed(lambda s: catalogue.within(s, seen, quiz._vectors), scopes)
        warm = timed(lambda s: catalogue.within(s, seen, quiz._vectors), scopes)
        size = len(catalogue.within(scopes[0], seen).cards)
        print(f"within(scope)  a space's first view: {ms(cold)}")
        print(f"               again: {ms(warm)} ({size:,} cards a view)")
        print(f"scoped_cards   {ms(timed(lambda s: catalogue.scoped_cards(s, seen), scopes))}")
        print(f"topics(scope)  {ms(timed(quiz.topics, scopes))}")
        users = iter(range(10**6))
        for mode in ("free", "mc"):
            starts = timed(lambda s, m=mode: quiz.start(f"u{next(users)}", n=10, mode=m, scope=s), scopes)
            print(f"start {mode:<4}     {ms(starts)}")

        def step(scope: Scope) -> None:
            session = quiz.start(f"u{next(users)}", n=10, mode="free", scope=scope)
            question = quiz.question(session)
            quiz.answer(session, "a guess")
            assert question is not None

        print(f"start+q+answer {ms(timed(step, scopes))}")

        # One server adds a card: the next start rebuilds the catalogue, reusing every unchanged card.
        store.ingest(
            [deck("guild_1.jsonl", "1", args.shared + args.per_space, args.per_space + 1)], encoder.encode
        )
        started = time.perf_counter()
        quiz.catalogue(refresh=True)
        print(f"rebuild        {time.perf_counter() - started:.2f} s after one space added a card (content version "
              "included; unchanged cards reused)")  # fmt: skip
        started = time.perf_counter()
        QuizService(store, encoder).catalogue()
        print(
            f"full build     {time.perf_counter() - started:.2f} s (a new service: vectors from the store's cache)"
        )
        store.close()


if __name__ == "__main__":
    main()
