"""The bot: a ``commands.Bot`` that is handed its services and loads one extension per feature.

The bot owns no domain logic and builds no services: ``tutor.services`` (the composition root) opens the
store, the retriever and the demo worker, hands them over as a ``Services`` value, and closes them after the
bot has stopped. Tests do the same against a local Discord-compatible server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.demos import DemoQueue
from bot.exts import walk_extensions

if TYPE_CHECKING:
    from bot.guilds import GuildSettings
    from bot.repository import BotRepository
    from index.retriever import Retriever
    from knowledge.quiz import QuizService
    from knowledge.store import Store

T = TypeVar("T")
log = logging.getLogger(__name__)


class BotSettings(Protocol):
    """The settings the bot and its extensions read (``tutor.settings.Settings`` has them all); the bot
    never loads settings itself."""

    discord_api_url: str
    discord_gateway_url: str
    guild_ready_timeout: float
    dev_guild_id: int | None
    demo_warm_start: bool
    answer_channel_ids: list[int]
    view_timeout_s: float
    ask_burst: int
    ask_per_minute: float
    owner_ids: list[int]  # the tutor's owners besides the application's owner or team
    guild_grace_days: float  # how long a server's data outlives the bot's departure


@dataclass(frozen=True)
class Services:
    """What the bot is given: everything with state or cost lives outside it and outlives it."""

    settings: BotSettings
    store: Store
    retriever: Retriever
    demos: DemoQueue
    quiz: QuizService  # sessions, reviews, stats, on the store above
    guilds: GuildSettings  # per-guild answer channels and quiz defaults


def configure_endpoints(api_url: str, gateway_url: str) -> None:
    """Point discord.py at a Discord-compatible server (REST, interaction callbacks, webhooks, gateway).

    discord.py keeps both as class attributes, so this is process-wide; the defaults are Discord's own.
    """
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    Route.BASE = api_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def intents() -> discord.Intents:
    """Default intents plus message content: without it, guild messages that do not mention the bot arrive
    empty, so the answer channels could not work (mentions and DMs would)."""
    wanted = discord.Intents.default()
    wanted.message_content = True
    wanted.typing = False
    wanted.presences = False
    return wanted


# The tutor never joins voice; discord.py would warn at every start that voice libraries are missing.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False


class TutorBot(commands.Bot):
    """The Discord adapter. ``services`` are injected; ``setup_hook`` loads the feature extensions."""

    def __init__(self, services: Services, *, serve: bool = True) -> None:
        settings = services.settings
        configure_endpoints(settings.discord_api_url, settings.discord_gateway_url)
        super().__init__(
            command_prefix=commands.when_mentioned,  # no text commands: questions are plain messages
            help_command=None,
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=settings.guild_ready_timeout,
        )
        self.services = services
        self.settings = settings
        self.store = services.store
        self.retriever = services.retriever
        self.demos = services.demos
        self.quiz = services.quiz
        self.guild_settings = services.guilds
        self.repository: BotRepository = services.guilds.repository  # the bot's tables (departures ...)
        self._knowledge_lock = asyncio.Lock()  # one knowledge-base change (and its reload) at a time
        self._owner_lookup_failed = False  # logged once
        self._serve = serve  # False: only log in and load the commands (``tutor bot sync``)
        self._warmup: asyncio.Task[None] | None = None

    def refresh_knowledge(self) -> None:
        """After the store changed (cards, overrides, a purge): the retriever reloads (its index, rebuilt
        when the content changed, and the overrides) and the quiz refreshes its cards. Blocking: call it
        in a thread."""
        self.retriever.reload()
        self.quiz.catalogue(refresh=True)

    async def change_knowledge(
        self, fn: Callable[..., T], *args: Any, reload: bool = True, **kwargs: Any
    ) -> T:
        """Run a store change in a thread, then (``reload``) :meth:`refresh_knowledge`, one change at a time
        for the whole bot, so the next answer and quiz question use it.

        The store locks each step on the connection the whole bot shares (an ingest's read snapshots, its
        staging and publish transactions, every read), never the whole change: quiz steps, feedback and
        settings go on between the steps of an ingest, an index rebuild or a catalogue build.
        """

        def work() -> T:
            result = fn(*args, **kwargs)
            if reload:
                self.refresh_knowledge()
            return result

        async with self._knowledge_lock:
            return await asyncio.to_thread(work)

    async def setup_hook(self) -> None:
        extensions = walk_extensions()
        for extension in extensions:
            await self.load_extension(extension)
        log.info("loaded extensions: %s", ", ".join(e.rsplit(".", 1)[-1] for e in extensions))
        if not self._serve:
            return
        if self.settings.dev_guild_id:
            await self.sync_commands(self.settings.dev_guild_id)
        else:
            log.info("no TUTOR_DEV_GUILD_ID: slash commands are not synced on start (run `tutor bot sync`)")
        if self.settings.demo_warm_start:
            self._warmup = asyncio.create_task(self.demos.warm_up(), name="demo-worker-warmup")

    async def sync_commands(self, guild_id: int | None = None) -> list[app_commands.AppCommand]:
        """Sync to one guild (instant, for development) or, with no guild, globally (``tutor bot sync``)."""
        if guild_id is None:
            synced = await self.tree.sync()
        else:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        log.info("synced %d commands %s", len(synced), f"to guild {guild_id}" if guild_id else "globally")
        return synced

    async def is_tutor_owner(self, user: discord.abc.User) -> bool:
        """The application's owner (or a member of its team, as discord.py's ``is_owner`` decides) or one
        of ``owner_ids``. When the application cannot be looked up, nobody is owner by that route (logged
        once): the configured ids still are."""
        if user.id in self.settings.owner_ids:
            return True
        try:
            return await self.is_owner(user)
        except Exception as exc:  # a network failure, Discord down: never an error for the caller
            if not self._owner_lookup_failed:
                self._owner_lookup_failed = True
                log.warning("cannot look up the application's owners (%s): only TUTOR_OWNER_IDS count", exc)
            return False

    async def on_ready(self) -> None:
        log.info("ready as %s (%s) in %d guilds", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    async def on_message(self, message: discord.Message, /) -> None:
        """No text commands: questions in messages are handled by the ask extension's listener."""

    async def on_error(self, event_method: str, /, *args, **kwargs) -> None:
        """Errors in event listeners go to the same handler as command errors."""
        from bot.errors import handle_event_error

        await handle_event_error(self, event_method, args)

    async def close(self) -> None:
        if self._warmup is not None and not self._warmup.done():
            self._warmup.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._warmup
        await super().close()
