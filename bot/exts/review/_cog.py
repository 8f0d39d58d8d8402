"""``/review``: a server's admins go through the answers their students marked Not helpful.

A top-level command rather than ``/kb review``: Discord allows one ``kb`` group per command tree and the
admin extension owns it, and a subcommand grafted onto another cog's group would depend on load order and
vanish when that extension reloads. Like ``/kb``, Discord hides it from members without Manage Server
(``default_permissions``) and the bot checks the permission at run time too, on the command and again on
every button and form (the review can outlive a change of roles). Only this server's votes are shown
(``review_queue`` with the server's scope); a correction or a hide is this server's own override, and the
retriever and the quiz reload afterwards, so the next answer here is the corrected one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.exts.review._embeds import Slide, review_embed
from bot.exts.review._views import ReviewView
from bot.formatting import valid_text
from bot.ui import send, within_deadline
from knowledge import overrides
from knowledge.errors import NotFound
from knowledge.overrides import MAX_CORRECTION, Resolution
from knowledge.scope import Correction, Scope
from knowledge.store import Store

if TYPE_CHECKING:
    from bot.bot import TutorBot

T = TypeVar("T")


def load_slide(store: Store, scope: Scope, offset: int) -> Slide:
    """The entry at ``offset`` of the scope's queue (the last one when the queue got shorter), with what
    the corrected-answer form starts from: the correction the scope sees now, else the answer shown."""
    offset = max(0, offset)
    page = overrides.review_queue(store, scope, offset=offset, limit=1)
    if not page.entries and page.total:
        offset = page.total - 1
        page = overrides.review_queue(store, scope, offset=offset, limit=1)
    if not page.entries:
        return Slide(offset=0, total=page.total)
    entry = page.entries[0]
    correction = overrides.load_overrides(store).correction(scope, entry.item_id)
    citation, servable = "", False
    with contextlib.suppress(NotFound):
        item = store.item(entry.item_id)
        titles = {d.source: d.title for d in store.documents()}
        citation, servable = f"{titles.get(item.source, item.source)}, entry {item.n}", item.servable
    # An entry without a usable answer was shown a note ("the source gives no answer"), not an answer.
    shown = entry.answer_shown if servable else ""
    prefill = correction.answer if correction is not None else shown
    return Slide(offset, page.total, entry, citation, correction, prefill[:MAX_CORRECTION])


class Review(commands.Cog):
    def __init__(self, bot: TutorBot) -> None:
        self.bot = bot

    @property
    def _store(self) -> Store:
        return self.bot.store

    @app_commands.command(
        name="review", description="Answers students here marked Not helpful: correct, hide or dismiss them."
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def review(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        slide = await within_deadline(interaction, self.slide(interaction.guild_id, 0), ephemeral=True)
        if slide.entry is None:
            await send(interaction, embed=review_embed(slide), ephemeral=True)
            return
        view = ReviewView(
            self, interaction.guild_id, interaction.user.id, slide, timeout=self.bot.settings.view_timeout_s
        )
        view.message = await send(interaction, embed=review_embed(slide), view=view, ephemeral=True)

    # --- the domain, off the event loop ---
    async def slide(self, guild_id: int, offset: int) -> Slide:
        return await asyncio.to_thread(load_slide, self._store, Scope.of(guild_id), offset)

    async def correct(self, guild_id: int, item_id: int, answer: str, user_id: int) -> tuple[Correction, int]:
        """This server's corrected answer for the entry; returns it and how many votes it resolved."""
        store, key, by = self._store, str(guild_id), str(user_id)

        def work() -> tuple[Correction, int]:
            fixed = overrides.correct(store, key, item_id, valid_text(answer), author=by)
            return fixed, overrides.resolve(store, Scope.of(key), item_id, Resolution.CORRECTED, by)

        return await self._change(work, reload=True)

    async def hide(self, guild_id: int, item_id: int, user_id: int) -> int:
        """Hide the entry in this server only; returns how many votes it resolved."""
        store, scope, by = self._store, Scope.of(guild_id), str(user_id)

        def work() -> int:
            overrides.hide(store, scope, item_id, author=by)
            return overrides.resolve(store, scope, item_id, Resolution.HIDDEN, by)

        return await self._change(work, reload=True)

    async def dismiss(self, guild_id: int, item_id: int, user_id: int) -> int:
        """Take the entry off this server's queue, changing nothing else; returns how many votes."""
        store, scope, by = self._store, Scope.of(guild_id), str(user_id)
        return await self._change(lambda: overrides.resolve(store, scope, item_id, Resolution.DISMISSED, by))

    async def _change(self, work: Callable[[], T], *, reload: bool = False) -> T:
        """Run a store change in a thread, then (``reload``) reload the retriever and the quiz's cards so
        the next answer and quiz question in the server use it. A change that cannot be made (an empty
        answer: ``OverrideError``; an entry gone: ``NotFound``) changes nothing and reaches the central
        error handler, which tells the admin."""
        return await self.bot.change_knowledge(work, reload=reload)
