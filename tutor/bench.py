"""`tutor bench ...`: benchmark subcommands, each owned by the package it measures."""

from __future__ import annotations

import click

from tutor.cli import LazyGroup

BENCHES: dict[str, tuple[str, str]] = {
    "ask": ("index.bench:bench_ask", "Retrieval latency/throughput against a plain baseline."),
    "demo": ("engine.bench:bench_demo", "Per-demo p50, cold and warm."),
    "grade": ("knowledge.quiz.bench:bench_grade", "Grading latency: trained grader against the rule grader."),
}


@click.group(cls=LazyGroup, lazy_subcommands=BENCHES)
def bench() -> None:
    """Benchmarks: medians, with a baseline measured in the same process."""
