"""The gradient_check demo: numerical vs analytic gradient (relative error) and the kink near ReLU's 0."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from engine.spec import CS231N_CARDS, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

if TYPE_CHECKING:
    import torch


SPEC = DemoSpec(
    name="gradient_check",
    order=150,
    summary="Numerical vs analytic gradient (relative error) and the kink near ReLU's 0.",
    params=(
        ParamSpec(
            name="h",
            kind="float",
            default=1e-05,
            help="finite-difference step",
            lo=1e-12,
            hi=1.0,
            words=("h", "step", "eps", "epsilon"),
        ),
        ParamSpec(
            name="dtype",
            kind="choice",
            default="float64",
            help="precision",
            choices=("float64", "float32"),
            aliases={"double": "float64", "single": "float32", "float": "float32"},
        ),
        ParamSpec(
            name="kink_x",
            kind="float",
            default=-1e-06,
            help="a ReLU input just left of the kink",
            lo=-1.0,
            hi=1.0,
            words=("x", "at x", "kink at", "kink_x"),
        ),
        SEED,
    ),
    examples=(
        "gradient check a small network",
        "numerical vs analytic gradient with h=1e-4",
        "show the kink near relu's 0 in a gradient check",
        "gradient_check dtype=float32",
    ),
    keywords={
        "grad(ient)?.?check": 7,
        "numerical (gradient|derivative)": 6,
        "finite difference": 5,
        r"\bkink": 6,
        "analytic": 3,
        "relative error": 4,
    },
    kb=(
        KBRef(CS231N_CARDS, "kinks and gradient check accuracy"),
        KBRef(CS231N_CARDS, "Why is centered numerical gradient less good at avoiding kinks?"),
        KBRef(CS231N_CARDS, "what is the problem of efficiency with the numerical update?"),
        KBRef(CS231N_CARDS, "burn-in time"),
    ),
    budget_s=20,
)


SHAPES = ((5, 6), (6,), (6, 3), (3,))


def _batched_loss(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Loss of a small tanh net for a batch of flat parameter vectors theta (B, P) -> (B,)."""
    import torch

    parts, i = [], 0
    for s in SHAPES:
        n = math.prod(s)
        parts.append(theta[:, i : i + n].reshape(-1, *s))
        i += n
    w1, b1, w2, b2 = parts
    logits = torch.tanh(x @ w1 + b1[:, None]) @ w2 + b2[:, None]
    logp = torch.log_softmax(logits, -1)
    return -logp.gather(-1, y.expand(len(theta), -1)[..., None])[..., 0].mean(-1)


def _grad_check(dtype: torch.dtype, h: float, seed: int) -> tuple[float, int]:
    """Max relative error between autograd and centred differences over every parameter (all 2P loss
    evaluations in one batched call)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64).to(dtype)
    y = torch.randint(0, 3, (8,), generator=g)
    n = sum(math.prod(s) for s in SHAPES)
    theta = torch.randn(n, generator=g, dtype=torch.float64).to(dtype)
    t = theta.clone().requires_grad_()
    _batched_loss(t[None], x, y).sum().backward()
    analytic = t.grad
    eye = torch.eye(n, dtype=dtype) * h
    with torch.no_grad():
        fp = _batched_loss(theta[None] + eye, x, y)
        fm = _batched_loss(theta[None] - eye, x, y)
    numeric = (fp - fm) / (2 * h)
    denom = torch.maximum(numeric.abs(), analytic.abs())
    rel = torch.where(
        denom > 0, (numeric - analytic).abs() / denom.clamp_min(1e-300), torch.zeros_like(denom)
    )
    return float(rel.max()), 2 * n


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from engine.plot import figure, png

    h, seed = p["h"], p["seed"]
    dtype = torch.float64 if p["dtype"] == "float64" else torch.float32
    rel, evals = _grad_check(dtype, h, seed)
    hs = np.geomspace(1e-10, 1e-1, 19)
    sweep = {
        dt: [_grad_check(t, float(hh), seed)[0] for hh in hs]
        for dt, t in (("float64", torch.float64), ("float32", torch.float32))
    }
    # the kink: relu at x just left of 0; a centred difference straddles the kink when h > |x|
    kx = p["kink_x"]
    xt = torch.tensor(kx, dtype=torch.float64, requires_grad=True)
    F.relu(xt).backward()
    kink_ana = xt.grad.item()
    kink_num = (max(kx + h, 0) - max(kx - h, 0)) / (2 * h)
    kink_rel = abs(kink_num - kink_ana) / max(abs(kink_num), abs(kink_ana), 1e-300)
    numbers = {
        "relative_error": rel,
        "h": h,
        "dtype": p["dtype"],
        "loss_evaluations": evals,
        "kink_x": kx,
        "kink_numeric": kink_num,
        "kink_analytic": kink_ana,
        "kink_relative_error": kink_rel,
        "crosses_kink": kx - h < 0 < kx + h or kx + h < 0 < kx - h,
        "best_h_float64": float(hs[int(np.argmin(sweep["float64"]))]),
    }

    fig = figure(10.5, 3.9)
    axs = fig.subplots(1, 2)
    for i, (dt, errs) in enumerate(sweep.items()):
        axs[0].loglog(hs, np.maximum(errs, 1e-13), "o-", color=f"C{i}", linewidth=1.8, label=dt)
    axs[0].plot(
        [h], [max(rel, 1e-13)], "*", color="black", markersize=14, label=f"your h={h:g} ({p['dtype']})"
    )
    axs[0].axhspan(1e-13, 1e-7, color="#2ca02c", alpha=0.08)
    axs[0].set_ylim(1e-13, 10)
    axs[0].set_xlabel("step h")
    axs[0].set_ylabel("max relative error")
    axs[0].set_title("Numerical vs analytic gradient (tanh net)")
    axs[0].legend(loc="lower left", fontsize=8.5)  # below every curve: float32 runs along the top left
    span = max(3 * abs(kx), 3 * h)
    xs = np.linspace(kx - span, kx + span, 200)
    axs[1].plot(xs, np.maximum(xs, 0), color="#1f77b4", linewidth=2, label="ReLU")
    axs[1].plot(
        [kx - h, kx + h],
        [max(kx - h, 0), max(kx + h, 0)],
        "o--",
        color="#d62728",
        linewidth=1.6,
        label=f"centred difference: slope {kink_num:.2g}",
    )
    axs[1].plot([kx], [max(kx, 0)], "k*", markersize=12, label=f"x = {kx:g}: true slope {kink_ana:g}")
    axs[1].set_title("The kink: x ± h crosses 0")
    axs[1].ticklabel_format(style="sci", scilimits=(-3, 3))
    axs[1].legend(loc="upper left", fontsize=8.5)
    image = png(fig)
    verdict = "excellent (< 1e-7)" if rel < 1e-7 else ("acceptable" if rel < 1e-4 else "suspicious")
    text = (
        f"Centred differences (f(x+h) − f(x−h))/2h for all {evals // 2} parameters of a small tanh net "
        f"({evals} loss evaluations for one gradient — the numerical gradient costs one pass per parameter) "
        f"against autograd: max relative error **{rel:.2e}** in {p['dtype']} at h={h:g}, {verdict}. Too large "
        f"an h gives truncation error, too small round-off (float32 bottoms out much higher). At a kink the "
        f"check fails for a different reason: ReLU at x={kx:g} has gradient {kink_ana:g}, but with h={h:g} the "
        f"two probes straddle 0 and the numerical slope is {kink_num:.3g} (relative error {kink_rel:.2g})."
    )
    return DemoOutput(numbers, text, (image,))
