"""What the server knows and has seen: its settings, the world (users, guilds, channels, DMs), the messages,
interactions, commands and attachments in it, and the logs; plus the change signal every wait re-checks on."""

from __future__ import annotations

import asyncio
import mimetypes
import time
from dataclasses import dataclass
from typing import Any

from .constants import (
    API_VERSION,
    DISCORD_EPOCH_MS,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_PRESENCES,
    INTENT_MESSAGE_CONTENT,
)
from .errors import DiscordAPIError, unknown_channel
from .records import FakeAttachment, FakeInteraction, FakeMessage, RestCall
from .world import FakeChannel, FakeGuild, FakeUser


@dataclass
class ServerConfig:
    """The server's settings (``DiscordServer``'s keyword arguments) and, once started, its port."""

    token: str
    ack_deadline: float
    heartbeat_interval: float
    privileged_intents: int
    shard_count: int
    bot_permissions: int
    everyone_permissions: int
    strict: bool
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def application_flags(self) -> int:
        """The application's gateway-intent flags, as READY and the application info report them."""
        flags = 0
        if self.privileged_intents & INTENT_GUILD_PRESENCES:
            flags |= 1 << 12
        if self.privileged_intents & INTENT_GUILD_MEMBERS:
            flags |= 1 << 14
        if self.privileged_intents & INTENT_MESSAGE_CONTENT:
            flags |= 1 << 18
        return flags


class Snowflakes:
    """Strictly increasing snowflakes whose timestamps are now (so ``created_at`` is sensible)."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last


class State:
    """Everything the REST routes, the gateway and the test driver share."""

    def __init__(self, config: ServerConfig, bot_name: str) -> None:
        self.config = config
        self.snowflake = Snowflakes()
        self.application_id = self.snowflake()
        self.bot_user = FakeUser(self.application_id, bot_name, bot=True)
        self.owner = FakeUser(self.snowflake(), "app-owner")
        self.users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user, self.owner.id: self.owner}
        self.guilds: dict[int, FakeGuild] = {}
        self.dm_channels: dict[int, FakeChannel] = {}  # by recipient user id
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.interactions_by_token: dict[str, FakeInteraction] = {}
        # guild id (None: global) -> name -> cmd
        self.commands: dict[int | None, dict[str, dict[str, Any]]] = {}
        self.attachments: dict[int, FakeAttachment] = {}
        self.rest_log: list[RestCall] = []
        self.unknown_routes: list[str] = []
        self.internal_errors: list[str] = []
        self.gateway_log: list[dict[str, Any]] = []  # frames the client sent (heartbeats excluded)
        self.presence: dict[str, Any] | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    # ---- lookups ---------------------------------------------------------------------------------

    def guild_of(self, channel: FakeChannel) -> FakeGuild | None:
        return None if channel.guild_id is None else self.guilds[channel.guild_id]

    def channel(self, channel_id: int) -> FakeChannel:
        """A guild or DM channel by id (Unknown Channel if there is none)."""
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.channels[channel_id]
        for channel in self.dm_channels.values():
            if channel.id == channel_id:
                return channel
        raise unknown_channel()

    def guild(self, guild_id: str) -> FakeGuild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise DiscordAPIError(404, 10004, "Unknown Guild")
        return guild

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between ``user`` and the bot (created on first use)."""
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = FakeChannel(self.snowflake(), f"dm-{user.name}", 1, None, recipient=user)
            self.dm_channels[user.id] = channel
        return channel

    def command(self, channel: FakeChannel, name: str) -> dict[str, Any] | None:
        """The synced command ``name`` as a user in ``channel`` sees it (the guild's, else the global one)."""
        if channel.guild_id is not None and name in self.commands.get(channel.guild_id, {}):
            return self.commands[channel.guild_id][name]
        return self.commands.get(None, {}).get(name)

    def store_attachment(self, filename: str, data: bytes, description: str | None = None) -> FakeAttachment:
        """Keep an uploaded file; the CDN route serves it at its ``url``."""
        aid = self.snowflake()
        content_type = mimetypes.guess_type(filename)[0]
        url = f"{self.config.base_url}/cdn/attachments/{aid}/{filename}"
        attachment = FakeAttachment(aid, filename, bytes(data), content_type, url, description)
        self.attachments[aid] = attachment
        return attachment

    # ---- the change signal -----------------------------------------------------------------------

    def notify(self) -> None:
        """Something changed: wake every ``changed()`` waiter."""
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def changed(self, timeout: float) -> None:
        """Wait for the next ``notify()``, at most ``timeout`` seconds."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait({fut}, timeout=timeout)
        finally:
            self._waiters.discard(fut)
