"""Measure the retrieval encoder against the sentence-transformers baseline on this machine.

Prints cold start (fresh subprocess: import + load + first encode), warm single-query latency (p50/p99, cache
disabled), batch throughput, and the largest absolute difference between the two encoders' vectors.

    .venv/bin/python bench/encoder_bench.py [--threads N] [--queries 500] [--batch 256] [--no-st]
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

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

COLD_SNIPPET = """
import time; t0 = time.perf_counter()
{body}
print(time.perf_counter() - t0)
"""
COLD_OURS = (
    "from index.encoder import MiniLMEncoder\n"
    "MiniLMEncoder(threads={threads}).encode_one('How does backpropagation work?')"
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


def cold_start(body: str, runs: int) -> tuple[float, float]:
    """Median (in-process seconds, whole-process wall seconds) over fresh interpreters."""
    inner, wall = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", COLD_SNIPPET.format(body=body)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        wall.append(time.perf_counter() - t0)
        inner.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(inner), statistics.median(wall)


def latency_ms(fn, texts: list[str], warmup: int = 20) -> tuple[float, float]:
    for text in texts[:warmup]:
        fn(text)
    times = []
    for text in texts:
        t0 = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def throughput(fn, texts: list[str], repeats: int = 3) -> float:
    """Best of a few runs, in texts per second (the machine is shared, so the best run is the least disturbed)."""
    fn(texts[:64])
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(texts)
        best = max(best, len(texts) / (time.perf_counter() - t0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="intra-op threads (default: all cores, <= 8)"
    )
    parser.add_argument("--queries", type=int, default=500, help="single-query latency sample size")
    parser.add_argument("--batch", type=int, default=256, help="texts per throughput run")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--no-st", action="store_true", help="skip the sentence-transformers baseline")
    args = parser.parse_args()

    from index.encoder import MiniLMEncoder, _default_threads

    threads = args.threads or _default_threads()
    single, batch = queries(args.queries, seed=1), queries(args.batch, seed=2)
    print(f"threads={threads}  cpus={os.cpu_count()}  python={sys.version.split()[0]}")

    rows = []
    inner, wall = cold_start(COLD_OURS.format(threads=threads), args.cold_runs)
    enc = MiniLMEncoder(threads=threads, cache_size=0)
    p50, p99 = latency_ms(enc.encode_one, single)
    qps = throughput(lambda t: enc.encode(t, batch_size=64), batch)
    rows.append(("MiniLMEncoder (onnxruntime)", inner, wall, p50, p99, qps))

    if not args.no_st:
        inner, wall = cold_start(COLD_ST.format(threads=threads), args.cold_runs)
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        st = SentenceTransformer(str(enc.model_dir), device="cpu")
        p50, p99 = latency_ms(lambda t: st.encode([t], convert_to_numpy=True), single)
        qps = throughput(lambda t: st.encode(t, batch_size=64, convert_to_numpy=True), batch)
        rows.append(("SentenceTransformer", inner, wall, p50, p99, qps))

    print(
        f"{'encoder':30} {'cold(in-proc)':>13} {'cold(wall)':>10} {'p50 ms':>7} {'p99 ms':>7} {'batch q/s':>9}"
    )
    for name, inner, wall, p50, p99, qps in rows:
        print(f"{name:30} {inner:12.2f}s {wall:9.2f}s {p50:7.2f} {p99:7.2f} {qps:9.0f}")

    if not args.no_st:
        edge = [
            "",
            "   ",
            "word " * 400,
            "Ünïcödé 日本語 🤖 naïve café",
            "```python\nx = torch.randn(3)\n```",
        ]
        texts = edge + batch
        ref = st.encode(texts, batch_size=64, convert_to_numpy=True)
        ours_batch = enc.encode(texts)
        ours_single = np.stack([enc.encode_one(t) for t in texts])
        print(
            f"max |ours - ST|: batch {np.abs(ours_batch - ref).max():.2e}, single {np.abs(ours_single - ref).max():.2e}"
        )
        print(f"min cosine(ours, ST): {float(np.min(np.sum(ours_batch * ref, axis=1))):.8f}")


if __name__ == "__main__":
    main()
