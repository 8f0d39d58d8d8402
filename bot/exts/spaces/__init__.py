"""Spaces: every server its own tutor. A server the bot leaves is forgotten after a grace period
(``TUTOR_GUILD_GRACE_DAYS``), and ``/forget-me`` deletes what the tutor keeps about a user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.spaces._cog import Spaces

if TYPE_CHECKING:
    from bot.bot import TutorBot


async def setup(bot: TutorBot) -> None:
    await bot.add_cog(Spaces(bot))
