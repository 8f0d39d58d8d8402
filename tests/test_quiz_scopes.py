"""Quizzes per space (knowledge.scope): a server's quiz draws from the shared notes and its own cards, less
what it hid, asks and grades its corrected answers, takes multiple-choice options from those cards only,
and its statistics count them alone; direct messages and the terminal quiz the shared notes. Stand-in
encoder throughout (the subject is which cards and answers, not the model's grades)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from fsrs import Scheduler

from knowledge import overrides
from knowledge.models import ParsedDocument
from knowledge.quiz import QuizError, QuizService
from knowledge.quiz.grading import Verdict
from knowledge.quiz.selection import QuizCard, build_catalogue, distractors, option_text
from knowledge.quiz.train import feedback_answers
from knowledge.scope import EVERYWHERE, Scope
from tests.bot_harness import World, running_tutor
from tests.stores import space_deck as space_cards

A, B, SHARED = Scope.of("111"), Scope.of("222"), Scope.shared()
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

# Two servers' cards on the same made-up subject, worded alike: each is a plausible distractor of the other.
A_CARDS = [
    ("What does the flux capacitor regulate in the time engine?",
     "The flux capacitor regulates chronal current flowing through the time engine coils during a jump"),
    ("Why is the warp coil cooled with liquid helium?",
     "Cooling keeps the warp coil superconducting so the field collapses slowly without quenching the coil"),
    ("What is a tachyon lens used for?",
     "A tachyon lens focuses faster than light particles onto the detector plate of the engine"),
    ("How many dilithium crystals does a standard reactor hold?",
     "A standard reactor holds four dilithium crystals arranged in a ring around the core chamber"),
]  # fmt: skip
B_CARDS = [
    ("What does the plasma manifold regulate in the jump drive?",
     "The plasma manifold regulates chronal current flowing through the drive coils during a warp jump"),
    ("Why is the graviton coil cooled with liquid nitrogen?",
     "Cooling keeps the graviton coil superconducting so the field collapses gently without quenching it"),
    ("What is a neutrino mirror used for?",
     "A neutrino mirror focuses slow particles onto the detector plate of the reactor engine"),
    ("How many antimatter pods does a standard drive hold?",
     "A standard drive holds six antimatter pods arranged in a ring around the engine chamber"),
]  # fmt: skip
CORRECTED = "Zebra stripes confuse biting flies and help herd members recognise each other on the savanna"


@pytest.fixture
def spaces_store(fake_store, fake_embed):
    fake_store.ingest([space_cards("111", A_CARDS), space_cards("222", B_CARDS)], fake_embed)
    return fake_store


@pytest.fixture
def quiz(spaces_store, fake_encoder):
    service = QuizService(
        spaces_store, fake_encoder, scheduler=Scheduler(enable_fuzzing=False), clock=lambda: START
    )
    yield service
    service.close()


def item_ids(store, key: str) -> set[int]:
    return {it.id for it in store.items(source=f"guild_{key}.jsonl")}


def shared_card(quiz: QuizService) -> QuizCard:
    """The first typed (not cloze) card of a shared document: what ``source=<it>, n=1`` asks first."""
    cards = quiz.scoped(SHARED).cards
    source = next(c.source for c in cards if not c.cloze)
    first = next(c for c in cards if c.source == source)
    assert not first.cloze
    return first


def play(quiz: QuizService, session, answer: str = "no idea") -> list:
    asked = []
    while (q := quiz.question(session)) is not None:
        asked.append(q)
        quiz.answer(session, "a" if q.mode == "mc" else answer)
    return asked


def first_question(quiz: QuizService, user: str, scope: Scope, source: str, mode: str = "free"):
    session = quiz.start(user, source=source, n=1, mode=mode, scope=scope)
    return session, quiz.question(session)


def test_a_server_quizzes_the_shared_notes_and_its_own_cards_only(quiz, spaces_store):
    mine, theirs = item_ids(spaces_store, "111"), item_ids(spaces_store, "222")
    shared = {it.id for it in spaces_store.items() if it.scope is None}
    in_a = {c.item_id for c in quiz.scoped(A).cards}
    assert mine <= in_a <= shared | mine and not in_a & theirs
    assert {c.item_id for c in quiz.scoped(SHARED).cards} <= shared
    assert {c.scope for c in quiz.scoped(B).cards} == {None, "222"}

    session = quiz.start("u1", source="guild_111", n=10, mode="free", scope=A)
    assert session.scope == "111" and session.total == len(A_CARDS)
    stored = spaces_store.db.execute("SELECT scope FROM quiz_sessions WHERE id = ?", [session.id]).fetchone()
    assert stored[0] == "111"
    assert {q.item_id for q in play(quiz, session)} == mine

    # Another server's deck does not exist here, nor in direct messages; nor does this one in DMs.
    for user, source, scope in (("u1", "guild_222", A), ("u1", "guild_111", SHARED), ("u1", "guild_111", B)):
        with pytest.raises(QuizError, match="no document matches"):
            quiz.start(user, source=source, scope=scope)
    assert "guild_111.jsonl" in {s for s, _, _ in quiz.sources(A)}
    assert not {s for s, _, _ in quiz.sources(A)} & {"guild_222.jsonl"}
    assert not any(s.startswith("guild_") for s, _, _ in quiz.sources())
    assert sum(n for _, n in quiz.topics(A)) == len(quiz.scoped(A).cards)
    assert sum(n for _, n in quiz.topics()) == len(quiz.scoped(SHARED).cards)

    # A quiz in progress belongs to where it was started.
    session = quiz.start("u2", source="guild_111", n=2, scope=A)
    assert quiz.active_session("u2", A).id == session.id
    assert quiz.active_session("u2", B) is None and quiz.active_session("u2", SHARED) is None
    assert quiz.active_session("u2").id == session.id  # without a scope: wherever it is


def test_a_hidden_item_is_not_quizzed_where_it_is_hidden_only(quiz, spaces_store):
    note = shared_card(quiz)
    own = min(item_ids(spaces_store, "111"))
    overrides.hide(spaces_store, A, note.item_id, "admin-a")
    overrides.hide(spaces_store, A, own, "admin-a")

    _, asked = first_question(quiz, "ua", A, note.source)
    assert asked.item_id != note.item_id
    for user, scope in (("ub", B), ("ud", SHARED)):
        _, asked = first_question(quiz, user, scope, note.source)
        assert asked.item_id == note.item_id
    session = quiz.start("ua", source="guild_111", n=10, mode="free", scope=A)
    assert {q.item_id for q in play(quiz, session)} == item_ids(spaces_store, "111") - {own}
    assert quiz.stats("ua", scope=A).cards_total == len(quiz.scoped(SHARED).cards) + len(A_CARDS) - 2

    # Disabled everywhere (an owner's operation): gone from every scope.
    spaces_store.set_disabled(note.item_id)
    for scope in (A, B, SHARED):
        assert note.item_id not in {c.item_id for c in quiz.scoped(scope, refresh=True).cards}


def test_an_item_hidden_during_a_quiz_is_withdrawn_and_the_quiz_goes_on(quiz, spaces_store):
    session = quiz.start("u1", source="guild_111", n=10, mode="free", scope=A)
    first = quiz.question(session)
    planned = [
        r[0]
        for r in spaces_store.db.execute(
            "SELECT item_id FROM quiz_slots WHERE session_id = ? ORDER BY position", [session.id]
        ).fetchall()
    ]
    overrides.hide(spaces_store, A, planned[1], "admin-a")  # the next question
    quiz.answer(session, "no idea")
    following = quiz.question(session)
    assert following.item_id == planned[2] and following.position == 2

    overrides.hide(spaces_store, A, following.item_id, "admin-a")  # the open question
    with pytest.raises(QuizError, match="withdrawn"):
        quiz.answer(session, "no idea")
    with pytest.raises(QuizError, match="withdrawn"):
        quiz.hint(session)
    assert quiz.current(session) is None  # nothing to redraw: ``question`` moves on
    last = quiz.question(session)
    assert last.item_id == planned[3]
    quiz.answer(session, "no idea")
    assert quiz.question(session) is None
    done = quiz.session(session)
    assert (done.answered, done.skipped, first.item_id) == (2, 2, planned[0])


def test_a_corrected_answer_is_asked_revealed_and_graded_in_its_space(quiz, spaces_store):
    note = shared_card(quiz)
    overrides.correct(spaces_store, "111", note.item_id, CORRECTED, "admin-a")

    # In A: the hint, the reference and the grade follow the correction.
    session, asked = first_question(quiz, "ua", A, note.source)
    assert asked.item_id == note.item_id
    assert quiz.hint(session).startswith("Starts with: Zebra stripes confuse biting")
    graded = quiz.answer(session, CORRECTED)
    assert graded.verdict == Verdict.CORRECT and graded.reference == CORRECTED
    session, _ = first_question(quiz, "ua2", A, note.source)
    graded = quiz.answer(session, note.answer)
    assert graded.verdict != Verdict.CORRECT and graded.reference == CORRECTED
    session, _ = first_question(quiz, "ua3", A, note.source)
    assert quiz.reveal(session).reference == CORRECTED
    session, asked = first_question(quiz, "ua4", A, note.source, mode="mc")
    graded = quiz.answer(session, "a")
    assert asked.choices[graded.correct_choice] == option_text(CORRECTED, note.question)

    # In B and in direct messages: the original.
    for user, scope in (("ub", B), ("ud", SHARED)):
        session, _ = first_question(quiz, user, scope, note.source)
        graded = quiz.answer(session, note.answer)
        assert graded.verdict == Verdict.CORRECT and graded.reference == note.answer
        session, _ = first_question(quiz, user + "2", scope, note.source)
        assert quiz.answer(session, CORRECTED).verdict != Verdict.CORRECT

    # The owners' everywhere correction: in B and DMs; A's own still comes first in A.
    overrides.correct(spaces_store, EVERYWHERE, note.item_id, "The owners' own better answer here", "owner")
    for user, scope, expected in (
        ("va", A, CORRECTED),
        ("vb", B, "The owners' own better answer here"),
        ("vd", SHARED, "The owners' own better answer here"),
    ):
        session, _ = first_question(quiz, user, scope, note.source)
        assert quiz.reveal(session).reference == expected

    # A correction made during a session applies from the next step on.
    session, _ = first_question(quiz, "ub3", B, note.source)
    overrides.correct(spaces_store, "222", note.item_id, "B's correction of the zebra answer", "admin-b")
    assert quiz.reveal(session).reference == "B's correction of the zebra answer"


def test_a_confirmed_contest_trains_against_the_answer_it_was_graded_against(quiz, spaces_store):
    note = shared_card(quiz)
    overrides.correct(spaces_store, "111", note.item_id, CORRECTED, "admin-a")
    for user, scope in (("ua", A), ("ud", SHARED)):
        session, asked = first_question(quiz, user, scope, note.source)
        quiz.answer(session, "no idea at all")
        quiz.decide_contest(quiz.contest(session, asked.position), "partly", "admin")
    assert sorted(c.reference for c in feedback_answers(spaces_store)) == sorted([CORRECTED, note.answer])


def test_multiple_choice_options_come_from_the_cards_the_scope_sees(quiz, spaces_store):
    every = quiz.catalogue(refresh=True)
    theirs = {c.answer for c in every.cards if c.scope == "222"}
    # Over every space's cards, B's answers would be plausible options for A's cards ...
    assert any(set(distractors(every, c)) & theirs for c in every.cards if c.scope == "111")
    # ... within A, never.
    visible = {option_text(c.answer, c.question) for c in quiz.scoped(A).cards}
    not_here = {option_text(c.answer, c.question) for c in every.cards if c.scope == "222"}
    session = quiz.start("u1", source="guild_111", n=10, mode="mc", scope=A)
    asked = 0
    while (q := quiz.question(session)) is not None:
        assert len(q.choices) == 4 and set(q.choices) <= visible and not set(q.choices) & not_here
        quiz.answer(session, "a")
        asked += 1
    assert asked == len(A_CARDS)
    view = quiz.scoped(A)
    for card in view.cards:
        assert not set(distractors(view, card)) & theirs


def test_statistics_and_due_dates_follow_the_scope(quiz, spaces_store):
    note = shared_card(quiz)
    for scope, source in ((A, "guild_111"), (B, "guild_222"), (SHARED, note.source)):
        session, _ = first_question(quiz, "u1", scope, source)
        quiz.answer(session, "no idea")
    a, b, dm = (quiz.stats("u1", scope=s) for s in (A, B, SHARED))
    assert (a.reviews, b.reviews, dm.reviews) == (2, 2, 1)
    assert (a.cards_seen, b.cards_seen, dm.cards_seen) == (2, 2, 1)
    assert dm.cards_total == len(quiz.scoped(SHARED).cards)
    assert a.cards_total == dm.cards_total + len(A_CARDS)
    assert quiz.stats("u1") == dm  # the default: the shared notes
    dues = {r[0]: r[1] for r in spaces_store.db.execute("SELECT card_id, due FROM quiz_cards").fetchall()}
    assert len(dues) == 3 and quiz.next_due("u1", A) is not None and quiz.next_due("u1", SHARED) is not None
    assert quiz.next_due("u2", A) is None

    quiz.set_leaderboard("u1", True)
    boards = {s: quiz.leaderboard(["u1"], days=3650, scope=s)[0].reviews for s in (A, B, SHARED)}
    assert boards == {A: 2, B: 2, SHARED: 1}  # a server's board never counts another server's cards
    assert quiz.leaderboard(["u1"], days=3650)[0].reviews == 3  # no scope: every review

    overrides.hide(spaces_store, A, note.item_id, "admin-a")
    assert quiz.stats("u1", scope=A).reviews == 1  # reviews of what A hides do not count in A
    assert quiz.stats("u1", scope=B).reviews == 2


def test_a_rebuild_after_one_space_changed_embeds_and_files_only_its_changed_cards(
    quiz, spaces_store, fake_embed
):
    before = quiz.catalogue()
    spaces_store.ingest(
        [space_cards("333", [("What is a sonic screwdriver for?", "Opening locks")])], fake_embed
    )
    asked: list[str] = []

    def counting(texts):
        asked.extend(texts)
        return quiz._vectors(texts)

    after = build_catalogue(spaces_store, counting, previous=before)
    fresh = build_catalogue(spaces_store, quiz._vectors)
    assert after.cards == fresh.cards and after.fingerprint == fresh.fingerprint
    assert np.allclose(after.answer_vectors, fresh.answer_vectors)
    assert np.allclose(after.question_vectors, fresh.question_vectors)
    card_texts = {t for c in after.cards for t in (c.question, c.answer[:300])}
    assert set(asked) & card_texts == {"What is a sonic screwdriver for?", "Opening locks"}
    assert quiz.catalogue(refresh=True).cards == fresh.cards


# --- a card of two members (a duplicate group): corrections and hides of either ------------------------------
TWIN = (
    A_CARDS[0][0],
    "The flux capacitor regulates the chronal current flowing through the coils of the time engine in a jump",
)


def notes_of(key: str, pairs: list[tuple[str, str]]) -> ParsedDocument:
    """Another document of space ``key`` (a space's duplicates are grouped across its documents)."""
    doc = space_cards(key, pairs)
    return replace(doc, meta=replace(doc.meta, source=f"notes_{key}.jsonl", title=f"{key} notes"))


@pytest.fixture
def twins(spaces_store, fake_embed) -> tuple[int, int, int]:
    """A's first card and its twin in A's notes: one card. Returns (card id, served item, other member)."""
    spaces_store.ingest([notes_of("111", [TWIN])], fake_embed)
    [twin] = spaces_store.items(source="notes_111.jsonl")
    first = min(item_ids(spaces_store, "111"))
    assert twin.group == first and spaces_store.group_members(first)[0].id == first, "grouped"
    best = spaces_store.best_answers()[first]
    return first, best, ({first, twin.id} - {best}).pop()


def hide_only(store, key: str, item_id: int) -> None:
    """A hide of one member alone (made before the twins were grouped: ``overrides.hide`` now hides both)."""
    store.db.execute(
        "INSERT INTO overrides (scope, item_id, kind, author, created_at) VALUES (?, ?, 'hide', 'a', 'then')",
        [key, item_id],
    )


def up_to(quiz: QuizService, session, card_id: int):
    """Answer the session's questions until ``card_id``'s is the open one; returns it."""
    while (q := quiz.question(session)).card_id != card_id:
        quiz.answer(session, "no idea")
    return q


def test_a_card_takes_a_correction_of_any_member_its_space_sees(quiz, spaces_store, twins):
    card_id, best, other = twins
    card = quiz.scoped(A, refresh=True).card(card_id)
    assert (card.item_id, set(card.members)) == (best, {best, other})
    original = card.answer

    overrides.correct(spaces_store, "111", other, CORRECTED, "admin-a")  # e.g. from /review of the twin
    assert quiz.scoped(A).card(card_id).answer == CORRECTED
    assert next(c for c in quiz.cards(A) if c.card_id == card_id).answer == CORRECTED
    session = quiz.start("ua", source="guild_111", n=10, mode="free", scope=A)
    up_to(quiz, session, card_id)
    graded = quiz.answer(session, CORRECTED)
    assert graded.verdict == Verdict.CORRECT and graded.reference == CORRECTED
    assert quiz.scoped(B).card(card_id) is None

    # The served member's own correction comes first.
    overrides.correct(spaces_store, "111", best, "The served member's own correction here", "admin-a")
    assert quiz.scoped(A).card(card_id).answer == "The served member's own correction here"
    overrides.drop_correction(spaces_store, "111", best)
    # A correction of a member the space hides is not used.
    hide_only(spaces_store, "111", other)
    seen = quiz.scoped(A).card(card_id)
    assert (seen.item_id, seen.answer) == (best, original)


def test_a_hidden_served_member_gives_way_to_another_member(quiz, spaces_store, twins):
    card_id, best, other = twins
    other_item = spaces_store.item(other)
    hide_only(spaces_store, "111", best)

    seen = quiz.scoped(A, refresh=True).card(card_id)
    assert seen is not None, "the card is not dropped: another member serves it"
    assert (seen.item_id, seen.question, seen.answer) == (other, other_item.question, other_item.answer)
    assert quiz.stats("ua", scope=A).cards_total == len(quiz.scoped(SHARED).cards) + len(A_CARDS)
    session = quiz.start("ua", source=other_item.source, n=10, mode="free", scope=A)
    asked = [q for q in play(quiz, session, other_item.answer) if q.card_id == card_id]
    assert [q.item_id for q in asked] == [other]
    reviewed = spaces_store.db.execute("SELECT verdict FROM quiz_reviews WHERE card_id = ?", [card_id])
    assert [r[0] for r in reviewed.fetchall()] == [Verdict.CORRECT]

    # Its correction follows it; hidden as well, the card is gone, and withdrawn from a quiz under way.
    overrides.correct(spaces_store, "111", other, CORRECTED, "admin-a")
    session = quiz.start("ub", source=other_item.source, n=10, mode="free", scope=A)
    up_to(quiz, session, card_id)
    assert quiz.reveal(session).reference == CORRECTED
    session = quiz.start("uc", source=other_item.source, n=10, mode="free", scope=A)
    up_to(quiz, session, card_id)
    overrides.hide(spaces_store, A, other, "admin-a")
    with pytest.raises(QuizError, match="withdrawn"):
        quiz.answer(session, "no idea")
    assert quiz.scoped(A).card(card_id) is None


def test_a_card_whose_best_member_is_stale_is_served_from_its_lowest_member(spaces_store, twins, fake_embed):
    card_id, best, other = twins
    lowest = spaces_store.item(min(best, other))
    theirs = min(item_ids(spaces_store, "222"))
    for stale in (theirs, 10**9):  # another space's item; a retired or missing one
        spaces_store.db.execute("UPDATE groups SET best_item_id = ? WHERE id = ?", [stale, card_id])
        card = build_catalogue(spaces_store, fake_embed).card(card_id)
        assert card is not None and card.scope == "111"
        assert (card.item_id, card.question, card.answer) == (lowest.id, lowest.question, lowest.answer)
    spaces_store.db.execute("DELETE FROM groups WHERE id = ?", [card_id])
    assert build_catalogue(spaces_store, fake_embed).card(card_id).item_id == lowest.id
    # Another space's item is never a card's member, even where its group says it is.
    spaces_store.db.execute("UPDATE items SET group_id = ? WHERE id = ?", [card_id, theirs])
    catalogue = build_catalogue(spaces_store, fake_embed)
    assert theirs not in catalogue.card(card_id).member_ids and catalogue.card(card_id).scope == "111"
    assert not any(c.item_id == theirs for c in catalogue.cards)


@pytest.fixture
async def world(fake_quiz_retriever, demo_worker, tmp_path):
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        yield w


async def test_the_bot_quizzes_a_server_in_its_scope_and_dms_in_the_shared_one(world: World, fake_embed):
    srv, alice, store = world.server, world.alice, world.services.store
    key = str(world.guild.id)
    store.ingest([space_cards(key, A_CARDS)], fake_embed)
    topic = f"{key} cards"  # the deck's title: its cards' topic filter
    ix = await srv.invoke_slash(alice, world.general, "quiz start", {"topic": topic, "questions": 2})
    msg = await ix.wait_message()
    assert msg.embed["title"] == "Question 1/2"
    rows = store.db.execute("SELECT scope, status FROM quiz_sessions").fetchall()
    assert [tuple(r) for r in rows] == [(key, "active")]

    await world.bot.tree.sync()  # global commands: DMs
    dm = srv.dm_channel(alice)
    ix = await srv.invoke_slash(alice, dm, "quiz start", {"topic": topic, "questions": 2})
    reply = await ix.wait_message()
    assert "no cards match" in json.dumps(reply.embed or {}) + (reply.content or "")
    ix = await srv.invoke_slash(alice, dm, "quiz resume")
    reply = await ix.wait_message()
    assert "no quiz in progress" in (reply.content or "")  # the server's quiz is not resumed in DMs
