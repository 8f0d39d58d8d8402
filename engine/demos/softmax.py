"""The softmax demo: exp and softmax columns for given activations (bear_softmax) and the cross-entropy for
a target."""

from __future__ import annotations

import math
import re

from engine.errors import BadParameter
from engine.parse import NUM, N, S, list_items, read_scalar
from engine.spec import FASTBOOK_CH5, DemoOutput, DemoSpec, KBRef, ParamSpec

SPEC = DemoSpec(
    name="softmax",
    order=50,
    summary="exp and softmax columns for given activations (bear_softmax) and the cross-entropy for a target.",
    params=(
        ParamSpec(
            name="activations",
            kind="floats",
            default=[0.02, -2.49, 1.25],
            help="the output activations (logits)",
            lo=-80,
            hi=80,
            min_len=2,
            max_len=20,
            words=("activations", "logits", "scores", "of"),
        ),
        ParamSpec(
            name="target",
            kind="int",
            default=0,
            help="index of the correct class for the cross-entropy",
            lo=0,
            hi=19,
            words=("target", "label", "correct class", "class"),
        ),
    ),
    examples=(
        "calculate the exp and softmax columns of bear_softmax",
        "softmax of 1, 2, 3 with target 2",
        "cross-entropy for logits 2.0 1.0 0.1",
        "softmax activations=0.02,-2.49,1.25 target=2",
    ),
    keywords={
        "softmax": 6,
        r"\bbear": 3,
        "cross.?entropy": 4,
        r"\bexp\b": 2,
        "log.?softmax": 4,
        r"\bnll": 2,
        "logits": 2,
    },
    kb=(
        KBRef(
            FASTBOOK_CH5,
            "Calculate the exp and softmax columns of <<bear_softmax>> yourself (i.e., in a spreadsheet, with a "
            "calculator, or in a notebook).",
        ),
        KBRef(
            FASTBOOK_CH5,
            "What are the two properties of activations that softmax ensures? Why is this important?",
        ),
        KBRef(FASTBOOK_CH5, "What are the two pieces that are combined into cross-entropy loss in PyTorch?"),
    ),
    own=("activations", "target"),
    singular=("target",),
    budget_s=15,
    arithmetic=True,
)


_RUN = re.compile(rf"{N}(?:(?:\s*+(?:,|\band\b)\s*+|\s++){NUM})++")


def extract(norm: str) -> tuple[dict, str]:
    """The target ("target 2", "class 2") and the longest run of numbers as the logits; with the text they
    leave, where nothing else may read a target ("for 3 classes 1 2 3": the 3 counts the logits)."""
    out: dict = {}
    m = re.search(rf"\b(?:target|label|correct class|class|for class)\s*(?:=|:|is|index)?\s*({S})", norm)
    if m:
        out["target"] = read_scalar(m.group(1), "softmax: target")
        norm = norm[: m.start()] + " " + norm[m.end() :]
    runs = [(list_items(r.group(0), "softmax: activations"), r) for r in _RUN.finditer(norm)]
    if runs:  # the longest run of numbers; kept as text, so validation refuses nan, inf, 1e999 by name
        items, r = max(runs, key=lambda ir: len(ir[0]))
        out["activations"] = items
        norm = norm[: r.start()] + " " + norm[r.end() :]
    return out, norm


def run(p: dict, device: str) -> DemoOutput:
    import torch
    import torch.nn.functional as F
    from matplotlib.ticker import MaxNLocator

    from engine.plot import figure, note, png, value_bars

    acts = p["activations"]
    t = p["target"]
    if t >= len(acts):
        raise BadParameter(f"softmax: target must be below the number of activations ({len(acts)}), got {t}")
    # by hand, in float64 Python: exp, sum, divide
    exps = [math.exp(a) for a in acts]
    total = sum(exps)
    probs = [e / total for e in exps]
    loss = -math.log(probs[t])
    # independently, with torch: softmax and cross_entropy (log_softmax + nll_loss)
    x = torch.tensor([acts], dtype=torch.float64)
    tprobs = torch.softmax(x, dim=1)[0].tolist()
    tloss = F.cross_entropy(x, torch.tensor([t])).item()
    numbers = {
        "exp": exps,
        "sum_exp": total,
        "probs": probs,
        "loss": loss,
        "torch_probs": tprobs,
        "torch_loss": tloss,
        "agree": max(abs(a - b) for a, b in zip(probs, tprobs, strict=True)) < 1e-12
        and abs(loss - tloss) < 1e-12,
    }
    bear = acts == [0.02, -2.49, 1.25]
    labels = ["grizzly", "black", "teddy"] if bear else [f"class {i}" for i in range(len(acts))]

    fig = figure(9, 3.6, layout=None)
    axs = fig.subplots(1, 3)
    few = len(acts) <= 8  # values written on the bars: no axis needed (ticks are the slow part of a draw)
    fig.subplots_adjust(
        left=0.02 if few else 0.06,
        right=0.99,
        top=0.9,
        bottom=0.12 if few else 0.16,
        wspace=0.12 if few else 0.3,
    )
    for ax, vals, title in (
        (axs[0], acts, "activation (logit)"),
        (axs[1], exps, "exp(activation)"),
        (axs[2], probs, "softmax = exp / Σexp"),
    ):
        colors = ["#d62728" if i == t else "#1f77b4" for i in range(len(vals))]
        ax.set_title(title)
        if few:
            value_bars(ax, vals, colors, "{:.2f}", labels)
        else:
            ax.bar(range(len(vals)), vals, color=colors)
            ax.set_xticks(range(len(vals)), labels, rotation=90, fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.axhline(0, color="black", linewidth=0.8)
    top = max(1.0, axs[2].get_ylim()[1]) if few else 1.1
    axs[2].set_ylim(0, top * 1.2 if few else top)
    note(
        axs[2],
        f"sum = {sum(probs):.3f}\ntarget = {labels[t]}\nloss = −log {probs[t]:.3f} = {loss:.3f}",
        "upper left",
    )
    img = png(fig)
    rows = "\n".join(
        f"{lab:>10}: act {a:+.2f}  exp {e:.2f}  softmax {q:.3f}"
        for lab, a, e, q in zip(labels, acts, exps, probs, strict=True)
    )
    text = (
        ("The book's bear_softmax example. " if bear else "")
        + f"exp makes every activation positive; dividing by their sum ({total:.2f}) makes them add up to 1 "
        f"and exaggerates the gaps, so the largest activation dominates.\n```\n{rows}\n```\n"
        f"Cross-entropy for target {labels[t]}: −log({probs[t]:.4f}) = **{loss:.4f}**; torch's "
        f"F.cross_entropy (log_softmax + nll_loss) gives {tloss:.4f}."
    )
    return DemoOutput(numbers, text, (img,))
