"""Retrieval building blocks that need no model: query cleaning, FAISS wrapper, lexical index."""

from __future__ import annotations

import numpy as np
import pytest

from index.errors import IndexCorrupt
from index.lexical import LexicalIndex, american, content_words, terms, words
from index.text import clean_message, expand_abbreviations, retrieval_query
from index.vector import VectorIndex
from knowledge.words import light_stem


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("hey bot quick one - what's a receptive field?", "what is a receptive field?"),
        ("Hi! I'm reading chapter 13. What is stride? Thanks!", "I'm reading chapter 13. What is stride?"),
        ("<@1234> what does `color_dim` show", "what does color_dim show"),
        ("can you explain bn pls", "batch normalization"),
        ("so um what is a cnn lol", "what is a convolutional neural network CNN"),
        (
            "1-nn vs 5-nn train and test error",
            "1-nearest neighbor vs 5-nearest neighbor train and test error",
        ),
        ("F.relu or nn.ReLU?", "F.relu or nn.ReLU?"),
        ("```python\nx.view(3,3)\n``` what does this do?", "x.view(3,3) what does this do?"),
        ("@everyone why zero the grads", "why zero the gradients"),
        ("why dont ppl use lbfgs more", "why do not people use lbfgs more"),
    ],
)
def test_retrieval_query(message, expected):
    assert retrieval_query(message) == expected


def test_context_is_kept_unless_asked_for_the_question_alone():
    message = "my prof keeps saying NCHW in lecture. what does it stand for?"
    assert retrieval_query(message) == message
    assert retrieval_query(message, keep_context=False) == "what does it stand for?"
    assert retrieval_query("whats the lr for") == "what is the learning rate for"
    assert retrieval_query("whats the lr for", glossary=False) == "whats the lr for"


def test_terms_count_hyphenated_names_written_solid():
    assert {"l-bfgs", "bfgs", "lbfgs", "super-convergence", "superconvergence"} <= terms(
        "L-BFGS and super-convergence"
    )


@pytest.mark.parametrize(
    ("british", "american_spelling"),
    [("normalisation", "normalization"), ("initialised", "initialized"), ("neighbour", "neighbor"),
     ("favour", "favor"), ("colours", "colors"), ("noise", "noise"), ("our", "our"), ("analysis", "analysis")],
)  # fmt: skip
def test_american_spelling(british, american_spelling):
    assert american(british) == american_spelling


def test_clean_message_edge_cases():
    assert clean_message("") == ""
    assert clean_message("hey") == "hey"  # nothing but a greeting: keep it rather than return nothing
    assert len(clean_message("why " * 5000)) <= 2000
    with pytest.raises(TypeError):
        clean_message(None)  # type: ignore[arg-type]
    assert expand_abbreviations("lr and sgd") == "learning rate and stochastic gradient descent SGD"


def test_words_keep_identifiers():
    assert words("What does `to_fp16` do? L-BFGS vs color_dim") == [
        "what",
        "does",
        "to_fp16",
        "do",
        "l-bfgs",
        "vs",
        "color_dim",
    ]
    assert content_words("what is the learning rate") == ["learning", "rate"]
    assert light_stem("relus") == "relu" and light_stem("transformers") != light_stem("transformation")


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(n // 50, 4), dim))
    vectors = centers[rng.integers(0, len(centers), n)] + 0.35 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_flat_search_equals_brute_force():
    vectors = _clustered(500)
    ids = np.arange(500) * 7 + 3
    index = VectorIndex.build(vectors, ids)
    assert index.kind == "flat"
    queries = _clustered(20, seed=1)
    result = index.search(queries, 10)
    reference = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(result.ids, ids[reference])
    np.testing.assert_allclose(
        result.scores, np.take_along_axis(queries @ vectors.T, reference, 1), atol=1e-5
    )


def test_ivf_meets_recall_target_against_exact_search():
    vectors = _clustered(8000, seed=2)
    ids = np.arange(8000)
    index = VectorIndex.build(vectors, ids, kind="ivf")
    assert index.kind == "ivf" and index.recall_at_10 >= 0.95
    queries = vectors[:200] + 0.02 * np.random.default_rng(3).normal(size=(200, 32)).astype(np.float32)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = index.search(queries, 10).ids
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95


def test_vector_index_validates_and_persists(tmp_path):
    vectors = _clustered(50)
    index = VectorIndex.build(vectors, np.arange(50))
    with pytest.raises(ValueError, match="dimension"):
        index.search(np.zeros((1, 7), dtype=np.float32), 3)
    with pytest.raises(ValueError, match="ids"):
        VectorIndex.build(vectors, np.arange(49))
    index.save(tmp_path / "v.faiss")
    again = VectorIndex.load(tmp_path / "v.faiss", "flat")
    np.testing.assert_array_equal(again.search(vectors[:3], 5).ids, index.search(vectors[:3], 5).ids)
    (tmp_path / "bad.faiss").write_bytes(b"garbage" * 10)
    with pytest.raises(IndexCorrupt):
        VectorIndex.load(tmp_path / "bad.faiss", "flat")


def test_lexical_index_finds_identifiers_and_corrects_typos(tmp_path):
    rows = [
        (1, "What does to_fp16 do?", "It enables mixed-precision training.", None),
        (2, "What does one column of the color_dim plot represent?", "A histogram of activations.", None),
        (3, "What is a gradient?", "The slope of the loss.", None),
        (4, "What is NCHW?", "Batch, channels, height, width.", None),
        (5, "What is a shared gradient?", "A space's card.", "Course-A"),
    ]
    index = LexicalIndex.build(tmp_path / "lex.sqlite", rows)
    assert index.search(["to_fp16"])[0].key == 1
    assert index.search(["color_dim"])[0].key == 2
    assert index.search(["nchw"])[0].key == 4
    assert index.search([]) == [] and index.search(['"unbalanced']) == []
    # A space's rows only where that space is named (keys are case-sensitive; "shared" is only a word).
    assert [h.key for h in index.search(["gradient"], spaces=[None])] == [3]
    assert {h.key for h in index.search(["gradient"], spaces=[None, "Course-A"])} == {3, 5}
    assert [h.key for h in index.search(["gradient"], spaces=[None, "course-a"])] == [3]
    assert index.search(["shared"], spaces=[None]) == []
    assert index.correct("gradiant") == "gradient"
    assert index.correct("weather") == "weather"
    assert index.known("gradients") and not index.known("transformers")
