"""Calibrate and report the grader on the hand-labelled answers in ``data/grading_labels.jsonl``.

Each line names an item by (source, n) so the labels follow the bundled documents; the reference answer and
the cloze flag are read from the sources themselves, so calibration needs no store.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from knowledge.flags import static_flags
from knowledge.loader import SOURCES_DIR, collect_paths, load_document
from knowledge.models import CLOZE
from knowledge.quiz.grading import VERDICTS, Grade, Grader, Thresholds, verdict_for

LABELS = Path(__file__).parent / "data" / "grading_labels.jsonl"
ANSWERS_DIR = Path(__file__).parent / "data" / "answers"  # blind authors' graded answers (README there)
FRESH_DIR = Path(__file__).parent / "data" / "fresh"  # written after the design was frozen; never trained on


@dataclass(frozen=True)
class Labelled:
    source: str
    n: int
    question: str
    reference: str
    answer: str
    label: str
    cloze: bool
    author: str = ""  # who wrote the answer (the blind authors' files say)


@dataclass(frozen=True)
class Report:
    thresholds: Thresholds | None  # None: the trained grader
    accuracy: float
    n: int
    confusion: dict[str, dict[str, int]]  # label -> verdict -> count
    errors: tuple[tuple[Labelled, Grade], ...]

    @property
    def correct_vs_not(self) -> float:
        """Accuracy of "correct" against "partly or wrong"."""
        c = self.confusion
        hits = c["correct"]["correct"] + sum(
            c[a][b] for a in ("partly", "wrong") for b in ("partly", "wrong")
        )
        return hits / self.n

    @property
    def correct_graded_wrong(self) -> float:
        return self.confusion["correct"]["wrong"] / max(1, sum(self.confusion["correct"].values()))

    @property
    def wrong_graded_correct(self) -> float:
        return self.confusion["wrong"]["correct"] / max(1, sum(self.confusion["wrong"].values()))

    def figures(self) -> dict:
        return {
            "n": self.n,
            "three_way": round(self.accuracy, 3),
            "correct_vs_not": round(self.correct_vs_not, 3),
            "correct_graded_wrong": round(self.correct_graded_wrong, 3),
            "wrong_graded_correct": round(self.wrong_graded_correct, 3),
            "confusion": self.confusion,
        }

    def format(self, show_errors: bool = True) -> str:
        t = self.thresholds
        setting = (
            f"semantic weight {t.semantic_weight:.2f}, correct >= {t.correct_min:.2f},"
            f" partly >= {t.partly_min:.2f}, cloze leniency {t.cloze_leniency:.2f}"
            if t is not None
            else "trained grader"
        )
        lines = [
            f"{self.n} labelled answers; {setting}",
            f"three-way accuracy {self.accuracy:.3f}; correct vs not {self.correct_vs_not:.3f}; correct graded"
            f" wrong {self.correct_graded_wrong:.3f}; wrong graded correct {self.wrong_graded_correct:.3f}",
            "confusion (rows: label, columns: verdict)",
            "           " + " ".join(f"{v:>8}" for v in VERDICTS),
        ]
        for label in VERDICTS:
            lines.append(f"  {label:>8} " + " ".join(f"{self.confusion[label][v]:>8}" for v in VERDICTS))
        for case, grade in self.errors if show_errors else ():
            lines.append(
                f"  miss: {case.source[:3]}#{case.n} {case.answer!r}: labelled {case.label}, graded "
                f"{grade.verdict} (score {grade.score:.2f}, sim {grade.similarity}, cov {grade.coverage:.2f},"
                f" {grade.rule})"
            )
        return "\n".join(lines)


def load_labels(path: Path = LABELS) -> list[Labelled]:
    entries = {}
    for doc_path in collect_paths([SOURCES_DIR]):
        doc = load_document(doc_path)
        for n, entry in enumerate(doc.entries, start=1):
            entries[(doc.meta.source, n)] = entry
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        entry = entries[(row["source"], row["n"])]
        cases.append(
            Labelled(
                row["source"], row["n"], entry.question, entry.answer, row["answer"], row["label"],
                CLOZE in static_flags(entry.question, entry.answer), str(row.get("author", "")),
            )
        )  # fmt: skip
    return cases


def evaluate(grader, cases: list[Labelled]) -> Report:
    """Grade every case with ``grader`` (the rule grader or the trained one) and compare with its label."""
    grades = grader.grade_many([(c.reference, c.answer, c.cloze) for c in cases], [c.question for c in cases])
    return _report(getattr(grader, "thresholds", None), cases, grades)


def _report(thresholds: Thresholds | None, cases: list[Labelled], grades: list[Grade]) -> Report:
    confusion = {label: dict.fromkeys(VERDICTS, 0) for label in VERDICTS}
    errors = []
    for case, grade in zip(cases, grades, strict=True):
        confusion[case.label][grade.verdict] += 1
        if grade.verdict != case.label:
            errors.append((case, grade))
    hits = sum(confusion[v][v] for v in VERDICTS)
    return Report(thresholds, hits / len(cases), len(cases), confusion, tuple(errors))


def search(grader: Grader, cases: list[Labelled]) -> Report:
    """Grid search over the blend weight, both thresholds and the cloze leniency, maximising accuracy.

    Among equally accurate settings the one farthest from flipping a verdict wins (largest summed distance
    of the scores to the nearest threshold), so the choice is not an arbitrary grid corner.
    """
    best: tuple[float, float, Report] | None = None
    grid = [x / 100 for x in range(20, 91, 2)]
    for weight in (0.4, 0.5, 0.6, 0.7, 0.8):
        weighted = grader.with_thresholds(Thresholds(weight, 0.6, 0.4, 0.0))
        grades = weighted.grade_many(
            [(c.reference, c.answer, c.cloze) for c in cases], [c.question for c in cases]
        )
        for lo, hi, slack in itertools.product(grid, grid, (0.0, 0.04, 0.08, 0.12)):
            if hi <= lo + 0.06:
                continue
            t = Thresholds(weight, hi, lo, slack)
            regraded = [
                Grade(
                    verdict_for(g.score, t, c.cloze, "polarity+" in g.rule) if "blend" in g.rule else g.verdict,
                    g.score, g.similarity, g.coverage, g.matched, g.missing, g.rule,
                )
                for c, g in zip(cases, grades, strict=True)
            ]  # fmt: skip
            report = _report(t, cases, regraded)
            margin = sum(
                min(
                    abs(g.score - hi + (slack if c.cloze else 0)),
                    abs(g.score - lo + (slack if c.cloze else 0)),
                )
                for c, g in zip(cases, regraded, strict=True)
                if "blend" in g.rule
            )
            if best is None or (report.accuracy, margin) > (best[0], best[1]):
                best = (report.accuracy, margin, report)
    assert best is not None
    return best[2]


def cross_validate(grader: Grader, cases: list[Labelled], folds: int = 5) -> float:
    """Accuracy of thresholds searched on the other folds (split by item): the out-of-sample estimate."""
    items = sorted({(c.source, c.n) for c in cases})
    hits = 0
    for fold in range(folds):
        held = set(items[fold::folds])
        train = [c for c in cases if (c.source, c.n) not in held]
        test = [c for c in cases if (c.source, c.n) in held]
        chosen = search(grader, train).thresholds
        report = evaluate(grader.with_thresholds(chosen), test)
        hits += round(report.accuracy * len(test))
    return hits / len(cases)


__all__ = [
    "ANSWERS_DIR",
    "FRESH_DIR",
    "LABELS",
    "Labelled",
    "Report",
    "cross_validate",
    "evaluate",
    "load_labels",
    "search",
]
