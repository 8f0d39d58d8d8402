"""The init_loss demo: expected softmax loss at initialisation, -log(1/N), checked on a random linear
classifier."""

from __future__ import annotations

import math
import re

from engine.parse import SB, read_scalar
from engine.spec import CS231N_CARDS, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

SPEC = DemoSpec(
    name="init_loss",
    order=60,
    summary="Expected softmax loss at initialisation, -log(1/N), checked on a random linear classifier.",
    params=(
        ParamSpec(
            name="classes",
            kind="int",
            default=10,
            help="number of classes N",
            lo=2,
            hi=10000,
            words=("classes", "n", "categories", "way"),
            number_before=True,
        ),
        ParamSpec(
            name="features",
            kind="int",
            default=3072,
            help="input dimension of the random linear classifier",
            lo=1,
            hi=4096,
            words=("features", "dims", "dimensions", "inputs"),
            number_before=True,
        ),
        ParamSpec(
            name="weight_scale",
            kind="float",
            default=0.0001,
            help="std of the random weights (small, as at init)",
            lo=0.0,
            hi=10.0,
            words=("weight scale", "scale", "std"),
        ),
        SEED,
    ),
    examples=(
        "expected loss at init for 10 classes",
        "initial softmax loss with 1000 classes",
        "-log(1/N) for N=100",
        "init_loss classes=100 weight_scale=0.01",
    ),
    keywords={
        "init(iali[sz]ation)? loss|initial (softmax )?loss|loss at init": 7,
        r"-?log\(1/n\)": 7,
        "expected loss": 5,
        "at init": 3,
        "random (weight|classifier|init)": 3,
        "classes": 1,
        "average softmax loss": 5,
    },
    kb=(
        KBRef(
            CS231N_CARDS,
            "Given a random weight matrix and N classes to predict, what should we predict the average softmax loss to be?",
        ),
    ),
    budget_s=15,
    arithmetic=True,
)


def extract(norm: str) -> dict:
    for pat, n in ((r"cifar-?100\b", 100), (r"cifar-?10\b", 10), (r"imagenet", 1000), (r"mnist", 10)):
        if re.search(pat, norm):
            return {"classes": n}
    m = re.search(rf"\bn\s*=\s*({SB})", norm)
    return {"classes": read_scalar(m.group(1), "init_loss: classes")} if m else {}


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from matplotlib.ticker import MaxNLocator, NullLocator

    from engine.plot import figure, png

    n, d, scale = p["classes"], p["features"], p["weight_scale"]
    theory = -math.log(1.0 / n)
    g = torch.Generator(device="cpu").manual_seed(p["seed"])
    batch = 256
    x = torch.randn(batch, d, generator=g)
    w = torch.randn(d, n, generator=g) * scale
    y = torch.randint(0, n, (batch,), generator=g)
    scores = (x @ w).to(device)
    per_example = F.cross_entropy(scores, y.to(device), reduction="none").cpu()
    empirical = per_example.mean().item()
    big = torch.randn(d, n, generator=g) * 0.1
    big_loss = F.cross_entropy(x @ big, y).item()
    numbers = {
        "loss": theory,
        "empirical_loss": empirical,
        "relative_gap": abs(empirical - theory) / theory,
        "loss_with_std_0.1": big_loss,
        "classes": n,
    }

    fig = figure(8.5, 3.6, layout=None)
    axs = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.14, wspace=0.28)
    ns = np.unique(np.geomspace(2, 10000, 60).astype(int))
    ax = axs[0]
    ax.semilogx(ns, np.log(ns), color="#1f77b4", label="−log(1/N) = log N")
    ax.plot(
        [n], [empirical], "o", color="#d62728", markersize=8, label=f"random init, N={n}: {empirical:.3f}"
    )
    # fixed, plain tick labels: the log locator's minor ticks and mathtext labels were most of the draw time
    ax.set_xticks([2, 10, 100, 1000, 10000], ["2", "10", "100", "1k", "10k"])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks([0, 2, 4, 6, 8])
    ax.set_xlabel("number of classes N")
    ax.set_ylabel("expected cross-entropy")
    ax.set_title("Loss at initialisation")
    ax.legend(loc="upper left")
    ax = axs[1]
    counts, edges = np.histogram(per_example.numpy(), bins=30)
    ax.stairs(counts, edges, fill=True, color="#1f77b4", alpha=0.85)  # one artist, not 30 rectangles
    ax.axvline(theory, color="#d62728", linewidth=2, label=f"log N = {theory:.3f}")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(4, integer=True))
    ax.set_ylim(0, counts.max() * 1.15)
    ax.set_title(f"Per-example loss, W ~ N(0, {scale:g}²)", fontsize=10.5)
    ax.set_xlabel("loss")
    ax.set_ylabel("examples")
    ax.legend(loc="upper right")
    img = png(fig)
    text = (
        f"With small random weights every score is ≈ 0, so softmax gives each of the {n} classes probability "
        f"≈ 1/{n} and the loss is −log(1/{n}) = **{theory:.4f}**. A random linear classifier "
        f"(weights ~ N(0, {scale:g}²) on {d}-dim inputs) measures {empirical:.4f}. If your first-batch loss "
        f"is far from this, initialisation or the loss is wrong (with std 0.1 weights it is already "
        f"{big_loss:.2f})."
    )
    return DemoOutput(numbers, text, (img,))
