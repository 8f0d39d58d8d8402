"""`tutor bench ...`: the benchmark commands. What they measure is the measured package's own code
(``index.bench``, ``knowledge.quiz.bench``, ``engine.bench``), handed this process's services."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import click

from tutor import services
from tutor.cli import LazyGroup

BENCHES: dict[str, tuple[str, str]] = {
    "ask": ("tutor.bench:bench_ask", "Retrieval latency/throughput against a plain baseline."),
    "demo": ("engine.bench:bench_demo", "Per-demo p50, cold and warm."),
    "grade": ("tutor.bench:bench_grade", "Grading latency: trained grader against the rule grader."),
}


@click.group(cls=LazyGroup, lazy_subcommands=BENCHES)
def bench() -> None:
    """Benchmarks: medians, with a baseline measured in the same process."""


# --- ask ------------------------------------------------------------------------------------------------
def bench_one_shot(data_dir: Path, runs: int = 5, phases=None) -> dict:
    """Wall time of a whole `tutor ask` process (index already built)."""
    from index.bench import QUIET

    phases = phases if phases is not None else QUIET
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


@click.command("ask")
@click.option("-n", "--queries", "n_queries", default=500, show_default=True, help="Unique queries to time.")
@click.option("--threads", default=16, show_default=True, help="Concurrent callers for the throughput test.")
@click.option(
    "--no-baseline", is_flag=True, help="Skip the sentence-transformers baseline (~10 s to import)."
)
@click.option("--scale", type=int, default=0, help="Also benchmark N synthetic items (e.g. 1000000).")
@click.option(
    "--servers",
    type=click.IntRange(0, 10_000),
    default=0,
    help="Instead: N servers' cards in one index (a scratch store), scoped vs unscoped questions.",
)
@click.option(
    "--cards", type=click.IntRange(1, 1000), default=100, show_default=True, help="Cards per server."
)
@click.option("--json", "as_json", is_flag=True)
def bench_ask(
    n_queries: int, threads: int, no_baseline: bool, scale: int, servers: int, cards: int, as_json: bool
) -> None:
    """Warm latency p50/p99, batch and concurrent throughput, one-shot process time (and --scale N).

    With ``--servers N --cards M``: a scratch store of the bundled notes plus N servers' M cards each, and
    every question asked in a server and in direct messages, each answer checked for another server's
    entries (``index.bench.bench_spaces``).

    The report goes to stdout; what is running goes to stderr (a progress bar per phase on a terminal, a
    line per phase when piped). A full run takes a few minutes on two cores.
    """
    from index.bench import bench_baseline, bench_ours, bench_scale, benchmark_queries
    from tutor.progress import Phases

    if servers:
        report = _bench_servers(servers, cards, min(n_queries, 3000))
        click.echo(json.dumps(report, indent=None if as_json else 2))
        return

    root = services.for_command()
    phases = Phases(total=7 + (0 if no_baseline else 3) + (1 if scale else 0))
    with phases.phase("loading the retrieval model and the index"):
        retriever = root.retriever()
    try:
        queries = benchmark_queries(n_queries)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    report: dict = {"queries": n_queries, "cpu_count": os.cpu_count()}
    report["ours"] = bench_ours(retriever, queries, threads, phases)
    report["one_shot_process"] = bench_one_shot(root.settings.data_dir, phases=phases)
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


def _bench_servers(servers: int, cards: int, queries: int) -> dict:
    """The spaces benchmark over a scratch store in a temporary folder (removed after)."""
    import tempfile

    from index.bench import bench_spaces, space_decks
    from knowledge.loader import SOURCES_DIR, collect_paths, load_document
    from tutor.progress import Phases

    phases = Phases(total=6)
    with tempfile.TemporaryDirectory(prefix="tutor-bench-servers-") as tmp:
        store = services.open_store(Path(tmp))
        try:
            embed = services.entry_encoder(store).encode
            with phases.phase("ingesting the bundled notes"):
                store.ingest([load_document(p) for p in collect_paths((SOURCES_DIR,))], embed)
            decks = space_decks(store.items(), servers, cards)
            started = time.perf_counter()
            with phases.phase(f"ingesting {servers} servers' cards ({servers * cards} cards)"):
                store.ingest(decks, embed)
            ingest_s = time.perf_counter() - started
            started = time.perf_counter()
            with phases.phase("building the index"):
                retriever = services.retriever_over(store)
            build_s = time.perf_counter() - started
            report = bench_spaces(retriever, queries, phases=phases)
        finally:
            store.close()
    return {"ingest_cards_s": round(ingest_s, 1), "index_build_s": round(build_s, 1), **report}


# --- grade ----------------------------------------------------------------------------------------------
@click.command("grade")
@click.option(
    "-n",
    "--answers",
    "n_answers",
    type=click.IntRange(1, 2000),
    default=400,
    show_default=True,
    help="Answers to time.",
)
@click.option("--json", "as_json", is_flag=True)
def bench_grade(n_answers: int, as_json: bool) -> None:
    """Warm single-answer latency (p50/p99) and batch throughput: trained grader vs rule grader."""
    from knowledge.quiz.bench import bench_cases, time_graders
    from knowledge.quiz.grading import Grader

    graders = {"rules (baseline)": Grader(services.encoder()), "trained": services.quiz_grader()}
    result: dict = time_graders(graders, bench_cases(n_answers))
    ratio = result["trained"]["single_ms"]["p50"] / result["rules (baseline)"]["single_ms"]["p50"]
    result["p50_ratio_trained_to_rules"] = round(ratio, 2)
    if as_json:
        click.echo(json.dumps(result))
        return
    for name in graders:
        r = result[name]
        click.echo(
            f"{name:<17} one answer p50 {r['single_ms']['p50']:.2f} ms, p99 {r['single_ms']['p99']:.2f} ms"
            f" (n={r['single_ms']['n']}); batch {r['batch_per_s']:.0f} answers/s"
        )
    click.echo(f"trained / rules p50: {ratio:.2f}x")
