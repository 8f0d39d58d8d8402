"""The bot's messages as the API makes them: a create or edit payload checked and applied (content, embeds,
components, flags, attachments, replies), who would be pinged, permissions to send, and the gateway events
each change causes."""

from __future__ import annotations

from typing import Any

import discord

from .constants import (
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    IX_AUTOCOMPLETE,
    IX_COMMAND,
    ROLE_MENTION_RE,
    USER_MENTION_RE,
)
from .errors import DiscordAPIError, invalid_form, unknown_message
from .gateway import Gateway
from .records import FakeAttachment, FakeInteraction, FakeMessage, reference_to
from .state import State
from .validation import Validator
from .world import FakeChannel, FakeGuild, now_iso

Upload = tuple[int, str, bytes, str | None]  # files[n] of a multipart request: n, filename, data, type


class BotMessages:
    """Creates, edits and deletes the bot's messages (REST and interaction responses alike)."""

    def __init__(self, state: State, gateway: Gateway, validate: Validator) -> None:
        self.state = state
        self.gateway = gateway
        self.validate = validate

    def create(
        self,
        channel: FakeChannel,
        payload: dict[str, Any] | None,
        uploads: list[Upload],
        *,
        source: str,
        interaction: FakeInteraction | None = None,
        flags: int = 0,
    ) -> FakeMessage:
        state = self.state
        payload = payload or {}
        self.validate.message(payload, len(uploads), creating=True)
        msg = FakeMessage(state.snowflake(), channel, state.bot_user, source=source)
        self.apply_payload(msg, payload, uploads, editing=False)
        msg.flags |= flags
        if interaction is not None:
            msg.interaction = interaction
            msg.webhook_id = state.application_id
            msg.application_id = state.application_id
            msg.type = 20 if interaction.type in (IX_COMMAND, IX_AUTOCOMPLETE) else 0
        self.resolve_mentions(msg, state.guild_of(channel))
        state.messages[msg.id] = msg
        self.gateway.dispatch_message("MESSAGE_CREATE", msg)
        return msg

    def defer(self, ix: FakeInteraction, flags: int) -> FakeMessage:
        """The "thinking" message a deferred response shows until it is filled in (``ix.original``)."""
        state = self.state
        message = FakeMessage(
            state.snowflake(),
            ix.channel,
            state.bot_user,
            flags=flags,
            source="interaction",
            interaction=ix,
            webhook_id=state.application_id,
            application_id=state.application_id,
            type=20 if ix.type == IX_COMMAND else 0,
        )
        state.messages[message.id] = message
        ix.original = message
        self.gateway.dispatch_message("MESSAGE_CREATE", message)
        return message

    def edit(self, msg: FakeMessage, payload: dict[str, Any] | None, uploads: list[Upload]) -> FakeMessage:
        if msg.deleted:
            raise unknown_message()
        if msg.author is not self.state.bot_user:
            raise DiscordAPIError(403, 50005, "Cannot edit a message authored by another user")
        payload = payload or {}
        self.validate.message(payload, len(uploads), creating=False)
        was_loading = msg.loading
        self.apply_payload(msg, payload, uploads, editing=True)
        msg.flags &= ~FLAG_LOADING
        msg.edits.append(payload)
        msg.edited_at = None if was_loading else now_iso()
        self.resolve_mentions(msg, self.state.guild_of(msg.channel))
        self.gateway.dispatch_message("MESSAGE_UPDATE", msg)
        return msg

    def delete(self, msg: FakeMessage) -> None:
        msg.deleted = True
        if not msg.ephemeral:
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel.id)}
            if msg.channel.guild_id is not None:
                data["guild_id"] = str(msg.channel.guild_id)
            intent = INTENT_DIRECT_MESSAGES if msg.channel.is_dm else INTENT_GUILD_MESSAGES
            self.gateway.dispatch("MESSAGE_DELETE", data, guild_id=msg.channel.guild_id, intent=intent)

    def in_channel(self, channel_id: str, message_id: str) -> FakeMessage:
        """A message the bot can see in a channel (Unknown Message for deleted and ephemeral ones)."""
        channel = self.state.channel(int(channel_id))
        msg = self.state.messages.get(int(message_id))
        if msg is None or msg.channel is not channel or msg.deleted or msg.ephemeral:
            raise unknown_message()
        return msg

    def check_can_send(self, channel: FakeChannel, *, files: bool = False, embeds: bool = False) -> None:
        guild = self.state.guild_of(channel)
        if guild is None:
            return
        perms = guild.permissions_for(self.state.bot_user)
        needed = discord.Permissions(view_channel=True, send_messages=True)
        if files:
            needed.attach_files = True
        if embeds:
            needed.embed_links = True
        if perms & needed.value != needed.value:
            raise DiscordAPIError(403, 50013, "Missing Permissions")

    def resolve_mentions(self, msg: FakeMessage, guild: FakeGuild | None) -> None:
        """Who Discord would ping: mentions in content, filtered by ``allowed_mentions``."""
        allowed = msg.allowed_mentions
        parse = set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
        allowed_users = {int(u) for u in (allowed or {}).get("users", [])}
        allowed_roles = {int(r) for r in (allowed or {}).get("roles", [])}
        content = msg.content
        users = [
            int(u) for u in dict.fromkeys(USER_MENTION_RE.findall(content)) if int(u) in self.state.users
        ]
        msg.mentioned_user_ids = [u for u in users if "users" in parse or u in allowed_users]
        if msg.reference is not None and (allowed is None or allowed.get("replied_user")):
            target = self.state.messages.get(int(msg.reference["message_id"]))
            if target is not None and target.author.id not in msg.mentioned_user_ids:
                msg.mentioned_user_ids.append(target.author.id)
        if guild is not None:
            roles = [int(r) for r in dict.fromkeys(ROLE_MENTION_RE.findall(content)) if int(r) in guild.roles]
            msg.mentioned_role_ids = [r for r in roles if "roles" in parse or r in allowed_roles]
        msg.mention_everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)

    def apply_payload(
        self,
        msg: FakeMessage,
        payload: dict[str, Any] | None,
        uploads: list[Upload],
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
            target = self.state.messages.get(int(ref["message_id"]))
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
                msg.reference = reference_to(target)
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
                        self.state.store_attachment(
                            item.get("filename") or name, data, item.get("description")
                        )
                    )
            msg.attachments = kept
        for name, data, _ in by_index.values():  # files with no attachments entry are appended
            msg.attachments.append(self.state.store_attachment(name, data))
