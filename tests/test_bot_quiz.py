"""Quizzes in Discord, end to end: the real bot, store and quiz service against the local Discord server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.bot_harness import World, running_tutor
from tests.fakediscord import CB_DEFERRED_UPDATE, CB_MODAL


@pytest.fixture
async def world(fake_quiz_retriever, demo_worker, tmp_path) -> AsyncIterator[World]:
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        yield w


def reviews(world: World) -> list[dict]:
    return list(world.services.store.db.query("SELECT * FROM quiz_reviews ORDER BY id"))


async def next_render(world: World, message, before: dict | None) -> None:
    """Wait until the bot has edited the quiz message (its embed changed)."""
    await world.server.wait_for(
        lambda: message.embed != before, timeout=10, what="the quiz message to change"
    )


async def test_whole_free_answer_quiz_via_buttons_and_modal(world: World) -> None:
    srv, alice = world.server, world.alice
    ix = await srv.invoke_slash(alice, world.general, "quiz start", {"questions": 3, "mode": "free"})
    msg = await ix.wait_message()
    assert msg.embed["title"] == "Question 1/3"
    assert [b["label"] for b in msg.buttons][:1] == ["Answer"] and "Reveal" in [
        b["label"] for b in msg.buttons
    ]

    # 1: typed answer through the modal, then rated Good
    click = await srv.click(msg, label="Answer", user=alice)
    await click.wait_response()
    assert click.response_type == CB_MODAL
    before = msg.embed
    await srv.submit_modal(click, {"quiz:answer-text": "the area of the input that affects an activation"})
    await next_render(world, msg, before)
    assert "Reference answer" in [f["name"] for f in msg.embed["fields"]]
    contest = [] if msg.embed["title"].split(": ", 1)[1].startswith("✅") else ["I think I was right"]
    assert [b["label"] for b in msg.buttons] == ["Again", "Hard", "Good", "Easy", *contest, "End quiz"]
    before = msg.embed
    await srv.click(msg, label="Good", user=alice)
    await next_render(world, msg, before)
    assert msg.embed["title"] == "Question 2/3" and "Rated Good" in msg.embed["footer"]["text"]

    # 2: revealed, rated Again; 3: skipped
    before = msg.embed
    await srv.click(msg, label="Reveal", user=alice)
    await next_render(world, msg, before)
    assert msg.embed["title"].startswith("Question 2/3: 👀")
    before = msg.embed
    await srv.click(msg, label="Again", user=alice)
    await next_render(world, msg, before)
    before = msg.embed
    await srv.click(msg, label="Skip", user=alice)
    await next_render(world, msg, before)
    assert msg.embed["title"] == "Quiz complete" and not msg.components
    assert "2 answered" in msg.embed["description"] and "1 skipped" in msg.embed["description"]

    rows = reviews(world)
    assert [(r["position"], r["rating"], r["rated_by"]) for r in rows] == [(0, 3, "self"), (1, 1, "self")]
    assert rows[0]["verdict"] in ("correct", "partly", "wrong") and rows[1]["verdict"] == "revealed"
    assert {r["user_id"] for r in rows} == {str(alice.id)}


async def test_multiple_choice_and_non_owner_is_refused(world: World) -> None:
    srv, alice, bob = world.server, world.alice, world.bob
    ix = await srv.invoke_slash(alice, world.general, "quiz start", {"questions": 1, "mode": "mc"})
    msg = await ix.wait_message()
    assert [b["label"] for b in msg.buttons][:4] == ["A", "B", "C", "D"]
    intruder = await srv.click(msg, label="B", user=bob)
    note = await intruder.wait_message()
    assert note.ephemeral and "belongs to" in note.content
    assert reviews(world) == [] and msg.embed["title"] == "Question 1/1"
    before = msg.embed
    await srv.click(msg, label="C", user=alice)
    await next_render(world, msg, before)
    assert "Correct choice" in [f["name"] for f in msg.embed["fields"]]
    rate = await srv.click(msg, label="Easy", user=bob)
    assert "belongs to" in (await rate.wait_message()).content
    [row] = reviews(world)
    assert row["mode"] == "mc" and row["rated_by"] == "grade" and row["answer"]


async def locks_dropped(world: World) -> None:
    """Wait until the bot keeps no session lock (the click handlers finish just after their last edit)."""
    quiz = world.bot.get_cog("Quiz")
    await world.server.wait_for(
        lambda: not quiz._locks and not quiz._lock_users, timeout=10, what="the session locks to be dropped"
    )


def session_of(message) -> str:
    """The quiz session id a quiz message's buttons carry (``quiz:action:session:...``)."""
    return message.buttons[0]["custom_id"].split(":")[2]


async def test_a_click_waiting_for_its_session_is_deferred_first(world: World) -> None:
    srv, alice = world.server, world.alice
    quiz = world.bot.get_cog("Quiz")
    ix = await srv.invoke_slash(alice, world.general, "quiz start", {"questions": 1, "mode": "free"})
    msg = await ix.wait_message()
    before = msg.embed
    async with quiz._locked(session_of(msg)):  # an earlier click of this quiz is still being handled
        click = await srv.click(msg, label="Reveal", user=alice)
        await click.wait_response()
        assert click.response_type == CB_DEFERRED_UPDATE and msg.embed == before and reviews(world) == []
    await next_render(world, msg, before)
    assert msg.embed["title"].startswith("Question 1/1: 👀") and not click.rejected
    assert len(reviews(world)) == 1
    await locks_dropped(world)


async def test_session_locks_do_not_accumulate(world: World) -> None:
    srv = world.server
    users = [srv.create_user(f"learner{i}") for i in range(12)]

    async def play(i: int) -> None:
        user = users[i]
        ix = await srv.invoke_slash(user, world.general, "quiz start", {"questions": 2, "mode": "free"})
        msg = await ix.wait_message(timeout=20)
        before = msg.embed
        await srv.click(msg, label="Reveal", user=user)
        await next_render(world, msg, before)
        if i % 2:
            before = msg.embed
            await srv.click(msg, label="End quiz", user=user)
            await next_render(world, msg, before)
            assert msg.embed["title"] == "Quiz ended"
        else:
            ended = await srv.invoke_slash(user, world.general, "quiz end")
            summary = await ended.wait_message(timeout=20)
            assert summary.ephemeral and summary.embed["title"] == "Quiz ended"

    await asyncio.gather(*(play(i) for i in range(len(users))))
    assert len(reviews(world)) == len(users)
    await locks_dropped(world)


async def test_buttons_disable_themselves_when_they_time_out(
    fake_quiz_retriever, demo_worker, tmp_path
) -> None:
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path, view_timeout_s=0.5) as w:
        ix = await w.server.invoke_slash(w.alice, w.general, "quiz start", {"questions": 2})
        msg = await ix.wait_message()
        assert msg.buttons and not any(b.get("disabled") for b in msg.buttons)
        await w.server.wait_for(lambda: all(b.get("disabled") for b in msg.buttons), timeout=5)
        assert "timed out" in msg.embed["footer"]["text"] and msg.embed["title"] == "Question 1/2"
        resumed = await w.server.invoke_slash(w.alice, w.general, "quiz resume")
        again = await resumed.wait_message()
        assert again.embed["title"] == "Question 1/2" and not any(b.get("disabled") for b in again.buttons)


async def test_quiz_survives_a_bot_restart(fake_quiz_retriever, demo_worker, tmp_path) -> None:
    from tests.fakediscord import DiscordServer

    async with DiscordServer() as srv:
        async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path, server=srv) as first:
            alice, channel = first.alice, first.general
            ix = await srv.invoke_slash(alice, channel, "quiz start", {"questions": 2, "mode": "free"})
            msg = await ix.wait_message()
            before = msg.embed
            await srv.click(msg, label="Reveal", user=alice)
            await next_render(first, msg, before)
        # A new bot process on the same store: the old message's buttons still work.
        async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path, server=srv) as second:
            before = msg.embed
            await srv.click(msg, label="Hard", user=alice)
            await next_render(second, msg, before)
            assert msg.embed["title"] == "Question 2/2"
            before = msg.embed
            await srv.click(msg, label="End quiz", user=alice)
            await next_render(second, msg, before)
            assert msg.embed["title"] == "Quiz ended" and "1 answered" in msg.embed["description"]
            rows = reviews(second)
            assert [(r["position"], r["rating"], r["rated_by"]) for r in rows] == [(0, 2, "self")]


async def test_a_wrong_grade_can_be_contested_once(world: World) -> None:
    srv, alice = world.server, world.alice
    ix = await srv.invoke_slash(alice, world.general, "quiz start", {"questions": 2, "mode": "free"})
    msg = await ix.wait_message()
    click = await srv.click(msg, label="Answer", user=alice)
    await click.wait_response()
    before = msg.embed
    await srv.submit_modal(click, {"quiz:answer-text": "bananas, probably"})
    await next_render(world, msg, before)
    assert "I think I was right" in [b["label"] for b in msg.buttons]
    intruder = await srv.click(msg, label="I think I was right", user=world.bob)
    assert "belongs to" in (await intruder.wait_message()).content
    before = msg.embed
    await srv.click(msg, label="I think I was right", user=alice)
    await next_render(world, msg, before)
    assert any("an admin to check" in f["value"] for f in msg.embed["fields"])
    assert "I think I was right" not in [b["label"] for b in msg.buttons]  # once is enough
    assert [b["label"] for b in msg.buttons][:4] == ["Again", "Hard", "Good", "Easy"]
    [row] = world.services.store.db.query("SELECT * FROM grade_contests")
    assert (
        row["user_id"] == str(alice.id)
        and row["answer"] == "bananas, probably"
        and row["status"] == "pending"
    )
