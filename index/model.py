"""The trained part of retrieval: a query adapter, a ranker, a calibrator and the cut-offs, with a manifest.

``tutor index train`` writes these files into ``index/model/`` (shipped with the package):

    adapter.safetensors  LoRA factors for the query encoder (merged into all-MiniLM-L6-v2 at load time)
    model.json           ranker and calibrator weights, decision cut-offs, the query rules it was trained with
    manifest.json        hash of the training data and settings, checksums of the two files above

The ranker orders candidate entries by a linear score over per-entry features; the calibrator turns the
top entry's features into the probability that it is the right entry (logistic regression, k-fold
cross-validated on the training authors); ``answer_min`` / ``unsure_min`` on that probability were
chosen on the training authors' out-of-fold probabilities by the explicit cost in ``index.train``.
Everything here is plain numpy: nothing on the query path imports torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from index.errors import RetrievalError
from knowledge.files import first_mismatch

MODEL_DIR = Path(__file__).parent / "model"
MODEL_FILES = ("adapter.safetensors", "model.json")

RANK_FEATURES = ("cos_q", "cos_qa", "bm25")
CALIBRATION_FEATURES = ("score", "margin", "cos_q", "cos_qa", "bm25", "unknown", "coverage", "length")


class ModelError(RetrievalError):
    """The trained retrieval model is missing, damaged or does not match its manifest."""


@dataclass(frozen=True)
class QueryRules:
    """The hand rules on the query path; each is kept only while the ablation shows it pays.

    ``bench/retrieval_ablation.py`` measures each on the validation author, and on the same messages with
    two typos each (that author's own slips are mild). Dropped because they did not pay: a "definition
    question" ranking feature (no change) and the unknown-variant veto (0.08 more refusals of covered
    questions for 0.017 fewer near-miss answers).
    """

    keep_context: bool = True  # embed the whole message (context, code), not only its question sentence
    glossary: bool = True  # spell out the field's abbreviations (lr, bn, sgd, ...)
    typos: bool = True  # correct misspelled words of 5+ letters against the notes' vocabulary


@dataclass(frozen=True)
class Linear:
    """``standardise(x) @ weights + bias`` over named features (a fitted scikit-learn linear model)."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float = 0.0

    def __post_init__(self):
        n = len(self.names)
        if not (len(self.mean) == len(self.scale) == len(self.weights) == n):
            raise ModelError(f"a linear model over {n} features needs {n} means, scales and weights")

    def __call__(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return x @ np.asarray(self.weights) + self.bias

    @classmethod
    def from_json(cls, obj: dict) -> Linear:
        try:
            return cls(
                tuple(obj["names"]),
                tuple(map(float, obj["mean"])),
                tuple(map(float, obj["scale"])),
                tuple(map(float, obj["weights"])),
                float(obj.get("bias", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"not a linear model: {exc}") from None


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


@dataclass(frozen=True)
class RetrievalModel:
    """What answers need besides the index: how to rank, how sure to be, when to answer."""

    ranker: Linear
    calibrator: Linear
    answer_min: float
    unsure_min: float
    rules: QueryRules = field(default_factory=QueryRules)
    adapter: Path | None = None
    version: str = "plain"

    def __post_init__(self):
        if self.ranker.names != RANK_FEATURES or self.calibrator.names != CALIBRATION_FEATURES:
            raise ModelError("the model's features are not the ones this code computes; retrain it")
        if not 0.0 <= self.unsure_min <= self.answer_min <= 1.0:
            raise ModelError(f"cut-offs must satisfy 0 <= unsure_min <= answer_min <= 1, got {self}")

    def probability(self, features: np.ndarray) -> float:
        return sigmoid(float(self.calibrator(features)))

    def to_json(self) -> dict:
        return {
            "ranker": asdict(self.ranker),
            "calibrator": asdict(self.calibrator),
            "answer_min": self.answer_min,
            "unsure_min": self.unsure_min,
            "rules": asdict(self.rules),
        }

    @classmethod
    def from_json(cls, obj: dict, adapter: Path | None, version: str) -> RetrievalModel:
        try:
            return cls(
                ranker=Linear.from_json(obj["ranker"]),
                calibrator=Linear.from_json(obj["calibrator"]),
                answer_min=float(obj["answer_min"]),
                unsure_min=float(obj["unsure_min"]),
                rules=QueryRules(**obj.get("rules", {})),
                adapter=adapter,
                version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model.json is not a retrieval model: {exc}") from None

    @classmethod
    def plain(cls, rules: QueryRules | None = None) -> RetrievalModel:
        """Untrained MiniLM: rank by the mean cosine of the two views, answer above one cut-off.

        The baseline the trained model is measured against (and a model for tests with a fake encoder).
        """
        zeros = (0.0,) * len(CALIBRATION_FEATURES)
        ones = (1.0,) * len(CALIBRATION_FEATURES)
        return cls(
            ranker=Linear(RANK_FEATURES, (0.0,) * 3, (1.0,) * 3, (0.5, 0.5, 0.0)),
            calibrator=Linear(
                CALIBRATION_FEATURES,
                zeros,
                ones,
                tuple(20.0 if n == "score" else 0.0 for n in CALIBRATION_FEATURES),
                -10.0,
            ),
            answer_min=0.5,
            unsure_min=0.5,
            rules=rules or QueryRules(keep_context=True, glossary=False, typos=False),
        )


def load_model(directory: Path = MODEL_DIR) -> RetrievalModel:
    """The trained model in ``directory``, after checking every file against the manifest."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        files = manifest["files"]
        if (changed := first_mismatch(directory, MODEL_FILES, files)) is not None:
            raise ModelError(f"{directory / changed} does not match its manifest; run `tutor index train`")
        obj = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"no usable retrieval model in {directory} ({exc}); run `tutor index train`"
        ) from None
    return RetrievalModel.from_json(obj, directory / "adapter.safetensors", files["adapter.safetensors"][:12])
