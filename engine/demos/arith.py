"""The arithmetic demos: shapes, counts and small formulas, each cross-checked against real torch layers."""

from __future__ import annotations

import math
from fractions import Fraction

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator, NullLocator
from torch import nn

from engine.errors import BadParameter
from engine.plot import bare, figure, note, png, styled, value_bars
from engine.spec import DemoOutput

EMPIRICAL_RF_LIMIT = 600


def _layer_str(layer: dict) -> str:
    s = f"{layer['kernel']}x{layer['kernel']} s{layer['stride']} p{layer['padding']}"
    return s + (f" d{layer['dilation']}" if layer["dilation"] > 1 else "")


def rf_closed_form(layers: list[dict]) -> list[tuple[int, int]]:
    """(receptive field, jump) after each layer: r += (d(k-1)) * jump; jump *= stride."""
    r, j, out = 1, 1, []
    for layer in layers:
        r += layer["dilation"] * (layer["kernel"] - 1) * j
        j *= layer["stride"]
        out.append((r, j))
    return out


def rf_empirical(layers: list[dict], device: str) -> tuple[int, np.ndarray, tuple[int, int]]:
    """Back-propagate from one central output unit through real all-positive Conv2d layers; the field is
    the bounding box of inputs with non-zero gradient. Returns (size, gradient map, top-left corner)."""
    rf = rf_closed_form(layers)[-1][0]
    jump = rf_closed_form(layers)[-1][1]
    n = rf + 2 * jump + 2 * sum(layer["padding"] for layer in layers) + 4
    for _ in range(6):
        x = torch.ones(1, 1, n, n, device=device, requires_grad=True)
        h = x
        for layer in layers:
            conv = nn.Conv2d(
                1, 1, layer["kernel"], layer["stride"], layer["padding"], layer["dilation"], bias=False
            ).to(device)
            nn.init.constant_(conv.weight, 1.0)
            h = conv(h)
        oh, ow = h.shape[-2:]
        if oh >= 1 and ow >= 1:
            h[0, 0, oh // 2, ow // 2].backward()
            g = x.grad[0, 0].detach().cpu().numpy()
            rows, cols = np.nonzero(g)
            if len(rows) and rows.min() > 0 and cols.min() > 0 and rows.max() < n - 1 and cols.max() < n - 1:
                size = int(rows.max() - rows.min() + 1)
                return size, g, (int(rows.min()), int(cols.min()))
        n = n * 2
    raise BadParameter("could not fit the receptive field in the probe input")  # pragma: no cover


@styled
def receptive_field(p: dict, device: str) -> DemoOutput:
    layers = p["layers"]
    trace = rf_closed_form(layers)
    size = trace[-1][0]
    numbers: dict = {"size": size, "jump": trace[-1][1], "per_layer": [r for r, _ in trace]}
    empirical = None
    if size <= EMPIRICAL_RF_LIMIT:
        empirical, grad, (top, left) = rf_empirical(layers, device)
        numbers["size_empirical"] = empirical
        numbers["agree"] = empirical == size
    else:
        numbers["size_empirical"] = None
        numbers["agree"] = None

    fig = figure(11, 3.8, layout=None)  # fixed margins: constrained layout would double the render time
    axs = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.1]})
    fig.subplots_adjust(left=0.02, right=0.99, top=0.9, bottom=0.16, wspace=0.25)
    if empirical is not None:
        pad = max(2, size // 4)
        r0, c0 = max(top - pad, 0), max(left - pad, 0)
        r1, c1 = min(top + size + pad, grad.shape[0]), min(left + size + pad, grad.shape[1])
        crop = grad[r0:r1, c0:c1]
        h, w = crop.shape
        ax = axs[0]
        ax.imshow(crop > 0, cmap="Blues", vmin=0, vmax=1.6, interpolation="nearest")
        if h <= 40:  # the pixel grid as two line collections (minor ticks would be 4 artists per line)
            ax.vlines(np.arange(-0.5, w), -0.5, h - 0.5, color="#888888", linewidth=0.5)
            ax.hlines(np.arange(-0.5, h), -0.5, w - 0.5, color="#888888", linewidth=0.5)
        ax.add_patch(
            Rectangle(
                (left - c0 - 0.5, top - r0 - 0.5), size, size, fill=False, edgecolor="#d62728", linewidth=2.2
            )
        )
        ax.set_title(f"Input pixels seen by one unit: {size}x{size}")
        bare(ax, frame=True)
        ax = axs[1]
        im = ax.imshow(crop, cmap="magma", interpolation="nearest")
        cbar = fig.colorbar(im, ax=ax, shrink=0.8, label="∂ output / ∂ input")
        cbar.set_ticks(np.unique(np.linspace(0, crop.max(), 3).round()))
        ax.set_title("Gradient from one output unit")
        bare(ax, frame=True)
    else:
        for ax in axs[:2]:
            bare(ax)
        axs[0].text(
            0.5, 0.5, f"field {size} px: too large\nfor the empirical probe", ha="center", va="center"
        )
    ax = axs[2]
    value_bars(
        ax,
        [r for r, _ in trace],
        "#1f77b4",
        "{:d}",
        [f"L{i}\n{_layer_str(lay)}" for i, lay in enumerate(layers, 1)],
        fontsize=8 if len(trace) > 4 else 9.5,
    )
    ax.set_title("Field after each layer (pixels)")
    img = png(fig)

    how = " → ".join(_layer_str(layer) for layer in layers)
    check = (
        f"Back-propagating from one output unit through the same torch Conv2d stack touches a {empirical}x{empirical}"
        f" patch of the input: {'they agree' if empirical == size else 'MISMATCH'}."
        if empirical is not None
        else "The field is too large for the empirical probe; only the closed form is shown."
    )
    holes = (
        " Dilation leaves holes inside the field (the dark gaps): the field grows without new weights."
        if any(layer["dilation"] > 1 for layer in layers)
        else ""
    )
    text = (
        f"Receptive field of {how}: **{size}x{size}** pixels.\n"
        f"Closed form: start at 1 and add dilation·(kernel−1)·jump per layer, where jump is the product of the "
        f"strides so far (per layer: {', '.join(str(r) for r, _ in trace)}). Each stride-2 layer doubles how far"
        f" one more kernel tap reaches, which is why deeper activations see a larger area.\n{check}{holes}"
    )
    return DemoOutput(numbers, text, (img,))


@styled
def conv_output(p: dict, device: str) -> DemoOutput:
    size, layers = p["size"], p["layers"]
    rows, w, exact_all = [], size, True
    lines = []
    for i, layer in enumerate(layers, 1):
        k_eff = layer["dilation"] * (layer["kernel"] - 1) + 1
        num = w - k_eff + 2 * layer["padding"]
        if num < 0:
            raise BadParameter(
                f"layer {i}: a {k_eff}-wide (effective) kernel does not fit a {w}-wide input with padding "
                f"{layer['padding']} (W-F+2P = {num} < 0)"
            )
        exact = Fraction(num, layer["stride"]) + 1
        out = num // layer["stride"] + 1
        exact_all &= exact.denominator == 1
        rows.append(
            {"layer": i, "in": w, **layer, "exact": str(exact), "out": out, "integer": exact.denominator == 1}
        )
        f = f"({w} − {layer['kernel']}" + (f"·{layer['dilation']}" if layer["dilation"] > 1 else "")
        lines.append(
            f"L{i}: {f} + 2·{layer['padding']})/{layer['stride']} + 1 = {exact}"
            + ("" if exact.denominator == 1 else f" → not an integer; torch floors to {out}")
        )
        w = out
    # independent check: torch computes shapes with the same layers on a meta tensor (no arithmetic of ours)
    x = torch.empty(1, 1, size, size, device="meta")
    for layer in layers:
        x = F.conv2d(
            x,
            torch.empty(1, 1, layer["kernel"], layer["kernel"], device="meta"),
            stride=layer["stride"],
            padding=layer["padding"],
            dilation=layer["dilation"],
        )
    torch_size = int(x.shape[-1])
    numbers = {
        "output_size": w,
        "torch_output_size": torch_size,
        "agree": torch_size == w,
        "exact": [r["exact"] for r in rows],
        "integer": exact_all,
        "trace": [size] + [r["out"] for r in rows],
    }

    fig = figure(8, 3.6, layout=None)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.02, right=0.98, top=0.88, bottom=0.16)
    sizes = numbers["trace"]
    value_bars(
        ax,
        sizes,
        ["#7f7f7f"] + ["#1f77b4" if r["integer"] else "#d62728" for r in rows],
        "{0}x{0}",
        ["input"] + [f"L{r['layer']}\n{_layer_str(r)}" for r in rows],
        fontsize=9.5 if len(sizes) < 7 else 7.5,
    )
    ax.set_title(
        "Shape trace: (W − F + 2P)/S + 1 per layer" + ("" if exact_all else "  (red: not an integer)")
    )
    img = png(fig)
    explain = (
        ""
        if exact_all
        else (
            "\nA non-integer result means the stride does not tile the padded input exactly: the last "
            "positions do not fit a whole kernel, so PyTorch floors the division and silently drops them. "
            "Change padding or input size to make (W − F + 2P) divisible by S."
        )
    )
    text = (
        f"Output size of a {size}x{size} input: **{w}x{w}** (torch agrees: {torch_size}x{torch_size}).\n"
        + "\n".join(lines)
        + explain
    )
    return DemoOutput(numbers, text, (img,))


@styled
def param_count(p: dict, device: str) -> DemoOutput:
    cin, cout, k, bias = p["in_channels"], p["out_channels"], p["kernel"], p["bias"]
    if p["layer"] == "conv":
        per_filter = cin * k * k
        params = cout * (per_filter + int(bias))
        layer = nn.Conv2d(cin, cout, k, bias=bias, device="meta")
        formula = f"{cout} × ({cin}·{k}·{k}{' + 1' if bias else ''}) = {params}"
        what = f"Conv2d({cin}, {cout}, kernel_size={k})"
        weight_shape = [cout, cin, k, k]
    else:
        per_filter = cin
        params = cout * (cin + int(bias))
        layer = nn.Linear(cin, cout, bias=bias, device="meta")
        formula = f"{cout} × ({cin}{' + 1' if bias else ''}) = {params}"
        what = f"Linear({cin}, {cout})"
        weight_shape = [cout, cin]
    torch_params = sum(t.numel() for t in layer.parameters())
    numbers = {
        "params": params,
        "torch_params": torch_params,
        "agree": params == torch_params,
        "weights": cout * per_filter,
        "biases": cout if bias else 0,
        "weight_shape": weight_shape,
    }
    mults_line = ""
    if p["grid"] is not None:
        mults = p["grid"] ** 2 * (params - numbers["biases"])
        numbers["multiplications"] = mults
        mults_line = (
            f"\nOn a {p['grid']}x{p['grid']} output grid every weight is used once per position: "
            f"{p['grid']}·{p['grid']}·({params} − {numbers['biases']}) = {mults:,} multiplications."
        )

    fig = figure(7, 3.2, layout=None)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.03, right=0.97, top=0.88, bottom=0.16)
    parts = [("weights", numbers["weights"], "#1f77b4"), ("biases", numbers["biases"], "#ff7f0e")]
    left = 0
    for label, n, c in parts:
        if n:
            ax.barh([0], [n], left=left, color=c, label=f"{label}: {n:,}")
            left += n
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.set_xlabel("parameters")
    ax.set_title(f"{what}: {params:,} learnable parameters")
    ax.legend(loc="lower right")
    note(ax, f"formula: {formula}\ntorch count: {torch_params:,}\nweight shape: {tuple(weight_shape)}")
    ax.set_ylim(-0.8, 1.6)
    img = png(fig)
    text = (
        f"{what} has **{params:,}** learnable parameters: {formula}. Each of the {cout} filters has "
        f"{per_filter:,} weights{' plus one bias' if bias else ''}; torch's own count of the same layer "
        f"is {torch_params:,} ({'agrees' if params == torch_params else 'MISMATCH'}).{mults_line}"
    )
    return DemoOutput(numbers, text, (img,))


@styled
def softmax(p: dict, device: str) -> DemoOutput:
    acts = p["activations"]
    t = p["target"]
    if t >= len(acts):
        raise BadParameter(f"softmax: target must be below the number of activations ({len(acts)}), got {t}")
    # by hand, in float64 Python: exp, sum, divide
    exps = [math.exp(a) for a in acts]
    total = sum(exps)
    probs = [e / total for e in exps]
    loss = -math.log(probs[t])
    # independently, with torch: softmax and cross_entropy (log_softmax + nll_loss)
    x = torch.tensor([acts], dtype=torch.float64)
    tprobs = torch.softmax(x, dim=1)[0].tolist()
    tloss = F.cross_entropy(x, torch.tensor([t])).item()
    numbers = {
        "exp": exps,
        "sum_exp": total,
        "probs": probs,
        "loss": loss,
        "torch_probs": tprobs,
        "torch_loss": tloss,
        "agree": max(abs(a - b) for a, b in zip(probs, tprobs, strict=True)) < 1e-12
        and abs(loss - tloss) < 1e-12,
    }
    bear = acts == [0.02, -2.49, 1.25]
    labels = ["grizzly", "black", "teddy"] if bear else [f"class {i}" for i in range(len(acts))]

    fig = figure(9, 3.6, layout=None)
    axs = fig.subplots(1, 3)
    few = len(acts) <= 8  # values written on the bars: no axis needed (ticks are the slow part of a draw)
    fig.subplots_adjust(
        left=0.02 if few else 0.06,
        right=0.99,
        top=0.9,
        bottom=0.12 if few else 0.16,
        wspace=0.12 if few else 0.3,
    )
    for ax, vals, title in (
        (axs[0], acts, "activation (logit)"),
        (axs[1], exps, "exp(activation)"),
        (axs[2], probs, "softmax = exp / Σexp"),
    ):
        colors = ["#d62728" if i == t else "#1f77b4" for i in range(len(vals))]
        ax.set_title(title)
        if few:
            value_bars(ax, vals, colors, "{:.2f}", labels)
        else:
            ax.bar(range(len(vals)), vals, color=colors)
            ax.set_xticks(range(len(vals)), labels, rotation=90, fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.axhline(0, color="black", linewidth=0.8)
    top = max(1.0, axs[2].get_ylim()[1]) if few else 1.1
    axs[2].set_ylim(0, top * 1.2 if few else top)
    note(
        axs[2],
        f"sum = {sum(probs):.3f}\ntarget = {labels[t]}\nloss = −log {probs[t]:.3f} = {loss:.3f}",
        "upper left",
    )
    img = png(fig)
    rows = "\n".join(
        f"{lab:>10}: act {a:+.2f}  exp {e:.2f}  softmax {q:.3f}"
        for lab, a, e, q in zip(labels, acts, exps, probs, strict=True)
    )
    text = (
        ("The book's bear_softmax example. " if bear else "")
        + f"exp makes every activation positive; dividing by their sum ({total:.2f}) makes them add up to 1 "
        f"and exaggerates the gaps, so the largest activation dominates.\n```\n{rows}\n```\n"
        f"Cross-entropy for target {labels[t]}: −log({probs[t]:.4f}) = **{loss:.4f}**; torch's "
        f"F.cross_entropy (log_softmax + nll_loss) gives {tloss:.4f}."
    )
    return DemoOutput(numbers, text, (img,))


@styled
def init_loss(p: dict, device: str) -> DemoOutput:
    n, d, scale = p["classes"], p["features"], p["weight_scale"]
    theory = -math.log(1.0 / n)
    g = torch.Generator(device="cpu").manual_seed(p["seed"])
    batch = 256
    x = torch.randn(batch, d, generator=g)
    w = torch.randn(d, n, generator=g) * scale
    y = torch.randint(0, n, (batch,), generator=g)
    scores = (x @ w).to(device)
    per_example = F.cross_entropy(scores, y.to(device), reduction="none").cpu()
    empirical = per_example.mean().item()
    big = torch.randn(d, n, generator=g) * 0.1
    big_loss = F.cross_entropy(x @ big, y).item()
    numbers = {
        "loss": theory,
        "empirical_loss": empirical,
        "relative_gap": abs(empirical - theory) / theory,
        "loss_with_std_0.1": big_loss,
        "classes": n,
    }

    fig = figure(8.5, 3.6, layout=None)
    axs = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.14, wspace=0.28)
    ns = np.unique(np.geomspace(2, 10000, 60).astype(int))
    ax = axs[0]
    ax.semilogx(ns, np.log(ns), color="#1f77b4", label="−log(1/N) = log N")
    ax.plot(
        [n], [empirical], "o", color="#d62728", markersize=8, label=f"random init, N={n}: {empirical:.3f}"
    )
    # fixed, plain tick labels: the log locator's minor ticks and mathtext labels were most of the draw time
    ax.set_xticks([2, 10, 100, 1000, 10000], ["2", "10", "100", "1k", "10k"])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks([0, 2, 4, 6, 8])
    ax.set_xlabel("number of classes N")
    ax.set_ylabel("expected cross-entropy")
    ax.set_title("Loss at initialisation")
    ax.legend(loc="upper left")
    ax = axs[1]
    counts, edges = np.histogram(per_example.numpy(), bins=30)
    ax.stairs(counts, edges, fill=True, color="#1f77b4", alpha=0.85)  # one artist, not 30 rectangles
    ax.axvline(theory, color="#d62728", linewidth=2, label=f"log N = {theory:.3f}")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(4, integer=True))
    ax.set_ylim(0, counts.max() * 1.15)
    ax.set_title(f"Per-example loss, W ~ N(0, {scale:g}²)", fontsize=10.5)
    ax.set_xlabel("loss")
    ax.set_ylabel("examples")
    ax.legend(loc="upper right")
    img = png(fig)
    text = (
        f"With small random weights every score is ≈ 0, so softmax gives each of the {n} classes probability "
        f"≈ 1/{n} and the loss is −log(1/{n}) = **{theory:.4f}**. A random linear classifier "
        f"(weights ~ N(0, {scale:g}²) on {d}-dim inputs) measures {empirical:.4f}. If your first-batch loss "
        f"is far from this, initialisation or the loss is wrong (with std 0.1 weights it is already "
        f"{big_loss:.2f})."
    )
    return DemoOutput(numbers, text, (img,))


@styled
def conv_as_matmul(p: dict, device: str) -> DemoOutput:
    n, k, s, pad = p["size"], p["kernel"], p["stride"], p["padding"]
    if k > n + 2 * pad:
        raise BadParameter(f"conv_as_matmul: kernel {k} does not fit a {n}x{n} input with padding {pad}")
    out = (n + 2 * pad - k) // s + 1
    g = torch.Generator().manual_seed(p["seed"])
    kernel = torch.randint(1, 10, (k, k), generator=g).double()
    x = torch.randn(n, n, generator=g, dtype=torch.float64)
    # build the (out², n²) matrix: row = one output position, weight index recorded to show sharing
    m = torch.zeros(out * out, n * n, dtype=torch.float64)
    idx = np.full((out * out, n * n), -1)
    for oi in range(out):
        for oj in range(out):
            row = oi * out + oj
            for a in range(k):
                for b in range(k):
                    i, j = oi * s - pad + a, oj * s - pad + b
                    if 0 <= i < n and 0 <= j < n:
                        m[row, i * n + j] = kernel[a, b]
                        idx[row, i * n + j] = a * k + b
    y_mat = (m @ x.reshape(-1)).reshape(out, out)
    y_conv = F.conv2d(x[None, None].to(device), kernel[None, None].to(device), stride=s, padding=pad)[
        0, 0
    ].cpu()
    diff = (y_mat - y_conv).abs().max().item()
    zeros = int((idx < 0).sum())
    uses = np.bincount(idx[idx >= 0], minlength=k * k)
    numbers = {
        "matrix_shape": [out * out, n * n],
        "zeros": zeros,
        "zero_fraction": zeros / idx.size,
        "distinct_weights": int((uses > 0).sum()),
        "max_uses_per_weight": int(uses.max()),
        "max_abs_diff": diff,
        "equal": diff < 1e-9,
    }

    fig = figure(9, 4.2, layout=None)
    axs = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 3.2]})
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.1, wspace=0.08)
    # one RGB image per panel, coloured by which kernel weight sits in each cell (tab20, as in the kernel)
    tab = matplotlib.colormaps["tab20"](np.arange(20) / 19)[:, :3]
    weight_ids = np.arange(k * k) % 20
    axs[0].imshow(tab[weight_ids].reshape(k, k, 3), interpolation="nearest")
    for a in range(k):
        for b in range(k):
            axs[0].text(
                b, a, f"{int(kernel[a, b])}", ha="center", va="center", fontsize=11, fontweight="bold"
            )
    axs[0].set_title(f"{k}x{k} kernel")
    bare(axs[0], frame=True)
    rgb = np.where((idx >= 0)[..., None], tab[np.maximum(idx, 0) % 20], 0.94)
    ax = axs[1]
    ax.imshow(rgb, interpolation="nearest", aspect="auto")
    rows, cols = idx.shape
    if cols <= 64:  # white cell borders as two line collections
        ax.vlines(np.arange(-0.5, cols), -0.5, rows - 0.5, color="white", linewidth=0.8)
        ax.hlines(np.arange(-0.5, rows), -0.5, cols - 0.5, color="white", linewidth=0.8)
    if idx.size <= 400:
        fs = 9 if cols <= 16 else 7.5
        for r, c in zip(*np.nonzero(idx >= 0), strict=True):
            ax.text(c, r, f"{int(m[r, c])}", ha="center", va="center", fontsize=fs)
    ax.set_title(
        f"Weight matrix {out * out}x{n * n}: {numbers['zero_fraction']:.0%} zeros, colours = shared weights"
    )
    bare(ax, frame=True)
    ax.text(0.5, -0.03, f"← input pixel (flattened {n}x{n}) →", transform=ax.transAxes, ha="center", va="top")
    ax.text(
        -0.012,
        0.5,
        f"output pixel ({out}x{out})",
        transform=ax.transAxes,
        ha="right",
        va="center",
        rotation=90,
    )
    img = png(fig)
    text = (
        f"A {k}x{k} conv (stride {s}, padding {pad}) on a {n}x{n} input is a multiplication by a "
        f"**{out * out}x{n * n}** matrix. {zeros} of its {idx.size} entries ({numbers['zero_fraction']:.0%}) are "
        f"always zero (each output only looks at a {k}x{k} patch: local connectivity), and the same {k * k} "
        f"kernel weights repeat on every row (each used up to {int(uses.max())} times: shared weights). "
        f"Multiplying the flattened input by it equals F.conv2d (max difference {diff:.1e})."
    )
    return DemoOutput(numbers, text, (img,))
