"""The trained grader: the shipped files and their manifest, the exported trees, training, contests fed back."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from knowledge.quiz.calibrate import ANSWERS_DIR, Labelled
from knowledge.quiz.learned import (
    FEATURES,
    MODEL_DIR,
    MODEL_FILES,
    Forest,
    GraderModelError,
    decide,
    file_sha256,
    load_grader,
)
from knowledge.quiz.train import (
    FEEDBACK_AUTHOR,
    GraderSettings,
    answer_files,
    data_hash,
    feedback_answers,
    load_training,
    train_grader,
)


class HashingEncoder:
    """A small, fast stand-in encoder (hashed bag of words) for tests whose subject is not the model."""

    model_id = "test/hashing-64"
    dim = 64

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        out[:, 0] += 1e-3  # no zero vectors
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def few_items(cases: list[Labelled], items: int = 30) -> list[Labelled]:
    keep = sorted({(c.source, c.n) for c in cases})[:items]
    return [c for c in cases if (c.source, c.n) in set(keep)]


# --- the shipped model ---------------------------------------------------------------------------------
def test_shipped_grader_matches_its_manifest_its_data_and_the_size_budget():
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    for name in MODEL_FILES:
        assert file_sha256(MODEL_DIR / name) == manifest["files"][name], name
    assert sum((MODEL_DIR / name).stat().st_size for name in MODEL_FILES) <= 10 * 2**20
    assert json.loads((MODEL_DIR / "model.json").read_text())["features"] == list(FEATURES)
    assert manifest["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    # trained on exactly the shipped answers of every author, with the default settings
    assert manifest["data_hash"] == data_hash(load_training())
    assert manifest["report"]["authors"] == [p.stem for p in answer_files()]
    assert manifest["settings"] == json.loads(json.dumps(GraderSettings().__dict__))


def test_an_altered_or_missing_file_or_another_encoder_is_refused(tmp_path):
    class SameId:
        model_id = "sentence-transformers/all-MiniLM-L6-v2"

        def encode(self, texts):
            raise AssertionError("loading must not encode")

    altered = tmp_path / "altered"
    shutil.copytree(MODEL_DIR, altered)
    data = bytearray((altered / "forest.npz").read_bytes())
    data[-40] ^= 0xFF
    (altered / "forest.npz").write_bytes(bytes(data))
    with pytest.raises(GraderModelError, match="does not match its manifest"):
        load_grader(SameId(), altered)

    missing = tmp_path / "missing"
    shutil.copytree(MODEL_DIR, missing)
    (missing / "bank.npz").unlink()
    with pytest.raises(GraderModelError, match="run `tutor quiz train`"):
        load_grader(SameId(), missing)

    with pytest.raises(GraderModelError, match="trained with encoder"):
        load_grader(HashingEncoder(), MODEL_DIR)
    assert load_grader(SameId(), MODEL_DIR).bank.authors == ["a1", "a2", "a3", "a4"]


# --- the parts -------------------------------------------------------------------------------------------
def test_exported_trees_give_the_fitted_models_probabilities_including_missing_values():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan
    model = HistGradientBoostingClassifier(max_iter=40, max_depth=3, early_stopping=False, random_state=0)
    model.fit(X, y)
    forest = Forest.from_sklearn(model)
    probe = rng.normal(size=(200, 5))
    probe[rng.random(probe.shape) < 0.1] = np.nan
    assert np.abs(forest.probabilities(probe) - model.predict_proba(probe)).max() < 1e-9
    assert Forest(forest.arrays()).probabilities(probe[:1]).shape == (1, 3)


def test_least_cost_verdict_says_partly_when_a_far_miss_is_likely():
    p = np.array([[0.6, 0.25, 0.15], [0.9, 0.08, 0.02], [0.05, 0.25, 0.7]])
    assert decide(p, 4.0).tolist() == [1, 0, 2]
    assert decide(p, 1.0).tolist() == [0, 0, 2]  # plain argmax


# --- training ---------------------------------------------------------------------------------------------
def test_training_is_deterministic_and_its_model_grades(tmp_path):
    cases = few_items(load_training())
    first = train_grader(tmp_path / "one", cases, HashingEncoder())
    train_grader(tmp_path / "two", cases, HashingEncoder())
    for name in MODEL_FILES:
        assert file_sha256(tmp_path / "one" / name) == file_sha256(tmp_path / "two" / name)
    assert first["answers"] == len(cases) and first["authors"] == ["a1", "a2", "a3", "a4"]
    assert set(first["oof_with_examples"]) == {"three_way", "correct_vs_not", "correct_graded_wrong",
                                               "wrong_graded_correct"}  # fmt: skip
    grader = load_grader(HashingEncoder(), tmp_path / "one")
    case = cases[0]
    grades = grader.grade_many([(case.reference, case.answer, case.cloze), (case.reference, "", False)],
                               [case.question, case.question])  # fmt: skip
    assert grades[0].rule == "model" and 0.0 <= grades[0].score <= 1.0
    assert grades[1].verdict == "wrong" and grades[1].rule == "empty"
    with pytest.raises(ValueError, match="two named authors"):
        train_grader(tmp_path / "three", [c for c in cases if c.author == "a1"], HashingEncoder())


def test_unknown_author_to_exclude_is_named():
    with pytest.raises(ValueError, match="no answer file for a9"):
        answer_files(["a9"])


def test_a_confirmed_contest_becomes_training_data_for_its_reference(tmp_path, quiz_retriever):
    """--with-feedback: the admin's label for a contested answer joins the bank under that answer's reference."""
    from knowledge.quiz import QuizService
    from knowledge.quiz.learned import reference_key

    store = quiz_retriever.store
    answer = "it keeps the same thing going, as far as I remember"
    with QuizService(store, quiz_retriever.encoder) as quiz:
        session = quiz.start("ann", source="004", topic="nonlinearity", n=1, mode="free")
        question = quiz.question(session)
        quiz.answer(session, answer)
        pending = quiz.contest(session, question.position)
        assert feedback_answers(store) == [], "a pending contest is not training data"
        quiz.decide_contest(pending, "partly", "teacher")
        item = store.item(quiz.contests("confirmed")[0]["item_id"])
    [fed] = feedback_answers(store)
    assert (fed.answer, fed.label, fed.author) == (answer, "partly", FEEDBACK_AUTHOR)
    assert (fed.question, fed.reference) == (item.question, item.answer)

    cases = load_training(extra=[fed])
    assert cases[-1] == fed
    train_grader(tmp_path / "fed", [*few_items(cases[:-1], 12), fed], HashingEncoder())
    grader = load_grader(HashingEncoder(), tmp_path / "fed")
    assert FEEDBACK_AUTHOR in grader.bank.authors
    vector = HashingEncoder().encode([answer])[0]
    nearest = grader.bank.neighbours(reference_key(item.answer), vector).nearest
    assert nearest[1] == pytest.approx(1.0, abs=1e-3), (
        "the confirmed answer is its reference's partly example"
    )


# --- the real model on the examples ------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped(encoder):
    return load_grader(encoder)


def test_shipped_grader_no_longer_flips_the_stride_examples(shipped):
    reference = "Stride refers to how many pixels at a time the kernel is moved during the convolution."
    question = "What is “stride”?"
    paraphrase = shipped.grade(reference, "the step size the filter jumps each time it slides over the input",
                               question=question)  # fmt: skip
    confusion = shipped.grade(reference, "stride is the size of the kernel, like 3x3", question=question)
    assert paraphrase.verdict != "wrong" and confusion.verdict != "correct"
    assert paraphrase.score < 1.0 and confusion.score < 1.0


def test_shipped_grader_on_the_validation_author_is_at_least_the_targets(shipped):
    """The shipped model has seen a4; this guards against a broken export, not a measurement (see README)."""
    from knowledge.quiz.calibrate import evaluate, load_labels

    figures = evaluate(shipped, load_labels(ANSWERS_DIR / "a4.jsonl")).figures()
    assert figures["three_way"] >= 0.75 and figures["correct_vs_not"] >= 0.90
    assert figures["correct_graded_wrong"] <= 0.03 and figures["wrong_graded_correct"] <= 0.03


def test_train_and_eval_commands_name_bad_input(tmp_path):
    from click.testing import CliRunner

    from tutor.cli import main

    runner = CliRunner()
    unknown = runner.invoke(main, ["quiz", "train", "--out", str(tmp_path / "m"), "--exclude-author", "a9"])
    assert unknown.exit_code == 1 and "no answer file for a9" in unknown.output
    assert not (tmp_path / "m").exists()
    (tmp_path / "broken").mkdir()
    broken = runner.invoke(main, ["quiz", "eval", "--model", str(tmp_path / "broken")])
    assert broken.exit_code == 1 and "no usable grader model" in broken.output
