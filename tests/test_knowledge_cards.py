"""A space's own cards (knowledge.cards): card text checks, the deck's changes as whole-document ingests,
imports that are all or nothing, exports that import back, and another space's cards never reachable."""

from __future__ import annotations

import json

import pytest

from knowledge import cards, overrides
from knowledge.cards import CardError
from knowledge.errors import NotFound, ParseError
from knowledge.scope import Scope

A, B = Scope.of(111), Scope.of(222)


def live(store, scope):
    return [(c.question, c.answer) for c in cards.cards(store, scope)]


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\u200b", "\u200b\u200b \u200d\ufeff", "?!", "what\x07 is this", "abc\u202egnp.exe"],
)
def test_unreadable_questions_are_refused(text) -> None:
    with pytest.raises(CardError):
        cards.clean_question(text)


def test_card_text_is_tidied_and_bounded() -> None:
    assert cards.clean_question("  \u200bwhat   is\n a  widget?\u200b ") == "what is a widget?"
    assert cards.clean_answer("line one\r\n\tline two\n") == "line one\n\tline two"
    assert (
        cards.clean_question("what is 🧑\u200d🔬 science") == "what is 🧑\u200d🔬 science"
    )  # ZWJ inside: kept
    assert cards.clean_question("что такое тензор") == "что такое тензор"
    with pytest.raises(CardError, match="limit is 1,000"):
        cards.clean_question("q" * (cards.MAX_QUESTION + 1))
    with pytest.raises(CardError, match="answer"):
        cards.clean_answer("\u200b")


def test_add_edit_remove_stay_in_their_space(fake_store, fake_embed) -> None:
    first = cards.add_card(fake_store, A, "What is a widget?", "A thing.", fake_embed, "A cards")
    second = cards.add_card(fake_store, A, "What is a gadget?", "Another thing.", fake_embed)
    assert first.scope == "111" and first.source == "guild_111.jsonl"
    assert live(fake_store, A) == [("What is a widget?", "A thing."), ("What is a gadget?", "Another thing.")]
    assert live(fake_store, B) == []
    with pytest.raises(CardError, match=f"item {first.id}"):
        cards.add_card(fake_store, A, "what is a WIDGET", "dup", fake_embed)

    edited = cards.edit_card(
        fake_store, A, first.id, "What is a widget, really?", "A small thing.", fake_embed
    )
    assert edited.id == first.id and edited.answer == "A small thing."
    assert cards.remove_card(fake_store, A, first.id, fake_embed).id == first.id
    assert live(fake_store, A) == [("What is a gadget?", "Another thing.")]
    assert cards.cards(fake_store, A)[0].id == second.id, "ids stay stable"

    # Space B: A's card is "no such item", word for word as an id that does not exist.
    for call in (
        lambda i: cards.edit_card(fake_store, B, i, "mine now", "mine", fake_embed),
        lambda i: cards.remove_card(fake_store, B, i, fake_embed),
        lambda i: cards.visible_item(fake_store, B, i),
    ):
        with pytest.raises(NotFound) as theirs:
            call(second.id)
        with pytest.raises(NotFound) as nothing:
            call(10**9)
        assert str(theirs.value) == str(nothing.value).replace(str(10**9), str(second.id))
    shared = next(it for it in fake_store.items() if it.scope is None)
    with pytest.raises(CardError, match="shared notes"):
        cards.edit_card(fake_store, A, shared.id, "q?", "a", fake_embed)
    with pytest.raises(CardError, match="direct messages"):
        cards.add_card(fake_store, Scope.shared(), "q?", "a", fake_embed)

    # The last card removed: the deck is empty, and a new card starts it again.
    cards.remove_card(fake_store, A, second.id, fake_embed)
    assert live(fake_store, A) == []
    cards.add_card(fake_store, A, "What is a sprocket?", "A wheel.", fake_embed)
    assert live(fake_store, A) == [("What is a sprocket?", "A wheel.")]


def test_import_is_all_or_nothing_and_names_the_line(fake_store, fake_embed) -> None:
    cards.add_card(fake_store, A, "What is a widget?", "A thing.", fake_embed)
    before = live(fake_store, A)
    bad = b'{"question": "What is a gadget?", "answer": "x"}\n{"question": "\\u200b", "answer": "y"}\n'
    with pytest.raises(ParseError, match=r"deck\.jsonl:2: the question needs some text"):
        cards.import_deck(fake_store, A, "deck.jsonl", bad, fake_embed)
    broken = b'{"question": "What is a gadget?", "answer": "x"}\n\n{"question": "oops"\n'
    with pytest.raises(ParseError, match=r"deck\.jsonl:3: invalid JSON"):
        cards.import_deck(fake_store, A, "deck.jsonl", broken, fake_embed)
    repeated = b"## What is a gadget?\nx\n\n## what is a GADGET\ny\n"
    with pytest.raises(ParseError, match=r"deck\.md:4: repeats the question of line 1"):
        cards.import_deck(fake_store, A, "deck.md", repeated, fake_embed)
    with pytest.raises(ParseError, match="limit is 1 MiB"):
        cards.import_deck(
            fake_store, A, "deck.tsv", b"a\tb\n" * (cards.MAX_IMPORT_BYTES // 4 + 1), fake_embed
        )
    assert live(fake_store, A) == before

    tsv = b"What is a widget?\tAn updated thing.\nWhat is a gadget?\tA new thing.\n"
    report = cards.import_deck(fake_store, A, "deck.tsv", tsv, fake_embed)
    assert (report.read, report.added, report.updated, report.total) == (2, 1, 1, 2)
    assert live(fake_store, A) == [
        ("What is a widget?", "An updated thing."),
        ("What is a gadget?", "A new thing."),
    ]

    exported = cards.export_cards(fake_store, A)
    assert [json.loads(line)["question"] for line in exported.splitlines()] == [
        q for q, _ in live(fake_store, A)
    ]
    again = cards.import_deck(fake_store, B, "cards.jsonl", exported, fake_embed)
    assert again.added == 2 and live(fake_store, B) == live(fake_store, A)
    assert cards.import_deck(fake_store, A, "cards.jsonl", exported, fake_embed).unchanged == 2

    replaced = cards.import_deck(
        fake_store, B, "one.md", b"## What is a sprocket?\nA wheel.\n", fake_embed, replace=True
    )
    assert replaced.removed == 2 and live(fake_store, B) == [("What is a sprocket?", "A wheel.")]


def test_export_overrides_and_owner_disable(fake_store, fake_embed) -> None:
    card = cards.add_card(fake_store, A, "What is a widget?", "A thing.", fake_embed)
    shared = next(it for it in fake_store.items() if it.scope is None and it.servable)
    overrides.hide(fake_store, A, shared.id, "admin")
    overrides.correct(fake_store, "111", card.id, "A better thing.", "admin")
    rows = [json.loads(line) for line in cards.export_overrides(fake_store, A).splitlines()]
    assert [(r["kind"], r["item_id"]) for r in rows] == [("hide", shared.id), ("correct", card.id)]
    assert cards.export_overrides(fake_store, B) == b""

    assert "disabled" in cards.disable_everywhere(fake_store, shared.id).flags
    assert "disabled" not in cards.disable_everywhere(fake_store, shared.id, False).flags
    with pytest.raises(CardError, match="server's own card"):
        cards.disable_everywhere(fake_store, card.id)
