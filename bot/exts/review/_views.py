"""The review's buttons (Prev/Next, Correct, Hide here, Dismiss) and the corrected-answer form.

Only the admin who opened the review may use it, and only while they still have Manage Server: both are
checked on every click and on the form's submission, since the message outlives a change of roles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from bot.exts.review._embeds import Slide, review_embed
from bot.formatting import shorten
from bot.ui import TutorModal, TutorView
from knowledge.overrides import MAX_CORRECTION

if TYPE_CHECKING:
    from bot.exts.review._cog import Review

NOT_YOURS = "This review belongs to the admin who opened it: run `/review` to see your own."
NEEDS_MANAGE = "You need the Manage Server permission for that."
BUSY = "One moment: the last change is still being saved."


def refusal(interaction: discord.Interaction, guild_id: int, admin_id: int) -> str | None:
    """Why this interaction may not act on the review (None: it may)."""
    if interaction.user.id != admin_id or interaction.guild_id != guild_id:
        return NOT_YOURS
    if not interaction.permissions.manage_guild:
        return NEEDS_MANAGE
    return None


class ReviewView(TutorView):
    """One entry of the queue at a time; acting on it shows the next one in its place."""

    def __init__(self, cog: Review, guild_id: int, admin_id: int, slide: Slide, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.cog, self.guild_id, self.admin_id = cog, guild_id, admin_id
        self.slide = slide
        self.busy = False  # a change is being saved: a second click must not act on the next entry unseen
        self._sync()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        problem = refusal(interaction, self.guild_id, self.admin_id)
        if problem is None and self.busy:
            problem = BUSY
        if problem is not None:
            await interaction.response.send_message(problem, ephemeral=True)
            return False
        return True

    def _sync(self) -> None:
        empty = self.slide.entry is None
        self.correct.disabled = self.hide.disabled = self.dismiss.disabled = empty
        self.previous.disabled = self.slide.offset <= 0
        self.next.disabled = self.slide.offset + 1 >= self.slide.total

    async def show(self, interaction: discord.Interaction, offset: int, note: str | None = None) -> None:
        """Load the entry at ``offset`` and put it in the review's message (the interaction is deferred)."""
        self.slide = await self.cog.slide(self.guild_id, offset)
        self._sync()
        done = self.slide.entry is None or self.is_finished()
        if self.slide.entry is None:
            self.stop()
        await interaction.edit_original_response(
            content=note, embed=review_embed(self.slide), view=None if done else self
        )

    async def act(
        self, interaction: discord.Interaction, action: Callable[[int, int, int], Awaitable[int]], note: str
    ) -> None:
        """Run one change on the entry shown, then show the entry now at its place with ``note``."""
        entry = self.slide.entry
        assert entry is not None
        self.busy = True
        try:
            await interaction.response.defer()
            votes = await action(self.guild_id, entry.item_id, interaction.user.id)
            await self.show(
                interaction, self.slide.offset, note.format(item=entry.item_id, votes=_votes(votes))
            )
        finally:
            self.busy = False

    # --- row 0: what to do with the entry ---
    @discord.ui.button(label="Correct", emoji="✏️", style=discord.ButtonStyle.primary, row=0)
    async def correct(self, interaction: discord.Interaction, button: discord.ui.Button[ReviewView]) -> None:
        entry = self.slide.entry
        assert entry is not None
        await interaction.response.send_modal(CorrectAnswer(self, entry.item_id, self.slide.prefill))

    @discord.ui.button(label="Hide here", emoji="🙈", style=discord.ButtonStyle.secondary, row=0)
    async def hide(self, interaction: discord.Interaction, button: discord.ui.Button[ReviewView]) -> None:
        await self.act(
            interaction,
            self.cog.hide,
            "🙈 Item {item} is hidden in this server: no longer answered or quizzed here ({votes} resolved).",
        )

    @discord.ui.button(label="Dismiss", emoji="✖️", style=discord.ButtonStyle.secondary, row=0)
    async def dismiss(self, interaction: discord.Interaction, button: discord.ui.Button[ReviewView]) -> None:
        await self.act(
            interaction, self.cog.dismiss, "Dismissed item {item} ({votes}); nothing else changed."
        )

    # --- row 1: paging ---
    @discord.ui.button(label="Prev", emoji="◀️", style=discord.ButtonStyle.secondary, row=1)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[ReviewView]) -> None:
        await interaction.response.defer()
        await self.show(interaction, self.slide.offset - 1)

    @discord.ui.button(label="Next", emoji="▶️", style=discord.ButtonStyle.secondary, row=1)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[ReviewView]) -> None:
        await interaction.response.defer()
        await self.show(interaction, self.slide.offset + 1)


class CorrectAnswer(TutorModal, title="Correct this answer"):
    """The corrected answer for this server, starting from the answer it has now."""

    answer: discord.ui.TextInput[CorrectAnswer] = discord.ui.TextInput(
        label="Corrected answer (this server only)",
        custom_id="review:answer",
        style=discord.TextStyle.paragraph,
        max_length=MAX_CORRECTION,
    )

    def __init__(self, view: ReviewView, item_id: int, prefill: str) -> None:
        super().__init__(timeout=600)
        self.review, self.item_id = view, item_id
        self.answer.default = prefill or None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        problem = refusal(interaction, self.review.guild_id, self.review.admin_id)
        if problem is not None:
            await interaction.response.send_message(problem, ephemeral=True)
            return False
        return True

    async def on_submit(self, interaction: discord.Interaction) -> None:
        review = self.review
        review.busy = True
        try:
            await interaction.response.defer()
            fixed, votes = await review.cog.correct(
                review.guild_id, self.item_id, self.answer.value, interaction.user.id
            )
            note = (
                f"✏️ Item {self.item_id} corrected for this server ({_votes(votes)} resolved): answers, quizzes "
                f"and grading here now use “{shorten(fixed.answer, 200)}”, marked as corrected by the staff."
            )
            await review.show(interaction, review.slide.offset, note)
        finally:
            review.busy = False


def _votes(n: int) -> str:
    return f"{n} vote" if n == 1 else f"{n} votes"
