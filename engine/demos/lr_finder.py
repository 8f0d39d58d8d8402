"""The lr_finder demo: learning-rate finder: exponential LR sweep on a small model on the digits; loss vs
LR. Sized for the per-demo budget on a 2-core CPU: the digits are 8x8, the model tiny, the step count
bounded."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from engine.errors import BadParameter
from engine.parse import SB, read_scalar
from engine.spec import FASTBOOK_CH4, FASTBOOK_CH5, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

if TYPE_CHECKING:
    from torch import nn


SPEC = DemoSpec(
    name="lr_finder",
    order=90,
    summary="Learning-rate finder: exponential LR sweep on a small model on the digits; loss vs LR.",
    params=(
        ParamSpec(
            name="start_lr",
            kind="float",
            default=1e-05,
            help="first learning rate of the sweep",
            lo=1e-08,
            hi=1.0,
            words=("from", "start", "start_lr", "min lr"),
        ),
        ParamSpec(
            name="end_lr",
            kind="float",
            default=10.0,
            help="last learning rate of the sweep",
            lo=1e-06,
            hi=100.0,
            words=("to", "end", "end_lr", "max lr"),
        ),
        ParamSpec(
            name="steps",
            kind="int",
            default=100,
            help="mini-batches in the sweep",
            lo=10,
            hi=500,
            words=("steps", "iterations", "iters", "batches"),
            number_before=True,
        ),
        ParamSpec(
            name="batch_size",
            kind="int",
            default=64,
            help="mini-batch size",
            lo=4,
            hi=512,
            words=("batch size", "bs", "batch"),
        ),
        SEED,
    ),
    examples=(
        "run the learning rate finder",
        "lr finder from 1e-6 to 1 over 150 steps",
        "how do I pick a learning rate",
        "lr_finder steps=80",
    ),
    keywords={
        "finder": 7,
        "lr.?find": 7,
        "range test": 5,
        "(find|pick|choose|select)(ing)? (a |the )?(good )?(learning rate|lr)": 5,
        "learning rate": 1,
    },
    kb=(
        KBRef(
            FASTBOOK_CH5,
            "What are two good rules of thumb for picking a learning rate from the learning rate finder?",
        ),
        KBRef(FASTBOOK_CH4, "Why can't we always use a high learning rate?"),
    ),
    budget_s=30,
)


def extract(norm: str) -> dict:
    m = re.search(rf"from\s*({SB})\s*to\s*({SB})", norm)
    if not m:
        return {}
    return {
        "start_lr": read_scalar(m.group(1), "lr_finder: start_lr"),
        "end_lr": read_scalar(m.group(2), "lr_finder: end_lr"),
    }


def _mlp(seed: int, device: str) -> nn.Module:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from engine.plot import figure, png
    from engine.training import digits_tensors, train_steps

    lo, hi, steps, bs, seed = p["start_lr"], p["end_lr"], p["steps"], p["batch_size"], p["seed"]
    if hi <= lo * 10:
        raise BadParameter(f"lr_finder: end_lr must be at least 10x start_lr (got {lo:g} to {hi:g})")
    x, y, xv, yv = digits_tensors(device, seed)
    lrs = lo * (hi / lo) ** (np.arange(steps) / (steps - 1))
    model = _mlp(seed, device)
    opt = torch.optim.SGD(model.parameters(), lr=lo, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    raw, smooth, avg = [], [], 0.0
    for i in range(steps):
        for g in opt.param_groups:
            g["lr"] = float(lrs[i])
        idx = torch.randint(0, len(x), (bs,), generator=gen).to(device)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        v = loss.item()
        if not math.isfinite(v):
            break
        avg = 0.9 * avg + 0.1 * v
        raw.append(v)
        smooth.append(avg / (1 - 0.9 ** (i + 1)))
        if i > 10 and smooth[-1] > 4 * min(smooth):  # diverged: the rest of the sweep adds nothing
            break
    n = len(smooth)
    s = np.array(smooth)
    used = lrs[:n]
    i_min = int(s.argmin())
    lr_min = float(used[i_min])
    slope = np.gradient(s, np.log10(used))
    window = slice(0, max(i_min, 2))
    i_steep = int(np.argmin(slope[window]))
    suggested = lr_min / 10
    # check the suggestion the other way: a short real training run at it, vs 10x the min-loss lr
    gen2 = torch.Generator().manual_seed(seed + 1)
    results = {}
    for label, lr in (("suggested", suggested), ("min_loss_lr_x10", lr_min * 10)):
        m = _mlp(seed, device)
        o = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9)
        ls = train_steps(m, o, x, y, 60, bs, gen2)
        with torch.no_grad():
            acc = (m(xv).argmax(1) == yv).float().mean().item() if math.isfinite(ls[-1]) else 0.0
        results[label] = {
            "lr": lr,
            "final_loss": ls[-1] if math.isfinite(ls[-1]) else None,
            "val_accuracy": acc,
        }
    numbers = {
        "suggested_lr": suggested,
        "lr_min_loss": lr_min,
        "lr_steepest": float(used[i_steep]),
        "min_loss": float(s.min()),
        "steps_run": n,
        "check_60_steps": results,
    }

    fig = figure(8.5, 3.9)
    ax = fig.subplots()
    ax.semilogx(used, raw, color="#1f77b4", alpha=0.3, linewidth=1, label="loss per batch")
    ax.semilogx(used, s, color="#1f77b4", linewidth=2.2, label="smoothed loss")
    ax.axvline(lr_min, color="#7f7f7f", linestyle=":", label=f"min loss @ {lr_min:.2g}")
    ax.axvline(suggested, color="#d62728", linewidth=2, label=f"min/10 = {suggested:.2g}")
    ax.plot(
        used[i_steep], s[i_steep], "o", color="#2ca02c", markersize=9, label=f"steepest @ {used[i_steep]:.2g}"
    )
    ax.set_ylim(0, min(max(s) * 1.1, 4 * s.min() + 3))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate finder: MLP on the 8x8 digits")
    ax.legend(loc="upper left")
    image = png(fig)
    chk = results["suggested"]
    text = (
        f"One mini-batch per learning rate, growing exponentially from {lo:g} to {hi:g}; the loss falls, "
        f"bottoms out at lr ≈ {lr_min:.2g}, then explodes. Rules of thumb: one order of magnitude below the "
        f"minimum (**{suggested:.2g}**) or the steepest descent ({used[i_steep]:.2g}). Check: 60 steps of real "
        f"training at {suggested:.2g} reach val accuracy {chk['val_accuracy']:.0%}; at 10x the minimum "
        f"({lr_min * 10:.2g}) they reach {results['min_loss_lr_x10']['val_accuracy']:.0%}."
    )
    return DemoOutput(numbers, text, (image,))
