"""The REST API under ``/api/v10`` and the attachment CDN: the route table, request bodies (JSON or multipart
with files), authorization, the REST log, and one handler per route (users, application commands, channels
and messages, guilds, interaction responses and their webhooks)."""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
from collections.abc import Callable
from typing import Any

from aiohttp import BodyPartReader, web

from .constants import (
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    CB_MESSAGE,
    CB_MODAL,
    CB_UPDATE,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    IX_AUTOCOMPLETE,
    IX_MODAL_SUBMIT,
    JSON_HEADERS,
)
from .errors import (
    DiscordAPIError,
    already_acknowledged,
    unknown_interaction,
    unknown_message,
    unknown_webhook,
)
from .messages import BotMessages, Upload
from .records import FakeInteraction, FakeMessage, RejectedCallback, RestCall
from .state import ServerConfig, State
from .validation import Validator

log = logging.getLogger(__name__)

_Handler = Callable[..., Any]


def _json_response(data: Any, status: int = 200) -> web.Response:
    """aiohttp's json_response adds '; charset=utf-8', which discord.py does not parse as JSON."""
    return web.Response(status=status, body=json.dumps(data).encode(), headers=JSON_HEADERS)


class RestRoutes:
    """Serves the REST routes discord.py calls; records each call in ``state.rest_log``.

    A route the table lacks answers 404 and is recorded in ``state.unknown_routes`` (the server fails the
    test on exit); a handler that crashes answers 400 (not 5xx, which discord.py retries for ~16 s) and is
    recorded in ``state.internal_errors``.
    """

    _ROUTE_TEMPLATE_RE = re.compile(r"\(\?P<\w+>[^)]*\)")

    def __init__(
        self, config: ServerConfig, state: State, messages: BotMessages, validate: Validator
    ) -> None:
        self.config = config
        self.state = state
        self.messages = messages
        self.validate = validate
        self._routes = self._build_routes()

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

    # ---- serving ---------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        started = time.monotonic()
        payload: Any = None
        uploads: list[Upload] = []
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
                self.state.unknown_routes.append(f"{method} {path}")
                log.warning("fake Discord server: unknown route %s %s", method, path)
                status, body = 404, {"message": "404: Not Found", "code": 0}
        except DiscordAPIError as exc:
            status, body = exc.status, exc.body()
        except Exception:
            # Answer 400, not 5xx: discord.py retries 5xx with back-off, hiding the failure for ~16 s.
            self.state.internal_errors.append(f"{method} {path}\n{traceback.format_exc()}")
            log.exception("fake Discord server failed on %s %s", method, path)
            status, body = (
                400,
                {"message": "fake Discord server error (see server.internal_errors)", "code": 0},
            )
        self.state.rest_log.append(
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
        self.state.notify()
        if body is None:
            return web.Response(status=status)
        return _json_response(body, status)

    async def handle_cdn(self, request: web.Request) -> web.StreamResponse:
        attachment = self.state.attachments.get(int(request.match_info["id"]))
        if attachment is None:
            return web.Response(status=404)
        return web.Response(
            body=attachment.data, content_type=attachment.content_type or "application/octet-stream"
        )

    def _authorized(self, request: web.Request, route: str) -> bool:
        if route.startswith(("/interactions/", "/webhooks/")):
            return True  # authorized by the interaction token in the URL
        return request.headers.get("Authorization") == f"Bot {self.config.token}"

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
        """JSON body, or multipart ``payload_json`` + ``files[n]`` (how discord.py uploads files)."""
        if not request.can_read_body:
            return None, []
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            uploads: list[Upload] = []
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

    # ---- identity and gateway --------------------------------------------------------------------

    async def _get_me(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        return {
            **self.state.bot_user.payload(),
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
        }

    async def _get_user(self, request: web.Request, payload: Any, uploads: list[Any], user_id: str) -> Any:
        user = self.state.users.get(int(user_id))
        if user is None:
            raise DiscordAPIError(404, 10013, "Unknown User")
        return user.payload()

    async def _app_info(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        state = self.state
        return {
            "id": str(state.application_id),
            "name": state.bot_user.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": state.owner.payload(),
            "team": None,
            "flags": self.config.application_flags,
            "bot": state.bot_user.payload(),
            "interactions_endpoint_url": None,
            "rpc_origins": [],
            "tags": [],
            "redirect_uris": [],
            "approximate_guild_count": len(state.guilds),
        }

    async def _get_gateway(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        return {"url": self.config.gateway_url}

    async def _get_gateway_bot(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        return {
            "url": self.config.gateway_url,
            "shards": self.config.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000,
                "reset_after": 0,
                "max_concurrency": 16,
            },
        }

    async def _create_dm(self, request: web.Request, payload: Any, uploads: list[Any]) -> Any:
        user = self.state.users.get(int(payload["recipient_id"]))
        if user is None:
            raise DiscordAPIError(404, 10013, "Unknown User")
        return self.state.dm_channel(user).payload()

    # ---- application commands --------------------------------------------------------------------

    def _check_app(self, app_id: str) -> None:
        if int(app_id) != self.state.application_id:
            raise DiscordAPIError(404, 10002, "Unknown Application")

    def _store_command(self, data: dict[str, Any], guild_id: int | None) -> dict[str, Any]:
        state = self.state
        scope = state.commands.setdefault(guild_id, {})
        existing = scope.get(data["name"])
        cmd = {
            "type": 1,
            "default_member_permissions": None,
            "nsfw": False,
            "options": [],
            **data,
            "id": existing["id"] if existing else str(state.snowflake()),
            "application_id": str(state.application_id),
            "version": str(state.snowflake()),
        }
        if guild_id is not None:
            cmd["guild_id"] = str(guild_id)
        scope[cmd["name"]] = cmd
        return cmd

    async def _list_commands(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        return list(self.state.commands.get(int(guild_id) if guild_id else None, {}).values())

    async def _put_commands(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, guild_id: str | None = None
    ) -> Any:
        """Bulk overwrite (what ``CommandTree.sync`` does): ids are kept for commands that keep their name."""
        self._check_app(app_id)
        self.validate.commands(payload or [])
        commands = self.state.commands
        scope_id = int(guild_id) if guild_id else None
        if scope_id is not None and scope_id not in self.state.guilds:
            raise DiscordAPIError(404, 10004, "Unknown Guild")
        old = commands.get(scope_id, {})
        commands[scope_id] = {}
        stored = []
        for data in payload or []:
            if data["name"] in old:
                commands[scope_id][data["name"]] = old[data["name"]]
            stored.append(self._store_command(data, scope_id))
        return stored

    async def _post_command(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        self.validate.commands([payload])
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
        scope = self.state.commands.get(int(guild_id) if guild_id else None, {})
        for name, cmd in list(scope.items()):
            if cmd["id"] == command_id:
                del scope[name]
                return None
        raise DiscordAPIError(404, 10063, "Unknown application command")

    # ---- channels and messages -------------------------------------------------------------------

    async def _get_channel(
        self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str
    ) -> Any:
        return self.state.channel(int(channel_id)).payload()

    async def _history(self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str) -> Any:
        channel = self.state.channel(int(channel_id))
        limit = int(request.query.get("limit", 50))
        before = int(request.query.get("before", 0)) or None
        after = int(request.query.get("after", 0))
        msgs = [
            m
            for m in self.state.messages.values()
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
        channel = self.state.channel(int(channel_id))
        self.messages.check_can_send(channel, files=bool(uploads), embeds=bool((payload or {}).get("embeds")))
        return self.messages.create(channel, payload, uploads, source="channel").payload()

    async def _get_message(
        self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str, message_id: str
    ) -> Any:
        return self.messages.in_channel(channel_id, message_id).payload()

    async def _edit_message(
        self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str, message_id: str
    ) -> Any:
        return self.messages.edit(
            self.messages.in_channel(channel_id, message_id), payload, uploads
        ).payload()

    async def _delete_message(
        self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str, message_id: str
    ) -> Any:
        msg = self.messages.in_channel(channel_id, message_id)
        self.messages.delete(msg)
        return None

    async def _typing(self, request: web.Request, payload: Any, uploads: list[Any], channel_id: str) -> Any:
        self.state.channel(int(channel_id))
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
        self.messages.in_channel(channel_id, message_id).reactions.append(emoji)
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
        msg = self.messages.in_channel(channel_id, message_id)
        if emoji in msg.reactions:
            msg.reactions.remove(emoji)
        return None

    # ---- guilds ----------------------------------------------------------------------------------

    async def _get_guild(self, request: web.Request, payload: Any, uploads: list[Any], guild_id: str) -> Any:
        guild = self.state.guild(guild_id)
        data = guild.payload(members=[])
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at", "large"):
            data.pop(key, None)
        return data

    async def _get_guild_channels(
        self, request: web.Request, payload: Any, uploads: list[Any], guild_id: str
    ) -> Any:
        return [c.payload() for c in self.state.guild(guild_id).channels.values()]

    async def _get_member(
        self, request: web.Request, payload: Any, uploads: list[Any], guild_id: str, user_id: str
    ) -> Any:
        member = self.state.guild(guild_id).members.get(int(user_id))
        if member is None:
            raise DiscordAPIError(404, 10007, "Unknown Member")
        return member.payload()

    # ---- interaction responses -------------------------------------------------------------------

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
        ix = self.state.interactions.get(int(interaction_id))
        if ix is None or ix.token != token:
            raise unknown_interaction()
        if ix.acknowledged:
            raise self._reject(ix, already_acknowledged())
        if time.monotonic() - ix.created_at > self.config.ack_deadline:
            raise self._reject(ix, unknown_interaction())
        payload = payload or {}
        ctype = int(payload.get("type", 0))
        data = payload.get("data") or {}
        message: FakeMessage | None = None
        try:
            if ctype == CB_MESSAGE:
                if ix.type == IX_AUTOCOMPLETE:
                    raise DiscordAPIError(400, 50035, "Invalid interaction response type for autocomplete")
                message = self.messages.create(
                    ix.channel, data, uploads, source="interaction", interaction=ix
                )
                ix.original = message
            elif ctype == CB_DEFERRED_MESSAGE:
                flags = (int(data.get("flags") or 0) & FLAG_EPHEMERAL) | FLAG_LOADING
                message = self.messages.defer(ix, flags)
            elif ctype in (CB_DEFERRED_UPDATE, CB_UPDATE):
                if ix.message is None:
                    raise DiscordAPIError(400, 40004, "Interaction has no message to update")
                if ctype == CB_UPDATE:
                    self.validate.message(data, len(uploads), creating=False)
                    self.messages.edit(ix.message, data, uploads)
                message = ix.original = ix.message  # @original is now the message the component is on
            elif ctype == CB_AUTOCOMPLETE:
                if ix.type != IX_AUTOCOMPLETE:
                    raise DiscordAPIError(
                        400, 50035, "Autocomplete responses are only valid for autocomplete"
                    )
                self.validate.choices(data.get("choices", []))
            elif ctype == CB_MODAL:
                if ix.type in (IX_AUTOCOMPLETE, IX_MODAL_SUBMIT):
                    raise DiscordAPIError(400, 50035, "A modal cannot answer this interaction")
                self.validate.modal(data)
            else:
                raise DiscordAPIError(400, 50035, f"Invalid interaction response type {ctype}")
        except DiscordAPIError as exc:
            raise self._reject(ix, exc) from None
        ix.response_type = ctype
        ix.response = data
        ix.responded_at = time.monotonic()
        self.state.notify()
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
        ix = self.state.interactions_by_token.get(token)
        if int(app_id) != self.state.application_id or ix is None:
            raise unknown_webhook()
        if not ix.acknowledged or ix.response_type in (CB_AUTOCOMPLETE,):
            raise unknown_webhook()  # Discord: no follow-ups before the interaction is acknowledged
        return ix

    def _webhook_message(self, ix: FakeInteraction, message_id: str) -> FakeMessage:
        if message_id == "@original":
            msg = ix.original if ix.response_type in (CB_MESSAGE, CB_DEFERRED_MESSAGE) else ix.message
        else:
            msg = self.state.messages.get(int(message_id))
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
            self.validate.message(payload, len(uploads), creating=True)
            msg = self.messages.edit(original, payload, uploads)
        else:
            msg = self.messages.create(ix.channel, payload, uploads, source="followup", interaction=ix)
        ix.followups.append(msg)
        self.state.notify()
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
        return self.messages.edit(self._webhook_message(ix, message_id), payload, uploads).payload()

    async def _wh_delete(
        self, request: web.Request, payload: Any, uploads: list[Any], app_id: str, token: str, message_id: str
    ) -> Any:
        ix = self._webhook_interaction(app_id, token)
        self.messages.delete(self._webhook_message(ix, message_id))
        return None
