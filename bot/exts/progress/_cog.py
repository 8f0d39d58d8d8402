"""``/stats`` shows the numbers ``tutor stats`` prints, with its PNG; ``/leaderboard`` ranks opted-in members.

``/stats`` follows the scope its quizzes do: in a server, the shared notes and that server's own cards (and
only reviews of those); in direct messages, the shared notes alone.

A leaderboard is per guild and opt-in: ``/leaderboard join`` lists you in this server only.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserError
from bot.formatting import FIELD_VALUE_LIMIT, shorten
from bot.ui import send, within_deadline
from knowledge.quiz.models import UserStats
from knowledge.quiz.stats import accuracy_words, plot_stats, retention_words
from knowledge.scope import Scope

if TYPE_CHECKING:
    from bot.bot import TutorBot

PLOT_NAME = "progress.png"
MAX_TOPICS = 8


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def stats_embed(stats: UserStats, who: str, now: datetime) -> discord.Embed:
    embed = discord.Embed(title=f"Quiz progress: {shorten(who, 100)}", colour=discord.Colour.blurple())
    embed.add_field(name="Reviews", value=f"{stats.reviews} ({stats.reviews_7d} this week)", inline=True)
    embed.add_field(name="Retention", value=retention_words(stats), inline=True)
    embed.add_field(name="Accuracy", value=accuracy_words(stats), inline=True)
    embed.add_field(
        name="Cards",
        value=f"{stats.cards_seen}/{stats.cards_total} seen · {stats.due_now} due now · "
        f"{stats.due_24h} within 24 h · {stats.new_available} new",
        inline=False,
    )
    embed.add_field(name="Streak", value=f"{stats.streak_days} day{'s' if stats.streak_days != 1 else ''}")
    if stats.next_due is not None:
        due = "now" if stats.next_due <= now else discord.utils.format_dt(stats.next_due, "R")
        embed.add_field(name="Next due", value=due)
    lines = [
        f"`{t.mastery:>4.0%}` {t.topic} ({t.seen}/{t.cards} seen, {t.mastered} mastered)"
        for t in stats.topics[:MAX_TOPICS]
    ]
    if lines:
        embed.add_field(
            name="Mastery by topic", value=shorten("\n".join(lines), FIELD_VALUE_LIMIT), inline=False
        )
    embed.set_image(url=f"attachment://{PLOT_NAME}")
    embed.set_footer(text="Retention: reviews of learned cards recalled. Mastery: mean recall probability.")
    return embed


class Progress(commands.Cog):
    """Reads progress from the ``QuizService``; the plot is drawn in a thread (matplotlib's Agg canvas)."""

    leaderboard = app_commands.Group(
        name="leaderboard", description="This server's quiz leaderboard (opt-in).", guild_only=True
    )

    def __init__(self, bot: TutorBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="stats", description="Your quiz progress: reviews, retention, due cards, mastery."
    )
    @app_commands.describe(
        topic="Only this topic", public="Post it in the channel (default: only you see it)"
    )
    async def stats(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, 100] | None = None,
        public: bool = False,
    ) -> None:
        uid = str(interaction.user.id)
        scope = Scope.of(interaction.guild_id)

        def work() -> tuple[UserStats, bytes]:
            result = self.bot.quiz.stats(uid, topic=topic, scope=scope)
            return result, plot_stats(result)

        await interaction.response.defer(thinking=True, ephemeral=not public)
        result, png = await asyncio.to_thread(work)
        embed = stats_embed(result, interaction.user.display_name, datetime.now(UTC))
        await send(interaction, embed=embed, file=discord.File(io.BytesIO(png), PLOT_NAME))

    @leaderboard.command(name="show", description="The most active opted-in members this week.")
    @app_commands.describe(days="Over the last this many days (default 7)")
    async def show(self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 365] = 7) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None

        def work():
            users = self.bot.guild_settings.leaderboard_users(guild_id)
            scope = Scope.of(guild_id)  # a server's board counts the shared notes and its own cards
            return self.bot.quiz.leaderboard(users, days=days, scope=scope) if users else []

        rows = await within_deadline(interaction, asyncio.to_thread(work))
        if not rows:
            text = "Nobody is on this server's leaderboard yet. `/leaderboard join` puts you on it."
        else:
            text = "\n".join(
                f"**{i}.** {shorten(r.display_name, 60)}: {r.reviews} reviews, {r.correct} correct, "
                f"retention {_pct(r.retention)}, streak {r.streak_days}"
                for i, r in enumerate(rows, 1)
            )
        embed = discord.Embed(
            title=f"Leaderboard: last {days} days", description=text, colour=discord.Colour.gold()
        )
        await send(interaction, embed=embed)

    @leaderboard.command(name="join", description="Show your quiz activity on this server's leaderboard.")
    async def join(self, interaction: discord.Interaction) -> None:
        await self._opt(interaction, True)
        await interaction.response.send_message("You're on this server's leaderboard.", ephemeral=True)

    @leaderboard.command(name="leave", description="Take yourself off this server's leaderboard.")
    async def leave(self, interaction: discord.Interaction) -> None:
        await self._opt(interaction, False)
        await interaction.response.send_message("You're off this server's leaderboard.", ephemeral=True)

    async def _opt(self, interaction: discord.Interaction, joined: bool) -> None:
        if interaction.guild_id is None:
            raise UserError("Leaderboards belong to servers; use this in one.")
        uid = interaction.user.id
        await asyncio.to_thread(self.bot.guild_settings.set_leaderboard, interaction.guild_id, uid, joined)
        if joined:  # the quiz's own opt-in flag: nobody is listed anywhere without it
            name = interaction.user.display_name
            await asyncio.to_thread(self.bot.quiz.set_leaderboard, str(uid), True, name)
