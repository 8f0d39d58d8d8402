"""What `tutor bench grade` measures: grading latency of graders (the trained one against the rule grader),
in the same process (the command is ``tutor.bench``).

Each grades the same answers, one call per answer as the quiz does, warm (model loaded, references seen).
Every answer text is made unique so that no vector cache hides the encoder's cost.
"""

from __future__ import annotations

import time
from typing import Any

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


def bench_cases(n_answers: int) -> list:
    """``n_answers`` labelled answers spread over the blind authors' files (``knowledge.quiz.calibrate``)."""
    from knowledge.quiz.calibrate import ANSWERS_DIR, load_labels

    cases = [c for path in sorted(ANSWERS_DIR.glob("*.jsonl")) for c in load_labels(path)]
    return cases[:: max(1, len(cases) // n_answers)][:n_answers]


def time_graders(graders: dict[str, Any], cases: list) -> dict[str, dict]:
    """Per grader: warm single-answer latency percentiles (``single_ms``) and batch answers/s."""
    result = {}
    for name, grader in graders.items():
        _time_each(grader, cases, "warm-up")  # references and questions cached, code paths warm
        result[name] = {
            "single_ms": percentiles(_time_each(grader, cases, "timed")),
            "batch_per_s": round(_throughput(grader, cases, "batched"), 1),
        }
    return result
