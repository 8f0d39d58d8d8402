"""The trained grader: boosted trees over what a teacher weighs, including how other students answered.

A reference answer alone cannot tell a correct paraphrase from a plausible misconception that reuses its
words; graded answers to the same question can. So beside the rule grader's score, coverage and rules and
the answer's similarity to the reference, its question and the other cards' references, the features
include the nearest labelled answers of each grade to the same reference (the answer bank, from the blind
authors and confirmed contests). A reference without labelled answers (a new or corrected entry) is graded
from the other features alone, and an answer meant for another card, or no answer at all ("banana"), is
wrong; training shows the model all three cases (``knowledge.quiz.train``).

The trees are evaluated here in numpy from the exported arrays, so grading needs no scikit-learn and no
pickle; ``tutor quiz train`` (``knowledge.quiz.train``) fits them and writes ``model/``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge.errors import KnowledgeError
from knowledge.files import first_mismatch
from knowledge.quiz.grading import CORRECT, PARTLY, VERDICTS, WRONG, Grade, Grader

MODEL_DIR = Path(__file__).parent / "model"
MODEL_FILES = ("model.json", "forest.npz", "gate.npz", "bank.npz")
FEATURES = (
    "similarity",  # answer vs reference
    "other_similarity",  # answer vs the closest other reference: an answer to a neighbouring card
    "margin_over_other",
    "question_similarity",
    "rule_score",
    "coverage",
    "cloze",
    "rule_numbers",
    "rule_polarity",
    "rule_exact",
    "rule_antonym",
    "rule_empty",
    "has_examples",
    "nearest_correct",
    "nearest_partly",
    "nearest_wrong",
    "correct_minus_wrong",
    "correct_minus_partly",
    "partly_minus_wrong",
    "vote_correct",
    "vote_partly",
    "vote_wrong",
)
_RULES = ("numbers", "polarity", "exact", "antonym", "empty")
VOTE_TEMPERATURE = 0.05  # softmax temperature over cosine similarities for the neighbours' vote


class GraderModelError(KnowledgeError):
    """The trained grader's files are missing, altered or made for another encoder."""


def bank_key(text: str) -> str:
    """The answer bank's key for a reference or a question: a short hash of the text, its whitespace
    collapsed. (Not ``knowledge.vectors.text_key``, which keys exact texts per encoder.)"""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]


def reference_key(reference: str) -> str:
    """Labelled answers belong to a reference text: a corrected reference starts without examples."""
    return bank_key(reference)


# --- the answer bank ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Neighbours:
    nearest: tuple[float, float, float]  # best cosine to a correct, partly, wrong example (0: none)
    vote: tuple[float, float, float]  # softmax-weighted share of each grade among the examples
    found: bool


NO_NEIGHBOURS = Neighbours((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), False)


class AnswerBank:
    """Labelled answer vectors per reference, and every reference's vector and question (``other_similarity``)."""

    def __init__(
        self,
        references: Sequence[str],
        questions: Sequence[str],
        reference_vectors: np.ndarray,
        example_reference: np.ndarray,
        example_label: np.ndarray,
        example_author: np.ndarray,
        example_vectors: np.ndarray,
        authors: Sequence[str],
    ):
        self.references = list(references)  # reference keys
        self.questions = list(questions)  # the question key of each reference's card
        self.reference_vectors = np.asarray(reference_vectors, np.float32)
        self.example_reference = np.asarray(example_reference, np.int32)
        self.example_label = np.asarray(example_label, np.int8)
        self.example_author = np.asarray(example_author, np.int16)
        self.example_vectors = np.asarray(example_vectors, np.float32)
        self.authors = list(authors)
        self._row = {key: i for i, key in enumerate(self.references)}
        self._rows_of_question: dict[str, list[int]] = {}
        for i, question in enumerate(self.questions):
            self._rows_of_question.setdefault(question, []).append(i)
        order = np.argsort(self.example_reference, kind="stable")
        bounds = np.searchsorted(self.example_reference[order], np.arange(len(self.references) + 1))
        self._examples = {i: order[bounds[i] : bounds[i + 1]] for i in range(len(self.references))}

    def __len__(self) -> int:
        return len(self.example_label)

    def neighbours(self, key: str, vector: np.ndarray, exclude_author: int | None = None) -> Neighbours:
        row = self._row.get(key)
        if row is None:
            return NO_NEIGHBOURS
        idx = self._examples[row]
        if exclude_author is not None:
            idx = idx[self.example_author[idx] != exclude_author]
        if len(idx) == 0:
            return NO_NEIGHBOURS
        sims = self.example_vectors[idx] @ vector
        labels = self.example_label[idx]
        weights = np.exp((sims - 1.0) / VOTE_TEMPERATURE)
        nearest, vote = [], []
        for k in range(len(VERDICTS)):
            mine = labels == k
            nearest.append(float(sims[mine].max()) if mine.any() else 0.0)
            vote.append(float(weights[mine].sum()))
        total = sum(vote)
        return Neighbours(
            (nearest[0], nearest[1], nearest[2]),
            (vote[0] / total, vote[1] / total, vote[2] / total) if total > 0 else (0.0, 0.0, 0.0),
            True,
        )

    def other_similarity(self, key: str, vector: np.ndarray, question_key: str | None = None) -> float:
        """The closest reference of another card: high for an answer to a neighbouring card.

        A card is its reference or its question, so the old text of a corrected answer is not "another card".
        """
        if not len(self.references):
            return 0.0
        sims = self.reference_vectors @ vector
        mine = set(self._rows_of_question.get(question_key, ())) if question_key is not None else set()
        if (row := self._row.get(key)) is not None:
            mine.add(row)
        if mine:
            sims = np.delete(sims, sorted(mine))
        return float(sims.max()) if len(sims) else 0.0

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            references=np.array(self.references, dtype="U16"),
            questions=np.array(self.questions, dtype="U16"),
            reference_vectors=self.reference_vectors,
            example_reference=self.example_reference,
            example_label=self.example_label,
            example_author=self.example_author,
            example_vectors=self.example_vectors,
            authors=np.array(self.authors, dtype="U32"),
        )

    @classmethod
    def load(cls, path: Path) -> AnswerBank:
        with np.load(path, allow_pickle=False) as z:
            return cls(
                [str(k) for k in z["references"]], [str(q) for q in z["questions"]], z["reference_vectors"],
                z["example_reference"],
                z["example_label"], z["example_author"], z["example_vectors"], [str(a) for a in z["authors"]],
            )  # fmt: skip


def feature_row(
    rule: Grade,
    similarity: float,
    other: float,
    question_similarity: float,
    cloze: bool,
    neighbours: Neighbours,
) -> list[float]:
    """One answer's features, in ``FEATURES`` order (training and grading share this function)."""
    c, p, w = neighbours.nearest
    found = float(neighbours.found)
    return [
        similarity, other, similarity - other, question_similarity, rule.score, rule.coverage, float(cloze),
        *(float(rule.rule == name) for name in _RULES),
        found, c, p, w, found * (c - w), found * (c - p), found * (p - w), *neighbours.vote,
    ]  # fmt: skip


def case_features(
    bank: AnswerBank,
    vectors: dict[str, np.ndarray],
    rule: Grade,
    reference: str,
    answer: str,
    question: str,
    cloze: bool,
    *,
    neighbours: bool = True,
    exclude_author: int | None = None,
) -> list[float]:
    """Everything the trees see about one answer; training and grading both call this."""
    a, key = vectors[answer], reference_key(reference)
    return feature_row(
        rule,
        float(a @ vectors[reference]),
        bank.other_similarity(key, a, bank_key(question) if question else None),
        float(a @ vectors[question]) if question else 0.0,
        cloze,
        bank.neighbours(key, a, exclude_author) if neighbours else NO_NEIGHBOURS,
    )


# --- the trees --------------------------------------------------------------------------------------------
class Forest:
    """Gradient-boosted trees (one per class per round) as flat arrays, evaluated for all trees at once."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.feature = np.asarray(arrays["feature"], np.int64)
        self.threshold = np.asarray(arrays["threshold"], np.float64)
        self.missing_left = np.asarray(arrays["missing_left"], bool)
        self.left = np.asarray(arrays["left"], np.int64)
        self.right = np.asarray(arrays["right"], np.int64)
        self.leaf = np.asarray(arrays["leaf"], bool)
        self.value = np.asarray(arrays["value"], np.float64)
        self.roots = np.asarray(arrays["roots"], np.int64)
        self.tree_class = np.asarray(arrays["tree_class"], np.int64)
        self.baseline = np.asarray(arrays["baseline"], np.float64)
        self.depth = int(arrays["depth"])
        self.n_classes = max(2, len(self.baseline))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "feature": self.feature, "threshold": self.threshold, "missing_left": self.missing_left,
            "left": self.left, "right": self.right, "leaf": self.leaf, "value": self.value,
            "roots": self.roots, "tree_class": self.tree_class, "baseline": self.baseline,
            "depth": np.array(self.depth),
        }  # fmt: skip

    @classmethod
    def from_sklearn(cls, model) -> Forest:
        """Flatten a fitted ``HistGradientBoostingClassifier`` (numerical features only)."""
        fields: dict[str, list] = {k: [] for k in ("feature", "threshold", "missing_left", "left", "right")}
        fields.update(leaf=[], value=[], roots=[], tree_class=[])
        depth = 0
        for round_ in model._predictors:
            for k, predictor in enumerate(round_):
                nodes = predictor.nodes
                if nodes["is_categorical"].any():
                    raise ValueError("categorical splits are not supported")
                offset = len(fields["value"])
                fields["roots"].append(offset)
                fields["tree_class"].append(k)
                fields["feature"].extend(nodes["feature_idx"].tolist())
                fields["threshold"].extend(nodes["num_threshold"].tolist())
                fields["missing_left"].extend(nodes["missing_go_to_left"].astype(bool).tolist())
                fields["left"].extend((nodes["left"].astype(np.int64) + offset).tolist())
                fields["right"].extend((nodes["right"].astype(np.int64) + offset).tolist())
                fields["leaf"].extend(nodes["is_leaf"].astype(bool).tolist())
                fields["value"].extend(nodes["value"].tolist())
                depth = max(depth, int(nodes["depth"].max()))
        baseline = np.asarray(model._baseline_prediction, np.float64).reshape(-1)
        arrays = {k: np.asarray(v) for k, v in fields.items()}
        return cls({**arrays, "baseline": baseline, "depth": np.array(depth)})

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, (n, classes); a binary model (one tree per round) gives (n, 2)."""
        X = np.atleast_2d(np.asarray(X, np.float64))
        node = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        for _ in range(self.depth):
            values = np.take_along_axis(X, self.feature[node], axis=1)
            go_left = np.where(np.isnan(values), self.missing_left[node], values <= self.threshold[node])
            node = np.where(self.leaf[node], node, np.where(go_left, self.left[node], self.right[node]))
        raw = np.tile(self.baseline, (len(X), 1))
        leaf_values = self.value[node]
        for k in range(len(self.baseline)):
            raw[:, k] += leaf_values[:, self.tree_class == k].sum(axis=1)
        if len(self.baseline) == 1:  # binary: the raw score is the log-odds of class 1
            raw = np.hstack([np.zeros_like(raw), raw])
        raw -= raw.max(axis=1, keepdims=True)
        e = np.exp(raw)
        return e / e.sum(axis=1, keepdims=True)


def cost_matrix(cost_far: float) -> np.ndarray:
    """Rows: the true grade; columns: the verdict. Correct graded wrong (or the reverse) costs ``cost_far``."""
    return np.array([[0.0, 1.0, cost_far], [1.0, 0.0, 1.0], [cost_far, 1.0, 0.0]])


def decide(probabilities: np.ndarray, cost_far: float) -> np.ndarray:
    """The verdict index with the least expected cost, per row."""
    return np.argmin(np.atleast_2d(probabilities) @ cost_matrix(cost_far), axis=1)


# --- the grader -------------------------------------------------------------------------------------------
class TrainedGrader:
    """Grades like ``Grader`` (same ``grade``/``grade_many``), deciding with the trained trees.

    ``rules`` is the rule grader over the same encoder the model was trained with: its score, coverage and
    rules are features, its matched/missing terms are what the learner is shown, and its vector cache
    serves both.
    """

    thresholds = None  # the report's "trained grader"

    def __init__(
        self,
        rules: Grader,
        forest: Forest,
        bank: AnswerBank,
        cost_far: float,
        gate: Forest | None = None,
        gate_threshold: float = float("inf"),
        version: str = "",
    ):
        self.rules = rules
        self.forest = forest
        self.bank = bank
        self.cost_far = cost_far
        self.gate = gate  # P(the answer was meant for another card, or for none)
        self.gate_threshold = gate_threshold
        self.version = version

    def grade(self, reference: str, answer: str, *, question: str = "", cloze: bool = False) -> Grade:
        return self.grade_many([(reference, answer, cloze)], questions=[question])[0]

    def features(
        self, cases: Sequence[tuple[str, str, bool]], questions: Sequence[str]
    ) -> tuple[list[Grade], np.ndarray]:
        """The rule grades and the feature matrix of ``cases`` (reference, answer, cloze)."""
        rule_grades = self.rules.grade_many(cases, questions)
        texts = {
            t for (ref, ans, _), q in zip(cases, questions, strict=True) for t in (ref, ans, q) if t.strip()
        }
        vectors = self.rules.vectors(sorted(texts))
        rows = []
        for (reference, answer, cloze), question, rule in zip(cases, questions, rule_grades, strict=True):
            if _decided_by_rules(rule, reference):
                rows.append([0.0] * len(FEATURES))
                continue
            asked = question if question.strip() else ""
            rows.append(case_features(self.bank, vectors, rule, reference, answer, asked, cloze))
        return rule_grades, np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))

    def grade_many(
        self, cases: Sequence[tuple[str, str, bool]], questions: Sequence[str] | None = None
    ) -> list[Grade]:
        questions = list(questions) if questions is not None else [""] * len(cases)
        rule_grades, X = self.features(cases, questions)
        if not len(X):
            return []
        probabilities = self.forest.probabilities(X)
        verdicts = decide(probabilities, self.cost_far)
        off_topic = self.gate.probabilities(X)[:, 1] if self.gate is not None else np.zeros(len(X))
        out = []
        for i, ((reference, _, _), rule) in enumerate(zip(cases, rule_grades, strict=True)):
            if _decided_by_rules(rule, reference):
                out.append(rule)
                continue
            p, gated = probabilities[i], off_topic[i] > self.gate_threshold
            credit = 0.0 if gated else float(p[0] + 0.5 * p[1])
            out.append(
                Grade(
                    WRONG if gated else VERDICTS[int(verdicts[i])], round(credit, 3), rule.similarity,
                    rule.coverage, rule.matched, rule.missing, "off-topic" if gated else "model",
                )
            )  # fmt: skip
        return out


def _decided_by_rules(rule: Grade, reference: str) -> bool:
    """No answer ("", "I don't know") or nothing to grade against: the rule grader's "wrong" stands."""
    return rule.rule == "empty" or not reference.strip()


def load_grader(encoder, directory: Path = MODEL_DIR) -> TrainedGrader:
    """The trained grader in ``directory`` over ``encoder``, after checking the files against the manifest.

    Raises ``GraderModelError`` when a file is missing or altered, or ``encoder`` is not the one the
    answer bank was embedded with (its vectors would mean nothing).
    """
    directory = Path(directory)
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        files = manifest["files"]
        if (changed := first_mismatch(directory, MODEL_FILES, files)) is not None:
            raise GraderModelError(
                f"{directory / changed} does not match its manifest; run `tutor quiz train`"
            )
        config = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        if tuple(config["features"]) != FEATURES:
            raise GraderModelError(f"{directory} was trained on other features; run `tutor quiz train`")
        cost_far, trained_with = float(config["cost_far"]), str(manifest["encoder"])
        gate_threshold = float(config["gate_threshold"])
        forest, gate = _load_forest(directory / "forest.npz", 3), _load_forest(directory / "gate.npz", 2)
        bank = AnswerBank.load(directory / "bank.npz")
    except GraderModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise GraderModelError(
            f"no usable grader model in {directory} ({exc}); run `tutor quiz train`"
        ) from None
    model_id = getattr(encoder, "model_id", None)
    if model_id != trained_with:
        raise GraderModelError(f"the grader was trained with encoder {trained_with!r}, not {model_id!r}")
    version = hashlib.sha256("".join(files[n] for n in MODEL_FILES).encode()).hexdigest()[:12]
    return TrainedGrader(Grader(encoder), forest, bank, cost_far, gate, gate_threshold, version)


def _load_forest(path: Path, classes: int) -> Forest:
    with np.load(path, allow_pickle=False) as z:
        forest = Forest({k: z[k] for k in z.files})
    if forest.n_classes != classes or (len(forest.feature) and forest.feature.max() >= len(FEATURES)):
        raise GraderModelError(f"{path} is not a {classes}-class model of the grader's features")
    return forest


__all__ = [
    "CORRECT",
    "FEATURES",
    "MODEL_DIR",
    "PARTLY",
    "WRONG",
    "AnswerBank",
    "Forest",
    "GraderModelError",
    "Neighbours",
    "TrainedGrader",
    "bank_key",
    "case_features",
    "decide",
    "feature_row",
    "load_grader",
    "reference_key",
]
