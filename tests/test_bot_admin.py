"""Admin commands end to end: /kb for a server's own cards and hides (Manage Server, checked by Discord and
by the bot), /owner for the tutor's owners only, per-guild answer channels.

Two servers and direct messages, and what each sees, are ``test_bot_spaces.py``.
"""

from __future__ import annotations

import asyncio
import threading

import discord
import pytest

from knowledge.overrides import load_overrides
from knowledge.scope import Scope
from tests.bot_harness import running_tutor
from tests.fakediscord import CB_DEFERRED_MESSAGE

QUESTION = "what is a receptive field"


def item_id_in(reply) -> int:
    """The id in "Added item 123: ..." / "Saved item 123: ..."."""
    return int(reply.content.split()[2].rstrip(":"))


async def test_admin_commands(fake_quiz_retriever, demo_worker, tmp_path) -> None:
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        srv, bob, store = w.server, w.bob, w.services.store
        here = Scope.of(w.guild.id)
        managers = srv.create_role(w.guild, "mods", permissions=discord.Permissions(manage_guild=True))
        carol = srv.create_user("carol")
        srv.add_member(w.guild, carol, roles=[managers])

        # Discord itself hides the commands from members without Manage Server ...
        with pytest.raises(PermissionError):
            await srv.invoke_slash(bob, w.general, "kb hide", {"item_id": 1})
        # ... and if a server overrides that, the bot still refuses.
        srv.commands[w.guild.id]["kb"]["default_member_permissions"] = None
        for command, options in (("kb hide", {"item_id": 1}), ("kb add", {}), ("kb export", {})):
            refused = await (await srv.invoke_slash(bob, w.general, command, options)).wait_message()
            assert refused.ephemeral and "Manage Server" in refused.content, command

        # /kb hide: this server only (the shared note stays for everyone else).
        item_id = w.services.retriever.ask(QUESTION).item_id
        done = await srv.invoke_slash(carol, w.general, "kb hide", {"item_id": item_id})
        reply = await done.wait_message(timeout=30)
        assert f"Item {item_id} is hidden in this server" in reply.content
        assert item_id in load_overrides(store).hidden_in(here)
        assert "disabled" not in store.item(item_id).flags, "never hidden everywhere by a server"
        restored = await (
            await srv.invoke_slash(carol, w.general, "kb restore", {"item_id": item_id})
        ).wait_message()
        assert "shown in this server again" in restored.content
        assert item_id not in load_overrides(store).hidden_in(here)

        # /kb add, /kb edit (prefilled), /kb remove: this server's own cards.
        add = await srv.invoke_slash(carol, w.general, "kb add")
        submit = await srv.submit_modal(
            add,
            {
                "kb:question": "What is the zorblax layer?",
                "kb:answer": "A made-up layer used to test /kb add.",
            },
        )
        added = await submit.wait_message(timeout=30)
        assert added.content.startswith("Added item")
        new_id = item_id_in(added)
        item = store.item(new_id)
        assert item.source == f"guild_{w.guild.id}.jsonl" and item.scope == str(w.guild.id)
        assert new_id in w.services.retriever.items

        # item_id suggests this server's cards by question (edit, remove) and what it can hide (hide).
        choices = await srv.autocomplete(
            carol, w.general, "kb edit", {"item_id": "zorblax"}, focused="item_id"
        )
        assert [c["value"] for c in choices] == [new_id] and "zorblax" in choices[0]["name"]
        choices = await srv.autocomplete(
            carol, w.general, "kb hide", {"item_id": "receptive"}, focused="item_id"
        )
        assert item_id in [c["value"] for c in choices]
        assert (
            await srv.autocomplete(bob, w.general, "kb hide", {"item_id": "receptive"}, focused="item_id")
            == []
        )

        edit = await srv.invoke_slash(carol, w.general, "kb edit", {"item_id": new_id})
        await edit.wait_response()
        assert "What is the zorblax layer?" in str(edit.modal), "the modal is prefilled"
        saved = await (await srv.submit_modal(edit, {"kb:answer": "A made-up layer, edited."})).wait_message(
            timeout=30
        )
        assert saved.content.startswith(f"Saved item {new_id}")
        assert store.item(new_id).answer == "A made-up layer, edited."
        assert store.item(new_id).question == "What is the zorblax layer?"

        # A shared note is not a card of this server: it can be hidden, not edited.
        refused = await (
            await srv.invoke_slash(carol, w.general, "kb edit", {"item_id": item_id})
        ).wait_message()
        assert "shared notes" in refused.content and refused.ephemeral

        removed = await (
            await srv.invoke_slash(carol, w.general, "kb remove", {"item_id": new_id})
        ).wait_message(timeout=30)
        assert removed.content.startswith(f"Removed item {new_id}")
        assert store.item(new_id).retired and new_id not in w.services.retriever.items

        # Per-guild answer channels, on top of the global setting.
        await (
            await srv.invoke_slash(carol, w.general, "settings answers", {"channel": w.general})
        ).wait_message()
        posted = await srv.post_message(w.alice, w.general, "what is stride")
        answer = await srv.wait_for_message(w.general, after=posted)
        assert answer.embed is not None and "stride" in answer.embed["title"].lower()


async def test_owner_commands_only_for_the_owners(fake_quiz_retriever, demo_worker, tmp_path) -> None:
    """/owner is registered in the owners' server only, shown to its administrators, and runs for the
    tutor's owners only (the application's owner here; an administrator of the server is refused)."""
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        srv, store, owner = w.server, w.services.store, w.server.owner
        assert "owner" in srv.commands[w.guild.id]
        await w.bot.sync_commands()  # `tutor bot sync`: the global commands
        assert "kb" in srv.commands[None] and "owner" not in srv.commands[None]

        admins = srv.create_role(w.guild, "admins", permissions=discord.Permissions(administrator=True))
        managers = srv.create_role(w.guild, "mods", permissions=discord.Permissions(manage_guild=True))
        ada, carol = srv.create_user("ada"), srv.create_user("carol")
        srv.add_member(w.guild, ada, roles=[admins])
        srv.add_member(w.guild, carol, roles=[managers])
        item_id = w.services.retriever.ask(QUESTION).item_id

        with pytest.raises(PermissionError):  # Manage Server is not enough to see it
            await srv.invoke_slash(carol, w.general, "owner disable", {"item_id": item_id})
        for command, options in (("owner disable", {"item_id": item_id}), ("owner reload", {})):
            refused = await (await srv.invoke_slash(ada, w.general, command, options)).wait_message()
            assert refused.ephemeral and "Only the tutor's owners" in refused.content, command
        assert "disabled" not in store.item(item_id).flags

        done = await (
            await srv.invoke_slash(owner, w.general, "owner disable", {"item_id": item_id})
        ).wait_message(timeout=30)
        assert f"Item {item_id} hidden in every server and DM" in done.content
        assert "disabled" in store.item(item_id).flags
        assert item_id not in {a.item_id for a in [w.services.retriever.ask(QUESTION)]}, (
            "the retriever reloaded"
        )
        back = await (
            await srv.invoke_slash(owner, w.general, "owner disable", {"item_id": item_id, "restore": True})
        ).wait_message(timeout=30)
        assert "shown everywhere again" in back.content and "disabled" not in store.item(item_id).flags

        reloaded = await (await srv.invoke_slash(owner, w.general, "owner reload")).wait_message(timeout=60)
        assert reloaded.content.startswith("Reloaded ") and "items live" in reloaded.content


async def test_no_owner_commands_without_an_owners_server(fake_quiz_retriever, demo_worker, tmp_path) -> None:
    """Without TUTOR_DEV_GUILD_ID there is no server to offer /owner in: it is not registered at all."""
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path, dev_guild_id=None) as w:
        assert w.bot.get_cog("Owner") is None and w.bot.get_cog("Admin") is not None
        await w.bot.sync_commands()
        assert "kb" in w.server.commands[None] and "owner" not in w.server.commands[None]


async def test_event_loop_never_waits_for_the_guild_settings(
    fake_quiz_retriever, demo_worker, tmp_path
) -> None:
    """A settings write holding the settings' lock in another thread blocks neither the answers nor /quiz."""
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        srv, guilds = w.server, w.services.guilds
        await asyncio.to_thread(guilds.update, w.guild.id, quiz_questions=2)
        held, release = threading.Event(), threading.Event()

        def slow_write() -> None:
            with guilds._lock:
                held.set()
                # Bounded: a bot that blocks its event loop on the lock fails the test instead of hanging it.
                release.wait(timeout=30)

        writer = threading.Thread(target=slow_write)
        writer.start()
        try:
            assert await asyncio.to_thread(held.wait, 10)
            start = await srv.invoke_slash(w.alice, w.general, "quiz start")
            posted = await srv.post_message(w.bob, w.general, f"{srv.bot_user.mention} {QUESTION}")
            answer = await srv.wait_for_message(w.general, lambda m: m.embed is not None, after=posted)
            assert "receptive" in answer.embed["title"].lower()
            await start.wait_response()
            assert start.response_type == CB_DEFERRED_MESSAGE and not start.rejected
            assert writer.is_alive(), "all of this happened while the write held the lock"
        finally:
            release.set()
            await asyncio.to_thread(writer.join)
        quiz = await start.wait_message(timeout=20)
        assert quiz.embed["title"] == "Question 1/2", "the server's default number of questions"
