"""Figure helpers: Agg only, object-oriented Figures (no pyplot global state), white background so a PNG
reads the same on Discord's light and dark themes, 100 dpi so a figure is ~800 px wide at embed size."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from PIL import Image

matplotlib.use("Agg", force=True)

from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

DPI = 100
MAX_PNG = 1_000_000
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
STYLE = {
    "font.size": 10.5,
    "axes.titlesize": 11.5,
    "axes.titleweight": "bold",
    "axes.titley": 1.0,  # a fixed title position: auto-placement measures every tick label per draw
    "axes.labelsize": 10.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 9.5,
    "legend.framealpha": 0.9,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.prop_cycle": matplotlib.cycler(color=COLORS),
}


def figure(width: float = 8.0, height: float = 4.0, layout: str | None = "constrained") -> Figure:
    """A white figure of exactly width x height inches (so PNG size is predictable). Constrained layout
    by default; grids of many small axes pass layout=None (constrained layout costs ~0.1 s per axes)."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), dpi=DPI, layout=layout, facecolor="white")
    _share_renderer(FigureCanvasAgg(fig))
    return fig


_RENDERERS: dict[tuple, RendererAgg] = {}


def _share_renderer(canvas: FigureCanvasAgg) -> None:
    """Give the canvas the process's Agg renderer for its pixel size instead of a fresh one per figure.

    matplotlib caches text metrics per renderer instance, so with a fresh renderer every tick label and
    annotation is measured again through FreeType on every request; a shared one (figures are drawn one
    at a time: the worker is single-threaded) turns those into cache hits. `draw()` clears it first.
    `get_renderer()` still makes a private one if the figure is later resized."""
    w, h = canvas.get_width_height(physical=True)
    key = (w, h, canvas.figure.dpi)
    renderer = _RENDERERS.get(key)
    if renderer is None:
        if len(_RENDERERS) >= 16:
            _RENDERERS.clear()
        renderer = _RENDERERS[key] = RendererAgg(w, h, canvas.figure.dpi)
    canvas.renderer, canvas._lastKey = renderer, key


def style():
    """The engine's rc style, as a context: a demo runs inside it (rc params apply when artists are created)."""
    return matplotlib.rc_context(STYLE)


def png(fig: Figure) -> bytes:
    """Render to PNG bytes; refuse anything over Discord-friendly 1 MB.

    Draws the Agg canvas and encodes the RGB buffer with PIL at a low zlib level: the figures are flat
    colour on white, so level 1 is ~as small as the default 6 and faster; dropping the (opaque) alpha
    channel saves a quarter of the bytes to filter. The figure is not `clear()`ed afterwards: nothing
    else references it (no pyplot), and clearing costs as much as building the axes did."""
    with matplotlib.rc_context(STYLE):
        fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    buf = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buf, format="png", compress_level=1, dpi=(DPI, DPI))
    data = buf.getvalue()
    if len(data) > MAX_PNG:  # pragma: no cover - guarded by figure sizes
        raise ValueError(f"PNG of {len(data)} bytes exceeds {MAX_PNG}")
    return data


def note(ax, text: str, loc: str = "upper left") -> None:
    """A small boxed annotation inside an axes."""
    x, ha = (0.02, "left") if "left" in loc else (0.98, "right")
    y, va = (0.97, "top") if "upper" in loc else (0.03, "bottom")
    ax.text(
        x,
        y,
        text,
        transform=ax.transAxes,
        ha=ha,
        va=va,
        fontsize=9.5,
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#999999", "alpha": 0.9},
    )


# -- tick-free drawing ---------------------------------------------------------------------------------
# Every matplotlib tick is five artists (two tick marks, a grid line, two labels) built from rcParams, and
# a visible axis makes at least two even with no ticks set: on the small figures of the arithmetic demos
# the tick machinery cost more than everything else together. Bar charts whose bars carry their values
# and images whose cells are labelled need no axis, so they are drawn with the axis off and plain texts.


def bare(ax, frame: bool = False) -> None:
    """Switch off the axis machinery (ticks, spines, grid); `frame` draws a thin border instead."""
    ax.set_axis_off()
    if frame:
        ax.add_patch(
            Rectangle(
                (0, 0),
                1,
                1,
                transform=ax.transAxes,
                fill=False,
                edgecolor="#444444",
                linewidth=0.8,
                clip_on=False,
            )
        )


def xlabels(ax, xs, labels, fontsize: float = 9.5, rotate: bool = False, y: float = -0.02) -> None:
    """Category labels under a bare axes: x in data coordinates, y in axes coordinates."""
    trans = ax.get_xaxis_transform()
    for x, label in zip(xs, labels, strict=True):
        ax.text(
            x,
            y,
            label,
            transform=trans,
            ha="right" if rotate else "center",
            va="top",
            rotation=30 if rotate else 0,
            rotation_mode="anchor",
            fontsize=fontsize,
        )


def value_bars(
    ax, values, colors, fmt: str = "{:.2f}", labels=None, fontsize: float = 9.5, pad: float = 0.15
):
    """A bare bar chart: bars, their values written on them, a zero line, category labels underneath.
    Returns the bar container. The y range leaves `pad` headroom for the value labels."""
    xs = np.arange(len(values))
    bars = ax.bar(xs, values, color=colors, width=0.7)
    for x, v in zip(xs, values, strict=True):
        ax.text(
            x,
            v,
            fmt(v) if callable(fmt) else fmt.format(v),
            ha="center",
            va="bottom" if v >= 0 else "top",
            fontsize=fontsize,
        )
    lo, hi = min(0.0, float(min(values))), max(0.0, float(max(values)))
    span = (hi - lo) or 1.0
    ax.set_ylim(lo - pad * span * (lo < 0), hi + pad * span)
    ax.set_xlim(-0.6, len(values) - 0.4)
    ax.axhline(0, color="#333333", linewidth=0.9, clip_on=False)
    bare(ax)
    if labels is not None:
        xlabels(ax, xs, labels, fontsize=fontsize, rotate=len(values) > 4 and max(map(len, labels)) > 6)
    return bars
