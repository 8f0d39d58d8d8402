"""The conv_apply demo: apply an edge/sharpen/blur (or your own) kernel to a real handwritten digit. The
digit is scikit-learn's bundled load_digits (no download); a user's own picture (a Discord attachment or
`tutor demo --image FILE`) replaces it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from engine.errors import BadParameter
from engine.parse import S, read_scalar
from engine.spec import FASTBOOK_CH13, DemoOutput, DemoSpec, KBRef, ParamSpec

if TYPE_CHECKING:
    import numpy as np


SPEC = DemoSpec(
    name="conv_apply",
    order=40,
    summary="Apply an edge/sharpen/blur (or your own) kernel to a real handwritten digit.",
    params=(
        ParamSpec(
            name="kernel",
            kind="choice",
            default="top_edge",
            help="which kernel",
            choices=("top_edge", "bottom_edge", "left_edge", "right_edge", "sharpen", "blur", "custom"),
            aliases={
                "top": "top_edge",
                "bottom": "bottom_edge",
                "left": "left_edge",
                "right": "right_edge",
                "horizontal edge": "top_edge",
                "vertical edge": "left_edge",
                "box blur": "blur",
            },
        ),
        ParamSpec(
            name="matrix",
            kind="matrix",
            default=None,
            help="custom kernel matrix (up to 7x7) when kernel=custom",
            lo=-100,
            hi=100,
            max_len=7,
            optional=True,
        ),
        ParamSpec(
            name="image",
            kind="image",
            default=None,
            help="your own picture instead of a digit (PNG/JPEG up to 8 MB; shrunk to at most 64x64 grayscale)",
            max_len=64,
            optional=True,
        ),
        ParamSpec(
            name="digit",
            kind="int",
            default=3,
            help="which digit class to use (0-9)",
            lo=0,
            hi=9,
            words=("digit", "number"),
        ),
        ParamSpec(
            name="sample",
            kind="int",
            default=0,
            help="which example of that digit (0 = first in sklearn's load_digits)",
            lo=0,
            hi=150,
            words=("sample", "example", "index"),
        ),
    ),
    examples=(
        "apply a top edge kernel to a digit",
        "sharpen digit 7",
        "blur the digit 0",
        "apply kernel [[0,1,0],[1,-4,1],[0,1,0]] to digit 5",
    ),
    keywords={
        "edge": 4,
        "sharpen": 5,
        "blur": 5,
        r"\bapply": 3,
        "digit": 2,
        "convolve": 3,
        "kernel to": 3,
        r"\[\s*\[": 3,
    },
    kb=(
        KBRef(FASTBOOK_CH13, "Write out the convolutional kernel matrix for a top edge detector."),
        KBRef(
            FASTBOOK_CH13,
            "Write out the mathematical operation applied by a 3×3 kernel to a single pixel in an image.",
        ),
        KBRef(FASTBOOK_CH13, "What is the value of a convolutional kernel applied to a 3×3 matrix of zeros?"),
        KBRef(FASTBOOK_CH13, "What is a “feature”?"),
    ),
    own=("digit",),
    budget_s=20,
)


def extract(norm: str) -> dict:
    out: dict = {}
    m = re.search(r"\[\s*\[.*?\]\s*\]", norm)
    if m:
        out["kernel"], out["matrix"] = "custom", m.group(0)
        norm = norm[: m.start()] + norm[m.end() :]
    m = re.search(
        rf"\b(?:digit|number)\s*(?:=|:)?\s*({S})(?![\w.])|\b(?:on|to) (?:an?|the) (\d)\b|\b(?:an?|the) (\d)s?$",
        norm,
    )
    if m:
        out["digit"] = read_scalar(next(g for g in m.groups() if g is not None), "conv_apply: digit")
    return out


KERNELS = {
    "top_edge": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "bottom_edge": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "left_edge": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "right_edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "blur": [[1 / 9] * 3] * 3,
}


UPSAMPLE = 3  # the digits are 8 x 8; 24 x 24 (bilinear) makes edges visible at embed size


def hw(shape) -> str:
    """A 2-D size as torch orders it, rows first: "30 x 62" is 30 high and 62 wide (H x W)."""
    return f"{shape[0]} x {shape[1]}"


def digit_image(digit: int, sample: int) -> tuple[np.ndarray, int]:
    import numpy as np

    from engine.training import digits

    images, labels = digits()
    idx = np.flatnonzero(labels == digit)
    if sample >= len(idx):
        raise BadParameter(
            f"there are only {len(idx)} examples of digit {digit} (sample must be < {len(idx)})"
        )
    return images[idx[sample]], int(idx[sample])


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from engine.plot import figure, png

    if p["kernel"] == "custom":
        if p["matrix"] is None:
            raise BadParameter("conv_apply: kernel=custom needs a matrix, e.g. [[0,-1,0],[-1,5,-1],[0,-1,0]]")
        kern = np.array(p["matrix"], dtype=np.float32)
    else:
        kern = np.array(KERNELS[p["kernel"]], dtype=np.float32)
    if p.get("image") is not None:
        img, index = np.asarray(p["image"], dtype=np.float32), None
        name = "your image"
    else:
        small, index = digit_image(p["digit"], p["sample"])
        img = F.interpolate(
            torch.from_numpy(small)[None, None], scale_factor=UPSAMPLE, mode="bilinear", align_corners=False
        )[0, 0].numpy()
        name = f"digit {p['digit']} (load_digits #{index})"
    kh, kw = kern.shape
    if kh > img.shape[0] or kw > img.shape[1]:
        raise BadParameter("conv_apply: kernel larger than the image")
    out = F.conv2d(
        torch.from_numpy(img)[None, None].to(device), torch.from_numpy(kern)[None, None].to(device)
    )
    out = out[0, 0].cpu().numpy()
    # independent: every output pixel as an explicit sum of kernel * patch (numpy sliding windows)
    windows = np.lib.stride_tricks.sliding_window_view(img, (kh, kw))
    manual = np.einsum("ijab,ab->ij", windows, kern)
    diff = float(np.abs(manual - out).max())
    ci, cj = out.shape[0] // 2, out.shape[1] // 2
    patch = img[ci : ci + kh, cj : cj + kw]
    zero_response = float(F.conv2d(torch.zeros(1, 1, kh, kw), torch.from_numpy(kern)[None, None]).abs().max())
    numbers = {
        "kernel": kern.tolist(),
        "input": "upload" if index is None else "digit",
        "digit": None if index is None else p["digit"],
        "dataset_index": index,
        "input_shape": list(img.shape),
        "output_shape": list(out.shape),
        "out_min": float(out.min()),
        "out_max": float(out.max()),
        "out_mean": float(out.mean()),
        "positive_fraction": float((out > 1e-6).mean()),
        "center_pixel": float(out[ci, cj]),
        "center_pixel_by_hand": float((patch * kern).sum()),
        "max_abs_diff_vs_numpy": diff,
        "response_to_zeros": zero_response,
    }

    fig = figure(10, 3.6)
    axs = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 0.75, 1]})
    axs[0].imshow(img, cmap="gray_r", vmin=0, vmax=1)
    axs[0].set_title(f"{name}\ninput {hw(img.shape)} (H x W)")
    lim = max(abs(kern.min()), abs(kern.max()), 1e-6)
    axs[1].imshow(kern, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for a in range(kh):
        for b in range(kw):
            v = kern[a, b]
            axs[1].text(
                b,
                a,
                f"{v:.2g}",
                ha="center",
                va="center",
                fontsize=12 if kh <= 3 else 9,
                fontweight="bold",
                color="white" if abs(v) > 0.6 * lim else "black",
            )
    axs[1].set_title(f"kernel: {p['kernel'].replace('_', ' ')}\n{hw(kern.shape)}")
    olim = max(abs(out.min()), abs(out.max()), 1e-6)
    im = axs[2].imshow(out, cmap="RdBu_r", vmin=-olim, vmax=olim)
    fig.colorbar(im, ax=axs[2], shrink=0.85)
    axs[2].set_title(f"output {hw(out.shape)}\n(red = strong +)")
    for ax in axs:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    image = png(fig)
    terms = " + ".join(
        f"{kern[a, b]:.2g}·{patch[a, b]:.2f}" for a in range(min(kh, 3)) for b in range(min(kw, 3))
    )
    what = (
        f"a real handwritten {p['digit']} (scikit-learn's bundled 8 x 8 digits, upsampled to "
        f"{hw(img.shape)} pixels; sizes here are H x W, as torch orders them)"
        if index is not None
        else f"your image ({hw(img.shape)} pixels, H x W as torch orders them; grayscale, dark = 1)"
    )
    text = (
        f"Applied the {p['kernel'].replace('_', ' ')} kernel to {what}. Each output pixel is "
        f"the sum of the kernel times the {hw(kern.shape)} patch under it, e.g. the centre pixel: "
        f"{terms}{' + …' if kh * kw > 9 else ''} = {numbers['center_pixel_by_hand']:.3f} "
        f"(F.conv2d: {numbers['center_pixel']:.3f}; whole image vs a numpy sum: max difference {diff:.1e}). "
        f"On a patch of zeros the result is {zero_response:g}. Without padding the kernel fits "
        f"{img.shape[0]} - {kh} + 1 = {out.shape[0]} times down and {img.shape[1]} - {kw} + 1 = "
        f"{out.shape[1]} times across, so the output is {hw(out.shape)}. "
        f"Output range {out.min():.2f} to {out.max():.2f}: "
        + (
            "an edge kernel responds strongly only where brightness changes in its direction — a feature."
            if "edge" in p["kernel"]
            else "the kernel re-weights each neighbourhood."
        )
    )
    ignored = ("digit", "sample") if index is None else ("image",)
    if p["kernel"] != "custom":
        ignored += ("matrix",)
    return DemoOutput(numbers, text, (image,), ignored)
