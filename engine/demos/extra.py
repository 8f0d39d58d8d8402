"""Demos the knowledge base asks for beyond the core list: dead ReLUs, inverted dropout, broadcasting and
the memory estimate of a conv net. Each key number is computed twice, the second way independently."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from torch import nn

from engine.errors import BadParameter
from engine.plot import bare, figure, note, png, styled, value_bars
from engine.spec import DemoOutput

LR_COLORS = {"normal": "#1f77b4", "high": "#d62728"}


# -- dead ReLUs -------------------------------------------------------------------------------------------
def _dead_run(x, y, lr: float, hidden: int, steps: int, bs: int, seed: int, every: int):
    """SGD on a 64-hidden-ReLU-10 MLP; the dead fraction over the whole data set every `every` steps."""
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


@styled
def dead_relu(p: dict, device: str) -> DemoOutput:
    from engine.demos.images import digits

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


# -- inverted dropout ---------------------------------------------------------------------------------------
@styled
def inverted_dropout(p: dict, device: str) -> DemoOutput:
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


# -- broadcasting -------------------------------------------------------------------------------------------
def broadcast_shape(a: list[int], b: list[int]) -> tuple[list[int] | None, list[dict]]:
    """Align the shapes right to left; each pair must be equal or contain a 1 (a missing dim counts as 1)."""
    n = max(len(a), len(b))
    pa, pb = [None] * (n - len(a)) + list(a), [None] * (n - len(b)) + list(b)
    out, cols, ok = [], [], True
    for da, db in zip(pa, pb, strict=True):
        ea, eb = da or 1, db or 1
        if ea == eb or ea == 1 or eb == 1:
            r = max(ea, eb)
            cols.append({"a": da, "b": db, "out": r, "ok": True})
            out.append(r)
        else:
            cols.append({"a": da, "b": db, "out": None, "ok": False})
            ok = False
    return (out if ok else None), cols


@styled
def broadcasting(p: dict, device: str) -> DemoOutput:
    a, b = p["shape_a"], p["shape_b"]
    shape, cols = broadcast_shape(a, b)
    try:
        torch_shape = list(torch.broadcast_shapes(tuple(a), tuple(b)))
        torch_error = None
    except RuntimeError as exc:
        torch_shape, torch_error = None, str(exc).split("\n")[0]
    numbers: dict = {
        "compatible": shape is not None,
        "result_shape": shape,
        "torch_result_shape": torch_shape,
        "agree": shape == torch_shape,
    }
    if shape is not None:
        numel = math.prod(shape)
        # really add two tensors when small enough; else on the meta device (shapes, no data)
        dev = device if numel <= 2_000_000 else "meta"
        g = torch.Generator().manual_seed(0)
        ta = torch.rand(a, generator=g) if dev != "meta" else torch.empty(a, device="meta")
        tb = torch.rand(b, generator=g) if dev != "meta" else torch.empty(b, device="meta")
        ta, tb = ta.to(dev), tb.to(dev)
        numbers["sum_shape"] = list((ta + tb).shape)
        ea, eb = ta.expand(shape), tb.expand(shape)
        numbers["expanded_strides_a"], numbers["expanded_strides_b"] = list(ea.stride()), list(eb.stride())
        numbers["result_elements"] = numel
        numbers["stored_elements"] = [math.prod(a), math.prod(b)]
        if dev != "meta":
            numbers["max_diff_vs_explicit_copy"] = (
                ((ta + tb) - (ea.contiguous() + eb.contiguous())).abs().max().item()
            )

    fig = figure(9, 3.4, layout=None)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.01, right=0.99, top=0.88, bottom=0.03)
    n = len(cols)
    rows = [("A", "a"), ("B", "b"), ("A + B", "out")]
    for ri, (label, key) in enumerate(rows):
        yy = 2 - ri
        ax.text(-0.3, yy, label, ha="right", va="center", fontsize=12, fontweight="bold")
        for ci, col in enumerate(cols):
            v = col[key]
            stretched = key != "out" and col["ok"] and (v is None or (v == 1 and col["out"] != 1))
            bad = not col["ok"]
            face = (
                "#fde0dd" if bad else ("#ffe8c2" if stretched else ("#dbe9f6" if key != "out" else "#d9f0d3"))
            )
            ax.add_patch(
                Rectangle((ci, yy - 0.38), 0.92, 0.76, facecolor=face, edgecolor="#555555", linewidth=1)
            )
            if v is None and key != "out":
                txt = f"(1)→{col['out']}" if col["ok"] else "–"
            elif v is None:
                txt = "✗"
            elif stretched:
                txt = f"1→{col['out']}"
            else:
                txt = str(v)
            ax.text(ci + 0.46, yy, txt, ha="center", va="center", fontsize=11 if len(txt) < 9 else 9)
    ax.set_xlim(-1.6, max(n, 3) + 0.2)
    ax.set_ylim(-0.6, 2.6)
    bare(ax)
    ax.set_title(
        "Shapes aligned right to left: orange = stretched (no copy), red = incompatible"
        if shape is None
        else "Shapes aligned right to left: orange dims are stretched without copying"
    )
    img = png(fig)

    fa, fb = "x".join(map(str, a)), "x".join(map(str, b))
    steps = []
    for col in cols:
        da, db = col["a"], col["b"]
        if not col["ok"]:
            steps.append(f"{da} vs {db}: neither is 1 → error")
        elif da is None or db is None:
            steps.append(f"{da if da is not None else db} vs (missing → 1) → {col['out']}")
        elif da == db:
            steps.append(f"{da} vs {db}: equal → {col['out']}")
        else:
            steps.append(f"{da} vs {db}: the 1 is stretched → {col['out']}")
    if shape is not None:
        res = "x".join(map(str, shape))
        head = (
            f"Broadcasting {fa} with {fb} gives **{res}** (torch.broadcast_shapes agrees: "
            f"{'x'.join(map(str, torch_shape))}; a real A + B has shape {'x'.join(map(str, numbers['sum_shape']))})."
        )
        tail = (
            f"\nStretched dims get stride 0 (A's strides when expanded: {numbers['expanded_strides_a']}, "
            f"B's: {numbers['expanded_strides_b']}): the smaller tensor is never copied, so {numbers['result_elements']:,} "
            f"results come from {numbers['stored_elements'][0]:,} + {numbers['stored_elements'][1]:,} stored values."
        )
    else:
        head = f"{fa} and {fb} do **not** broadcast: torch raises “{torch_error}”."
        tail = "\nAdd a unit axis (x[:, None] or unsqueeze) so the sizes line up, or transpose one operand."
    text = (
        f"{head}\nRule: compare dimensions from the right; each pair must be equal or one of them 1 (a "
        f"missing leading dimension counts as 1):\n" + "\n".join(f"• {s}" for s in reversed(steps)) + tail
    )
    return DemoOutput(numbers, text, (img,))


# -- memory estimate ------------------------------------------------------------------------------------------
BYTES = {"float32": 4, "float64": 8, "float16": 2}
OPT_STATE = {"sgd": 0, "momentum": 1, "adam": 2}


def conv_net(
    blocks: int, width: int, image: int, channels: int, classes: int, device="meta"
) -> nn.Sequential:
    """VGG-style: per block two 3x3 pad-1 convs (+ReLU) and a 2x2 max-pool; channels double per block.

    The modules are created on ``device`` directly (meta by default: shapes, no storage). Built on the CPU
    and moved, the largest net the bounds allow would first allocate its real weights (a 335 GB Linear)."""
    layers: list[nn.Module] = []
    c = channels
    with torch.device(device):
        for i in range(blocks):
            w = width * 2**i
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(inplace=True)]
            layers += [nn.Conv2d(w, w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = w
        side = image // 2**blocks
        layers += [nn.Flatten(), nn.Linear(c * side * side, classes)]
    return nn.Sequential(*layers)


def memory_by_formula(blocks: int, width: int, image: int, channels: int, classes: int) -> list[dict]:
    """Per layer: output shape, values per image and parameters, by hand."""
    rows, c, s = [], channels, image
    rows.append({"name": "input", "shape": [c, s, s], "values": c * s * s, "params": 0})
    for i in range(blocks):
        w = width * 2**i
        for j in (1, 2):
            rows.append(
                {
                    "name": f"conv{i + 1}_{j}",
                    "shape": [w, s, s],
                    "values": w * s * s,
                    "params": w * (c * 9 + 1),
                }
            )
            c = w
        s //= 2
        rows.append({"name": f"pool{i + 1}", "shape": [c, s, s], "values": c * s * s, "params": 0})
    rows.append({"name": "fc", "shape": [classes], "values": classes, "params": classes * (c * s * s + 1)})
    return rows


def _fmt_bytes(n: float) -> str:
    for unit, k in (("GB", 3), ("MB", 2), ("KB", 1)):
        if n >= 1024**k:
            return f"{n / 1024**k:.2f} {unit}"
    return f"{n:.0f} B"


@styled
def memory_estimate(p: dict, device: str) -> DemoOutput:
    blocks, width, image, batch = p["blocks"], p["width"], p["image"], p["batch"]
    if image % 2**blocks:
        raise BadParameter(
            f"memory_estimate: image size {image} must be divisible by 2^blocks = {2**blocks} (one 2x2 pool per block)"
        )
    bpv, extra = BYTES[p["dtype"]], OPT_STATE[p["optimizer"]]
    rows = memory_by_formula(blocks, width, image, 3, p["classes"])
    act = sum(r["values"] for r in rows)
    params = sum(r["params"] for r in rows)
    # independent: torch's own parameter count, and activation shapes from forward hooks on the real
    # module graph run on meta tensors (shapes are computed by torch, no arithmetic of ours, no memory)
    net = conv_net(blocks, width, image, 3, p["classes"])
    torch_params = sum(t.numel() for t in net.parameters())
    seen = [3 * image * image]

    def hook(_m, _i, out):
        seen.append(out[0].numel())

    handles = [
        m.register_forward_hook(hook) for m in net if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.Linear)
    ]
    with torch.no_grad():
        net(torch.empty(1, 3, image, image, device="meta"))
    for h in handles:
        h.remove()
    hook_act = sum(seen)
    values = {
        "activations": act * batch,
        "activation gradients": act * batch,
        "parameters": params,
        "parameter gradients": params,
        "optimizer state": params * extra,
    }
    total_values = sum(values.values())
    total_bytes = total_values * bpv
    budget = p["budget_gb"] * 1024**3
    per_example = 2 * act * bpv
    fixed = (2 + extra) * params * bpv
    max_batch = int((budget - fixed) // per_example) if budget > fixed else 0
    numbers = {
        "total_gb": total_bytes / 1024**3,
        "total_values": total_values,
        "activations_per_image": act,
        "hook_activations_per_image": hook_act,
        "activations_mb_per_image": act * bpv / 1024**2,
        "params": params,
        "torch_params": torch_params,
        "agree": params == torch_params and act == hook_act,
        "bytes_per_value": bpv,
        "breakdown_mb": {k: v * bpv / 1024**2 for k, v in values.items()},
        "max_batch_in_budget": max_batch,
    }

    fig = figure(11, 4.0, layout=None)
    axs = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.5, 1]})
    fig.subplots_adjust(left=0.02, right=0.99, top=0.88, bottom=0.2, wspace=0.08)
    ax = axs[0]
    mb = [r["values"] * bpv / 1024**2 for r in rows]
    value_bars(
        ax,
        mb,
        ["#7f7f7f"] + ["#1f77b4" if r["name"].startswith("conv") else "#9467bd" for r in rows[1:]],
        lambda v: f"{v:.2g}" if v >= 0.01 else "<0.01",
        [r["name"] for r in rows],
        fontsize=8 if len(rows) > 9 else 9,
    )
    ax.set_title(f"Activation memory per image by layer (MB, {p['dtype']})")
    ax = axs[1]
    kinds = [k for k, v in values.items() if v]
    sizes = [values[k] * bpv / 1024**2 for k in kinds]
    value_bars(
        ax,
        sizes,
        ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c"][: len(kinds)],
        "{:,.0f}",
        [k.replace(" ", "\n") for k in kinds],
        fontsize=8.5,
    )
    ax.set_title(f"Training memory, batch {batch} (MB)")
    note(
        ax,
        f"total {_fmt_bytes(total_bytes)}\nbudget {p['budget_gb']:g} GB → batch ≤ {max_batch}",
        "upper right",
    )
    img = png(fig)
    text = (
        f"A VGG-style net ({blocks} blocks of two 3x3 convs + 2x2 max-pool, {width}→{width * 2 ** (blocks - 1)} "
        f"channels, {image}x{image} RGB input, {p['classes']} classes) stores {act:,} activation values per image "
        f"and has {params:,} parameters (torch counts {torch_params:,}; forward hooks see {hook_act:,} "
        f"activation values: {'both agree' if numbers['agree'] else 'MISMATCH'}).\n"
        f"Training with batch {batch}: activations and their gradients {2 * act * batch:,} values, parameters "
        f"and their gradients {2 * params:,}"
        + (f", {p['optimizer']} state {extra * params:,}" if extra else "")
        + f" = {total_values:,} values × {bpv} bytes ({p['dtype']}) = {total_bytes:,} bytes; divide by 1024 "
        f"three times: **{total_bytes / 1024**3:.3f} GB**. Activations dominate, which is why lowering the batch "
        f"size is the usual fix: within {p['budget_gb']:g} GB the batch can be at most {max_batch}. (ReLUs are "
        f"in place and not counted; the framework's workspace and the data batches add more.)"
    )
    return DemoOutput(numbers, text, (img,))
