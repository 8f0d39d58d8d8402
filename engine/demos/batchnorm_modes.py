"""batchnorm_modes: one BatchNorm layer in train mode and in eval mode on the same batch.

In train mode the layer normalises with the batch's own mean and variance and moves its running statistics
towards them (by ``momentum``); in eval mode it normalises with those running statistics instead. After a
few updates the running statistics still lag the data, so the same batch comes out differently in the two
modes, and only in train mode does an example's output depend on the rest of its batch. Every number is
computed twice: by torch's BatchNorm1d and by the formulas in numpy (float64).
"""

from __future__ import annotations

import math
import re

from engine.errors import BadParameter
from engine.parse import NUM, cut_text, read_scalar
from engine.spec import CS231N_CARDS, FASTBOOK_CH13, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

SPEC = DemoSpec(
    name="batchnorm_modes",
    order=200,
    summary="BatchNorm in train vs eval mode on the same batch: batch statistics vs running statistics.",
    params=(
        ParamSpec(
            name="batches",
            kind="int",
            default=10,
            help="training batches that update the running statistics before the comparison",
            lo=1,
            hi=500,
            words=("batches", "updates", "steps", "iterations"),
            number_before=True,
        ),
        ParamSpec(
            name="momentum",
            kind="float",
            default=0.1,
            help="torch's BatchNorm momentum: the weight of each new batch in the running statistics",
            lo=0.0,
            hi=1.0,
            words=("momentum",),
        ),
        ParamSpec(
            name="batch_size",
            kind="int",
            default=32,
            help="examples per batch (train mode needs at least 2)",
            lo=2,
            hi=512,
            words=("batch size", "batch of", "bs"),
        ),
        ParamSpec(
            name="features",
            kind="int",
            default=3,
            help="features (channels) the layer normalises",
            lo=1,
            hi=16,
            words=("features", "channels"),
            number_before=True,
        ),
        ParamSpec(
            name="mean",
            kind="float",
            default=5.0,
            help="mean of the input data",
            lo=-100.0,
            hi=100.0,
            words=("data mean", "input mean", "mean"),
        ),
        ParamSpec(
            name="std",
            kind="float",
            default=2.0,
            help="standard deviation of the input data",
            lo=0.01,
            hi=100.0,
            words=("data std", "input std", "std", "standard deviation"),
        ),
        SEED,
    ),
    examples=(
        "batch norm in train vs eval mode",
        "batchnorm running mean after 50 batches",
        "why does batch norm behave differently at inference",
        "batchnorm_modes momentum=0.5 batches=20",
    ),
    keywords={
        r"batch.?norm": 2,
        r"running (mean|var|stat|average)": 6,
        r"\b(train(ing)?|eval(uation)?|inference)[ -]mode|\binference[ -]time|model\.eval|\.train\(\)": 4,
        r"\btrain(ing)? (vs\.?|versus|and|or) (eval|inference)": 5,
        r"\b(eval|inference) (vs\.?|versus|and|or) train": 5,
        r"batch stat": 5,
        r"during (validation|inference|eval)|at inference": 6,
    },
    kb=(
        KBRef(
            FASTBOOK_CH13,
            "What statistics are used to normalize in batch normalization during training? How about during "
            "validation?",
        ),
        KBRef(FASTBOOK_CH13, "What trainable parameters does a batch normalization layer contain?"),
        KBRef(FASTBOOK_CH13, "Why do models with batch normalization layers generalize better?"),
        KBRef(
            CS231N_CARDS,
            "Batchnorm: why is it possible to force activations throughout a network to take on a unit "
            "gaussian distribution at the beginning of training?",
        ),
    ),
    own=("mean", "std"),
    budget_s=15,
)

# "N(5, 4)": the data's mean and variance, as the notation reads; "N(5, 2²)" gives the std itself
_NORMAL = re.compile(rf"\bn\(\s*+({NUM})\s*+,\s*+({NUM})(²)?+\s*+\)")
# the layer's own statistics: their "mean"/"std" are no description of the data
_LAYER_STATS = re.compile(r"\b(?:running|batch|moving|output)\s+(?:mean|var(?:iance)?|std|average|stat\w*)")


def extract(norm: str) -> tuple[dict, str]:
    """The data's distribution written N(mean, variance); and the text without the layer's own "running
    mean", "batch std" ..., so that the data's "mean 5" and "std 2" are read from what is left."""
    out: dict = {}
    m = _NORMAL.search(norm)
    if m:
        out["mean"] = read_scalar(m.group(1), "batchnorm_modes: mean")
        if m.group(3):
            out["std"] = read_scalar(m.group(2), "batchnorm_modes: std")
        else:
            var = float(m.group(2))
            if not (math.isfinite(var) and var >= 0):
                raise BadParameter(
                    "batchnorm_modes: N(mean, variance) takes a variance of at least 0 "
                    f"(got {cut_text(m.group(2))})"
                )
            out["std"] = repr(math.sqrt(var))
        norm = norm[: m.start()] + " " + norm[m.end() :]
    return out, _LAYER_STATS.sub(" ", norm)


def _by_hand(batches, x, momentum: float, eps: float):
    """The running statistics after each training batch, and both modes' outputs for ``x``, from the
    formulas (numpy, float64): running = (1 - m)·running + m·batch statistic (the unbiased variance),
    train mode (x - batch mean)/√(batch variance + eps), eval mode the same with the running statistics."""
    import numpy as np

    mean, var = np.zeros(x.shape[1]), np.ones(x.shape[1])
    trace = [(mean.copy(), var.copy())]
    for b in batches:
        mean = (1 - momentum) * mean + momentum * b.mean(0)
        var = (1 - momentum) * var + momentum * b.var(0, ddof=1)
        trace.append((mean.copy(), var.copy()))
    train = (x - x.mean(0)) / np.sqrt(x.var(0) + eps)
    evaluated = (x - mean) / np.sqrt(var + eps)
    return trace, train, evaluated


def run(p: dict, device: str) -> DemoOutput:
    import copy

    import numpy as np
    import torch
    from torch import nn

    from engine.plot import figure, note, png

    n, m, bs, feats = p["batches"], p["momentum"], p["batch_size"], p["features"]
    mu, sd = p["mean"], p["std"]
    g = torch.Generator().manual_seed(p["seed"])

    def batch():
        return mu + sd * torch.randn(bs, feats, generator=g, dtype=torch.float64)

    layer = nn.BatchNorm1d(feats, momentum=m, dtype=torch.float64).to(device)
    train_batches = [batch() for _ in range(n)]
    torch_trace = [(layer.running_mean.cpu().numpy().copy(), layer.running_var.cpu().numpy().copy())]
    layer.train()
    with torch.no_grad():
        for b in train_batches:
            layer(b.to(device))
            torch_trace.append(
                (layer.running_mean.cpu().numpy().copy(), layer.running_var.cpu().numpy().copy())
            )
    x = batch()  # the batch both modes see
    with torch.no_grad():
        train_out = copy.deepcopy(layer).train()(x.to(device)).cpu().numpy()  # a copy: the stats stay put
        eval_out = layer.eval()(x.to(device)).cpu().numpy()
        # the first example again, in a different batch: train mode depends on the others, eval mode not
        other = batch()
        other[0] = x[0]
        train_other = copy.deepcopy(layer).train()(other.to(device)).cpu().numpy()
        eval_other = layer(other.to(device)).cpu().numpy()
    xs = x.numpy()
    trace, train_hand, eval_hand = _by_hand([b.numpy() for b in train_batches], xs, m, layer.eps)
    run_mean, run_var = torch_trace[-1]
    gap_stats = max(
        float(np.abs(a - b).max())
        for (ta, tb), (ha, hb) in zip(torch_trace, trace, strict=True)
        for a, b in ((ta, ha), (tb, hb))
    )
    diff_train = float(np.abs(train_out - train_hand).max())
    diff_eval = float(np.abs(eval_out - eval_hand).max())
    numbers = {
        "batch_mean": xs.mean(0).tolist(),
        "batch_var": xs.var(0).tolist(),
        "running_mean": run_mean.tolist(),
        "running_var": run_var.tolist(),
        "running_mean_share": 1 - (1 - m) ** n,
        "train_output": {"mean": float(train_out.mean()), "std": float(train_out.std(0).mean())},
        "eval_output": {"mean": float(eval_out.mean()), "std": float(eval_out.std(0).mean())},
        "max_train_eval_gap": float(np.abs(train_out - eval_out).max()),
        "train_mode_batch_effect": float(np.abs(train_out[0] - train_other[0]).max()),
        "eval_mode_batch_effect": float(np.abs(eval_out[0] - eval_other[0]).max()),
        "max_diff_vs_formula": max(gap_stats, diff_train, diff_eval),
        "agree": max(gap_stats, diff_train, diff_eval) < 1e-9,
    }

    fig = figure(10, 3.8, layout=None)
    axs = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.15, wspace=0.25)
    ax = axs[0]
    steps = np.arange(n + 1)
    ax.plot(steps, [t[0][0] for t in torch_trace], color="#1f77b4", linewidth=2, label="running mean")
    ax.plot(steps, [t[1][0] for t in torch_trace], color="#ff7f0e", linewidth=2, label="running variance")
    ax.plot(
        steps[1:],
        [b[:, 0].mean().item() for b in train_batches],
        ".",
        color="#1f77b4",
        alpha=0.45,
        label="each batch's mean",
    )
    ax.axhline(mu, color="#1f77b4", linestyle="--", linewidth=1, label=f"data mean {mu:g}")
    ax.axhline(sd**2, color="#ff7f0e", linestyle="--", linewidth=1, label=f"data variance {sd**2:g}")
    ax.set_xlabel("training batches seen")
    ax.set_title(f"Running statistics of feature 1 (momentum {m:g})")
    ax.legend(loc="best", fontsize=8.5)
    ax = axs[1]
    order = np.argsort(xs[:, 0])
    ax.plot(
        xs[order, 0],
        train_out[order, 0],
        "o-",
        color="#2ca02c",
        markersize=3.5,
        linewidth=1.4,
        label="train mode",
    )
    ax.plot(
        xs[order, 0],
        eval_out[order, 0],
        "s-",
        color="#d62728",
        markersize=3.5,
        linewidth=1.4,
        label="eval mode",
    )
    ax.axhline(0, color="black", linewidth=0.7)
    ax.set_xlabel("input (feature 1)")
    ax.set_ylabel("BatchNorm output")
    ax.set_title("The same batch through both modes")
    ax.legend(loc="lower right", fontsize=8.5)
    tr, ev = numbers["train_output"], numbers["eval_output"]
    note(
        ax,
        f"train: mean {tr['mean']:.2f}, std {tr['std']:.2f}\neval: mean {ev['mean']:.2f}, std {ev['std']:.2f}",
    )
    img = png(fig)

    share = numbers["running_mean_share"]
    text = (
        f"A BatchNorm1d layer over {feats} feature(s), fed {n} training batch(es) of {bs} examples drawn with "
        f"mean {mu:g} and std {sd:g}. **Train mode** normalises each feature with the batch's own mean and "
        f"variance, so this batch comes out with mean {tr['mean']:.3f} and std {tr['std']:.3f}, and it moves "
        f"the running statistics a step (momentum {m:g}) towards the batch's: running = (1 − m)·running + "
        f"m·batch, starting from mean 0 and variance 1 (the variance it keeps is the unbiased one). After {n} "
        f"batch(es) the running mean holds {share:.0%} of the data's mean: {run_mean[0]:.3f} for feature 1 "
        f"(the data's is {mu:g}). **Eval mode** (model.eval(), at validation and inference) normalises with "
        f"those running statistics instead, so the same batch comes out with mean {ev['mean']:.3f} and std "
        f"{ev['std']:.3f} (largest difference between the modes {numbers['max_train_eval_gap']:.3f}). In "
        f"train mode an example's output depends on the rest of its batch (the first example, put in another "
        f"batch, moves by {numbers['train_mode_batch_effect']:.3f}); in eval mode it does not "
        f"({numbers['eval_mode_batch_effect']:g}). The layer's trainable parameters are γ and β (here 1 and 0, "
        f"as at initialisation). torch and the formulas in numpy agree to {numbers['max_diff_vs_formula']:.1e}."
    )
    return DemoOutput(numbers, text, (img,))
