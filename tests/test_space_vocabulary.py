"""A server's cards change nothing outside it: what a question is read and scored with (typo correction, the
words the knowledge base knows, their document frequencies and row count behind coverage, BM25's
statistics) is the shared notes' plus its own space's cards, never another space's."""

from __future__ import annotations

import random
import re

import numpy as np

from knowledge.scope import Scope
from knowledge.words import light_stem
from tests.stores import space_deck as cards

A, B = "111", "222"
# Words no note uses: topics a server might teach, and what off-topic questions ask about.
NEW_WORDS = (
    "transformer transformers attention encoder decoder tokenizer embeddings quaternion sourdough bread "
    "pizza football guitar kubernetes docker blockchain mitochondria photosynthesis sonnet violin "
    "prompting finetuning diffusion latent autoregressive bayesian markov ensemble boosting xgboost"
).split()
OFF_TOPIC = (
    "what is a transformer encoder",
    "how does attention work in transformers",
    "how do I bake sourdough bread",
    "is kubernetes better than docker",
    "explain photosynthesis in plants",
    "what is xgboost boosting",
    "how do diffusion models sample latent noise",
    "who won the football match yesterday",
    "what is a bayesian markov chain",
    "hmm what about finetuning with prompting",
)


def typo(word: str, rng: random.Random) -> str:
    """One slip inside the word (never its first letter, nor only its last two): what correction undoes."""
    i = rng.randrange(1, len(word) - 3)
    kind = rng.choice(("swap", "drop", "double", "replace"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    letter = rng.choice([c for c in "aeioustrn" if c != word[i]])
    return word[:i] + letter + word[i + 1 :]


def misspell(text: str, wrong: dict[str, str]) -> str:
    return re.sub(r"[A-Za-z]+", lambda m: wrong.get(m.group(0).lower(), m.group(0)), text)


def _long_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 6]


def questions_about_the_notes(store, rng: random.Random) -> tuple[list[str], list[str]]:
    """(questions about shared notes: as written, misspelled, keywords, chatty; and the typos used)."""
    notes = sorted((it for it in store.items() if it.scope is None and it.servable), key=lambda it: it.id)
    asked, typos = [], []
    for item in notes[::4]:  # 52 of the 208
        question = re.sub(r"[“”`’]", "", item.question)
        asked.append(question)
        long_words = _long_words(question)
        if long_words:
            wrong = {w: typo(w, rng) for w in rng.sample(long_words, min(2, len(long_words)))}
            typos += wrong.values()
            asked.append(misspell(question, wrong))
        if len(long_words) >= 2:
            asked.append(" ".join(long_words[:3]) + "?")
    for item in notes[2::9]:
        asked.append(f"hey, quick q - my prof keeps saying {' '.join(_long_words(item.answer)[:4])}, what?")
    return [*asked, *OFF_TOPIC], typos


def server_cards(
    n: int, rng: random.Random, note_words: list[str], typos: list[str]
) -> list[tuple[str, str]]:
    """Cards whose vocabulary overlaps the notes' (shifting their document frequencies and BM25
    statistics), extends it (new topics) and sits one edit away from it (the very typos students make)."""
    near = [*typos, *(typo(w, rng) for w in note_words if len(w) >= 6)]

    def word() -> str:
        pool = rng.choices((note_words, near, NEW_WORDS), weights=(5, 3, 2))[0]
        return rng.choice(pool)

    return [
        (
            f"What is {' '.join(word() for _ in range(rng.randint(2, 5)))} ({i})?",
            " ".join(word() for _ in range(rng.randint(6, 16))) + ".",
        )
        for i in range(n)
    ]


def _snapshot(retriever, questions: list[str], scope: Scope) -> list[tuple]:
    """Everything an answer and its scoring hold, bar timings: status, entry, score, alternatives, and
    the query as read, its unknown words and the calibration features."""
    out = []
    for answer, scoring in retriever.ask_scored(questions, scope):
        alternatives = tuple((a.item_id, a.score) for a in answer.alternatives)
        seen = (
            None
            if scoring is None
            else (scoring.query, scoring.unknown, tuple(scoring.calibration), tuple(scoring.scores))
        )
        out.append((answer.status, answer.item_id, answer.score, alternatives, seen))
    return out


def test_another_server_s_cards_change_no_answer_in_dms_or_other_servers(fake_retriever, fake_embed):
    """173 questions about the notes (as written, misspelled, keywords, chatty, off-topic) in DMs and in a
    server with 40 cards, before and after another server imports 2,000 cards: every answer, its scoring
    included, identical. (With the vocabulary and BM25 over every row, 20 of the DM answers changed status
    or entry and 146 their score; with BM25 alone over every row, 4 and 134.)"""
    retriever, store = fake_retriever, fake_retriever.store
    rng = random.Random(7)
    asked, typos = questions_about_the_notes(store, rng)
    assert len(asked) >= 140
    note_words = sorted(
        {w for it in store.items() if it.scope is None for w in re.findall(r"[a-z]{4,}", it.question.lower())}
    )
    # Server B has cards of its own: its answers, too, must not depend on server A's.
    b_cards = server_cards(40, random.Random(1), note_words, typos)
    store.ingest([cards(B, b_cards)], fake_embed)
    retriever.reload()
    b_asked = [*asked, *(q for q, _ in b_cards[:20])]
    dm, b, a = Scope.shared(), Scope.of(B), Scope.of(A)
    before = {dm: _snapshot(retriever, asked, dm), b: _snapshot(retriever, b_asked, b)}
    a_before = _snapshot(retriever, asked, a)
    assert a_before == before[dm]  # a server without cards sees exactly the shared notes
    statuses = {s for s, *_ in before[dm]}
    assert statuses >= {"answered", "no_match"}, statuses

    store.ingest([cards(A, server_cards(2000, rng, note_words, typos))], fake_embed)
    retriever.reload()
    assert len(retriever.index.spaces) == 2 and len(store.items(source=f"guild_{A}.jsonl")) == 2000
    for scope in (dm, b):
        questions = b_asked if scope == b else asked
        after = _snapshot(retriever, questions, scope)
        changed = [
            (q, x[:3], y[:3]) for q, x, y in zip(questions, before[scope], after, strict=True) if x != y
        ]
        assert not changed, f"{len(changed)} answers changed in {scope}: {changed[:5]}"
    # The cards do reach server A: its vocabulary knows the typos now, so some questions read differently.
    a_after = _snapshot(retriever, asked, a)
    assert sum(x[4] != y[4] for x, y in zip(a_before, a_after, strict=True)) > 10


def test_a_space_s_own_words_are_known_and_corrected_there_only(fake_retriever, fake_embed):
    retriever, store = fake_retriever, fake_retriever.store
    question = "What is a flibbertigibbet in our course?"
    store.ingest([cards(A, [(question, "Our course's mascot, a zanzibarian snollygoster.")])], fake_embed)
    retriever.reload()
    card = store.items(source=f"guild_{A}.jsonl")[0]
    lexical = retriever.index.lexical
    a, b, dm = Scope.of(A), Scope.of(B), Scope.shared()

    assert lexical.known("flibbertigibbet", A) and lexical.known("snollygosters", A)  # up to inflection
    assert not lexical.known("flibbertigibbet") and not lexical.known("flibbertigibbet", B)
    assert lexical.correct("flibertigibbet", A) == "flibbertigibbet"
    assert lexical.correct("flibertigibbet") == "flibertigibbet" == lexical.correct("flibertigibbet", B)
    assert lexical.correct("gradiant", A) == "gradient" == lexical.correct("gradiant")  # the notes' still
    shared, own = lexical.vocabulary_of(None), lexical.vocabulary_of(A)
    assert own.size == shared.size + 1 and lexical.vocabulary_of(B).size == shared.size
    assert own.stem_df(light_stem("mascot")) == 1 and shared.stem_df(light_stem("mascot")) == 0
    course = light_stem("course")
    assert shared.stem_df(course) <= own.stem_df(course) <= shared.stem_df(course) + 1
    assert lexical.vocabulary_of(B).stem_df(course) == shared.stem_df(course)

    typed = "what's a flibertigibbet snollygoster"
    mine = retriever.explain(typed, a)
    assert "flibbertigibbet" in mine["query"] and mine["unknown_words"] == []
    assert retriever.ask(typed, a).item_id == card.id
    for scope in (b, dm):
        theirs = retriever.explain(typed, scope)
        assert "flibertigibbet" in theirs["query"]
        assert set(theirs["unknown_words"]) == {"flibertigibbet", "snollygoster"}
        assert card.id not in {retriever.ask(typed, scope).item_id}


def test_bm25_in_a_space_is_scored_over_what_it_sees(fake_retriever, fake_embed):
    """A card's BM25 in its server is the same whatever other servers hold, and a shared note's BM25 in a
    server without cards is its DM score: the statistics are those of the rows the scope sees."""
    retriever, store = fake_retriever, fake_retriever.store
    lexical = lambda: retriever.index.lexical  # noqa: E731 (reloads replace it)
    store.ingest(
        [cards(A, [("What is gradient clipping for zebras?", "Capping the gradient norm.")])], fake_embed
    )
    retriever.reload()
    words = ["gradient", "zebras", "clipping"]
    in_a = lexical().search(words, 10, spaces=(None, A))
    in_dm = lexical().search(words, 10, spaces=(None,))
    assert in_a[0].key == store.items(source=f"guild_{A}.jsonl")[0].id
    assert in_dm == lexical().search(words, 10, spaces=(None, B)) and in_dm

    store.ingest(
        [cards(B, [(f"Gradient zebras {i}?", "gradient " * (i % 5 + 1)) for i in range(300)])], fake_embed
    )
    retriever.reload()
    assert lexical().search(words, 10, spaces=(None, A)) == in_a
    assert lexical().search(words, 10, spaces=(None,)) == in_dm
    # Only the space's own rows when the shared ones are not asked for, with the same scores.
    own = lexical().search(words, 10, spaces=(A,))
    assert own == [h for h in in_a if h.key == own[0].key]
    assert np.isfinite([h.score for h in in_a]).all()
