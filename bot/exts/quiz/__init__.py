"""Quizzes: ``/quiz`` with spaced repetition; buttons that keep working across restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.quiz._cog import Quiz
from bot.exts.quiz._views import QuizButton

if TYPE_CHECKING:
    from bot.bot import TutorBot


async def setup(bot: TutorBot) -> None:
    # Buttons are routed by custom id pattern, so messages sent before a restart still work.
    bot.add_dynamic_items(QuizButton)
    await bot.add_cog(Quiz(bot))


async def teardown(bot: TutorBot) -> None:
    bot.remove_dynamic_items(QuizButton)
