"""The activations demo: sigmoid, tanh, ReLU, leaky ReLU, GELU and their gradients (autograd vs closed
form)."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from engine.errors import BadParameter
from engine.parse import SB, read_scalar
from engine.spec import CS231N_CARDS, FASTBOOK_CH4, DemoOutput, DemoSpec, KBRef, ParamSpec

if TYPE_CHECKING:
    import numpy as np


SPEC = DemoSpec(
    name="activations",
    order=70,
    summary="Sigmoid, tanh, ReLU, leaky ReLU, GELU and their gradients (autograd vs closed form).",
    params=(
        ParamSpec(
            name="functions",
            kind="choices",
            default=["sigmoid", "tanh", "relu", "leaky_relu", "gelu"],
            help="which functions",
            choices=("sigmoid", "tanh", "relu", "leaky_relu", "gelu"),
            aliases={"leaky": "leaky_relu", "leaky relu": "leaky_relu", "leakyrelu": "leaky_relu"},
            max_len=5,
        ),
        ParamSpec(
            name="x_min",
            kind="float",
            default=-5.0,
            help="left end of the x range",
            lo=-50,
            hi=49,
            words=("from", "x_min", "xmin"),
        ),
        ParamSpec(
            name="x_max",
            kind="float",
            default=5.0,
            help="right end of the x range",
            lo=-49,
            hi=50,
            words=("to", "x_max", "xmax"),
        ),
        ParamSpec(
            name="slope",
            kind="float",
            default=0.1,
            help="leaky ReLU negative slope",
            lo=0.0,
            hi=1.0,
            words=("slope", "negative slope", "alpha"),
        ),
    ),
    examples=(
        "plot sigmoid, tanh and relu with their gradients",
        "draw relu from -2 to 2",
        "leaky relu with slope 0.2 vs gelu",
        "activations functions=sigmoid,tanh",
    ),
    keywords={
        "sigmoid": 4,
        "tanh": 3,
        "relu": 3,
        "gelu": 4,
        "leaky": 3,
        r"\b(draw|plot)\b": 1,
        "activation functions?|non.?linearit": 4,
        "saturat": 2,
        "derivative": 1,
    },
    kb=(
        KBRef(FASTBOOK_CH4, "Draw the sigmoid function. What is special about its shape?"),
        KBRef(FASTBOOK_CH4, "What is “ReLU”? Draw a plot of it for values from -2 to +2."),
        KBRef(CS231N_CARDS, "3 problems with sigmoid"),
        KBRef(CS231N_CARDS, "range of tanh nonlinearity"),
        KBRef(CS231N_CARDS, "What neuron should I use?"),
    ),
    budget_s=20,
)


def extract(norm: str) -> dict:
    m = re.search(rf"(?:between|from|range)\s*({SB})\s*(?:and|to|\.\.)\s*\+?({SB})", norm)
    if not m:
        return {}
    return {
        "x_min": read_scalar(m.group(1), "activations: x_min"),
        "x_max": read_scalar(m.group(2), "activations: x_max"),
    }


LABELS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "leaky ReLU", "gelu": "GELU"}


def _closed_form_grad(name: str, x: np.ndarray, slope: float) -> np.ndarray:
    """Derivatives written out by hand, to check autograd against."""
    import numpy as np

    if name == "sigmoid":
        s = 1 / (1 + np.exp(-x))
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(x) ** 2
    if name == "relu":
        return (x > 0).astype(float)
    if name == "leaky_relu":
        return np.where(x > 0, 1.0, slope)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    return cdf + x * np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from engine.plot import figure, png

    lo, hi, slope = p["x_min"], p["x_max"], p["slope"]
    if hi - lo < 0.1:
        raise BadParameter(f"activations: x_max must exceed x_min by at least 0.1 (got {lo:g} to {hi:g})")
    grid = np.linspace(lo, hi, 801)
    if lo < 0 < hi:
        grid = np.unique(np.append(grid, 0.0))
    fns = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, slope),
        "gelu": F.gelu,
    }
    numbers: dict = {}
    curves = {}
    worst = 0.0
    for name in p["functions"]:
        x = torch.tensor(grid, dtype=torch.float64, device=device, requires_grad=True)
        y = fns[name](x)
        (g,) = torch.autograd.grad(y.sum(), x)
        y, g = y.detach().cpu().numpy(), g.cpu().numpy()
        mask = np.abs(grid) > 1e-9 if name in ("relu", "leaky_relu") else np.ones_like(grid, bool)
        worst = max(worst, float(np.abs(g - _closed_form_grad(name, grid, slope))[mask].max()))
        curves[name] = (y, g)
        numbers[f"max_grad_{name}"] = float(g.max())
        numbers[f"range_{name}"] = [float(y.min()), float(y.max())]
        edge = max(abs(lo), abs(hi))
        numbers[f"grad_{name}_at_{edge:g}"] = float(
            _closed_form_grad(name, np.array([edge if hi >= -lo else -edge]), slope)[0]
        )
    numbers["max_abs_err_autograd_vs_formula"] = worst

    fig = figure(10, 3.8)
    axs = fig.subplots(1, 2)
    for name, (y, g) in curves.items():
        axs[0].plot(grid, y, linewidth=2, label=LABELS[name])
        axs[1].plot(grid, g, linewidth=2, label=LABELS[name])
    axs[0].set_title("activation f(x)")
    axs[1].set_title("gradient f′(x) (autograd)")
    for ax in axs:
        ax.axhline(0, color="black", linewidth=0.7)
        ax.axvline(0, color="black", linewidth=0.7)
        ax.set_xlabel("x")
        ax.legend(loc="upper left")
    if "sigmoid" in curves:
        axs[1].annotate(
            "sigmoid′ ≤ 0.25",
            xy=(0, 0.25),
            xytext=(0.55 * hi, 0.45),
            arrowprops={"arrowstyle": "->", "color": "#555555"},
            fontsize=9.5,
        )
    image = png(fig)
    parts = []
    if "sigmoid" in curves:
        parts.append(
            f"sigmoid squashes to (0, 1), crosses 0.5 at x=0, and its gradient peaks at "
            f"{numbers['max_grad_sigmoid']:.4f} (= 1/4): even at best it shrinks gradients 4x, and in "
            f"the flat tails it kills them (saturation); its outputs are not zero-centred"
        )
    if "tanh" in curves:
        parts.append(
            f"tanh is a zero-centred, rescaled sigmoid with range (−1, 1) and max gradient "
            f"{numbers['max_grad_tanh']:.3f}"
        )
    if "relu" in curves:
        parts.append(
            "ReLU = max(x, 0): gradient exactly 1 for x > 0 and 0 for x < 0 (units stuck there are 'dead')"
        )
    if "leaky_relu" in curves:
        parts.append(f"leaky ReLU keeps a gradient of {slope:g} for x < 0")
    if "gelu" in curves:
        parts.append("GELU is a smooth ReLU, x·Φ(x), slightly negative just below 0")
    text = "; ".join(parts) + f". Autograd matches the hand-written derivatives to {worst:.1e}."
    return DemoOutput(numbers, text[0].upper() + text[1:], (image,))
