"""Admin commands end to end: refusal for non-admins, /kb disable, /kb add, per-guild answer channels."""

from __future__ import annotations

import asyncio
import threading

import discord
import pytest

from tests.bot_harness import running_tutor
from tests.fakediscord import CB_DEFERRED_MESSAGE

QUESTION = "what is a receptive field"


async def test_admin_commands(fake_quiz_retriever, demo_worker, tmp_path) -> None:
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        srv, bob = w.server, w.bob
        managers = srv.create_role(w.guild, "mods", permissions=discord.Permissions(manage_guild=True))
        carol = srv.create_user("carol")
        srv.add_member(w.guild, carol, roles=[managers])

        # Discord itself hides the commands from members without Manage Server ...
        with pytest.raises(PermissionError):
            await srv.invoke_slash(bob, w.general, "kb disable", {"item_id": 1})
        # ... and if a server overrides that, the bot still refuses.
        srv.commands[w.guild.id]["kb"]["default_member_permissions"] = None
        refused = await (await srv.invoke_slash(bob, w.general, "kb disable", {"item_id": 1})).wait_message()
        assert refused.ephemeral and "Manage Server" in refused.content

        item_id = w.services.retriever.ask(QUESTION).item_id
        done = await srv.invoke_slash(carol, w.general, "kb disable", {"item_id": item_id})
        reply = await done.wait_message(timeout=30)
        assert f"Item {item_id} disabled" in reply.content
        assert "disabled" in w.services.store.item(item_id).flags
        assert w.services.retriever.ask(QUESTION).item_id != item_id, "the retriever reloaded"

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
        new_id = int(added.content.split()[2].rstrip(":"))
        item = w.services.store.item(new_id)
        assert item.source == f"guild_{w.guild.id}.jsonl" and new_id in w.services.retriever.items
        assert w.services.retriever.ask("what is the zorblax layer").item_id == new_id

        # Per-guild answer channels, on top of the global setting.
        await (
            await srv.invoke_slash(carol, w.general, "settings answers", {"channel": w.general})
        ).wait_message()
        posted = await srv.post_message(w.alice, w.general, "what is stride")  # QUESTION's entry is disabled
        answer = await srv.wait_for_message(w.general, after=posted)
        assert answer.embed is not None and "stride" in answer.embed["title"].lower()


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
