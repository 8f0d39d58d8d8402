"""The buttons under an answer: "did you mean", "Show me", and feedback (with its "what was wrong" modal)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord

from bot.demos import demo_reply
from bot.formatting import BUTTON_LABEL_LIMIT, shorten
from bot.ui import TutorModal, TutorView, send, within_deadline
from index.answer import NO_ANSWER, UNSURE, Alternative, Answer

if TYPE_CHECKING:
    from bot.exts.ask._cog import Ask

MAX_ALTERNATIVES = 3


class AnswerView(TutorView):
    """Buttons for one answer. Holds the answer itself, so feedback records exactly what was shown."""

    def __init__(self, cog: Ask, answer: Answer, *, picked: bool = False, timeout: float = 840.0) -> None:
        super().__init__(timeout=timeout)
        self.cog = cog
        self.answer = answer
        self.voters: set[int] = set()
        # Unsure: "did you mean". A match whose source has no answer: the neighbours that may have one.
        if answer.status in (UNSURE, NO_ANSWER) and not picked:
            prefix = "Did you mean" if answer.status == UNSURE else "See also"
            for alternative in answer.alternatives[:MAX_ALTERNATIVES]:
                self.add_item(AlternativeButton(alternative, prefix))
        illustration = cog.illustration(answer)
        if illustration is not None:
            self.add_item(ShowMeButton(illustration.demo))
        self.add_item(FeedbackButton(helpful=True))
        self.add_item(FeedbackButton(helpful=False))


class AlternativeButton(discord.ui.Button[AnswerView]):
    """Answers the alternative the user picks, in a new message (the original stays for others)."""

    def __init__(self, alternative: Alternative, prefix: str = "Did you mean") -> None:
        label = shorten(f"{prefix}: {alternative.question}", BUTTON_LABEL_LIMIT)
        super().__init__(label=label, style=discord.ButtonStyle.primary, row=0)
        self.alternative = alternative

    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        cog, query = self.view.cog, self.view.answer.query
        answer = await within_deadline(
            interaction, cog.answer_item(self.alternative.item_id, query, interaction.guild_id)
        )
        await cog.send_answer(interaction, answer, picked=True)


class ShowMeButton(discord.ui.Button[AnswerView]):
    """Runs the demo that illustrates this answer and posts its plot and numbers."""

    def __init__(self, demo: str) -> None:
        super().__init__(label="Show me", emoji="📈", style=discord.ButtonStyle.success, row=1)
        self.demo = demo

    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        demos = self.view.cog.bot.demos
        request = demos.resolve(self.demo)
        async with demos.slot(interaction.user.id):
            await interaction.response.defer(thinking=True)
            result = await demos.run(request)
        embed, files = demo_reply(result)
        await interaction.followup.send(embed=embed, files=files)


class FeedbackButton(discord.ui.Button[AnswerView]):
    """Helpful / not helpful: one vote per user per answer; "not helpful" asks what was wrong."""

    def __init__(self, *, helpful: bool) -> None:
        super().__init__(
            label="Helpful" if helpful else "Not helpful",
            emoji="👍" if helpful else "👎",
            style=discord.ButtonStyle.secondary,
            row=1,
        )
        self.helpful = helpful

    async def callback(self, interaction: discord.Interaction) -> None:
        view = self.view
        assert view is not None
        if interaction.user.id in view.voters:
            await interaction.response.send_message("You already rated this answer. Thanks!", ephemeral=True)
            return
        view.voters.add(interaction.user.id)  # before any await: a double click must not vote twice
        try:
            if self.helpful:
                await within_deadline(
                    interaction,
                    view.cog.record_feedback(interaction, view.answer, helpful=True),
                    thinking=False,
                )
                await send(interaction, content="Thanks! Glad it helped.", ephemeral=True)
                return
            # A modal can only be the first response and Discord drops an interaction not answered within
            # 3 s, so the form opens first; the vote is stored meanwhile and the form waits for its id.
            recorded = asyncio.ensure_future(
                view.cog.record_feedback(interaction, view.answer, helpful=False)
            )
            try:
                await interaction.response.send_modal(WhatWasWrong(view.cog, recorded))
            finally:
                await recorded
        except BaseException:
            view.voters.discard(interaction.user.id)
            raise


class WhatWasWrong(TutorModal, title="What was wrong?"):
    """Optional details for a "not helpful" vote; the vote itself is already stored."""

    details: discord.ui.TextInput[WhatWasWrong] = discord.ui.TextInput(
        label="What was wrong? (optional)",
        custom_id="feedback:details",
        style=discord.TextStyle.paragraph,
        placeholder="e.g. it answered a different question, the answer is wrong, it is too short…",
        required=False,
        max_length=1000,
    )

    def __init__(self, cog: Ask, feedback_id: asyncio.Future[int]) -> None:
        super().__init__(timeout=600)
        self.cog = cog
        self.feedback_id = feedback_id  # the vote being stored while the form is open

    async def on_submit(self, interaction: discord.Interaction) -> None:
        comment = self.details.value.strip()

        async def save() -> None:
            feedback_id = await self.feedback_id  # the vote is stored before the thanks, comment or not
            if comment:
                await self.cog.record_comment(feedback_id, comment)

        await within_deadline(interaction, save(), thinking=False)
        await send(interaction, content="Thanks, noted. That helps me improve.", ephemeral=True)
