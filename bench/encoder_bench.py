"""Measure the retrieval encoder's two graphs, built-in and exported, against each other and sentence-transformers.

``index.encoder`` runs either the ONNX graph it writes by hand (``builtin``) or the one ``index.onnx_export``
exports with ``torch.onnx.export`` and onnxruntime's transformer optimizer (``exported``, cached once per install).
This prints, for both in the same run (interleaved, medians, since the machine is shared):

- cold start: a fresh interpreter from ``import`` to the first vector, model load included;
- warm p50 for one short query (cache off) and for a batch of 64 texts;
- the largest absolute difference of their vectors from sentence-transformers' over a few hundred texts;
- the one-time export cost, when the export is not cached yet (or with ``--reexport``).

    .venv/bin/python bench/encoder_bench.py [--adapter shipped|PATH] [--threads N] [--cold-runs 7] [--no-st]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import index.offline  # noqa: F401 - the Hugging Face environment, before those libraries load

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOPICS = [
    "backpropagation", "the vanishing gradient problem", "batch normalization", "layer norm", "dropout",
    "the Adam optimizer", "learning rate warmup", "weight decay", "residual connections", "self-attention",
    "multi-head attention", "positional encodings", "the softmax function", "cross-entropy loss", "ReLU",
    "GELU", "convolutional layers", "max pooling", "LSTMs", "gradient clipping", "the transformer decoder",
    "tokenization", "embeddings", "overfitting", "early stopping", "data augmentation", "transfer learning",
    "the KL divergence", "variational autoencoders", "GANs", "mixed precision training", "torch.no_grad()",
]  # fmt: skip
TEMPLATES = [
    "What is {t}?",
    "How does {t} work?",
    "why do we need {t} in deep networks",
    "Can you explain {t} like I'm five?",
    "What's the difference between {t} and {u}?",
    "When should I use {t} instead of {u} when training a small model on a laptop?",
    "I don't understand {t}. My loss goes to NaN after a few epochs, could it be related?",
    "Explain {t} with an example in PyTorch, e.g. `model(x)` then `loss.backward()`",
    "How is {t} implemented in practice, and what are the common pitfalls people run into with it?",
    "is {t} still used in modern LLMs or has it been replaced by {u}?",
]
EDGE = ["", "   ", "word " * 400, "Ünïcödé 日本語 🤖 naïve café", "```python\nx = torch.randn(3)\n```"]
GRAPHS = ("builtin", "exported")

COLD_SNIPPET = """
import time; t0 = time.perf_counter()
{body}
print(time.perf_counter() - t0)
"""
COLD_OURS = (
    "from index.encoder import MiniLMEncoder\n"
    "MiniLMEncoder(threads={threads}, adapter={adapter!r}, graph={graph!r}).encode_one('How does backpropagation work?')"
)
COLD_ST = (
    "import torch; torch.set_num_threads({threads})\n"
    "from sentence_transformers import SentenceTransformer\n"
    "from index.encoder import default_model_dir\n"
    "SentenceTransformer(str(default_model_dir()), device='cpu').encode(['How does backpropagation work?'])"
)


def queries(n: int, seed: int = 0) -> list[str]:
    """Student-question-like texts of realistic lengths (~6-30 tokens), deterministic."""
    rng = random.Random(seed)
    return [rng.choice(TEMPLATES).format(t=rng.choice(TOPICS), u=rng.choice(TOPICS)) for _ in range(n)]


def cold_starts(bodies: dict[str, str], runs: int) -> dict[str, tuple[float, float]]:
    """Median (in-process seconds, whole-process wall seconds) per body, fresh interpreters, runs interleaved."""
    inner: dict[str, list[float]] = {k: [] for k in bodies}
    wall: dict[str, list[float]] = {k: [] for k in bodies}
    names = list(bodies)
    for r in range(runs):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", COLD_SNIPPET.format(body=bodies[name])],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            wall[name].append(time.perf_counter() - t0)
            inner[name].append(float(out.stdout.strip().splitlines()[-1]))
    return {k: (statistics.median(inner[k]), statistics.median(wall[k])) for k in bodies}


def interleaved_ms(fns: dict[str, object], samples: list, warmup: int = 10) -> dict[str, list[float]]:
    """Milliseconds per call of each fn on each sample, the fns alternating call by call."""
    names = list(fns)
    for sample in samples[:warmup]:
        for name in names:
            fns[name](sample)
    times: dict[str, list[float]] = {k: [] for k in names}
    for i, sample in enumerate(samples):
        for name in names if i % 2 else names[::-1]:
            t0 = time.perf_counter()
            fns[name](sample)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="intra-op threads (default: all cores, <= 8)"
    )
    parser.add_argument(
        "--adapter", default=None, help="'shipped' (the query encoder) or an adapter file (default: none)"
    )
    parser.add_argument("--queries", type=int, default=500, help="single-query latency sample size")
    parser.add_argument("--batches", type=int, default=20, help="64-text batches timed per graph")
    parser.add_argument("--texts", type=int, default=300, help="texts compared with sentence-transformers")
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--reexport", action="store_true", help="export again and time it")
    parser.add_argument("--no-st", action="store_true", help="skip the sentence-transformers baseline")
    args = parser.parse_args()

    from index import onnx_export
    from index.encoder import MiniLMEncoder, _default_threads, default_model_dir

    adapter = args.adapter
    if adapter == "shipped":
        from index.model import MODEL_DIR

        adapter = str(MODEL_DIR / "adapter.safetensors")
    threads = args.threads or _default_threads()
    print(f"threads={threads}  cpus={os.cpu_count()}  python={sys.version.split()[0]}  adapter={adapter}")
    print(f"export cache: {onnx_export.cache_root()}")

    probe = MiniLMEncoder(threads=threads, adapter=adapter, cache_size=0)  # auto: is the export there?
    if probe.graph != "exported" or args.reexport:
        which = ["--no-plain", "--adapter", adapter] if adapter else ["--no-adapter"]
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "index.onnx_export", "--force", *which],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"export (once per install, fresh process): {time.perf_counter() - t0:.1f} s wall")
    del probe

    bodies = {g: COLD_OURS.format(threads=threads, adapter=adapter, graph=g) for g in GRAPHS}
    if not args.no_st and adapter is None:
        bodies["sentence-transformers"] = COLD_ST.format(threads=threads)
    cold = cold_starts(bodies, args.cold_runs)

    encoders = {g: MiniLMEncoder(threads=threads, adapter=adapter, cache_size=0, graph=g) for g in GRAPHS}
    assert encoders["exported"].graph == "exported", "the export did not load"
    single = interleaved_ms({g: e.encode_one for g, e in encoders.items()}, queries(args.queries, seed=1))
    batches = [queries(64, seed=100 + i) for i in range(args.batches)]
    batch = interleaved_ms(
        {g: (lambda t, e=e: e.encode(t, batch_size=64)) for g, e in encoders.items()}, batches, 2
    )

    print(
        f"\n{'graph':22} {'cold(in-proc)':>13} {'cold(wall)':>10} {'query p50':>9} {'p90':>6}"
        f" {'64-batch p50':>12} {'texts/s':>7}"
    )
    for g in GRAPHS:
        q, b = single[g], batch[g]
        print(
            f"{g:22} {cold[g][0]:12.3f}s {cold[g][1]:9.3f}s {statistics.median(q):7.2f}ms"
            f" {np.percentile(q, 90):6.2f} {statistics.median(b):10.1f}ms {64e3 / statistics.median(b):7.0f}"
        )
    if "sentence-transformers" in cold:
        print(
            f"{'sentence-transformers':22} {cold['sentence-transformers'][0]:12.3f}s {cold['sentence-transformers'][1]:9.3f}s"
        )
    ratio = [b / a for a, b in zip(single["builtin"], single["exported"], strict=True)]
    print(f"exported/builtin per query (paired): median {statistics.median(ratio):.3f}")

    texts = EDGE + queries(args.texts, seed=3)
    vectors = {g: e.encode(texts) for g, e in encoders.items()}
    singles = {g: np.stack([e.encode_one(t) for t in texts]) for g, e in encoders.items()}
    print(
        f"\nmax |exported - builtin| over {len(texts)} texts: {np.abs(vectors['exported'] - vectors['builtin']).max():.2e}"
    )
    if args.no_st:
        return
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    if adapter is None:
        st = SentenceTransformer(str(default_model_dir()), device="cpu")
        ref = st.encode(texts, batch_size=64, convert_to_numpy=True)
        name = "sentence-transformers"
    else:  # the adapted model has no sentence-transformers copy: the torch model the export was made from
        model = onnx_export._torch_model(default_model_dir(), Path(adapter))
        ref = _torch_vectors(model, encoders["builtin"], texts)
        name = "torch (merged adapter)"
    for g in GRAPHS:
        print(
            f"max |{g} - {name}|: batch {np.abs(vectors[g] - ref).max():.2e},"
            f" one by one {np.abs(singles[g] - ref).max():.2e}"
        )


def _torch_vectors(model, encoder, texts: list[str]) -> np.ndarray:
    """Vectors of the transformers model itself (tokenised and pooled as the encoder does)."""
    import torch

    from index.encoder import _pool

    out = []
    for start in range(0, len(texts), 64):
        rows = [e.ids for e in encoder._tokenizer.encode_batch(texts[start : start + 64])]
        width = max(map(len, rows))
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)], mask[i, : len(row)] = row, 1
        with torch.no_grad():
            hidden = model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.zeros_like(torch.from_numpy(ids)),
            ).last_hidden_state.numpy()
        out.append(_pool(hidden, mask, mask.sum(axis=1)))
    return np.concatenate(out)


if __name__ == "__main__":
    main()
