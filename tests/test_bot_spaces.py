"""Every server its own tutor, end to end: the real bot against the local Discord server with two servers,
A (the owners' server, where the bot syncs on start) and B, and direct messages.

A server's cards and hides are its own: A's card is answered in A, never in B or in DMs; a note A hides is
gone in A only. A's admins cannot touch B's cards (B's card ids are "no such item", word for word as an id
that does not exist), members without Manage Server cannot run /kb, a server admin cannot run the owners'
commands, an import is all or nothing and names the bad line, and an export imports back. A correction
made through /review in A is A's answer and A's quiz reference only; A's cards are never a "did you mean",
a citation or a statistic in B or DMs; and after /forget-me no row of the database mentions the user.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import discord
import pytest

from bot.exts.ask._embeds import answer_embeds
from index.answer import ANSWERED
from knowledge.quiz.selection import select_cards
from knowledge.readable import readable
from knowledge.scope import Scope
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


# --- corrections, alternatives and statistics, and /forget-me, per space -------------------------------
CORRECTED = "Corrected by server A's staff: this is the answer A's students get from now on."
COMMENT = "the answer is too vague"


def field(msg, name: str) -> str | None:
    """The value of the embed field ``name`` (None when the embed has no such field)."""
    return next((f["value"] for f in (msg.embed or {}).get("fields", []) if f["name"] == name), None)


def first_of_its_topic(s: Spaces):
    """A shared note that answers its own question (alone in its duplicate group, so a correction of it is
    what is served), and that a one-question typed quiz on its topic asks first, in A and in B (nothing is
    due yet): ``/quiz start topic:<it>`` asks exactly this note. Returns the note and the topic."""
    retriever, quiz = s.w.services.retriever, s.w.services.quiz
    store, now = s.w.services.store, datetime.now(UTC)
    views = [quiz.scoped(Scope.of(guild.id)) for guild in (s.a, s.b)]
    for card in views[0].cards:
        item = retriever.items.get(card.item_id)
        if card.scope is not None or card.cloze or item is None or len(card.topic) > 100:
            continue
        if len(store.group_members(item.group)) != 1:
            continue
        firsts = [
            [c.item_id for c, _ in select_cards(v, {}, now, 1, topic=card.topic, mode="free")] for v in views
        ]
        if firsts != [[item.id], [item.id]]:
            continue
        answer = retriever.ask(item.question)
        if answer.status == ANSWERED and answer.item_id == item.id:
            return item, card.topic
    raise AssertionError("no shared note is both answered for its own question and first of its topic")


async def changed(s: Spaces, msg, test, what: str) -> None:
    await s.w.server.wait_for(lambda: test(msg), timeout=15, what=what)


async def vote_not_helpful(s: Spaces, answer, user: FakeUser, comment: str) -> None:
    """``user`` clicks Not helpful under ``answer`` and sends ``comment`` in the form."""
    click = await s.w.server.click(answer, label="Not helpful", user=user)
    thanks = await (await s.w.server.submit_modal(click, {"feedback:details": comment})).wait_message()
    assert "Thanks" in thanks.content


async def quiz_reference(s: Spaces, user: FakeUser, channel: FakeChannel, topic: str):
    """``user`` starts a one-question typed quiz on ``topic`` in ``channel`` and reveals the answer: the
    question's message, with its Source field and the Reference answer."""
    srv = s.w.server
    ix = await srv.invoke_slash(user, channel, "quiz start", {"topic": topic, "questions": 1, "mode": "free"})
    msg = await ix.wait_message(timeout=20)
    assert msg.embed["title"] == "Question 1/1", msg.text
    source = field(msg, "Source")
    before = msg.embed
    await srv.click(msg, label="Reveal", user=user)
    await changed(s, msg, lambda m: m.embed != before, "the revealed answer")
    return source, field(msg, "Reference answer")


async def test_a_correction_is_served_and_quizzed_in_its_server_only(spaces: Spaces) -> None:
    s, srv = spaces, spaces.w.server
    dm = srv.dm_channel(s.student)
    note, topic = first_of_its_topic(s)
    title = next(d.title for d in s.w.services.store.documents() if d.source == note.source)
    before = {}
    for where in (s.b_general, dm):
        before[where.id] = (await ask_in(s, where, note.question)).embed

    # A student asks in A and marks the answer Not helpful, with a comment.
    asked = await ask_in(s, s.a_general, note.question)
    assert readable(note.answer) in asked.embed["description"] and field(asked, "Corrected") is None
    await vote_not_helpful(s, asked, s.student, COMMENT)

    # A's admin reviews it and corrects the answer.
    review = await run(s, s.ann, s.a_general, "review")
    assert review.embed["footer"]["text"].startswith(f"Entry 1 of 1 · item {note.id}")
    assert COMMENT in field(review, "Comments")
    correct = await srv.click(review, label="Correct", user=s.ann)
    await srv.submit_modal(correct, {"review:answer": CORRECTED})
    await changed(s, review, lambda m: "corrected for this server" in (m.content or ""), "the correction")

    # In A: the corrected answer, said to be corrected by this server's staff.
    again = await ask_in(s, s.a_general, note.question, user=s.ben)
    assert CORRECTED in again.embed["description"] and readable(note.answer) not in again.embed["description"]
    assert field(again, "Corrected").startswith("Answer corrected by this server's staff ("), again.text
    # In B and in DMs: the note's own answer, exactly as before, and no "Corrected" field.
    for where in (s.b_general, dm):
        reply = await ask_in(s, where, note.question)
        assert reply.embed == before[where.id], f"{where.name} changed"
        assert CORRECTED not in reply.text and field(reply, "Corrected") is None

    # The quiz, through the bot: A's asks and reveals the correction, B's the original answer.
    source, reference = await quiz_reference(s, s.student, s.a_general, topic)
    assert source == f"{title}, entry {note.n}" and reference == CORRECTED
    source, reference = await quiz_reference(s, s.ben, s.b_general, topic)
    assert source == f"{title}, entry {note.n}" and reference == readable(note.answer)
    assert CORRECTED not in reference


ZORBLAX_DECK = (
    b"## What is the stride of a zorblax convolution?\nIn a zorblax convolution the stride is always three.\n\n"
    b"## What is the zorblax receptive field?\nA zorblax layer sees the whole image at once.\n\n"
    b"## How does a zorblax layer compute its learning rate?\nZorblax layers pick it from the moon phase.\n"
)
# Questions near A's cards: in A, A's cards are the answer or a "did you mean"; elsewhere, never.
NEAR = (
    "learning rate of a layer",
    "what is the stride of a layer",
    "what is the receptive field of a layer",
    "zorblax learning rate",
    "what is a zorblax",
    "zorblax convolution",
)


def mentions(reply, cards) -> list[str]:
    """Where a reply shows one of ``cards`` (questions as button labels or titles, answers, citations)."""
    found = [f"button {b['label']!r}" for b in reply.buttons if "zorblax" in b["label"].lower()]
    embed = reply.embed or {}
    for card in cards:
        if card.question in embed.get("title", "") or card.answer in reply.text:
            found.append(f"card {card.id}")
    sources = field(reply, "Source") or field(reply, "Sources") or ""
    found += [f"citation {line!r}" for line in sources.splitlines() if "zorblax" in line.lower()]
    return found


async def test_another_servers_cards_are_never_alternatives_citations_or_statistics(spaces: Spaces) -> None:
    s, srv, quiz, retriever = spaces, spaces.w.server, spaces.w.services.quiz, spaces.w.services.retriever
    dm = srv.dm_channel(s.student)
    imported = await run(s, s.ann, s.a_general, "kb import", {"file": ("zorblax.md", ZORBLAX_DECK)})
    assert "Imported 3 cards" in imported.content, imported.content
    cards = s.w.services.store.items(source=f"guild_{s.a.id}.jsonl")
    ours = {c.id for c in cards}
    assert len(ours) == 3

    offered_in_a = offered_elsewhere = 0
    for text in NEAR:
        in_a = retriever.ask(text, scope=Scope.of(s.a.id))
        assert in_a.item_id in ours or ours & {a.item_id for a in in_a.alternatives}, f"{text!r} is near A's"
        reply = await ask_in(s, s.a_general, text)
        offered_in_a += any("zorblax" in b["label"].lower() for b in reply.buttons)
        for scope in (Scope.of(s.b.id), Scope.shared()):
            answer = retriever.ask(text, scope=scope)
            shown = {
                answer.item_id,
                *(a.item_id for a in answer.alternatives),
                *(c.item_id for c in answer.citations),
            }
            assert not shown & ours, (text, scope, answer)
        for where in (s.b_general, dm):
            reply = await ask_in(s, where, text)
            assert mentions(reply, cards) == [], (where.name, text, reply.text)
            offered_elsewhere += any(b["label"].startswith("Did you mean") for b in reply.buttons)
    assert offered_in_a, "in A, a question near A's cards offers one as a 'did you mean'"
    assert offered_elsewhere, "B and DMs offer alternatives too: the notes'"

    # A student reviews A's card in A: /stats in A counts it; in B and in DMs, not.
    title = next(d.title for d in s.w.services.store.documents() if d.source == f"guild_{s.a.id}.jsonl")
    source, _reference = await quiz_reference(s, s.student, s.a_general, title)
    assert source.startswith(f"{title}, entry ")
    await s.w.bot.tree.sync()  # the global commands: DMs
    reported = {}
    for where in (s.a_general, s.b_general, dm):
        stats = await run(s, s.student, where, "stats", timeout=30)
        reported[where.id] = (field(stats, "Reviews"), field(stats, "Cards"), stats.embed["fields"])
    uid = str(s.student.id)
    a, b, shared = (quiz.stats(uid, scope=x) for x in (Scope.of(s.a.id), Scope.of(s.b.id), Scope.shared()))
    assert (a.reviews, b.reviews, shared.reviews) == (1, 0, 0)
    assert a.cards_total == b.cards_total + 3 == shared.cards_total + 3
    assert reported[s.a_general.id][0] == "1 (1 this week)"
    assert reported[s.b_general.id][0] == reported[dm.id][0] == "0 (0 this week)"
    assert reported[s.a_general.id][1].startswith(f"1/{a.cards_total} seen")
    assert reported[s.b_general.id][1].startswith(f"0/{b.cards_total} seen")
    assert reported[s.b_general.id][2] == reported[dm.id][2], "B (no cards of its own) sees what DMs see"


def mentioning(path, needle: str) -> dict[str, list[tuple]]:
    """Every row, per table of the SQLite file (all of ``sqlite_master``'s tables), with a text or number
    that contains ``needle``."""
    conn = sqlite3.connect(path)
    try:
        found: dict[str, list[tuple]] = {}
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            rows = [
                tuple(row)
                for row in conn.execute(f'SELECT * FROM "{table}"')
                if any(isinstance(v, str | int) and needle in str(v) for v in row)
            ]
            if rows:
                found[table] = rows
        return found
    finally:
        conn.close()


def naming(path, user_id: str) -> dict[str, int]:
    """Rows naming ``user_id``: in every table with a ``user_id`` column, and as the author or reviewer of
    something a space keeps (``feedback.resolved_by``, ``overrides.author``, ``grade_contests.decided_by``)."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = {t: {c[1] for c in conn.execute(f'PRAGMA table_info("{t}")')} for t in tables}
        wanted = [(t, "user_id") for t in tables if "user_id" in columns[t]]
        wanted += [("feedback", "resolved_by"), ("overrides", "author"), ("grade_contests", "decided_by")]
        return {
            f"{t}.{c}": conn.execute(f'SELECT COUNT(*) FROM "{t}" WHERE "{c}" = ?', [user_id]).fetchone()[0]
            for t, c in wanted
        }
    finally:
        conn.close()


def owned(path, user_id: str) -> dict[str, list[tuple]]:
    """A user's own rows: every row of a table with a ``user_id`` column that is theirs, the questions of
    their quiz sessions, and the overrides they wrote."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {
            t: sorted(map(tuple, conn.execute(f'SELECT * FROM "{t}" WHERE user_id = ?', [user_id])), key=repr)
            for t in tables
            if "user_id" in {c[1] for c in conn.execute(f'PRAGMA table_info("{t}")')}
        }
        rows["quiz_slots"] = sorted(
            map(tuple, conn.execute(
                "SELECT * FROM quiz_slots WHERE session_id IN (SELECT id FROM quiz_sessions WHERE user_id = ?)",
                [user_id],
            )), key=repr,
        )  # fmt: skip
        rows["overrides"] = sorted(
            map(tuple, conn.execute("SELECT * FROM overrides WHERE author = ?", [user_id])), key=repr
        )
        return rows
    finally:
        conn.close()


async def forget_me(s: Spaces, user: FakeUser, channel: FakeChannel) -> str:
    asked = await run(s, user, channel, "forget-me")
    await s.w.server.click(asked, label="Confirm: delete my data", user=user)
    await changed(s, asked, lambda m: (m.content or "").startswith("Done"), "the deletion")
    return asked.content


async def test_forget_me_leaves_no_row_about_the_user(spaces: Spaces) -> None:
    s, srv, store = spaces, spaces.w.server, spaces.w.services.store
    path, student, ann = store.path, str(spaces.student.id), str(spaces.ann.id)
    dm = srv.dm_channel(s.student)
    question = "what is a receptive field"

    # The student asks in A, B and a DM and marks each answer Not helpful, with a comment ...
    for where in (s.a_general, s.b_general, dm):
        answer = await ask_in(s, where, question)
        await vote_not_helpful(s, answer, s.student, f"{COMMENT} ({where.name})")
    # ... answers a quiz question in A (and contests its grade), and joins A's and B's leaderboards.
    ix = await srv.invoke_slash(s.student, s.a_general, "quiz start", {"questions": 1, "mode": "free"})
    msg = await ix.wait_message(timeout=20)
    click = await srv.click(msg, label="Answer", user=s.student)
    before = msg.embed
    await srv.submit_modal(click, {"quiz:answer-text": "bananas, probably"})
    await changed(s, msg, lambda m: m.embed != before, "the grade")
    before = msg.embed
    await srv.click(msg, label="I think I was right", user=s.student)
    await changed(s, msg, lambda m: m.embed != before, "the contest")
    before = msg.embed
    await srv.click(msg, label="Good", user=s.student)
    await changed(s, msg, lambda m: m.embed != before, "the rating")
    for where in (s.a_general, s.b_general):
        assert "on this server's leaderboard" in (await run(s, s.student, where, "leaderboard join")).content

    # Another user, A's admin: her own vote, quiz and place, and she corrects the student's vote in A.
    mine = await ask_in(s, s.a_general, "what is stride", user=s.ann)
    thanks = await (await srv.click(mine, label="Helpful", user=s.ann)).wait_message()
    assert "Glad it helped" in thanks.content
    await quiz_reference(s, s.ann, s.a_general, "receptive field")
    await run(s, s.ann, s.a_general, "leaderboard join")
    review = await run(s, s.ann, s.a_general, "review")
    correct = await srv.click(review, label="Correct", user=s.ann)
    await srv.submit_modal(correct, {"review:answer": CORRECTED})
    await changed(s, review, lambda m: "corrected for this server" in (m.content or ""), "the correction")

    about = mentioning(path, student)
    assert mentioning(path, s.student.name), "their display name is stored (the quiz's profile)"
    expected = {"feedback", "quiz_users", "quiz_sessions", "quiz_reviews", "quiz_cards", "grade_contests"}
    assert expected | {"guild_leaderboard"} <= set(about), sorted(about)
    assert len(about["feedback"]) == 3 and len(about["guild_leaderboard"]) == 2
    sessions = [r[0] for r in store.db.execute("SELECT id FROM quiz_sessions WHERE user_id = ?", [student])]
    theirs = owned(path, ann)
    assert all(theirs[t] for t in ("feedback", "quiz_users", "quiz_sessions", "quiz_reviews", "overrides"))
    assert naming(path, ann)["feedback.resolved_by"] == 1  # the student's vote in A

    done = await forget_me(s, s.student, s.a_general)
    assert "Deleted" in done, done
    assert mentioning(path, student) == {}, "no row of any table mentions the student"
    assert mentioning(path, s.student.name) == {}, "nor their name"
    assert set(naming(path, student).values()) == {0}
    left = store.db.execute(
        "SELECT COUNT(*) FROM quiz_slots WHERE session_id IN (SELECT value FROM json_each(?))",
        [json.dumps(sessions)],
    ).fetchone()[0]
    assert left == 0, "their sessions' questions are gone too"
    assert owned(path, ann) == theirs, "the other user's rows are untouched"
    assert CORRECTED in (await ask_in(s, s.a_general, question, user=s.ben)).embed["description"]

    # The admin forgets herself: her name leaves the correction she wrote, which stays in A.
    await forget_me(s, s.ann, s.a_general)
    assert mentioning(path, ann) == {} and set(naming(path, ann).values()) == {0}
    [(author, answer)] = store.db.execute("SELECT author, answer FROM overrides").fetchall()
    assert (author, answer) == ("forgotten user", CORRECTED)
    assert CORRECTED in (await ask_in(s, s.a_general, question, user=s.ben)).embed["description"]
