"""`tutor quiz train`: fit the grader's trees on graded student answers and write ``model/`` with a manifest.

Every answer becomes two training rows: one whose neighbours come from the *other* authors' answers to the
same reference (what a new student meets), one with no neighbours at all (a new or corrected entry); the
grade trees learn from these. A fifth of the answers, drawn with the seed, are also set against an
unrelated card's reference: the off-topic gate learns to tell those from real answers, and what it flags is
wrong (an answer meant for something else, or for nothing, "banana", earns nothing). The settings are fixed
in ``GraderSettings`` (the far-error cost is the retrieval model's 4, not tuned); the report's figures are
out-of-fold, folds by author. Deterministic: the same data gives the same files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.errors import NotFound
from knowledge.files import sha256
from knowledge.models import CLOZE
from knowledge.overrides import load_overrides
from knowledge.quiz.calibrate import ANSWERS_DIR, Labelled, load_labels
from knowledge.quiz.grading import VERDICTS, Grader
from knowledge.quiz.learned import (
    FEATURES,
    MODEL_FILES,
    AnswerBank,
    Forest,
    bank_key,
    case_features,
    decide,
    reference_key,
)
from knowledge.scope import Scope

FEEDBACK_AUTHOR = "feedback"  # confirmed contests: one more author for the folds


@dataclass(frozen=True)
class GraderSettings:
    rounds: int = 150
    learning_rate: float = 0.05
    max_depth: int = 3
    cost_far: float = 4.0  # correct graded wrong, or wrong graded correct, against 1 for a one-step miss
    misplaced_share: float = 0.2  # answers also graded against an unrelated card, to teach the gate
    gate_cost_on_correct: float = 0.002  # the off-topic gate may fail 1 in 500 real correct answers
    unrelated_below: float = 0.5  # "unrelated": the two references' cosine is below this
    seed: int = 0


def answer_files(exclude: Sequence[str] = ()) -> list[Path]:
    """The blind authors' files, less ``exclude`` (author names such as "a4", the validation author)."""
    known = {p.stem: p for p in sorted(ANSWERS_DIR.glob("*.jsonl"))}
    unknown = sorted(set(exclude) - set(known))
    if unknown:
        raise ValueError(f"no answer file for {', '.join(unknown)}; authors: {', '.join(known)}")
    return [p for stem, p in known.items() if stem not in exclude]


def feedback_answers(store) -> list[Labelled]:
    """Contested grades an admin confirmed, as labelled answers (the item's current question, and its answer
    as the contest's quiz saw it: corrected for the space the session was in, ``knowledge.overrides``)."""
    overrides = load_overrides(store)
    out = []
    for row in store.db.query(
        "SELECT c.*, s.scope AS session_scope FROM grade_contests c"
        " LEFT JOIN quiz_sessions s ON s.id = c.session_id WHERE c.status = 'confirmed' ORDER BY c.id"
    ):
        try:
            item = store.item(row["item_id"])
        except NotFound:  # the item was deleted since: nothing to learn against
            continue
        correction = overrides.correction(Scope(row["session_scope"]), item.id)
        reference = correction.answer if correction is not None else item.answer
        if row["label"] not in VERDICTS or not reference:
            continue
        out.append(
            Labelled(
                item.source, item.n, item.question, reference, row["answer"], row["label"],
                CLOZE in item.flags, FEEDBACK_AUTHOR,
            )
        )  # fmt: skip
    return out


def data_hash(cases: Sequence[Labelled]) -> str:
    digest = hashlib.sha256()
    for c in cases:
        digest.update(json.dumps([c.author, c.reference, c.answer, c.label, c.cloze]).encode())
    return digest.hexdigest()


def embed_texts(encoder, cases: Sequence[Labelled]) -> dict[str, np.ndarray]:
    texts = sorted({t for c in cases for t in (c.reference, c.answer, c.question) if t})
    return dict(zip(texts, encoder.encode(texts), strict=True))


def build_bank(cases: Sequence[Labelled], vectors: dict[str, np.ndarray]) -> AnswerBank:
    cards = {c.reference: c.question for c in cases}
    references = sorted(cards, key=reference_key)
    row = {r: i for i, r in enumerate(references)}
    authors = sorted({c.author for c in cases})
    return AnswerBank(
        [reference_key(r) for r in references],
        [bank_key(cards[r]) for r in references],
        np.array([vectors[r] for r in references]),
        np.array([row[c.reference] for c in cases]),
        np.array([VERDICTS.index(c.label) for c in cases]),
        np.array([authors.index(c.author) for c in cases]),
        np.array([vectors[c.answer] for c in cases]),
        authors,
    )


def misplaced(
    cases: Sequence[Labelled], vectors: dict[str, np.ndarray], settings: GraderSettings
) -> list[Labelled]:
    """A seeded share of the answers, each moved to an unrelated card and labelled wrong there."""
    rng = np.random.default_rng(settings.seed)
    cards = sorted({(c.reference, c.question, c.cloze) for c in cases})
    R = np.array([vectors[r] for r, _, _ in cards])
    out = []
    for i in rng.permutation(len(cases))[: int(len(cases) * settings.misplaced_share)]:
        c = cases[int(i)]
        unrelated = np.flatnonzero((R @ vectors[c.reference]) < settings.unrelated_below)
        if not len(unrelated):
            continue
        reference, question, cloze = cards[int(rng.choice(unrelated))]
        out.append(Labelled(c.source, c.n, question, reference, c.answer, "wrong", cloze, c.author))
    return out


def training_rows(
    grader: Grader, cases: Sequence[Labelled], vectors: dict[str, np.ndarray], bank: AnswerBank
) -> tuple[np.ndarray, np.ndarray]:
    """Features with neighbours from the other authors, then the same answers without neighbours."""
    rules = grader.grade_many([(c.reference, c.answer, c.cloze) for c in cases], [c.question for c in cases])
    with_bank, without = [], []
    for c, rule in zip(cases, rules, strict=True):
        author = bank.authors.index(c.author)
        args = (bank, vectors, rule, c.reference, c.answer, c.question, c.cloze)
        with_bank.append(case_features(*args, exclude_author=author))
        without.append(case_features(*args, neighbours=False))
    y = np.array([VERDICTS.index(c.label) for c in cases])
    return np.array(with_bank + without), np.concatenate([y, y])


@dataclass(frozen=True)
class TrainingData:
    """Rows: the answers with neighbours, the same without, then the moved answers (both ways)."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray  # the author of each row, for folds by author
    is_moved: np.ndarray  # rows of answers moved to an unrelated card
    answers: int
    moved: int
    bank: AnswerBank
    vectors: dict[str, np.ndarray]


def training_data(cases: Sequence[Labelled], encoder, settings: GraderSettings) -> TrainingData:
    vectors = embed_texts(encoder, cases)
    bank = build_bank(cases, vectors)
    moved = misplaced(cases, vectors, settings)
    grader = Grader(encoder)
    X_real, y_real = training_rows(grader, cases, vectors, bank)
    X_moved, y_moved = training_rows(grader, moved, vectors, bank)
    author_of = {a: i for i, a in enumerate(bank.authors)}
    groups = np.concatenate([np.tile([author_of[c.author] for c in cases], 2),
                             np.tile([author_of[c.author] for c in moved], 2)])  # fmt: skip
    X = np.vstack([X_real, X_moved]) if len(moved) else X_real
    is_moved = np.arange(len(X)) >= len(X_real)
    return TrainingData(
        X, np.concatenate([y_real, y_moved]), groups, is_moved, len(cases), len(moved), bank, vectors
    )


def fit_trees(X: np.ndarray, y: np.ndarray, settings: GraderSettings, classes: int = len(VERDICTS)):
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=settings.rounds, learning_rate=settings.learning_rate, max_depth=settings.max_depth,
        early_stopping=False, random_state=settings.seed,
    ).fit(X, y)  # fmt: skip
    if list(model.classes_) != list(range(classes)):
        raise ValueError("training needs answers of every grade (correct, partly and wrong)")
    return model


@dataclass(frozen=True)
class FittedGrader:
    """The grade trees (on real answers) and the off-topic gate (real answers against moved ones)."""

    grades: Any
    gate: Any | None
    gate_threshold: float
    columns: tuple[int, ...]

    def verdicts(self, X: np.ndarray, cost_far: float) -> np.ndarray:
        M = X[:, list(self.columns)]
        out = decide(self.grades.predict_proba(M), cost_far)
        if self.gate is not None:
            out[self.gate.predict_proba(M)[:, 1] > self.gate_threshold] = VERDICTS.index("wrong")
        return out


def fit_grader(
    data: TrainingData,
    settings: GraderSettings,
    rows: np.ndarray | None = None,
    columns=None,
    gate: bool = True,
) -> FittedGrader:
    """Fit both parts on ``rows`` (default all); the gate's cut-off comes from its out-of-fold scores.

    The gate may send at most ``settings.gate_cost_on_correct`` of the real correct answers to "wrong"
    (out of fold, by author): a price set beforehand, a fraction of the 3% the issue allows.
    """
    rows = np.ones(len(data.y), bool) if rows is None else rows
    columns = tuple(range(len(FEATURES))) if columns is None else tuple(columns)
    X, y, groups = data.X[rows][:, list(columns)], data.y[rows], data.groups[rows]
    moved = data.is_moved[rows]
    grades = fit_trees(X[~moved], y[~moved], settings)
    if not gate or not moved.any():
        return FittedGrader(grades, None, float("inf"), columns)
    scores = np.zeros(len(y))
    for held in np.unique(groups):
        test = groups == held
        scores[test] = fit_trees(X[~test], moved[~test].astype(int), settings, classes=2).predict_proba(
            X[test]
        )[:, 1]
    real_correct = ~moved & (y == VERDICTS.index("correct"))
    threshold = float(np.quantile(scores[real_correct], 1.0 - settings.gate_cost_on_correct))
    return FittedGrader(grades, fit_trees(X, moved.astype(int), settings, classes=2), threshold, columns)


def figures(verdicts: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    def share(label: int, verdict: int) -> float:
        mine = labels == label
        return round(float((verdicts[mine] == verdict).mean()), 3) if mine.any() else 0.0

    return {
        "three_way": round(float((verdicts == labels).mean()), 3),
        "correct_vs_not": round(float(((verdicts == 0) == (labels == 0)).mean()), 3),
        "correct_graded_wrong": share(0, 2),
        "wrong_graded_correct": share(2, 0),
    }


def train_grader(
    out_dir: Path,
    cases: Sequence[Labelled],
    encoder,
    settings: GraderSettings | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> dict:
    """Fit and write the grader to ``out_dir``; returns the report also stored in the manifest."""
    settings = settings or GraderSettings()
    cases = list(cases)
    authors = sorted({c.author for c in cases})
    if len(authors) < 2 or any(not a for a in authors):
        raise ValueError(
            "training needs answers from at least two named authors (neighbours come from others)"
        )
    started = time.perf_counter()
    progress(f"embedding {len(cases)} answers by {len(authors)} authors")
    data = training_data(cases, encoder, settings)
    n, m = data.answers, data.moved
    progress(f"out-of-fold check, one fold per author ({len(authors)}); {m} answers moved to other cards")
    oof = np.zeros(len(data.y), int)
    for held in range(len(authors)):
        test = data.groups == held
        oof[test] = fit_grader(data, settings, rows=~test).verdicts(data.X[test], settings.cost_far)
    report = {
        "answers": n,
        "authors": authors,
        "misplaced": m,
        "oof_with_examples": figures(oof[:n], data.y[:n]),
        "oof_without_examples": figures(oof[n : 2 * n], data.y[n : 2 * n]),
        "oof_misplaced_graded_wrong": round(float((oof[2 * n :] == 2).mean()), 3) if m else None,
    }
    progress(f"out of fold: {report['oof_with_examples']}; new entries: {report['oof_without_examples']}")
    fitted = fit_grader(data, settings)
    forest, gate = Forest.from_sklearn(fitted.grades), Forest.from_sklearn(fitted.gate)
    for exported, model in ((forest, fitted.grades), (gate, fitted.gate)):
        drift = float(np.abs(exported.probabilities(data.X) - model.predict_proba(data.X)).max())
        if drift > 1e-6:
            raise RuntimeError(f"exported trees disagree with the fitted model by {drift}")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        np.savez_compressed(staging / "forest.npz", **forest.arrays())
        np.savez_compressed(staging / "gate.npz", **gate.arrays())
        data.bank.save(staging / "bank.npz")
        config = {
            "features": list(FEATURES), "cost_far": settings.cost_far, "verdicts": list(VERDICTS),
            "gate_threshold": fitted.gate_threshold,
        }  # fmt: skip
        (staging / "model.json").write_text(json.dumps(config, indent=2) + "\n")
        report["seconds"] = round(time.perf_counter() - started, 1)
        manifest = {
            "encoder": encoder.model_id,
            "data_hash": data_hash(cases),
            "settings": asdict(settings),
            "files": {name: sha256(staging / name) for name in MODEL_FILES},
            "report": report,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _replace_dir(staging, out_dir)  # a grader is replaced whole or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"done in {report['seconds']} s: {out_dir}")
    return report


def _replace_dir(staging: Path, target: Path) -> None:
    """Swap ``staging`` in for ``target``: the model files are written before any of them is replaced."""
    old = target.with_name(f".{target.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def load_training(exclude: Sequence[str] = (), extra: Sequence[Labelled] = ()) -> list[Labelled]:
    """The blind authors' answers (less ``exclude``) plus ``extra`` (confirmed contests)."""
    cases = [c for path in answer_files(exclude) for c in load_labels(path)]
    return cases + [replace(c, author=c.author or FEEDBACK_AUTHOR) for c in extra]


__all__ = [
    "FEEDBACK_AUTHOR",
    "GraderSettings",
    "answer_files",
    "build_bank",
    "embed_texts",
    "feedback_answers",
    "figures",
    "fit_grader",
    "fit_trees",
    "load_training",
    "misplaced",
    "train_grader",
    "training_data",
]
