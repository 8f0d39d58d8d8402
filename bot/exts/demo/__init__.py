"""Demos: ``/demo`` with autocomplete over the engine's catalogue, run in the engine's worker process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.demo._cog import Demos

if TYPE_CHECKING:
    from bot.bot import TutorBot


async def setup(bot: TutorBot) -> None:
    await bot.add_cog(Demos(bot))
