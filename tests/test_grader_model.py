"""The trained grader: the shipped files and their manifest, the exported trees, training, contests fed back."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from knowledge.files import sha256
from knowledge.quiz.calibrate import Labelled
from knowledge.quiz.learned import (
    FEATURES,
    MODEL_DIR,
    MODEL_FILES,
    Forest,
    GraderModelError,
    decide,
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
        assert sha256(MODEL_DIR / name) == manifest["files"][name], name
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
    binary = HistGradientBoostingClassifier(max_iter=30, max_depth=3, early_stopping=False).fit(X, y > 0)
    gate = Forest.from_sklearn(binary)
    assert np.abs(gate.probabilities(probe) - binary.predict_proba(probe)).max() < 1e-9


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
        assert sha256(tmp_path / "one" / name) == sha256(tmp_path / "two" / name)
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


def test_shipped_grader_on_answers_it_never_saw(shipped):
    """The fresh authors (written after the design was frozen): a guard against a broken model or export."""
    from knowledge.quiz.calibrate import FRESH_DIR, evaluate, load_labels

    cases = [c for path in sorted(FRESH_DIR.glob("*.jsonl")) for c in load_labels(path)]
    figures = evaluate(shipped, cases).figures()
    assert figures["n"] >= 150 and figures["three_way"] >= 0.7 and figures["correct_vs_not"] >= 0.88
    assert figures["correct_graded_wrong"] <= 0.03


def test_an_answer_to_nothing_or_to_another_card_is_wrong(shipped):
    from knowledge.quiz.calibrate import FRESH_DIR, load_labels

    cards = sorted({(c.reference, c.question, c.cloze) for c in load_labels(FRESH_DIR / "f2.jsonl")})[:40]
    junk = ("banana", "asdf", "lol idk", "我不知道", "x" * 300)
    grades = shipped.grade_many(
        [(r, j, z) for r, _, z in cards for j in junk], [q for _, q, _ in cards for _ in junk]
    )
    assert sum(g.verdict == "wrong" for g in grades) >= 0.9 * len(grades)
    assert all(g.verdict != "correct" for g in grades)
    padding = "Padding is the additional pixels that are added around the outside of the image"
    stride = "Stride refers to how many pixels at a time the kernel is moved during the convolution."
    misplaced = shipped.grade(stride, padding, question="What is “stride”?")
    assert misplaced.verdict == "wrong" and misplaced.score < 0.3


def test_grading_sees_the_features_training_saw(tmp_path):
    from knowledge.quiz.learned import case_features
    from knowledge.quiz.train import training_data

    cases = few_items(load_training(), 10)
    train_grader(tmp_path / "m", cases, HashingEncoder())
    grader = load_grader(HashingEncoder(), tmp_path / "m")
    data = training_data(cases, HashingEncoder(), GraderSettings())
    picked = cases[:: max(1, len(cases) // 12)]
    rules, X = grader.features(
        [(c.reference, c.answer, c.cloze) for c in picked], [c.question for c in picked]
    )
    for c, rule, row in zip(picked, rules, X, strict=True):
        i = cases.index(c)
        expected = case_features(data.bank, data.vectors, rule, c.reference, c.answer, c.question, c.cloze)
        assert np.allclose(row, expected, atol=1e-6)
        without = data.X[data.answers + i]  # the row training used for a new entry
        assert np.allclose(
            without, case_features(grader.bank, data.vectors, rule, c.reference, c.answer, c.question, c.cloze,
                                   neighbours=False), atol=1e-6,
        )  # fmt: skip


def test_grading_from_many_threads_shares_one_cache_safely():
    import threading

    from knowledge.quiz.grading import Grader

    grader = Grader(HashingEncoder())
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(3000):  # 8 x 3000 distinct answers: the cache fills and is cleared under load
                grader.grade("the kernel moves two pixels", f"answer {k} {i}", question="what is stride")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


def test_damaged_model_files_are_a_clear_error_and_a_failed_training_keeps_the_old_model(tmp_path):
    model = tmp_path / "model"
    cases = few_items(load_training(), 8)
    train_grader(model, cases, HashingEncoder())
    manifest = json.loads((model / "manifest.json").read_text())

    broken = tmp_path / "no-encoder"
    shutil.copytree(model, broken)
    (broken / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "encoder"}))
    with pytest.raises(GraderModelError, match="no usable grader model"):
        load_grader(HashingEncoder(), broken)

    garbage = tmp_path / "garbage"
    shutil.copytree(model, garbage)
    (garbage / "gate.npz").write_bytes(b"PK\x03\x04 not a zip")
    manifest_g = {**manifest, "files": {**manifest["files"], "gate.npz": sha256(garbage / "gate.npz")}}
    (garbage / "manifest.json").write_text(json.dumps(manifest_g))
    with pytest.raises(GraderModelError, match="no usable grader model"):
        load_grader(HashingEncoder(), garbage)

    class Failing(HashingEncoder):
        def encode(self, texts, batch_size: int = 64):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        train_grader(model, cases, Failing())
    assert load_grader(HashingEncoder(), model).version  # the previous model, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage", "model", "no-encoder"]
