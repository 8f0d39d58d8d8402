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

    from tests.fakediscord import DiscordServer

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

The modules, one concern each:

* ``constants``: Discord's numbers (intents, flags, interaction and callback types, permissions, limits);
  ``errors``: ``DiscordAPIError`` and Discord's error codes.
* ``world``: users, roles, channels, members, guilds; ``records``: messages, attachments, interactions,
  REST calls, refused responses.
* ``state``: ``ServerConfig`` and ``State``, everything the parts share (the world, what was seen, the
  change signal waits re-check on).
* ``validation``: ``Validator``, the API's payload checks and limits.
* ``gateway``: ``Gateway``, the websocket sessions (identify, heartbeats, resume) and event dispatch.
* ``messages``: ``BotMessages``, the bot's messages created, edited and deleted as the API does it.
* ``rest``: ``RestRoutes``, the HTTP routes.
* ``interactions``: users' actions as interaction payloads (command options, modal submissions).
* ``driver``: ``DiscordServer``, which composes the parts and is the API tests call.
"""

from .constants import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    API_VERSION,
    ATTACHMENT_SIZE_LIMIT,
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    CB_MESSAGE,
    CB_MODAL,
    CB_UPDATE,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILD_PRESENCES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    IX_AUTOCOMPLETE,
    IX_COMMAND,
    IX_COMPONENT,
    IX_MODAL_SUBMIT,
    MENTION_EVERYONE,
    PRIVILEGED_INTENTS,
)
from .driver import DiscordServer
from .errors import DiscordAPIError
from .records import FakeAttachment, FakeInteraction, FakeMessage, RejectedCallback, RestCall
from .state import ServerConfig, State
from .world import FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser

__all__ = [
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "API_VERSION",
    "ATTACHMENT_SIZE_LIMIT",
    "CB_AUTOCOMPLETE",
    "CB_DEFERRED_MESSAGE",
    "CB_DEFERRED_UPDATE",
    "CB_MESSAGE",
    "CB_MODAL",
    "CB_UPDATE",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "FLAG_COMPONENTS_V2",
    "FLAG_EPHEMERAL",
    "FLAG_LOADING",
    "FLAG_SUPPRESS_EMBEDS",
    "INTENT_DIRECT_MESSAGES",
    "INTENT_GUILDS",
    "INTENT_GUILD_MEMBERS",
    "INTENT_GUILD_MESSAGES",
    "INTENT_GUILD_PRESENCES",
    "INTENT_MESSAGE_CONTENT",
    "IX_AUTOCOMPLETE",
    "IX_COMMAND",
    "IX_COMPONENT",
    "IX_MODAL_SUBMIT",
    "MENTION_EVERYONE",
    "PRIVILEGED_INTENTS",
    "DiscordAPIError",
    "DiscordServer",
    "FakeAttachment",
    "FakeChannel",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "RejectedCallback",
    "RestCall",
    "ServerConfig",
    "State",
]
