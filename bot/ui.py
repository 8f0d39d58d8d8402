"""Small building blocks shared by the extensions: views and modals whose errors reach the central
handler, and a ``send`` that works whether or not the interaction has been answered yet."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

import discord

from bot.errors import handle_interaction_error

T = TypeVar("T")

# Discord drops an interaction not acknowledged within 3 s. Work expected to be quick (a retrieval) gets
# this long to finish before the bot defers and answers with a follow-up instead.
ANSWER_WITHIN_S = 1.5


class TutorView(discord.ui.View):
    """A view whose callback errors go to the central handler (discord.py would only log them)."""

    message: discord.Message | None = None

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await handle_interaction_error(interaction, error)

    async def on_timeout(self) -> None:
        """Remove the buttons once they stop working, so nobody clicks a dead one."""
        if self.message is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.message.edit(view=None)


class TutorModal(discord.ui.Modal):
    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await handle_interaction_error(interaction, error)


async def send(interaction: discord.Interaction, **kwargs: Any) -> discord.Message | None:
    """Answer the interaction, as its response if it has none yet, else as a follow-up."""
    if interaction.response.is_done():
        return await interaction.followup.send(wait=True, **kwargs)
    callback = await interaction.response.send_message(**kwargs)
    return callback.resource if isinstance(callback.resource, discord.Message) else None


async def within_deadline(
    interaction: discord.Interaction, work: Awaitable[T], *, thinking: bool = True, ephemeral: bool = False
) -> T:
    """Await ``work``; if it is not done in ``ANSWER_WITHIN_S``, defer first so the interaction stays alive."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=ANSWER_WITHIN_S)
    if not done and not interaction.response.is_done():
        await interaction.response.defer(thinking=thinking, ephemeral=ephemeral)
    return await task
