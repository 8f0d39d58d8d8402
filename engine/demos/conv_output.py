"""The conv_output demo: output size (W-F+2P)/S+1 with a per-layer shape trace; non-integer results are
explained."""

from __future__ import annotations

from fractions import Fraction

from engine.errors import BadParameter
from engine.parse import input_size, parse_layers
from engine.spec import (
    CS231N_CARDS,
    FASTBOOK_CH13,
    FASTBOOK_CH13_SET2,
    LAYERS_HELP,
    MAX_LAYERS,
    DemoOutput,
    DemoSpec,
    KBRef,
    ParamSpec,
    layer_str,
)

SPEC = DemoSpec(
    name="conv_output",
    order=20,
    summary="Output size (W-F+2P)/S+1 with a per-layer shape trace; non-integer results are explained.",
    params=(
        ParamSpec(
            name="size",
            kind="int",
            default=227,
            help="input width/height W",
            lo=1,
            hi=4096,
            words=("w", "input", "input size", "width"),
        ),
        ParamSpec(
            name="layers",
            kind="layers",
            default=[{"kernel": 11, "stride": 4, "padding": 0, "dilation": 1}],
            help=LAYERS_HELP,
            max_len=MAX_LAYERS,
        ),
    ),
    examples=(
        "output size for W=227 F=11 S=4 P=0",
        "conv output of a 32x32 input with a 5x5 kernel, padding 2",
        "shape trace of 28x28 through two stride 2 3x3 convs with padding 1",
        "conv_output size=28 layers=3:2:1",
    ),
    keywords={
        "output (size|shape|width|height|volume|dim)": 5,
        r"\bw\s*=": 4,
        r"\(w\s*-\s*f": 6,
        "shape trace": 4,
        "spatial (size|dim)": 3,
        "feature map size": 4,
        r"\bf\s*=": 2,
        "how big": 1,
        r"\bshape": 1,
    },
    kb=(
        KBRef(CS231N_CARDS, "Formula for calculating output width/height"),
        KBRef(
            CS231N_CARDS,
            "Set padding to ____ when stride is 1 to preserve input volume and output volume size",
        ),
        KBRef(FASTBOOK_CH13_SET2, "After each stride-2 conv, why do we double the number of filters?"),
        KBRef(FASTBOOK_CH13, "What is “stride”?"),
    ),
    own=("size",),
    budget_s=15,
    arithmetic=True,
)


def extract(norm: str) -> dict:
    out: dict = {}
    size, rest = input_size(norm, "conv_output")
    if size is not None:
        out["size"] = size
    layers = parse_layers(rest, "conv_output", SPEC.param("layers").max_len)
    if layers:
        out["layers"] = layers
    return out


def run(p: dict, device: str) -> DemoOutput:
    import torch
    import torch.nn.functional as F

    from engine.plot import figure, png, value_bars

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
        ["input"] + [f"L{r['layer']}\n{layer_str(r)}" for r in rows],
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
