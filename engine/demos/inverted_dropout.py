"""The inverted_dropout demo: inverted dropout: scaling by 1/p at train time keeps the expected activation
equal to test time."""

from __future__ import annotations

import re

from engine.errors import BadParameter
from engine.parse import PCT, SB, cut_text, read_scalar
from engine.spec import CS231N_CARDS, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

SPEC = DemoSpec(
    name="inverted_dropout",
    order=170,
    summary="Inverted dropout: scaling by 1/p at train time keeps the expected activation equal to test time.",
    params=(
        ParamSpec(
            name="keep",
            kind="float",
            default=0.5,
            help="probability p of keeping a unit (CS231n's p; torch's Dropout takes 1 - p)",
            lo=0.05,
            hi=1.0,
            words=("keep", "keep probability", "keep prob", "p"),
        ),
        ParamSpec(
            name="units",
            kind="int",
            default=1000,
            help="units in the layer",
            lo=1,
            hi=2048,
            words=("units", "neurons"),
            number_before=True,
        ),
        ParamSpec(
            name="trials",
            kind="int",
            default=1000,
            help="training passes (dropout masks) to average over",
            lo=10,
            hi=2000,
            words=("trials", "passes", "masks", "iterations"),
            number_before=True,
        ),
        SEED,
    ),
    examples=(
        "what is inverted dropout",
        "dropout with keep probability 0.8",
        "inverted dropout with drop rate 0.3",
        "inverted_dropout keep=0.5 units=200",
    ),
    keywords={"dropout": 6, "inverted": 3, "keep prob": 3, "drop (rate|prob)": 3},
    kb=(
        KBRef(CS231N_CARDS, "inverted dropout"),
        KBRef(CS231N_CARDS, "dropout"),
        KBRef(CS231N_CARDS, "source of randomness / uncertainty for regularization"),
    ),
    budget_s=15,
)


def extract(norm: str) -> dict:
    m = re.search(rf"\bdrop(?:out)?[\s_]?(?:rate|probability|prob)\s*(?:of|=|:|is)?\s*({SB}{PCT})", norm)
    if not m:
        return {}
    tok = str(read_scalar(m.group(1), "inverted_dropout: the drop rate"))
    drop = float(tok[:-1]) / 100 if tok.endswith("%") else float(tok)  # a rate: 20% is 0.2
    keep = SPEC.param("keep")
    lo, hi = round(1 - keep.hi, 12), round(1 - keep.lo, 12)
    if not lo <= drop <= hi:  # nan and inf included: never silently the default
        raise BadParameter(
            f"inverted_dropout: the drop rate must be between {lo:g} and {hi:g} "
            f"(keep = 1 - drop, {keep.range_text()}; got {cut_text(m.group(1))})"
        )
    return {"keep": round(1 - drop, 12)}


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch
    from matplotlib.ticker import MaxNLocator
    from torch import nn

    from engine.plot import figure, png, value_bars

    keep, units, trials = p["keep"], p["units"], p["trials"]
    g = torch.Generator().manual_seed(p["seed"])
    x = torch.relu(torch.randn(units, generator=g, dtype=torch.float64)) + 0.1  # positive activations
    masks = (torch.rand(trials, units, generator=g, dtype=torch.float64) < keep).double()
    inverted = masks * x / keep  # train time, inverted: scale the kept units by 1/p
    plain = masks * x  # train time without the scaling: expectation p·x
    torch_drop = nn.Dropout(p=1 - keep).train()  # torch's p is the DROP probability
    torch.manual_seed(p["seed"])
    tout = torch_drop(x.expand(trials, units).to(device)).cpu()
    kept = tout != 0
    torch_scale = (tout[kept] / x.expand(trials, units)[kept]).mean().item() if kept.any() else float("nan")
    # test time: the layer is untouched, so its mean is x's
    tm, im_, pm, om = x.mean().item(), inverted.mean().item(), plain.mean().item(), tout.mean().item()
    numbers = {
        "scale": 1 / keep,
        "torch_scale": torch_scale,
        "test_mean": tm,
        "train_mean_inverted": im_,
        "train_mean_torch": om,
        "train_mean_without_scaling": pm,
        "relative_gap_inverted": abs(im_ - tm) / tm,
        "relative_gap_torch": abs(om - tm) / tm,
        "relative_gap_without_scaling": abs(pm - tm) / tm,
        "kept_fraction": masks.mean().item(),
    }

    fig = figure(10, 3.8, layout=None)
    axs = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    fig.subplots_adjust(left=0.02, right=0.98, top=0.88, bottom=0.16, wspace=0.18)
    ax = axs[0]
    value_bars(
        ax,
        [tm, im_, om, pm],
        ["#7f7f7f", "#2ca02c", "#1f77b4", "#d62728"],
        "{:.3f}",
        ["test time\n(untouched)", "train:\ninverted", "train: torch\nnn.Dropout", "train: no\nscaling"],
        fontsize=9,
    )
    ax.axhline(tm, color="#7f7f7f", linestyle="--", linewidth=1)
    ax.set_title(f"Mean activation, keep p = {keep:g}")
    ax = axs[1]
    shown = min(4, units)
    steps = np.arange(1, trials + 1)
    for j in range(shown):
        run = np.cumsum(inverted[:, j].numpy()) / steps
        c = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"][j]
        ax.plot(steps, run, color=c, linewidth=1.5)
        ax.axhline(x[j].item(), color=c, linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("training passes (log)")
    ax.set_ylabel("running mean of the unit")
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.set_title("4 units: train-time running mean → test value (dashed)", fontsize=10.5)
    img = png(fig)
    text = (
        f"Dropout keeps each unit with probability p = {keep:g}. Without correction a unit's expected "
        f"train-time output is p·x, so the network would see activations {1 / keep:g}x larger at test time. "
        f"Inverted dropout scales the kept units by 1/p = **{1 / keep:g}** at train time and leaves test time "
        f"untouched. Over {trials} passes of {units} units the mean activation is {im_:.4f} with inverted "
        f"dropout vs {tm:.4f} at test ({100 * numbers['relative_gap_inverted']:.2f}% apart), but "
        f"{pm:.4f} without the scaling ({100 * numbers['relative_gap_without_scaling']:.0f}% too small). "
        f"torch's nn.Dropout(p={1 - keep:g}) (its p is the drop probability) does the same: kept values are "
        f"multiplied by {torch_scale:.4f}, mean {om:.4f}."
    )
    return DemoOutput(numbers, text, (img,))
