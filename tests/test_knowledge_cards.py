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


# --- card text: the invisible characters, and corrections checked the same way ----------------------------
INVISIBLE = [
    "\u3164",  # HANGUL FILLER: a letter to isalnum(), shown as nothing
    "\u115f\u1160",
    "\uffa0 \u3164",
    "\u00ad",
    "\u034f",
    "\u180b\u180e\u180f",
    "\u2060\u2061\u2064",
    "\ufe00\ufe0f",
    "\ufeff\u200c",
    "\U0001bca0\U0001bca3",
    "\U000e0041\U000e007f",
    "\U000e0100",
    "\u200b \u3164 \u00ad",
]


@pytest.mark.parametrize("text", INVISIBLE)
def test_text_made_only_of_invisible_characters_is_refused(text) -> None:
    with pytest.raises(CardError, match="needs some text"):
        cards.clean_question(text)
    with pytest.raises(CardError, match="needs some text"):
        cards.clean_answer(text)
    with pytest.raises(CardError, match="needs some text"):
        cards.clean_question(f"?{text}!")


def test_invisible_characters_go_at_the_ends_and_stay_inside() -> None:
    assert cards.clean_question("\u3164\u00adwhat is a widget?\u3164\u2060") == "what is a widget?"
    assert cards.clean_answer("\ufeffA thing.\u115f\n") == "A thing."
    # Those that belong to the character before them stay: an emoji's variation selector, a flag's tags.
    assert cards.clean_answer("I love it ❤\ufe0f") == "I love it ❤\ufe0f"
    scotland = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert cards.clean_question(f"Whose flag is {scotland}") == f"Whose flag is {scotland}"
    # Two questions that differ only in invisible characters are one question.
    assert cards._same_question("What is\u3164 a widget?") == cards._same_question("what is a widget")


def test_a_correction_is_checked_like_a_card_answer(fake_store, fake_embed) -> None:
    card = cards.add_card(fake_store, A, "What is a widget?", "A thing.", fake_embed)
    shared = next(it for it in fake_store.items() if it.scope is None and it.servable)
    assert overrides.MAX_CORRECTION == cards.MAX_ANSWER == 2000
    for key, item_id in (("111", card.id), ("", shared.id)):
        for text, says in (
            ("a bell\x07 rings", "control character"),
            ("abc\u202egnp.exe", "text-direction override"),
            ("\u3164", "needs some text"),
            ("\u200b \u00ad\ufe0f", "needs some text"),
            (" ... ", "needs some text"),
            ("x" * (cards.MAX_ANSWER + 1), "limit is 2,000"),
            (None, "must be text"),
        ):
            with pytest.raises(overrides.OverrideError, match=says):
                overrides.correct(fake_store, key, item_id, text, "admin")
        assert overrides.load_overrides(fake_store).corrections == {}, "nothing was stored"
    fixed = overrides.correct(fake_store, "111", card.id, "\u200b A better\r\nthing.\u3164 ", "admin")
    assert fixed.answer == "A better\nthing."
    assert overrides.correct(fake_store, "111", card.id, "y" * cards.MAX_ANSWER, "admin").answer == "y" * 2000


# --- ids: an edit keeps its card's, a new question never takes an old one ----------------------------------
def ids(store, scope) -> list[int]:
    return [c.id for c in cards.cards(store, scope)]


def ever(store, scope) -> set[int]:
    """Every item id the space's deck ever had, retired ones included."""
    return {it.id for it in store.items(include_retired=True, source=cards.deck_source(scope))}


def test_an_edit_keeps_the_card_its_id_even_with_a_new_question(fake_store, fake_embed) -> None:
    for q, a in (
        ("What is a widget?", "A thing."),
        ("What is a gadget?", "A tool."),
        ("What is a gizmo?", "Fun."),
    ):
        cards.add_card(fake_store, A, q, a, fake_embed)
    before = ids(fake_store, A)
    fake_store.add_feedback(
        user_id="u1", query="gadget?", helpful=False, item_id=before[1], answer="A tool.", guild_id="111"
    )
    edited = cards.edit_card(
        fake_store, A, before[1], "Which device opens tins in the kitchen?", "A tin opener.", fake_embed
    )
    assert edited.id == before[1] and edited.n == 2
    assert ids(fake_store, A) == before, "the other cards keep theirs, and no id is handed to another card"
    assert ever(fake_store, A) == set(before), "no card was retired or added"
    assert [r["item_id"] for r in fake_store.feedback()] == [before[1]], "its history stays with it"
    assert [e.item_id for e in overrides.review_queue(fake_store, A).entries] == [before[1]]
    # Editing it into another card's question is refused, with that card named.
    with pytest.raises(CardError, match=f"item {before[0]}"):
        cards.edit_card(fake_store, A, before[1], "what is a WIDGET", "x", fake_embed)


DECKS = {
    "latin": (
        [("What is a widget?", "A thing."), ("What is a gadget?", "A tool."), ("What is a gizmo?", "Fun.")],
        b"## Which metal rusts?\nIron.\n\n## Which gas do plants take in?\nCarbon dioxide.\n\n"
        b"## What colour is the sky?\nBlue.\n",
    ),
    # The questions of a non-Latin deck have no a-z letters: one new question is no more an old one.
    "cyrillic": (
        [
            ("Что такое тензор?", "Массив."),
            ("Что такое градиент?", "Производная."),
            ("Что такое слой?", "Блок."),
        ],
        "## Какой металл ржавеет?\nЖелезо.\n\n## Какой газ поглощают растения?\nУглекислый газ.\n\n"
        "## Какого цвета небо?\nГолубого.\n".encode(),
    ),
}


@pytest.mark.parametrize("deck", DECKS, ids=list(DECKS))
def test_an_import_with_replace_gives_new_questions_new_ids(fake_store, fake_embed, deck) -> None:
    pairs, new_deck = DECKS[deck]
    for q, a in pairs:
        cards.add_card(fake_store, A, q, a, fake_embed)
    old = ids(fake_store, A)
    overrides.hide(fake_store, A, old[0], "admin")
    overrides.correct(fake_store, "111", old[1], "A corrected answer.", "admin")
    removed = cards.remove_card(fake_store, A, old[2], fake_embed)  # retired: its id is not free either

    report = cards.import_deck(fake_store, A, "new.md", new_deck, fake_embed, replace=True)
    assert (report.added, report.removed, report.total) == (3, 2, 3)
    new = ids(fake_store, A)
    assert len(new) == 3 and not set(new) & {*old, removed.id}, "no new question took an old card's id"
    seen = overrides.load_overrides(fake_store)
    assert not seen.hidden_in(A) & set(new), "no old hide applies to a new card"
    assert all(seen.correction(A, i) is None for i in new), "no old correction applies to a new card"
    assert [(q, a) for q, a in live(fake_store, A)] == [
        (e.question, e.answer) for e in cards.read_deck("new.md", new_deck)
    ]

    # The very same question (any case) keeps its card's id; a question added later gets a new id too.
    again = f"## {pairs[0][0].upper()}\nAgain.\n".encode()
    cards.import_deck(fake_store, A, "again.md", again, fake_embed, replace=True)
    assert ids(fake_store, A) == [old[0]], "the very same question: the same card"
    before = ever(fake_store, A)
    added = cards.add_card(fake_store, A, pairs[1][0] + " Really?", "Yes.", fake_embed)
    assert added.id not in before


# --- /kb edit of a card the server corrected --------------------------------------------------------------
def test_an_edit_of_a_corrected_card_is_what_is_served(fake_store, fake_embed) -> None:
    card = cards.add_card(fake_store, A, "What is a widget?", "A thing.", fake_embed)
    assert cards.for_editing(fake_store, A, card.id) == (card, "A thing.")
    overrides.correct(fake_store, "111", card.id, "A small mechanical thing.", "admin")
    # The form shows what students are served: the correction.
    shown, answer = cards.for_editing(fake_store, A, card.id)
    assert shown.id == card.id and answer == "A small mechanical thing."
    with pytest.raises(NotFound):
        cards.for_editing(fake_store, B, card.id)

    # The admin puts the card's own text back: that is what is served now, not the correction.
    cards.edit_card(fake_store, A, card.id, "What is a widget?", "A thing.", fake_embed)
    assert overrides.load_overrides(fake_store).correction(A, card.id) is None
    assert cards.for_editing(fake_store, A, card.id)[1] == "A thing."

    # Saving the prefilled correction with a new question: the card's own text, no correction left.
    overrides.correct(fake_store, "111", card.id, "A small mechanical thing.", "admin")
    edited = cards.edit_card(
        fake_store, A, card.id, "What is a widget for?", "A small mechanical thing.", fake_embed
    )
    assert edited.id == card.id and edited.answer == "A small mechanical thing."
    assert overrides.load_overrides(fake_store).correction(A, card.id) is None
