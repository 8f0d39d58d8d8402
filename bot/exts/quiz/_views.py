"""The quiz's buttons and answer modal.

Every button is a ``DynamicItem`` whose custom id carries the session, the question's position and the
owner, so a click is understood by any bot process: after a restart the old message keeps working with
no view registered for it. The ``QuizView`` around them only exists to time the buttons out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.errors import handle_interaction_error
from bot.exts.quiz._embeds import LETTERS
from bot.formatting import shorten
from bot.ui import TutorModal, TutorView
from knowledge.quiz.models import Graded, Question

if TYPE_CHECKING:
    from bot.exts.quiz._cog import Quiz

ANSWER, CHOICE, HINT, REVEAL, SKIP, RATE, END = "answer", "choice", "hint", "reveal", "skip", "rate", "end"
CONTEST = "contest"
RATINGS = ((1, "Again", discord.ButtonStyle.danger), (2, "Hard", discord.ButtonStyle.secondary),
           (3, "Good", discord.ButtonStyle.success), (4, "Easy", discord.ButtonStyle.primary))  # fmt: skip


class QuizButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"quiz:(?P<action>[a-z]+):(?P<session>[0-9a-f]{32}):(?P<position>\d+):(?P<owner>\d+):(?P<arg>\w*)",
):
    """One quiz action; its custom id is the whole state the click needs."""

    def __init__(
        self, action: str, session: str, position: int, owner: int, arg: str = "", **button: Any
    ) -> None:
        custom_id = f"quiz:{action}:{session}:{position}:{owner}:{arg}"
        super().__init__(discord.ui.Button(custom_id=custom_id, **button))
        self.action, self.session, self.position, self.owner, self.arg = action, session, position, owner, arg

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> QuizButton:
        return cls(
            match["action"], match["session"], int(match["position"]), int(match["owner"]), match["arg"],
            label=item.label, style=item.style, emoji=item.emoji, disabled=item.disabled,
        )  # fmt: skip

    async def callback(self, interaction: discord.Interaction) -> None:
        # Dynamic items are dispatched outside any view of ours: route errors to the central handler here.
        try:
            cog: Quiz | None = interaction.client.get_cog("Quiz")  # type: ignore[attr-defined]
            if cog is None:
                raise RuntimeError("the quiz extension is not loaded")
            await cog.on_button(interaction, self)
        except Exception as exc:
            await handle_interaction_error(interaction, exc)


class QuizView(TutorView):
    """The buttons under one render of a quiz message; on timeout the cog disables them."""

    def __init__(self, cog: Quiz, embed: discord.Embed, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.cog = cog
        self.embed = embed
        self.channel_id: int | None = None
        self.message_id: int | None = None

    def buttons(self) -> list[QuizButton]:
        return [item for item in self.children if isinstance(item, QuizButton)]

    async def on_timeout(self) -> None:
        await self.cog.expire(self)


def question_view(cog: Quiz, q: Question, owner: int, embed: discord.Embed, *, hint_shown: bool) -> QuizView:
    view = QuizView(cog, embed, timeout=cog.view_timeout)
    ids = (q.session_id, q.position, owner)
    if q.choices:
        for i, _choice in enumerate(q.choices):
            view.add_item(
                QuizButton(CHOICE, *ids, str(i), label=LETTERS[i], style=discord.ButtonStyle.primary, row=0)
            )
    else:
        view.add_item(
            QuizButton(ANSWER, *ids, label="Answer", emoji="✍️", style=discord.ButtonStyle.primary, row=0)
        )
    if q.has_hint and not hint_shown:
        view.add_item(
            QuizButton(HINT, *ids, label="Hint", emoji="💡", style=discord.ButtonStyle.secondary, row=1)
        )
    view.add_item(QuizButton(REVEAL, *ids, label="Reveal", style=discord.ButtonStyle.secondary, row=1))
    view.add_item(QuizButton(SKIP, *ids, label="Skip", style=discord.ButtonStyle.secondary, row=1))
    view.add_item(QuizButton(END, *ids, label="End quiz", style=discord.ButtonStyle.secondary, row=1))
    return view


def rating_view(
    cog: Quiz, g: Graded, owner: int, embed: discord.Embed, *, contestable: bool = False
) -> QuizView:
    view = QuizView(cog, embed, timeout=cog.view_timeout)
    ids = (g.session_id, g.position, owner)
    for value, label, style in RATINGS:
        view.add_item(QuizButton(RATE, *ids, str(value), label=label, style=style, row=0))
    if contestable:  # a typed answer graded partly or wrong: the learner may think the grader was wrong
        view.add_item(
            QuizButton(CONTEST, *ids, label="I think I was right", style=discord.ButtonStyle.secondary, row=1)
        )
    view.add_item(QuizButton(END, *ids, label="End quiz", style=discord.ButtonStyle.secondary, row=1))
    return view


def disabled_copy(view: QuizView) -> discord.ui.View:
    """The same buttons, greyed out: what a timed-out quiz message keeps."""
    copy = discord.ui.View(timeout=None)
    for button in view.buttons():
        item = button.item
        copy.add_item(
            discord.ui.Button(
                label=item.label, style=item.style, emoji=item.emoji, custom_id=item.custom_id,
                disabled=True, row=item.row,
            )
        )  # fmt: skip
    return copy


class AnswerModal(TutorModal):
    """The learner's typed answer; grading and the review happen in the cog."""

    answer: discord.ui.TextInput[AnswerModal] = discord.ui.TextInput(
        label="Your answer",
        custom_id="quiz:answer-text",
        style=discord.TextStyle.paragraph,
        max_length=1000,
    )

    def __init__(self, cog: Quiz, button: QuizButton, prompt: str, number: int) -> None:
        super().__init__(title=f"Question {number}", timeout=cog.view_timeout)
        self.cog = cog
        self.button = button
        self.answer.placeholder = shorten(prompt, 100)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.on_answer(interaction, self.button, self.answer.value)
