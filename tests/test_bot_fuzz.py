"""Hostile and odd message contents never crash the bot and never make it ping anyone."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator

import pytest

from tests.bot_harness import World, running_tutor
from tests.fakediscord import MENTION_EVERYONE, FakeMessage

FIXED = [
    "",
    "   \n\t  ",
    "@everyone what is dropout? @here",
    "**bold** __under__ ~~strike~~ ||spoiler|| `code` > quote\n```py\nprint('x')\n```",
    "```\nan unclosed code fence",
    "什么是卷积神经网络？",
    "ما هو التعلم العميق؟",
    "Z̷̢a̸͎l̵̙g̶̗o̷̤ ẗ̴e̵͜x̷̨t̶̰ what is a tensor",
    "👩‍👩‍👧‍👦🔥💯 what is a GPU?",
    "\u202ereversed text\u202c and a \u200bzero width space",
    "nul \x00 and bell \x07 characters",
    "a" * 4000,
    ("what is a receptive field " * 160)[:4000],
    "[click me](https://example.com) <https://example.com> :smile: <:custom:123456789012345678>",
    "<#123> <@&456> <@!789> <t:1700000000:R> </ask:1>",
    "\\*escaped\\* \\@everyone",
]
ALPHABET = "ab cé漢字🔥\n*_~`|>#@<&!:\\/\u0301\u200b\t" + "@everyone @here "


def random_contents(n: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.choice((1, 10, 200, 1900)))) for _ in range(n)]


@pytest.fixture
async def world(fake_retriever, demo_worker, tmp_path) -> AsyncIterator[World]:
    # One user sends every fuzzed message: the per-user rate limit (tested in test_bot_hostile) is lifted.
    async with running_tutor(fake_retriever, demo_worker, tmp_path, ask_burst=10_000) as w:
        yield w


async def reply_to(world: World, posted: FakeMessage) -> FakeMessage:
    return await world.server.wait_for_message(
        posted.channel,
        lambda m: bool(m.reference) and m.reference["message_id"] == str(posted.id),
        timeout=10,
    )


async def test_fuzzed_messages_never_crash_or_ping(world: World, caplog: pytest.LogCaptureFixture) -> None:
    srv = world.server
    mod = srv.create_role(world.guild, "Mods")
    # alice may mention everyone: if the bot echoed "@everyone" without AllowedMentions.none(), it would ping.
    admin = srv.create_role(world.guild, "Admin", permissions=MENTION_EVERYONE)
    srv.add_member(world.guild, world.alice, roles=[admin, mod])
    contents = [*FIXED, f"{world.bob.mention} {mod.mention} what is a tensor", *random_contents(20)]
    with caplog.at_level(logging.WARNING):
        for content in contents:
            posted = await srv.post_message(world.alice, world.general, f"{srv.bot_user.mention} {content}")
            reply = await reply_to(world, posted)
            assert reply.embed is not None and not reply.pings_anyone, content[:80]
            if content.strip():
                in_channel = await srv.post_message(world.alice, world.answers, content)
                assert not (await reply_to(world, in_channel)).pings_anyone, content[:80]
        dm = srv.dm_channel(world.bob)
        for content in ("", "@everyone", "a" * 4000):
            posted = await srv.post_message(world.bob, dm, content or "\u200b")
            assert not (await reply_to(world, posted)).pings_anyone

        # still answering normally afterwards
        posted = await srv.post_message(
            world.bob, world.general, f"{srv.bot_user.mention} what is a receptive field"
        )
        assert "receptive field" in (await reply_to(world, posted)).embed["title"].lower()

    bot_messages = [m for m in srv.messages.values() if m.author is srv.bot_user]
    assert len(bot_messages) >= 2 * len(contents)
    assert not any(m.pings_anyone for m in bot_messages)
    assert all(m.allowed_mentions is not None and m.allowed_mentions.get("parse") == [] for m in bot_messages)
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith(("bot", "discord"))
    ]


async def test_empty_mention_gets_the_help_card_and_empty_channel_posts_are_ignored(world: World) -> None:
    srv = world.server
    await srv.post_message(world.alice, world.answers, "", files=[("cat.png", b"\x89PNG...")])
    posted = await srv.post_message(world.alice, world.general, srv.bot_user.mention)
    reply = await reply_to(world, posted)
    assert reply.embed["title"] == "Ask me about the course notes"
    assert srv.messages_in(world.answers, author=srv.bot_user) == []
