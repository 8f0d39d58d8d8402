"""Progress: ``/stats`` (numbers and a plot) and the per-guild, opt-in ``/leaderboard``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.progress._cog import Progress

if TYPE_CHECKING:
    from bot.bot import TutorBot


async def setup(bot: TutorBot) -> None:
    await bot.add_cog(Progress(bot))
