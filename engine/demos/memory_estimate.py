"""The memory_estimate demo: memory of a small conv net: activations, parameters and gradients in MB/GB,
checked against torch. The net is built on the meta device: shapes, no storage, so the largest net the
bounds allow costs no memory."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from engine.errors import BadParameter
from engine.parse import N, S, read_scalar
from engine.spec import CS231N_CARDS, DemoOutput, DemoSpec, KBRef, ParamSpec

if TYPE_CHECKING:
    from torch import nn


SPEC = DemoSpec(
    name="memory_estimate",
    order=190,
    summary="Memory of a small conv net: activations, parameters and gradients in MB/GB, checked against torch.",
    params=(
        ParamSpec(
            name="image",
            kind="int",
            default=224,
            help="input width/height (RGB)",
            lo=8,
            hi=1024,
            words=("image", "input", "resolution", "image size"),
        ),
        ParamSpec(
            name="batch",
            kind="int",
            default=64,
            help="batch size",
            lo=1,
            hi=4096,
            words=("batch", "batch size", "bs"),
            number_before=True,
        ),
        ParamSpec(
            name="blocks",
            kind="int",
            default=3,
            help="conv blocks (two 3x3 convs + 2x2 max-pool each)",
            lo=1,
            hi=5,
            words=("blocks", "stages"),
            number_before=True,
        ),
        ParamSpec(
            name="width",
            kind="int",
            default=64,
            help="channels of the first block (doubling per block)",
            lo=1,
            hi=512,
            words=("width", "channels", "filters"),
        ),
        ParamSpec(
            name="classes",
            kind="int",
            default=10,
            help="output classes",
            lo=1,
            hi=10000,
            words=("classes",),
            number_before=True,
        ),
        ParamSpec(
            name="dtype",
            kind="choice",
            default="float32",
            help="bytes per value: float32 = 4, float64 = 8, float16 = 2",
            choices=("float32", "float64", "float16"),
            aliases={
                "double": "float64",
                "fp32": "float32",
                "fp16": "float16",
                "half": "float16",
                "single": "float32",
            },
        ),
        ParamSpec(
            name="optimizer",
            kind="choice",
            default="sgd",
            help="optimizer state per parameter: sgd 0, momentum 1, adam 2 copies",
            choices=("sgd", "momentum", "adam"),
        ),
        ParamSpec(
            name="budget_gb",
            kind="float",
            default=8.0,
            help="memory budget for the largest batch",
            lo=0.1,
            hi=1024.0,
            words=("budget", "gpu with", "gb gpu"),
        ),
    ),
    examples=(
        "how much memory does a small conv net need",
        "memory estimate for batch 128 of 64x64 images",
        "convert the number of values to GB for a convnet in float64",
        "memory_estimate batch=32 blocks=4 optimizer=adam",
    ),
    keywords={
        r"\bmemory\b": 6,
        r"\bgb\b|gigabyte|megabyte|\bmb\b": 3,
        r"out of memory|\boom\b": 4,
        r"\bfit (in|on|into)\b.{0,24}\b(gpu|memory)": 3,
        r"\bgpu\b": 2,
        "number of values": 3,
        r"\bconvert\b.*\bgb\b": 4,
    },
    kb=(
        KBRef(CS231N_CARDS, "how to convert total number of values to GB"),
        KBRef(CS231N_CARDS, "three major sources of memory strain for convnets"),
        KBRef(CS231N_CARDS, "largest bottlenecks for convnets"),
    ),
    own=("image", "budget_gb"),
    budget_s=15,
    arithmetic=True,
)


def extract(norm: str) -> dict:
    out: dict = {}
    m = re.search(
        rf"({N})x\1\b|\b(?:image|input|resolution)s?(?: size)?\s*(?:=|:|of)?\s*({S})|({S})\s*(?:px|pixels?)\b",
        norm,
    )
    if m:
        out["image"] = read_scalar(next(g for g in m.groups() if g is not None), "memory_estimate: image")
    m = re.search(rf"({S})\s*gb\b", norm)
    if m:
        out["budget_gb"] = read_scalar(m.group(1), "memory_estimate: budget_gb")
    # "32 images of 224x224": how many images is the batch (a size is "224 px images", "224x224 images")
    m = re.search(rf"({S})\s+(?:images|pictures|samples|examples)\b", norm)
    if m:
        out["batch"] = read_scalar(m.group(1), "memory_estimate: batch")
    return out


BYTES = {"float32": 4, "float64": 8, "float16": 2}


OPT_STATE = {"sgd": 0, "momentum": 1, "adam": 2}


def conv_net(
    blocks: int, width: int, image: int, channels: int, classes: int, device="meta"
) -> nn.Sequential:
    """VGG-style: per block two 3x3 pad-1 convs (+ReLU) and a 2x2 max-pool; channels double per block.

    The modules are created on ``device`` directly (meta by default: shapes, no storage). Built on the CPU
    and moved, the largest net the bounds allow would first allocate its real weights (a 335 GB Linear)."""
    import torch
    from torch import nn

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


def run(p: dict, device: str) -> DemoOutput:
    import torch
    from torch import nn

    from engine.plot import figure, note, png, value_bars

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
