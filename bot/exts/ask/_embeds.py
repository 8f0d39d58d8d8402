"""An ``Answer`` as Discord embeds: the same content as ``tutor.ask.format_answer`` gives the terminal."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from bot.formatting import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    FIELD_VALUE_LIMIT,
    shorten,
    split_text,
)
from index.answer import ANSWERED, NO_ANSWER, NO_ANSWER_TEXT, NO_MATCH, UNSURE, Answer
from knowledge.readable import readable, readable_line

COLOURS = {
    ANSWERED: discord.Colour.green(),
    UNSURE: discord.Colour.gold(),
    NO_ANSWER: discord.Colour.orange(),
    NO_MATCH: discord.Colour.light_grey(),
}
EXAMPLE = "what is a receptive field?"
UNSURE_NOTE = "*I'm not sure this is what you asked. My best guess:*"
QUERY_IN_FOOTER = 200  # characters of the user's question echoed under the answer
EMBED_SLACK = 100  # keeps a margin under the 6,000-character total for Discord's own counting


@dataclass(frozen=True)
class AnswerEmbeds:
    """The reply (``first``, which carries the buttons) and, for long answers, continuation embeds."""

    first: discord.Embed
    more: tuple[discord.Embed, ...] = ()


def help_embed() -> discord.Embed:
    return discord.Embed(
        title="Ask me about the course notes",
        description=(
            f"Mention me with a question, DM me, or use `/ask`, e.g. “{EXAMPLE}”.\n"
            "`/demo` runs a live demonstration and plots it."
        ),
        colour=COLOURS[NO_MATCH],
    )


def answer_embeds(answer: Answer, *, picked: bool = False) -> AnswerEmbeds:
    """The embeds for one answer; ``picked`` marks an answer the user chose from "did you mean"."""
    if answer.status == NO_MATCH:
        return AnswerEmbeds(_no_match(answer))
    embed = discord.Embed(
        title=shorten(readable_line(answer.question), EMBED_TITLE_LIMIT), colour=COLOURS[answer.status]
    )
    cites = [f"• {c.title}, entry {c.n}" for c in answer.citations]
    embed.add_field(name="Source" if len(cites) == 1 else "Sources", value=_lines(cites), inline=False)
    if picked:
        confidence = "you picked this entry"
    else:
        sure = answer.status in (ANSWERED, NO_ANSWER)
        confidence = f"{answer.score:.2f} ({'high' if sure else 'low: best guess'})"
    embed.add_field(name="Confidence", value=confidence, inline=True)
    if answer.correction is not None and answer.answer is not None:
        who = "the tutor's maintainers" if answer.correction.everywhere else "this server's staff"
        when = answer.correction.created_at[:10]
        embed.add_field(name="Corrected", value=f"Answer corrected by {who} ({when})", inline=True)
    _footer(embed, answer.query)

    if answer.answer is not None:
        body = readable(answer.answer)  # LaTeX as text, wrapped lines joined; Discord renders the markdown
    else:
        body = (
            "*" + NO_ANSWER_TEXT.get(answer.no_answer_reason or "", "The source gives no answer here.") + "*"
        )
    if answer.status not in (ANSWERED, NO_ANSWER):
        body = f"{UNSURE_NOTE}\n\n{body}"
    room = min(EMBED_DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - EMBED_SLACK - len(embed))
    chunks = split_text(body, room)
    if len(chunks) > 1:  # re-split what is left at the full size for the continuation embeds
        rest = body[len(chunks[0]) :] if body.startswith(chunks[0]) else "\n\n".join(chunks[1:])
        chunks = [chunks[0], *split_text(rest, EMBED_DESCRIPTION_LIMIT)]
    embed.description = chunks[0] if chunks else None
    more = tuple(
        discord.Embed(description=chunk, colour=COLOURS[answer.status]).set_footer(
            text=f"(continued, {i + 2}/{len(chunks)})"
        )
        for i, chunk in enumerate(chunks[1:])
    )
    return AnswerEmbeds(embed, more)


def _no_match(answer: Answer) -> discord.Embed:
    if not answer.query.strip():
        return help_embed()
    lines = ["I couldn't find that in the course notes, so I won't guess."]
    if answer.suggestions:
        lines.append("Topics I do know nearby: " + ", ".join(f"**{s}**" for s in answer.suggestions) + ".")
    lines.append(f"Try asking about one of them, e.g. “{EXAMPLE}”")
    embed = discord.Embed(
        title="That's not in my notes", description="\n".join(lines), colour=COLOURS[NO_MATCH]
    )
    _footer(embed, answer.query)
    return embed


def _footer(embed: discord.Embed, query: str) -> None:
    if query.strip():
        embed.set_footer(text="You asked: " + shorten(query, QUERY_IN_FOOTER))


def _lines(lines: list[str]) -> str:
    """Whole lines up to the field limit, then a count of what did not fit."""
    kept: list[str] = []
    for i, line in enumerate(lines):
        line = shorten(line, 300)
        if len("\n".join([*kept, line])) > FIELD_VALUE_LIMIT - 20:  # room for the "and N more" line
            kept.append(f"… and {len(lines) - i} more")
            break
        kept.append(line)
    return "\n".join(kept) or "—"
