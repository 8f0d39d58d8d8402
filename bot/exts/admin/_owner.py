"""The tutor's owners: ``/owner reload`` and ``/owner disable``, which change what every server sees.

Re-ingesting the bundled notes and hiding a note everywhere are not a server's business, so they are never
offered to other users:

* **Where.** The ``/owner`` group is not a global command. ``setup`` adds this cog to the command tree for
  the owners' server only, ``TUTOR_DEV_GUILD_ID`` (where the bot syncs its commands on start); ``tutor bot
  sync`` registers the global commands, which do not include it. Without that setting the group is not
  registered at all, and the terminal remains: ``tutor kb ingest`` re-ingests the bundled notes.
* **Who sees it.** In that server Discord shows it to administrators only (``default_permissions``).
* **Who may run it.** Every command checks at run time that the user is one of the tutor's owners
  (``TutorBot.is_tutor_owner``: the application's owner or team, or ``TUTOR_OWNER_IDS``), since a server can
  give the command to anyone; anybody else gets a clear refusal (``bot.errors.NotTutorOwner``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import NotTutorOwner
from bot.formatting import shorten
from bot.ui import send
from knowledge import cards

if TYPE_CHECKING:
    from bot.bot import TutorBot
    from bot.exts.admin._cog import Admin


async def _is_tutor_owner(interaction: discord.Interaction) -> bool:
    bot: TutorBot = interaction.client  # type: ignore[assignment]
    if not await bot.is_tutor_owner(interaction.user):
        raise NotTutorOwner()
    return True


owner_only = app_commands.check(_is_tutor_owner)


class Owner(commands.Cog):
    owner = app_commands.Group(
        name="owner",
        description="The tutor's owners: changes every server sees.",
        guild_only=True,
        default_permissions=discord.Permissions(administrator=True),
    )

    def __init__(self, bot: TutorBot, admin: Admin) -> None:
        self.bot = bot
        self.admin = admin  # changes go through its lock and reload (Admin.change)

    def _embed(self, texts):
        return self.bot.retriever.encoder.encode(list(texts))

    @owner.command(name="reload", description="Re-ingest the bundled notes and re-index, for every server.")
    @owner_only
    async def reload(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        report = await self.admin.change(cards.reingest_bundled, self.bot.store, self._embed)
        await send(
            interaction,
            content=f"Reloaded {report.documents} documents: +{report.added} added, ~{report.updated} updated, "
            f"-{report.retired} retired, {report.unchanged} unchanged. {len(self.bot.retriever.items)} items live.",
        )

    @owner.command(
        name="disable", description="Hide a shared note in every server and DM (or bring it back)."
    )
    @app_commands.describe(
        item_id="The note's id (tutor kb show lists them)", restore="Show it again instead"
    )
    @owner_only
    async def disable(
        self,
        interaction: discord.Interaction,
        item_id: app_commands.Range[int, 1, 2**53],
        restore: bool = False,
    ) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        item = await self.admin.change(cards.disable_everywhere, self.bot.store, item_id, not restore)
        state = "shown everywhere again" if restore else "hidden in every server and DM"
        await send(interaction, content=f"Item {item.id} {state}: “{shorten(item.question, 200)}”")
