"""Admin: ``/kb`` (this server's cards and hides) and ``/settings``, for Manage Server; and ``/owner`` (the
bundled notes, for every server), registered only in the owners' server (``TUTOR_DEV_GUILD_ID``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from bot.exts.admin._cog import Admin
from bot.exts.admin._owner import Owner

if TYPE_CHECKING:
    from bot.bot import TutorBot

log = logging.getLogger(__name__)


async def setup(bot: TutorBot) -> None:
    admin = Admin(bot)
    await bot.add_cog(admin)
    owners_guild = bot.settings.dev_guild_id
    if owners_guild:
        await bot.add_cog(Owner(bot, admin), guild=discord.Object(owners_guild))
    else:
        log.info("no TUTOR_DEV_GUILD_ID: /owner is not registered (`tutor kb ingest` re-ingests the notes)")
