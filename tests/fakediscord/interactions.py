"""Users' actions as Discord's client turns them into interactions: who may see a command, slash-command
options typed and resolved by the synced schema, a submitted modal mirroring the modal's layout, and the
INTERACTION_CREATE payload (member, permissions, channel)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import discord

from .constants import ADMINISTRATOR, ALL_PERMISSIONS, ATTACHMENT_SIZE_LIMIT
from .records import FakeInteraction, integration_owners, walk_components
from .state import State
from .world import FakeChannel, FakeGuild, FakeRole, FakeUser


def check_may_use(cmd: dict[str, Any], user: FakeUser, channel: FakeChannel, guild: FakeGuild | None) -> None:
    """Discord never delivers a command the user cannot see; fail the test the same way."""
    if guild is None:
        contexts = cmd.get("contexts")
        if cmd.get("dm_permission") is False or (contexts is not None and 1 not in contexts):
            raise PermissionError(f"/{cmd['name']} is not available in DMs")
        return
    perms = guild.permissions_for(user)
    required = cmd.get("default_member_permissions")
    if required is not None and int(required) & perms != int(required) and not perms & ADMINISTRATOR:
        raise PermissionError(f"{user.name} lacks default_member_permissions={required} for /{cmd['name']}")
    if not perms & discord.Permissions(use_application_commands=True).value:
        raise PermissionError(f"{user.name} may not use application commands in #{channel.name}")


def command_options(
    state: State, command: dict[str, Any], path: list[str], options: Mapping[str, Any], focused: str | None
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
        _option_value(state, known[name], value, resolved, focused == name) for name, value in options.items()
    ]
    for name in reversed(path):
        built = [{"name": name, "type": 1 if name == path[-1] else 2, "options": built}]
    return built, resolved


def _option_value(
    state: State, schema: dict[str, Any], value: Any, resolved: dict[str, Any], focused: bool
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
        for guild in state.guilds.values():
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
        attachment = state.store_attachment(*value)
        out["value"] = str(attachment.id)
        resolved.setdefault("attachments", {})[str(attachment.id)] = attachment.payload()
    else:
        raise ValueError(f"option {schema['name']!r} (type {otype}) cannot take {value!r}")
    choices = schema.get("choices")
    if choices and out["value"] not in [c["value"] for c in choices]:
        raise ValueError(f"option {schema['name']!r} must be one of {[c['value'] for c in choices]}")
    return out


def interaction_payload(state: State, ix: FakeInteraction) -> dict[str, Any]:
    channel = ix.channel
    guild = state.guild_of(channel)
    payload: dict[str, Any] = {
        "id": str(ix.id),
        "application_id": str(state.application_id),
        "type": ix.type,
        "token": ix.token,
        "version": 1,
        "channel_id": str(channel.id),
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": integration_owners(channel, ix.user),
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
            app_permissions=str(guild.permissions_for(state.bot_user)),
            channel={**channel.payload(), "permissions": str(member_perms)},
        )
    else:
        payload.update(
            context=1,
            user=ix.user.payload(),
            app_permissions=str(state.config.bot_permissions),
            channel=channel.payload(),
        )
    if ix.message is not None:
        payload["message"] = ix.message.payload()
    return payload


def modal_submission(modal: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The data of a submitted ``modal``: its layout mirrored, text inputs filled from ``values`` by custom
    id (others keep their pre-filled value)."""
    values = dict(values)
    inputs = [c["custom_id"] for c in walk_components(modal.get("components", [])) if c.get("custom_id")]
    unknown = set(values) - set(inputs)
    if unknown:
        raise ValueError(f"modal {modal.get('custom_id')!r} has no inputs {sorted(unknown)}; it has {inputs}")

    def mirror(component: dict[str, Any]) -> dict[str, Any] | None:
        ctype = component.get("type")
        out: dict[str, Any] = {"type": ctype}
        if "id" in component:
            out["id"] = component["id"]
        if ctype == 1:
            out["components"] = [m for c in component.get("components", []) if (m := mirror(c)) is not None]
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
    return {"custom_id": modal["custom_id"], "components": components}
