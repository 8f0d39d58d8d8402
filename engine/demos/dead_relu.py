"""The dead_relu demo: fraction of dead ReLUs after training an MLP at a high vs a normal learning rate.
Each key number is computed twice, the second way independently (a forward hook, and numpy from the
weights)."""

from __future__ import annotations

import math
import re

from engine.errors import BadParameter
from engine.parse import SB, read_scalar
from engine.spec import CS231N_CARDS, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

SPEC = DemoSpec(
    name="dead_relu",
    order=160,
    summary="Fraction of dead ReLUs after training an MLP at a high vs a normal learning rate.",
    params=(
        ParamSpec(
            name="lr_high",
            kind="float",
            default=2.0,
            help="the high learning rate",
            lo=0.001,
            hi=10.0,
            words=("high lr", "high learning rate", "large lr", "large learning rate", "lr_high"),
        ),
        ParamSpec(
            name="lr_normal",
            kind="float",
            default=0.1,
            help="the normal learning rate to compare with",
            lo=0.0001,
            hi=5.0,
            words=("normal lr", "normal learning rate", "low lr", "small lr", "lr_normal"),
        ),
        ParamSpec(
            name="hidden",
            kind="int",
            default=100,
            help="hidden ReLU units",
            lo=4,
            hi=512,
            words=("hidden", "units", "neurons", "hidden units"),
            number_before=True,
        ),
        ParamSpec(
            name="steps",
            kind="int",
            default=200,
            help="SGD steps per run",
            lo=10,
            hi=1000,
            words=("steps", "iterations", "iters"),
            number_before=True,
        ),
        SEED,
    ),
    examples=(
        "what does it mean when a ReLU neuron dies",
        "dead relus at a high learning rate",
        "dying relu with learning rate 3 vs 0.05",
        "dead_relu lr_high=1.5 hidden=200",
    ),
    keywords={
        r"dead|dying|\bdies?\b": 5,
        "dead (relu|neuron|unit)|(relu|neuron|unit)s? (die|dies|dying)": 5,
        "never (activate|fire)": 4,
    },
    kb=(
        KBRef(CS231N_CARDS, 'What does it mean when a ReLU neuron "dies"?'),
        KBRef(CS231N_CARDS, "dead ReLU"),
        KBRef(CS231N_CARDS, "what could cause a dead ReLU?"),
        KBRef(CS231N_CARDS, "problems with ReLU"),
    ),
    budget_s=20,
)


def extract(norm: str) -> dict:
    out: dict = {}
    m = re.search(
        rf"(?:at|with|using|of) (?:an? )?(?:high |large |big )?(?:learning rate|lr)\s*(?:of|=|:)?\s*({SB})"
        rf"(?:\s*(?:vs\.?|versus|and|compared to|against)\s*({SB}))?",
        norm,
    )
    if m:
        a = str(read_scalar(m.group(1), "dead_relu: lr_high"))
        b = None if m.group(2) is None else str(read_scalar(m.group(2), "dead_relu: lr_normal"))
        if b is None:
            out["lr_high"] = a
        elif math.isfinite(float(a)) and math.isfinite(float(b)):
            out["lr_high"], out["lr_normal"] = (a, b) if float(a) >= float(b) else (b, a)
        else:  # nan has no order: each as given, for validation to refuse by name
            out["lr_high"], out["lr_normal"] = a, b
    return out


LR_COLORS = {"normal": "#1f77b4", "high": "#d62728"}


def _dead_run(x, y, lr: float, hidden: int, steps: int, bs: int, seed: int, every: int):
    """SGD on a 64-hidden-ReLU-10 MLP; the dead fraction over the whole data set every `every` steps."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, 10)).to(x.device)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    track, losses = [], []
    for i in range(steps + 1):
        if i % every == 0 or i == steps:
            with torch.no_grad():
                track.append((i, (model[0](x) <= 0).all(0).float().mean().item()))
        if i == steps:
            break
        idx = torch.randint(0, len(x), (bs,), generator=gen).to(x.device)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, track, losses


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from matplotlib.ticker import MaxNLocator

    from engine.plot import figure, png
    from engine.training import digits

    lo, hi = p["lr_normal"], p["lr_high"]
    if lo >= hi:
        raise BadParameter(f"dead_relu: lr_high ({hi:g}) must be larger than lr_normal ({lo:g})")
    images, labels = digits()  # pixel values in [0, 1]: every input is non-negative
    x = torch.from_numpy(images.reshape(len(images), -1)).float().to(device)
    y = torch.from_numpy(labels).to(device)
    hidden, steps = p["hidden"], p["steps"]
    every = max(1, steps // 40)
    runs, numbers = (
        {},
        {"dead_fraction": {}, "dead_fraction_numpy": {}, "train_accuracy": {}, "final_loss": {}},
    )
    dead_grad = {}
    for name, lr in (("normal", lo), ("high", hi)):
        model, track, losses = _dead_run(x, y, lr, hidden, steps, 64, p["seed"], every)
        # way 1: a forward hook on the ReLU records which units ever fire on the whole data set
        fired = torch.zeros(hidden, dtype=torch.bool, device=device)

        def hook(_m, _inp, out, fired=fired):
            fired |= (out > 0).any(0)

        h = model[1].register_forward_hook(hook)
        x_req = x.clone()
        out = model(x_req)
        h.remove()
        dead_hook = int((~fired).sum().item()) / hidden
        # way 2: the pre-activations recomputed in float64 numpy from the weights alone
        w = model[0].weight.detach().cpu().double().numpy()
        b = model[0].bias.detach().cpu().double().numpy()
        pre = images.reshape(len(images), -1).astype(np.float64) @ w.T + b
        dead_np = int((pre.max(0) <= 0).sum()) / hidden
        # and why they stay dead: the loss gradient reaching their incoming weights is exactly zero
        model.zero_grad()
        F.cross_entropy(out, y).backward()
        rows = (~fired).nonzero().flatten()
        dead_grad[name] = float(model[0].weight.grad[rows].abs().sum().item()) if len(rows) else 0.0
        acc = (out.argmax(1) == y).float().mean().item()
        numbers["dead_fraction"][name] = dead_hook
        numbers["dead_fraction_numpy"][name] = dead_np
        numbers["train_accuracy"][name] = acc
        numbers["final_loss"][name] = losses[-1] if losses else float("nan")
        rate = (pre > 0).mean(0)
        runs[name] = (lr, track, np.sort(rate)[::-1])
    numbers["lr"] = {"normal": lo, "high": hi}
    numbers["agree"] = numbers["dead_fraction"] == numbers["dead_fraction_numpy"]
    numbers["grad_into_dead_units"] = dead_grad

    fig = figure(10, 3.8, layout=None)
    axs = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.15, wspace=0.25)
    ax = axs[0]
    for name, (lr, track, _) in runs.items():
        ax.plot(
            [s for s, _ in track],
            [100 * f for _, f in track],
            color=LR_COLORS[name],
            linewidth=2,
            label=f"lr {lr:g}: {100 * numbers['dead_fraction'][name]:.0f}% dead",
        )
    ax.set_ylim(-3, 103)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.set_xlabel("SGD step")
    ax.set_ylabel("% hidden ReLUs dead")
    ax.set_title("Dead ReLUs over training")
    ax.legend(loc="center right")
    ax = axs[1]
    units = np.arange(1, hidden + 1)
    for name, (lr, _, rate) in runs.items():
        ax.step(units, 100 * rate, where="mid", color=LR_COLORS[name], linewidth=2, label=f"lr {lr:g}")
    ax.set_ylim(-3, 103)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.set_xlabel("hidden unit (sorted)")
    ax.set_ylabel("% of digits that activate it")
    ax.set_title("How often each unit fires (0 = dead)")
    ax.legend(loc="upper right")
    img = png(fig)
    d, a = numbers["dead_fraction"], numbers["train_accuracy"]
    text = (
        f"A 64-{hidden}-10 ReLU MLP trained for {steps} SGD steps on the digits. At learning rate {lo:g} "
        f"**{100 * d['normal']:.0f}%** of the hidden ReLUs are dead (accuracy {100 * a['normal']:.0f}%); at "
        f"{hi:g} **{100 * d['high']:.0f}%** are (accuracy {100 * a['high']:.0f}%). A unit is dead when its "
        f"pre-activation w·x + b is ≤ 0 for every one of the {len(x)} digits: one large update (big "
        f"learning rate × big gradient) pushes w and b so far negative that no input can switch it on again. "
        f"Then ReLU's gradient is 0 everywhere, so the loss gradient into its weights is exactly "
        f"{dead_grad['high']:g}: it never updates and stays dead.\nChecked two ways: a forward hook on the "
        f"ReLU, and the pre-activations recomputed in numpy from the weights "
        f"({'they agree' if numbers['agree'] else 'MISMATCH'})."
    )
    return DemoOutput(numbers, text, (img,))
