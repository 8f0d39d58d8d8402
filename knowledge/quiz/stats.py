"""Progress as text and as a PNG: the same numbers for ``tutor stats`` and Discord's /stats.

The plot uses matplotlib's object API on an Agg canvas (no pyplot state), so it is safe from any thread and
leaves no figure open.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

from knowledge.quiz.models import UserStats
from knowledge.quiz.scheduler import describe_interval


def retention_words(stats: UserStats) -> str:
    """Retention in words, also before there is any: a newcomer sees why there is no number yet."""
    if stats.retention is not None:
        return f"{stats.retention:.0%}"
    if not stats.reviews:
        return "no reviews yet"
    return "not measured yet (no learned card reviewed again)"


def accuracy_words(stats: UserStats) -> str:
    return "no graded answers yet" if stats.accuracy is None else f"{stats.accuracy:.0%}"


def format_stats(stats: UserStats, now: datetime, max_topics: int = 12) -> str:
    lines = [
        f"Quiz progress for {stats.user_id}",
        f"  reviews     {stats.reviews} ({stats.reviews_7d} in the last 7 days), streak {stats.streak_days} "
        f"day{'s' if stats.streak_days != 1 else ''}",
        f"  retention   {retention_words(stats)}"
        + (" of reviews of learned cards recalled" if stats.retention is not None else ""),
        "  accuracy    "
        + (accuracy_words(stats) + (" of graded answers correct" if stats.accuracy is not None else "")),
        f"  cards       {stats.cards_seen} of {stats.cards_total} seen; {stats.due_now} due now, "
        f"{stats.due_24h} due within 24 h, {stats.new_available} new",
    ]
    if stats.next_due is not None:
        when = "now" if stats.next_due <= now else describe_interval(stats.next_due, now)
        lines.append(f"  next due    {stats.next_due:%Y-%m-%d %H:%M} UTC ({when})")
    lines.append("Per-topic mastery (mean recall probability of the topic's cards):")
    lines.append(f"  {'topic':<28} {'cards':>5} {'seen':>5} {'mastered':>8} {'mastery':>8}")
    for topic in stats.topics[:max_topics]:
        lines.append(
            f"  {topic.topic[:28]:<28} {topic.cards:>5} {topic.seen:>5} {topic.mastered:>8} {topic.mastery:>8.0%}"
        )
    if len(stats.topics) > max_topics:
        lines.append(f"  ... {len(stats.topics) - max_topics} more topics")
    return "\n".join(lines)


def plot_stats(stats: UserStats, path: str | Path | None = None, max_topics: int = 12) -> bytes:
    """Reviews per day (recalled vs not) and per-topic mastery; returns the PNG and writes it to ``path``."""
    fig = stats_figure(stats, max_topics)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    fig.clear()
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def stats_figure(stats: UserStats, max_topics: int = 12):
    """The figure `plot_stats` draws: every day of the last 30 labelled with its date (days with reviews in
    black), mastery on a percent axis like the text's, and "no reviews yet" where there is nothing to draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig = Figure(figsize=(10, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    xs = range(len(stats.daily))
    recalled = [d.recalled for d in stats.daily]
    missed = [d.reviews - d.recalled for d in stats.daily]
    totals = [d.reviews for d in stats.daily]
    left.bar(xs, recalled, color="#4c9a6a", label="recalled")
    left.bar(xs, missed, bottom=recalled, color="#d0674f", label="forgotten")
    shown = sum(totals)
    left.set_title(f"Reviews per day, last {len(stats.daily)} days ({shown} in all)")
    # every day labelled: a bar is never without its date; the days with reviews stand out in black
    left.set_xticks(list(xs))
    left.set_xticklabels([d.day[5:] for d in stats.daily], rotation=90, fontsize=7.5)
    for label, total in zip(left.get_xticklabels(), totals, strict=True):
        label.set_color("black" if total else "#999999")
        label.set_fontweight("bold" if total else "normal")
    left.set_xlim(-0.7, len(stats.daily) - 0.3)
    left.set_xlabel("day (UTC, month-day)", fontsize=9)
    left.set_ylabel("reviews", fontsize=9)
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    if shown:
        # headroom above the tallest bar, so the legend in the top left never covers one
        left.set_ylim(0, max(totals) * 1.35)
        left.legend(loc="upper left", ncol=2, fontsize=8, frameon=False)
    else:
        left.set_ylim(0, 1)
        left.set_yticks([])
        message = "no reviews yet" if not stats.reviews else "no reviews in the last 30 days"
        left.text(0.5, 0.5, message, transform=left.transAxes, ha="center", va="center", color="#555555")
    left.spines[["top", "right"]].set_visible(False)
    topics = list(stats.topics[:max_topics])[::-1]
    ys = range(len(topics))
    right.barh(ys, [t.mastery for t in topics], color="#4a78b5")
    right.set_yticks(list(ys))
    right.set_yticklabels([t.topic[:24] for t in topics])
    for y, t in zip(ys, topics, strict=True):
        right.text(t.mastery + 0.01, y, f"{t.mastery:.0%}", va="center", fontsize=7.5)
    right.set_xlim(0, 1.08)  # room for "100%" beside a full bar
    right.set_xticks([0, 0.25, 0.5, 0.75, 1])
    right.xaxis.set_major_formatter(PercentFormatter(1.0))
    right.set_xlabel("mastery (mean recall probability of the topic's cards)", fontsize=9)
    right.set_title("Mastery by topic")
    right.tick_params(axis="y", labelsize=8)
    right.spines[["top", "right"]].set_visible(False)
    summary = (
        f"retention {retention_words(stats)}, {stats.due_now} due"
        if stats.reviews
        else retention_words(stats)
    )
    fig.suptitle(
        f"{stats.user_id}: {summary}, {stats.cards_seen}/{stats.cards_total} cards seen",
        fontsize=11,
    )
    fig.tight_layout()
    return fig
