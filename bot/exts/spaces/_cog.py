"""Every server its own tutor: what happens to a server's data when the bot leaves, and ``/forget-me``.

When the bot leaves a server (removed, or the server deleted) the departure is recorded; a return within
the grace period (``TUTOR_GUILD_GRACE_DAYS``) keeps everything. Once a server has been gone longer, and the
bot is not in it, its data is deleted: its cards, overrides, feedback and their quiz data
(``knowledge.privacy.purge_space``), then its settings, leaderboard and departure (``BotRepository``), and
the retriever and the quiz catalogue reload as after an admin's change. The purge runs once at start (when
the bot is ready) and then hourly. A departure that happened while the bot was not running is not seen:
nothing is deleted without one recorded.

``/forget-me`` (servers and DMs) deletes what the tutor keeps about the user who asks, after they confirm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.exts.spaces._views import ForgetMeView
from bot.ui import send
from knowledge import privacy

if TYPE_CHECKING:
    from bot.bot import TutorBot

log = logging.getLogger(__name__)

PURGE_EVERY_HOURS = 1.0
# What the deletions' counts (rows per table) are, in words; a table not named here is named as it is.
IN_WORDS = {
    "quiz_users": "quiz profile",
    "quiz_sessions": "quiz sessions",
    "quiz_slots": "quiz questions",
    "quiz_reviews": "quiz answers",
    "quiz_cards": "card review schedules",
    "grade_contests": "contested grades",
    "feedback": "feedback on answers",
    "documents": "card decks",
    "items": "cards",
    "groups": "card groups",
    "overrides": "hidden or corrected notes",
    "text_vectors": "cached embeddings",
    "guild_settings": "server settings",
    "guild_leaderboard": "server leaderboard places",
    "guild_departures": "departure record",
}

ASK = (
    "This deletes everything the tutor keeps about you, in every server and in DMs: your quiz progress "
    "and history, your feedback on answers and your places on server leaderboards. It cannot be undone. "
    "Delete it?"
)


def in_words(counts: Mapping[str, int]) -> str:
    """``{"quiz_reviews": 3, "feedback": 0}`` as ``quiz answers: 3`` (what was deleted; none: empty)."""
    return ", ".join(f"{IN_WORDS.get(name, name.replace('_', ' '))}: {n}" for name, n in counts.items() if n)


def _added(*counts: Mapping[str, int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in counts:
        for name, n in part.items():
            total[name] = total.get(name, 0) + n
    return total


class Spaces(commands.Cog):
    def __init__(self, bot: TutorBot) -> None:
        self.bot = bot
        self._purging = asyncio.Lock()  # the hourly purge and a test's (or an admin's) never overlap
        # The servers left and not back (as stored; kept in step here): a server that becomes available
        # (every one, at each start) costs no write unless it is one of them.
        self._departed: set[str] = set()

    async def cog_load(self) -> None:
        self._departed = set(await asyncio.to_thread(self.bot.repository.departed))
        self.purge_loop.start()

    async def cog_unload(self) -> None:
        self.purge_loop.cancel()

    # --- departures ---
    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        self._departed.add(str(guild.id))
        await asyncio.to_thread(self.bot.repository.mark_departed, guild.id, datetime.now(UTC))
        log.info(
            "left server %s: its data is deleted in %g days unless the bot is back by then",
            guild.id,
            self.bot.settings.guild_grace_days,
        )

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._present(guild)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A server the bot is in again announces itself this way too (added while the bot was offline)."""
        await self._present(guild)

    async def _present(self, guild: discord.Guild) -> None:
        key = str(guild.id)
        if key not in self._departed:
            return
        self._departed.discard(key)
        if await asyncio.to_thread(self.bot.repository.mark_present, key):
            log.info("back in server %s within the grace period: its data is kept", key)

    @tasks.loop(hours=PURGE_EVERY_HOURS)
    async def purge_loop(self) -> None:
        try:
            await self.purge_departed()
        except Exception:  # the loop must go on: the next run tries again
            log.exception("deleting the data of departed servers failed; trying again in an hour")

    @purge_loop.before_loop
    async def _until_ready(self) -> None:
        await self.bot.wait_until_ready()  # the guilds the bot is in are known

    async def purge_departed(self) -> dict[str, dict[str, int]]:
        """Delete the data of every server the bot left more than ``guild_grace_days`` ago and is not in
        now; returns the rows deleted per server (a server still here has its departure cleared)."""
        async with self._purging:
            present = {str(guild.id) for guild in self.bot.guilds}
            cutoff = datetime.now(UTC) - timedelta(days=self.bot.settings.guild_grace_days)
            purged = await asyncio.to_thread(self._purge, cutoff, present)
        for guild_id, counts in purged.items():
            log.info(
                "deleted the data of server %s (left over %g days ago): %s",
                guild_id,
                self.bot.settings.guild_grace_days,
                in_words(counts) or "nothing was stored",
            )
        return purged

    def _purge(self, cutoff: datetime, present: set[str]) -> dict[str, dict[str, int]]:
        bot, repository = self.bot, self.bot.repository
        model_ids = [m for m in [getattr(bot.retriever.encoder, "model_id", "")] if m]  # its cached vectors
        purged: dict[str, dict[str, int]] = {}
        knowledge_changed = False
        for guild_id in repository.departed_before(cutoff):
            if guild_id in present:  # back, and not told (a missed event): nothing to delete
                repository.mark_present(guild_id)
                self._departed.discard(guild_id)
                continue
            try:
                knowledge = privacy.purge_space(bot.store, guild_id, model_ids=model_ids)
                # Last: until its departure row goes, a failure above is retried by the next run.
                rows = bot.guild_settings.delete_guild(guild_id)
            except Exception:
                log.exception("deleting the data of server %s failed; the next run tries again", guild_id)
                continue
            self._departed.discard(guild_id)
            knowledge_changed = knowledge_changed or any(knowledge.values())
            purged[guild_id] = _added(knowledge, rows)
        if knowledge_changed:
            bot.refresh_knowledge()
        return purged

    # --- /forget-me ---
    @app_commands.command(
        name="forget-me", description="Delete everything the tutor keeps about you (asks first)."
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def forget_me(self, interaction: discord.Interaction) -> None:
        view = ForgetMeView(self, interaction.user.id, timeout=self.bot.settings.view_timeout_s)
        view.message = await send(interaction, content=ASK, view=view, ephemeral=True)

    async def forget(self, user_id: int) -> str:
        """Delete what the tutor keeps about a user, in a thread; what was deleted, in words."""

        def work() -> dict[str, int]:
            knowledge = privacy.forget_user(self.bot.store, str(user_id))
            places = self.bot.repository.forget_user(user_id)  # none left where knowledge took them
            return _added(knowledge, {"guild_leaderboard": places})

        counts = await asyncio.to_thread(work)
        deleted = in_words(counts)
        log.info("a user asked to be forgotten: %s", deleted or "nothing was stored")  # no id: forgotten
        if not deleted:
            return "Done. The tutor kept nothing about you, so nothing was deleted."
        return (
            f"Done. Deleted {deleted}. The tutor keeps nothing else about you (backups of its database "
            "made earlier still hold a copy until they are removed)."
        )
