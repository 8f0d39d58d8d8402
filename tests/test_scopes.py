"""Spaces in the store: documents and items carry their space, duplicates never group across spaces,
and overrides (hides, corrections) stay within the space that made them."""

from __future__ import annotations

import json

import pytest

from index.errors import BadQuery
from knowledge import overrides
from knowledge.errors import NotFound
from knowledge.models import Entry, ParsedDocument
from knowledge.scope import EVERYWHERE, Scope, ScopeError
from tests.stores import space_deck as cards


def shared_item(store):
    return next(it for it in store.items() if it.scope is None and it.servable)


def test_scope_values():
    assert Scope.shared() == Scope.of(None) == Scope(None)
    assert Scope.of(123) == Scope("123")
    assert Scope.of("a").sees(None) and Scope.of("a").sees("a") and not Scope.of("a").sees("b")
    assert not Scope.shared().sees("a")
    for bad in ("", "a b", "x" * 65, "\u200b"):
        with pytest.raises(ScopeError):
            Scope(bad)


def test_cards_carry_their_space_and_never_group_across_spaces(fake_store, fake_embed):
    bundled = shared_item(fake_store)
    twin = [(bundled.question, "a server's own answer, with a link https://example.com")]
    fake_store.ingest([cards("111", twin), cards("222", twin)], fake_embed)
    mine = fake_store.items(source="guild_111.jsonl")
    theirs = fake_store.items(source="guild_222.jsonl")
    assert [it.scope for it in mine] == ["111"] and [it.scope for it in theirs] == ["222"]
    assert {d.scope for d in fake_store.documents() if d.source.startswith("guild_")} == {"111", "222"}
    # The same question in two spaces and the shared notes: three groups, each within one space.
    for item in (fake_store.item(bundled.id), mine[0], theirs[0]):
        assert item.group is not None
        assert {m.scope for m in fake_store.group_members(item.group)} == {item.scope}
        assert fake_store.item(fake_store.best_answers()[item.group]).scope == item.scope
    assert len({fake_store.item(bundled.id).group, mine[0].group, theirs[0].group}) == 3


def test_hides_and_corrections_stay_in_their_space(fake_store, fake_embed):
    fake_store.ingest([cards("111", [("What is a widget?", "A thing.")])], fake_embed)
    card = fake_store.items(source="guild_111.jsonl")[0]
    bundled = shared_item(fake_store)
    a, b = Scope.of("111"), Scope.of("222")

    overrides.hide(fake_store, a, bundled.id, "admin-a")
    fixed = overrides.correct(fake_store, "111", card.id, "A better thing.", "admin-a")
    assert fixed.original == "A thing." and fixed.author == "admin-a"
    seen = overrides.load_overrides(fake_store)
    assert seen.hidden_in(a) == {bundled.id} and seen.hidden_in(b) == frozenset()
    assert seen.hidden_in(Scope.shared()) == frozenset()
    assert seen.correction(a, card.id).answer == "A better thing."
    assert seen.correction(b, card.id) is None

    # Space B cannot touch space A's card, nor learn that it exists.
    with pytest.raises(NotFound):
        overrides.hide(fake_store, b, card.id, "admin-b")
    with pytest.raises(NotFound):
        overrides.correct(fake_store, "222", card.id, "mine now", "admin-b")

    # The owners' overlay applies everywhere, a space's own correction first.
    overrides.correct(fake_store, EVERYWHERE, bundled.id, "Owners' answer.", "owner")
    overrides.correct(fake_store, "111", bundled.id, "A's answer.", "admin-a")
    seen = overrides.load_overrides(fake_store)
    assert seen.correction(a, bundled.id).answer == "A's answer."
    assert seen.correction(b, bundled.id).answer == "Owners' answer."
    assert seen.correction(Scope.shared(), bundled.id).answer == "Owners' answer."

    assert overrides.restore(fake_store, a, bundled.id) is True
    assert overrides.restore(fake_store, a, bundled.id) is False
    assert overrides.load_overrides(fake_store).hidden_in(a) == frozenset()


def test_review_queue_is_per_space_and_resolutions_are_separate(fake_store):
    item = shared_item(fake_store)
    for user, guild in (("u1", "111"), ("u2", "111"), ("u3", "222"), ("u4", None)):
        fake_store.add_feedback(
            user_id=user, query=f"q from {user}", helpful=False, item_id=item.id, answer="shown",
            comment=f"wrong says {user}", guild_id=guild,
        )  # fmt: skip
    page = overrides.review_queue(fake_store, Scope.of("111"))
    assert page.total == 1 and page.entries[0].votes == 2
    assert set(page.entries[0].queries) == {"q from u1", "q from u2"}
    assert overrides.review_queue(fake_store, Scope.of("222")).entries[0].votes == 1
    owners = overrides.review_queue(fake_store, None)
    assert owners.entries[0].votes == 4

    assert overrides.resolve(fake_store, Scope.of("111"), item.id, overrides.Resolution.DISMISSED, "a") == 2
    assert overrides.review_queue(fake_store, Scope.of("111")).total == 0
    assert overrides.review_queue(fake_store, Scope.of("222")).total == 1
    assert overrides.review_queue(fake_store, None).entries[0].votes == 4


def _items_in(answer) -> set[int]:
    """Every entry an answer shows or offers: the match, its citations and the alternatives."""
    shown = (
        {answer.item_id} | {c.item_id for c in answer.citations} | {a.item_id for a in answer.alternatives}
    )
    return shown - {None}


def test_retriever_answers_each_space_from_its_own_cards(fake_retriever, fake_embed):
    store = fake_retriever.store
    question = "What is a flibbertigibbet in our course?"
    store.ingest([cards("111", [(question, "Our course's mascot.")])], fake_embed)
    fake_retriever.reload()
    card = store.items(source="guild_111.jsonl")[0]
    a, b, dm = Scope.of("111"), Scope.of("222"), Scope.shared()

    mine = fake_retriever.ask(question, a)
    assert mine.item_id == card.id and mine.answer == "Our course's mascot."
    for scope in (b, dm):
        answer = fake_retriever.ask(question, scope)
        assert card.id not in _items_in(answer)
        with pytest.raises(BadQuery):
            fake_retriever.answer_item(card.id, question, scope)
    assert fake_retriever.answer_item(card.id, question, a).answer == "Our course's mascot."


def test_retriever_applies_a_space_s_hides_and_corrections_there_only(fake_retriever):
    store = fake_retriever.store
    bundled = next(it for it in store.items() if it.servable and it.scope is None and len(it.question) > 30)
    a, b, dm = Scope.of("111"), Scope.of("222"), Scope.shared()
    before = {s: fake_retriever.ask(bundled.question, s) for s in (a, b, dm)}
    assert all(ans.item_id is not None for ans in before.values())
    served_id = before[a].item_id

    overrides.correct(store, "111", served_id, "The course staff's corrected answer.", "admin-a")
    fake_retriever.reload()
    fixed = fake_retriever.ask(bundled.question, a)
    assert fixed.answer == "The course staff's corrected answer."
    assert fixed.correction is not None and fixed.correction.author == "admin-a"
    for scope in (b, dm):
        other = fake_retriever.ask(bundled.question, scope)
        assert other.answer == before[scope].answer and other.correction is None

    overrides.hide(store, a, served_id, "admin-a")
    fake_retriever.reload()
    assert served_id not in _items_in(fake_retriever.ask(bundled.question, a))
    assert fake_retriever.ask(bundled.question, b).item_id == served_id
    assert fake_retriever.ask(bundled.question, dm).item_id == served_id


def test_content_version_counts_every_change_to_what_is_served(fake_store, fake_embed):
    from knowledge import privacy

    seen = [fake_store.content_version()]

    def changed() -> bool:
        seen.append(fake_store.content_version())
        return seen[-1] > seen[-2]

    fake_store.ingest([cards("111", [("What is a widget?", "A thing.")])], fake_embed)
    assert changed()
    fake_store.set_disabled(shared_item(fake_store).id)
    assert changed()
    fake_store.add_feedback(user_id="u", query="q", helpful=True)
    assert not changed()
    privacy.purge_space(fake_store, "111")
    assert changed()


def test_upgrade_ends_groups_that_crossed_spaces_and_files_old_quizzes_under_their_server(tmp_path):
    """A base from before spaces: a server's card grouped with a shared note, serving the group."""
    import sqlite3

    import sqlite_utils

    from knowledge.migrations import MIGRATIONS
    from knowledge.store import Store

    path = tmp_path / "tutor.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, migrate in MIGRATIONS[:8]:
        migrate(db)
        db.execute("INSERT INTO _migrations VALUES (?, ?)", [name, "2026-01-01"])
    db["documents"].insert_all(
        [
            {"source": "notes.md", "title": "Notes", "origin": "bundled"},
            {"source": "guild_111.jsonl", "title": "Cards", "origin": "discord"},
        ]
    )
    db["items"].insert_all(
        [
            {"id": 1, "source": "notes.md", "n": 1, "question": "What is X?", "answer": "X.", "group_id": 1},
            {
                "id": 2,
                "source": "guild_111.jsonl",
                "n": 1,
                "question": "What is X?",
                "answer": "Ours.",
                "group_id": 1,
            },
        ]
    )
    db["groups"].insert({"id": 1, "best_item_id": 2, "size": 2})
    db["quiz_sessions"].insert_all(
        [
            {"id": "s1", "user_id": "u", "status": "active", "meta": json.dumps({"guild_id": 111})},
            {"id": "s2", "user_id": "u", "status": "ended", "meta": json.dumps({"guild_id": None})},
        ]
    )
    db.conn.commit()
    db.conn.close()

    store = Store(path)
    try:
        shared, card = store.item(1), store.item(2)
        assert (shared.scope, card.scope) == (None, "111")
        assert card.group is None and 1 not in store.best_answers()
        assert [m.id for m in store.group_members(1)] == [1]
        scopes = dict(store.db.execute("SELECT id, scope FROM quiz_sessions").fetchall())
        assert scopes == {"s1": "111", "s2": None}
    finally:
        store.close()


def test_a_space_deck_keeps_ids_by_question_and_named_edits_only(fake_store, fake_embed):
    """A replaced deck's new questions never take an old card's id (nor its hides and corrections); an
    edit that names its card keeps the id even with a new question; a retired card's overrides go."""
    a = Scope.of("111")
    fake_store.ingest(
        [cards("111", [("What is a widget?", "A thing."), ("What is a gadget?", "A tool.")])], fake_embed
    )
    widget, gadget = fake_store.items(source="guild_111.jsonl")
    overrides.correct(fake_store, "111", widget.id, "A better thing.", "admin")
    overrides.hide(fake_store, a, gadget.id, "admin")

    fake_store.ingest(
        [cards("111", [("Who painted the Mona Lisa?", "Leonardo."), ("Capital of Peru?", "Lima.")])],
        fake_embed,
    )
    new = fake_store.items(source="guild_111.jsonl")
    assert {it.id for it in new}.isdisjoint({widget.id, gadget.id})
    seen = overrides.load_overrides(fake_store)
    assert seen.hidden_in(a) == frozenset() and seen.corrections == {}
    assert fake_store.db.execute("SELECT COUNT(*) FROM overrides").fetchone()[0] == 0

    mona, peru = new
    overrides.correct(fake_store, "111", mona.id, "Leonardo da Vinci.", "admin")
    edited = [Entry("Who painted the Mona Lisa, and when?", "Leonardo, about 1503.", 1, item_id=mona.id),
              Entry(peru.question, peru.answer, 2)]  # fmt: skip
    doc = cards("111", [(e.question, e.answer) for e in edited])
    fake_store.ingest(
        [ParsedDocument(doc.meta, tuple(edited), doc.content_hash, "discord", "111")], fake_embed
    )
    after = {it.id: it for it in fake_store.items(source="guild_111.jsonl")}
    assert set(after) == {mona.id, peru.id}
    assert after[mona.id].question == "Who painted the Mona Lisa, and when?"
    assert overrides.load_overrides(fake_store).correction(a, mona.id) is None  # the edit is what is served


def test_hiding_an_item_hides_its_duplicates_in_that_space(fake_store):
    grouped = next(
        it
        for it in fake_store.items()
        if it.group is not None and len(fake_store.group_members(it.group)) > 1
    )
    members = {m.id for m in fake_store.group_members(grouped.group)}
    a = Scope.of("111")
    overrides.hide(fake_store, a, grouped.id, "admin")
    assert overrides.load_overrides(fake_store).hidden_in(a) == members
    assert overrides.restore(fake_store, a, grouped.id) is True
    assert overrides.load_overrides(fake_store).hidden_in(a) == frozenset()
