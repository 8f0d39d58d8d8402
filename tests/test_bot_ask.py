"""Asking the bot, end to end: the real bot, store and retriever against the local Discord server.

The subject is the bot (replies, buttons, modals, feedback, errors), so the retriever embeds with the
stand-in encoder (``fake_retriever``; the shipped ranker and cut-offs); one test keeps the real model, where
the subject is a real answer: a kind of question the notes lack is refused outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from bot.errors import GENERIC
from bot.exts.ask._embeds import UNSURE_NOTE
from knowledge.files import connect_read_only
from tests.bot_harness import World, running_tutor, store_held
from tests.fakediscord import CB_DEFERRED_UPDATE, CB_MESSAGE, CB_MODAL

ANSWERED = "what is a receptive field"
NO_MATCH = "what is the weather like today"
# A vague question; the test places the cut-offs around its own probability: what is tested here is the
# bot's handling of an unsure answer, not the calibration.
UNSURE = "why do gradients get small in deep networks"


@pytest.fixture
def unsure_query(fake_retriever) -> str:
    import dataclasses

    probability = fake_retriever.ask(UNSURE).score
    fake_retriever.model = dataclasses.replace(
        fake_retriever.model, answer_min=min(1.0, probability + 0.01), unsure_min=max(0.0, probability - 0.01)
    )
    answer = fake_retriever.ask(UNSURE)
    assert answer.status == "unsure" and answer.alternatives
    return UNSURE


@pytest.fixture
async def world(fake_retriever, demo_worker, tmp_path) -> AsyncIterator[World]:
    async with running_tutor(fake_retriever, demo_worker, tmp_path) as w:
        yield w


def ephemeral(message) -> bool:
    """The bot's ephemeral reply (after a deferred update, an interaction's original is the answer itself)."""
    return message.ephemeral


def field(embed: dict, name: str) -> str:
    return next(f["value"] for f in embed.get("fields", []) if f["name"].startswith(name))


async def test_mention_is_answered_with_embed_and_buttons(world: World) -> None:
    srv = world.server
    asked = await srv.post_message(world.alice, world.general, f"{srv.bot_user.mention} {ANSWERED}?")
    reply = await srv.wait_for_message(world.general, after=asked)
    embed = reply.embed
    assert embed is not None and "receptive field" in embed["title"].lower()
    assert embed["description"] and "I'm not sure" not in embed["description"]
    assert "entry" in field(embed, "Source") and "questionnaire" in field(embed, "Source").lower()
    assert "high" in field(embed, "Confidence")
    assert embed["footer"]["text"].startswith("You asked:") and ANSWERED in embed["footer"]["text"]
    assert reply.reference and reply.reference["message_id"] == str(asked.id), "a reply to the question"
    assert [b["label"] for b in reply.buttons] == ["Show me", "Helpful", "Not helpful"]
    assert not reply.pings_anyone


async def test_dm_and_answer_channel_are_answered_other_messages_ignored(world: World) -> None:
    srv = world.server
    await srv.post_message(world.alice, world.general, f"{ANSWERED}? (not addressed to the bot)")
    dm = srv.dm_channel(world.alice)
    await srv.post_message(world.alice, dm, "what is dropout")
    in_dm = await srv.wait_for_message(dm)
    assert "dropout" in in_dm.text.lower()
    posted = await srv.post_message(world.bob, world.answers, ANSWERED)
    in_channel = await srv.wait_for_message(world.answers, after=posted)
    assert "receptive field" in in_channel.embed["title"].lower()
    assert srv.messages_in(world.general, author=srv.bot_user) == [], "plain chatter is left alone"


async def test_ask_answered(world: World) -> None:
    ix = await world.server.invoke_slash(world.alice, world.general, "ask", {"question": ANSWERED})
    msg = await ix.wait_message()
    assert ix.response_type == CB_MESSAGE and ix.latency is not None and ix.latency < 3
    assert "receptive field" in msg.embed["title"].lower() and "entry" in field(msg.embed, "Source")
    assert not msg.ephemeral and not msg.pings_anyone


async def test_ask_unsure_offers_did_you_mean_and_answers_the_pick(world: World, unsure_query: str) -> None:
    srv = world.server
    ix = await srv.invoke_slash(world.alice, world.general, "ask", {"question": unsure_query})
    msg = await ix.wait_message()
    assert msg.embed["description"].startswith(UNSURE_NOTE)
    assert "low" in field(msg.embed, "Confidence")
    guesses = [b for b in msg.buttons if b["label"].startswith("Did you mean")]
    assert 1 <= len(guesses) <= 3
    expected = world.services.retriever.ask(unsure_query).alternatives[0]
    click = await srv.click(msg, guesses[0]["custom_id"])
    picked = await click.wait_message()
    assert picked.embed["title"] == expected.question[:256] or picked.embed["title"].endswith("…")
    assert field(picked.embed, "Confidence") == "you picked this entry"
    assert not any(b["label"].startswith("Did you mean") for b in picked.buttons)
    assert unsure_query in picked.embed["footer"]["text"], "the pick keeps the original question"


async def test_match_without_an_answer_offers_related_entries(world: World) -> None:
    srv, question = world.server, "where do I find the leslie smith paper that introduced the lr finder"
    expected = world.services.retriever.ask(question)
    assert expected.status == "no_answer" and expected.answer is None and expected.no_answer_reason
    assert expected.alternatives
    ix = await srv.invoke_slash(world.alice, world.general, "ask", {"question": question})
    msg = await ix.wait_message()
    assert "no answer" in msg.embed["description"].lower()
    related = [b for b in msg.buttons if b["label"].startswith("See also: ")]
    assert 1 <= len(related) <= 3
    click = await srv.click(msg, related[0]["custom_id"])
    picked = await click.wait_message()
    assert picked.embed["title"] == expected.alternatives[0].question[:256] or picked.embed["title"].endswith(
        "…"
    )


@pytest.mark.model
async def test_kind_the_notes_lack_is_refused(retriever, demo_worker, tmp_path) -> None:
    """With the real model: a question about what the notes lack is refused, with no "did you mean"."""
    async with running_tutor(retriever, demo_worker, tmp_path) as w:
        question = {"question": "what is nesterov momentum?"}
        msg = await (await w.server.invoke_slash(w.alice, w.general, "ask", question)).wait_message()
        assert msg.embed["title"] == "That's not in my notes"
        assert not [b for b in msg.buttons if b["label"].startswith(("See also: ", "Did you mean"))]


async def test_ask_no_match_says_so_and_suggests_topics(world: World) -> None:
    ix = await world.server.invoke_slash(world.alice, world.general, "ask", {"question": NO_MATCH})
    msg = await ix.wait_message()
    assert msg.embed["title"] == "That's not in my notes"
    assert "Topics I do know nearby:" in msg.embed["description"]
    assert [b["label"] for b in msg.buttons] == ["Helpful", "Not helpful"]


async def test_feedback_buttons_and_modal_are_stored(world: World) -> None:
    srv, store = world.server, world.services.store
    ix = await srv.invoke_slash(world.alice, world.general, "ask", {"question": ANSWERED})
    msg = await ix.wait_message()
    answer_text = msg.embed["description"]

    helpful = await srv.click(msg, label="Helpful", user=world.alice)
    thanks = await helpful.wait_message(ephemeral)
    assert thanks.ephemeral and "Thanks" in thanks.content
    again = await srv.click(msg, label="Not helpful", user=world.alice)
    assert "already rated" in (await again.wait_message()).content

    not_helpful = await srv.click(msg, label="Not helpful", user=world.bob)
    await not_helpful.wait_response()
    assert not_helpful.response_type == CB_MODAL and not_helpful.modal["title"] == "What was wrong?"
    submit = await srv.submit_modal(not_helpful, {"feedback:details": "it should mention stride"})
    assert (await submit.wait_message(ephemeral)).ephemeral

    rows = store.feedback()
    assert [(r["user_id"], r["helpful"]) for r in rows] == [(str(world.alice.id), 1), (str(world.bob.id), 0)]
    for row in rows:
        assert row["query"] == ANSWERED and row["status"] == "answered" and row["item_id"]
        assert row["answer"] and row["answer"] in answer_text
        assert row["guild_id"] == str(world.guild.id) and row["channel_id"] == str(world.general.id)
    assert rows[0]["comment"] is None and rows[1]["comment"] == "it should mention stride"


async def test_feedback_is_answered_while_the_store_is_busy(world: World) -> None:
    srv, store = world.server, world.services.store
    ix = await srv.invoke_slash(world.alice, world.general, "ask", {"question": ANSWERED})
    msg = await ix.wait_message()
    async with store_held(store):  # another thread holds the store (a long write): votes wait
        not_helpful = await srv.click(msg, label="Not helpful", user=world.bob)
        await not_helpful.wait_response()
        assert not_helpful.response_type == CB_MODAL, "the form opens before the vote is stored"
        helpful = await srv.click(msg, label="Helpful", user=world.alice)
        await helpful.wait_response()
        assert helpful.response_type == CB_DEFERRED_UPDATE, "deferred rather than left unanswered"
        with contextlib.closing(connect_read_only(store.path)) as peek:  # not through the held store
            assert peek.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0
    submit = await srv.submit_modal(not_helpful, {"feedback:details": "it is too short"})
    await submit.wait_message(ephemeral)
    thanks = await helpful.wait_followup()
    assert thanks.ephemeral and "Thanks" in thanks.content
    assert not not_helpful.rejected and not helpful.rejected and not submit.rejected
    rows = {r["user_id"]: r for r in store.feedback()}
    assert rows[str(world.bob.id)]["helpful"] == 0 and rows[str(world.bob.id)]["comment"] == "it is too short"
    assert rows[str(world.alice.id)]["helpful"] == 1 and rows[str(world.alice.id)]["comment"] is None


async def test_modal_may_be_left_empty(world: World) -> None:
    srv = world.server
    posted = await srv.post_message(world.alice, world.general, f"{srv.bot_user.mention} {NO_MATCH}")
    reply = await srv.wait_for_message(world.general, after=posted)
    click = await srv.click(reply, label="Not helpful", user=world.alice)
    submit = await srv.submit_modal(click, {})
    await submit.wait_message(ephemeral)
    [row] = world.services.store.feedback()
    assert row["status"] == "no_match" and row["helpful"] == 0 and row["comment"] is None
    assert row["query"] == f"{srv.bot_user.mention} {NO_MATCH}".replace(srv.bot_user.mention, "").strip()


async def test_unexpected_error_gets_a_friendly_message_and_a_logged_traceback(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    srv = world.server
    ix = await srv.invoke_slash(world.alice, world.general, "ask", {"question": ANSWERED})
    msg = await ix.wait_message()
    warm = world.bot.get_cog("Quiz")._warm  # the quiz's start-up reads the same (one) store: let it finish
    if warm is not None:
        await asyncio.wait_for(warm, timeout=30)
    world.services.store.close()  # the database goes away under the bot: a real failure, not a mock
    with caplog.at_level(logging.INFO):
        click = await srv.click(msg, label="Helpful", user=world.alice)
        reply = await click.wait_message(ephemeral)
    assert reply.ephemeral and reply.content == GENERIC
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "bot.errors" and record.exc_info is not None
    assert "Cannot operate on a closed database" in caplog.text
    assert srv.token not in caplog.text


async def test_buttons_are_removed_when_they_expire(fake_retriever, demo_worker, tmp_path) -> None:
    async with running_tutor(fake_retriever, demo_worker, tmp_path, view_timeout_s=0.3) as w:
        srv = w.server
        ix = await srv.invoke_slash(w.alice, w.general, "ask", {"question": ANSWERED})
        from_command = await ix.wait_message()
        posted = await srv.post_message(w.alice, w.general, f"{srv.bot_user.mention} {ANSWERED}")
        from_mention = await srv.wait_for_message(w.general, after=posted)
        assert from_command.buttons and from_mention.buttons
        await srv.wait_for(lambda: not from_command.components and not from_mention.components, timeout=5)
        assert from_command.embed and from_mention.embed, "only the buttons go"
