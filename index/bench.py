"""What `tutor bench ask` measures: retrieval latency and throughput, against a plain baseline in the same
process (the command, its one-shot process timing and its progress display are ``tutor.bench``).

Baseline = what a first version would do: ``SentenceTransformer(...).encode`` + ``faiss.IndexFlatIP`` over
the questions. Ours = ``Retriever.ask`` end to end (cleaning, the adapted query encoder, FAISS, BM25, group
collapse, the trained ranker and calibrator). Every query text is made unique so the embedding cache never hides the encoder's cost; the
cache-hit path is reported separately.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import numpy as np

from knowledge.files import percentiles


class PhaseReporter(Protocol):
    """Who hears what a measurement is doing: ``phase(name, steps)`` yields the function to call after
    each step (``tutor.progress.Phases`` shows them on stderr)."""

    def phase(self, name: str, steps: int | None = None) -> AbstractContextManager[Callable[[], None]]: ...


class Quiet:
    """Nobody hears: the default of every measurement below."""

    @contextmanager
    def phase(self, name: str, steps: int | None = None) -> Iterator[Callable[[], None]]:
        yield lambda: None


QUIET = Quiet()


def benchmark_queries(n: int) -> list[str]:
    """``n`` unique query texts from the validation messages (ValueError when there are none)."""
    from index.evaluate import default_query_files, load_queries

    files = default_query_files()
    base = [q.query for path in files for q in load_queries(path)]
    if not base:
        raise ValueError("no benchmark queries: none of the validation message files exists")
    # Unique texts (suffix a counter) so neither implementation benefits from a cache.
    return [f"{base[i % len(base)]} {i}" for i in range(n)]


def bench_baseline(store, queries: list[str], phases: PhaseReporter = QUIET) -> dict:
    with phases.phase("baseline: loading sentence-transformers, embedding the questions"):
        import faiss
        from sentence_transformers import SentenceTransformer

        from index.encoder import default_model_dir

        model = SentenceTransformer(str(default_model_dir()), device="cpu")
        items = store.items()
        vectors = model.encode(
            [it.question for it in items], normalize_embeddings=True, convert_to_numpy=True
        )
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        for q in queries[:10]:
            index.search(model.encode([q], normalize_embeddings=True), 5)
    single = []
    with phases.phase(f"baseline: {len(queries)} queries one at a time", len(queries)) as step:
        for q in queries:
            start = time.perf_counter()
            index.search(model.encode([q], normalize_embeddings=True), 5)
            single.append((time.perf_counter() - start) * 1000)
            step()
    with phases.phase(f"baseline: {len(queries)} queries in one batch"):
        start = time.perf_counter()
        index.search(model.encode(queries, normalize_embeddings=True, batch_size=64), 5)
        batch_qps = len(queries) / (time.perf_counter() - start)
    return {"single_ms": percentiles(single), "batch_qps": round(batch_qps, 1)}


def bench_ours(retriever, queries: list[str], threads: int, phases: PhaseReporter = QUIET) -> dict:
    for q in queries[:10]:
        retriever.ask(q + " warmup")
    single = []
    with phases.phase(f"ours: {len(queries)} queries one at a time", len(queries)) as step:
        for q in queries:
            start = time.perf_counter()
            retriever.ask(q)
            single.append((time.perf_counter() - start) * 1000)
            step()
    cached = []
    with phases.phase(f"ours: {len(queries[:200])} cache hits", len(queries[:200])) as step:
        for q in queries[:200]:
            start = time.perf_counter()
            retriever.ask(q)
            cached.append((time.perf_counter() - start) * 1000)
            step()
    fresh = [q + " again" for q in queries]
    with phases.phase(f"ours: {len(fresh)} queries in one batch"):
        start = time.perf_counter()
        retriever.ask_many(fresh)
        batch_qps = len(fresh) / (time.perf_counter() - start)

    def concurrent_qps(ask, suffix: str) -> float:
        texts = [q + suffix for q in queries]
        chunks = [texts[i::threads] for i in range(threads)]
        barrier = threading.Barrier(threads + 1)

        def worker(chunk: list[str]) -> None:
            barrier.wait()
            for q in chunk:
                ask(q)

        pool = [threading.Thread(target=worker, args=(c,)) for c in chunks]
        for t in pool:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in pool:
            t.join()
        return len(texts) / (time.perf_counter() - start)

    def unbatched(text: str):
        # Same pipeline without micro-batching: each caller encodes its own query.
        return retriever.ask_many([text])[0]

    with phases.phase(f"ours: {len(queries)} queries from {threads} threads"):
        concurrent = concurrent_qps(retriever.ask, " concurrently")
    with phases.phase(f"ours: {len(queries)} queries from {threads} threads, unbatched"):
        concurrent_unbatched = concurrent_qps(unbatched, " unbatched")
    return {
        "single_ms": percentiles(single),
        "cache_hit_ms": percentiles(cached),
        "batch_qps": round(batch_qps, 1),
        f"concurrent_{threads}_threads_qps": round(concurrent, 1),
        f"concurrent_{threads}_threads_unbatched_qps": round(concurrent_unbatched, 1),
    }


def bench_scale(store, encoder, n: int, queries: int = 200, seed: int = 0) -> dict:
    """n synthetic vectors clustered around the real items' embeddings: IVF build, memory, speed, recall."""
    import resource

    import faiss

    from index.vector import VectorIndex

    rng = np.random.default_rng(seed)
    items = store.items()
    real = encoder.encode([f"{it.question} {it.answer}" for it in items])
    # Each synthetic item: a real embedding plus noise of the size that separates real paraphrases
    # (cosine ~0.6-0.8 to its centre), renormalised.
    centres = real[rng.integers(0, len(real), n)]
    noise = rng.normal(0, 0.045, size=(n, real.shape[1])).astype(np.float32)
    vectors = centres + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    index = VectorIndex.build(vectors, ids, kind="ivf")
    build_s = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    probe = encoder.encode(benchmark_queries(queries))
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(probe, 10)

    def measure(nprobe: int) -> tuple[list[float], float]:
        index.index.nprobe = nprobe
        faiss.omp_set_num_threads(1)
        latencies, found = [], []
        for q in probe:
            start = time.perf_counter()
            found.append(index.search(q[None, :], 10).ids[0])
            latencies.append((time.perf_counter() - start) * 1000)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        return latencies, float(
            np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        )

    chosen = index.nprobe
    sweep = {}
    for nprobe in sorted({max(1, chosen // 4), max(1, chosen // 2), chosen, chosen * 2}):
        lat, rec = measure(nprobe)
        sweep[nprobe] = {"p50_ms": percentiles(lat)["p50"], "recall_at_10": round(rec, 4)}
    latencies, recall = measure(chosen)
    return {
        "n": n,
        "kind": index.kind,
        "nlist": int(index.index.nlist),
        "nprobe": index.nprobe,
        "build_s": round(build_s, 1),
        "vectors_mb": round(vectors.nbytes / 2**20, 1),
        "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "query_ms": percentiles(latencies),
        "recall_at_10": round(recall, 4),
        "nprobe_sweep": sweep,
    }


# --- spaces: many servers' cards in one index ---------------------------------------------------------
def space_decks(shared: list, servers: int, cards: int, pool_size: int = 2000, seed: int = 0) -> list:
    """``servers`` decks of ``cards`` cards each, as a space's documents (``guild_<n>.jsonl``).

    Cards are drawn from a pool of ``pool_size`` distinct texts made from the shared notes ("... (course
    notes, part 2)"), so each text sits in many spaces at once (the hardest case for a leak: the same
    question, another space's card) and embedding costs the pool, not every card.
    """
    import hashlib
    import json

    from knowledge.models import DocumentMeta, Entry, ParsedDocument

    base = [it for it in shared if it.servable and it.scope is None]
    if not base:
        raise ValueError("the shared notes have no servable items to make cards from")
    pool = [
        (
            f"{base[j % len(base)].question} (course notes, part {j // len(base) + 1})",
            f"{base[j % len(base)].answer} (See part {j // len(base) + 1} of the course notes.)",
        )
        for j in range(pool_size)
    ]
    rng = np.random.default_rng(seed)
    decks = []
    for server in range(1, servers + 1):
        picks = rng.choice(pool_size, size=min(cards, pool_size), replace=False)
        pairs = [pool[j] for j in picks]
        entries = tuple(Entry(q, a, n) for n, (q, a) in enumerate(pairs, 1))
        digest = hashlib.sha256(json.dumps(pairs).encode()).hexdigest()
        key = str(900_000 + server)
        meta = DocumentMeta(source=f"guild_{key}.jsonl", title=f"server {server} cards", layout="jsonl")
        decks.append(ParsedDocument(meta, entries, digest, "discord", key))
    return decks


def bench_spaces(
    retriever, queries: int = 300, seed: int = 0, per_server: int = 3, phases: PhaseReporter = QUIET
) -> dict:
    """Scoped (a server's) against unscoped (direct messages: the shared notes) questions, same run.

    Servers are drawn at random, each asking ``per_server`` questions in a row (a class asks several): one
    of its own cards, another server's card, a shared note; each is asked in that server and in direct
    messages (distinct texts, so no cache helps either; the order alternates). A server's first question
    after a reload also opens its lexical view (its cards beside the shared notes), reported apart. Every answer of both is checked: its entry, citations and alternatives must be
    shared or the asking server's. ``search`` times the candidate search and ranking alone (query vectors
    computed beforehand), where scoping does its work.
    """
    from knowledge.scope import Scope

    kb = retriever._kb
    scope_of = {item_id: item.scope for item_id, item in kb.items.items()}
    by_space: dict[str, list] = {}
    for item in kb.items.values():
        if item.scope is not None and item.servable:
            by_space.setdefault(item.scope, []).append(item)
    spaces = sorted(by_space)
    if len(spaces) < 2:
        raise ValueError("the benchmark needs at least two servers with cards")
    shared = [it for it in kb.items.values() if it.scope is None and it.servable]
    rng = np.random.default_rng(seed)
    rounds = []
    drawn = [spaces[j] for j in rng.permutation(len(spaces))]
    for i in range(queries):
        space = drawn[(i // per_server) % len(drawn)]
        kind = ("own card", "another server's card", "shared note")[i % 3]
        if kind == "own card":
            item = by_space[space][rng.integers(len(by_space[space]))]
        elif kind == "another server's card":
            other = spaces[(spaces.index(space) + 1 + rng.integers(len(spaces) - 1)) % len(spaces)]
            item = by_space[other][rng.integers(len(by_space[other]))]
        else:
            item = shared[rng.integers(len(shared))]
        rounds.append((space, kind, item))

    leaks: list[dict] = []
    checked = 0

    def check(answer, scope: Scope, text: str) -> None:
        nonlocal checked
        shown = (
            {answer.item_id}
            | {c.item_id for c in answer.citations}
            | {a.item_id for a in answer.alternatives}
        )
        for item_id in shown - {None}:
            checked += 1
            if not scope.sees(scope_of.get(item_id)):
                leaks.append(
                    {"asked_in": str(scope), "item": item_id, "its_space": scope_of.get(item_id), "q": text}
                )

    for space, _kind, item in rounds[:10]:  # warm up both paths
        retriever.ask(f"{item.question} warm", Scope.of(space))
        retriever.ask(f"{item.question} warm", Scope.shared())
    scoped_ms, shared_ms = [], []
    first = [i % per_server == 0 for i in range(len(rounds))]  # a server's first question
    own_served = own_asked = 0
    with phases.phase(f"spaces: {len(rounds)} questions, each in a server and in DMs", len(rounds)) as step:
        for i, (space, kind, item) in enumerate(rounds):
            scope = Scope.of(space)
            order = ((scope, scoped_ms, "s"), (Scope.shared(), shared_ms, "d"))
            for where, sink, tag in order if i % 2 == 0 else order[::-1]:
                text = f"{item.question} ({tag}{i})"
                start = time.perf_counter()
                answer = retriever.ask(text, where)
                sink.append((time.perf_counter() - start) * 1000)
                check(answer, where, text)
                if where is scope and kind == "own card":
                    own_asked += 1
                    own_served += answer.item_id == item.id
            step()

    # Candidate search and ranking alone, from the same query vectors, every server's view cold again.
    retriever.reload()
    kb = retriever._kb
    texts = [retriever._clean(f"{item.question} (v{i})", kb) for i, (_, _, item) in enumerate(rounds)]
    vectors = retriever.query_encoder.encode(texts)
    search_scoped, search_shared = [], []
    with phases.phase(f"spaces: {len(rounds)} searches without the encoder", len(rounds)) as step:
        for (space, _kind, _item), text, vector in zip(rounds, texts, vectors, strict=True):
            for scope, sink in ((Scope.of(space), search_scoped), (Scope.shared(), search_shared)):
                start = time.perf_counter()
                scoring = retriever._score(kb, text, vector, scope)
                sink.append((time.perf_counter() - start) * 1000)
                for _, member in scoring.groups:
                    checked += 1
                    if not scope.sees(member.scope):
                        leaks.append({"asked_in": str(scope), "item": member.id, "its_space": member.scope})
            step()

    def split(samples: list[float], want: bool) -> list[float]:
        return [ms for ms, is_first in zip(samples, first, strict=True) if is_first == want]

    def compare(scoped: list[float], unscoped: list[float]) -> dict:
        """p50s in a server and in DMs, their ratio: over all questions, a server's first, its later."""
        a, b = percentiles(scoped), percentiles(unscoped)
        report = {"scoped": a, "unscoped": b, "p50_ratio": round(a["p50"] / b["p50"], 3)}
        for name, want in (("first_question_of_a_server", True), ("later_questions", False)):
            pa, pb = percentiles(split(scoped, want)), percentiles(split(unscoped, want))
            ratio = round(pa["p50"] / pb["p50"], 3)
            report[name] = {
                "scoped_p50": pa["p50"],
                "unscoped_p50": pb["p50"],
                "p50_ratio": ratio,
                "n": pa["n"],
            }
        return report

    return {
        "servers": len(spaces),
        "server_cards": sum(len(v) for v in by_space.values()),
        "shared_items": len(shared),
        "questions": len(rounds),
        "ask_ms": compare(scoped_ms, shared_ms),
        "search_ms": compare(search_scoped, search_shared),
        "own_card_served": f"{own_served}/{own_asked}",
        "entries_checked": checked,
        "leaks": len(leaks),
        "leak_examples": leaks[:5],
    }
