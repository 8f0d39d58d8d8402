"""``DiscordServer``: the handle a test holds. It composes the parts (``State``, a ``Validator``, the
``Gateway``, ``BotMessages`` and the ``RestRoutes``), serves them on 127.0.0.1, and is the test-driver API:
build the world, run a client, act as users, wait for outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

import discord
import yarl
from aiohttp import web

from .constants import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    INTENT_GUILD_MEMBERS,
    IX_AUTOCOMPLETE,
    IX_COMMAND,
    IX_COMPONENT,
    IX_MODAL_SUBMIT,
    MENTION_EVERYONE,
    PRIVILEGED_INTENTS,
    ROLE_MENTION_RE,
    USER_MENTION_RE,
    permission_value,
)
from .gateway import Connection, Gateway, Session
from .interactions import check_may_use, command_options, interaction_payload, modal_submission
from .messages import BotMessages
from .records import FakeInteraction, FakeMessage, RestCall, reference_to
from .rest import RestRoutes
from .state import ServerConfig, State
from .validation import Validator
from .world import FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Part(Generic[T]):
    """``server.<name>`` reads and writes ``server.<part>.<name>``: the parts own the data, a test keeps one
    handle (``server.messages``, ``server.ack_deadline = 0.2``)."""

    def __init__(self, part: str, name: str = "") -> None:
        self.part, self.name = part, name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _Part[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> T | _Part[T]:
        if obj is None:
            return self
        return getattr(getattr(obj, self.part), self.name)

    def __set__(self, obj: object, value: T) -> None:
        setattr(getattr(obj, self.part), self.name, value)


class DiscordServer:
    """A Discord-compatible REST + gateway server on 127.0.0.1 for end-to-end bot tests.

    Build the world (``create_guild``, ``create_user``, ``add_member``, ``create_role``), run the bot
    (``running(bot)``), act as users (``post_message``, ``invoke_slash``, ``autocomplete``, ``click``,
    ``submit_modal``) and wait, bounded, for outcomes (``wait_for_message``, ``FakeInteraction.wait_*``,
    ``wait_for``). ``rest_log`` records every REST call, ``unknown_routes`` and ``internal_errors`` show
    what the server could not serve.
    """

    # The settings (``server.config``); ``ack_deadline`` may be changed while the server runs.
    token: _Part[str] = _Part("config")
    strict: _Part[bool] = _Part("config")
    ack_deadline: _Part[float] = _Part("config")
    heartbeat_interval: _Part[float] = _Part("config")
    privileged_intents: _Part[int] = _Part("config")
    shard_count: _Part[int] = _Part("config")
    bot_permissions: _Part[int] = _Part("config")
    everyone_permissions: _Part[int] = _Part("config")
    port: _Part[int] = _Part("config")
    # The world and what the server saw (``server.state``).
    application_id: _Part[int] = _Part("state")
    bot_user: _Part[FakeUser] = _Part("state")
    owner: _Part[FakeUser] = _Part("state")
    users: _Part[dict[int, FakeUser]] = _Part("state")
    guilds: _Part[dict[int, FakeGuild]] = _Part("state")
    dm_channels: _Part[dict[int, FakeChannel]] = _Part("state")
    messages: _Part[dict[int, FakeMessage]] = _Part("state")
    interactions: _Part[dict[int, FakeInteraction]] = _Part("state")
    commands: _Part[dict[int | None, dict[str, dict[str, Any]]]] = _Part("state")
    rest_log: _Part[list[RestCall]] = _Part("state")
    unknown_routes: _Part[list[str]] = _Part("state")
    internal_errors: _Part[list[str]] = _Part("state")
    gateway_log: _Part[list[dict[str, Any]]] = _Part("state")
    presence: _Part[dict[str, Any] | None] = _Part("state")
    # Gateway sessions by id, and open websocket connections (``server.gateway``).
    _sessions: _Part[dict[str, Session]] = _Part("gateway", "sessions")
    _connections: _Part[set[Connection]] = _Part("gateway", "connections")

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_name: str = "TestBot",
        ack_deadline: float = 3.0,
        heartbeat_interval: float = 41.25,
        privileged_intents: int = PRIVILEGED_INTENTS,
        shard_count: int = 1,
        bot_permissions: int | discord.Permissions = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int | discord.Permissions = DEFAULT_EVERYONE_PERMISSIONS,
        strict: bool = True,
    ) -> None:
        self.config = ServerConfig(
            token=token or f"test.{secrets.token_urlsafe(24)}",
            ack_deadline=ack_deadline,
            heartbeat_interval=heartbeat_interval,
            privileged_intents=privileged_intents,
            shard_count=shard_count,
            bot_permissions=permission_value(bot_permissions),
            everyone_permissions=permission_value(everyone_permissions),
            strict=strict,
        )
        self.state = State(self.config, bot_name)
        self.validate = Validator()
        self.gateway = Gateway(self.config, self.state)
        self.bot_messages = BotMessages(self.state, self.gateway, self.validate)
        self.rest = RestRoutes(self.config, self.state, self.bot_messages, self.validate)
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> DiscordServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.close()
        if exc_type is not None:
            return
        if self.internal_errors:
            raise AssertionError(
                "the fake Discord server failed while serving:\n" + "\n".join(self.internal_errors)
            )
        if self.strict and self.unknown_routes:
            raise AssertionError(
                f"the bot called routes the fake Discord server does not serve: {self.unknown_routes} "
                "(add them to tests/fakediscord/rest.py, or pass strict=False)"
            )

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/cdn/attachments/{id}/{filename}", self.rest.handle_cdn)
        app.router.add_route("*", "/api/v{version}/{tail:.*}", self.rest.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("fake Discord server on %s", self.base_url)

    async def close(self) -> None:
        """Close gateway connections (1001, which a client treats as resumable) and stop serving."""
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.state.notify()

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def api_url(self) -> str:
        """What ``discord.http.Route.BASE`` must be."""
        return self.config.api_url

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be (as a ``yarl.URL``)."""
        return self.config.gateway_url

    @contextlib.contextmanager
    def patch_client_urls(self) -> Iterator[None]:
        """Point discord.py's class-level REST base and gateway URL here, restoring them afterwards."""
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        old = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = self.api_url
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old

    @contextlib.asynccontextmanager
    async def running(
        self, client: discord.Client, *, token: str | None = None, timeout: float = 10.0
    ) -> AsyncIterator[discord.Client]:
        """Start ``client`` (with ``token``, default the server's) against this server, wait until it is
        ready, and close it on exit.

        The client must already point here (its settings, or ``patch_client_urls``). If it stops
        before it is ready (wrong token, wrong URL, a crash in ``setup_hook``), its exception is raised
        here instead of a bare timeout.
        """
        task = asyncio.create_task(client.start(token or self.token), name="fake-discord-client")
        try:

            def ready() -> bool:
                if task.done():
                    exc = task.exception()
                    raise RuntimeError(f"the client stopped before it was ready: {exc!r}") from exc
                return client.is_ready()

            await self.wait_for(ready, timeout=timeout, what="the client to become ready")
            yield client
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 10.0)
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5.0)

    # ---- waiting ---------------------------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[], T], *, timeout: float = 5.0, what: str = "a condition"
    ) -> T:
        """Return the first truthy ``predicate()`` result; re-checked on every server event (and every 50 ms
        for state outside the server); raise ``TimeoutError`` listing what was seen."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.describe_recent()}")
            await self.state.changed(min(remaining, 0.05))

    def describe_recent(self, n: int = 10) -> str:
        """A summary of the latest messages, REST calls and problems, for timeout errors."""
        lines = ["recent messages:"]
        for msg in list(self.messages.values())[-n:]:
            lines.append(
                f"  {msg.id} #{msg.channel.name} {msg.author.name} [{msg.source}] {msg.text[:100]!r}"
            )
        lines.append("recent REST calls:")
        for call in self.rest_log[-n:]:
            lines.append(f"  {call.method} {call.path} -> {call.status}")
        if self.unknown_routes:
            lines.append(f"unknown routes: {self.unknown_routes[-n:]}")
        if self.internal_errors:
            lines.append(f"server errors: {self.internal_errors[-3:]}")
        return "\n".join(lines)

    async def wait_for_ready(self, timeout: float = 10.0) -> None:
        """Wait until a gateway session has received READY and all its GUILD_CREATEs."""
        await self.wait_for(self.gateway.ready, timeout=timeout, what="a gateway session to be ready")

    async def wait_for_message(
        self,
        channel: FakeChannel | None = None,
        predicate: Callable[[FakeMessage], bool] | None = None,
        *,
        author: FakeUser | None = None,
        after: FakeMessage | int | None = None,
        timeout: float = 5.0,
    ) -> FakeMessage:
        """The first message (by default from the bot, newer than ``after``) matching the filters."""
        author = author or self.bot_user
        after_id = after.id if isinstance(after, FakeMessage) else (after or 0)

        def find() -> FakeMessage | None:
            for msg in self.messages.values():
                if msg.id <= after_id or msg.author is not author or msg.deleted or msg.loading:
                    continue
                if channel is not None and msg.channel is not channel:
                    continue
                if predicate is None or predicate(msg):
                    return msg
            return None

        where = f" in #{channel.name}" if channel else ""
        return await self.wait_for(find, timeout=timeout, what=f"a message from {author.name}{where}")

    def messages_in(self, channel: FakeChannel, *, author: FakeUser | None = None) -> list[FakeMessage]:
        return [
            m
            for m in self.messages.values()
            if m.channel is channel and not m.deleted and (author is None or m.author is author)
        ]

    def calls(self, method: str | None = None, route: str | None = None) -> list[RestCall]:
        """REST log entries, filtered by method and route template (e.g. ``/channels/{}/messages``)."""
        return [
            c
            for c in self.rest_log
            if (method is None or c.method == method) and (route is None or c.route == route)
        ]

    # ---- building the world ----------------------------------------------------------------------

    def create_user(self, name: str, *, bot: bool = False, global_name: str | None = None) -> FakeUser:
        user = FakeUser(self.state.snowflake(), name, bot=bot, global_name=global_name)
        self.users[user.id] = user
        return user

    def create_guild(
        self,
        name: str = "Test Guild",
        *,
        channels: Iterable[str] = ("general",),
        owner: FakeUser | None = None,
    ) -> FakeGuild:
        """A guild with an @everyone role, the given text channels, its owner and the bot as members."""
        snowflake = self.state.snowflake
        gid = snowflake()
        owner = owner or self.owner
        guild = FakeGuild(gid, name, owner.id)
        guild.roles[gid] = FakeRole(gid, gid, "@everyone", self.everyone_permissions)
        bot_role = FakeRole(
            snowflake(), gid, self.bot_user.name, self.bot_permissions, position=1, managed=True
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[owner.id] = FakeMember(owner, gid)
        guild.members[self.bot_user.id] = FakeMember(self.bot_user, gid, [bot_role.id])
        self.guilds[gid] = guild
        for position, channel_name in enumerate(channels):
            cid = snowflake()
            guild.channels[cid] = FakeChannel(cid, channel_name, 0, gid, position=position)
        self.gateway.dispatch_guild_create(guild)
        return guild

    def create_channel(self, guild: FakeGuild, name: str, *, topic: str | None = None) -> FakeChannel:
        channel = FakeChannel(
            self.state.snowflake(), name, 0, guild.id, position=len(guild.channels), topic=topic
        )
        guild.channels[channel.id] = channel
        self.gateway.dispatch("CHANNEL_CREATE", channel.payload(), guild_id=guild.id)
        return channel

    def create_role(
        self, guild: FakeGuild, name: str, *, permissions: int | discord.Permissions = 0
    ) -> FakeRole:
        role = FakeRole(
            self.state.snowflake(), guild.id, name, permission_value(permissions), position=len(guild.roles)
        )
        guild.roles[role.id] = role
        self.gateway.dispatch(
            "GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role.payload()}, guild_id=guild.id
        )
        return role

    def add_member(self, guild: FakeGuild, user: FakeUser, *, roles: Iterable[FakeRole] = ()) -> FakeMember:
        """Make ``user`` a member (idempotent; roles are added)."""
        member = guild.members.get(user.id)
        if member is None:
            member = guild.members[user.id] = FakeMember(user, guild.id)
            new = True
        else:
            new = False
        for role in roles:
            if role.id not in member.role_ids:
                member.role_ids.append(role.id)
        event = "GUILD_MEMBER_ADD" if new else "GUILD_MEMBER_UPDATE"
        self.gateway.dispatch(
            event,
            {**member.payload(), "guild_id": str(guild.id)},
            guild_id=guild.id,
            intent=INTENT_GUILD_MEMBERS,
        )
        return member

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between ``user`` and the bot (created on first use)."""
        return self.state.dm_channel(user)

    def guild_of(self, channel: FakeChannel) -> FakeGuild | None:
        return self.state.guild_of(channel)

    def _ensure_member(self, channel: FakeChannel, user: FakeUser) -> None:
        guild = self.guild_of(channel)
        if guild is not None and user.id not in guild.members:
            self.add_member(guild, user)

    # ---- the gateway -----------------------------------------------------------------------------

    def dispatch_raw(self, event: str, data: Any, *, guild_id: int | None = None) -> int:
        """Escape hatch: dispatch any event payload as-is."""
        return self.gateway.dispatch(event, data, guild_id=guild_id)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT on every connection: the client must come back with RESUME."""
        self.gateway.request_reconnect()

    # ---- acting as users -------------------------------------------------------------------------

    async def post_message(
        self,
        author: FakeUser,
        channel: FakeChannel,
        content: str = "",
        *,
        embeds: list[dict[str, Any]] | None = None,
        files: Iterable[tuple[str, bytes]] = (),
        reply_to: FakeMessage | None = None,
    ) -> FakeMessage:
        """A user posts a message (MESSAGE_CREATE). ``<@id>`` in content mentions users (the bot too),
        ``@everyone``/``@here`` counts only if the author may mention everyone, as on Discord."""
        await self.wait_for_ready()
        self._ensure_member(channel, author)
        guild = self.guild_of(channel)
        msg = FakeMessage(self.state.snowflake(), channel, author, content=content, embeds=list(embeds or []))
        for filename, data in files:
            msg.attachments.append(self.state.store_attachment(filename, data))
        msg.mentioned_user_ids = [
            int(u) for u in dict.fromkeys(USER_MENTION_RE.findall(content)) if int(u) in self.users
        ]
        if guild is not None:
            msg.mentioned_role_ids = [
                int(r) for r in dict.fromkeys(ROLE_MENTION_RE.findall(content)) if int(r) in guild.roles
            ]
            may_ping_all = bool(guild.permissions_for(author) & MENTION_EVERYONE)
            msg.mention_everyone = may_ping_all and ("@everyone" in content or "@here" in content)
        if reply_to is not None:
            msg.reference = reference_to(reply_to)
        self.messages[msg.id] = msg
        self.gateway.dispatch_message("MESSAGE_CREATE", msg)
        return msg

    async def invoke_slash(
        self,
        user: FakeUser,
        channel: FakeChannel,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        sync_timeout: float = 5.0,
    ) -> FakeInteraction:
        """A user runs ``/command`` (``"group sub"`` for subcommands) with ``options`` by name: strings,
        numbers, bools, ``FakeUser``/``FakeRole``/``FakeChannel``, or ``(filename, bytes)`` for attachments.
        Uses the id and schema the bot synced; returns at once, before the bot answers."""
        return await self._command_interaction(
            IX_COMMAND, user, channel, command, options or {}, None, sync_timeout
        )

    async def start_autocomplete(
        self,
        user: FakeUser,
        channel: FakeChannel,
        command: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        sync_timeout: float = 5.0,
    ) -> FakeInteraction:
        """The user is typing into option ``focused``; the bot should answer with choices (type 8)."""
        return await self._command_interaction(
            IX_AUTOCOMPLETE, user, channel, command, options, focused, sync_timeout
        )

    async def autocomplete(
        self,
        user: FakeUser,
        channel: FakeChannel,
        command: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """``start_autocomplete`` and wait for the choices (each ``{"name", "value"}``)."""
        ix = await self.start_autocomplete(user, channel, command, options, focused=focused)
        await ix.wait_response(timeout)
        if ix.choices is None:
            raise AssertionError(f"autocomplete answered with callback type {ix.response_type}, not 8")
        return ix.choices

    async def click(
        self,
        message: FakeMessage,
        custom_id: str | None = None,
        *,
        label: str | None = None,
        user: FakeUser | None = None,
        values: list[str] | None = None,
    ) -> FakeInteraction:
        """A user clicks a button (by ``custom_id`` or ``label``) or picks ``values`` in a select on a
        message the bot sent. ``user`` defaults to whoever triggered the interaction that made the message."""
        if custom_id is None:
            if label is None:
                raise ValueError("click() needs a custom_id or a label")
            custom_id = message.button(label)["custom_id"]
        component = message.component(custom_id)
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} on message {message.id} is disabled")
        if user is None:
            if message.interaction is None:
                raise ValueError("click() needs user= for a message not made by an interaction")
            user = message.interaction.user
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if "id" in component:
            data["id"] = component["id"]
        if component["type"] in (3, 5, 6, 7, 8):
            data["values"] = list(values or [])
        elif values:
            raise ValueError("values= only applies to select menus")
        return await self._start_interaction(IX_COMPONENT, user, message.channel, data, message)

    async def submit_modal(
        self,
        ix: FakeInteraction,
        values: Mapping[str, Any] | None = None,
        *,
        user: FakeUser | None = None,
        timeout: float = 5.0,
    ) -> FakeInteraction:
        """Submit the modal the bot answered ``ix`` with, filling text inputs from ``values`` by custom id
        (others keep their pre-filled value). The submitted layout mirrors the modal's."""
        await ix.wait_response(timeout)
        modal = ix.modal
        if modal is None:
            raise AssertionError(
                f"interaction {ix.id} was answered with type {ix.response_type}, not a modal"
            )
        data = modal_submission(modal, values or {})
        return await self._start_interaction(IX_MODAL_SUBMIT, user or ix.user, ix.channel, data, ix.message)

    # ---- building interactions -------------------------------------------------------------------

    async def _command_interaction(
        self,
        itype: int,
        user: FakeUser,
        channel: FakeChannel,
        command: str,
        options: Mapping[str, Any],
        focused: str | None,
        sync_timeout: float,
    ) -> FakeInteraction:
        name, *path = command.strip().lstrip("/").split()
        cmd = await self._synced_command(channel, name, sync_timeout)
        self._ensure_member(channel, user)
        check_may_use(cmd, user, channel, self.guild_of(channel))
        built, resolved = command_options(self.state, cmd, path, options, focused)
        data: dict[str, Any] = {"id": cmd["id"], "name": name, "type": cmd.get("type", 1), "options": built}
        if resolved:
            data["resolved"] = resolved
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return await self._start_interaction(itype, user, channel, data)

    async def _synced_command(self, channel: FakeChannel, name: str, timeout: float) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return self.state.command(channel, name)

        try:
            return await self.wait_for(find, timeout=timeout, what=f"command {name!r} to be synced")
        except TimeoutError:
            synced = {str(scope): sorted(cmds) for scope, cmds in self.commands.items()}
            raise TimeoutError(
                f"command {name!r} was never synced for #{channel.name}; synced: {synced}"
            ) from None

    async def _start_interaction(
        self,
        itype: int,
        user: FakeUser,
        channel: FakeChannel,
        data: dict[str, Any],
        message: FakeMessage | None = None,
    ) -> FakeInteraction:
        await self.wait_for_ready()
        self._ensure_member(channel, user)
        ix = FakeInteraction(
            server=self,
            id=self.state.snowflake(),
            token=f"ix.{secrets.token_urlsafe(32)}",
            type=itype,
            user=user,
            channel=channel,
            data=data,
            message=message,
        )
        ix.payload = interaction_payload(self.state, ix)
        self.interactions[ix.id] = ix
        self.state.interactions_by_token[ix.token] = ix
        ix.created_at = time.monotonic()
        if not self.gateway.dispatch("INTERACTION_CREATE", ix.payload, guild_id=channel.guild_id):
            raise RuntimeError("no ready gateway session to deliver the interaction to")
        return ix
