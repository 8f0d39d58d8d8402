"""Quiz questions, grades and summaries as embeds: the same content the terminal quiz prints."""

from __future__ import annotations

from datetime import datetime

import discord

from bot.formatting import EMBED_DESCRIPTION_LIMIT, FIELD_VALUE_LIMIT, FOOTER_LIMIT, shorten, shorten_block
from knowledge.quiz.models import Graded, Question, Session
from knowledge.quiz.scheduler import RATING_NAMES, parse_rating
from knowledge.readable import readable, readable_line

LETTERS = "ABCDEFGH"
VERDICTS = {
    "correct": ("✅ Correct", discord.Colour.green()),
    "partly": ("🟡 Partly right", discord.Colour.gold()),
    "wrong": ("❌ Not quite", discord.Colour.red()),
    "revealed": ("👀 The answer", discord.Colour.light_grey()),
}
QUESTION_COLOUR = discord.Colour.blurple()


def rating_name(value: int) -> str:
    return RATING_NAMES[parse_rating(value)]


def question_embed(q: Question, *, hint: str | None = None, note: str | None = None) -> discord.Embed:
    lines = [readable_line(q.prompt)]
    if q.choices:  # other cards' answers: LaTeX as text, one line each
        lines.append("")
        lines += [f"**{LETTERS[i]})** {readable_line(choice)}" for i, choice in enumerate(q.choices)]
    embed = discord.Embed(
        title=f"Question {q.number}/{q.total}",
        description=shorten_block("\n".join(lines), EMBED_DESCRIPTION_LIMIT),
        colour=QUESTION_COLOUR,
    )
    embed.add_field(name="Topic", value=shorten(q.topic or "—", FIELD_VALUE_LIMIT), inline=True)
    embed.add_field(name="Source", value=shorten(f"{q.title}, entry {q.n}", FIELD_VALUE_LIMIT), inline=True)
    if hint:
        embed.add_field(name="Hint", value=shorten(hint, FIELD_VALUE_LIMIT), inline=False)
    how = "pick a letter" if q.choices else "press Answer to type yours"
    footer = f"{'New card' if q.is_new else 'Review'} · {how}"
    embed.set_footer(text=shorten(f"{note} · {footer}" if note else footer, FOOTER_LIMIT))
    return embed


def graded_embed(g: Graded, q: Question | None) -> discord.Embed:
    label, colour = VERDICTS.get(g.verdict, (g.verdict, QUESTION_COLOUR))
    number = f"Question {q.number}/{q.total}: " if q is not None else ""
    score = f" (score {g.score:.2f})" if g.verdict not in ("revealed",) and g.mode != "mc" else ""
    embed = discord.Embed(title=f"{number}{label}{score}", colour=colour)
    if q is not None:
        embed.description = shorten(readable_line(q.prompt), EMBED_DESCRIPTION_LIMIT)
    if g.mode == "mc" and g.correct_choice is not None:
        mine = f"{LETTERS[g.choice]}) " if g.choice is not None else ""
        chosen = mine + readable_line(g.answer)
        embed.add_field(name="Your answer", value=shorten(chosen, FIELD_VALUE_LIMIT), inline=False)
        embed.add_field(name="Correct choice", value=LETTERS[g.correct_choice], inline=True)
    elif g.answer:
        embed.add_field(name="Your answer", value=shorten(g.answer, FIELD_VALUE_LIMIT), inline=False)
    reference = shorten_block(readable(g.reference), FIELD_VALUE_LIMIT)  # a matrix keeps its rows
    embed.add_field(name="Reference answer", value=reference, inline=False)
    if g.missing and g.verdict in ("partly", "wrong"):
        embed.add_field(
            name="Key terms you missed", value=shorten(", ".join(g.missing[:6]), 300), inline=False
        )
    embed.set_footer(
        text=f"How well did you know it? Suggested: {rating_name(g.suggested_rating)} "
        f"(next review {g.interval} if you keep it) · {g.title}, entry {g.n}"
    )
    return embed


def summary_embed(session: Session, next_due: datetime | None, *, note: str | None = None) -> discord.Embed:
    done = "complete" if session.status == "finished" else "ended"
    embed = discord.Embed(
        title=f"Quiz {done}",
        description=(
            f"{session.answered} answered ({session.correct} correct, {session.partly} partly, "
            f"{session.wrong} wrong), {session.skipped} skipped."
        ),
        colour=discord.Colour.green() if done == "complete" else discord.Colour.light_grey(),
    )
    if next_due is not None:
        embed.add_field(name="Next card due", value=discord.utils.format_dt(next_due, "R"), inline=False)
    embed.set_footer(text=note or "Every answer is saved. /stats shows your progress.")
    return embed


def nothing_due_embed(next_due: datetime | None, topic: str | None) -> discord.Embed:
    if topic:
        text = f"No cards match **{shorten(topic, 100)}**. Start typing the topic to see the ones I have."
    elif next_due is not None:
        text = f"Nothing is due. Your next card is due {discord.utils.format_dt(next_due, 'R')}."
    else:
        text = "Nothing to quiz yet: `/quiz start` picks new cards."
    return discord.Embed(title="Nothing to quiz", description=text, colour=discord.Colour.light_grey())
