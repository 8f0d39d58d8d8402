"""The fake Discord server against the real, unpatched discord.py client.

A minimal ``commands.Bot`` defined here (not the project's bot) exercises each path end-to-end tests rely
on: login and READY, command sync and invocation, deferral with a file follow-up, buttons, modals,
autocomplete, mentions, DMs, RESUME, and the API's rules (the acknowledgement deadline, a single response,
message limits, allowed mentions, intents).
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
import zlib
from collections.abc import AsyncIterator

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakediscord import (
    CB_DEFERRED_MESSAGE,
    CB_MESSAGE,
    CB_MODAL,
    CB_UPDATE,
    DiscordServer,
    FakeGuild,
    FakeUser,
)


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG built with the standard library, so the round trip is checked byte for byte."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 80, y * 120, 200)) for x in range(width)) for y in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


PNG = tiny_png()


class VoteView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Yes", style=discord.ButtonStyle.success, custom_id="vote:yes")
    async def yes(self, interaction: discord.Interaction, button: discord.ui.Button[VoteView]) -> None:
        button.disabled = True
        await interaction.response.edit_message(content=f"{interaction.user.name} voted yes", view=self)

    @discord.ui.button(label="Why?", style=discord.ButtonStyle.secondary, custom_id="vote:why")
    async def why(self, interaction: discord.Interaction, button: discord.ui.Button[VoteView]) -> None:
        await interaction.response.send_modal(FeedbackModal())


class FeedbackModal(discord.ui.Modal, title="What was wrong?"):
    what = discord.ui.TextInput(label="Details", custom_id="feedback:what", style=discord.TextStyle.paragraph)
    score = discord.ui.TextInput(label="Score", custom_id="feedback:score", required=False, default="3")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            f"thanks: {self.what.value} ({self.score.value})", ephemeral=True
        )


class MiniBot(commands.Bot):
    """The smallest bot that touches every server feature; errors are collected for assertions."""

    def __init__(self, guild_id: int, *, message_content: bool = True) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=0.05,
        )
        self.guild_id = guild_id
        self.errors: list[BaseException] = []
        self.seen_messages: list[discord.Message] = []
        self.tree.on_error = self.on_app_command_error

    async def setup_hook(self) -> None:
        guild = discord.Object(self.guild_id)
        for command in (ask, plot, vote, feedback, slow, twice, echo, too_long, topic, admin):
            self.tree.add_command(command, guild=guild)
        await self.tree.sync(guild=guild)

    async def on_app_command_error(self, interaction: discord.Interaction, error: Exception) -> None:
        self.errors.append(getattr(error, "original", error))

    async def on_message(self, message: discord.Message) -> None:
        self.seen_messages.append(message)
        if message.author.bot:
            return
        if isinstance(message.channel, discord.DMChannel):
            sizes = [len(await a.read()) for a in message.attachments]
            reply = await message.channel.send(f"dm: {message.content}")
            await reply.edit(content=f"{reply.content} files={sizes}")
        elif self.user in message.mentions:
            async with message.channel.typing():
                await message.channel.send(f"hello {message.author.name}, you said {message.content!r}")


@app_commands.command(description="Ask a question")
async def ask(interaction: discord.Interaction, question: str) -> None:
    embed = discord.Embed(title="Answer", description=f"You asked: {question}")
    embed.add_field(name="confidence", value="0.9")
    await interaction.response.send_message(embed=embed)


@app_commands.command(description="Draw a plot")
async def plot(interaction: discord.Interaction) -> None:
    await interaction.response.defer(thinking=True)
    await asyncio.sleep(0.05)
    await interaction.followup.send(
        embed=discord.Embed(title="Plot", description="loss went down"),
        file=discord.File(io.BytesIO(PNG), filename="plot.png"),
    )
    extra = await interaction.followup.send("second follow-up", ephemeral=True, wait=True)
    await extra.edit(content="second follow-up, edited")
    third = await interaction.followup.send("third follow-up", wait=True)
    await third.delete()
    await interaction.edit_original_response(content="done")


@app_commands.command(description="Vote")
async def vote(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("Vote now", view=VoteView())


@app_commands.command(description="Give feedback")
async def feedback(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(FeedbackModal())


@app_commands.command(description="Too slow to answer")
async def slow(interaction: discord.Interaction, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await interaction.response.send_message("finally")


@app_commands.command(description="Answers twice")
async def twice(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("first")
    # A second InteractionResponse skips discord.py's client-side guard, as two code paths would.
    await discord.InteractionResponse(interaction).send_message("second")


@app_commands.command(description="Echo text")
async def echo(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message(text)


@app_commands.command(description="Send too much")
async def too_long(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("x" * 2001)


TOPICS = ["convolution", "receptive field", "dropout", "batch norm"]


@app_commands.command(description="Pick a topic")
async def topic(interaction: discord.Interaction, name: str) -> None:
    await interaction.response.send_message(f"topic {name}")


@topic.autocomplete("name")
async def topic_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=t, value=t) for t in TOPICS if current.lower() in t]


admin = app_commands.Group(
    name="admin",
    description="Admin tools",
    default_permissions=discord.Permissions(manage_messages=True),
    guild_only=True,
)
tools = app_commands.Group(name="tools", description="More tools", parent=admin)


@tools.command(description="Inspect a member")
async def whois(interaction: discord.Interaction, member: discord.Member, note: str | None = None) -> None:
    roles = sorted(r.name for r in member.roles)
    await interaction.response.send_message(
        f"{member.name} roles={roles} note={note} can_manage={interaction.permissions.manage_messages} "
        f"bot_embeds={interaction.app_permissions.embed_links}",
        ephemeral=True,
    )


@pytest.fixture
async def server() -> AsyncIterator[DiscordServer]:
    async with DiscordServer() as srv:
        with srv.patch_client_urls():
            yield srv


@pytest.fixture
def guild(server: DiscordServer) -> FakeGuild:
    return server.create_guild("Test Guild", channels=("general", "random"))


@pytest.fixture
def alice(server: DiscordServer) -> FakeUser:
    return server.create_user("alice")


@pytest.fixture
async def bot(server: DiscordServer, guild: FakeGuild) -> AsyncIterator[MiniBot]:
    async with server.running(MiniBot(guild.id)) as client:
        yield client  # type: ignore[misc]
    assert client.is_closed()


async def test_connects_and_becomes_ready(server: DiscordServer, guild: FakeGuild, bot: MiniBot) -> None:
    assert bot.user is not None and bot.user.id == server.bot_user.id
    assert bot.application_id == server.application_id
    dguild = bot.get_guild(guild.id)
    assert dguild is not None and dguild.name == "Test Guild"
    assert {c.name for c in dguild.text_channels} == {"general", "random"}
    assert dguild.me.guild_permissions.send_messages
    assert [c.route for c in server.calls("PUT")] == ["/applications/{}/guilds/{}/commands"]
    assert set(server.commands[guild.id]) >= {"ask", "plot", "vote", "feedback"}
    assert server.gateway_log[0]["op"] == 2 and server.gateway_log[0]["d"]["token"] == "<redacted>"
    assert not server.unknown_routes


async def test_slash_command_answers_with_embed(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    ix = await server.invoke_slash(alice, guild.channel("general"), "ask", {"question": "what is a CNN?"})
    msg = await ix.wait_message()
    assert ix.response_type == CB_MESSAGE and ix.latency is not None and ix.latency < 3
    assert msg.embed is not None and msg.embed["title"] == "Answer"
    assert "You asked: what is a CNN?" in msg.text and "confidence" in msg.text
    assert msg.interaction is ix and not msg.ephemeral
    with pytest.raises(ValueError, match="no option"):
        await server.invoke_slash(alice, guild.channel("general"), "ask", {"query": "x"})


async def test_deferred_followup_carries_png(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    ix = await server.invoke_slash(alice, guild.channel("general"), "plot")
    await ix.wait_response()
    assert ix.response_type == CB_DEFERRED_MESSAGE
    first = await ix.wait_followup(0)
    second = await ix.wait_followup(1)
    assert first is ix.original, "the first follow-up fills the deferred message"
    assert first.embed is not None and first.embed["title"] == "Plot"
    [attachment] = first.attachments
    assert attachment.filename == "plot.png" and attachment.content_type == "image/png"
    assert attachment.data == PNG
    from PIL import Image

    image = Image.open(io.BytesIO(attachment.data))
    assert image.size == (3, 2) and image.getpixel((2, 1)) == (160, 120, 200)
    third = await ix.wait_followup(2)
    await server.wait_for(lambda: third.deleted and first.content == "done", what="the edits and the delete")
    assert second.ephemeral and second.content == "second follow-up, edited"
    assert first.attachments == [attachment], "editing content keeps the attachment"
    [upload] = [c for c in server.calls("POST", "/webhooks/{}/{}") if c.files]
    assert upload.files == (("plot.png", PNG),)


async def test_button_click_edits_message(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    ix = await server.invoke_slash(alice, guild.channel("general"), "vote")
    msg = await ix.wait_message()
    assert [b["label"] for b in msg.buttons] == ["Yes", "Why?"]
    click = await server.click(msg, label="Yes")
    await click.wait_response()
    assert click.response_type == CB_UPDATE
    assert msg.content == "alice voted yes" and msg.button("Yes")["disabled"] is True
    with pytest.raises(ValueError, match="disabled"):
        await server.click(msg, "vote:yes")
    why = await server.click(msg, "vote:why", user=alice)
    submit = await server.submit_modal(why, {"feedback:what": "too short", "feedback:score": "1"})
    assert (await submit.wait_message()).content == "thanks: too short (1)"
    assert submit.payload["message"]["id"] == str(msg.id), "a modal opened from a button carries its message"


async def test_modal_submit_mirrors_layout(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    ix = await server.invoke_slash(alice, guild.channel("general"), "feedback")
    await ix.wait_response()
    assert ix.response_type == CB_MODAL and ix.modal is not None and ix.modal["title"] == "What was wrong?"
    submit = await server.submit_modal(ix, {"feedback:what": "the answer was off"})
    reply = await submit.wait_message()
    assert reply.content == "thanks: the answer was off (3)" and reply.ephemeral
    with pytest.raises(ValueError, match="no inputs"):
        await server.submit_modal(ix, {"nope": "x"})


async def test_autocomplete_returns_choices(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    choices = await server.autocomplete(
        alice, guild.channel("general"), "topic", {"name": "re"}, focused="name"
    )
    assert [c["value"] for c in choices] == ["receptive field"]


async def test_mention_answered_in_channel(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    general = guild.channel("general")
    quiet = await server.post_message(alice, general, "no mention here")
    asked = await server.post_message(alice, general, f"{server.bot_user.mention} what is dropout? @everyone")
    reply = await server.wait_for_message(general, after=quiet)
    assert reply.content.startswith("hello alice, you said") and reply.source == "channel"
    assert not reply.pings_anyone, "AllowedMentions.none() must stop @everyone in the echoed text"
    assert reply.allowed_mentions == {"parse": []}
    assert server.calls("POST", "/channels/{}/typing")
    assert len(server.messages_in(general, author=server.bot_user)) == 1
    assert asked.mentioned_user_ids == [server.bot_user.id] and not asked.mention_everyone
    await server.wait_for(
        lambda: any(m.id == reply.id for m in bot.seen_messages), what="the bot's own message"
    )


async def test_direct_message_answered(server: DiscordServer, alice: FakeUser, bot: MiniBot) -> None:
    dm = server.dm_channel(alice)
    await server.post_message(alice, dm, "hi bot", files=[("notes.txt", b"12345")])
    reply = await server.wait_for_message(dm)
    await server.wait_for(lambda: reply.edits, what="the bot to edit its reply")
    assert reply.content == "dm: hi bot files=[5]" and reply.edited_at is not None


async def test_late_response_is_unknown_interaction(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    server.ack_deadline = 0.2
    ix = await server.invoke_slash(alice, guild.channel("general"), "slow", {"seconds": 0.35})
    rejected = await ix.wait_rejected(10062)
    assert rejected.status == 404 and rejected.elapsed > 0.2 and not ix.acknowledged
    await server.wait_for(lambda: bot.errors, what="the bot to see the error")
    assert isinstance(bot.errors[0], discord.NotFound) and bot.errors[0].code == 10062


async def test_second_response_is_rejected(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    ix = await server.invoke_slash(alice, guild.channel("general"), "twice")
    rejected = await ix.wait_rejected(40060)
    assert rejected.status == 400 and ix.original is not None and ix.original.content == "first"
    await server.wait_for(lambda: bot.errors, what="the bot to see the error")
    assert isinstance(bot.errors[0], discord.HTTPException) and bot.errors[0].code == 40060


async def test_limits_and_allowed_mentions_enforced(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    general = guild.channel("general")
    ix = await server.invoke_slash(alice, general, "too_long")
    rejected = await ix.wait_rejected(50035)
    assert rejected.status == 400 and not ix.acknowledged
    ix = await server.invoke_slash(alice, general, "echo", {"text": f"{alice.mention} @everyone"})
    msg = await ix.wait_message()
    assert msg.content == f"{alice.mention} @everyone" and not msg.pings_anyone


async def test_resume_after_reconnect(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    bot.add_listener(on_resumed)
    await server.request_reconnect()
    await asyncio.wait_for(resumed.wait(), 5)
    assert [f["op"] for f in server.gateway_log if f["op"] in (2, 6)] == [2, 6]
    ix = await server.invoke_slash(alice, guild.channel("general"), "ask", {"question": "still there?"})
    assert "still there?" in (await ix.wait_message()).text


async def test_without_message_content_intent_only_mentions_have_content(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser
) -> None:
    async with server.running(MiniBot(guild.id, message_content=False)) as client:
        bot: MiniBot = client  # type: ignore[assignment]
        general = guild.channel("general")
        await server.post_message(alice, general, "plain words")
        await server.post_message(alice, general, f"{server.bot_user.mention} hello")
        await server.wait_for_message(general)
        plain, mention = [m for m in bot.seen_messages if m.author.id == alice.id]
        assert plain.content == "" and mention.content.endswith("hello")


async def test_wait_timeout_explains_what_was_seen(
    server: DiscordServer, guild: FakeGuild, bot: MiniBot
) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="recent REST calls"):
        await server.wait_for_message(guild.channel("random"), timeout=0.1)
    assert time.monotonic() - started < 1


async def test_subcommand_with_member_option_and_permissions(
    server: DiscordServer, guild: FakeGuild, alice: FakeUser, bot: MiniBot
) -> None:
    mod = server.create_role(guild, "Mod", permissions=discord.Permissions(manage_messages=True))
    server.add_member(guild, alice, roles=[mod])
    bob = server.create_user("bob")
    server.add_member(guild, bob)  # a non-member resolves as a bare User, and the Member transform fails
    general = guild.channel("general")
    ix = await server.invoke_slash(alice, general, "admin tools whois", {"member": bob, "note": "hi"})
    msg = await ix.wait_message()
    assert msg.ephemeral
    assert msg.content == "bob roles=['@everyone'] note=hi can_manage=True bot_embeds=True"
    with pytest.raises(PermissionError, match="default_member_permissions"):
        await server.invoke_slash(bob, general, "admin tools whois", {"member": alice})
    server.add_member(guild, bob, roles=[mod])
    ix = await server.invoke_slash(bob, general, "admin tools whois", {"member": alice})
    assert (await ix.wait_message()).content.startswith("alice roles=['@everyone', 'Mod'] note=None")


async def test_fifty_users_at_once(server: DiscordServer, guild: FakeGuild, bot: MiniBot) -> None:
    general = guild.channel("general")
    users = [server.create_user(f"user{i}") for i in range(50)]
    ixs = await asyncio.gather(
        *(server.invoke_slash(u, general, "ask", {"question": f"question {i}"}) for i, u in enumerate(users))
    )
    msgs = await asyncio.gather(*(ix.wait_message() for ix in ixs))
    assert all(f"question {i}" in m.text for i, m in enumerate(msgs))
    assert max(ix.latency or 99 for ix in ixs) < 3
    assert not any(ix.rejected for ix in ixs)


async def test_wrong_token_fails_fast(server: DiscordServer, guild: FakeGuild) -> None:
    with pytest.raises(RuntimeError, match="LoginFailure"):
        async with server.running(MiniBot(guild.id), token="not-the-token", timeout=5):
            pass


async def test_clean_close(server: DiscordServer, guild: FakeGuild) -> None:
    bot = MiniBot(guild.id)
    async with server.running(bot):
        assert len(server._connections) == 1
    assert bot.is_closed()
    await server.wait_for(lambda: not server._connections, timeout=2, what="the gateway connection to close")
    assert not server.unknown_routes and not server.internal_errors


async def test_unknown_route_answers_404_and_fails_the_test() -> None:
    server = DiscordServer()
    with pytest.raises(AssertionError, match="does not serve"):
        async with server:
            guild = server.create_guild()
            with server.patch_client_urls():
                async with server.running(MiniBot(guild.id)) as client:
                    dguild = client.get_guild(guild.id)
                    assert dguild is not None
                    with pytest.raises(discord.NotFound):
                        await dguild.fetch_roles()
    assert server.unknown_routes == [f"GET /guilds/{guild.id}/roles"]


async def test_privileged_intent_not_enabled_is_refused() -> None:
    async with DiscordServer(privileged_intents=0) as server:
        guild = server.create_guild()
        with server.patch_client_urls(), pytest.raises(RuntimeError, match="PrivilegedIntentsRequired"):
            async with server.running(MiniBot(guild.id, message_content=True), timeout=5):
                pass
