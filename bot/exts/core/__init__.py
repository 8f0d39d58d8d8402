"""Core: routes every slash-command error to the central handler (``bot.errors``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

from bot.errors import handle_interaction_error

if TYPE_CHECKING:
    from bot.bot import TutorBot


class ErrorHandler(commands.Cog):
    """Installs the tree's error hook on load and restores discord.py's default on unload."""

    def __init__(self, bot: TutorBot) -> None:
        self.bot = bot
        self._previous = bot.tree.on_error

    async def cog_load(self) -> None:
        self.bot.tree.on_error = handle_interaction_error  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._previous  # type: ignore[method-assign]


async def setup(bot: TutorBot) -> None:
    await bot.add_cog(ErrorHandler(bot))
