"""Figure helpers: Agg only, object-oriented Figures (no pyplot global state), white background so a PNG
reads the same on Discord's light and dark themes, 100 dpi so a figure is ~800 px wide at embed size."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg", force=True)

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
MAX_PNG = 1_000_000
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
STYLE = {
    "font.size": 10.5,
    "axes.titlesize": 11.5,
    "axes.titleweight": "bold",
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
    FigureCanvasAgg(fig)
    return fig


def styled(fn):
    """Run a drawing function under the engine's rc style (rc params apply when artists are created)."""

    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def png(fig: Figure) -> bytes:
    """Render to PNG bytes and release the figure; refuse anything over Discord-friendly 1 MB."""
    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    fig.clear()
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
