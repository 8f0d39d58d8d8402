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


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def format_stats(stats: UserStats, now: datetime, max_topics: int = 12) -> str:
    lines = [
        f"Quiz progress for {stats.user_id}",
        f"  reviews     {stats.reviews} ({stats.reviews_7d} in the last 7 days), streak {stats.streak_days} "
        f"day{'s' if stats.streak_days != 1 else ''}",
        f"  retention   {_pct(stats.retention)} of reviews of learned cards recalled",
        f"  accuracy    {_pct(stats.accuracy)} of graded answers correct",
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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    days = [d.day[5:] for d in stats.daily]
    recalled = [d.recalled for d in stats.daily]
    missed = [d.reviews - d.recalled for d in stats.daily]
    left.bar(days, recalled, color="#4c9a6a", label="recalled")
    left.bar(days, missed, bottom=recalled, color="#d0674f", label="forgotten")
    left.set_title(f"Reviews, last 30 days ({stats.reviews} in all)")
    left.set_xticks(range(0, len(days), 5))
    left.set_xticklabels(days[::5], fontsize=8)
    left.legend(loc="upper left", fontsize=8)
    left.yaxis.get_major_locator().set_params(integer=True)
    left.spines[["top", "right"]].set_visible(False)
    topics = list(stats.topics[:max_topics])[::-1]
    right.barh([t.topic[:24] for t in topics], [t.mastery for t in topics], color="#4a78b5")
    right.set_xlim(0, 1)
    right.set_title("Mastery by topic")
    right.tick_params(axis="y", labelsize=8)
    right.spines[["top", "right"]].set_visible(False)
    fig.suptitle(
        f"{stats.user_id}: retention {_pct(stats.retention)}, {stats.due_now} due, "
        f"{stats.cards_seen}/{stats.cards_total} cards seen",
        fontsize=11,
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    fig.clear()
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data
