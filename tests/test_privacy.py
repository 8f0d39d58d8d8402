"""knowledge.privacy: forgetting a user leaves no row about them in any table; purging a space leaves no row
of it and every other space as it was."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fsrs import Scheduler

from knowledge import overrides
from knowledge.privacy import FORGOTTEN, PrivacyError, forget_user, purge_space
from knowledge.quiz import QuizService
from knowledge.scope import EVERYWHERE, Scope, ScopeError
from knowledge.vectors import text_key
from tests.stores import space_deck as space_cards
from tests.test_quiz_scopes import A_CARDS, B_CARDS

A, B, SHARED = Scope.of("111"), Scope.of("222"), Scope.shared()
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(fake_store, fake_embed):
    fake_store.ingest([space_cards("111", A_CARDS), space_cards("222", B_CARDS)], fake_embed)
    return fake_store


@pytest.fixture
def quiz(store, fake_encoder):
    service = QuizService(store, fake_encoder, scheduler=Scheduler(enable_fuzzing=False), clock=lambda: START)
    yield service
    service.close()


def tables_with(store, column: str) -> list[str]:
    names = [r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
    return [
        t for t in names if column in {c[1] for c in store.db.execute(f'PRAGMA table_info("{t}")').fetchall()}
    ]


def mentions(store, user: str) -> dict[str, int]:
    """Rows naming ``user`` in a user_id column, per table (every such table of the file)."""
    return {
        t: store.db.execute(f'SELECT COUNT(*) FROM "{t}" WHERE user_id = ?', [user]).fetchone()[0]
        for t in tables_with(store, "user_id")
    }


def learn(quiz: QuizService, store, user: str, scope: Scope, source: str, answer: str = "no idea") -> None:
    """One question answered and contested, and a Not helpful vote about it, in ``scope``."""
    session = quiz.start(user, source=source, n=1, mode="free", scope=scope)
    question = quiz.question(session)
    quiz.answer(session, answer)
    quiz.contest(session, question.position)
    store.add_feedback(
        user_id=user, query=f"{user} asks", helpful=False, item_id=question.item_id, answer="shown",
        comment="wrong", guild_id=scope.key,
    )  # fmt: skip


def shared_source(quiz: QuizService) -> str:
    return next(c.source for c in quiz.scoped(SHARED).cards if not c.cloze)


def test_forget_user_leaves_no_row_about_them(quiz, store):
    source = shared_source(quiz)
    for user in ("u1", "u2"):
        for scope, deck in ((A, "guild_111"), (B, "guild_222"), (SHARED, source)):
            learn(quiz, store, user, scope, deck)
        quiz.start(user, source=source, n=2, scope=A)  # a session in progress, with unasked questions
        quiz.set_leaderboard(user, True, display_name=user)
    # A table another part adds later, with rows that refer to the user's rows by a foreign key.
    store.db.execute("CREATE TABLE extra (id INTEGER PRIMARY KEY, user_id TEXT)")
    store.db.execute(
        "CREATE TABLE extra_child (id INTEGER PRIMARY KEY, extra_id INTEGER REFERENCES extra(id))"
    )
    store.db.execute("INSERT INTO extra (id, user_id) VALUES (1, 'u1'), (2, 'u2')")
    store.db.execute("INSERT INTO extra_child (extra_id) VALUES (1), (2)")
    # u1 also wrote a correction and resolved feedback, as a server's staff and as an owner.
    item = next(c.item_id for c in quiz.scoped(A).cards if c.scope == "111")
    overrides.correct(store, "111", item, "u1's better answer", "u1")
    overrides.resolve(store, A, item, overrides.Resolution.DISMISSED, "u1")
    overrides.resolve(store, None, item, overrides.Resolution.DISMISSED, "u1")
    contest = quiz.contests()[0]["id"]
    quiz.decide_contest(contest, "correct", "u1")

    before = mentions(store, "u2")
    assert all(before[t] for t in ("quiz_users", "quiz_cards", "quiz_sessions", "quiz_reviews", "feedback"))
    counts = forget_user(store, "u1")
    assert set(mentions(store, "u1").values()) == {0}
    assert mentions(store, "u2") == before  # nobody else's
    assert counts["quiz_reviews"] == 3 and counts["grade_contests"] == 3 and counts["feedback"] == 3
    assert counts["quiz_sessions"] == 4 and counts["quiz_slots"] == 5 and counts["quiz_users"] == 1
    assert counts["extra"] == 1 and counts["extra_child"] == 1
    assert store.db.execute("SELECT COUNT(*) FROM extra_child").fetchone()[0] == 1
    # Named as an author or reviewer: the name goes, the correction and the decisions stay.
    for table, column in (
        ("overrides", "author"),
        ("feedback", "resolved_by"),
        ("grade_contests", "decided_by"),
    ):
        assert not store.db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = 'u1'").fetchone()[0]
    assert overrides.load_overrides(store).correction(A, item).author == FORGOTTEN
    assert not store.db.execute(
        "SELECT COUNT(*) FROM feedback WHERE owner_resolution LIKE '%u1%'"
    ).fetchone()[0]
    assert not list(store.db.execute("PRAGMA foreign_key_check").fetchall())
    assert quiz.stats("u2", scope=A).reviews == 2

    assert set(forget_user(store, "u1").values()) == {0}  # again, or a stranger: nothing, no error
    assert set(forget_user(store, "nobody").values()) == {0}
    for empty in ("", "  ", None):
        with pytest.raises(PrivacyError):
            forget_user(store, empty)


def space_rows(store, key: str) -> dict[str, int]:
    """Every row of the space ``key``: its documents, items, what refers to its items, its overrides,
    feedback given there and its sessions."""
    space = f"FROM items i JOIN documents d ON d.source = i.source WHERE d.scope = '{key}'"
    items, groups = f"(SELECT i.id {space})", f"(SELECT COALESCE(i.group_id, i.id) {space})"
    queries = {
        "documents": f"SELECT COUNT(*) FROM documents WHERE scope = '{key}'",
        "items": f"SELECT COUNT(*) FROM items WHERE id IN {items}",
        "groups": f"SELECT COUNT(*) FROM groups WHERE id IN {groups}",
        "overrides": f"SELECT COUNT(*) FROM overrides WHERE scope = '{key}' OR item_id IN {items}",
        "feedback": f"SELECT COUNT(*) FROM feedback WHERE guild_id = '{key}' OR item_id IN {items}",
        "quiz_sessions": f"SELECT COUNT(*) FROM quiz_sessions WHERE scope = '{key}'",
        "quiz_slots": f"SELECT COUNT(*) FROM quiz_slots WHERE item_id IN {items} OR session_id IN"
        f" (SELECT id FROM quiz_sessions WHERE scope = '{key}')",
        "quiz_reviews": f"SELECT COUNT(*) FROM quiz_reviews WHERE item_id IN {items}",
        "quiz_cards": f"SELECT COUNT(*) FROM quiz_cards WHERE card_id IN {groups}",
        "grade_contests": f"SELECT COUNT(*) FROM grade_contests WHERE item_id IN {items}",
    }
    return {name: store.db.execute(sql).fetchone()[0] for name, sql in queries.items()}


def test_purge_space_deletes_the_space_and_nothing_else(quiz, store, fake_encoder):
    source = shared_source(quiz)
    note = next(c for c in quiz.scoped(SHARED).cards if c.source == source)
    for user in ("u1", "u2"):
        for scope, deck in ((A, "guild_111"), (B, "guild_222"), (A, source), (SHARED, source)):
            learn(quiz, store, user, scope, deck)
    for scope in (A, B):
        overrides.hide(store, scope, note.item_id, "admin")
        own = next(c.item_id for c in quiz.scoped(scope).cards if c.scope == scope.key)
        overrides.correct(store, scope.key, own, f"{scope.key}'s corrected answer", "admin")
        overrides.correct(store, scope.key, note.item_id, f"{scope.key}'s take on a shared note", "admin")
    overrides.correct(store, EVERYWHERE, note.item_id, "the owners' answer", "owner")
    a_texts = [t for q, a in A_CARDS for t in (q, a)]
    assert all(store.db.execute("SELECT 1 FROM text_vectors WHERE key = ?", [text_key(fake_encoder.model_id, t)])
               .fetchone() for t in a_texts)  # fmt: skip

    shared_items = {it.id for it in store.items(include_retired=True) if it.scope is None}
    other = space_rows(store, "222")
    assert all(space_rows(store, "111").values()) and all(other.values())
    shared_reviews = store.db.execute(
        "SELECT COUNT(*) FROM quiz_reviews WHERE item_id = ?", [note.item_id]
    ).fetchone()[0]

    counts = purge_space(store, "111", model_ids=[fake_encoder.model_id])
    assert set(space_rows(store, "111").values()) == {0}
    assert space_rows(store, "222") == other
    assert counts["documents"] == 1 and counts["items"] == len(A_CARDS) and counts["quiz_sessions"] == 4
    assert counts["overrides"] == 3 and counts["feedback"] == 4 and counts["text_vectors"] >= len(a_texts)
    assert {it.id for it in store.items(include_retired=True) if it.scope is None} == shared_items
    assert not any(
        store.db.execute("SELECT 1 FROM text_vectors WHERE key = ?", [text_key(fake_encoder.model_id, t)])
        .fetchone() for t in a_texts
    )  # fmt: skip
    assert store.db.execute("SELECT 1 FROM text_vectors WHERE key = ?", [
        text_key(fake_encoder.model_id, B_CARDS[0][1])]).fetchone()  # fmt: skip
    # The learners' progress on the shared notes stays (forget_user deletes it), also what they did in A.
    assert store.db.execute(
        "SELECT COUNT(*) FROM quiz_reviews WHERE item_id = ?", [note.item_id]
    ).fetchone()[0] == shared_reviews  # fmt: skip
    seen = overrides.load_overrides(store)
    assert seen.correction(A, note.item_id).answer == "the owners' answer"
    assert seen.correction(B, note.item_id).answer == "222's take on a shared note"
    assert not list(store.db.execute("PRAGMA foreign_key_check").fetchall())

    # The quiz goes on without the space; a returning server starts from nothing.
    assert not {c.scope for c in quiz.scoped(A, refresh=True).cards} - {None}
    assert quiz.stats("u1", scope=A).reviews == 2  # of shared notes (one answered in A, one in DMs)
    assert set(purge_space(store, "111").values()) == {0}
    assert set(purge_space(store, "999").values()) == {0}
    for empty in ("", " ", None):
        with pytest.raises(PrivacyError):
            purge_space(store, empty)
    with pytest.raises(ScopeError):
        purge_space(store, "no spaces allowed")
