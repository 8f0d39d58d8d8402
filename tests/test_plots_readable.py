"""Plots a newcomer reads (issue 16): sizes in one order (H x W) in conv_apply, legends that hide no data,
a quiz progress plot that says when there is nothing yet and dates every bar, and a `tutor demo` header
that keeps the worker's start-up apart from the demo's own time."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

import engine
import engine.plot
from knowledge.quiz.models import DayCount, TopicMastery, UserStats


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the demos render, kept for inspection (the demos return PNG bytes only; a
    demo's run function takes `png` from engine.plot when it runs)."""
    kept = []
    png = engine.plot.png

    def keep(fig):
        kept.append(fig)
        return png(fig)

    monkeypatch.setattr(engine.plot, "png", keep)
    return kept


def _png(width: int, height: int) -> bytes:
    """A white picture of width x height pixels with a black box in its left half."""
    from PIL import Image

    picture = Image.new("L", (width, height), 255)
    picture.paste(0, (width // 6, height // 6, width // 2, height * 5 // 6))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


# --- conv_apply: H x W everywhere --------------------------------------------------------------------------
def _sizes_in_order(r, fig) -> list[str]:
    h, w = r.numbers["input_shape"]
    oh, ow = r.numbers["output_shape"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert f"input {h} x {w} (H x W)" in titles[0]
    assert titles[1].endswith("3 x 3") and titles[2].startswith(f"output {oh} x {ow}")
    assert (oh, ow) == (h - 2, w - 2)  # a 3 x 3 kernel without padding
    assert f"so the output is {oh} x {ow}" in r.text and "H x W" in r.text
    for shown in [*titles, r.text.split("Illustrates")[0]]:
        assert not re.search(r"\d+x\d+", shown), shown  # no "64x32" (W first) beside "32 x 64"
    return titles


def test_conv_apply_digit_titles_are_h_by_w(figures):
    r = engine.run("apply a left edge kernel")
    assert r.numbers["input_shape"] == [24, 24] and r.numbers["output_shape"] == [22, 22]
    titles = _sizes_in_order(r, figures[0])
    assert titles[0].startswith("digit 3 (load_digits #")


@pytest.mark.parametrize(("width", "height"), [(120, 60), (30, 50)])
def test_conv_apply_non_square_picture_reports_h_by_w(figures, width, height):
    """A wide and a tall picture: the shapes follow torch (rows first) in the numbers, titles and text."""
    scale = min(1.0, 64 / max(width, height))  # pictures shrink to at most 64 a side
    h, w = round(height * scale), round(width * scale)
    r = engine.run(engine.resolve({"demo": "conv_apply", "params": {"image": _png(width, height)}}))
    assert r.numbers["input_shape"] == [h, w] and r.numbers["output_shape"] == [h - 2, w - 2]
    titles = _sizes_in_order(r, figures[0])
    assert titles[0] == f"your image\ninput {h} x {w} (H x W)"
    assert f"your image ({h} x {w} pixels, H x W" in r.text
    # the panels are drawn the way round the numbers say: wider than tall for the wide picture
    image = figures[0].axes[0].get_images()[0].get_array()
    assert image.shape == (h, w)


# --- legends that hide no data ----------------------------------------------------------------------------
def _legends(fig):
    return [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)


def _line_points(line, per_segment: int = 25) -> np.ndarray:
    """A line's vertices and points along its segments, in display pixels: a segment crossing a legend
    counts even when no vertex lies under it."""
    xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 2 or line.get_linestyle() in ("None", "", " "):
        return xy
    t = np.linspace(0, 1, per_segment)[None, :, None]
    return (xy[:-1, None] + t * (xy[1:, None] - xy[:-1, None])).reshape(-1, 2)


def covered(fig) -> list[tuple[str, int]]:
    """(legend, number of plotted line points under it) for every legend of the figure that hides any."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = []
    for legend in _legends(fig):
        box = legend.get_window_extent(renderer)
        n = 0
        for ax in fig.axes:
            for line in ax.get_lines():
                pts = _line_points(line)
                n += int(
                    (
                        (pts[:, 0] > box.x0)
                        & (pts[:, 0] < box.x1)
                        & (pts[:, 1] > box.y0)
                        & (pts[:, 1] < box.y1)
                    ).sum()
                )
        if n:
            hidden.append((" / ".join(t.get_text() for t in legend.get_texts()), n))
    return hidden


def test_the_legend_check_sees_a_covered_line():
    """The check itself: a legend put over a line is caught."""
    fig = engine.plot.figure(6, 3)
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 1, 0], label="peak")
    ax.plot([0, 2], [0.5, 0.5], label="flat")
    ax.legend(loc="center")
    assert covered(fig)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"batchnorm": "with"},
        {"batchnorm": "without", "lr": 0.05},
        {"steps": 200},
        {"batch_size": 8, "lr": 1.0},
    ],
)
def test_activation_stats_legend_hides_no_curve(figures, params):
    engine.run({"demo": "activation_stats", "params": params})
    stats_fig, heatmaps = figures
    assert covered(stats_fig) == []
    # the legend sits under the panels, outside every axes
    renderer = stats_fig.canvas.get_renderer()
    (legend,) = _legends(stats_fig)
    box = legend.get_window_extent(renderer)
    assert all(box.y1 < ax.get_window_extent(renderer).y0 for ax in stats_fig.axes)
    # the highest point of every curve (the spike the old legend hid) is inside its axes and visible
    for ax in stats_fig.axes:
        extent = ax.get_window_extent(renderer)
        for line in ax.get_lines():
            ys = np.asarray(line.get_ydata(), dtype=float)
            if not np.isfinite(ys).any():
                continue
            x, y = line.get_transform().transform(np.asarray(line.get_xydata())[np.nanargmax(ys)])
            assert extent.x0 - 1 <= x <= extent.x1 + 1 and extent.y0 - 1 <= y <= extent.y1 + 1
            assert not box.contains(x, y)
    # the color_dim heatmaps fill their axes: their numbers are in the titles, not in a box over the data
    for ax in heatmaps.axes:
        assert not ax.texts and "near zero, val acc" in ax.get_title()


def test_gradient_check_legend_hides_no_curve(figures):
    engine.run("gradient check a small network")
    assert covered(figures[0]) == []


# --- the quiz progress plot -------------------------------------------------------------------------------
TODAY = date(2026, 3, 20)


def _stats(per_day: dict[int, tuple[int, int]], retention=None, accuracy=None) -> UserStats:
    """Stats with reviews on the given days (days ago: (reviews, recalled)) over the last 30 days."""
    days = [TODAY - timedelta(days=i) for i in range(29, -1, -1)]
    daily = tuple(DayCount(d.isoformat(), *per_day.get((TODAY - d).days, (0, 0))) for d in days)
    reviews = sum(d.reviews for d in daily)
    topics = (
        TopicMastery("convolutions", 15, 4 if reviews else 0, 1 if reviews else 0, 0.42 if reviews else 0.0),
        TopicMastery("optimization", 18, 0, 0, 0.0),
    )
    return UserStats(
        user_id="ana", reviews=reviews, reviews_7d=reviews, cards_total=33, cards_seen=4 if reviews else 0,
        due_now=1 if reviews else 0, due_24h=2 if reviews else 0, new_available=29 if reviews else 33,
        retention=retention, accuracy=accuracy, streak_days=1 if reviews else 0,
        next_due=datetime(2026, 3, 21, 9, tzinfo=UTC) if reviews else None, topics=topics, daily=daily,
    )  # fmt: skip


def _texts(fig) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), *(t.get_text() for t in ax.texts)]
    return out


def test_stats_with_no_reviews_says_so():
    from knowledge.quiz.stats import format_stats, plot_stats, stats_figure

    stats = _stats({})
    fig = stats_figure(stats)
    texts = _texts(fig)
    assert "no reviews yet" in texts
    assert any(t.startswith("ana: no reviews yet") for t in texts)
    assert not any(re.search(r"retention -|\s-,", t) for t in texts)
    assert fig.axes[0].get_legend() is None  # nothing to tell apart
    text = format_stats(stats, datetime(2026, 3, 20, tzinfo=UTC))
    assert "retention   no reviews yet" in text and "accuracy    no graded answers yet" in text
    assert " - " not in text
    assert plot_stats(stats).startswith(b"\x89PNG")


def test_stats_reviews_but_nothing_learned_yet():
    from knowledge.quiz.stats import format_stats, stats_figure

    stats = _stats({0: (4, 3)}, retention=None, accuracy=0.25)
    assert "retention   not measured yet" in format_stats(stats, datetime(2026, 3, 20, tzinfo=UTC))
    assert any("retention not measured yet" in t for t in _texts(stats_figure(stats)))


def test_stats_plot_dates_every_bar_and_uses_percent():
    from knowledge.quiz.stats import format_stats, stats_figure

    stats = _stats({0: (7, 4), 1: (3, 2), 13: (6, 6), 29: (5, 5)}, retention=0.8, accuracy=0.5)
    fig = stats_figure(stats)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    left, right = fig.axes
    labels = {round(t.get_position()[0]): t for t in left.get_xticklabels()}
    bars = [p for p in left.patches if p.get_height() > 0]
    assert bars
    for bar in bars:  # every bar, today's and the oldest included, has its date under it
        x = round(bar.get_x() + bar.get_width() / 2)
        label = labels[x]
        assert label.get_text() == stats.daily[x].day[5:] and label.get_visible()
        assert label.get_text().strip()
    shown = {t.get_text() for t in left.get_xticklabels()}
    assert {d.day[5:] for d in stats.daily} == shown  # a full axis of dates
    # the legend sits above the tallest bar
    box = left.get_legend().get_window_extent(renderer)
    assert all(not box.overlaps(bar.get_window_extent(renderer)) for bar in bars)
    # mastery in percent, as the text gives it
    ticks = [t.get_text() for t in right.get_xticklabels() if t.get_text()]
    assert ticks and all(t.endswith("%") for t in ticks) and "100%" in ticks
    assert "42%" in [t.get_text() for t in right.texts]
    assert "42%" in format_stats(stats, datetime(2026, 3, 20, tzinfo=UTC))
    assert any(t.startswith("ana: retention 80%") for t in _texts(fig))


# --- the `tutor demo` header ------------------------------------------------------------------------------
def test_header_keeps_worker_start_apart():
    import click

    from engine.spec import DemoResult
    from tutor.demo import _budgeted, _human

    def header(*args):
        return click.unstyle(_human(result, [], *args)).splitlines()[0]

    result = DemoResult("softmax", {}, {}, "text", (), "cpu", 12.4)
    assert header(3.14).endswith("softmax  (cpu, 12 ms; worker start 3.1 s)")
    assert header(0.25).endswith("(cpu, 12 ms; worker start 250 ms)")
    assert header().endswith("softmax  (cpu, 12 ms)")  # a warm worker
    starts = iter([2.5, None])
    run = _budgeted(lambda req, budget_s: result, 10.0, lambda: next(starts))
    assert run.startup_s is None
    run("softmax of 1, 2")
    assert run.startup_s == 2.5
    run("softmax of 1, 2")
    assert run.startup_s is None


def test_tutor_demo_header_shows_the_split(tmp_path):
    from click.testing import CliRunner

    from tutor.demo import demo

    res = CliRunner().invoke(
        demo, ["softmax of 1, 2, 3", "--out", str(tmp_path)], env={"TUTOR_BROKER_URL": ""}
    )
    assert res.exit_code == 0, res.output
    header = res.output.splitlines()[0]
    assert re.fullmatch(r"softmax  \(\w+, \d+(\.\d)? m?s; worker start \d+(\.\d)? m?s\)", header), header


def test_digits_load_without_sklearn_datasets():
    """The digits demos' own time is not the 1-3 s import of sklearn.datasets: the bundled file is read
    directly, and gives exactly what load_digits gives."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from engine.training import _bundled_digits, digits

    assert _bundled_digits() is not None
    images, labels = digits()
    d = load_digits()
    assert np.array_equal(images, (d.images / 16.0).astype(np.float32)) and np.array_equal(labels, d.target)
    code = (
        "import sys; from engine.training import digits; digits(); print('sklearn.datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
