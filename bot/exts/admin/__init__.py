"""Admin: ``/kb`` (reload, add, disable) and ``/settings`` (answer channels, quiz defaults); Manage Server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.admin._cog import Admin

if TYPE_CHECKING:
    from bot.bot import TutorBot


async def setup(bot: TutorBot) -> None:
    await bot.add_cog(Admin(bot))
