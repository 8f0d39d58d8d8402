"""The conv_as_matmul demo: A small conv written as one matrix: its zeros and shared weights; multiplying
equals F.conv2d."""

from __future__ import annotations

import re

from engine.errors import BadParameter
from engine.parse import input_size, segment_layers
from engine.spec import CS231N_CARDS, FASTBOOK_CH13, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

SPEC = DemoSpec(
    name="conv_as_matmul",
    order=130,
    summary="A small conv written as one matrix: its zeros and shared weights; multiplying equals F.conv2d.",
    params=(
        ParamSpec(
            name="size",
            kind="int",
            default=4,
            help="input width/height",
            lo=2,
            hi=12,
            words=("input", "size", "image"),
        ),
        ParamSpec(
            name="kernel",
            kind="int",
            default=3,
            help="kernel size",
            lo=1,
            hi=7,
            words=("kernel", "kernel size", "filter"),
        ),
        ParamSpec(name="stride", kind="int", default=1, help="stride", lo=1, hi=4, words=("stride",)),
        ParamSpec(
            name="padding", kind="int", default=0, help="zero padding", lo=0, hi=3, words=("padding", "pad")
        ),
        SEED,
    ),
    examples=(
        "show a convolution as a matrix multiplication",
        "conv as matmul for a 5x5 input and 3x3 kernel",
        "unrolled weight matrix with stride 2 and padding 1",
        "conv_as_matmul size=6 kernel=3",
    ),
    keywords={
        "matrix mult|matmul|mat.?mul": 6,
        "as a matrix": 5,
        "unroll": 4,
        "im2col": 5,
        "toeplitz": 4,
        "shared weights|weight sharing|parameter sharing": 3,
        "conv.* to fc|fc.* to conv": 4,
    },
    kb=(
        KBRef(FASTBOOK_CH13, "What is the relationship between a convolution and a matrix multiplication?"),
        KBRef(CS231N_CARDS, "convert conv layer to FC"),
    ),
    own=("size", "kernel", "stride", "padding"),
    budget_s=15,
    arithmetic=True,
)


def extract(norm: str) -> dict:
    out: dict = {}
    size, rest = input_size(norm, "conv_as_matmul")
    if size is not None:
        out["size"] = size
    layers = segment_layers(rest, "conv_as_matmul")
    if layers:
        first = layers[0]
        for k in ("kernel", "stride", "padding"):
            if re.search(
                {
                    "kernel": r"\d+x\d+|kernel|filter|\bf\b",
                    "stride": r"stride|\bs\s*=",
                    "padding": r"pad|same|\bp\s*=",
                }[k],
                rest,
            ):
                out[k] = first[k]
    return out


def run(p: dict, device: str) -> DemoOutput:
    import matplotlib
    import numpy as np
    import torch
    import torch.nn.functional as F

    from engine.plot import bare, figure, png

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
