"""Knowledge-base and server settings for admins.

Discord hides these commands from members without Manage Server (``default_permissions``), but a server
can override that per role, so every command also checks the permission at run time. Changes go through
the bot's one store (``Services.store``), one at a time, then the retriever reloads (rebuilding its index
when the content changed) and the quiz refreshes its cards: no restart needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.formatting import shorten
from bot.ui import TutorModal, send
from knowledge.loader import SOURCES_DIR, collect_paths, load_document
from knowledge.models import DocumentMeta, Entry, ParsedDocument
from knowledge.quiz.selection import MODES
from knowledge.store import IngestReport, Store

if TYPE_CHECKING:
    from bot.bot import TutorBot

MANAGE = discord.Permissions(manage_guild=True)
is_manager = app_commands.checks.has_permissions(manage_guild=True)


def guild_source(guild_id: int) -> str:
    """The document a server's own cards live in (one per server)."""
    return f"guild_{guild_id}.jsonl"


class Admin(commands.Cog):
    kb = app_commands.Group(
        name="kb", description="Manage the knowledge base.", guild_only=True, default_permissions=MANAGE
    )
    settings = app_commands.Group(
        name="settings",
        description="This server's tutor settings.",
        guild_only=True,
        default_permissions=MANAGE,
    )

    def __init__(self, bot: TutorBot) -> None:
        self.bot = bot
        self._lock = asyncio.Lock()  # one knowledge-base change at a time

    @property
    def _store(self) -> Store:
        """The bot's one store (shared, so never closed here)."""
        return self.bot.store

    def _embed(self, texts):
        return self.bot.retriever.encoder.encode(list(texts))

    async def _change(self, fn, *args):
        """Run a store change and reload the retriever and the quiz catalogue, all in a thread.

        The store locks each step on the connection the whole bot shares (an ingest's read snapshots,
        its staging and publish transactions, every read), never the whole change: quiz steps, feedback
        and settings go on between the steps of an ingest, an index rebuild or a catalogue build.
        """

        def work():
            result = fn(*args)
            self.bot.retriever.reload()
            self.bot.quiz.catalogue(refresh=True)
            return result

        async with self._lock:
            return await asyncio.to_thread(work)

    # --- /kb ---
    @kb.command(name="reload", description="Re-ingest the bundled sources and re-index (no restart).")
    @is_manager
    async def reload(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)

        def ingest() -> IngestReport:
            store = self._store
            removed = store.removed_sources()  # `tutor kb remove`d decks stay out
            documents = [load_document(p) for p in collect_paths([SOURCES_DIR]) if p.name not in removed]
            return store.ingest(documents, self._embed)

        report = await self._change(ingest)
        await send(
            interaction,
            content=f"Reloaded {report.documents} documents: +{report.added} added, ~{report.updated} updated, "
            f"-{report.retired} retired, {report.unchanged} unchanged. {len(self.bot.retriever.items)} items live.",
        )

    @kb.command(name="add", description="Add a question and answer to this server's own cards.")
    @is_manager
    async def add(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(AddCard(self))

    async def add_card(self, guild_id: int, guild_name: str, question: str, answer: str) -> int:
        """Append a card to the server's deck document and ingest it; returns the new item's id."""
        source = guild_source(guild_id)

        def ingest() -> int:
            store = self._store
            kept = sorted(store.items(source=source), key=lambda item: item.n)
            entries = [Entry(i.question, i.answer, n) for n, i in enumerate(kept, 1)]
            entries.append(Entry(question, answer, len(entries) + 1))
            digest = hashlib.sha256(
                json.dumps([(e.question, e.answer) for e in entries]).encode()
            ).hexdigest()
            meta = DocumentMeta(source=source, title=f"{guild_name} cards", layout="jsonl")
            store.ingest([ParsedDocument(meta, tuple(entries), digest)], self._embed)
            return max(item.id for item in store.items(source=source))

        return await self._change(ingest)

    @kb.command(name="disable", description="Hide an item from answers and quizzes (or bring it back).")
    @app_commands.describe(
        item_id="The item's id (tutor kb show lists them)", restore="Enable it again instead"
    )
    @is_manager
    async def disable(self, interaction: discord.Interaction, item_id: int, restore: bool = False) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        item = await self._change(self._store.set_disabled, item_id, not restore)
        state = "enabled again" if restore else "disabled"
        await send(interaction, content=f"Item {item.id} {state}: “{shorten(item.question, 200)}”")

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


class AddCard(TutorModal, title="Add a card"):
    question: discord.ui.TextInput[AddCard] = discord.ui.TextInput(
        label="Question", custom_id="kb:question", style=discord.TextStyle.paragraph, max_length=1000
    )
    answer: discord.ui.TextInput[AddCard] = discord.ui.TextInput(
        label="Answer", custom_id="kb:answer", style=discord.TextStyle.paragraph, max_length=2000
    )

    def __init__(self, cog: Admin) -> None:
        super().__init__(timeout=600)
        self.cog = cog

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        await interaction.response.defer(thinking=True, ephemeral=True)
        item_id = await self.cog.add_card(
            interaction.guild.id,
            interaction.guild.name,
            self.question.value.strip(),
            self.answer.value.strip(),
        )
        await send(interaction, content=f"Added item {item_id}: “{shorten(self.question.value, 200)}”")
