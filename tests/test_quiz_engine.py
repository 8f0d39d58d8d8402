"""The quiz engine over the seeded store: selection, FSRS state and review log, modes, persistence,
concurrency, and the terminal front ends (`tutor quiz`, `tutor stats`, chat `/quiz`).

Which cards, topics, distractors and grades come out depends on the real model (``quiz``, ``store``); the
session flow, persistence and concurrency do not, and run with the stand-in encoder (``fake_quiz``,
``fake_quiz_store``).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from fsrs import Rating, Scheduler, State

from knowledge.models import NOT_SERVABLE
from knowledge.quiz import QuizError, QuizService
from knowledge.quiz.grading import ANSWER_FILLERS
from knowledge.quiz.selection import (
    GENERAL,
    MAX_OPTION_CHARS,
    MC,
    GlossaryEntry,
    QuizCard,
    TopicSettings,
    choose_topics,
    distractors,
    gives_itself_away,
    index_glossary,
    matches,
    multiple_choice,
    option_text,
    resolve_mode,
    topic_evidence,
    topic_vocabulary,
)
from knowledge.store import Store

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TANH, WIGGLE, CE_CLOZE, PARAMS_76 = 150, 155, 162, 116  # item ids in the seeded store


class Clock:
    def __init__(self, now: datetime = START):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="module")
def quiz_store_path(seeded_store_path, encoder, tmp_path_factory):
    """The seeded store with the quiz tables and its card vectors cached (built once per module)."""
    path = tmp_path_factory.mktemp("quiz") / "tutor.db"
    shutil.copy(seeded_store_path, path)
    store = Store(path)
    QuizService(store, encoder).catalogue()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.fixture
def store(quiz_store_path, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(quiz_store_path, data / "tutor.db")
    store = Store(data / "tutor.db")
    yield store
    store.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake_quiz_store(fake_quiz_store_path, tmp_path):
    """A private copy of the quiz-ready store ingested with the stand-in encoder, for the tests whose subject
    is the session flow, persistence or concurrency rather than which cards, topics or grades the model
    gives."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(fake_quiz_store_path, data / "tutor.db")
    store = Store(data / "tutor.db")
    yield store
    store.close()


@pytest.fixture
def fake_quiz(fake_quiz_store, fake_encoder, clock):
    service = QuizService(
        fake_quiz_store, fake_encoder, scheduler=Scheduler(enable_fuzzing=False), clock=clock
    )
    yield service
    service.close()


@pytest.fixture
def quiz(store, encoder, clock):
    service = QuizService(store, encoder, scheduler=Scheduler(enable_fuzzing=False), clock=clock)
    yield service
    service.close()


def play(quiz, session, answer="I don't know"):
    """Answer every remaining question; returns the questions asked."""
    asked = []
    while (q := quiz.question(session)) is not None:
        asked.append(q)
        quiz.answer(session, "a" if q.mode == MC else answer)
    return asked


# --- selection --------------------------------------------------------------------------------------------
def test_never_asks_unservable_items_and_groups_count_once(quiz, store):
    catalogue = quiz.catalogue()
    items = {it.id: it for it in store.items()}
    asked = {c.item_id for c in catalogue.cards}
    assert all(not (items[i].flags & NOT_SERVABLE) for i in asked)
    flagged = {i for i, it in items.items() if it.flags & NOT_SERVABLE}
    assert flagged and not flagged & asked
    groups = [c.card_id for c in catalogue.cards]
    assert len(groups) == len(set(groups)) == len({it.group for it in items.values() if it.servable})
    # The ch. 13 second answer set joins the first: one card, served with the group's best answer.
    best = store.best_answers()
    card = catalogue.card(23)
    assert card.item_id == best[23] and len(card.sources) == 2
    session = quiz.start("u1", n=50, mode="free")
    picked = [q.card_id for q in play(quiz, session)]
    assert len(picked) == len(set(picked)) == 50


def test_disabled_item_leaves_the_quiz(quiz, store):
    store.set_disabled(TANH)
    session = quiz.start("u1", topic="nonlinearity", n=50)
    assert TANH not in {q.item_id for q in play(quiz, session)}


def test_due_cards_come_first_most_overdue_first(fake_quiz, clock):
    first = fake_quiz.start("u1", n=3, mode="free")
    early = [q.card_id for q in play(fake_quiz, first)]  # all wrong: due again in minutes
    clock.advance(days=1)
    later = fake_quiz.start("u1", n=5, mode="free")
    order = []
    while (q := fake_quiz.question(later)) is not None:
        order.append((q.card_id, q.is_new))
        fake_quiz.skip(later)
    assert [c for c, new in order[:3]] == early and not any(new for _, new in order[:3])
    assert all(new for _, new in order[3:])
    review = fake_quiz.start("u1", n=10, review_only=True)
    assert review.total == 3
    nothing = fake_quiz.start("u2", n=5, review_only=True)
    assert nothing.total == 0 and fake_quiz.question(nothing) is None


def test_topic_and_source_filters(quiz):
    for topic in ("dropout", "softmax"):
        for card in [c for c in quiz.catalogue().cards if c.topic == topic]:
            assert topic in card.topic
    session = quiz.start("u1", source="004", n=20)
    assert {quiz.catalogue().card(q.card_id).source for q in play(quiz, session)} == {
        "004_0cc870b9a54faf0e.txt"
    }
    assert dict(quiz.topics())["dropout"] >= 1
    with pytest.raises(QuizError):
        quiz.start("u1", mode="essay")


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (
            {"topic": "quantum chromodynamics"},
            "no cards match the topic 'quantum chromodynamics'; topics include",
        ),
        ({"source": "999"}, "no document matches '999'; documents: 000_"),
    ],
)
def test_filters_matching_nothing_say_so(fake_quiz, filters, message):
    with pytest.raises(QuizError, match=message):
        fake_quiz.start("u1", **filters)
    assert fake_quiz.active_session("u1") is None


class _Doc:
    def __init__(self, title: str, topics: tuple[str, ...]):
        self.title, self.topics = title, topics


def _bag_of_words(vocabulary: list[str]):
    """A fake embedder: one dimension per word of ``vocabulary``, L2-normalised counts."""
    import numpy as np

    def embed(texts):
        out = np.zeros((len(texts), len(vocabulary)), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace(":", " ").replace("?", " ").split():
                if word in vocabulary:
                    out[i, vocabulary.index(word)] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    return embed


def _card(card_id: int, question: str, answer: str, source: str) -> QuizCard:
    return QuizCard(card_id, card_id, question, answer, source, card_id, source, "", False, (source,))


def test_topic_tagger_uses_the_whole_vocabulary_glossaries_and_a_fallback():
    words = [
        "pixels",
        "border",
        "zeros",
        "kernel",
        "steps",
        "moves",
        "photosynthesis",
        "chlorophyll",
        "edges",
    ]
    embed = _bag_of_words(words)
    glossary = index_glossary(
        [
            GlossaryEntry("padding", "zeros pixels border edges", ("padding",)),
            GlossaryEntry("stride", "kernel moves steps", ("stride",), ("step size",)),
        ]
    )
    documents = {
        "a.txt": _Doc("Doc A", ("padding",)),
        "b.txt": _Doc("Doc B", ("step size",)),
        "c.txt": _Doc("Deck", ()),
    }
    cards = [
        _card(1, "What are the zeros around the border?", "pixels at the edges", "a.txt"),
        # Doc A lists only "padding", but the card is about what doc B calls "step size" (the glossary's stride).
        _card(2, "How far does the kernel go?", "it moves in steps", "a.txt"),
        _card(3, "What is photosynthesis?", "chlorophyll", "a.txt"),  # close to no topic
        _card(4, "What is photosynthesis?", "chlorophyll", "c.txt"),  # a deck that lists no topics: its title
    ]
    vocabulary = topic_vocabulary([d.topics for d in documents.values()], glossary)
    assert vocabulary.names == ("padding", "stride")  # "step size" is the glossary's "stride"
    assert vocabulary.texts[0] == "padding: zeros pixels border edges"  # the description is embedded
    vectors_q = embed([c.question for c in cards])
    vectors_a = embed([c.answer for c in cards])
    evidence = topic_evidence(vocabulary, cards, vectors_q, vectors_a, documents, embed, glossary)
    fallbacks = [GENERAL, GENERAL, GENERAL, "Deck"]
    assert choose_topics(vocabulary, evidence, fallbacks=fallbacks) == ["padding", "stride", GENERAL, "Deck"]
    # A name or glossary term in the question counts: by its words this card is closer to stride.
    named = [_card(5, "Is padding about the kernel pixels?", "yes", "a.txt")]
    args = (vocabulary, named, embed([named[0].question]), embed(["yes"]), documents, embed, glossary)
    assert choose_topics(vocabulary, topic_evidence(*args)) == ["padding"]
    assert choose_topics(vocabulary, topic_evidence(*args), TopicSettings(term_bonus=0.0)) == ["stride"]


def test_topic_filter_accepts_a_synonym(quiz):
    cards = [c for c in quiz.catalogue().cards if c.topic == "activation statistics"]
    assert cards and all(matches(c, topic="ActivationStats") for c in cards)  # the glossary's other name
    topics = dict(quiz.topics())
    assert (
        "convolutional layers" not in topics and topics["convolutions"] >= 1
    )  # merged, as the glossary says
    assert sum(topics.values()) == len(quiz.catalogue().cards)


# --- FSRS and the review log ------------------------------------------------------------------------------
def test_review_is_committed_with_the_answer_and_rating_replaces_it(quiz, store, clock):
    session = quiz.start("u1", source="004", topic="range of tanh", n=1, mode="free")
    q = quiz.question(session)
    assert q.item_id == TANH and q.phase == "asking" and q.has_hint
    clock.advance(seconds=12)
    graded = quiz.answer(session, "between -1 and 1")
    assert graded.verdict == "correct" and graded.reference == "[-1,1]" and graded.rating == Rating.Good
    other = Store(store.path)  # another connection sees it before any further call: committed
    rows = list(other.db.query("SELECT * FROM quiz_reviews"))
    assert len(rows) == 1 and rows[0]["duration_ms"] == 12000 and rows[0]["rated_by"] == "grade"
    assert rows[0]["state_before"] == State.Learning and rows[0]["verdict"] == "correct"
    card = other.db.execute("SELECT state, due, reps FROM quiz_cards WHERE user_id='u1'").fetchone()
    assert card[0] == State.Learning and card[2] == 1
    rated = quiz.rate(session, "easy")
    assert rated.rating == Rating.Easy and rated.rated_by == "self" and rated.due > graded.due
    rows = list(other.db.query("SELECT rating, rated_by, state_after FROM quiz_reviews"))
    assert rows == [{"rating": 4, "rated_by": "self", "state_after": State.Review}]
    assert other.db.execute("SELECT state FROM quiz_cards").fetchone()[0] == State.Review
    other.close()
    assert quiz.answer(session, "something else").verdict == "correct"  # idempotent: the first grade stands
    assert quiz.question(session) is None and quiz.session(session).status == "finished"
    with pytest.raises(QuizError):
        quiz.rate(session, "good")


def test_ratings_follow_fsrs_and_lapses_are_counted(quiz, store, clock):
    session = quiz.start("u1", topic="range of tanh", n=1, mode="free")
    quiz.question(session)
    quiz.answer(session, "-1 to 1")
    quiz.rate(session, Rating.Easy)
    due = quiz.next_due("u1")
    assert due >= START + timedelta(days=1)
    clock.now = due + timedelta(hours=1)
    again = quiz.start("u1", n=5, review_only=True)
    assert again.total == 1
    quiz.question(again)
    graded = quiz.answer(again, "[0,1]")
    assert graded.verdict == "wrong" and graded.rating == Rating.Again
    row = store.db.execute("SELECT state, lapses, reps FROM quiz_cards").fetchone()
    assert row == (State.Relearning, 1, 2)
    hint_session = quiz.start("u1", topic="range of sigmoid", n=1, mode="free")
    quiz.question(hint_session)
    assert quiz.hint(hint_session) == "1 word: [_,_]"
    assert quiz.answer(hint_session, "0 to 1").rating == Rating.Hard  # correct, but with a hint


def test_reveal_and_skip(fake_quiz, fake_quiz_store):
    session = fake_quiz.start("u1", n=3, mode="free")
    fake_quiz.question(session)
    revealed = fake_quiz.reveal(session)
    assert revealed.verdict == "revealed" and revealed.rating == Rating.Again and revealed.reference
    assert fake_quiz.rate(session, "good").rating == Rating.Good
    fake_quiz.question(session)
    fake_quiz.skip(session)
    assert fake_quiz.question(session).position == 2
    final = fake_quiz.end(session)
    assert (final.status, final.answered, final.skipped) == ("ended", 1, 1)
    assert fake_quiz_store.db.execute("SELECT COUNT(*) FROM quiz_reviews").fetchone()[0] == 1


def test_only_the_owner_can_answer(fake_quiz):
    session = fake_quiz.start("owner", n=1, mode="free")
    fake_quiz.question(session)
    with pytest.raises(QuizError, match="someone else"):
        fake_quiz.answer(session, "x", user_id="intruder")
    assert fake_quiz.answer(session, "x", user_id="owner").verdict in ("wrong", "partly", "correct")


# --- modes ------------------------------------------------------------------------------------------------
def test_multiple_choice_distractors_are_distinct_and_wrong(quiz):
    catalogue = quiz.catalogue()
    for card in catalogue.cards:
        options = distractors(catalogue, card)
        assert len(options) == 3
        assert card.answer not in options and len(set(options)) == 3
    tanh = distractors(catalogue, catalogue.card(TANH))
    assert "[0,1]" in tanh  # similar but wrong: the sigmoid's range
    session = quiz.start("u1", n=5, mode="mc")
    q = quiz.question(session)
    assert q.mode == MC and len(q.choices) == 4 and not q.has_hint
    with pytest.raises(QuizError):
        quiz.answer(session, "z")
    graded = quiz.answer(session, "B")
    assert graded.choice == 1 and graded.verdict == ("correct" if graded.correct_choice == 1 else "wrong")
    assert q.choices[graded.correct_choice] == option_text(graded.reference, q.prompt)  # the answer as shown


def test_options_are_shown_alike_without_restating_the_question():
    assert option_text("Padding is the additional pixels added around the image.", "What is “padding”?") == (
        "The additional pixels added around the image."
    )
    glued = "The receptive fieldis the area of an image that is involved in the calculation of a layer."
    assert option_text(glued, "What is a “receptive field”?").startswith("The area of an image")
    assert (
        option_text("SGD stands for stochastic gradient descent.", "What is SGD?")
        == "Stochastic gradient descent."
    )
    colon = "Training with a high learning rate gives two benefits:\n\n- We train faster.\n- We generalize better."
    assert option_text(colon, "What are the benefits of training with a high learning rate?") == (
        "We train faster. We generalize better."
    )
    # Not a restatement: another subject, a pronoun, or nothing left after it.
    assert (
        option_text("Stride is how far the kernel moves.", "What is padding?")
        == "Stride is how far the kernel moves."
    )
    assert option_text("It is an abbreviation for the axes.", "What does NCHW mean?").startswith("It is")
    assert option_text("A zero matrix.", "What is the value of a kernel applied to a matrix of zeros?") == (
        "A zero matrix."
    )
    long = "word " * 60
    shown = option_text(long, "What?")
    assert len(shown) <= MAX_OPTION_CHARS + 1 and shown.endswith("…")
    sentences = "A first sentence that is long enough to stand alone as an option here. " * 3
    assert option_text(sentences, "What?").endswith("here.")


def test_multiple_choice_options_do_not_give_themselves_away_by_form(quiz):
    """Over the bundled base: the right option is the longest, the shortest or the one repeating most of the
    question's words about as often as chance (1 in 4) would have it, never far more."""
    import random

    catalogue = quiz.catalogue()
    rng = random.Random(0)
    longest = shortest = echo = 0
    for card in catalogue.cards:
        options, right = multiple_choice(catalogue, card, rng)
        assert len(options) == 4 and len(set(options)) == 4
        assert options[right] == option_text(card.answer, card.question)
        assert all(len(o) <= MAX_OPTION_CHARS + 1 for o in options)
        lengths = [len(o) for o in options]
        longest += lengths[right] == max(lengths) and lengths.count(max(lengths)) == 1
        shortest += lengths[right] == min(lengths) and lengths.count(min(lengths)) == 1
        asked = {w for w in card.question.lower().split() if len(w) > 3}
        shared = [len(asked & set(o.lower().split())) for o in options]
        echo += shared[right] == max(shared) and shared.count(max(shared)) == 1
    n = len(catalogue.cards)
    assert longest / n <= 0.35 and shortest / n <= 0.35 and echo / n <= 0.35, (longest, shortest, echo, n)


def _echo(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in ANSWER_FILLERS}


def test_auto_mode_types_the_cards_whose_options_would_give_them_away(quiz):
    """A long answer naming what no other answer names ("hierarchical softmax") would be the option sharing
    the most words with its question in every draw: "auto" asks it typed; "mc" still may ask it."""
    import random

    catalogue = quiz.catalogue()
    long_cards = [c for c in catalogue.cards if not c.cloze and resolve_mode(c, "auto") == "mc"]
    typed = [c for c in long_cards if resolve_mode(c, "auto", catalogue) == "free"]
    assert typed and len(typed) < len(long_cards) / 2
    rng = random.Random(1)
    for card in typed:
        assert gives_itself_away(catalogue, card)
        assert resolve_mode(card, "mc", catalogue) == "mc"
        options, right = multiple_choice(catalogue, card, rng)
        asked = _echo(card.question)
        shared = [len(asked & _echo(o)) for o in options]
        assert shared[right] > max(shared[:right] + shared[right + 1 :])  # why it is typed
    session = quiz.start("u-auto", n=50, mode="auto")
    modes = {}
    while (q := quiz.question(session)) is not None:
        modes[q.item_id] = q.mode
        quiz.skip(session)
    assert all(modes.get(c.item_id, "free") == "free" for c in typed)


def test_cloze_mode_asks_blanks_and_grades_leniently(quiz):
    session = quiz.start("u1", n=50, mode="cloze")
    asked = []
    while (q := quiz.question(session)) is not None:
        assert q.mode == "cloze" and "__" in q.prompt and q.has_hint
        asked.append(q.item_id)
        if q.item_id == CE_CLOZE:
            assert quiz.hint(session) == "3 words: c____ e______ l___"
            assert quiz.answer(session, "Cross-entropy").verdict == "correct"
        else:
            quiz.skip(session)
    assert CE_CLOZE in asked and len(asked) == 20
    assert resolve_mode(quiz.catalogue().card(CE_CLOZE), "auto") == "cloze"


# --- persistence and concurrency -------------------------------------------------------------------------
def test_session_survives_reopening_the_store(fake_quiz_store, fake_encoder, clock):
    first = QuizService(fake_quiz_store, fake_encoder, clock=clock)
    session = first.start("u1", n=4, mode="mc")
    q1 = first.question(session)
    first.answer(session, "a")
    q2 = first.question(session)
    first.close()

    reopened_store = Store(fake_quiz_store.path)
    second = QuizService(reopened_store, fake_encoder, clock=clock)
    resumed = second.active_session("u1")
    assert resumed.id == session.id and resumed.answered == 1
    again = second.current(resumed)
    assert (again.card_id, again.choices, again.phase) == (q2.card_id, q2.choices, "asking")
    second.answer(resumed, "b")
    # A restored view of an answered question knows its grade (to show the rating buttons).
    assert second.current(resumed).graded.choice == 1
    rest = play(second, resumed)
    assert len(rest) == 2 and q1.card_id not in {q.card_id for q in rest}
    assert second.session(resumed).answered == 4
    second.close()
    reopened_store.close()


def test_concurrent_users_in_threads(fake_quiz, fake_quiz_store):
    users = [f"user{i}" for i in range(8)]
    errors = []

    def learner(user):
        try:
            session = fake_quiz.start(user, n=6, mode="auto")
            while (q := fake_quiz.question(session, user_id=user)) is not None:
                fake_quiz.answer(
                    session, "a" if q.mode == MC else "a tensor with three dimensions", user_id=user
                )
                fake_quiz.answer(session, "double click", user_id=user)  # a retried request: no second review
                fake_quiz.rate(session, "good", user_id=user)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=learner, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    check = Store(fake_quiz_store.path)
    assert check.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    per_user = dict(
        check.db.execute("SELECT user_id, COUNT(*) FROM quiz_reviews GROUP BY user_id").fetchall()
    )
    assert per_user == dict.fromkeys(users, 6)
    assert check.db.execute("SELECT COUNT(*) FROM quiz_cards").fetchone()[0] == 48
    assert check.db.execute("SELECT COUNT(*) FROM quiz_reviews WHERE rated_by != 'self'").fetchone()[0] == 0
    check.close()


def test_the_quiz_and_the_guild_settings_use_the_store_they_are_given(
    fake_quiz_store, fake_encoder, monkeypatch
):
    from bot.guilds import GuildSettings

    monkeypatch.setattr(Store, "__init__", lambda *a, **k: pytest.fail("a second store was opened"))
    quiz, guilds = QuizService(fake_quiz_store, fake_encoder), GuildSettings(fake_quiz_store)
    session = quiz.start("u1", n=1, mode="mc")
    assert quiz.question(session) is not None
    quiz.answer(session, "a")
    assert guilds.update(7, quiz_questions=3)["quiz_questions"] == 3
    quiz.close()
    guilds.close()
    assert fake_quiz_store.db.execute("SELECT COUNT(*) FROM quiz_reviews").fetchone()[0] == 1  # still open


def test_threads_share_one_connection(fake_quiz, fake_quiz_store):
    """Quiz steps, feedback and guild settings from many threads on one connection: no transaction lands
    inside another's (sqlite-utils reads open a savepoint, so reads take the store's lock too)."""
    from bot.guilds import GuildSettings

    guilds = GuildSettings(fake_quiz_store)
    errors, done = [], threading.Event()

    def guarded(fn):
        def run(*args):
            try:
                fn(*args)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        return run

    @guarded
    def learner(user):
        session = fake_quiz.start(user, n=4, mode="auto")
        while (q := fake_quiz.question(session, user_id=user)) is not None:
            fake_quiz.answer(session, "a" if q.mode == MC else "a tensor", user_id=user)
            fake_quiz.stats(user)
        fake_quiz.set_leaderboard(user, True)
        fake_quiz.leaderboard()

    @guarded
    def others():
        n = 0
        while not done.is_set():
            n += 1
            fake_quiz_store.add_feedback(user_id="x", query=f"q{n}", helpful=True)
            guilds.update(1, quiz_questions=n % 20 + 1)
            guilds.leaderboard_users(1)

    learners = [threading.Thread(target=learner, args=(f"user{i}",)) for i in range(4)]
    background = [threading.Thread(target=others) for _ in range(2)]
    for t in [*learners, *background]:
        t.start()
    for t in learners:
        t.join(timeout=120)
    done.set()
    for t in background:
        t.join(timeout=30)
    assert not errors
    assert fake_quiz_store.db.execute("SELECT COUNT(*) FROM quiz_reviews").fetchone()[0] == 16
    assert fake_quiz_store.db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] > 0


# --- progress ---------------------------------------------------------------------------------------------
def test_stats_and_plot(quiz, clock):
    from knowledge.quiz.stats import format_stats, plot_stats

    session = quiz.start("u1", topic="range of tanh", n=1, mode="free")
    quiz.question(session)
    quiz.answer(session, "-1 to 1")
    quiz.rate(session, "easy")
    session = quiz.start("u1", n=2, mode="free")
    play(quiz, session)
    stats = quiz.stats("u1")
    assert (stats.reviews, stats.cards_seen, stats.accuracy, stats.streak_days) == (3, 3, round(1 / 3, 3), 1)
    assert stats.due_24h == 2 and stats.new_available == stats.cards_total - 3
    assert stats.daily[-1].reviews == 3 and stats.daily[-1].recalled == 1
    activation = next(t for t in stats.topics if t.topic == "activation functions")
    assert activation.mastered == 1 and activation.mastery > 0
    clock.advance(days=30)
    later = quiz.stats("u1")
    assert later.due_now == 3 and later.retention is None
    text = format_stats(stats, clock.now)
    assert "reviews     3" in text and "activation functions" in text
    png = plot_stats(stats)
    assert png.startswith(b"\x89PNG")
    quiz.set_leaderboard("u1", True, display_name="Una")
    assert [r.display_name for r in quiz.leaderboard(days=60)] == ["Una"]
    assert quiz.leaderboard(user_ids=["someone"]) == []


def _leaderboard_one_by_one(db, now, user_ids, days, limit):
    """The leaderboard as it was computed before the single query: per user, a count, then all their reviews."""
    from knowledge.quiz import scheduler as sched
    from knowledge.quiz.models import LeaderRow

    since = sched.iso(now - timedelta(days=days))
    wanted = {str(u) for u in user_ids} if user_ids is not None else None
    rows = []
    for user in db.query("SELECT user_id, display_name FROM quiz_users WHERE leaderboard = 1"):
        uid = user["user_id"]
        if wanted is not None and uid not in wanted:
            continue
        count, correct = db.execute(
            "SELECT COUNT(*), SUM(verdict = ?) FROM quiz_reviews WHERE user_id = ? AND reviewed_at >= ?",
            ["correct", uid, since],
        ).fetchone()
        if not count:
            continue
        reviews = list(db.query("SELECT * FROM quiz_reviews WHERE user_id = ? ORDER BY reviewed_at", [uid]))
        learned = [r for r in reviews if r["state_before"] in (int(State.Review), int(State.Relearning))]
        retention = round(sum(r["rating"] > 1 for r in learned) / len(learned), 3) if learned else None
        active, streak, day = {r["reviewed_at"][:10] for r in reviews}, 0, now.date()
        if day.isoformat() not in active:
            day -= timedelta(days=1)
        while day.isoformat() in active:
            streak, day = streak + 1, day - timedelta(days=1)
        rows.append(LeaderRow(uid, user["display_name"] or uid, count, correct or 0, retention, streak))
    rows.sort(key=lambda r: (-r.reviews, -r.correct, r.user_id))
    return rows[:limit]


def test_leaderboard_is_one_query_with_the_same_rows(tmp_path):
    """Random review logs (gaps, ties, reveals, a review dated after "now", opted-out users) rank the same
    as the per-user computation did, in one SQL statement."""
    import random

    from knowledge.quiz import scheduler as sched
    from knowledge.quiz.progress import QuizProgress
    from knowledge.quiz.repository import QuizRepository

    store = Store(tmp_path / "tutor.db")
    rng = random.Random(7)
    now = START + timedelta(hours=5)  # 14:00: a review up to 10 hours earlier is on the same day
    for u in range(30):
        uid = f"u{u:02d}"
        store.db.execute(
            "INSERT INTO quiz_users (user_id, display_name, leaderboard, created_at) VALUES (?, ?, ?, ?)",
            [uid, rng.choice([None, "", f"Name {u}"]), int(rng.random() < 0.8), sched.iso(START)],
        )
        days_back = sorted(rng.sample(range(-1, 45), rng.randint(0, 12)))
        if u % 5 == 0:  # a streak of several days ending today or yesterday
            days_back = sorted({*days_back, *range(u % 2, u % 2 + rng.randint(2, 6))})
        if u == 10:  # and a review dated tomorrow, which no streak counts
            days_back = sorted({*days_back, -1, 0})
        for back in days_back:
            for _ in range(rng.randint(1, 4)):
                when = now - timedelta(days=back, minutes=rng.randint(0, 600))
                store.db.execute(
                    "INSERT INTO quiz_reviews (user_id, card_id, rating, verdict, state_before, reviewed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [uid, rng.randint(1, 50), rng.randint(1, 4),
                     rng.choice(["correct", "partly", "wrong", "revealed", None]),
                     rng.choice([None, *range(4)]), sched.iso(when)],
                )  # fmt: skip
    progress = QuizProgress(QuizRepository(store), Scheduler(), lambda: now)
    queries = []
    store.db.conn.set_trace_callback(queries.append)
    for user_ids, days, limit in [
        (None, 7, 10), (None, 60, 100), (None, 1, 3), ([f"u{u:02d}" for u in range(0, 30, 3)], 14, 10),
        (["nobody"], 7, 10), ([], 7, 10),
    ]:  # fmt: skip
        queries.clear()
        got = progress.leaderboard(user_ids, days=days, limit=limit)
        assert len([q for q in queries if "sqlite_utils_query" not in q]) == 1  # not the savepoint
        assert got == _leaderboard_one_by_one(store.db, now, user_ids, days, limit)
    assert len(progress.leaderboard(None, days=60, limit=100)) > 10
    assert any(r.streak_days > 1 for r in progress.leaderboard(None, days=60, limit=100))
    store.db.conn.set_trace_callback(None)
    store.close()


# --- terminal ---------------------------------------------------------------------------------------------
@pytest.fixture
def data_dir(store, monkeypatch):
    monkeypatch.setenv("TUTOR_DATA_DIR", str(store.path.parent))
    return store.path.parent


TANH_QUIZ = ["quiz", "--source", "004", "--topic", "nonlinearity", "--mode", "free"]  # the range of tanh


def test_tutor_quiz_through_stdin(data_dir, store):
    from tutor.cli import main

    script = ":hint\n-1 to 1\ng\n:help\n:skip\n\ne\n"
    args = [*TANH_QUIZ, "-n", "3", "--user", "ann"]
    result = CliRunner().invoke(main, args, input=script)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Question 1/3" in out and "range of tanh nonlinearity" in out and "Hint: 1 word: [-_,_]" in out
    assert (
        "Correct" in out and "(Enter: Hard)" in out and "Rated Good" in out
    )  # the hint capped the suggestion
    assert "Skipped." in out and "Reference answer:" in out and "Quiz complete" in out
    rows = list(
        store.db.query("SELECT rating, rated_by, verdict FROM quiz_reviews WHERE user_id='ann' ORDER BY id")
    )
    assert [r["verdict"] for r in rows] == ["correct", "revealed"]
    assert [r["rated_by"] for r in rows] == ["self", "self"]


def test_tutor_quiz_resumes_and_quits_cleanly(data_dir, store):
    from tutor.cli import main

    runner = CliRunner()
    first = runner.invoke(main, ["quiz", "-n", "3", "--mode", "mc", "--user", "bo"], input="a\n\n:quit\n")
    assert first.exit_code == 0, first.output
    assert "Quiz ended: 1 answered" in first.output
    assert store.db.execute("SELECT COUNT(*) FROM quiz_reviews WHERE user_id='bo'").fetchone()[0] == 1
    # An ended session is not offered again; one left open (a killed process) is, where it stopped.
    from tutor.services import encoder

    service = QuizService(store, encoder())
    session = service.start("bo", n=3, mode="free")
    service.question(session)
    service.answer(session, "no idea")
    service.close()
    again = runner.invoke(main, ["quiz", "--user", "bo"], input="y\n\n\n:quit\n")
    assert "Resume your quiz in progress (1/3)?" in again.output
    assert "Question 2/3" in again.output and "Quiz ended: 2 answered" in again.output


def test_tutor_stats_prints_and_plots(data_dir, tmp_path):
    from tutor.cli import main

    runner = CliRunner()
    runner.invoke(main, ["quiz", "-n", "2", "--mode", "free", "--user", "cy"], input="sparse\n\nno idea\n\n")
    png = tmp_path / "progress.png"
    result = runner.invoke(main, ["stats", "--user", "cy", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "Quiz progress for cy" in result.output and "reviews     2" in result.output
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[0] > 100 and image.shape[1] > 100
    as_json = runner.invoke(main, ["stats", "--user", "cy", "--json"])
    assert '"reviews": 2' in as_json.output
    missing_dir = runner.invoke(main, ["stats", "--user", "cy", "--plot", str(tmp_path / "nope" / "p.png")])
    assert missing_dir.exit_code == 1 and "cannot write the plot" in missing_dir.output
    assert missing_dir.exception is None or isinstance(missing_dir.exception, SystemExit)


def test_chat_quiz_inline(data_dir, seeded_index_dir):
    from tutor.cli import main

    shutil.copytree(seeded_index_dir, data_dir / "index")
    script = "/quiz 2 free\n-1 to 1\n\n:quit\nwhat is padding?\n/quit\n"
    result = CliRunner().invoke(main, ["chat"], input=script, env={"USER": "chatter"})
    assert result.exit_code == 0, result.output
    assert "Question 1/2" in result.output and "Quiz ended: 1 answered" in result.output
    assert "Padding is the additional pixels" in result.output  # back to chatting afterwards


# --- contested grades and batch grading ------------------------------------------------------------------
def test_a_learner_contests_a_grade_and_an_admin_decides(quiz, store):
    session = quiz.start("dee", source="004", topic="nonlinearity", n=2, mode="free")
    question = quiz.question(session)
    graded = quiz.answer(session, "the sigmoid thing")
    assert graded.verdict in ("partly", "wrong")
    contest_id = quiz.contest(session, question.position)
    assert quiz.contest(session, question.position) == contest_id, "contesting twice keeps the first claim"
    assert quiz.contested(session, question.position)
    [row] = quiz.contests("pending")
    assert (row["user_id"], row["answer"], row["verdict"], row["claimed"]) == (
        "dee",
        "the sigmoid thing",
        graded.verdict,
        "correct",
    )
    assert (row["source"], row["n"]) == (graded.source, graded.n)
    decided = quiz.decide_contest(contest_id, "partly", "teacher")
    assert (decided["status"], decided["label"], decided["decided_by"]) == ("confirmed", "partly", "teacher")
    assert quiz.contests("pending") == [] and len(quiz.contests("confirmed")) == 1
    with pytest.raises(QuizError, match="no contested grade"):
        quiz.decide_contest(9999, None, "teacher")
    with pytest.raises(QuizError, match="correct, partly or wrong"):
        quiz.contest(session, question.position, claimed="brilliant")
    with pytest.raises(QuizError, match="belongs to someone else"):
        quiz.contest(session, question.position, user_id="eve")


def test_only_a_typed_graded_answer_can_be_contested(fake_quiz):
    session = fake_quiz.start("fay", n=2, mode="mc")
    question = fake_quiz.question(session)
    with pytest.raises(QuizError, match="only a graded answer"):
        fake_quiz.contest(session, question.position)  # not answered yet
    fake_quiz.answer(session, "a")
    with pytest.raises(QuizError, match="typed answer"):
        fake_quiz.contest(session, question.position)
    revealed = fake_quiz.start("gus", n=1, mode="free")
    fake_quiz.question(revealed)
    fake_quiz.reveal(revealed)
    with pytest.raises(QuizError, match="typed answer"):
        fake_quiz.contest(revealed, 0)


def test_contest_from_the_terminal_quiz_and_the_admin_command(data_dir, store):
    from tutor.cli import main

    runner = CliRunner()
    args = [*TANH_QUIZ, "-n", "1", "--user", "hal"]
    result = runner.invoke(main, args, input="the sigmoid thing\nc\n\n")
    assert result.exit_code == 0, result.output
    assert "[c]ontest the grade" in result.output and "Noted" in result.output
    listed = runner.invoke(main, ["quiz", "contests"])
    assert "claims correct" in listed.output and "the sigmoid thing" in listed.output
    contest_id = listed.output.split()[0]
    confirmed = runner.invoke(main, ["quiz", "contests", "--confirm", contest_id, "--label", "partly"])
    assert confirmed.exit_code == 0 and "confirmed as partly" in confirmed.output
    assert runner.invoke(main, ["quiz", "contests"]).output.strip() == ""
    missing = runner.invoke(main, ["quiz", "contests", "--reject", "424242"])
    assert missing.exit_code == 1 and "no contested grade 424242" in missing.output


def test_batch_grading_reads_json_lines_and_reports_bad_ones(data_dir):
    from tutor.cli import main

    ch13 = "000_bc2d647321f7b90f.txt"
    lines = [
        json.dumps({"source": ch13, "n": 6, "answer": "how many pixels the kernel moves at a time"}),
        json.dumps({"source": ch13, "n": 6, "answer": "I don't know"}),
        "not json",
        json.dumps({"source": "nope.txt", "n": 1, "answer": "x"}),
        json.dumps({"source": ch13, "n": 3, "answer": "x"}),  # unanswered in the source
        json.dumps({"source": ch13, "n": 6, "answer": 7}),
        json.dumps([1, 2]),
    ]
    raw = ("\n".join(lines) + "\n").encode() + b"\xff\xfe invalid utf-8\n"
    result = CliRunner().invoke(main, ["quiz", "grade", "--json", "-"], input=raw)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 8 and [r["line"] for r in rows] == list(range(1, 9))
    assert rows[0]["verdict"] in ("correct", "partly") and set(rows[0]) == {
        "line",
        "verdict",
        "score",
        "missing",
    }
    assert rows[1]["verdict"] == "wrong"
    assert "not JSON" in rows[2]["error"] and "no entry 1" in rows[3]["error"]
    assert "no answer to grade against" in rows[4]["error"] and "answer must be a string" in rows[5]["error"]
    assert "JSON object" in rows[6]["error"] and "error" in rows[7]


def test_grader_eval_reports_the_answers_it_never_saw(data_dir):
    from knowledge.quiz.calibrate import ANSWERS_DIR
    from tutor.cli import main

    result = CliRunner().invoke(main, ["quiz", "eval", "--json"])
    assert result.exit_code == 0, result.output
    reports = {
        json.loads(line)["file"].rsplit("/", 1)[-1]: json.loads(line) for line in result.output.splitlines()
    }
    assert set(reports) == {"f1.jsonl", "f2.jsonl", "f3.jsonl", "grading_labels.jsonl"}
    f3 = reports["f3.jsonl"]
    assert f3["n"] == 90 and 0 <= f3["three_way"] <= 1 and 0 <= f3["wrong_graded_correct"] <= 1
    assert sum(sum(row.values()) for row in f3["confusion"].values()) == 90
    a4 = CliRunner().invoke(main, ["quiz", "eval", "--json", "--rules", str(ANSWERS_DIR / "a4.jsonl")])
    assert a4.exit_code == 0 and json.loads(a4.output)["n"] == 609


def test_batch_grading_survives_a_deeply_nested_line(data_dir):
    """One hostile line (nested 100,000 deep) is that line's error, not a RecursionError for the batch."""
    from tutor.cli import main

    good = json.dumps({"source": "000_bc2d647321f7b90f.txt", "n": 6, "answer": "how far the kernel moves"})
    raw = "[" * 100_000 + "]" * 100_000 + "\n" + good + "\n"
    result = CliRunner().invoke(main, ["quiz", "grade", "--json", "-"], input=raw)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert "nested more than" in rows[0]["error"] and rows[1]["verdict"] in ("correct", "partly", "wrong")
