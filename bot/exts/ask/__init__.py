"""Asking: mention the bot, DM it, post in an answer channel, or use ``/ask``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.ask._cog import Ask

if TYPE_CHECKING:
    from bot.bot import TutorBot


async def setup(bot: TutorBot) -> None:
    await bot.add_cog(Ask(bot))
