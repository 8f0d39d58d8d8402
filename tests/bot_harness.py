"""Runs the real ``TutorBot`` with real services against the local Discord-compatible server.

Shared by the bot's end-to-end tests and ``bench/bot_load.py``: a guild with a ``general`` channel and an
``answers`` channel (configured as an answer channel), the bot syncing its commands to that guild, and the
discord.py endpoints restored afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from discord_server import DiscordServer, FakeChannel, FakeGuild, FakeUser

from bot.bot import Services, TutorBot
from bot.demos import DemoQueue
from bot.guilds import GuildSettings
from knowledge.quiz import QuizService
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
        quiz = QuizService(
            retriever.store, retriever.encoder, grader=quiz_grader()
        )  # as bot/cli.py builds it
        stack.callback(quiz.close)
        guilds = GuildSettings(retriever.store.path)
        stack.callback(guilds.close)
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
