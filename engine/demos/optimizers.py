"""The optimizers demo: SGD, momentum, Nesterov, Adagrad, RMSProp and Adam trajectories on a 2-D loss
surface."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from engine.parse import SB, generic, read_scalar
from engine.spec import CS231N_CARDS, FASTBOOK_CH4, DemoOutput, DemoSpec, KBRef, ParamSpec

if TYPE_CHECKING:
    import numpy as np


SPEC = DemoSpec(
    name="optimizers",
    order=100,
    summary="SGD, momentum, Nesterov, Adagrad, RMSProp and Adam trajectories on a 2-D loss surface.",
    params=(
        ParamSpec(
            name="optimizers",
            kind="choices",
            default=["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"],
            help="which optimisers",
            choices=("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"),
            max_len=6,
        ),
        ParamSpec(
            name="surface",
            kind="choice",
            default="ravine",
            help="2-D loss surface",
            choices=("ravine", "rosenbrock", "bowl"),
            aliases={"banana": "rosenbrock", "quadratic": "bowl", "valley": "ravine"},
        ),
        ParamSpec(
            name="steps",
            kind="int",
            default=100,
            help="optimisation steps",
            lo=1,
            hi=2000,
            words=("steps", "iterations", "iters"),
            number_before=True,
        ),
        ParamSpec(
            name="lr",
            kind="float",
            default=None,
            help="learning rate for all (default: a sensible one per optimiser)",
            lo=1e-06,
            hi=10.0,
            words=("lr", "learning rate"),
            optional=True,
        ),
        ParamSpec(
            name="momentum",
            kind="float",
            default=0.9,
            help="momentum coefficient mu",
            lo=0.0,
            hi=0.999,
            words=("mu", "momentum of"),
        ),
    ),
    examples=(
        "compare optimizers on a 2D surface",
        "adam vs sgd with momentum for 200 steps",
        "rmsprop and adagrad on the rosenbrock function",
        "optimizers optimizers=sgd,adam lr=0.05",
    ),
    keywords={
        "optimi[sz]er": 6,
        r"\bsgd\b": 3,
        "adam": 4,
        "rmsprop": 4,
        "adagrad": 4,
        "nesterov": 4,
        "momentum": 2,
        "trajector": 3,
        "loss (surface|landscape)": 3,
        "rosenbrock": 4,
    },
    kb=(
        KBRef(CS231N_CARDS, "momentum update"),
        KBRef(CS231N_CARDS, "code for momentum update"),
        KBRef(CS231N_CARDS, "adagrad code"),
        KBRef(CS231N_CARDS, "RMSProp"),
        KBRef(CS231N_CARDS, "unlike Adagrad, the gradient updates of RMSProp do not get ___"),
        KBRef(CS231N_CARDS, "What is the mu parameter in the momentum update?"),
        KBRef(FASTBOOK_CH4, "What is SGD?"),
    ),
    budget_s=30,
)


def extract(norm: str) -> dict:
    out: dict = {}
    m = re.search(rf"\bmomentum\s*(?:=|:|of|is)?\s*({SB})(?![\dx])", norm)  # "sgd with momentum 0.5": mu
    if m:
        out["momentum"] = read_scalar(m.group(1), "optimizers: momentum")
    if re.search(r"sgd (with|\+) (nesterov )?momentum", norm):
        found = generic(
            SPEC.param("optimizers"),
            norm.replace("sgd with", "").replace("sgd+", ""),
            "optimizers",
        )
        if found:
            out["optimizers"] = found
    return out


OPT_LABELS = {
    "sgd": "SGD",
    "momentum": "momentum",
    "nesterov": "Nesterov",
    "adagrad": "Adagrad",
    "rmsprop": "RMSProp",
    "adam": "Adam",
}


SURFACES = {
    "ravine": (lambda x, y: 0.1 * x**2 + 2 * y**2, (-4.0, 1.5), (0.0, 0.0), ((-4.6, 1.5), (-2.2, 2.2))),
    "bowl": (lambda x, y: 0.5 * (x**2 + y**2), (-4.0, 3.0), (0.0, 0.0), ((-4.6, 1.5), (-2.0, 3.6))),
    "rosenbrock": (
        lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2,
        (-1.5, 2.0),
        (1.0, 1.0),
        ((-2.0, 2.0), (-1.0, 3.0)),
    ),
}


DEFAULT_LR = {
    "ravine": {"sgd": 0.4, "momentum": 0.04, "nesterov": 0.04, "adagrad": 1.0, "rmsprop": 0.05, "adam": 0.3},
    "bowl": {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 1.0, "rmsprop": 0.05, "adam": 0.3},
    "rosenbrock": {
        "sgd": 0.001,
        "momentum": 0.0003,
        "nesterov": 0.0003,
        "adagrad": 0.5,
        "rmsprop": 0.01,
        "adam": 0.1,
    },
}


def _torch_opt(name: str, params, lr: float, mu: float):
    import torch

    optim = torch.optim
    return {
        "sgd": lambda: optim.SGD(params, lr=lr),
        "momentum": lambda: optim.SGD(params, lr=lr, momentum=mu),
        "nesterov": lambda: optim.SGD(params, lr=lr, momentum=mu, nesterov=True),
        "adagrad": lambda: optim.Adagrad(params, lr=lr),
        "rmsprop": lambda: optim.RMSprop(params, lr=lr, alpha=0.99),
        "adam": lambda: optim.Adam(params, lr=lr),
    }[name]()


def _numpy_path(name: str, f, start, lr: float, mu: float, steps: int) -> np.ndarray:
    """The CS231n update rules written out by hand (numerical gradient-free: autograd only for dx)."""
    import numpy as np
    import torch

    x = np.array(start, dtype=np.float64)
    v, cache, m = np.zeros(2), np.zeros(2), np.zeros(2)

    def grad(z):
        zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        f(zt[0], zt[1]).backward()
        return zt.grad.numpy()

    path = [x.copy()]
    for t in range(1, steps + 1):
        dx = grad(x)
        if name == "sgd":
            x = x - lr * dx
        elif name == "momentum":
            v = mu * v - lr * dx  # integrate velocity
            x = x + v  # integrate position
        elif name == "nesterov":
            v_prev = v
            v = mu * v - lr * dx
            x = x - mu * v_prev + (1 + mu) * v
        elif name == "adagrad":
            cache = cache + dx**2
            x = x - lr * dx / (np.sqrt(cache) + 1e-10)
        elif name == "rmsprop":
            cache = 0.99 * cache + 0.01 * dx**2
            x = x - lr * dx / (np.sqrt(cache) + 1e-8)
        else:
            m = 0.9 * m + 0.1 * dx
            cache = 0.999 * cache + 0.001 * dx**2
            x = x - lr * (m / (1 - 0.9**t)) / (np.sqrt(cache / (1 - 0.999**t)) + 1e-8)
        path.append(x.copy())
    return np.array(path)


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch

    from engine.plot import figure, png

    surface, steps, mu = p["surface"], p["steps"], p["momentum"]
    f, start, opt_xy, ((x0, x1), (y0, y1)) = SURFACES[surface]
    paths, finals, lrs, diffs = {}, {}, {}, {}
    for name in p["optimizers"]:
        lr = p["lr"] if p["lr"] is not None else DEFAULT_LR[surface][name]
        lrs[name] = lr
        z = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        opt = _torch_opt(name, [z], lr, mu)
        path = [z.detach().clone().numpy()]
        for _ in range(steps):
            opt.zero_grad()
            f(z[0], z[1]).backward()
            opt.step()
            path.append(z.detach().clone().numpy())
            if not torch.isfinite(z).all() or z.abs().max() > 1e6:
                break
        path = np.array(path)
        paths[name] = path
        final = float(f(*path[-1]))
        finals[name] = final if math.isfinite(final) else None
        if len(path) == steps + 1 and steps <= 400:
            ref = _numpy_path(name, f, start, lr, mu, steps)
            diffs[name] = float(np.abs(ref - path).max())
    numbers = {
        "final_loss": finals,
        "lr": lrs,
        "start": list(start),
        "minimum": list(opt_xy),
        "max_diff_vs_handwritten": diffs,
        "best": min((v, k) for k, v in finals.items() if v is not None)[1]
        if any(v is not None for v in finals.values())
        else None,
    }

    fig = figure(10.5, 4.2)
    axs = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    gz = f(gx, gy)
    levels = np.geomspace(max(gz.min(), 1e-3), gz.max(), 18)
    axs[0].contour(gx, gy, gz, levels=levels, colors="#999999", linewidths=0.7)
    axs[0].plot(*opt_xy, "*", color="black", markersize=13)
    for name, path in paths.items():
        axs[0].plot(path[:, 0], path[:, 1], "-o", markersize=2.2, linewidth=1.6, label=OPT_LABELS[name])
        axs[1].semilogy(
            np.arange(len(path)),
            np.maximum([f(*q) for q in path], 1e-12),
            linewidth=1.8,
            label=f"{OPT_LABELS[name]} (lr {lrs[name]:g})",
        )
    axs[0].set_xlim(x0, x1)
    axs[0].set_ylim(y0, y1)
    axs[0].set_title(f"Trajectories on the {surface} surface")
    axs[0].legend(loc="upper right", fontsize=8.5)
    axs[1].set_title("loss vs step")
    axs[1].set_xlabel("step")
    axs[1].legend(loc="lower left", fontsize=8.5)
    image = png(fig)
    ranking = ", ".join(
        f"{OPT_LABELS[k]} {v:.2g}"
        for k, v in sorted(finals.items(), key=lambda kv: kv[1] or 1e99)
        if v is not None
    )
    agree = max(diffs.values()) if diffs else None
    text = (
        f"{steps} steps from {start} on the {surface} surface; final loss: {ranking}. Plain SGD zig-zags "
        f"across the steep direction while crawling along the shallow one; momentum integrates velocity "
        f"(v = μv − lr·dx, x += v; μ={mu:g} acts as friction) and builds speed along the valley; Adagrad "
        f"divides by the root of the summed squared gradients, so its steps keep shrinking; RMSProp uses a "
        f"leaky average instead, so they don't; Adam adds momentum to RMSProp."
        + (f" torch.optim matches the hand-written update rules to {agree:.1e}." if agree is not None else "")
    )
    return DemoOutput(numbers, text, (image,))
