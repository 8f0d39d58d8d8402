"""One entry of a server's review queue as an embed: what students asked, the answer they were shown,
their votes and comments, and the server's correction if it already has one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import discord

from bot.formatting import EMBED_TITLE_LIMIT, FIELD_VALUE_LIMIT, shorten, shorten_block
from knowledge.overrides import ReviewEntry
from knowledge.readable import readable, readable_line
from knowledge.scope import Correction

ANSWER_SHOWN = 1500  # characters of the answer shown in the embed (the modal has all of it)
QUOTED = 300  # characters of one question asked or one comment
COLOUR = discord.Colour.orange()


@dataclass(frozen=True)
class Slide:
    """What one page of the review shows: the entry at ``offset`` of ``total`` (None: the queue is empty)."""

    offset: int
    total: int
    entry: ReviewEntry | None = None
    citation: str = ""  # "<document title>, entry <n>"
    correction: Correction | None = None  # what this server sees now: its own correction, else the owners'
    prefill: str = ""  # the corrected-answer form starts from this


def review_embed(slide: Slide) -> discord.Embed:
    entry = slide.entry
    if entry is None:
        return discord.Embed(
            title="Nothing to review",
            description="No answer in this server is marked Not helpful right now.",
            colour=discord.Colour.green(),
        )
    embed = discord.Embed(
        title=shorten(readable_line(entry.question) or "(no question)", EMBED_TITLE_LIMIT), colour=COLOUR
    )
    shown = readable(entry.answer_shown) or "(nothing)"
    embed.description = "**Answer shown**\n" + shorten_block(shown, ANSWER_SHOWN)
    embed.add_field(name="Not helpful", value=f"👎 {entry.votes}", inline=True)
    embed.add_field(name="Last vote", value=_when(entry.last_at), inline=True)
    embed.add_field(name="Source", value=shorten(slide.citation or "—", 200), inline=True)
    embed.add_field(name="Asked as", value=_quotes(entry.queries), inline=False)
    embed.add_field(name="Comments", value=_quotes(entry.comments, empty="none"), inline=False)
    if slide.correction is not None:
        fixed = slide.correction
        whose = "the tutor's owners" if fixed.everywhere else f"<@{fixed.author}>"
        embed.add_field(
            name="Already corrected",
            value=shorten(f"by {whose}, {_when(fixed.created_at)}: {readable_line(fixed.answer)}", 500),
            inline=False,
        )
    where = "this server's card" if entry.scope is not None else "shared notes"
    embed.set_footer(text=f"Entry {slide.offset + 1} of {slide.total} · item {entry.item_id} · {where}")
    return embed


def _quotes(texts: tuple[str, ...], empty: str = "—") -> str:
    """User-written lines, quoted, whole up to the field limit; their markdown shown as typed."""
    kept: list[str] = []
    for text in texts:
        line = f"• “{discord.utils.escape_markdown(shorten(text, QUOTED))}”"
        if len("\n".join([*kept, line])) > FIELD_VALUE_LIMIT - 20:
            break
        kept.append(line)
    return "\n".join(kept) or empty


def _when(stamp: str) -> str:
    """A stored ISO time as Discord's relative timestamp (the reader's own time zone)."""
    try:
        return f"<t:{int(datetime.fromisoformat(stamp).timestamp())}:R>"
    except (TypeError, ValueError):
        return stamp or "—"
