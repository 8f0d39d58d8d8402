"""The gateway: websocket connections and sessions (HELLO, heartbeats, IDENTIFY, RESUME, member requests) and
the dispatch of events to every session that would receive them (shards, intents, message content)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import WSMsgType, web

from .constants import (
    API_VERSION,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
)
from .records import FakeMessage
from .state import ServerConfig, State
from .world import FakeChannel, FakeGuild, FakeMember

log = logging.getLogger(__name__)


class Connection:
    """One websocket; frames are queued and written in order by a single writer task."""

    def __init__(self, ws: web.WebSocketResponse, query: Mapping[str, str]) -> None:
        self.ws = ws
        self.query = dict(query)
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.writer = asyncio.create_task(self._write(), name="fake-discord-gateway-writer")
        self.session: Session | None = None
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


class Session:
    """A gateway session (survives a dropped connection so the client can RESUME)."""

    def __init__(self, session_id: str, intents: int, shard: tuple[int, int]) -> None:
        self.session_id = session_id
        self.intents = intents
        self.shard = shard
        self.seq = 0
        self.frames: list[tuple[int, str]] = []  # sent dispatches, replayed on RESUME
        self.connection: Connection | None = None
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


class Gateway:
    """Serves ``/gateway`` and sends events to the sessions that would receive them."""

    def __init__(self, config: ServerConfig, state: State) -> None:
        self.config = config
        self.state = state
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()

    def ready(self) -> bool:
        """Whether a session has received READY and all its GUILD_CREATEs."""
        return any(s.ready and not s.invalid for s in self.sessions.values())

    async def close(self) -> None:
        """Close every connection with 1001 (which a client treats as resumable)."""
        for conn in list(self.connections):
            await conn.close(1001, "server shutting down")

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT on every connection: the client must come back with RESUME."""
        for conn in list(self.connections):
            conn.send_op(7, None)

    # ---- dispatch --------------------------------------------------------------------------------

    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.ready and not s.invalid]

    def dispatch(self, event: str, data: Any, *, guild_id: int | None = None, intent: int = 0) -> int:
        """Send a dispatch to every ready session that would receive it; returns how many did."""
        sent = 0
        for session in self.live_sessions():
            if not session.handles_guild(guild_id) or (intent and not session.intents & intent):
                continue
            session.dispatch(event, data)
            sent += 1
        self.state.notify()
        return sent

    def dispatch_guild_create(self, guild: FakeGuild) -> None:
        for session in self.live_sessions():
            if session.handles_guild(guild.id):
                session.dispatch("GUILD_CREATE", self.guild_create_payload(guild, session))
        self.state.notify()

    def guild_create_payload(self, guild: FakeGuild, session: Session) -> dict[str, Any]:
        if session.intents & INTENT_GUILD_MEMBERS:
            members: Iterable[FakeMember] = guild.members.values()
        else:  # without the members intent Discord sends only the bot's own member
            members = [guild.members[self.state.bot_user.id]]
        return guild.payload(members=members)

    def dispatch_message(self, event: str, msg: FakeMessage) -> None:
        """MESSAGE_CREATE/UPDATE: never for ephemeral messages; content only where the intents allow it."""
        if msg.ephemeral:
            return  # ephemeral messages never reach the gateway
        bot_user = self.state.bot_user
        intent = INTENT_DIRECT_MESSAGES if msg.channel.is_dm else INTENT_GUILD_MESSAGES
        for session in self.live_sessions():
            if not session.handles_guild(msg.channel.guild_id) or not session.intents & intent:
                continue
            strip = not (
                session.intents & INTENT_MESSAGE_CONTENT
                or msg.channel.is_dm
                or msg.author is bot_user
                or bot_user.id in msg.mentioned_user_ids
            )
            data = msg.payload(strip_content=strip)
            data["mentions"] = [self._mention_payload(msg.channel, uid) for uid in msg.mentioned_user_ids]
            guild = self.state.guild_of(msg.channel)
            if guild is not None and msg.author.id in guild.members and msg.webhook_id is None:
                data["member"] = guild.members[msg.author.id].payload(with_user=False)
            session.dispatch(event, data)
        self.state.notify()

    def _mention_payload(self, channel: FakeChannel, user_id: int) -> dict[str, Any]:
        user = self.state.users[user_id]
        data = user.payload()
        guild = self.state.guild_of(channel)
        if guild is not None and user_id in guild.members:
            data["member"] = guild.members[user_id].payload(with_user=False)
        return data

    # ---- the websocket ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        # discord.py asks for compress=zlib-stream (or zstd-stream); it decompresses only binary frames, and
        # text frames are parsed as plain JSON, so the server always sends text.
        conn = Connection(ws, request.query)
        self.connections.add(conn)
        conn.send_op(
            10, {"heartbeat_interval": int(self.config.heartbeat_interval * 1000), "_trace": ["fake-discord"]}
        )
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                    await self._on_frame(conn, frame)
                except Exception:
                    self.state.internal_errors.append(traceback.format_exc())
                    log.exception("gateway frame failed")
                    await conn.close(4000, "server error")
                    break
        finally:
            self.connections.discard(conn)
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            conn.queue.put_nowait(None)
            self.state.notify()
        return ws

    async def _on_frame(self, conn: Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            conn.heartbeats += 1
            conn.send_op(11, None)
            return
        self.state.gateway_log.append(
            frame if op not in (2, 6) else {**frame, "d": {**data, "token": "<redacted>"}}
        )
        if op == 2:
            await self._identify(conn, data)
        elif op == 6:
            await self._resume(conn, data)
        elif op == 3:
            self.state.presence = data
        elif op == 8:
            self._request_members(conn, data)
        elif op == 4:
            pass  # voice state: not simulated
        else:
            log.warning("unhandled gateway op %s", op)
        self.state.notify()

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> None:
        config, state = self.config, self.state
        if data.get("token") != config.token:
            await conn.close(4004, "Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~config.privileged_intents:
            await conn.close(4014, "Disallowed intent(s).")
            return
        shard = tuple(data.get("shard") or (0, 1))
        if shard[1] != config.shard_count or not 0 <= shard[0] < shard[1]:
            await conn.close(4010, "Invalid shard.")
            return
        session = Session(secrets.token_hex(16), intents, (int(shard[0]), int(shard[1])))
        session.connection = conn
        conn.session = session
        self.sessions[session.session_id] = session
        guilds = [g for g in state.guilds.values() if session.handles_guild(g.id)]
        session.dispatch(
            "READY",
            {
                "v": API_VERSION,
                "user": {**state.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None},
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                "session_id": session.session_id,
                "session_type": "normal",
                "resume_gateway_url": config.gateway_url,
                "shard": list(session.shard),
                "application": {"id": str(state.application_id), "flags": config.application_flags},
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
            session.dispatch("GUILD_CREATE", self.guild_create_payload(guild, session))
        session.ready = True

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> None:
        session = self.sessions.get(data.get("session_id", ""))
        if data.get("token") != self.config.token:
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

    def _request_members(self, conn: Connection, data: dict[str, Any]) -> None:
        session = conn.session
        guild = self.state.guilds.get(int(data.get("guild_id", 0)))
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
