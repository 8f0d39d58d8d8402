"""Asking: ``/ask``, and plain messages that mention the bot, are DMs, or are posted in an answer channel."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.demos import Illustration, illustration_for
from bot.exts.ask._embeds import answer_embeds, help_embed
from bot.exts.ask._views import AnswerView
from bot.formatting import valid_text
from bot.ratelimit import RateLimiter, slow_down
from bot.ui import send, within_deadline
from index.answer import NO_MATCH, Answer
from knowledge.scope import Scope

if TYPE_CHECKING:
    from bot.bot import TutorBot

MAX_QUESTION = 1500
RETRIEVAL_THREADS = 32


class Ask(commands.Cog):
    """Answers questions from the knowledge base. Retrieval runs in threads, never on the event loop.

    Every question, however it is asked, first takes a token from its asker's bucket (``bot.ratelimit``):
    a question over the limit gets a polite "ask again in N s" and never reaches the retriever.
    """

    def __init__(self, bot: TutorBot) -> None:
        self.bot = bot
        # Retrieval threads mostly wait for the retriever's shared encoder batch, so a pool wider than the
        # default (CPUs + 4) lets a burst of questions share one batch instead of queueing for a thread.
        self._pool = ThreadPoolExecutor(max_workers=RETRIEVAL_THREADS, thread_name_prefix="retrieval")
        settings = bot.settings
        self.limiter = RateLimiter(settings.ask_burst, settings.ask_per_minute)

    async def cog_unload(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the services, off the event loop ---
    async def answer(self, question: str, guild_id: int | None) -> Answer:
        """The retriever's answer in the server's scope (the shared notes in DMs); the text is made valid
        Unicode first (Discord's JSON can carry a lone surrogate, which no encoder can read)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self.bot.retriever.ask, valid_text(question), Scope.of(guild_id)
        )

    async def answer_item(self, item_id: int, query: str, guild_id: int | None) -> Answer:
        return await asyncio.to_thread(self.bot.retriever.answer_item, item_id, query, Scope.of(guild_id))

    async def record_feedback(
        self, interaction: discord.Interaction, answer: Answer, *, helpful: bool
    ) -> int:
        shown = answer.answer if answer.answer is not None else (answer.no_answer_reason or answer.status)
        return await asyncio.to_thread(  # the store keeps threads' transactions apart (Store.lock)
            self.bot.store.add_feedback,
            user_id=str(interaction.user.id),
            query=answer.query,
            helpful=helpful,
            status=answer.status,
            item_id=answer.item_id,
            answer=shown,
            guild_id=str(interaction.guild_id) if interaction.guild_id else None,
            channel_id=str(interaction.channel_id) if interaction.channel_id else None,
        )

    async def record_comment(self, feedback_id: int, comment: str) -> None:
        await asyncio.to_thread(self.bot.store.add_feedback_comment, feedback_id, comment)

    def illustration(self, answer: Answer) -> Illustration | None:
        """A demo that illustrates the matched entry or another entry of its duplicate group."""
        if answer.status == NO_MATCH or answer.item_id is None:
            return None
        items = self.bot.retriever.items
        entries = [(c.source, items[c.item_id].question) for c in answer.citations if c.item_id in items]
        if answer.source and answer.question:
            entries.insert(0, (answer.source, answer.question))
        return illustration_for(entries)

    def view_for(self, answer: Answer, *, picked: bool = False) -> AnswerView:
        return AnswerView(self, answer, picked=picked, timeout=self.bot.settings.view_timeout_s)

    # --- replying ---
    async def send_answer(
        self, interaction: discord.Interaction, answer: Answer, *, picked: bool = False
    ) -> None:
        embeds = answer_embeds(answer, picked=picked)
        view = self.view_for(answer, picked=picked)
        view.message = await send(interaction, embed=embeds.first, view=view)
        for embed in embeds.more:
            await interaction.followup.send(embed=embed)

    async def reply_to(self, message: discord.Message, answer: Answer | None) -> None:
        if answer is None:
            await message.reply(embed=help_embed(), mention_author=False)
            return
        embeds = answer_embeds(answer)
        view = self.view_for(answer)
        view.message = await message.reply(embed=embeds.first, view=view, mention_author=False)
        for embed in embeds.more:
            await message.channel.send(embed=embed)

    # --- entry points ---
    @app_commands.command(name="ask", description="Ask the tutor a question about the course notes.")
    @app_commands.describe(question="Your question, e.g. what is a receptive field?")
    async def ask(
        self, interaction: discord.Interaction, question: app_commands.Range[str, 1, MAX_QUESTION]
    ) -> None:
        verdict = self.limiter.take(interaction.user.id)
        if not verdict.allowed:  # always said: the interaction needs a response, and it is ephemeral
            await interaction.response.send_message(slow_down(verdict, self.limiter), ephemeral=True)
            return
        answer = await within_deadline(interaction, self.answer(question, interaction.guild_id))
        await self.send_answer(interaction, answer)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id is not None:
            return
        question = self.question_in(message)
        if question is None:
            return
        verdict = self.limiter.take(message.author.id)  # a bare mention gets a reply too: it counts
        if not verdict.allowed:
            # Said once per refused stretch, not to every message of a flood: each reply would spend the
            # channel's send budget that other users' answers need.
            if verdict.notify:
                await message.reply(slow_down(verdict, self.limiter), mention_author=False)
            return
        if not question.strip():
            await self.reply_to(message, None)
            return
        guild_id = message.guild.id if message.guild else None
        await self.reply_to(message, await self.answer(question[: MAX_QUESTION * 2], guild_id))

    def question_in(self, message: discord.Message) -> str | None:
        """The question a message asks the bot, or None when it is not addressed to the bot.

        A DM, a message mentioning the bot, and any message in an answer channel are questions; the bot's
        own mention is removed from the text. Empty text in an answer channel (an image, a sticker) is not
        a question; empty text addressed to the bot gets the help card.
        """
        me = self.bot.user
        if me is None:
            return None
        mentioned = any(user.id == me.id for user in message.mentions)
        in_answer_channel = message.channel.id in self.bot.settings.answer_channel_ids or (
            self.bot.guild_settings.is_answer_channel(
                message.guild.id if message.guild else None, message.channel.id
            )
        )
        if not (isinstance(message.channel, discord.DMChannel) or mentioned or in_answer_channel):
            return None
        text = re.sub(rf"<@!?{me.id}>", " ", message.content).strip()
        if not text and in_answer_channel and not mentioned:
            return None
        return text
