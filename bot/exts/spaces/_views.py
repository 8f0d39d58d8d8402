"""The confirmation under ``/forget-me``: Confirm or Cancel, for the user who asked only."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import discord

from bot.ui import TutorView

if TYPE_CHECKING:
    from bot.exts.spaces._cog import Spaces


class ForgetMeView(TutorView):
    """Two buttons; the first click of either ends the view (a double click deletes nothing twice)."""

    def __init__(self, cog: Spaces, owner: int, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.cog = cog
        self.owner = owner
        self.decided = False

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner:
            return True
        await interaction.response.send_message(
            "These buttons belong to someone else's request. `/forget-me` makes your own.", ephemeral=True
        )
        return False

    @discord.ui.button(label="Confirm: delete my data", style=discord.ButtonStyle.danger)
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[ForgetMeView]
    ) -> None:
        if self.decided:
            await interaction.response.defer()
            return
        self.decided = True  # before any await: a second click must not run it again
        self.stop()
        await interaction.response.edit_message(content="Deleting your data…", view=None)
        summary = await self.cog.forget(interaction.user.id)
        await interaction.edit_original_response(content=summary)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[ForgetMeView]) -> None:
        if self.decided:
            await interaction.response.defer()
            return
        self.decided = True
        self.stop()
        await interaction.response.edit_message(content="Cancelled: nothing was deleted.", view=None)

    async def on_timeout(self) -> None:
        if self.message is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.message.edit(content="Nothing was deleted (the buttons timed out).", view=None)
