"""A small Discord-compatible server (REST + gateway) for end-to-end tests of discord.py bots.

The real, unpatched discord.py client runs against it: point ``discord.http.Route.BASE`` at
``server.api_url`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` at ``yarl.URL(server.gateway_url)`` (the bot's
settings do that; ``server.patch_client_urls()`` does it for a bare client). Everything lives on 127.0.0.1,
every wait is bounded, and the server behaves like Discord where bots usually get it wrong: the 3-second
acknowledgement deadline (10062), a second response (40060), message and embed limits (50035), empty
messages (50006), intents (no MESSAGE_CREATE without GUILD_MESSAGES, empty content without
MESSAGE_CONTENT unless the bot is mentioned or in DMs), ``allowed_mentions`` (who would actually be
pinged), ``default_member_permissions`` (who may run a command).

Typical use (pytest-asyncio, ``asyncio_mode=auto``)::

    @pytest.fixture
    async def server():
        async with DiscordServer() as srv:       # on exit: fails the test on unknown routes / server errors
            with srv.patch_client_urls():       # or give the bot srv.api_url / srv.gateway_url
                yield srv

    async def test_ask(server):
        guild = server.create_guild("Test", channels=("general",))   # the bot is a member of every guild
        alice = server.create_user("alice")                           # joins a guild on first use
        async with server.running(make_bot(guild_ready_timeout=0.05)):  # start, wait ready, close on exit
            general = guild.channel("general")
            ix = await server.invoke_slash(alice, general, "ask", {"question": "what is dropout?"})
            msg = await ix.wait_message()               # original response (once filled) or a follow-up
            assert "dropout" in msg.text and not msg.pings_anyone
            click = await server.click(msg, label="Helpful")  # a button on the bot's message
            posted = await server.post_message(alice, general, f"{server.bot_user.mention} hi")
            reply = await server.wait_for_message(general, after=posted)
            latency = reply.created_at - posted.created_at   # monotonic seconds; ix.latency for interactions

Outcomes: ``FakeInteraction`` (``response_type``, ``original``, ``followups``, ``modal``, ``choices``,
``rejected``, ``latency``, ``wait_*``), ``FakeMessage`` (``content``, ``embeds``, ``components``,
``attachments[i].data`` as bytes, ``flags``/``ephemeral``, ``edits``, ``pings_anyone``), ``server.rest_log``
and ``server.calls(method, route)`` (every REST call with its JSON payload), ``server.gateway_log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import mimetypes
import re
import secrets
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import discord
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

log = logging.getLogger(__name__)

T = TypeVar("T")

DISCORD_EPOCH_MS = 1420070400000
API_VERSION = 10
JSON_HEADERS = {"Content-Type": "application/json"}  # exactly this: discord.py compares the header verbatim

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15

# Interaction types and callback types.
IX_COMMAND, IX_COMPONENT, IX_AUTOCOMPLETE, IX_MODAL_SUBMIT = 2, 3, 4, 5
CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE = 4, 5, 6, 7
CB_AUTOCOMPLETE, CB_MODAL = 8, 9

ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
MENTION_EVERYONE = discord.Permissions(mention_everyone=True).value
DEFAULT_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    read_message_history=True,
    use_application_commands=True,
    use_external_emojis=True,
    change_nickname=True,
    create_instant_invite=True,
    connect=True,
    speak=True,
).value
DEFAULT_BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    read_message_history=True,
    use_application_commands=True,
).value

# Discord's limits, as the API enforces them.
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_AUTHOR_NAME = 256
MAX_ACTION_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_BUTTON_LABEL = 80
MAX_CUSTOM_ID = 100
MAX_SELECT_OPTIONS = 25
MAX_FILES = 10
MAX_CHOICES = 25
MAX_CHOICE_NAME = 100
MAX_MODAL_TITLE = 45
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

COMMAND_NAME_RE = re.compile(r"^[-_\w]{1,32}$")
USER_MENTION_RE = re.compile(r"<@!?(\d+)>")
ROLE_MENTION_RE = re.compile(r"<@&(\d+)>")


class DiscordAPIError(Exception):
    """An error the server answers with, in Discord's JSON shape."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def unknown_interaction() -> DiscordAPIError:
    return DiscordAPIError(404, 10062, "Unknown interaction")


def already_acknowledged() -> DiscordAPIError:
    return DiscordAPIError(400, 40060, "Interaction has already been acknowledged.")


def unknown_webhook() -> DiscordAPIError:
    return DiscordAPIError(404, 10015, "Unknown Webhook")


def unknown_message() -> DiscordAPIError:
    return DiscordAPIError(404, 10008, "Unknown Message")


def unknown_channel() -> DiscordAPIError:
    return DiscordAPIError(404, 10003, "Unknown Channel")


def invalid_form(errors: dict[str, Any]) -> DiscordAPIError:
    return DiscordAPIError(400, 50035, "Invalid Form Body", errors)


def _json_response(data: Any, status: int = 200) -> web.Response:
    """aiohttp's json_response adds '; charset=utf-8', which discord.py does not parse as JSON."""
    return web.Response(status=status, body=json.dumps(data).encode(), headers=JSON_HEADERS)


def _iso(snowflake: int) -> str:
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC).isoformat()


def _now_iso() -> str:
    return datetime.now(tz=UTC).isoformat()


def _permission_value(value: int | discord.Permissions) -> int:
    return value.value if isinstance(value, discord.Permissions) else int(value)


# --------------------------------------------------------------------------------------------------
# The simulated world: users, guilds, roles, channels, members.
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FakeUser:
    """A Discord user (a human test user or the bot itself)."""

    id: int
    name: str
    bot: bool = False
    global_name: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeRole:
    """A guild role; its permissions decide member and app permissions in interactions."""

    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": True,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeChannel:
    """A guild text channel (type 0) or a DM channel (type 1, with ``recipient``)."""

    id: int
    name: str
    type: int = 0
    guild_id: int | None = None
    recipient: FakeUser | None = None
    position: int = 0
    topic: str | None = None

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    @property
    def is_dm(self) -> bool:
        return self.type == 1

    def payload(self) -> dict[str, Any]:
        if self.is_dm:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": 1,
                "last_message_id": None,
                "recipients": [self.recipient.payload()],
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "topic": self.topic,
            "nsfw": False,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeMember:
    """A user's membership in a guild."""

    user: FakeUser
    guild_id: int
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=_now_iso)

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.role_ids],
            "nick": self.nick,
            "avatar": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass(eq=False)
class FakeGuild:
    """A guild with its roles, channels and members (the bot is always a member)."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]

    def channel(self, name: str) -> FakeChannel:
        """The channel called ``name`` (tests address channels by name)."""
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise KeyError(
            f"guild {self.name!r} has no channel {name!r}; it has {[c.name for c in self.channels.values()]}"
        )

    def role(self, name: str) -> FakeRole:
        for role in self.roles.values():
            if role.name == name:
                return role
        raise KeyError(f"guild {self.name!r} has no role {name!r}")

    def permissions_for(self, user: FakeUser) -> int:
        """Guild-level permissions as Discord computes them (owner and administrator get everything)."""
        if user.id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members.get(user.id)
        value = self.everyone.permissions
        if member is not None:
            for role_id in member.role_ids:
                value |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def payload(self, *, members: Iterable[FakeMember]) -> dict[str, Any]:
        member_list = [m.payload() for m in members]
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [r.payload() for r in self.roles.values()],
            "joined_at": _now_iso(),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": member_list,
            "channels": [c.payload() for c in self.channels.values()],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


# --------------------------------------------------------------------------------------------------
# What the bot produced: messages, attachments, interactions, REST calls.
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FakeAttachment:
    """A file on a message; ``data`` holds the decoded bytes the bot uploaded."""

    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    description: str | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            data["description"] = self.description
        return data


@dataclass(eq=False)
class FakeMessage:
    """A message in the simulated world, posted by a test user or by the bot (REST or interaction)."""

    id: int
    channel: FakeChannel
    author: FakeUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    source: str = "user"  # "user", "channel" (POST /channels/..), "interaction", "followup"
    allowed_mentions: dict[str, Any] | None = None
    mentioned_user_ids: list[int] = field(default_factory=list)
    mentioned_role_ids: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    reference: dict[str, Any] | None = None
    interaction: FakeInteraction | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    edited_at: str | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    reactions: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.monotonic)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred ("thinking") response that has not been filled in yet."""
        return bool(self.flags & FLAG_LOADING)

    @property
    def embed(self) -> dict[str, Any] | None:
        return self.embeds[0] if self.embeds else None

    @property
    def pings_anyone(self) -> bool:
        """Whether Discord would notify anyone, given content and ``allowed_mentions``."""
        return bool(self.mentioned_user_ids or self.mentioned_role_ids or self.mention_everyone)

    @property
    def text(self) -> str:
        """Content plus every embed's visible text, for assertions that do not care where text lives."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title", ""), embed.get("description", "")]
            for f in embed.get("fields", []):
                parts += [f.get("name", ""), f.get("value", "")]
            parts.append(embed.get("footer", {}).get("text", ""))
            parts.append(embed.get("author", {}).get("name", ""))
        return "\n".join(p for p in parts if p)

    def iter_components(self) -> Iterator[dict[str, Any]]:
        """Every component, depth first (rows, containers, sections and labels are walked into)."""
        return _walk_components(self.components)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [c for c in self.iter_components() if c.get("type") == 2]

    def component(self, custom_id: str) -> dict[str, Any]:
        for component in self.iter_components():
            if component.get("custom_id") == custom_id:
                return component
        ids = [c.get("custom_id") for c in self.iter_components() if c.get("custom_id")]
        raise KeyError(f"message {self.id} has no component {custom_id!r}; it has {ids}")

    def button(self, label: str) -> dict[str, Any]:
        """The button whose label is ``label`` (custom ids are often opaque)."""
        for button in self.buttons:
            if button.get("label") == label:
                return button
        raise KeyError(
            f"message {self.id} has no button {label!r}; it has {[b.get('label') for b in self.buttons]}"
        )

    def payload(self, *, strip_content: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel.id),
            "type": self.type,
            "author": self.author.payload(),
            "content": "" if strip_content else self.content,
            "timestamp": _iso(self.id),
            "edited_timestamp": self.edited_at,
            "tts": False,
            "mention_everyone": self.mention_everyone,
            "mentions": [],
            "mention_roles": [str(r) for r in self.mentioned_role_ids],
            "attachments": [] if strip_content else [a.payload() for a in self.attachments],
            "embeds": [] if strip_content else self.embeds,
            "components": [] if strip_content else self.components,
            "pinned": False,
            "flags": self.flags,
        }
        if self.channel.guild_id is not None:
            data["guild_id"] = str(self.channel.guild_id)
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            data["application_id"] = str(self.application_id)
        if self.reference is not None:
            data["message_reference"] = self.reference
        if self.interaction is not None:
            data["interaction_metadata"] = self.interaction.metadata()
        return data


@dataclass(frozen=True)
class RestCall:
    """One REST request the bot made, as the server saw it (the REST log)."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    json: Any
    files: tuple[tuple[str, bytes], ...]
    status: int
    response: Any
    at: float


@dataclass(frozen=True)
class RejectedCallback:
    """A response the server refused (late, duplicate, invalid), with Discord's error code."""

    status: int
    code: int
    message: str
    at: float
    elapsed: float


@dataclass(eq=False)
class FakeInteraction:
    """An interaction the server dispatched, and everything the bot answered to it."""

    server: DiscordServer = field(repr=False)
    id: int
    token: str
    type: int
    user: FakeUser
    channel: FakeChannel
    data: dict[str, Any]
    message: FakeMessage | None = None  # the message a component or modal interaction came from
    created_at: float = field(default_factory=time.monotonic)
    response_type: int | None = None
    response: dict[str, Any] | None = None
    responded_at: float | None = None
    original: FakeMessage | None = None
    followups: list[FakeMessage] = field(default_factory=list)
    rejected: list[RejectedCallback] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def guild_id(self) -> int | None:
        return self.channel.guild_id

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    @property
    def latency(self) -> float | None:
        """Seconds from dispatch to the accepted response (the user's time to first feedback)."""
        return None if self.responded_at is None else self.responded_at - self.created_at

    @property
    def modal(self) -> dict[str, Any] | None:
        return self.response if self.response_type == CB_MODAL else None

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        if self.response_type != CB_AUTOCOMPLETE or self.response is None:
            return None
        return list(self.response.get("choices", []))

    def metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "user": self.user.payload(),
            "authorizing_integration_owners": _integration_owners(self.channel, self.user),
        }
        if self.original is not None:
            data["original_response_message_id"] = str(self.original.id)
        if self.message is not None:
            data["interacted_message_id"] = str(self.message.id)
        return data

    def messages(self) -> list[FakeMessage]:
        """The visible messages this interaction produced: the original (once filled in), then follow-ups."""
        seen: list[FakeMessage] = []
        candidates = [self.original, *self.followups] if self.original is not None else list(self.followups)
        for msg in candidates:
            if msg is not None and not msg.loading and not msg.deleted and msg not in seen:
                seen.append(msg)
        return seen

    def describe(self) -> str:
        parts = [f"interaction {self.id} type={self.type} response_type={self.response_type}"]
        if self.rejected:
            parts.append(f"rejected={[(r.status, r.code, r.message) for r in self.rejected]}")
        for msg in [self.original, *self.followups]:
            if msg is not None:
                parts.append(f"msg {msg.id} flags={msg.flags} text={msg.text[:120]!r}")
        return "; ".join(parts)

    async def wait_response(self, timeout: float = 5.0) -> FakeInteraction:
        """Wait for the (accepted) initial response."""
        await self.server.wait_for(
            lambda: self.acknowledged, timeout=timeout, what=f"a response to {self.describe()}"
        )
        return self

    async def wait_message(
        self, predicate: Callable[[FakeMessage], bool] | None = None, *, timeout: float = 5.0
    ) -> FakeMessage:
        """Wait for the first visible message (original or follow-up) that satisfies ``predicate``."""

        def find() -> FakeMessage | None:
            return next((m for m in self.messages() if predicate is None or predicate(m)), None)

        return await self.server.wait_for(find, timeout=timeout, what=f"a message for {self.describe()}")

    async def wait_followup(self, index: int = 0, *, timeout: float = 5.0) -> FakeMessage:
        """Wait for follow-up number ``index`` (a follow-up that filled a deferred response counts)."""

        def find() -> FakeMessage | None:
            return self.followups[index] if len(self.followups) > index else None

        return await self.server.wait_for(
            find, timeout=timeout, what=f"follow-up #{index} for {self.describe()}"
        )

    async def wait_rejected(self, code: int | None = None, *, timeout: float = 5.0) -> RejectedCallback:
        """Wait for a refused response (e.g. code 10062 after the deadline, 40060 for a second response)."""

        def find() -> RejectedCallback | None:
            return next((r for r in self.rejected if code is None or r.code == code), None)

        return await self.server.wait_for(
            find, timeout=timeout, what=f"a rejected response for {self.describe()}"
        )


def _walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    stack = list(reversed(components))
    while stack:
        component = stack.pop()
        yield component
        children = list(component.get("components", []))
        for key in ("component", "accessory"):
            if key in component:
                children.append(component[key])
        stack.extend(reversed(children))


def _integration_owners(channel: FakeChannel, user: FakeUser) -> dict[str, str]:
    return {"0": str(channel.guild_id)} if channel.guild_id is not None else {"1": str(user.id)}


# --------------------------------------------------------------------------------------------------
# Validation that mirrors the API's limits.
# --------------------------------------------------------------------------------------------------


def _err(errors: dict[str, Any], path: str, code: str, message: str) -> None:
    node = errors
    for part in path.split("."):
        node = node.setdefault(part, {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


def _check_len(errors: dict[str, Any], path: str, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        _err(errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _validate_embeds(errors: dict[str, Any], embeds: list[dict[str, Any]]) -> None:
    if len(embeds) > MAX_EMBEDS:
        _err(errors, "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        p = f"embeds.{i}"
        _check_len(errors, f"{p}.title", embed.get("title"), MAX_EMBED_TITLE)
        _check_len(errors, f"{p}.description", embed.get("description"), MAX_EMBED_DESCRIPTION)
        _check_len(errors, f"{p}.footer.text", embed.get("footer", {}).get("text"), MAX_FOOTER)
        _check_len(errors, f"{p}.author.name", embed.get("author", {}).get("name"), MAX_AUTHOR_NAME)
        fields = embed.get("fields", [])
        if len(fields) > MAX_EMBED_FIELDS:
            _err(
                errors,
                f"{p}.fields",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_EMBED_FIELDS} or fewer in length.",
            )
        for j, f in enumerate(fields):
            if not f.get("name") or not f.get("value"):
                _err(errors, f"{p}.fields.{j}", "BASE_TYPE_REQUIRED", "This field is required")
            _check_len(errors, f"{p}.fields.{j}.name", f.get("name"), MAX_FIELD_NAME)
            _check_len(errors, f"{p}.fields.{j}.value", f.get("value"), MAX_FIELD_VALUE)
            total += len(f.get("name") or "") + len(f.get("value") or "")
        total += sum(
            len(v or "")
            for v in (
                embed.get("title"),
                embed.get("description"),
                embed.get("footer", {}).get("text"),
                embed.get("author", {}).get("name"),
            )
        )
    if total > MAX_EMBED_TOTAL:
        _err(errors, "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _validate_components(errors: dict[str, Any], components: list[dict[str, Any]], flags: int) -> None:
    if flags & FLAG_COMPONENTS_V2:
        return  # layout components have their own rules; only the leaf checks below would apply
    if len(components) > MAX_ACTION_ROWS:
        _err(errors, "components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length.")
    for i, row in enumerate(components):
        items = row.get("components", [])
        if row.get("type") != 1:
            _err(
                errors,
                f"components.{i}.type",
                "UNION_TYPE_CHOICES",
                "Top-level components must be action rows",
            )
        if len(items) > MAX_ROW_ITEMS:
            _err(
                errors, f"components.{i}.components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
            )
        custom_ids = set()
        for j, item in enumerate(items):
            p = f"components.{i}.components.{j}"
            _check_len(errors, f"{p}.label", item.get("label"), MAX_BUTTON_LABEL)
            _check_len(errors, f"{p}.custom_id", item.get("custom_id"), MAX_CUSTOM_ID)
            if item.get("type") == 3 and len(item.get("options", [])) > MAX_SELECT_OPTIONS:
                _err(errors, f"{p}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            cid = item.get("custom_id")
            if cid is not None and cid in custom_ids:
                _err(
                    errors,
                    f"{p}.custom_id",
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id is duplicated",
                )
            custom_ids.add(cid)


def _validate_message(payload: dict[str, Any], n_files: int, *, creating: bool) -> None:
    """Raise the error Discord would for an over-long or empty message."""
    errors: dict[str, Any] = {}
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        _err(errors, "content", "BASE_TYPE_STRING", "Must be a string.")
    _check_len(errors, "content", content, MAX_CONTENT)
    _validate_embeds(errors, payload.get("embeds") or [])
    _validate_components(errors, payload.get("components") or [], int(payload.get("flags") or 0))
    if n_files > MAX_FILES:
        _err(errors, "files", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
    if errors:
        raise invalid_form(errors)
    if creating and not (
        content
        or payload.get("embeds")
        or payload.get("components")
        or n_files
        or payload.get("sticker_ids")
        or payload.get("poll")
    ):
        raise DiscordAPIError(400, 50006, "Cannot send an empty message")


def _validate_command(payload: dict[str, Any], index: int, errors: dict[str, Any]) -> None:
    p = str(index)
    name = payload.get("name", "")
    ctype = payload.get("type", 1)
    if ctype == 1 and (not COMMAND_NAME_RE.match(name) or name != name.lower()):
        _err(errors, f"{p}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")
    if ctype == 1 and not 1 <= len(payload.get("description", "")) <= 100:
        _err(errors, f"{p}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    _validate_options(payload.get("options", []), f"{p}.options", errors)


def _validate_options(options: list[dict[str, Any]], path: str, errors: dict[str, Any]) -> None:
    if len(options) > 25:
        _err(errors, path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen_optional = False
    for i, option in enumerate(options):
        p = f"{path}.{i}"
        name = option.get("name", "")
        if not COMMAND_NAME_RE.match(name) or name != name.lower():
            _err(errors, f"{p}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Option name is invalid: {name!r}")
        if not 1 <= len(option.get("description", "")) <= 100:
            _err(errors, f"{p}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if option.get("type") in (1, 2):
            _validate_options(option.get("options", []), f"{p}.options", errors)
            continue
        if option.get("required"):
            if seen_optional:
                _err(
                    errors,
                    p,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must come first",
                )
        else:
            seen_optional = True
        if len(option.get("choices", [])) > MAX_CHOICES:
            _err(errors, f"{p}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")


def _validate_choices(choices: list[dict[str, Any]]) -> None:
    errors: dict[str, Any] = {}
    if len(choices) > MAX_CHOICES:
        _err(errors, "data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for i, choice in enumerate(choices):
        name = choice.get("name", "")
        if not 1 <= len(name) <= MAX_CHOICE_NAME:
            _err(
                errors,
                f"data.choices.{i}.name",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        value = choice.get("value")
        if isinstance(value, str) and len(value) > MAX_CHOICE_NAME:
            _err(errors, f"data.choices.{i}.value", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    if errors:
        raise invalid_form(errors)


def _validate_modal(data: dict[str, Any]) -> None:
    errors: dict[str, Any] = {}
    title = data.get("title") or ""
    if not 1 <= len(title) <= MAX_MODAL_TITLE:
        _err(errors, "data.title", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    if not data.get("custom_id"):
        _err(errors, "data.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
    if not data.get("components"):
        _err(errors, "data.components", "BASE_TYPE_REQUIRED", "This field is required")
    if errors:
        raise invalid_form(errors)


# --------------------------------------------------------------------------------------------------
# The gateway.
# --------------------------------------------------------------------------------------------------


class _Connection:
    """One websocket; frames are queued and written in order by a single writer task."""

    def __init__(self, ws: web.WebSocketResponse, query: Mapping[str, str]) -> None:
        self.ws = ws
        self.query = dict(query)
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.writer = asyncio.create_task(self._write(), name="fake-discord-gateway-writer")
        self.session: _Session | None = None
        self.heartbeats = 0

    async def _write(self) -> None:
        while (frame := await self.queue.get()) is not None:
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return

    def send(self, frame: str) -> None:
        self.queue.put_nowait(frame)

    def send_op(self, op: int, data: Any) -> None:
        self.send(json.dumps({"op": op, "d": data, "s": None, "t": None}))

    async def close(self, code: int, message: str = "") -> None:
        """Flush queued frames, then close with ``code``."""
        self.queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer, 2.0)
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message.encode())


class _Session:
    """A gateway session (survives a dropped connection so the client can RESUME)."""

    def __init__(self, session_id: str, intents: int, shard: tuple[int, int]) -> None:
        self.session_id = session_id
        self.intents = intents
        self.shard = shard
        self.seq = 0
        self.frames: list[tuple[int, str]] = []  # sent dispatches, replayed on RESUME
        self.connection: _Connection | None = None
        self.ready = False
        self.invalid = False

    def dispatch(self, event: str, data: Any) -> None:
        self.seq += 1
        frame = json.dumps({"op": 0, "t": event, "s": self.seq, "d": data})
        self.frames.append((self.seq, frame))
        if len(self.frames) > 5000:
            del self.frames[:1000]
        if self.connection is not None:
            self.connection.send(frame)

    def handles_guild(self, guild_id: int | None) -> bool:
        shard_id, shard_count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % shard_count == shard_id


class _Snowflakes:
    """Strictly increasing snowflakes whose timestamps are now (so ``created_at`` is sensible)."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last


# --------------------------------------------------------------------------------------------------
# The server.
# --------------------------------------------------------------------------------------------------


_Handler = Callable[..., Any]


class DiscordServer:
    """A Discord-compatible REST + gateway server on 127.0.0.1 for end-to-end bot tests.

    Build the world (``create_guild``, ``create_user``, ``add_member``, ``create_role``), run the bot
    (``running(bot)``), act as users (``post_message``, ``invoke_slash``, ``autocomplete``, ``click``,
    ``submit_modal``) and wait, bounded, for outcomes (``wait_for_message``, ``FakeInteraction.wait_*``,
    ``wait_for``). ``rest_log`` records every REST call, ``unknown_routes`` and ``internal_errors`` show
    what the server could not serve.
    """

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
        self.strict = strict
        self.token = token or f"test.{secrets.token_urlsafe(24)}"
        self.ack_deadline = ack_deadline
        self.heartbeat_interval = heartbeat_interval
        self.privileged_intents = privileged_intents
        self.shard_count = shard_count
        self.bot_permissions = _permission_value(bot_permissions)
        self.everyone_permissions = _permission_value(everyone_permissions)
        self._snowflake = _Snowflakes()

        self.application_id = self._snowflake()
        self.bot_user = FakeUser(self.application_id, bot_name, bot=True)
        self.owner = FakeUser(self._snowflake(), "app-owner")
        self.users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user, self.owner.id: self.owner}
        self.guilds: dict[int, FakeGuild] = {}
        self.dm_channels: dict[int, FakeChannel] = {}  # by recipient user id
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self.commands: dict[
            int | None, dict[str, dict[str, Any]]
        ] = {}  # guild id (None: global) -> name -> cmd
        self.rest_log: list[RestCall] = []
        self.unknown_routes: list[str] = []
        self.internal_errors: list[str] = []
        self.gateway_log: list[dict[str, Any]] = []  # frames the client sent (heartbeats excluded)
        self.presence: dict[str, Any] | None = None
        self._attachments: dict[int, FakeAttachment] = {}
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._waiters: set[asyncio.Future[None]] = set()
        self._routes = self._build_routes()
        self._runner: web.AppRunner | None = None
        self.port = 0

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
                "(add them to tests/discord_server.py, or pass strict=False)"
            )

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_get("/cdn/attachments/{id}/{filename}", self._handle_cdn)
        app.router.add_route("*", "/api/v{version}/{tail:.*}", self._handle_api)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("fake Discord server on %s", self.base_url)

    async def close(self) -> None:
        """Close gateway connections (1001, which a client treats as resumable) and stop serving."""
        for conn in list(self._connections):
            await conn.close(1001, "server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """What ``discord.http.Route.BASE`` must be."""
        return f"{self.base_url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be (as a ``yarl.URL``)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

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

    def _notify(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

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
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.add(fut)
            try:
                await asyncio.wait({fut}, timeout=min(remaining, 0.05))
            finally:
                self._waiters.discard(fut)

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
        await self.wait_for(
            lambda: any(s.ready and not s.invalid for s in self._sessions.values()),
            timeout=timeout,
            what="a gateway session to be ready",
        )

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
        user = FakeUser(self._snowflake(), name, bot=bot, global_name=global_name)
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
        gid = self._snowflake()
        owner = owner or self.owner
        guild = FakeGuild(gid, name, owner.id)
        guild.roles[gid] = FakeRole(gid, gid, "@everyone", self.everyone_permissions)
        bot_role = FakeRole(
            self._snowflake(), gid, self.bot_user.name, self.bot_permissions, position=1, managed=True
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[owner.id] = FakeMember(owner, gid)
        guild.members[self.bot_user.id] = FakeMember(self.bot_user, gid, [bot_role.id])
        self.guilds[gid] = guild
        for position, channel_name in enumerate(channels):
            cid = self._snowflake()
            guild.channels[cid] = FakeChannel(cid, channel_name, 0, gid, position=position)
        self._dispatch_guild_create(guild)
        return guild

    def create_channel(self, guild: FakeGuild, name: str, *, topic: str | None = None) -> FakeChannel:
        channel = FakeChannel(self._snowflake(), name, 0, guild.id, position=len(guild.channels), topic=topic)
        guild.channels[channel.id] = channel
        self._dispatch("CHANNEL_CREATE", channel.payload(), guild_id=guild.id)
        return channel

    def create_role(
        self, guild: FakeGuild, name: str, *, permissions: int | discord.Permissions = 0
    ) -> FakeRole:
        role = FakeRole(
            self._snowflake(), guild.id, name, _permission_value(permissions), position=len(guild.roles)
        )
        guild.roles[role.id] = role
        self._dispatch(
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
        self._dispatch(
            event,
            {**member.payload(), "guild_id": str(guild.id)},
            guild_id=guild.id,
            intent=INTENT_GUILD_MEMBERS,
        )
        return member

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between ``user`` and the bot (created on first use)."""
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = FakeChannel(self._snowflake(), f"dm-{user.name}", 1, None, recipient=user)
            self.dm_channels[user.id] = channel
        return channel

    def guild_of(self, channel: FakeChannel) -> FakeGuild | None:
        return None if channel.guild_id is None else self.guilds[channel.guild_id]

    def _channel(self, channel_id: int) -> FakeChannel:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.channels[channel_id]
        for channel in self.dm_channels.values():
            if channel.id == channel_id:
                return channel
        raise unknown_channel()

    def _ensure_member(self, channel: FakeChannel, user: FakeUser) -> None:
        guild = self.guild_of(channel)
        if guild is not None and user.id not in guild.members:
            self.add_member(guild, user)

    # ---- gateway dispatch ------------------------------------------------------------------------

    def _live_sessions(self) -> list[_Session]:
        return [s for s in self._sessions.values() if s.ready and not s.invalid]

    def _dispatch(self, event: str, data: Any, *, guild_id: int | None = None, intent: int = 0) -> int:
        """Send a dispatch to every ready session that would receive it; returns how many did."""
        sent = 0
        for session in self._live_sessions():
            if not session.handles_guild(guild_id) or (intent and not session.intents & intent):
                continue
            session.dispatch(event, data)
            sent += 1
        self._notify()
        return sent

    def dispatch_raw(self, event: str, data: Any, *, guild_id: int | None = None) -> int:
        """Escape hatch: dispatch any event payload as-is."""
        return self._dispatch(event, data, guild_id=guild_id)

    def _dispatch_guild_create(self, guild: FakeGuild) -> None:
        for session in self._live_sessions():
            if session.handles_guild(guild.id):
                session.dispatch("GUILD_CREATE", self._guild_create_payload(guild, session))
        self._notify()

    def _guild_create_payload(self, guild: FakeGuild, session: _Session) -> dict[str, Any]:
        if session.intents & INTENT_GUILD_MEMBERS:
            members: Iterable[FakeMember] = guild.members.values()
        else:  # without the members intent Discord sends only the bot's own member
            members = [guild.members[self.bot_user.id]]
        return guild.payload(members=members)

    def _dispatch_message(self, event: str, msg: FakeMessage) -> None:
        if msg.ephemeral:
            return  # ephemeral messages never reach the gateway
        intent = INTENT_DIRECT_MESSAGES if msg.channel.is_dm else INTENT_GUILD_MESSAGES
        for session in self._live_sessions():
            if not session.handles_guild(msg.channel.guild_id) or not session.intents & intent:
                continue
            strip = not (
                session.intents & INTENT_MESSAGE_CONTENT
                or msg.channel.is_dm
                or msg.author is self.bot_user
                or self.bot_user.id in msg.mentioned_user_ids
            )
            data = msg.payload(strip_content=strip)
            data["mentions"] = [self._mention_payload(msg.channel, uid) for uid in msg.mentioned_user_ids]
            guild = self.guild_of(msg.channel)
            if guild is not None and msg.author.id in guild.members and msg.webhook_id is None:
                data["member"] = guild.members[msg.author.id].payload(with_user=False)
            session.dispatch(event, data)
        self._notify()

    def _mention_payload(self, channel: FakeChannel, user_id: int) -> dict[str, Any]:
        user = self.users[user_id]
        data = user.payload()
        guild = self.guild_of(channel)
        if guild is not None and user_id in guild.members:
            data["member"] = guild.members[user_id].payload(with_user=False)
        return data

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT on every connection: the client must come back with RESUME."""
        for conn in list(self._connections):
            conn.send_op(7, None)

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
        msg = FakeMessage(self._snowflake(), channel, author, content=content, embeds=list(embeds or []))
        for filename, data in files:
            msg.attachments.append(self._store_attachment(filename, data))
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
            msg.reference = self._reference(reply_to)
        self.messages[msg.id] = msg
        self._dispatch_message("MESSAGE_CREATE", msg)
        return msg

    def _reference(self, target: FakeMessage) -> dict[str, Any]:
        ref = {"type": 0, "message_id": str(target.id), "channel_id": str(target.channel.id)}
        if target.channel.guild_id is not None:
            ref["guild_id"] = str(target.channel.guild_id)
        return ref

    def _command(self, channel: FakeChannel, name: str) -> dict[str, Any] | None:
        if channel.guild_id is not None and name in self.commands.get(channel.guild_id, {}):
            return self.commands[channel.guild_id][name]
        return self.commands.get(None, {}).get(name)

    async def _synced_command(self, channel: FakeChannel, name: str, timeout: float) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return self._command(channel, name)

        try:
            return await self.wait_for(find, timeout=timeout, what=f"command {name!r} to be synced")
        except TimeoutError:
            synced = {str(scope): sorted(cmds) for scope, cmds in self.commands.items()}
            raise TimeoutError(
                f"command {name!r} was never synced for #{channel.name}; synced: {synced}"
            ) from None

    def _interaction_payload(self, ix: FakeInteraction) -> dict[str, Any]:
        channel = ix.channel
        guild = self.guild_of(channel)
        payload: dict[str, Any] = {
            "id": str(ix.id),
            "application_id": str(self.application_id),
            "type": ix.type,
            "token": ix.token,
            "version": 1,
            "channel_id": str(channel.id),
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": _integration_owners(channel, ix.user),
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "data": ix.data,
        }
        if guild is not None:
            member_perms = guild.permissions_for(ix.user)
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                context=0,
                member={**guild.members[ix.user.id].payload(), "permissions": str(member_perms)},
                app_permissions=str(guild.permissions_for(self.bot_user)),
                channel={**channel.payload(), "permissions": str(member_perms)},
            )
        else:
            payload.update(
                context=1,
                user=ix.user.payload(),
                app_permissions=str(self.bot_permissions),
                channel=channel.payload(),
            )
        if ix.message is not None:
            payload["message"] = ix.message.payload()
        return payload

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
            id=self._snowflake(),
            token=f"ix.{secrets.token_urlsafe(32)}",
            type=itype,
            user=user,
            channel=channel,
            data=data,
            message=message,
        )
        ix.payload = self._interaction_payload(ix)
        self.interactions[ix.id] = ix
        self._interactions_by_token[ix.token] = ix
        ix.created_at = time.monotonic()
        if not self._dispatch("INTERACTION_CREATE", ix.payload, guild_id=channel.guild_id):
            raise RuntimeError("no ready gateway session to deliver the interaction to")
        return ix

    def _check_may_use(self, cmd: dict[str, Any], user: FakeUser, channel: FakeChannel) -> None:
        """Discord never delivers a command the user cannot see; fail the test the same way."""
        guild = self.guild_of(channel)
        if guild is None:
            contexts = cmd.get("contexts")
            if cmd.get("dm_permission") is False or (contexts is not None and 1 not in contexts):
                raise PermissionError(f"/{cmd['name']} is not available in DMs")
            return
        self._ensure_member(channel, user)
        perms = guild.permissions_for(user)
        required = cmd.get("default_member_permissions")
        if required is not None and int(required) & perms != int(required) and not perms & ADMINISTRATOR:
            raise PermissionError(
                f"{user.name} lacks default_member_permissions={required} for /{cmd['name']}"
            )
        if not perms & discord.Permissions(use_application_commands=True).value:
            raise PermissionError(f"{user.name} may not use application commands in #{channel.name}")

    def _command_options(
        self, command: dict[str, Any], path: list[str], options: Mapping[str, Any], focused: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Turn ``{"name": value}`` into Discord's typed option list (plus ``resolved``), following the
        synced schema so a test cannot invoke a command the bot did not declare."""
        schema = command.get("options", [])
        resolved: dict[str, Any] = {}
        for name in path:
            sub = next((o for o in schema if o.get("name") == name and o.get("type") in (1, 2)), None)
            if sub is None:
                raise ValueError(f"/{command['name']} has no subcommand {name!r}")
            schema = sub.get("options", [])
        known = {o["name"]: o for o in schema}
        for name in options:
            if name not in known:
                raise ValueError(f"/{command['name']} has no option {name!r}; it has {sorted(known)}")
        for opt in schema:
            if opt.get("required") and opt["name"] not in options and focused is None:
                raise ValueError(f"/{command['name']} needs option {opt['name']!r}")
        built = [
            self._option_value(known[name], value, resolved, focused == name)
            for name, value in options.items()
        ]
        for name in reversed(path):
            built = [{"name": name, "type": 1 if name == path[-1] else 2, "options": built}]
        return built, resolved

    def _option_value(
        self, schema: dict[str, Any], value: Any, resolved: dict[str, Any], focused: bool
    ) -> dict[str, Any]:
        otype = schema["type"]
        out: dict[str, Any] = {"name": schema["name"], "type": otype}
        if focused:
            out.update(value=str(value), focused=True)
            return out
        if otype == 3:
            out["value"] = str(value)
        elif otype == 4:
            out["value"] = int(value)
        elif otype == 10:
            out["value"] = float(value)
        elif otype == 5:
            out["value"] = bool(value)
        elif otype in (6, 9) and isinstance(value, FakeUser):
            out["value"] = str(value.id)
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            for guild in self.guilds.values():
                if value.id in guild.members:
                    members = resolved.setdefault("members", {})
                    members[str(value.id)] = {
                        **guild.members[value.id].payload(with_user=False),
                        "permissions": str(guild.permissions_for(value)),
                    }
                    break
        elif otype in (8, 9) and isinstance(value, FakeRole):
            out["value"] = str(value.id)
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
        elif otype == 7 and isinstance(value, FakeChannel):
            out["value"] = str(value.id)
            resolved.setdefault("channels", {})[str(value.id)] = {
                **value.payload(),
                "permissions": str(ALL_PERMISSIONS),
            }
        elif otype == 11 and isinstance(value, tuple):
            attachment = self._store_attachment(*value)
            out["value"] = str(attachment.id)
            resolved.setdefault("attachments", {})[str(attachment.id)] = attachment.payload()
        else:
            raise ValueError(f"option {schema['name']!r} (type {otype}) cannot take {value!r}")
        choices = schema.get("choices")
        if choices and out["value"] not in [c["value"] for c in choices]:
            raise ValueError(f"option {schema['name']!r} must be one of {[c['value'] for c in choices]}")
        return out

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
        self._check_may_use(cmd, user, channel)
        built, resolved = self._command_options(cmd, path, options, focused)
        data: dict[str, Any] = {"id": cmd["id"], "name": name, "type": cmd.get("type", 1), "options": built}
        if resolved:
            data["resolved"] = resolved
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return await self._start_interaction(itype, user, channel, data)

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
        values = dict(values or {})
        inputs = [c["custom_id"] for c in _walk_components(modal.get("components", [])) if c.get("custom_id")]
        unknown = set(values) - set(inputs)
        if unknown:
            raise ValueError(
                f"modal {modal.get('custom_id')!r} has no inputs {sorted(unknown)}; it has {inputs}"
            )

        def mirror(component: dict[str, Any]) -> dict[str, Any] | None:
            ctype = component.get("type")
            out: dict[str, Any] = {"type": ctype}
            if "id" in component:
                out["id"] = component["id"]
            if ctype == 1:
                out["components"] = [
                    m for c in component.get("components", []) if (m := mirror(c)) is not None
                ]
                return out
            if ctype == 18:
                inner = mirror(component["component"])
                if inner is not None:
                    out["component"] = inner
                return out
            custom_id = component.get("custom_id")
            if custom_id is None:
                return out if ctype == 10 else None
            out["custom_id"] = custom_id
            given = values.get(custom_id)
            if ctype == 4:
                value = component.get("value") or "" if given is None else str(given)
                if component.get("required", True) and not value:
                    raise ValueError(f"text input {custom_id!r} is required")
                out["value"] = value
            elif ctype in (21, 23):
                out["value"] = given
            else:
                out["values"] = list(given or [])
            return out

        components = [m for c in modal.get("components", []) if (m := mirror(c)) is not None]
        data = {"custom_id": modal["custom_id"], "components": components}
        return await self._start_interaction(IX_MODAL_SUBMIT, user or ix.user, ix.channel, data, ix.message)

    # ---- attachments -----------------------------------------------------------------------------

    def _store_attachment(self, filename: str, data: bytes, description: str | None = None) -> FakeAttachment:
        aid = self._snowflake()
        content_type = mimetypes.guess_type(filename)[0]
        url = f"{self.base_url}/cdn/attachments/{aid}/{filename}"
        attachment = FakeAttachment(aid, filename, bytes(data), content_type, url, description)
        self._attachments[aid] = attachment
        return attachment

    async def _handle_cdn(self, request: web.Request) -> web.StreamResponse:
        attachment = self._attachments.get(int(request.match_info["id"]))
        if attachment is None:
            return web.Response(status=404)
        return web.Response(
            body=attachment.data, content_type=attachment.content_type or "application/octet-stream"
        )

    # ---- gateway handler -------------------------------------------------------------------------

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        # discord.py asks for compress=zlib-stream (or zstd-stream); it decompresses only binary frames, and
        # text frames are parsed as plain JSON, so the server always sends text.
        conn = _Connection(ws, request.query)
        self._connections.add(conn)
        conn.send_op(
            10, {"heartbeat_interval": int(self.heartbeat_interval * 1000), "_trace": ["fake-discord"]}
        )
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                    await self._on_frame(conn, frame)
                except Exception:
                    self.internal_errors.append(traceback.format_exc())
                    log.exception("gateway frame failed")
                    await conn.close(4000, "server error")
                    break
        finally:
            self._connections.discard(conn)
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            conn.queue.put_nowait(None)
            self._notify()
        return ws

    async def _on_frame(self, conn: _Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            conn.heartbeats += 1
            conn.send_op(11, None)
            return
        self.gateway_log.append(
            frame if op not in (2, 6) else {**frame, "d": {**data, "token": "<redacted>"}}
        )
        if op == 2:
            await self._identify(conn, data)
        elif op == 6:
            await self._resume(conn, data)
        elif op == 3:
            self.presence = data
        elif op == 8:
            self._request_members(conn, data)
        elif op == 4:
            pass  # voice state: not simulated
        else:
            log.warning("unhandled gateway op %s", op)
        self._notify()

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await conn.close(4004, "Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await conn.close(4014, "Disallowed intent(s).")
            return
        shard = tuple(data.get("shard") or (0, 1))
        if shard[1] != self.shard_count or not 0 <= shard[0] < shard[1]:
            await conn.close(4010, "Invalid shard.")
            return
        session = _Session(secrets.token_hex(16), intents, (int(shard[0]), int(shard[1])))
        session.connection = conn
        conn.session = session
        self._sessions[session.session_id] = session
        guilds = [g for g in self.guilds.values() if session.handles_guild(g.id)]
        session.dispatch(
            "READY",
            {
                "v": API_VERSION,
                "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None},
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                "session_id": session.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.gateway_url,
                "shard": list(session.shard),
                "application": {"id": str(self.application_id), "flags": self._application_flags()},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": [],
                "user_settings": {},
                "_trace": ["fake-discord"],
            },
        )
        for guild in guilds:
            session.dispatch("GUILD_CREATE", self._guild_create_payload(guild, session))
        session.ready = True

    def _application_flags(self) -> int:
        flags = 0
        if self.privileged_intents & INTENT_GUILD_PRESENCES:
            flags |= 1 << 12
        if self.privileged_intents & INTENT_GUILD_MEMBERS:
            flags |= 1 << 14
        if self.privileged_intents & INTENT_MESSAGE_CONTENT:
            flags |= 1 << 18
        return flags

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        session = self._sessions.get(data.get("session_id", ""))
        if data.get("token") != self.token:
            await conn.close(4004, "Authentication failed.")
            return
        if session is None or session.invalid:
            conn.send_op(9, False)
            return
        if session.connection is not None and session.connection is not conn:
            old = session.connection
            session.connection = None
            await old.close(4000, "session resumed elsewhere")
        session.connection = conn
        conn.session = session
        last = int(data.get("seq") or 0)
        for seq, frame in session.frames:
            if seq > last:
                conn.send(frame)
        session.dispatch("RESUMED", {"_trace": ["fake-discord"]})

    def _request_members(self, conn: _Connection, data: dict[str, Any]) -> None:
        session = conn.session
        guild = self.guilds.get(int(data.get("guild_id", 0)))
        if session is None or guild is None:
            return
        wanted = {int(u) for u in data.get("user_ids") or []}
        query = (data.get("query") or "").lower()
        members = [
            m.payload()
            for m in guild.members.values()
            if (not wanted or m.user.id in wanted) and m.user.name.lower().startswith(query)
        ]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk = {"guild_id": str(guild.id), "members": members, "chunk_index": 0, "chunk_count": 1}
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # ---- REST ------------------------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], str, _Handler]]:
        table: list[tuple[str, str, _Handler]] = [
            ("GET", r"/users/@me", self._get_me),
            ("GET", r"/users/(?P<user_id>\d+)", self._get_user),
            ("POST", r"/users/@me/channels", self._create_dm),
            ("GET", r"/oauth2/applications/@me", self._app_info),
            ("GET", r"/applications/@me", self._app_info),
            ("GET", r"/gateway", self._get_gateway),
            ("GET", r"/gateway/bot", self._get_gateway_bot),
            ("GET", r"/applications/(?P<app_id>\d+)/commands", self._list_commands),
            ("PUT", r"/applications/(?P<app_id>\d+)/commands", self._put_commands),
            ("POST", r"/applications/(?P<app_id>\d+)/commands", self._post_command),
            ("DELETE", r"/applications/(?P<app_id>\d+)/commands/(?P<command_id>\d+)", self._delete_command),
            ("GET", r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands", self._list_commands),
            ("PUT", r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands", self._put_commands),
            ("POST", r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands", self._post_command),
            (
                "DELETE",
                r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands/(?P<command_id>\d+)",
                self._delete_command,
            ),
            ("POST", r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback", self._callback),
            ("POST", r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)", self._followup),
            (
                "GET",
                r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._wh_get,
            ),
            (
                "PATCH",
                r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._wh_edit,
            ),
            (
                "DELETE",
                r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._wh_delete,
            ),
            ("GET", r"/channels/(?P<channel_id>\d+)", self._get_channel),
            ("GET", r"/channels/(?P<channel_id>\d+)/messages", self._history),
            ("POST", r"/channels/(?P<channel_id>\d+)/messages", self._create_message),
            ("GET", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)", self._get_message),
            ("PATCH", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)", self._edit_message),
            ("DELETE", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)", self._delete_message),
            ("POST", r"/channels/(?P<channel_id>\d+)/typing", self._typing),
            (
                "PUT",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)/reactions/(?P<emoji>[^/]+)/@me",
                self._add_reaction,
            ),
            (
                "DELETE",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)/reactions/(?P<emoji>[^/]+)/@me",
                self._remove_reaction,
            ),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._get_guild),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._get_guild_channels),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._get_member),
        ]
        return [(method, re.compile(pattern + "$"), pattern, handler) for method, pattern, handler in table]

    _ROUTE_TEMPLATE_RE = re.compile(r"\(\?P<\w+>[^)]*\)")

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        started = time.monotonic()
        payload: Any = None
        uploads: list[tuple[int, str, bytes, str | None]] = []
        route_name = path
        try:
            payload, uploads = await self._read_body(request)
            for route_method, pattern, template, handler in self._routes:
                match = pattern.match(path)
                if match and route_method == method:
                    route_name = self._ROUTE_TEMPLATE_RE.sub("{}", template)
                    if not self._authorized(request, route_name):
                        raise DiscordAPIError(401, 0, "401: Unauthorized")
                    result = await handler(request, payload, uploads, **match.groupdict())
                    status, body = (204, None) if result is None else (200, result)
                    break
            else:
                self.unknown_routes.append(f"{method} {path}")
                log.warning("fake Discord server: unknown route %s %s", method, path)
                status, body = 404, {"message": "404: Not Found", "code": 0}
        except DiscordAPIError as exc:
            status, body = exc.status, exc.body()
        except Exception:
            # Answer 400, not 5xx: discord.py retries 5xx with back-off, hiding the failure for ~16 s.
            self.internal_errors.append(f"{method} {path}\n{traceback.format_exc()}")
            log.exception("fake Discord server failed on %s %s", method, path)
            status, body = (
                400,
                {"message": "fake Discord server error (see server.internal_errors)", "code": 0},
            )
        self.rest_log.append(
            RestCall(
                method=method,
                path=path,
                route=route_name,
                query=dict(request.query),
                json=payload,
                files=tuple((name, data) for _, name, data, _ in uploads),
                status=status,
                response=body,
                at=started,
            )
        )
        self._notify()
        if body is None:
            return web.Response(status=status)
        return _json_response(body, status)

    def _authorized(self, request: web.Request, route: str) -> bool:
        if route.startswith(("/interactions/", "/webhooks/")):
            return True  # authorized by the interaction token in the URL
        return request.headers.get("Authorization") == f"Bot {self.token}"

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[tuple[int, str, bytes, str | None]]]:
        """JSON body, or multipart ``payload_json`` + ``files[n]`` (how discord.py uploads files)."""
        if not request.can_read_body:
            return None, []
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            uploads: list[tuple[int, str, bytes, str | None]] = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                raw = bytes(await part.read())
                if part.name == "payload_json":
                    payload = json.loads(raw)
                elif part.name and part.name.startswith("files["):
                    uploads.append(
                        (int(part.name[6:-1]), part.filename or "file", raw, part.headers.get("Content-Type"))
                    )
            return payload, uploads
        raw = await request.read()
        return (json.loads(raw) if raw else None), []

    # ---- REST: identity and gateway ---------------------------------------------------------------

    async def _get_me(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        return {
            **self.bot_user.payload(),
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
        }

    async def _get_user(self, request: web.Request, payload: Any, uploads: list[Any], user_id: str) -> Any:
        user = self.users.get(int(user_id))
        if user is None:
            raise DiscordAPIError(404, 10013, "Unknown User")
        return user.payload()

    async def _app_info(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        return {
            "id": str(self.application_id),
            "name": self.bot_user.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.owner.payload(),
            "team": None,
            "flags": self._application_flags(),
            "bot": self.bot_user.payload(),
            "interactions_endpoint_url": None,
            "rpc_origins": [],
            "tags": [],
            "redirect_uris": [],
            "approximate_guild_count": len(self.guilds),
        }

    async def _get_gateway(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        return {
            "url": self.gateway_url,
            "shards": self.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000,
                "reset_after": 0,
                "max_concurrency": 16,
            },
        }

    async def _create_dm(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        user = self.users.get(int(payload["recipient_id"]))
        if user is None:
            raise DiscordAPIError(404, 10013, "Unknown User")
        return self.dm_channel(user).payload()

    # ---- REST: application commands ---------------------------------------------------------------

    def _check_app(self, app_id: str) -> None:
        if int(app_id) != self.application_id:
            raise DiscordAPIError(404, 10002, "Unknown Application")

    def _store_command(self, data: dict[str, Any], guild_id: int | None) -> dict[str, Any]:
        scope = self.commands.setdefault(guild_id, {})
        existing = scope.get(data["name"])
        cmd = {
            "type": 1,
            "default_member_permissions": None,
            "nsfw": False,
            "options": [],
            **data,
            "id": existing["id"] if existing else str(self._snowflake()),
            "application_id": str(self.application_id),
            "version": str(self._snowflake()),
        }
        if guild_id is not None:
            cmd["guild_id"] = str(guild_id)
        scope[cmd["name"]] = cmd
        return cmd

    async def _list_commands(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        return list(self.commands.get(int(guild_id) if guild_id else None, {}).values())

    async def _put_commands(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, guild_id: str | None = None
    ) -> Any:
        """Bulk overwrite (what ``CommandTree.sync`` does): ids are kept for commands that keep their name."""
        self._check_app(app_id)
        errors: dict[str, Any] = {}
        for i, data in enumerate(payload or []):
            _validate_command(data, i, errors)
        if errors:
            raise invalid_form(errors)
        scope_id = int(guild_id) if guild_id else None
        if scope_id is not None and scope_id not in self.guilds:
            raise DiscordAPIError(404, 10004, "Unknown Guild")
        old = self.commands.get(scope_id, {})
        self.commands[scope_id] = {}
        stored = []
        for data in payload or []:
            if data["name"] in old:
                self.commands[scope_id][data["name"]] = old[data["name"]]
            stored.append(self._store_command(data, scope_id))
        return stored

    async def _post_command(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        errors: dict[str, Any] = {}
        _validate_command(payload, 0, errors)
        if errors:
            raise invalid_form(errors)
        return self._store_command(payload, int(guild_id) if guild_id else None)

    async def _delete_command(
        self,
        request: web.Request,
        payload: Any,
        uploads: list[Any],
        app_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> Any:
        self._check_app(app_id)
        scope = self.commands.get(int(guild_id) if guild_id else None, {})
        for name, cmd in list(scope.items()):
            if cmd["id"] == command_id:
                del scope[name]
                return None
        raise DiscordAPIError(404, 10063, "Unknown application command")

    # ---- REST: messages ---------------------------------------------------------------------------

    def _resolve_mentions(self, msg: FakeMessage, guild: FakeGuild | None) -> None:
        """Who Discord would ping: mentions in content, filtered by ``allowed_mentions``."""
        allowed = msg.allowed_mentions
        parse = set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
        allowed_users = {int(u) for u in (allowed or {}).get("users", [])}
        allowed_roles = {int(r) for r in (allowed or {}).get("roles", [])}
        content = msg.content
        users = [int(u) for u in dict.fromkeys(USER_MENTION_RE.findall(content)) if int(u) in self.users]
        msg.mentioned_user_ids = [u for u in users if "users" in parse or u in allowed_users]
        if msg.reference is not None and (allowed is None or allowed.get("replied_user")):
            target = self.messages.get(int(msg.reference["message_id"]))
            if target is not None and target.author.id not in msg.mentioned_user_ids:
                msg.mentioned_user_ids.append(target.author.id)
        if guild is not None:
            roles = [int(r) for r in dict.fromkeys(ROLE_MENTION_RE.findall(content)) if int(r) in guild.roles]
            msg.mentioned_role_ids = [r for r in roles if "roles" in parse or r in allowed_roles]
        msg.mention_everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)

    def _apply_payload(
        self,
        msg: FakeMessage,
        payload: dict[str, Any] | None,
        uploads: list[tuple[int, str, bytes, str | None]],
        *,
        editing: bool,
    ) -> None:
        """Apply a create/edit payload: content, embeds, components, flags, attachments, mentions."""
        payload = payload or {}
        if "content" in payload:
            msg.content = payload["content"] or ""
        if "embeds" in payload:
            msg.embeds = [{"type": "rich", **e} for e in payload["embeds"] or []]
        if "components" in payload:
            msg.components = list(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            keep = msg.flags & (FLAG_EPHEMERAL | FLAG_COMPONENTS_V2) if editing else 0
            msg.flags = keep | (int(payload["flags"]) & ~FLAG_LOADING)
        if "allowed_mentions" in payload:
            msg.allowed_mentions = payload["allowed_mentions"]
        if "message_reference" in payload and payload["message_reference"] and not editing:
            ref = payload["message_reference"]
            target = self.messages.get(int(ref["message_id"]))
            if target is None:
                if ref.get("fail_if_not_exists", True):
                    raise invalid_form(
                        {
                            "message_reference": {
                                "_errors": [
                                    {
                                        "code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                                        "message": "Unknown message",
                                    }
                                ]
                            }
                        }
                    )
            else:
                msg.reference = self._reference(target)
        by_index = {index: (name, data, ctype) for index, name, data, ctype in uploads}
        if "attachments" in payload and payload["attachments"] is not None:
            kept: list[FakeAttachment] = []
            existing = {a.id: a for a in msg.attachments}
            for item in payload["attachments"]:
                aid = int(item["id"])
                if aid in existing:
                    kept.append(existing[aid])
                elif aid in by_index:
                    name, data, _ = by_index.pop(aid)
                    kept.append(
                        self._store_attachment(item.get("filename") or name, data, item.get("description"))
                    )
            msg.attachments = kept
        for name, data, _ in by_index.values():  # files with no attachments entry are appended
            msg.attachments.append(self._store_attachment(name, data))

    def _new_bot_message(
        self,
        channel: FakeChannel,
        payload: dict[str, Any] | None,
        uploads: list[tuple[int, str, bytes, str | None]],
        *,
        source: str,
        interaction: FakeInteraction | None = None,
        flags: int = 0,
    ) -> FakeMessage:
        payload = payload or {}
        _validate_message(payload, len(uploads), creating=True)
        msg = FakeMessage(self._snowflake(), channel, self.bot_user, source=source)
        self._apply_payload(msg, payload, uploads, editing=False)
        msg.flags |= flags
        if interaction is not None:
            msg.interaction = interaction
            msg.webhook_id = self.application_id
            msg.application_id = self.application_id
            msg.type = 20 if interaction.type in (IX_COMMAND, IX_AUTOCOMPLETE) else 0
        self._resolve_mentions(msg, self.guild_of(channel))
        self.messages[msg.id] = msg
        self._dispatch_message("MESSAGE_CREATE", msg)
        return msg

    def _edit_bot_message(
        self,
        msg: FakeMessage,
        payload: dict[str, Any] | None,
        uploads: list[tuple[int, str, bytes, str | None]],
    ) -> FakeMessage:
        if msg.deleted:
            raise unknown_message()
        if msg.author is not self.bot_user:
            raise DiscordAPIError(403, 50005, "Cannot edit a message authored by another user")
        payload = payload or {}
        _validate_message(payload, len(uploads), creating=False)
        was_loading = msg.loading
        self._apply_payload(msg, payload, uploads, editing=True)
        msg.flags &= ~FLAG_LOADING
        msg.edits.append(payload)
        msg.edited_at = None if was_loading else _now_iso()
        self._resolve_mentions(msg, self.guild_of(msg.channel))
        self._dispatch_message("MESSAGE_UPDATE", msg)
        return msg

    def _channel_message(self, channel_id: str, message_id: str) -> FakeMessage:
        channel = self._channel(int(channel_id))
        msg = self.messages.get(int(message_id))
        if msg is None or msg.channel is not channel or msg.deleted or msg.ephemeral:
            raise unknown_message()
        return msg

    def _check_can_send(self, channel: FakeChannel, *, files: bool = False, embeds: bool = False) -> None:
        guild = self.guild_of(channel)
        if guild is None:
            return
        perms = guild.permissions_for(self.bot_user)
        needed = discord.Permissions(view_channel=True, send_messages=True)
        if files:
            needed.attach_files = True
        if embeds:
            needed.embed_links = True
        if perms & needed.value != needed.value:
            raise DiscordAPIError(403, 50013, "Missing Permissions")

    async def _get_channel(
        self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str
    ) -> Any:
        return self._channel(int(channel_id)).payload()

    async def _history(self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str) -> Any:
        channel = self._channel(int(channel_id))
        limit = int(request.query.get("limit", 50))
        before = int(request.query.get("before", 0)) or None
        after = int(request.query.get("after", 0))
        msgs = [
            m
            for m in self.messages.values()
            if m.channel is channel
            and not m.deleted
            and not m.ephemeral
            and (before is None or m.id < before)
            and m.id > after
        ]
        return [m.payload() for m in reversed(msgs)][:limit]

    async def _create_message(
        self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str
    ) -> Any:
        channel = self._channel(int(channel_id))
        self._check_can_send(channel, files=bool(uploads), embeds=bool((payload or {}).get("embeds")))
        return self._new_bot_message(channel, payload, uploads, source="channel").payload()

    async def _get_message(
        self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str, message_id: str
    ) -> Any:
        return self._channel_message(channel_id, message_id).payload()

    async def _edit_message(
        self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str, message_id: str
    ) -> Any:
        return self._edit_bot_message(
            self._channel_message(channel_id, message_id), payload, uploads
        ).payload()

    async def _delete_message(
        self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str, message_id: str
    ) -> Any:
        msg = self._channel_message(channel_id, message_id)
        self._delete(msg)
        return None

    def _delete(self, msg: FakeMessage) -> None:
        msg.deleted = True
        if not msg.ephemeral:
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel.id)}
            if msg.channel.guild_id is not None:
                data["guild_id"] = str(msg.channel.guild_id)
            intent = INTENT_DIRECT_MESSAGES if msg.channel.is_dm else INTENT_GUILD_MESSAGES
            self._dispatch("MESSAGE_DELETE", data, guild_id=msg.channel.guild_id, intent=intent)

    async def _typing(self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str) -> Any:
        self._channel(int(channel_id))
        return None

    async def _add_reaction(
        self,
        request: web.Request,
        payload: Any,
        uploads: list[Any],
        channel_id: str,
        message_id: str,
        emoji: str,
    ) -> Any:
        self._channel_message(channel_id, message_id).reactions.append(emoji)
        return None

    async def _remove_reaction(
        self,
        request: web.Request,
        payload: Any,
        uploads: list[Any],
        channel_id: str,
        message_id: str,
        emoji: str,
    ) -> Any:
        msg = self._channel_message(channel_id, message_id)
        if emoji in msg.reactions:
            msg.reactions.remove(emoji)
        return None

    def _guild(self, guild_id: str) -> FakeGuild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise DiscordAPIError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, request: web.Request, payload: Any, uploads: list[Any], guild_id: str) -> Any:
        guild = self._guild(guild_id)
        data = guild.payload(members=[])
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at", "large"):
            data.pop(key, None)
        return data

    async def _get_guild_channels(
        self, request: web.Request, payload: Any, uploads: list[Any], guild_id: str
    ) -> Any:
        return [c.payload() for c in self._guild(guild_id).channels.values()]

    async def _get_member(
        self, request: web.Request, payload: Any, uploads: list[Any], guild_id: str, user_id: str
    ) -> Any:
        member = self._guild(guild_id).members.get(int(user_id))
        if member is None:
            raise DiscordAPIError(404, 10007, "Unknown Member")
        return member.payload()

    # ---- REST: interactions -----------------------------------------------------------------------

    def _reject(self, ix: FakeInteraction, error: DiscordAPIError) -> DiscordAPIError:
        now = time.monotonic()
        ix.rejected.append(
            RejectedCallback(error.status, error.code, error.message, now, now - ix.created_at)
        )
        return error

    async def _callback(
        self, request: web.Request, payload: Any, uploads: list[Any], interaction_id: str, token: str
    ) -> Any:
        """The initial response: enforces the acknowledgement deadline and a single response."""
        ix = self.interactions.get(int(interaction_id))
        if ix is None or ix.token != token:
            raise unknown_interaction()
        if ix.acknowledged:
            raise self._reject(ix, already_acknowledged())
        if time.monotonic() - ix.created_at > self.ack_deadline:
            raise self._reject(ix, unknown_interaction())
        payload = payload or {}
        ctype = int(payload.get("type", 0))
        data = payload.get("data") or {}
        message: FakeMessage | None = None
        try:
            if ctype == CB_MESSAGE:
                if ix.type == IX_AUTOCOMPLETE:
                    raise DiscordAPIError(400, 50035, "Invalid interaction response type for autocomplete")
                message = self._new_bot_message(
                    ix.channel, data, uploads, source="interaction", interaction=ix
                )
                ix.original = message
            elif ctype == CB_DEFERRED_MESSAGE:
                flags = (int(data.get("flags") or 0) & FLAG_EPHEMERAL) | FLAG_LOADING
                message = FakeMessage(
                    self._snowflake(),
                    ix.channel,
                    self.bot_user,
                    flags=flags,
                    source="interaction",
                    interaction=ix,
                    webhook_id=self.application_id,
                    application_id=self.application_id,
                    type=20 if ix.type == IX_COMMAND else 0,
                )
                self.messages[message.id] = message
                ix.original = message
                self._dispatch_message("MESSAGE_CREATE", message)
            elif ctype in (CB_DEFERRED_UPDATE, CB_UPDATE):
                if ix.message is None:
                    raise DiscordAPIError(400, 40004, "Interaction has no message to update")
                if ctype == CB_UPDATE:
                    _validate_message(data, len(uploads), creating=False)
                    self._edit_bot_message(ix.message, data, uploads)
                message = ix.original = ix.message  # @original is now the message the component is on
            elif ctype == CB_AUTOCOMPLETE:
                if ix.type != IX_AUTOCOMPLETE:
                    raise DiscordAPIError(
                        400, 50035, "Autocomplete responses are only valid for autocomplete"
                    )
                _validate_choices(data.get("choices", []))
            elif ctype == CB_MODAL:
                if ix.type in (IX_AUTOCOMPLETE, IX_MODAL_SUBMIT):
                    raise DiscordAPIError(400, 50035, "A modal cannot answer this interaction")
                _validate_modal(data)
            else:
                raise DiscordAPIError(400, 50035, f"Invalid interaction response type {ctype}")
        except DiscordAPIError as exc:
            raise self._reject(ix, exc) from None
        ix.response_type = ctype
        ix.response = data
        ix.responded_at = time.monotonic()
        self._notify()
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return None
        callback: dict[str, Any] = {
            "interaction": {
                "id": str(ix.id),
                "type": ix.type,
                "response_message_loading": ctype == CB_DEFERRED_MESSAGE,
                "response_message_ephemeral": bool(message is not None and message.ephemeral),
            },
            "resource": {"type": ctype},
        }
        if message is not None and ctype in (CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_UPDATE):
            callback["interaction"]["response_message_id"] = str(message.id)
            callback["resource"]["message"] = message.payload()
        return callback

    def _webhook_interaction(self, app_id: str, token: str) -> FakeInteraction:
        ix = self._interactions_by_token.get(token)
        if int(app_id) != self.application_id or ix is None:
            raise unknown_webhook()
        if not ix.acknowledged or ix.response_type in (CB_AUTOCOMPLETE,):
            raise unknown_webhook()  # Discord: no follow-ups before the interaction is acknowledged
        return ix

    def _webhook_message(self, ix: FakeInteraction, message_id: str) -> FakeMessage:
        if message_id == "@original":
            msg = ix.original if ix.response_type in (CB_MESSAGE, CB_DEFERRED_MESSAGE) else ix.message
        else:
            msg = self.messages.get(int(message_id))
            if (
                msg is not None
                and msg is not ix.original
                and msg not in ix.followups
                and msg is not ix.message
            ):
                msg = None
        if msg is None or msg.deleted:
            raise unknown_message()
        return msg

    async def _followup(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, token: str
    ) -> Any:
        ix = self._webhook_interaction(app_id, token)
        original = ix.original
        if original is not None and original.loading and ix.response_type == CB_DEFERRED_MESSAGE:
            # Discord fills the deferred "thinking" message with the first follow-up (its ephemerality stays).
            payload = dict(payload or {})
            if payload.get("flags") is not None:
                payload["flags"] = int(payload["flags"]) & ~FLAG_EPHEMERAL
            _validate_message(payload, len(uploads), creating=True)
            msg = self._edit_bot_message(original, payload, uploads)
        else:
            msg = self._new_bot_message(
                ix.channel,
                payload,
                uploads,
                source="followup",
                interaction=ix,
            )
        ix.followups.append(msg)
        self._notify()
        if request.query.get("wait", "").lower() in ("1", "true"):
            return msg.payload()
        return None

    async def _wh_get(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, token: str, message_id: str
    ) -> Any:
        ix = self._webhook_interaction(app_id, token)
        return self._webhook_message(ix, message_id).payload()

    async def _wh_edit(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, token: str, message_id: str
    ) -> Any:
        ix = self._webhook_interaction(app_id, token)
        return self._edit_bot_message(self._webhook_message(ix, message_id), payload, uploads).payload()

    async def _wh_delete(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, token: str, message_id: str
    ) -> Any:
        ix = self._webhook_interaction(app_id, token)
        self._delete(self._webhook_message(ix, message_id))
        return None
