"""Review: ``/review`` shows a server's admins the answers its students marked Not helpful, to correct
(for this server), hide here or dismiss; Manage Server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.review._cog import Review

if TYPE_CHECKING:
    from bot.bot import TutorBot


async def setup(bot: TutorBot) -> None:
    await bot.add_cog(Review(bot))
