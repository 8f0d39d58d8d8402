"""The weight_init demo: deep tanh/ReLU MLP at init scales 0.01, Xavier and He: per-layer activation std
and histograms."""

from __future__ import annotations

import math
import re

from engine.parse import S, read_scalar
from engine.spec import CS231N_CARDS, FASTBOOK_CH4, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

SPEC = DemoSpec(
    name="weight_init",
    order=120,
    summary="Deep tanh/ReLU MLP at init scales 0.01, Xavier and He: per-layer activation std and histograms.",
    params=(
        ParamSpec(
            name="activation", kind="choice", default="tanh", help="nonlinearity", choices=("tanh", "relu")
        ),
        ParamSpec(
            name="depth",
            kind="int",
            default=10,
            help="number of hidden layers",
            lo=2,
            hi=50,
            words=("depth", "layers"),
            number_before=True,
        ),
        ParamSpec(
            name="width",
            kind="int",
            default=500,
            help="units per layer",
            lo=8,
            hi=2048,
            words=("width", "units", "neurons", "hidden"),
            number_before=True,
        ),
        ParamSpec(
            name="schemes",
            kind="choices",
            default=["small", "xavier", "he"],
            help="init schemes (small = N(0, 0.01²))",
            choices=("small", "xavier", "he"),
            aliases={"0.01": "small", "glorot": "xavier", "kaiming": "he"},
            max_len=3,
        ),
        SEED,
    ),
    examples=(
        "weight init for a deep tanh network",
        "xavier vs he on a 10-layer relu mlp",
        "init 0.01 with 20 layers of tanh",
        "weight_init activation=relu depth=15",
    ),
    keywords={
        "weight init|initiali[sz]": 4,
        r"\binit\b": 2,
        "xavier|glorot": 5,
        r"kaiming|\bhe\b": 4,
        "deep (tanh|relu)": 2,
        r"\binit\b.*\b(tanh|relu)|\b(tanh|relu)\b.*\binit": 4,
        r"\d+[\s-]layers? (of )?(tanh|relu)": 3,
        "saturated": 1,
    },
    kb=(
        KBRef(FASTBOOK_CH4, "How do we initialize the weights in a model?"),
        KBRef(CS231N_CARDS, "the recommended heuristic to initialize each neuron's weight vector is"),
        KBRef(
            CS231N_CARDS,
            "Seeing all tanh activation neurons outputting 0 or all completely saturated at -1 or 1 would imply what?",
        ),
        KBRef(
            CS231N_CARDS,
            "The distribution of outputs from a randomly initialized neuron has a variance that grows with ____",
        ),
    ),
    budget_s=30,
)


def extract(norm: str) -> dict:
    out: dict = {}
    m = re.search(rf"({S})[\s-](?:hidden[\s-])?layers?\b", norm)  # "10 hidden layers" is a depth too
    if m:
        out["depth"] = read_scalar(m.group(1), "weight_init: depth")
    return out


def _mean_field(act: str, sigma_w: float, width: int, depth: int) -> list[float]:
    """Predicted post-activation std per layer: q_l = σ_w²·n·E[φ(h_{l-1})²], h ~ N(0, q) (Gauss-Hermite)."""
    import numpy as np

    z, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    phi = np.tanh if act == "tanh" else (lambda v: np.maximum(v, 0))
    second = 1.0  # E[x²] of the unit-gaussian input
    out = []
    for _ in range(depth):
        q = sigma_w**2 * width * second
        a = phi(math.sqrt(q) * z)
        mean, second = float((w * a).sum()), float((w * a**2).sum())
        out.append(math.sqrt(max(second - mean**2, 0.0)))
    return out


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch
    from torch import nn

    from engine.plot import figure, png

    act, depth, width, seed = p["activation"], p["depth"], p["width"], p["seed"]
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(500, width, generator=g)
    sigmas = {"small": 0.01, "xavier": 1 / math.sqrt(width), "he": math.sqrt(2 / width)}
    phi = torch.tanh if act == "tanh" else torch.relu
    stds, preds, hists = {}, {}, {}
    for scheme in p["schemes"]:
        h, s, hs = x0.to(device), [], []
        for _ in range(depth):
            w = torch.empty(width, width)
            if scheme == "small":
                w.normal_(0, 0.01, generator=g)
            elif scheme == "xavier":
                nn.init.xavier_normal_(w, generator=g)
            else:
                nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
            h = phi(h @ w.to(device))
            s.append(h.std().item())
            hs.append(h.flatten()[:20000].cpu().numpy())
        stds[scheme], hists[scheme] = s, hs
        preds[scheme] = _mean_field(act, sigmas[scheme], width, depth)
    last = {k: v[-1] for k, v in stds.items()}
    numbers = {
        "last_layer_std": last,
        "predicted_last_layer_std": {k: v[-1] for k, v in preds.items()},
        "per_layer_std": stds,
        "weight_std": {k: sigmas[k] for k in stds},
    }

    fig = figure(8, 3.8)
    ax = fig.subplots()
    names = {"small": "N(0, 0.01²)", "xavier": "Xavier 1/√n", "he": "He √(2/n)"}
    for i, (k, s) in enumerate(stds.items()):
        ax.semilogy(range(1, depth + 1), s, "o-", color=f"C{i}", linewidth=2, label=f"{names[k]} (measured)")
        ax.semilogy(range(1, depth + 1), np.maximum(preds[k], 1e-300), ":", color=f"C{i}", linewidth=1.6)
    ax.set_xlabel("layer")
    ax.set_ylabel("activation std (log)")
    ax.set_title(f"{depth}-layer {act} MLP, width {width}: std per layer (dotted = mean-field theory)")
    ax.legend(loc="lower left")
    img1 = png(fig)

    cols = sorted({0, depth // 4, depth // 2, (3 * depth) // 4, depth - 1})
    fig = figure(10, 1.6 + 1.6 * len(stds), layout=None)
    axs = fig.subplots(len(stds), len(cols), squeeze=False)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.08, hspace=0.45, wspace=0.15)
    fig.suptitle(f"Activation histograms per layer ({act})", fontsize=11.5, fontweight="bold")
    rng = (-1, 1) if act == "tanh" else (0, 3)
    for r, (k, hs) in enumerate(hists.items()):
        for c, layer in enumerate(cols):
            ax = axs[r][c]
            counts, edges = np.histogram(hs[layer], bins=40, range=rng)
            ax.stairs(counts, edges, fill=True, color=f"C{r}")
            ax.set_yticks([])
            ax.tick_params(labelsize=8)
            if r == 0:
                ax.set_title(f"layer {layer + 1}", fontsize=10)
            if c == 0:
                ax.set_ylabel(names[k], fontsize=9)
    img2 = png(fig)
    summary = ", ".join(f"{names[k]} {v:.2g}" for k, v in last.items())
    text = (
        f"Unit-gaussian data through {depth} {act} layers of width {width}. Std of the last layer: {summary} "
        f"(mean-field prediction: " + ", ".join(f"{v[-1]:.2g}" for v in preds.values()) + "). With weights "
        f"N(0, 0.01²) each layer multiplies the std by about 0.01·√{width} < 1, so activations collapse to 0 "
        f"and so do gradients; too large and tanh saturates at ±1. Scaling by 1/√n (Xavier) keeps a tanh net's "
        f"variance roughly stable; ReLU halves the variance, which He's √(2/n) compensates. The variance of a "
        f"random neuron's output grows with its number of inputs — that is what these scales undo."
    )
    return DemoOutput(numbers, text, (img1, img2))
