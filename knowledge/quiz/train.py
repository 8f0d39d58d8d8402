"""`tutor quiz train`: fit the grader's trees on graded student answers and write ``model/`` with a manifest.

Every answer becomes two training rows: one whose neighbours come from the *other* authors' answers to the
same reference (what a new student meets), one with no neighbours at all (a new or corrected entry). The
settings are fixed in ``GraderSettings`` (the far-error cost is the retrieval model's 4, not tuned); the
report's figures are out-of-fold, folds by author. Deterministic: the same data gives the same files.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from knowledge.models import CLOZE
from knowledge.quiz.calibrate import ANSWERS_DIR, Labelled, load_labels
from knowledge.quiz.grading import VERDICTS, Grader
from knowledge.quiz.learned import (
    FEATURES,
    MODEL_FILES,
    NO_NEIGHBOURS,
    AnswerBank,
    Forest,
    decide,
    feature_row,
    file_sha256,
    reference_key,
)

FEEDBACK_AUTHOR = "feedback"  # confirmed contests: one more author for the folds


@dataclass(frozen=True)
class GraderSettings:
    rounds: int = 150
    learning_rate: float = 0.05
    max_depth: int = 3
    cost_far: float = 4.0  # correct graded wrong, or wrong graded correct, against 1 for a one-step miss
    seed: int = 0


def answer_files(exclude: Sequence[str] = ()) -> list[Path]:
    """The blind authors' files, less ``exclude`` (author names such as "a4", the validation author)."""
    known = {p.stem: p for p in sorted(ANSWERS_DIR.glob("*.jsonl"))}
    unknown = sorted(set(exclude) - set(known))
    if unknown:
        raise ValueError(f"no answer file for {', '.join(unknown)}; authors: {', '.join(known)}")
    return [p for stem, p in known.items() if stem not in exclude]


def feedback_answers(store) -> list[Labelled]:
    """Contested grades an admin confirmed, as labelled answers (the item's current question and answer)."""
    out = []
    for row in store.db.query("SELECT * FROM grade_contests WHERE status = 'confirmed' ORDER BY id"):
        try:
            item = store.item(row["item_id"])
        except Exception:  # the item was deleted since: nothing to learn against
            continue
        if row["label"] not in VERDICTS or not item.answer:
            continue
        out.append(
            Labelled(
                item.source, item.n, item.question, item.answer, row["answer"], row["label"],
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
    references = sorted({c.reference for c in cases}, key=reference_key)
    keys = [reference_key(r) for r in references]
    row = {r: i for i, r in enumerate(references)}
    authors = sorted({c.author for c in cases})
    return AnswerBank(
        keys,
        np.array([vectors[r] for r in references]),
        np.array([row[c.reference] for c in cases]),
        np.array([VERDICTS.index(c.label) for c in cases]),
        np.array([authors.index(c.author) for c in cases]),
        np.array([vectors[c.answer] for c in cases]),
        authors,
    )


def training_rows(
    grader: Grader, cases: Sequence[Labelled], vectors: dict[str, np.ndarray], bank: AnswerBank
) -> tuple[np.ndarray, np.ndarray]:
    """Features with neighbours from the other authors, then the same answers without neighbours."""
    rules = grader.grade_many([(c.reference, c.answer, c.cloze) for c in cases], [c.question for c in cases])
    with_bank, without = [], []
    for c, rule in zip(cases, rules, strict=True):
        a, key = vectors[c.answer], reference_key(c.reference)
        common = (rule, float(a @ vectors[c.reference]), bank.other_similarity(key, a),
                  float(a @ vectors[c.question]) if c.question else 0.0, c.cloze)  # fmt: skip
        author = bank.authors.index(c.author)
        with_bank.append(feature_row(*common, bank.neighbours(key, a, exclude_author=author)))
        without.append(feature_row(*common, NO_NEIGHBOURS))
    y = np.array([VERDICTS.index(c.label) for c in cases])
    return np.array(with_bank + without), np.concatenate([y, y])


def fit_trees(X: np.ndarray, y: np.ndarray, settings: GraderSettings):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=settings.rounds, learning_rate=settings.learning_rate, max_depth=settings.max_depth,
        early_stopping=False, random_state=settings.seed,
    ).fit(X, y)  # fmt: skip


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
    vectors = embed_texts(encoder, cases)
    bank = build_bank(cases, vectors)
    X, y = training_rows(Grader(encoder), cases, vectors, bank)
    groups = np.tile(np.array([authors.index(c.author) for c in cases]), 2)
    progress(f"out-of-fold check, one fold per author ({len(authors)})")
    oof = np.zeros((len(y), len(VERDICTS)))
    for held in range(len(authors)):
        test = groups == held
        oof[test] = fit_trees(X[~test], y[~test], settings).predict_proba(X[test])
    n = len(cases)
    report = {
        "answers": n,
        "authors": authors,
        "oof_with_examples": figures(decide(oof[:n], settings.cost_far), y[:n]),
        "oof_without_examples": figures(decide(oof[n:], settings.cost_far), y[n:]),
    }
    progress(f"out of fold: {report['oof_with_examples']}; new entries: {report['oof_without_examples']}")
    model = fit_trees(X, y, settings)
    forest = Forest.from_sklearn(model)
    drift = float(np.abs(forest.probabilities(X) - model.predict_proba(X)).max())
    if drift > 1e-6:
        raise RuntimeError(f"exported trees disagree with the fitted model by {drift}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "forest.npz", **forest.arrays())
    bank.save(out_dir / "bank.npz")
    config = {"features": list(FEATURES), "cost_far": settings.cost_far, "verdicts": list(VERDICTS)}
    (out_dir / "model.json").write_text(json.dumps(config, indent=2) + "\n")
    report["seconds"] = round(time.perf_counter() - started, 1)
    manifest = {
        "encoder": encoder.model_id,
        "data_hash": data_hash(cases),
        "settings": asdict(settings),
        "files": {name: file_sha256(out_dir / name) for name in MODEL_FILES},
        "report": report,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    progress(f"done in {report['seconds']} s: {out_dir}")
    return report


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
    "fit_trees",
    "load_training",
    "train_grader",
]
