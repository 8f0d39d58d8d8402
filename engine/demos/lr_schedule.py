"""The lr_schedule demo: learning-rate schedules: 1cycle (with cyclical momentum, torch's OneCycleLR),
step, exponential, 1/t, cosine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import BadParameter
from engine.spec import CS231N_CARDS, FASTBOOK_CH13, DemoOutput, DemoSpec, KBRef, ParamSpec

if TYPE_CHECKING:
    import numpy as np


SPEC = DemoSpec(
    name="lr_schedule",
    order=80,
    summary="Learning-rate schedules: 1cycle (with cyclical momentum, torch's OneCycleLR), step, exponential, 1/t, cosine.",
    params=(
        ParamSpec(
            name="kind",
            kind="choice",
            default="one_cycle",
            help="schedule",
            choices=("one_cycle", "step", "exponential", "inv_t", "cosine"),
            aliases={
                "1cycle": "one_cycle",
                "onecycle": "one_cycle",
                "one cycle": "one_cycle",
                "step decay": "step",
                "exp": "exponential",
                "1/t": "inv_t",
                "inverse time": "inv_t",
                "cos": "cosine",
            },
        ),
        ParamSpec(
            name="steps",
            kind="int",
            default=100,
            help="number of optimiser steps",
            lo=2,
            hi=100000,
            words=("steps", "iterations", "iters", "batches"),
            number_before=True,
        ),
        ParamSpec(
            name="lr",
            kind="float",
            default=0.01,
            help="max (1cycle) or initial learning rate",
            lo=1e-08,
            hi=100.0,
            words=("max lr", "lr", "learning rate", "max_lr"),
        ),
        ParamSpec(
            name="pct_start",
            kind="float",
            default=0.25,
            help="1cycle: fraction of steps spent warming up",
            lo=0.01,
            hi=0.99,
            words=("pct_start", "warmup fraction"),
        ),
        ParamSpec(
            name="div_factor",
            kind="float",
            default=25.0,
            help="1cycle: initial lr = lr/div_factor",
            lo=1.0,
            hi=1000000.0,
            words=("div_factor", "div"),
        ),
        ParamSpec(
            name="final_div_factor",
            kind="float",
            default=100000.0,
            help="1cycle: final lr = initial lr/final_div_factor",
            lo=1.0,
            hi=1000000000.0,
            words=("final_div_factor", "final div"),
        ),
        ParamSpec(
            name="step_size",
            kind="int",
            default=30,
            help="step decay: steps between drops",
            lo=1,
            hi=100000,
            words=("every", "step_size", "step size"),
        ),
        ParamSpec(
            name="gamma",
            kind="float",
            default=None,
            help="step: drop factor (default 0.1); exponential: per-step factor (default 0.96)",
            lo=1e-06,
            hi=1.0,
            words=("gamma", "factor"),
            optional=True,
        ),
        ParamSpec(
            name="k",
            kind="float",
            default=0.05,
            help="1/t decay: lr/(1 + k t)",
            lo=0.0,
            hi=100.0,
            words=("k", "decay rate"),
        ),
    ),
    examples=(
        "show the 1cycle schedule",
        "step decay every 30 steps with gamma 0.5",
        "exponential decay over 200 steps",
        "1/t decay with k 0.1",
        "cosine annealing for 500 steps with lr 0.1",
    ),
    keywords={
        "schedul": 5,
        "onecycle|1cycle": 6,
        "anneal": 3,
        "cosine": 3,
        "step decay": 5,
        "exponential decay": 5,
        "1/t": 5,
        "decay": 2,
        "warm.?up": 3,
        "cyclical momentum": 5,
        "super.?convergence": 3,
    },
    kb=(
        KBRef(FASTBOOK_CH13, "What is 1cycle training?"),
        KBRef(FASTBOOK_CH13, "What is “cyclical momentum”?"),
        KBRef(FASTBOOK_CH13, "Why should we avoid using a high learning rate at the start of training?"),
        KBRef(FASTBOOK_CH13, "Why do we want to use a low learning rate at the end of training?"),
        KBRef(CS231N_CARDS, "three common forms of learning rate decay"),
        KBRef(CS231N_CARDS, "What is the intuition for annealing the learning rate over time?"),
    ),
    budget_s=20,
)


def _one_cycle_formula(
    t: np.ndarray, steps: int, lr: float, pct: float, div: float, final_div: float, hi_m: float, lo_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """1cycle as Smith/fastai describe it: cosine warm-up to lr, cosine anneal to lr/div/final_div;
    momentum moves the opposite way (torch's phase boundaries)."""
    import numpy as np

    start, end_lr = lr / div, lr / div / final_div
    peak = float(pct * steps) - 1
    last = steps - 1

    def cos(a, b, frac):
        return b + (a - b) / 2 * (np.cos(np.pi * frac) + 1)

    up = t <= peak
    frac_up = np.clip(t / max(peak, 1e-12), 0, 1)
    frac_dn = np.clip((t - peak) / max(last - peak, 1e-12), 0, 1)
    lrs = np.where(up, cos(start, lr, frac_up), cos(lr, end_lr, frac_dn))
    moms = np.where(up, cos(hi_m, lo_m, frac_up), cos(lo_m, hi_m, frac_dn))
    return lrs, moms


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch

    from engine.plot import figure, note, png

    kind, steps, lr = p["kind"], p["steps"], p["lr"]
    gamma = p["gamma"] if p["gamma"] is not None else (0.96 if kind == "exponential" else 0.1)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr, momentum=0.9)
    S = torch.optim.lr_scheduler
    t = np.arange(steps, dtype=float)
    moms_formula = None
    if kind == "one_cycle":
        if p["pct_start"] * steps < 2:
            raise BadParameter("lr_schedule: pct_start·steps must be at least 2 for a warm-up phase")
        sched = S.OneCycleLR(
            opt,
            max_lr=lr,
            total_steps=steps,
            pct_start=p["pct_start"],
            anneal_strategy="cos",
            div_factor=p["div_factor"],
            final_div_factor=p["final_div_factor"],
            base_momentum=0.85,
            max_momentum=0.95,
        )
        formula, moms_formula = _one_cycle_formula(
            t, steps, lr, p["pct_start"], p["div_factor"], p["final_div_factor"], 0.95, 0.85
        )
    elif kind == "step":
        sched = S.StepLR(opt, step_size=p["step_size"], gamma=gamma)
        formula = lr * gamma ** np.floor(t / p["step_size"])
    elif kind == "exponential":
        sched = S.ExponentialLR(opt, gamma=gamma)
        formula = lr * gamma**t
    elif kind == "inv_t":
        k = p["k"]
        sched = S.LambdaLR(opt, lambda i: 1.0 / (1.0 + k * i))
        formula = lr / (1 + k * t)
    else:
        sched = S.CosineAnnealingLR(opt, T_max=steps - 1, eta_min=0.0)
        formula = lr * (1 + np.cos(np.pi * t / (steps - 1))) / 2
    lrs, moms = [], []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        if len(lrs) < steps:
            sched.step()
    lrs, moms = np.array(lrs), np.array(moms)
    rel = float(np.max(np.abs(lrs - formula) / np.maximum(np.abs(formula), 1e-300)))
    numbers = {
        "kind": kind,
        "initial_lr": float(lrs[0]),
        "max_lr": float(lrs.max()),
        "final_lr": float(lrs[-1]),
        "peak_step": int(lrs.argmax()),
        "max_rel_diff_vs_formula": rel,
    }
    if kind == "one_cycle":
        numbers.update(
            min_momentum=float(moms.min()),
            max_momentum=float(moms.max()),
            momentum_at_peak=float(moms[lrs.argmax()]),
            momentum_max_diff_vs_formula=float(np.abs(moms - moms_formula).max()),
        )

    fig = figure(10, 3.7)
    axs = fig.subplots(1, 2)
    axs[0].plot(t, lrs, linewidth=2.2, label=f"torch {type(sched).__name__}")
    axs[0].plot(t, formula, "--", color="#d62728", linewidth=1.2, label="closed form")
    axs[0].set_title(f"{kind.replace('_', ' ')} learning rate")
    axs[0].set_xlabel("step")
    axs[0].set_ylabel("learning rate")
    axs[0].legend(loc="upper right")
    if kind == "one_cycle":
        axs[1].plot(t, moms, color="#2ca02c", linewidth=2.2)
        axs[1].set_title("momentum (cyclical: opposite to lr)")
        axs[1].set_xlabel("step")
        axs[1].set_ylabel("momentum")
        axs[1].axvline(numbers["peak_step"], color="#999999", linestyle=":")
    else:
        axs[1].semilogy(t, lrs, linewidth=2.2)
        axs[1].set_title("same, log scale")
        axs[1].set_xlabel("step")
    note(
        axs[0],
        f"start {lrs[0]:.2g}\npeak {lrs.max():.2g} @ {numbers['peak_step']}\nend {lrs[-1]:.2g}",
        "upper left" if kind == "one_cycle" else "lower left",
    )
    image = png(fig)
    if kind == "one_cycle":
        text = (
            f"1cycle (torch OneCycleLR): warm up from {lrs[0]:.2g} to {lr:g} over the first "
            f"{p['pct_start']:.0%} of {steps} steps, then anneal to {lrs[-1]:.2g}. Starting low avoids "
            f"diverging while weights are still random; the long high-lr middle trains fast and skips sharp "
            f"minima (super-convergence); the low end finds the best part of the loss. Momentum is cyclical: "
            f"{moms.max():.2f} → {moms.min():.2f} at the lr peak → {moms[-1]:.2f}."
        )
    else:
        desc = {
            "step": f"drops by ×{gamma:g} every {p['step_size']} steps",
            "exponential": f"multiplies by {gamma:g} every step (lr·γ^t)",
            "inv_t": f"decays as lr/(1 + {p['k']:g}·t)",
            "cosine": "follows half a cosine from lr to 0",
        }[kind]
        text = (
            f"{kind.replace('_', ' ').capitalize()} decay {desc}: {lrs[0]:.2g} → {lrs[-1]:.2g} over {steps} "
            f"steps. Annealing lets the parameters settle into deeper, narrower parts of the loss instead of "
            f"bouncing around with too much 'kinetic energy'."
        )
    text += f" torch's scheduler matches the closed form (max relative difference {rel:.1e})."
    return DemoOutput(numbers, text, (image,))
