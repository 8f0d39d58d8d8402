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
