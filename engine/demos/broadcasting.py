"""The broadcasting demo: broadcasting: shapes aligned right to left, stretched dims and the result shape,
checked by torch."""

from __future__ import annotations

import math
import re

from engine.errors import BadParameter
from engine.parse import NUM, N, cut_text, int_items
from engine.spec import FASTBOOK_CH4, DemoOutput, DemoSpec, KBRef, ParamSpec

SPEC = DemoSpec(
    name="broadcasting",
    order=180,
    summary="Broadcasting: shapes aligned right to left, stretched dims and the result shape, checked by torch.",
    params=(
        ParamSpec(
            name="shape_a",
            kind="ints",
            default=[1010, 28, 28],
            help="shape of the first tensor, e.g. 1010,28,28",
            lo=1,
            hi=100000,
            max_len=6,
        ),
        ParamSpec(
            name="shape_b",
            kind="ints",
            default=[28, 28],
            help="shape of the second tensor, e.g. 28,28",
            lo=1,
            hi=100000,
            max_len=6,
        ),
    ),
    examples=(
        "what is broadcasting",
        "broadcast (3, 1) with (1, 4)",
        "can shapes 8x1x6x1 and 7x1x5 broadcast",
        "broadcasting shape_a=64,3,32,32 shape_b=3,1,1",
    ),
    keywords={"broadcast": 8, "shapes? (align|compatib)": 3},
    kb=(KBRef(FASTBOOK_CH4, "What is broadcasting?"),),
    budget_s=15,
    arithmetic=True,
)


# a shape: "(3, 1)", "[2,3]", "8x1x6x1", or dims with commas or alone ("3,4", "4")
_SHAPE = rf"[(\[]\s*+{NUM}(?:\s*+,\s*+{NUM})*+\s*+,?\s*+[)\]]|{N}(?:x{NUM})*+(?![\w.])(?:\s*+,\s*+{NUM}(?![\w.]))*+"


# after a lone number, a word that makes it a count of things, not a shape ("2 tensors", "3 rules")
_COUNTED = re.compile(
    r"\s*+(?!(?:and|with|vs|versus|to|against|by|plus|or|vector|tensor|array|matrix|shape)\b)[a-z]"
)


def extract(norm: str) -> dict:
    """Two shapes, in any of the forms of _SHAPE ("(3, 1)", "[2,3]", "8x1x6x1", "3,4", a lone "4"), except a
    lone number that counts something ("2 tensors"). One shape, or more than two, is refused: the demo never
    runs on the default shapes while the user wrote others."""
    shapes = [
        int_items(m.group(0), "broadcasting: a shape")
        for m in re.finditer(_SHAPE, norm)
        if not (re.fullmatch(NUM, m.group(0)) and _COUNTED.match(norm, m.end()))
    ]
    if not shapes:
        return {}
    if len(shapes) != 2:
        shown = " and ".join("(" + ", ".join(map(str, s)) + ")" for s in shapes[:4])
        raise BadParameter(
            f"broadcasting takes two shapes; I read {len(shapes)}: {cut_text(shown, 120)}. "
            "Write them like “broadcast (3, 4) with (4,)” or “shapes 3x4 and 4”"
        )
    return {"shape_a": shapes[0], "shape_b": shapes[1]}


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


def run(p: dict, device: str) -> DemoOutput:
    import torch
    from matplotlib.patches import Rectangle

    from engine.plot import bare, figure, png

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
