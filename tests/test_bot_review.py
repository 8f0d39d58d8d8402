"""``/review`` end to end: students' Not helpful votes reach their server's admins, who correct, hide or
dismiss them; the real bot, store and retriever against the local Discord server (stand-in encoder)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest

from bot.exts.review._views import NEEDS_MANAGE, NOT_YOURS
from knowledge import overrides
from knowledge.scope import Scope
from tests.bot_harness import World, running_tutor
from tests.fakediscord import CB_MODAL, DiscordServer, FakeMessage, FakeUser
from tests.fakediscord.records import walk_components

QUESTION = "what is a receptive field"
COMMENT = "it should say how big the area is"
CORRECTED = "The receptive field of an activation is the area of the input image that affects it."


@pytest.fixture
async def world(fake_quiz_retriever, demo_worker, tmp_path) -> AsyncIterator[World]:
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        yield w


def admin(w: World, name: str = "carol") -> tuple[FakeUser, Any]:
    """A member whose role has Manage Server (the role is returned, to take it away)."""
    role = w.server.create_role(w.guild, f"{name}-mods", permissions=discord.Permissions(manage_guild=True))
    user = w.server.create_user(name)
    w.server.add_member(w.guild, user, roles=[role])
    return user, role


async def changed(
    srv: DiscordServer, msg: FakeMessage, test: Callable[[FakeMessage], bool], what: str
) -> None:
    await srv.wait_for(lambda: test(msg), timeout=15, what=what)


def footer(msg: FakeMessage) -> str:
    return (msg.embed or {}).get("footer", {}).get("text", "")


def field(msg: FakeMessage, name: str) -> str:
    return next(f["value"] for f in msg.embed.get("fields", []) if f["name"] == name)


def labels(msg: FakeMessage) -> dict[str, bool]:
    """Each button's label and whether it can be clicked."""
    return {b["label"]: not b.get("disabled", False) for b in msg.buttons}


async def not_helpful(w: World, user: FakeUser, comment: str) -> int:
    """``user`` asks QUESTION in #general and marks the answer Not helpful; returns the entry's id."""
    srv = w.server
    answer = await (await srv.invoke_slash(user, w.general, "ask", {"question": QUESTION})).wait_message()
    click = await srv.click(answer, label="Not helpful", user=user)
    await (await srv.submit_modal(click, {"feedback:details": comment} if comment else {})).wait_message()
    return w.services.retriever.ask(QUESTION).item_id


async def open_review(w: World, user: FakeUser) -> FakeMessage:
    msg = await (await w.server.invoke_slash(user, w.general, "review")).wait_message(timeout=15)
    assert msg.ephemeral
    return msg


async def test_a_student_vote_is_corrected_by_the_server_admin(world: World) -> None:
    srv, store = world.server, world.services.store
    carol, _ = admin(world)
    item_id = await not_helpful(world, world.alice, COMMENT)
    assert await not_helpful(world, world.bob, "") == item_id
    shown = store.feedback()[0]["answer"]
    # Another server's votes and a DM's are not this server's to review.
    other = next(it for it in store.items() if it.servable and it.id != item_id)
    store.add_feedback(
        user_id="x", query="elsewhere", helpful=False, item_id=other.id, answer="a", guild_id="4242"
    )
    store.add_feedback(user_id="y", query="in a DM", helpful=False, item_id=other.id, answer="a")

    # Students cannot open the review: Discord hides it, and the bot refuses if a server unhides it.
    synced = srv.commands[world.guild.id]["review"]
    assert int(synced["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
    with pytest.raises(PermissionError):
        await srv.invoke_slash(world.bob, world.general, "review")
    srv.commands[world.guild.id]["review"]["default_member_permissions"] = None
    refused = await (await srv.invoke_slash(world.bob, world.general, "review")).wait_message()
    assert refused.ephemeral and "Manage Server" in refused.content

    review = await open_review(world, carol)
    assert footer(review).startswith(f"Entry 1 of 1 · item {item_id}")
    assert "receptive field" in review.embed["title"].lower()
    assert field(review, "Not helpful") == "👎 2"
    assert COMMENT in field(review, "Comments") and QUESTION in field(review, "Asked as")
    assert review.embed["description"].startswith("**Answer shown**")
    assert labels(review) == {
        "Correct": True,
        "Hide here": True,
        "Dismiss": True,
        "Prev": False,
        "Next": False,
    }

    # The review is the admin's own: a student clicking it (a forwarded link, a stale client) is refused.
    poke = await srv.click(review, label="Dismiss", user=world.bob)
    assert (await poke.wait_message()).content == NOT_YOURS
    assert overrides.review_queue(store, Scope.of(world.guild.id)).total == 1

    correct = await srv.click(review, label="Correct", user=carol)
    await correct.wait_response()
    assert correct.response_type == CB_MODAL
    [box] = [c for c in walk_components(correct.modal["components"]) if c.get("custom_id") == "review:answer"]
    assert box["value"] == shown, "the form starts from the answer the students saw"
    submitted = await srv.submit_modal(correct, {"review:answer": CORRECTED})
    await changed(srv, review, lambda m: "corrected for this server" in (m.content or ""), "the correction")
    assert not submitted.rejected
    assert review.embed["title"] == "Nothing to review" and not review.buttons

    fixed = overrides.load_overrides(store).correction(Scope.of(world.guild.id), item_id)
    assert fixed is not None and fixed.answer == CORRECTED and fixed.author == str(carol.id)
    assert fixed.original == store.item(item_id).answer and fixed.created_at, "provenance is kept"
    assert overrides.load_overrides(store).correction(Scope.of("4242"), item_id) is None
    resolved = [r for r in store.feedback() if r["guild_id"] == str(world.guild.id)]
    assert {(r["resolution"], r["resolved_by"]) for r in resolved} == {("corrected", str(carol.id))}
    assert overrides.review_queue(store, Scope.of("4242")).total == 1, "the other server's vote stays"


async def test_the_next_answer_in_the_server_is_the_correction(world: World) -> None:
    """After a correction the server is answered with it (the retriever serves a space's corrections)."""
    srv = world.server
    carol, _ = admin(world)
    item_id = await not_helpful(world, world.alice, COMMENT)
    review = await open_review(world, carol)
    correct = await srv.click(review, label="Correct", user=carol)
    await srv.submit_modal(correct, {"review:answer": CORRECTED})
    await changed(srv, review, lambda m: m.embed["title"] == "Nothing to review", "the correction")

    again = await (
        await srv.invoke_slash(world.bob, world.general, "ask", {"question": QUESTION})
    ).wait_message()
    assert CORRECTED in again.embed["description"]
    answer = world.services.retriever.ask(QUESTION, scope=Scope.of(world.guild.id))
    assert (
        answer.item_id == item_id and answer.correction is not None and answer.correction.answer == CORRECTED
    )
    assert world.services.retriever.ask(QUESTION).correction is None, "direct messages keep the notes' answer"


async def test_paging_dismiss_hide_and_a_revoked_admin(world: World) -> None:
    srv, store = world.server, world.services.store
    carol, mods = admin(world)
    guild, scope = str(world.guild.id), Scope.of(world.guild.id)
    a, b, c = [it for it in store.items() if it.servable][:3]
    for item, votes in ((a, 3), (b, 1), (c, 1)):  # most voted first, then the newest: a, c, b
        for n in range(votes):
            store.add_feedback(
                user_id=f"s{n}", query=f"about {item.id}", helpful=False, item_id=item.id, answer=item.answer,
                comment=f"comment {n} on {item.id}", guild_id=guild,
            )  # fmt: skip

    review = await open_review(world, carol)
    assert footer(review).startswith(f"Entry 1 of 3 · item {a.id}") and field(review, "Not helpful") == "👎 3"
    assert labels(review)["Prev"] is False and labels(review)["Next"] is True
    await srv.click(review, label="Next", user=carol)
    await changed(srv, review, lambda m: footer(m).startswith(f"Entry 2 of 3 · item {c.id}"), "page 2")
    await srv.click(review, label="Next", user=carol)
    await changed(srv, review, lambda m: footer(m).startswith(f"Entry 3 of 3 · item {b.id}"), "page 3")
    assert labels(review)["Next"] is False and labels(review)["Prev"] is True

    # Dismiss: the entry leaves this server's queue; the review shows the last one left.
    await srv.click(review, label="Dismiss", user=carol)
    await changed(srv, review, lambda m: footer(m).startswith(f"Entry 2 of 2 · item {c.id}"), "dismissed")
    assert f"Dismissed item {b.id}" in review.content
    assert [e.item_id for e in overrides.review_queue(store, scope).entries] == [a.id, c.id]
    assert overrides.load_overrides(store).hidden_in(scope) == frozenset(), "a dismissal changes nothing else"

    # Hide here: hidden in this server only, and off the queue.
    await srv.click(review, label="Hide here", user=carol)
    await changed(srv, review, lambda m: footer(m).startswith(f"Entry 1 of 1 · item {a.id}"), "hidden")
    assert f"Item {c.id} is hidden in this server" in review.content
    assert overrides.load_overrides(store).hidden_in(scope) == {c.id}
    assert overrides.load_overrides(store).hidden_in(Scope.of("4242")) == frozenset()

    # The message outlives a change of roles: without Manage Server, the buttons refuse.
    world.guild.members[carol.id].role_ids.remove(mods.id)
    refused = await srv.click(review, label="Dismiss", user=carol)
    assert (await refused.wait_message()).content == NEEDS_MANAGE
    refused_form = await srv.click(review, label="Correct", user=carol)
    assert (await refused_form.wait_message()).content == NEEDS_MANAGE
    assert overrides.review_queue(store, scope).total == 1


async def test_an_empty_queue_says_so(world: World) -> None:
    carol, _ = admin(world)
    review = await open_review(world, carol)
    assert review.embed["title"] == "Nothing to review" and not review.buttons
