"""What happened in the simulated world: messages and their attachments, interactions and everything the bot
answered to them, REST calls and refused responses."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .constants import CB_AUTOCOMPLETE, CB_MODAL, DISCORD_EPOCH_MS, FLAG_EPHEMERAL, FLAG_LOADING
from .world import FakeChannel, FakeUser

if TYPE_CHECKING:
    from .driver import DiscordServer


def snowflake_iso(snowflake: int) -> str:
    """The creation time a snowflake encodes, as Discord writes timestamps."""
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC).isoformat()


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
        return walk_components(self.components)

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
            "timestamp": snowflake_iso(self.id),
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
            "authorizing_integration_owners": integration_owners(self.channel, self.user),
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


def walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component, depth first (rows, containers, sections and labels are walked into)."""
    stack = list(reversed(components))
    while stack:
        component = stack.pop()
        yield component
        children = list(component.get("components", []))
        for key in ("component", "accessory"):
            if key in component:
                children.append(component[key])
        stack.extend(reversed(children))


def integration_owners(channel: FakeChannel, user: FakeUser) -> dict[str, str]:
    """``authorizing_integration_owners``: installed in the guild, or for the user in a DM."""
    return {"0": str(channel.guild_id)} if channel.guild_id is not None else {"1": str(user.id)}


def reference_to(target: FakeMessage) -> dict[str, Any]:
    """A ``message_reference`` (a reply) to ``target``."""
    ref = {"type": 0, "message_id": str(target.id), "channel_id": str(target.channel.id)}
    if target.channel.guild_id is not None:
        ref["guild_id"] = str(target.channel.guild_id)
    return ref
