"""Every server its own tutor, end to end: the real bot against the local Discord server with two servers,
A (the owners' server, where the bot syncs on start) and B, and direct messages.

A server's cards and hides are its own: A's card is answered in A, never in B or in DMs; a note A hides is
gone in A only. A's admins cannot touch B's cards (B's card ids are "no such item", word for word as an id
that does not exist), members without Manage Server cannot run /kb, a server admin cannot run the owners'
commands, an import is all or nothing and names the bad line, and an export imports back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import discord
import pytest

from bot.exts.ask._embeds import answer_embeds
from index.answer import ANSWERED
from tests.bot_harness import World, running_tutor
from tests.fakediscord import FakeChannel, FakeGuild, FakeUser

CARD_Q = "What is the zorblax layer?"
CARD_A = "Zorblax is a made-up layer that only server A knows about."
ASKED = "what is the zorblax layer"


@dataclass
class Spaces:
    w: World
    a: FakeGuild  # the owners' server (TUTOR_DEV_GUILD_ID); its owner is the application's owner
    b: FakeGuild
    a_general: FakeChannel
    b_general: FakeChannel
    ann: FakeUser  # Manage Server in A
    ben: FakeUser  # owns B (every permission there), not an owner of the tutor
    ada: FakeUser  # administrator of A, not an owner of the tutor
    student: FakeUser  # a member of both, no permissions


@pytest.fixture
async def spaces(fake_quiz_retriever, demo_worker, tmp_path) -> AsyncIterator[Spaces]:
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path, ask_burst=100) as w:
        srv = w.server
        ben = srv.create_user("ben")
        b = srv.create_guild("Other course", channels=("general",), owner=ben)
        await w.bot.sync_commands(b.id)  # what `tutor bot sync` does for every server, for B alone
        ann, ada = srv.create_user("ann"), srv.create_user("ada")
        srv.add_member(w.guild, ann, roles=[srv.create_role(w.guild, "mods", permissions=manage())])
        admins = srv.create_role(w.guild, "admins", permissions=discord.Permissions(administrator=True))
        srv.add_member(w.guild, ada, roles=[admins])
        yield Spaces(w, w.guild, b, w.general, b.channel("general"), ann, ben, ada, w.alice)


def manage() -> discord.Permissions:
    return discord.Permissions(manage_guild=True)


async def run(s: Spaces, user: FakeUser, channel: FakeChannel, command: str, options=None, timeout=30.0):
    """Run a slash command and return the bot's reply (ephemeral or not)."""
    ix = await s.w.server.invoke_slash(user, channel, command, options or {})
    return await ix.wait_message(timeout=timeout)


async def add_card(s: Spaces, user: FakeUser, channel: FakeChannel, question: str, answer: str):
    ix = await s.w.server.invoke_slash(user, channel, "kb add")
    submitted = await s.w.server.submit_modal(ix, {"kb:question": question, "kb:answer": answer})
    return await submitted.wait_message(timeout=30)


async def ask_in(s: Spaces, channel: FakeChannel, text: str, user: FakeUser | None = None):
    """The bot's answer to ``text``: /ask in a server, a plain message in a DM channel."""
    srv = s.w.server
    if channel.is_dm:
        posted = await srv.post_message(channel_user(s, channel), channel, text)
        return await srv.wait_for_message(channel, after=posted, timeout=20)
    return await run(s, user or s.student, channel, "ask", {"question": text})


def channel_user(s: Spaces, channel: FakeChannel) -> FakeUser:
    return next(u for u in (s.student, s.ann, s.ben) if s.w.server.dm_channel(u) is channel)


def snapshot(store) -> list[tuple]:
    """Every item (retired too) and document, as the store has them."""
    items = [
        (i.id, i.source, i.n, i.question, i.answer, i.retired) for i in store.items(include_retired=True)
    ]
    return [*items, *((d.source, d.title, d.scope) for d in store.documents())]


def own_note(retriever):
    """A shared note alone in its duplicate group that its own question is answered with: hiding it must
    change the answer (no twin in another document answers in its place)."""
    store = retriever.store
    for item in retriever.items.values():
        if item.scope is not None or not item.servable or len(store.group_members(item.group)) != 1:
            continue
        answer = retriever.ask(item.question)
        if answer.status == ANSWERED and answer.item_id == item.id:
            return item, answer_embeds(answer).first.title
    raise AssertionError("no shared note answers its own question")


async def test_cards_and_hides_stay_in_their_server(spaces: Spaces) -> None:
    s, store = spaces, spaces.w.services.store
    dm = s.w.server.dm_channel(s.student)

    added = await add_card(s, s.ann, s.a_general, CARD_Q, CARD_A)
    assert added.ephemeral and added.content.startswith("Added item"), added.content
    assert CARD_A in (await ask_in(s, s.a_general, ASKED)).text
    for where in (s.b_general, dm):
        reply = await ask_in(s, where, ASKED)
        assert reply.embed is not None and CARD_A not in reply.text, f"A's card leaked into {where.name}"

    note, title = own_note(s.w.services.retriever)
    for where in (s.a_general, s.b_general, dm):
        assert (await ask_in(s, where, note.question)).embed["title"] == title
    hidden = await run(s, s.ann, s.a_general, "kb hide", {"item_id": note.id})
    assert "hidden in this server" in hidden.content
    assert (await ask_in(s, s.a_general, note.question)).embed.get("title") != title, "A no longer gets it"
    for where in (s.b_general, dm):
        assert (await ask_in(s, where, note.question)).embed["title"] == title, f"{where.name} still does"
    assert "disabled" not in store.item(note.id).flags

    await run(s, s.ann, s.a_general, "kb restore", {"item_id": note.id})
    assert (await ask_in(s, s.a_general, note.question)).embed["title"] == title


async def test_another_servers_card_is_no_such_item(spaces: Spaces) -> None:
    s, store = spaces, spaces.w.services.store
    theirs = await add_card(s, s.ben, s.b_general, "What is a frobnicator?", "B's own card.")
    b_id = int(theirs.content.split()[2].rstrip(":"))
    assert store.item(b_id).scope == str(s.b.id)
    before = snapshot(store)

    missing = 10**12
    for command in ("kb edit", "kb remove", "kb hide", "kb restore"):
        reply = await run(s, s.ann, s.a_general, command, {"item_id": b_id})
        unknown = await run(s, s.ann, s.a_general, command, {"item_id": missing})
        assert reply.ephemeral and "no such item" in reply.content.lower(), (command, reply.content)
        assert reply.content == unknown.content.replace(str(missing), str(b_id)), "never reveals it exists"
        assert "frobnicator" not in reply.content
    assert snapshot(store) == before
    for command in ("kb edit", "kb hide", "kb restore"):  # nor suggests it
        choices = await s.w.server.autocomplete(
            s.ann, s.a_general, command, {"item_id": "frobnicator"}, focused="item_id"
        )
        assert choices == [], command
    choices = await s.w.server.autocomplete(
        s.ben, s.b_general, "kb edit", {"item_id": "frobnicator"}, focused="item_id"
    )
    assert [c["value"] for c in choices] == [b_id]


async def test_who_may_run_what(spaces: Spaces) -> None:
    s, srv = spaces, spaces.w.server
    # A member without Manage Server: Discord does not offer /kb, and the bot refuses it if a server does.
    for guild, channel in ((s.a, s.a_general), (s.b, s.b_general)):
        with pytest.raises(PermissionError):
            await srv.invoke_slash(s.student, channel, "kb add")
        srv.commands[guild.id]["kb"]["default_member_permissions"] = None
        for command, options in (("kb add", {}), ("kb hide", {"item_id": 1}), ("kb export", {})):
            refused = await run(s, s.student, channel, command, options)
            assert refused.ephemeral and "Manage Server" in refused.content

    # The owners' commands exist in the owners' server only ...
    with pytest.raises(TimeoutError, match="never synced"):
        await srv.invoke_slash(s.ben, s.b_general, "owner reload", sync_timeout=0.5)
    # ... where a server administrator who is not an owner of the tutor is refused at run time.
    item_id = s.w.services.retriever.ask("what is a receptive field").item_id
    for command, options in (("owner reload", {}), ("owner disable", {"item_id": item_id})):
        refused = await run(s, s.ada, s.a_general, command, options)
        assert refused.ephemeral and "Only the tutor's owners" in refused.content
    with pytest.raises(PermissionError):  # Manage Server does not even show it
        await srv.invoke_slash(s.ann, s.a_general, "owner reload")
    assert "disabled" not in s.w.services.store.item(item_id).flags


async def test_card_text_is_checked(spaces: Spaces) -> None:
    s, store = spaces, spaces.w.services.store
    before = snapshot(store)
    for question in ("\u200b", " \u200b\u200d ", "what is\x07 this"):
        reply = await add_card(s, s.ann, s.a_general, question, "An answer.")
        assert reply.ephemeral and "Nothing was changed" in reply.content, reply.content
        assert "needs some text" in reply.content or "control character" in reply.content
    reply = await add_card(s, s.ann, s.a_general, "What is a widget?", "\u200b\u200b")
    assert "answer needs some text" in reply.content
    assert snapshot(store) == before


async def test_import_is_all_or_nothing_and_export_imports_back(spaces: Spaces) -> None:
    s, store = spaces, spaces.w.services.store
    await add_card(s, s.ann, s.a_general, CARD_Q, CARD_A)
    before = snapshot(store)

    malformed = b'{"question": "What is a sprocket?", "answer": "A toothed wheel."}\n\n{"question": "oops"\n'
    reply = await run(s, s.ann, s.a_general, "kb import", {"file": ("deck.jsonl", malformed)})
    assert reply.ephemeral and "deck.jsonl:3" in reply.content and "nothing was changed" in reply.content
    empty_question = "## What is a sprocket?\nA toothed wheel.\n\n## \u200b\nNo question.\n".encode()
    reply = await run(s, s.ann, s.a_general, "kb import", {"file": ("deck.md", empty_question)})
    assert "deck.md:4" in reply.content
    assert snapshot(store) == before, "a bad deck changes nothing"

    deck = (
        "---\ntitle: Gears\n---\n## What is a sprocket?\nA toothed wheel.\n\n"
        "## What is a ratchet?\nA wheel that turns one way.\n\n## Что такое шестерня?\nЗубчатое колесо.\n"
    ).encode()
    reply = await run(s, s.ann, s.a_general, "kb import", {"file": ("gears.md", deck)})
    assert "Imported 3 cards" in reply.content and "This server has 4 cards" in reply.content
    assert "A toothed wheel." in (await ask_in(s, s.a_general, "what is a sprocket")).text
    note, _title = own_note(s.w.services.retriever)
    await run(s, s.ann, s.a_general, "kb hide", {"item_id": note.id})

    exported = await run(s, s.ann, s.a_general, "kb export")
    assert exported.ephemeral
    files = {a.filename: a.data for a in exported.attachments}
    cards = [json.loads(line) for line in files[f"cards-{s.a.id}.jsonl"].decode().splitlines()]
    assert [(c["question"], c["answer"]) for c in cards] == [
        (CARD_Q, CARD_A),
        ("What is a sprocket?", "A toothed wheel."),
        ("What is a ratchet?", "A wheel that turns one way."),
        ("Что такое шестерня?", "Зубчатое колесо."),
    ]
    changes = [json.loads(line) for line in files[f"overrides-{s.a.id}.jsonl"].decode().splitlines()]
    assert [(c["kind"], c["item_id"]) for c in changes] == [("hide", note.id)]

    # The export imports back: into B, the same cards; into A again, nothing changes.
    again = await run(
        s, s.ben, s.b_general, "kb import", {"file": ("cards.jsonl", files[f"cards-{s.a.id}.jsonl"])}
    )
    assert "+4 added" in again.content
    b_cards = store.items(source=f"guild_{s.b.id}.jsonl")
    assert [(i.question, i.answer) for i in b_cards] == [(c["question"], c["answer"]) for c in cards]
    assert all(i.scope == str(s.b.id) for i in b_cards)
    before = snapshot(store)
    same = await run(
        s, s.ann, s.a_general, "kb import", {"file": ("cards.jsonl", files[f"cards-{s.a.id}.jsonl"])}
    )
    assert "4 unchanged" in same.content
    assert snapshot(store) == before
