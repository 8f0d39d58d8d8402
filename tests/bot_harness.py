"""Runs the real ``TutorBot`` with real services against the local Discord-compatible server.

Shared by the bot's end-to-end tests and ``bench/bot_load.py``: a guild with a ``general`` channel and an
``answers`` channel (configured as an answer channel), the bot syncing its commands to that guild, and the
discord.py endpoints restored afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.bot import Services, TutorBot
from bot.demos import DemoQueue
from bot.guilds import GuildSettings
from knowledge.quiz import QuizService
from tests.fakediscord import DiscordServer, FakeChannel, FakeGuild, FakeMessage, FakeUser
from tests.stores import HashingEncoder
from tutor.services import quiz_grader
from tutor.settings import Settings


@dataclass
class World:
    server: DiscordServer
    guild: FakeGuild
    general: FakeChannel
    answers: FakeChannel
    alice: FakeUser
    bob: FakeUser
    bot: TutorBot
    services: Services


def make_settings(server: DiscordServer, guild: FakeGuild, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "discord_api_url": server.api_url,
        "discord_gateway_url": server.gateway_url,
        "dev_guild_id": guild.id,
        "answer_channel_ids": [guild.channel("answers").id],
        "guild_ready_timeout": 0.05,
        "demo_warm_start": False,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def grader_for(encoder: Any) -> Any:
    """The quiz's grader: the trained one, as ``tutor.services`` gives the bot; over the stand-in encoder
    None, ``QuizService``'s default (the rule grader over that encoder): the trained grader's answer bank is
    in MiniLM's space, and grading with it would load the real model."""
    return None if isinstance(encoder, HashingEncoder) else quiz_grader()


@contextlib.asynccontextmanager
async def running_tutor(
    retriever: Any,
    worker: Any,
    data_dir: Path,
    *,
    server: DiscordServer | None = None,
    shared: Any = None,
    **overrides: Any,
) -> AsyncIterator[World]:
    """A server (unless given), a guild and two users, and the bot running against them.

    ``worker``: the embedded ``DemoWorker`` or a ``DemoPool``; ``shared``: the pool's ``SharedSlots``.
    """
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    async with contextlib.AsyncExitStack() as stack:
        if server is None:
            server = await stack.enter_async_context(DiscordServer())
        guild = server.create_guild("Course", channels=("general", "answers"))
        settings = make_settings(server, guild, data_dir, **overrides)
        demos = DemoQueue(
            worker,
            per_user=settings.demo_queue_per_user,
            total=settings.demo_queue_total,
            max_budget_s=settings.demo_timeout_s,
            shared=shared,
        )
        quiz = QuizService(retriever.store, retriever.encoder, grader=grader_for(retriever.encoder))
        stack.callback(quiz.close)
        guilds = GuildSettings(retriever.store)
        services = Services(
            settings=settings,
            store=retriever.store,
            retriever=retriever,
            demos=demos,
            quiz=quiz,
            guilds=guilds,
        )
        bot = TutorBot(services)
        try:
            async with server.running(bot):
                yield World(
                    server=server,
                    guild=guild,
                    general=guild.channel("general"),
                    answers=guild.channel("answers"),
                    alice=server.create_user("alice"),
                    bob=server.create_user("bob"),
                    bot=bot,
                    services=services,
                )
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


async def reply_to(server: DiscordServer, posted: FakeMessage, *, timeout: float = 10.0) -> FakeMessage:
    """The bot's reply to ``posted`` (a message whose reference is ``posted``)."""
    return await server.wait_for_message(
        posted.channel,
        lambda m: bool(m.reference) and m.reference["message_id"] == str(posted.id),
        after=posted,
        timeout=timeout,
    )


def replies_to(server: DiscordServer, posted: FakeMessage) -> list[FakeMessage]:
    """Every reply the bot has posted to ``posted`` so far."""
    return [
        m
        for m in server.messages_in(posted.channel, author=server.bot_user)
        if m.reference and m.reference["message_id"] == str(posted.id)
    ]


class GatedEncoder:
    """A query encoder wrapper that makes micro-batching deterministic, and can fail on chosen texts.

    Its first call waits until ``release`` is set, so every question asked meanwhile queues in the
    retriever and the leader encodes them all in its next call (``calls`` records texts per call). A text
    containing ``poison`` makes the call fail with ``RuntimeError``, as a model failing on one input would
    (the whole batch call fails; encoding that text alone fails too). Install it with
    ``retriever.query_encoder = GatedEncoder(retriever.query_encoder, poison=...)``.
    """

    def __init__(self, inner: Any, poison: str | None = None, *, gate: bool = True) -> None:
        self.inner, self.poison = inner, poison
        self.model_id, self.dim = inner.model_id, inner.dim
        self.entered, self.release = threading.Event(), threading.Event()
        if not gate:
            self.release.set()
        self.calls: list[int] = []

    def _enter(self, texts: Sequence[str]) -> None:
        self.calls.append(len(texts))
        self.entered.set()
        self.release.wait(30)
        if self.poison is not None and any(self.poison in t for t in texts):
            raise RuntimeError("the model failed on this input")

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        self._enter(texts)
        return self.inner.encode(texts, batch_size)

    def encode_one(self, text: str) -> Any:
        self._enter([text])
        return self.inner.encode_one(text)


async def hold_batch(server: DiscordServer, retriever: Any, gate: GatedEncoder, n: int) -> None:
    """Wait until the gate holds the leader's first call and ``n`` more questions are queued behind it,
    then let the batch go: those ``n`` are encoded together in one call."""
    await server.wait_for(gate.entered.is_set, timeout=20, what="the retriever's leader to enter the encoder")
    await server.wait_for(
        lambda: len(retriever._pending) >= n, timeout=20, what=f"{n} questions queued behind the leader"
    )
    gate.release.set()


@contextlib.asynccontextmanager
async def store_held(store: Any) -> AsyncIterator[None]:
    """Another thread holds the store's lock (a long write) until the block ends: the bot's writes wait."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold, name="holds-the-store")
    holder.start()
    try:
        assert await asyncio.to_thread(held.wait, 10), "the store's lock was not taken"
        yield
    finally:
        release.set()
        await asyncio.to_thread(holder.join, 10)
