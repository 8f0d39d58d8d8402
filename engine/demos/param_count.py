"""The param_count demo: learnable parameters of a conv or linear layer, formula vs torch's own count."""

from __future__ import annotations

import re

from engine.errors import BadParameter
from engine.parse import GROUPED, NUM, N, S, cut_text, num_value, read_scalar
from engine.spec import CS231N_CARDS, FASTBOOK_CH13, DemoOutput, DemoSpec, KBRef, ParamSpec

SPEC = DemoSpec(
    name="param_count",
    order=30,
    summary="Learnable parameters of a conv or linear layer, formula vs torch's own count.",
    params=(
        ParamSpec(
            name="layer",
            kind="choice",
            default="conv",
            help="layer type",
            choices=("conv", "linear"),
            aliases={
                "conv2d": "conv",
                "convolution": "conv",
                "fc": "linear",
                "dense": "linear",
                "fully connected": "linear",
            },
        ),
        ParamSpec(
            name="in_channels",
            kind="int",
            default=3,
            help="input channels (conv) or input features (linear)",
            lo=1,
            hi=65536,
            words=("in", "in_channels", "input channels", "inputs", "in features", "input features"),
        ),
        ParamSpec(
            name="out_channels",
            kind="int",
            default=1,
            help="output channels / filters (conv) or output features (linear)",
            lo=1,
            hi=65536,
            words=("out", "out_channels", "output channels", "filters", "outputs", "out features"),
        ),
        ParamSpec(
            name="kernel",
            kind="int",
            default=5,
            help="square kernel size (conv only)",
            lo=1,
            hi=15,
            words=("kernel", "kernel size", "ks", "filter size"),
        ),
        ParamSpec(name="bias", kind="bool", default=True, help="whether the layer has a bias"),
        ParamSpec(
            name="grid",
            kind="int",
            default=None,
            help="output grid size (e.g. 7 for 7x7) to count multiplications",
            lo=1,
            hi=4096,
            words=("grid",),
            optional=True,
        ),
    ),
    examples=(
        "how many parameters does a 5x5 filter on an RGB image have",
        "params of 8 input channels, 16 output channels, 3x3 kernel",
        "conv2d 3->64 kernel 7",
        "parameters of a linear layer 784 -> 10",
    ),
    keywords={
        "param": 5,
        "how many (learnable )?(weights|parameters)": 5,
        "->": 2,
        "input channels|in_channels": 2,
        "output channels|out_channels": 2,
        r"\bconv2d\b": 1,
        "learnable": 3,
        r"\bbias": 1,
    },
    kb=(
        KBRef(
            CS231N_CARDS,
            "What is the number of learnable parameters for a 5x5 filter operating on an RGB image?",
        ),
        KBRef(FASTBOOK_CH13, "Why does the third layer of the MNIST CNN have 7*7*(1168-16) multiplications?"),
        KBRef(FASTBOOK_CH13, "How does a convolution work with a color input?"),
    ),
    own=("in_channels", "out_channels", "kernel", "grid"),
    budget_s=15,
    arithmetic=True,
)


def extract(norm: str) -> dict:
    out: dict = {}
    if re.search(r"\b(linear|fully[\s-]?connected|fc|dense)\b", norm):
        out["layer"] = "linear"
    ins, outs = "param_count: in_channels", "param_count: out_channels"
    m = re.search(rf"({S})\s*->\s*({S})", norm) or re.search(
        rf"from ({S}) to ({S})(?: channels| features)?", norm
    )
    if m:
        out["in_channels"], out["out_channels"] = read_scalar(m.group(1), ins), read_scalar(m.group(2), outs)
    # "8 input channels", "784 inputs", "64 in, 128 out" (in/out alone only before a comma, "and" or the end)
    end = r"(?=\s*+(?:,|;|\band\b|&|->|$))"
    m = re.search(
        rf"({S})\s*(?:input|in)[\s_](?:channels?|features?)|({S})\s*inputs?\b|({S}) in\b{end}", norm
    )
    if m:
        out["in_channels"] = read_scalar(next(g for g in m.groups() if g is not None), ins)
    m = re.search(
        rf"({S})\s*(?:output|out)[\s_](?:channels?|features?)|({S})\s*outputs?\b|({S}) out\b{end}", norm
    )
    if m:
        out["out_channels"] = read_scalar(next(g for g in m.groups() if g is not None), outs)
    # "16 filters", not the 8 of "input channels 8 filters 16" (a value of the name before it)
    m = re.search(
        rf"(?<!channels )(?<!channel )(?<!features )({S})\s+(?:{N}x{NUM}\s+)?(?:filters|kernels)\b", norm
    )
    if m:
        out["out_channels"] = read_scalar(m.group(1), outs)
    if re.search(r"\brgb\b|colou?r image", norm):
        out.setdefault("in_channels", 3)
    if re.search(r"gr[ae]yscale|black and white|mnist", norm):
        out.setdefault("in_channels", 1)
    m = re.search(rf"({N})x({NUM})(?!\s*(?:grid|output|input|image|activation))", norm)
    if m:
        if m.group(1) != m.group(2):
            raise BadParameter(
                f"only square kernels are supported (got {cut_text(m.group(1))}x{cut_text(m.group(2))})"
            )
        out["kernel"] = num_value(m.group(1))
    m = re.search(rf"\b(?:kernel|filter)(?:\s*size)?\s*(?:=|:|of)?\s*({S})(?![\dx])", norm)
    if m:
        pair = re.fullmatch(rf"({NUM}),({NUM})", m.group(1))
        if pair and not GROUPED.fullmatch(m.group(1)):  # PyTorch's kernel_size=(3, 3) written "3,3"
            if pair.group(1) != pair.group(2):
                raise BadParameter(f"only square kernels are supported (got {cut_text(m.group(1))})")
            out["kernel"] = num_value(pair.group(1))
        else:
            out["kernel"] = read_scalar(m.group(1), "param_count: kernel")
    m = re.search(rf"(?:on an? |over an? )?({N})x\1\s*(?:grid|output|activation)", norm)
    if m:
        out["grid"] = num_value(m.group(1))
    if re.search(r"\bno bias|without (a )?bias|bias\s*=\s*false", norm):
        out["bias"] = False
    return out


def run(p: dict, device: str) -> DemoOutput:
    from matplotlib.ticker import MaxNLocator
    from torch import nn

    from engine.plot import figure, note, png

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
