"""The activation_stats demo: A small CNN trained on the digits with and without batchnorm: mean, std, %
near zero, color_dim. Sized for the per-demo budget on a 2-core CPU: the digits are 8x8, the model tiny,
the step count bounded."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from engine.spec import CS231N_CARDS, FASTBOOK_CH13, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

if TYPE_CHECKING:
    from torch import nn


SPEC = DemoSpec(
    name="activation_stats",
    order=110,
    summary="A small CNN trained on the digits with and without batchnorm: mean, std, % near zero, color_dim.",
    params=(
        ParamSpec(
            name="steps",
            kind="int",
            default=60,
            help="training steps",
            lo=5,
            hi=400,
            words=("steps", "iterations", "batches"),
            number_before=True,
        ),
        ParamSpec(
            name="lr",
            kind="float",
            default=0.6,
            help="learning rate (high on purpose: batchnorm copes, the plain net struggles)",
            lo=0.0001,
            hi=5.0,
            words=("lr", "learning rate"),
        ),
        ParamSpec(
            name="batch_size",
            kind="int",
            default=64,
            help="mini-batch size",
            lo=8,
            hi=512,
            words=("batch size", "bs"),
        ),
        ParamSpec(
            name="batchnorm",
            kind="choice",
            default="both",
            help="which nets to train",
            choices=("both", "with", "without"),
        ),
        SEED,
    ),
    examples=(
        "activation stats with and without batchnorm",
        "show the color_dim plot",
        "% of activations near zero",
        "activation_stats steps=100 lr=0.3",
    ),
    keywords={
        "activation stat": 7,
        "color.?dim": 7,
        "batch.?norm": 4,
        "near (zero|0)": 5,
        "histogram": 2,
        "layer stat": 5,
    },
    kb=(
        KBRef(FASTBOOK_CH13, "What information does ActivationStats save for each layer?"),
        KBRef(
            FASTBOOK_CH13,
            "What are the three statistics plotted by plot_layer_stats? What does the x-axis represent?",
        ),
        KBRef(FASTBOOK_CH13, "Why are activations near zero problematic?"),
        KBRef(FASTBOOK_CH13, "What does one column of pixels in the color_dim plot represent?"),
        KBRef(FASTBOOK_CH13, "What does “bad training” look like in color_dim? Why?"),
        KBRef(
            FASTBOOK_CH13,
            "What statistics are used to normalize in batch normalization during training? How about during validation?",
        ),
        KBRef(CS231N_CARDS, "Where do you insert batchnorm layers?"),
    ),
    own=("batchnorm",),
    budget_s=40,
)


def extract(norm: str) -> dict:
    has_with = re.search(r"\bwith(?:out)? (?:and|or|&|vs\.?) with(?:out)?\b", norm)
    if has_with:
        return {"batchnorm": "both"}
    if re.search(r"\b(without|no) batch.?norm", norm):
        return {"batchnorm": "without"}
    if re.search(r"\bwith(?: a)? batch.?norm|\bbatch.?norm only", norm):
        return {"batchnorm": "with"}
    return {}


def _cnn(bn: bool, seed: int, device: str) -> tuple[nn.Module, list[nn.Module]]:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers, relus, cin = [], [], 1
    for cout, stride in ((8, 1), (16, 2), (32, 2)):
        layers.append(nn.Conv2d(cin, cout, 3, stride, 1, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        relu = nn.ReLU()
        relus.append(relu)
        layers.append(relu)
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers).to(device), relus


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch

    from engine.plot import figure, png
    from engine.training import digits_tensors, train_steps

    steps, lr, bs, seed = p["steps"], p["lr"], p["batch_size"], p["seed"]
    x, y, xv, yv = digits_tensors(device, seed)
    x, xv = x.view(-1, 1, 8, 8), xv.view(-1, 1, 8, 8)
    variants = {"both": (False, True), "with": (True,), "without": (False,)}[p["batchnorm"]]
    runs = {}
    bn_check = None
    for bn in variants:
        model, relus = _cnn(bn, seed, device)
        stats = {i: {"mean": [], "std": [], "near_zero": [], "hist": []} for i in range(len(relus))}

        def hook(i, stats=stats):
            def fn(_m, _inp, out):
                o = out.detach().float()
                stats[i]["mean"].append(o.mean().item())
                stats[i]["std"].append(o.std().item())
                stats[i]["near_zero"].append((o <= 0.05).float().mean().item() * 100)
                stats[i]["hist"].append(o.histc(40, 0, 10).cpu().numpy())

            return fn

        handles = [r.register_forward_hook(hook(i)) for i, r in enumerate(relus)]
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        gen = torch.Generator().manual_seed(seed)
        if bn:  # independent check of what batchnorm does: per-channel batch mean 0, std 1 before gamma/beta
            with torch.no_grad():
                z = model[1](model[0](x[:bs]))
                bn_check = {
                    "mean": float(z.mean((0, 2, 3)).abs().max()),
                    "std_dev_from_1": float((z.std((0, 2, 3), unbiased=False) - 1).abs().max()),
                }
        losses = train_steps(model, opt, x, y, steps, bs, gen)
        for h in handles:
            h.remove()
        model.eval()
        with torch.no_grad():
            acc = (model(xv).argmax(1) == yv).float().mean().item() if math.isfinite(losses[-1]) else 0.0
        runs["batchnorm" if bn else "plain"] = {"stats": stats, "losses": losses, "acc": acc}
    tail = max(1, steps // 10)
    near = {
        k: float(np.nanmean([np.mean(s["near_zero"][-tail:]) for s in r["stats"].values()]))
        for k, r in runs.items()
    }
    numbers = {
        "near_zero_pct": near,
        "val_accuracy": {k: r["acc"] for k, r in runs.items()},
        "final_loss": {
            k: (r["losses"][-1] if math.isfinite(r["losses"][-1]) else None) for k, r in runs.items()
        },
        "last_layer_std": {k: float(np.mean(r["stats"][2]["std"][-tail:])) for k, r in runs.items()},
    }
    if bn_check:
        numbers["batchnorm_check"] = bn_check

    fig = figure(11, 4.0, layout=None)  # fixed margins: constrained layout measures every tick label
    axs = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.05, right=0.99, top=0.91, bottom=0.21, wspace=0.22)
    styles = {"plain": "-", "batchnorm": "--"}
    for k, r in runs.items():
        for i, s in r["stats"].items():
            for ax, key in zip(axs, ("mean", "std", "near_zero"), strict=True):
                ax.plot(s[key], styles[k], color=f"C{i}", linewidth=1.6, label=f"{k} · relu {i + 1}")
    for ax, title in zip(axs, ("mean", "std", "% near zero (≤ 0.05)"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("batch")
    axs[2].set_ylim(0, 100)
    # one legend for the three panels, in a row under them: inside a panel it hid a spike of the curves
    handles, labels = axs[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8.5, frameon=False)
    img1 = png(fig)

    fig = figure(10, 3.6, layout=None)
    axs = fig.subplots(1, len(runs), squeeze=False)[0]
    fig.subplots_adjust(left=0.06, right=0.975, top=0.86, bottom=0.14, wspace=0.18)
    for ax, (k, r) in zip(axs, runs.items(), strict=True):
        h = np.stack(r["stats"][2]["hist"]).T
        ax.imshow(np.log1p(h), origin="lower", aspect="auto", cmap="viridis", extent=(0, len(h[0]), 0, 10))
        # the numbers go in the title: the heatmap fills the axes, so a box in it would hide data
        ax.set_title(f"color_dim, last ReLU: {k}\n{near[k]:.0f}% near zero, val acc {r['acc']:.0%}")
        ax.set_xlabel("batch")
        ax.set_ylabel("activation value")
        ax.grid(False)
    img2 = png(fig)
    lines = "; ".join(f"{k}: {near[k]:.0f}% near zero, val accuracy {r['acc']:.0%}" for k, r in runs.items())
    text = (
        f"A 3-conv CNN trained {steps} steps on the digits at lr {lr:g} (high on purpose). {lines}. "
        f"Like fastai's ActivationStats, each ReLU's mean, std and share of activations near zero is recorded "
        f"every batch; activations near zero do no computation, and zeros in one layer breed zeros in the next. "
        f"In color_dim each column is the (log) histogram of one batch's activations: smooth growth is good, "
        f"collapses back to the bottom are 'bad training'. Batchnorm normalises each channel with the batch's "
        f"own mean and std"
        + (
            f" (checked: channel means within {bn_check['mean']:.1e} of 0, stds within "
            f"{bn_check['std_dev_from_1']:.1e} of 1)"
            if bn_check
            else ""
        )
        + " and then learns gamma and beta, so high learning rates stay trainable."
    )
    return DemoOutput(numbers, text, (img1, img2))
