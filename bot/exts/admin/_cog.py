"""A server's own tutor, run by its admins: ``/kb`` (its cards, its hides) and ``/settings``; Manage Server.

Everything here changes one server only: its cards (a document of its own, ``knowledge.cards``) and its
hides (``knowledge.overrides``, under ``Scope.of(guild_id)``). Another server never sees them, and an item
this server cannot see (another server's card) is "no such item", in the same words as an id that does not
exist. What touches every server (re-ingesting the bundled notes, hiding a note everywhere) is the owners'
``/owner`` group (``_owner.py``), not offered here.

Discord hides these commands from members without Manage Server (``default_permissions``), but a server
can override that per role, so every command also checks the permission at run time, and a modal checks it
again when it is submitted. Changes go through the bot's one store (``Services.store``), one at a time,
then the retriever reloads (the index, rebuilt when the content changed, and the overrides) and the quiz
refreshes its cards: no restart needed.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserError
from bot.formatting import shorten
from bot.ui import TutorModal, send
from knowledge import cards, overrides
from knowledge.quiz.selection import MODES
from knowledge.scope import Scope

if TYPE_CHECKING:
    from bot.bot import TutorBot

MANAGE = discord.Permissions(manage_guild=True)
is_manager = app_commands.checks.has_permissions(manage_guild=True)
ItemId = app_commands.Range[int, 1, 2**53]


def scope_of(interaction: discord.Interaction) -> Scope:
    """The server's space (the groups are guild-only, so there always is one)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return Scope.of(interaction.guild_id)


def deck_title(interaction: discord.Interaction) -> str | None:
    """The title a server's cards are cited by: its name, as it is now."""
    guild = interaction.guild
    return f"{shorten(guild.name, 80)} cards" if guild is not None else None


class Admin(commands.Cog):
    kb = app_commands.Group(
        name="kb",
        description="This server's own cards and hidden notes.",
        guild_only=True,
        default_permissions=MANAGE,
    )
    settings = app_commands.Group(
        name="settings",
        description="This server's tutor settings.",
        guild_only=True,
        default_permissions=MANAGE,
    )

    def __init__(self, bot: TutorBot) -> None:
        self.bot = bot

    def _embed(self, texts):
        return self.bot.retriever.encoder.encode(list(texts))

    async def change(self, fn, *args, **kwargs):
        """Run a store change, then reload the retriever and the quiz (``TutorBot.change_knowledge``)."""
        return await self.bot.change_knowledge(fn, *args, **kwargs)

    # --- /kb: this server's cards ---
    @kb.command(name="add", description="Add a question and answer to this server's own cards.")
    @is_manager
    async def add(self, interaction: discord.Interaction) -> None:
        scope_of(interaction)
        await interaction.response.send_modal(CardModal(self))

    @kb.command(name="edit", description="Edit one of this server's own cards.")
    @app_commands.describe(item_id="The card: start typing its question (or its id)")
    @is_manager
    async def edit(self, interaction: discord.Interaction, item_id: ItemId) -> None:
        scope = scope_of(interaction)
        # Prefilled with what students are served: the server's correction of the card, if it has one
        # (saving the form makes that text the card's own and drops the correction).
        card, answer = await asyncio.to_thread(cards.for_editing, self.bot.store, scope, item_id)
        await interaction.response.send_modal(CardModal(self, card.id, card.question, answer))

    async def save_card(
        self, interaction: discord.Interaction, item_id: int | None, question: str, answer: str
    ) -> None:
        """A submitted card modal: a new card (``item_id`` None) or an edit of one."""
        if not interaction.permissions.manage_guild:  # lost the permission while the modal was open
            raise app_commands.MissingPermissions(["manage_guild"])
        scope, title = scope_of(interaction), deck_title(interaction)
        store = self.bot.store
        # Checked before deferring, so a bad card is told at once (and the modal's answer is the error).
        question, answer = cards.clean_question(question), cards.clean_answer(answer)
        await interaction.response.defer(thinking=True, ephemeral=True)
        if item_id is None:
            card = await self.change(cards.add_card, store, scope, question, answer, self._embed, title)
            verb = "Added"
        else:
            card = await self.change(
                cards.edit_card, store, scope, item_id, question, answer, self._embed, title
            )
            verb = "Saved"
        await send(
            interaction,
            content=f"{verb} item {card.id}: “{shorten(card.question, 200)}”. Only this server sees it.",
        )

    @kb.command(name="remove", description="Remove one of this server's own cards.")
    @app_commands.describe(item_id="The card: start typing its question (or its id)")
    @is_manager
    async def remove(self, interaction: discord.Interaction, item_id: ItemId) -> None:
        scope = scope_of(interaction)
        await interaction.response.defer(thinking=True, ephemeral=True)
        card = await self.change(
            cards.remove_card, self.bot.store, scope, item_id, self._embed, deck_title(interaction)
        )
        await send(interaction, content=f"Removed item {card.id}: “{shorten(card.question, 200)}”.")

    @kb.command(name="hide", description="Hide a note or card from answers and quizzes in this server only.")
    @app_commands.describe(item_id="The note or card: start typing its question (or its id)")
    @is_manager
    async def hide(self, interaction: discord.Interaction, item_id: ItemId) -> None:
        scope = scope_of(interaction)
        await interaction.response.defer(thinking=True, ephemeral=True)
        item = await self.change(self._hide, scope, item_id, str(interaction.user.id))
        await send(
            interaction,
            content=f"Item {item.id} is hidden in this server: “{shorten(item.question, 200)}”. "
            "Other servers still see it; /kb restore brings it back here.",
        )

    def _hide(self, scope: Scope, item_id: int, author: str):
        cards.visible_item(self.bot.store, scope, item_id)  # another server's card: no such item
        return overrides.hide(self.bot.store, scope, item_id, author)

    @kb.command(name="restore", description="Show an item this server hid again.")
    @app_commands.describe(item_id="The hidden item: start typing its question (or its id)")
    @is_manager
    async def restore(self, interaction: discord.Interaction, item_id: ItemId) -> None:
        scope = scope_of(interaction)
        await interaction.response.defer(thinking=True, ephemeral=True)
        item, restored = await self.change(self._restore, scope, item_id)
        what = f"Item {item.id} (“{shorten(item.question, 200)}”)"
        await send(
            interaction,
            content=f"{what} is shown in this server again." if restored else f"{what} was not hidden here.",
        )

    def _restore(self, scope: Scope, item_id: int):
        item = cards.visible_item(self.bot.store, scope, item_id)
        return item, overrides.restore(self.bot.store, scope, item_id)

    @kb.command(
        name="import", description="Add the cards of a deck file (Markdown, TSV, JSON, JSONL; 1 MiB)."
    )
    @app_commands.describe(
        file="A deck: Markdown (## question), Anki/Quizlet TSV, JSON or JSONL ({question, answer})",
        replace="Make this server's cards exactly the file's (the others are removed)",
    )
    @is_manager
    async def import_(
        self, interaction: discord.Interaction, file: discord.Attachment, replace: bool = False
    ) -> None:
        scope = scope_of(interaction)
        if file.size > cards.MAX_IMPORT_BYTES:  # refused before downloading it
            raise UserError(f"{file.filename} is {file.size / 2**20:.1f} MiB; the limit is 1 MiB.")
        await interaction.response.defer(thinking=True, ephemeral=True)
        data = await file.read()
        report = await self.change(
            cards.import_deck,
            self.bot.store,
            scope,
            file.filename,
            data,
            self._embed,
            deck_title(interaction),
            replace=replace,
        )
        await send(
            interaction,
            content=f"Imported {report.read} cards from {shorten(file.filename, 100)}: +{report.added} added, "
            f"~{report.updated} updated, {report.unchanged} unchanged"
            + (f", -{report.removed} removed" if report.removed else "")
            + f". This server has {report.total} cards.",
        )

    @kb.command(name="export", description="This server's cards (JSONL, re-importable) and its hides.")
    @is_manager
    async def export(self, interaction: discord.Interaction) -> None:
        scope = scope_of(interaction)
        await interaction.response.defer(thinking=True, ephemeral=True)

        def read() -> tuple[bytes, bytes, int]:
            store = self.bot.store
            return (
                cards.export_cards(store, scope),
                cards.export_overrides(store, scope),
                len(cards.cards(store, scope)),
            )

        deck, changes, n = await asyncio.to_thread(read)
        files = []
        if deck:
            files.append(discord.File(io.BytesIO(deck), filename=f"cards-{interaction.guild_id}.jsonl"))
        if changes:
            files.append(
                discord.File(io.BytesIO(changes), filename=f"overrides-{interaction.guild_id}.jsonl")
            )
        if not files:
            await send(interaction, content="This server has no cards, hidden items or corrections yet.")
            return
        kinds = [json.loads(line)["kind"] for line in changes.splitlines()]
        await send(
            interaction,
            content=f"This server's {n} cards (/kb import reads the cards file back) and its "
            f"{kinds.count('hide')} hidden items and {len(kinds) - kinds.count('hide')} corrected answers.",
            files=files,
        )

    # --- suggestions for item_id, from what this server sees (never another server's cards) ---
    async def _suggest(
        self, interaction: discord.Interaction, current: str, which: str
    ) -> list[app_commands.Choice[int]]:
        if interaction.guild_id is None or not interaction.permissions.manage_guild:
            return []
        scope = Scope.of(interaction.guild_id)

        def find() -> list:
            items = [it for it in self.bot.retriever.items.values() if scope.sees(it.scope)]
            if which == "own":
                items = [it for it in items if it.scope == scope.key]
            elif which in ("hidden", "shown"):
                hidden = overrides.load_overrides(self.bot.store).hidden_in(scope)
                items = [it for it in items if (it.id in hidden) == (which == "hidden")]
            return cards.matching(items, current, limit=25)

        found = await asyncio.to_thread(find)
        return [
            app_commands.Choice(name=shorten(f"{it.id} · {it.question}", 100), value=it.id) for it in found
        ]

    @edit.autocomplete("item_id")
    @remove.autocomplete("item_id")
    async def _own_cards(self, interaction: discord.Interaction, current: str):
        return await self._suggest(interaction, current, "own")

    @hide.autocomplete("item_id")
    async def _shown_items(self, interaction: discord.Interaction, current: str):
        return await self._suggest(interaction, current, "shown")

    @restore.autocomplete("item_id")
    async def _hidden_items(self, interaction: discord.Interaction, current: str):
        return await self._suggest(interaction, current, "hidden")

    # --- /settings ---
    @settings.command(name="show", description="This server's answer channels and quiz defaults.")
    @is_manager
    async def show(self, interaction: discord.Interaction) -> None:
        values = await asyncio.to_thread(self.bot.guild_settings.get, interaction.guild_id)
        channels = ", ".join(f"<#{c}>" for c in values["answer_channels"]) or "none"
        await interaction.response.send_message(
            f"Answer channels: {channels}\nQuiz defaults: {values['quiz_questions'] or 'default'} questions, "
            f"mode {values['quiz_mode'] or 'auto'}",
            ephemeral=True,
        )

    @settings.command(
        name="answers", description="Make a channel an answer channel (every message a question)."
    )
    @app_commands.describe(channel="The channel", enabled="Answer every message there (False: stop)")
    @is_manager
    async def answers(
        self, interaction: discord.Interaction, channel: discord.TextChannel, enabled: bool = True
    ) -> None:
        guilds = self.bot.guild_settings
        current = set((await asyncio.to_thread(guilds.get, interaction.guild_id))["answer_channels"])
        wanted = current | {channel.id} if enabled else current - {channel.id}
        await asyncio.to_thread(guilds.update, interaction.guild_id, answer_channels=sorted(wanted))
        verb = "now answers every message" if enabled else "no longer answers every message"
        await interaction.response.send_message(f"{channel.mention} {verb}.", ephemeral=True)

    @settings.command(name="quiz", description="Default number of questions and mode for /quiz start here.")
    @app_commands.choices(mode=[app_commands.Choice(name=m, value=m) for m in MODES])
    @is_manager
    async def quiz_defaults(
        self,
        interaction: discord.Interaction,
        questions: app_commands.Range[int, 1, 25] | None = None,
        mode: str | None = None,
    ) -> None:
        await asyncio.to_thread(
            self.bot.guild_settings.update, interaction.guild_id, quiz_questions=questions, quiz_mode=mode
        )
        await interaction.response.send_message(
            f"/quiz start now defaults to {questions or 'the default number of'} questions, mode {mode or 'auto'}.",
            ephemeral=True,
        )


class CardModal(TutorModal, title="Add a card"):
    """A card's question and answer: a new card, or (``item_id``) one to edit, prefilled."""

    question: discord.ui.TextInput[CardModal] = discord.ui.TextInput(
        label="Question",
        custom_id="kb:question",
        style=discord.TextStyle.paragraph,
        max_length=cards.MAX_QUESTION,
    )
    answer: discord.ui.TextInput[CardModal] = discord.ui.TextInput(
        label="Answer", custom_id="kb:answer", style=discord.TextStyle.paragraph, max_length=cards.MAX_ANSWER
    )

    def __init__(self, cog: Admin, item_id: int | None = None, question: str = "", answer: str = "") -> None:
        super().__init__(timeout=600, title="Add a card" if item_id is None else f"Edit item {item_id}")
        self.cog, self.item_id = cog, item_id
        if item_id is not None:
            self.question.default = question[: cards.MAX_QUESTION]
            self.answer.default = answer[: cards.MAX_ANSWER]

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.save_card(interaction, self.item_id, self.question.value, self.answer.value)
