"""The encoder's ONNX graph by the library path, exported once per install and cached with a manifest.

``torch.onnx.export`` traces the transformers ``BertModel`` loaded from the bundled all-MiniLM-L6-v2 (offline;
a query adapter's LoRA factors merged in first, by the same ``merge_adapter`` as the built-in graph), and
onnxruntime's transformer optimizer (``onnxruntime.transformers.optimizer``) fuses it into the same kernels the
hand-written graph in ``index.encoder`` uses (EmbedLayerNormalization, Attention, SkipLayerNormalization,
BiasGelu). An export that is not fully fused, or whose vectors differ from the torch model's by more than
1e-5, is refused rather than cached. To change the model, change ``_Wrapped`` or the optimizer options here.

Exporting costs a torch + transformers + onnx import and 10-30 s on 2 cores, so nothing on the query path does
it: ``python -m index.onnx_export`` does, once per install (the plain encoder and the shipped query adapter), and
``MiniLMEncoder(graph="exported")`` does when asked to. An encoder in the default ``graph="auto"`` loads a valid
cached export (faster to start than building the graph by hand) and otherwise the hand-written graph.

Cache layout (``$TUTOR_ENCODER_CACHE``, else the user cache folder ``dl-tutor/encoder``)::

    <key>/model.onnx      the optimised graph, weights inside (~90 MB)
    <key>/manifest.json   model id, source fingerprint, adapter fingerprint, opset, onnxruntime version, sha256
                          of model.onnx, fused operators, measured difference from torch

``<key>`` depends on the model folder and the adapter's sha256. Every load checks the manifest against the
model folder (size and mtime of its files, their sha256 when those changed), the adapter, the opset, this
export recipe and the installed onnxruntime, and the file against its sha256; anything else means "no export".

This module imports only the standard library at import time; torch, transformers and onnx load in ``export``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

OPSET = 17
RECIPE = 1  # bump when the export below changes: every cached export is then stale
VERIFY_TOL = 1e-5  # largest difference from the torch model's vectors an export may have
MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
SOURCE_FILES = ("config.json", "model.safetensors")  # what the graph is made of (the tokenizer runs outside)
CACHE_ENV = "TUTOR_ENCODER_CACHE"

# Texts the export is verified on: padding, truncation, unicode, code, an empty string.
VERIFY_TEXTS = (
    "What is backpropagation?",
    "",
    "Why does my loss become NaN after a few epochs with lr=1e-2 and Adam(betas=(0.9, 0.999))?",
    "attention " * 300,
    "Ünïcödé, naïve café, 日本語のテキスト, emoji 🤖",
    "Explain `loss.backward()` vs ```python\nwith torch.no_grad():\n    y = model(x)\n```",
    "ReLU",
    "hey quick q whats the lr finder for lol",
)


class ExportError(Exception):
    """The export could not be made or verified (``index.encoder`` turns it into an ``EncoderError``)."""


def cache_root() -> Path:
    """Where exports are cached: ``$TUTOR_ENCODER_CACHE``, else the per-user cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from platformdirs import user_cache_path

    return user_cache_path("dl-tutor", appauthor=False) / "encoder"


def export_dir(model_dir: Path, adapter_sha256: str | None) -> Path:
    """The cache folder of one (model folder, adapter) pair."""
    key = json.dumps([str(Path(model_dir).resolve()), adapter_sha256])
    name = "adapter-" if adapter_sha256 else "plain-"
    return cache_root() / (name + hashlib.sha256(key.encode()).hexdigest()[:16])


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _source_stats(model_dir: Path) -> dict[str, list[int]]:
    stats = {}
    for name in SOURCE_FILES:
        st = (model_dir / name).stat()
        stats[name] = [st.st_size, st.st_mtime_ns]
    return stats


def source_fingerprint(model_dir: Path) -> dict[str, Any]:
    """sha256 of the model's config and weights, with their sizes and mtimes (so a load need not re-hash)."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        digest.update(f"{name}\0{_file_sha256(model_dir / name)}\0".encode())
    return {"sha256": digest.hexdigest(), "stats": _source_stats(model_dir)}


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _expected(model_id: str, adapter_sha256: str | None) -> dict[str, Any]:
    return {
        "recipe": RECIPE,
        "model_id": model_id,
        "adapter_sha256": adapter_sha256,
        "opset": OPSET,
        "onnxruntime": _ort_version(),
    }


def _source_matches(model_dir: Path, manifest: dict[str, Any], directory: Path) -> bool:
    """The model folder is the one exported: same size and mtime, or else (re-installed) the same sha256."""
    source = manifest.get("source")
    if not isinstance(source, dict):
        return False
    stats = _source_stats(model_dir)
    if source.get("stats") == stats:
        return True
    if source_fingerprint(model_dir)["sha256"] != source.get("sha256"):
        return False
    try:  # same content under new mtimes: remember them, so the next load does not hash 90 MB again
        from index.files import replacing

        with replacing(directory / MANIFEST) as tmp:
            tmp.write_text(json.dumps({**manifest, "source": {**source, "stats": stats}}, indent=2))
    except OSError:
        pass
    return True


def load_cached(model_dir: Path, model_id: str, adapter_sha256: str | None) -> tuple[bytes | None, str]:
    """(the cached, verified graph, "") or (None, why there is none). Never raises for a bad cache."""
    directory = export_dir(model_dir, adapter_sha256)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        return None, "not exported yet"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            return None, "manifest is not an object"
        for key, value in _expected(model_id, adapter_sha256).items():
            if manifest.get(key) != value:
                return None, f"stale ({key} {manifest.get(key)!r}, now {value!r})"
        if not _source_matches(Path(model_dir), manifest, directory):
            return None, "stale (the model files changed)"
        data = (directory / MODEL_FILE).read_bytes()
    except (OSError, ValueError) as exc:
        return None, f"unreadable ({exc})"
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        return None, f"{MODEL_FILE} does not match its checksum"
    return data, ""


def read_manifest(model_dir: Path, adapter_sha256: str | None) -> dict[str, Any] | None:
    try:
        return json.loads((export_dir(model_dir, adapter_sha256) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- the export -------------------------------------------------------------------------------------------------


def export(model_dir: Path, adapter: Path | None = None, *, force: bool = False) -> Path:
    """Export, optimise, verify and cache the encoder graph; returns its cache folder.

    Serialised by a lock on the folder: a second process waits, then finds the first one's export. ``force``
    exports again even if a valid export is cached. Raises ``ExportError``.
    """
    from index.encoder import MODEL_ID, _load_config
    from index.files import build_lock, remove_leftovers

    model_dir = Path(model_dir)
    adapter_sha256 = _file_sha256(adapter) if adapter is not None else None
    model_id = f"{MODEL_ID}+{adapter_sha256[:12]}" if adapter_sha256 else MODEL_ID
    directory = export_dir(model_dir, adapter_sha256)
    with build_lock(directory):
        if not force and load_cached(model_dir, model_id, adapter_sha256)[0] is not None:
            return directory
        remove_leftovers(directory, (MODEL_FILE, MANIFEST))
        (directory / MANIFEST).unlink(missing_ok=True)  # a half-replaced export is never mistaken for valid
        started = time.perf_counter()
        source = source_fingerprint(model_dir)  # before reading the files: a change meanwhile reads as stale
        cfg = _load_config(model_dir)
        data, info = _export_bytes(model_dir, cfg, adapter)
        _write(directory / MODEL_FILE, data)
        manifest = {
            **_expected(model_id, adapter_sha256),
            "model_dir": str(model_dir.resolve()),
            "source": source,
            "adapter": str(Path(adapter).resolve()) if adapter is not None else None,
            "file": MODEL_FILE,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            **info,
            "export_seconds": round(time.perf_counter() - started, 2),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write(directory / MANIFEST, json.dumps(manifest, indent=2).encode())
    log.info("exported the encoder graph to %s in %.1f s", directory, manifest["export_seconds"])
    _prune(directory, manifest)
    return directory


def _prune(keep: Path, manifest: dict[str, Any]) -> None:
    """Remove the exports this one replaces (the same adapter file before it was retrained) and those of model
    folders that no longer exist (an uninstalled environment): each is ~90 MB."""
    import shutil

    for other in keep.parent.iterdir():
        if other == keep or not other.is_dir():
            continue
        try:
            old = json.loads((other / MANIFEST).read_text(encoding="utf-8"))
            gone = not Path(old["model_dir"]).is_dir()
            replaced = old["model_dir"] == manifest["model_dir"] and old["adapter"] == manifest["adapter"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours to judge: an export being written, or something else
        if gone or replaced:
            shutil.rmtree(other, ignore_errors=True)


def _write(path: Path, data: bytes) -> None:
    from index.files import replacing

    with replacing(path) as tmp:
        tmp.write_bytes(data)


def _wrapped(model):
    import torch

    class _Wrapped(torch.nn.Module):
        """BertModel up to its last hidden state; one segment (token type 0), as sentence-transformers runs it.

        Passing the zeros explicitly (instead of the model's buffer) lets the optimizer fold the segment
        embedding into one EmbedLayerNormalization with no shape arithmetic around it.
        """

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            out = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            )
            return out.last_hidden_state

    return _Wrapped(model).eval()


def _torch_model(model_dir: Path, adapter: Path | None):
    """The transformers model, eager attention (the pattern the optimizer fuses), adapter merged in."""
    import numpy as np
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from index.encoder import merge_adapter

    hf_logging.set_verbosity_error()
    try:
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError and its own errors for bad folders
        raise ExportError(f"transformers cannot load {model_dir}: {exc}") from exc
    model.eval()
    if adapter is not None:
        params = dict(model.named_parameters())
        base = {name: p.detach().numpy() for name, p in params.items()}
        merged = merge_adapter(base, adapter)  # the same arithmetic as the built-in graph's merge
        with torch.no_grad():
            for name, value in merged.items():
                if value is not base[name]:
                    params[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return model


def _export_bytes(model_dir: Path, cfg: dict[str, Any], adapter: Path | None) -> tuple[bytes, dict[str, Any]]:
    """torch.onnx.export, then the transformer optimizer, then a check against the torch model."""
    import tempfile
    import warnings

    try:
        import onnx
        import torch
        import transformers
        from onnxruntime.transformers import optimizer
    except ImportError as exc:
        raise ExportError(
            f"the export needs torch, transformers and onnx (`pip install onnx`): {exc}"
        ) from exc

    model = _torch_model(model_dir, adapter)
    wrapped = _wrapped(model)
    # A padded batch, so the mask path is traced even where a model would skip an all-ones mask.
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    dynamic = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    with tempfile.TemporaryDirectory(prefix="tutor-onnx-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter; the result is checked below
            torch.onnx.export(
                wrapped,
                (ids, mask),
                str(raw),
                dynamo=False,  # the TorchScript exporter: its graph is the one the BERT fusions match
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={**dynamic, "last_hidden_state": {0: "batch", 1: "seq"}},
                opset_version=OPSET,
                do_constant_folding=True,
            )
        opt_logger = logging.getLogger("onnxruntime.transformers")
        level = opt_logger.level
        opt_logger.setLevel(logging.WARNING)
        try:
            optimized = optimizer.optimize_model(
                str(raw),
                model_type="bert",
                num_heads=cfg["heads"],
                hidden_size=cfg["hidden"],
                opt_level=0,  # the Python fusions only; onnxruntime applies its own when it loads the graph
                use_gpu=False,
            )
        finally:
            opt_logger.setLevel(level)
    optimized.change_graph_inputs_to_int32()  # the fused kernels take int32 ids and mask, as the built-in graph
    optimized.prune_graph()
    fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    want = {
        "EmbedLayerNormalization": 1,
        "Attention": cfg["layers"],
        "SkipLayerNormalization": 2 * cfg["layers"],
        "BiasGelu": cfg["layers"],
    }
    if any(fused.get(op, 0) != n for op, n in want.items()):
        raise ExportError(f"the optimizer did not fuse the graph as expected: {fused}, want {want}")
    data = optimized.model.SerializeToString()
    max_diff = _verify(data, model, model_dir, cfg)
    info = {
        "fused": fused,
        "max_abs_diff_vs_torch": max_diff,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
    }
    return data, info


def _verify(data: bytes, model, model_dir: Path, cfg: dict[str, Any]) -> float:
    """Largest difference between the exported graph's sentence vectors and the torch model's."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer

    from index.encoder import _pool

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(cfg["max_len"])
    rows = [e.ids for e in tokenizer.encode_batch(list(VERIFY_TEXTS))]
    width = max(map(len, rows))
    ids = np.zeros((len(rows), width), dtype=np.int32)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        (hidden,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
    except Exception as exc:  # onnxruntime's own error types
        raise ExportError(f"onnxruntime cannot run the exported graph: {exc}") from exc
    with torch.no_grad():
        expected = model(
            input_ids=torch.from_numpy(ids.astype(np.int64)),
            attention_mask=torch.from_numpy(mask.astype(np.int64)),
            token_type_ids=torch.zeros(ids.shape, dtype=torch.int64),
        ).last_hidden_state.numpy()
    lengths = mask.sum(axis=1)
    diff = float(np.abs(_pool(hidden, mask, lengths) - _pool(expected, mask, lengths)).max())
    if not diff <= VERIFY_TOL:
        raise ExportError(f"the exported graph's vectors differ from torch's by {diff:.2e} (> {VERIFY_TOL})")
    return diff


# --- command line -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Export the plain encoder and the shipped query adapter's (or the adapters given); --check only reports."""
    import argparse

    from index.encoder import EncoderError, MiniLMEncoder, default_model_dir

    parser = argparse.ArgumentParser(prog="python -m index.onnx_export", description=main.__doc__)
    parser.add_argument("--adapter", type=Path, action="append", help="an adapter to export (repeatable)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain encoder")
    parser.add_argument("--no-adapter", action="store_true", help="skip the shipped query adapter")
    parser.add_argument("--force", action="store_true", help="export again even if a valid export is cached")
    parser.add_argument("--check", action="store_true", help="say what is cached, export nothing")
    args = parser.parse_args(argv)
    try:
        model_dir = default_model_dir()
    except EncoderError as exc:
        print(f"error: {exc}")
        return 1
    if args.adapter or args.no_adapter:
        adapters = list(args.adapter or ())
    else:
        from index.model import MODEL_DIR

        shipped = MODEL_DIR / "adapter.safetensors"
        adapters = [shipped] if shipped.is_file() else []
    todo: list[Path | None] = ([] if args.no_plain else [None]) + adapters
    status = 0
    for adapter in todo:
        label = f"adapter {adapter}" if adapter else "plain encoder"
        digest = _file_sha256(adapter) if adapter else None
        model_id = MiniLMEncoder.model_id + (f"+{digest[:12]}" if digest else "")
        if args.check:
            data, why = load_cached(model_dir, model_id, digest)
            print(f"{label}: {'exported' if data is not None else why} ({export_dir(model_dir, digest)})")
            status |= data is None
            continue
        if not args.force and load_cached(model_dir, model_id, digest)[0] is not None:
            print(f"{label}: already exported ({export_dir(model_dir, digest)})")
            continue
        print(f"{label}: exporting (torch.onnx.export + onnxruntime's optimizer, ~10-30 s) ...", flush=True)
        try:
            directory = export(model_dir, adapter, force=args.force)
        except (ExportError, EncoderError, OSError) as exc:
            print(f"{label}: export failed: {exc}")
            status = 1
            continue
        manifest = read_manifest(model_dir, digest) or {}
        diff, seconds = manifest.get("max_abs_diff_vs_torch", float("nan")), manifest.get("export_seconds", 0)
        print(f"{label}: {directory} (max |export - torch| {diff:.1e}, {seconds:.1f} s)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
