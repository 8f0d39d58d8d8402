"""Curves: activation functions with their gradients, and learning-rate schedules (torch vs closed form)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import BadParameter
from engine.plot import figure, note, png, styled
from engine.spec import DemoOutput

LABELS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "leaky ReLU", "gelu": "GELU"}


def _closed_form_grad(name: str, x: np.ndarray, slope: float) -> np.ndarray:
    """Derivatives written out by hand, to check autograd against."""
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


@styled
def activations(p: dict, device: str) -> DemoOutput:
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


def _one_cycle_formula(
    t: np.ndarray, steps: int, lr: float, pct: float, div: float, final_div: float, hi_m: float, lo_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """1cycle as Smith/fastai describe it: cosine warm-up to lr, cosine anneal to lr/div/final_div;
    momentum moves the opposite way (torch's phase boundaries)."""
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


@styled
def lr_schedule(p: dict, device: str) -> DemoOutput:
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
