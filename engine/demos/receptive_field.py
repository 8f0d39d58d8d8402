"""The receptive_field demo: receptive field of a conv stack: closed form and by back-propagating from one
output unit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import BadParameter
from engine.parse import parse_layers
from engine.spec import (
    CS231N_CARDS,
    FASTBOOK_CH13,
    LAYERS_HELP,
    MAX_LAYERS,
    DemoOutput,
    DemoSpec,
    KBRef,
    ParamSpec,
    layer_str,
)

if TYPE_CHECKING:
    import numpy as np


SPEC = DemoSpec(
    name="receptive_field",
    order=10,
    summary="Receptive field of a conv stack: closed form and by back-propagating from one output unit.",
    params=(
        ParamSpec(
            name="layers",
            kind="layers",
            default=[{"kernel": 3, "stride": 2, "padding": 1, "dilation": 1}] * 2,
            help=LAYERS_HELP,
            max_len=MAX_LAYERS,
        ),
    ),
    examples=(
        "show receptive field after two stride-2 convs",
        "receptive field of three 3x3 convs",
        "receptive field with dilation 1, 2 and 4",
        "receptive_field layers=3:2,3:2,3:1",
    ),
    keywords={"receptive": 6, "field": 2, r"\brf\b": 3},
    kb=(
        KBRef(
            FASTBOOK_CH13,
            "What is the size of the receptive field of an activation after two stride 2 convolutions? Why?",
        ),
        KBRef(FASTBOOK_CH13, "What is a “receptive field”?"),
        KBRef(CS231N_CARDS, "dilated convolutions"),
    ),
    budget_s=15,
    arithmetic=True,
)


def extract(norm: str) -> dict:
    layers = parse_layers(norm, "receptive_field", SPEC.param("layers").max_len)
    return {"layers": layers} if layers else {}


EMPIRICAL_RF_LIMIT = 600


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
    import numpy as np
    import torch
    from torch import nn

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


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    from matplotlib.patches import Rectangle

    from engine.plot import bare, figure, png, value_bars

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
        [f"L{i}\n{layer_str(lay)}" for i, lay in enumerate(layers, 1)],
        fontsize=8 if len(trace) > 4 else 9.5,
    )
    ax.set_title("Field after each layer (pixels)")
    img = png(fig)

    how = " → ".join(layer_str(layer) for layer in layers)
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
