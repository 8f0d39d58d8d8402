"""`tutor bench grade`: grading latency of the trained grader against the rule grader, in the same process.

Both grade the same answers, one call per answer as the quiz does, warm (model loaded, references seen).
Every answer text is made unique so that no vector cache hides the encoder's cost.
"""

from __future__ import annotations

import json
import time

import click

from knowledge.files import percentiles


def _time_each(grader, cases, suffix: str) -> list[float]:
    out = []
    for c in cases:
        start = time.perf_counter()
        grader.grade(c.reference, f"{c.answer} {suffix}", question=c.question, cloze=c.cloze)
        out.append((time.perf_counter() - start) * 1000)
    return out


def _throughput(grader, cases, suffix: str) -> float:
    start = time.perf_counter()
    grader.grade_many(
        [(c.reference, f"{c.answer} {suffix}", c.cloze) for c in cases], [c.question for c in cases]
    )
    return len(cases) / (time.perf_counter() - start)


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
    from knowledge.quiz.calibrate import ANSWERS_DIR, load_labels
    from knowledge.quiz.grading import Grader
    from tutor.services import encoder, quiz_grader

    cases = [c for path in sorted(ANSWERS_DIR.glob("*.jsonl")) for c in load_labels(path)]
    cases = cases[:: max(1, len(cases) // n_answers)][:n_answers]
    graders = {"rules (baseline)": Grader(encoder()), "trained": quiz_grader()}
    result = {}
    for name, grader in graders.items():
        _time_each(grader, cases, "warm-up")  # references and questions cached, code paths warm
        result[name] = {
            "single_ms": percentiles(_time_each(grader, cases, "timed")),
            "batch_per_s": round(_throughput(grader, cases, "batched"), 1),
        }
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
