"""`tutor bench ask`: retrieval latency and throughput, against a plain baseline in the same process.

Baseline = what a first version would do: ``SentenceTransformer(...).encode`` + ``faiss.IndexFlatIP`` over
the questions. Ours = ``Retriever.ask`` end to end (cleaning, the adapted query encoder, FAISS, BM25, group
collapse, the trained ranker and calibrator). Every query text is made unique so the embedding cache never hides the encoder's cost; the
cache-hit path is reported separately.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np

from knowledge.files import percentiles


class Phases:
    """What `tutor bench ask` is doing, on stderr (stdout keeps only the report).

    On a terminal each phase is a rich progress bar (queries done, elapsed time) that leaves one line with
    its time; piped, each phase is one short line as it starts. A bar advances between timed calls, never
    inside one, and redraws 4 times a second, so the figures are measured as before.
    """

    def __init__(self, total: int = 0, stream=None, enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = total
        self.done = 0

    @contextmanager
    def phase(self, name: str, steps: int | None = None) -> Iterator[Callable[[], None]]:
        """A phase of ``steps`` steps (None: not counted); yields the function to call after each step."""
        if not self.enabled:
            yield lambda: None
            return
        self.done += 1
        label = f"[{self.done}/{self.total}] {name}" if self.total else name
        if not self.live:
            print(f"bench ask {label}", file=self.stream, flush=True)
            yield lambda: None
            return
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

        console = Console(file=self.stream, highlight=False)
        counted = (BarColumn(), MofNCompleteColumn()) if steps else ()
        started = time.perf_counter()
        with Progress(
            SpinnerColumn(),
            "{task.description}",
            *counted,
            TimeElapsedColumn(),
            console=console,
            transient=True,
            refresh_per_second=4,
        ) as bar:
            task = bar.add_task(escape(label), total=steps)
            yield lambda: bar.advance(task)
        console.print(f"[green]done[/] {escape(label)} [dim]({time.perf_counter() - started:.1f} s)[/]")


QUIET = Phases(enabled=False)


def _queries(n: int) -> list[str]:
    from index.evaluate import default_query_files, load_queries

    files = default_query_files()
    base = [q.query for path in files for q in load_queries(path)]
    if not base:
        raise click.ClickException("no benchmark queries: none of the validation message files exists")
    # Unique texts (suffix a counter) so neither implementation benefits from a cache.
    return [f"{base[i % len(base)]} {i}" for i in range(n)]


def bench_baseline(store, queries: list[str], phases: Phases = QUIET) -> dict:
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


def bench_ours(retriever, queries: list[str], threads: int, phases: Phases = QUIET) -> dict:
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


def bench_one_shot(data_dir: Path, runs: int = 5, phases: Phases = QUIET) -> dict:
    """Wall time of a whole `tutor ask` process (index already built)."""
    env = {**os.environ, "TUTOR_DATA_DIR": str(data_dir)}
    exe = [sys.executable, "-m", "tutor.cli", "ask", "what is a receptive field"]
    walls = []
    with phases.phase(f"one-shot: {runs} `tutor ask` processes", runs) as step:
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(exe, env=env, check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
            step()
    return {"p50_s": round(statistics.median(walls), 3), "max_s": round(max(walls), 3), "runs": runs}


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
    probe = encoder.encode(_queries(queries))
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


@click.command("ask")
@click.option("-n", "--queries", "n_queries", default=500, show_default=True, help="Unique queries to time.")
@click.option("--threads", default=16, show_default=True, help="Concurrent callers for the throughput test.")
@click.option(
    "--no-baseline", is_flag=True, help="Skip the sentence-transformers baseline (~10 s to import)."
)
@click.option("--scale", type=int, default=0, help="Also benchmark N synthetic items (e.g. 1000000).")
@click.option("--json", "as_json", is_flag=True)
def bench_ask(n_queries: int, threads: int, no_baseline: bool, scale: int, as_json: bool) -> None:
    """Warm latency p50/p99, batch and concurrent throughput, one-shot process time (and --scale N).

    The report goes to stdout; what is running goes to stderr (a progress bar per phase on a terminal, a
    line per phase when piped). A full run takes a few minutes on two cores.
    """
    from tutor.services import open_retriever
    from tutor.settings import load_settings

    settings = load_settings()
    phases = Phases(total=7 + (0 if no_baseline else 3) + (1 if scale else 0))
    with phases.phase("loading the retrieval model and the index"):
        retriever = open_retriever(settings.data_dir)
    queries = _queries(n_queries)
    report: dict = {"queries": n_queries, "cpu_count": os.cpu_count()}
    report["ours"] = bench_ours(retriever, queries, threads, phases)
    report["one_shot_process"] = bench_one_shot(settings.data_dir, phases=phases)
    if not no_baseline:
        report["baseline"] = bench_baseline(retriever.store, queries, phases)
        report["speedup_p50"] = round(
            report["baseline"]["single_ms"]["p50"] / report["ours"]["single_ms"]["p50"], 2
        )
        report["speedup_batch"] = round(report["ours"]["batch_qps"] / report["baseline"]["batch_qps"], 2)
    if scale:
        with phases.phase(f"scale: {scale} synthetic items (IVF build, nprobe sweep)"):
            report["scale"] = bench_scale(retriever.store, retriever.encoder, scale)
    click.echo(json.dumps(report, indent=None if as_json else 2))
