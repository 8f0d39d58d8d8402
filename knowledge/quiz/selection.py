"""Which cards a quiz asks, in which mode, with which distractors and hints.

A card is a duplicate group: every member shares one FSRS state and the card is served with the group's best
answer (``Store.best_answers``). Items flagged unanswered, placeholder, off-topic or disabled are never asked:
a group whose best item is not servable has no servable member (the best-answer rule ranks them last). Where
the best item cannot be served as the card (it was disabled since, or the store is between an ingest's
publish and its analysis: the best is retired, another space's, or not in the group), the card is served
from the lowest-id member that can be; a group with none is no card.
Due cards come first, most overdue first; then new cards in document order. Cards reviewed but not yet due
are left alone, as FSRS intends.

Spaces (``knowledge.scope``): the catalogue holds every space's cards, built once per content of the store;
a quiz draws from ``Catalogue.within(scope, overrides)``, the cards a scope sees (shared ones and its
space's, less its hides) with its corrected answers, which is itself a catalogue, so the selection,
distractors and hints below only ever see that scope's cards. Duplicate groups never cross spaces, so a
card belongs to one space (``QuizCard.scope``).

A scope sees a card as ``Catalogue.served`` says, member by member (``QuizCard.members``): served from its
item, or where its space hides that item, from the next member it does not hide that can be served (its
text then; the card is dropped only when its space hides every such member); answered with the correction
the scope sees of the served member, else of another member it does not hide, in the card's order (as the
retriever picks a group's correction).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.models import CLOZE, DISABLED, Item
from knowledge.quiz.grading import ANSWER_FILLERS, key_terms
from knowledge.readable import readable_line
from knowledge.scope import EVERYWHERE, Overrides, Scope
from knowledge.store import Store

FREE, MC, CLOZE_MODE, AUTO = "free", "mc", "cloze", "auto"
MODES = (FREE, MC, CLOZE_MODE, AUTO)
MC_CHOICES = 4
AUTO_MC_MIN_WORDS = 13  # auto mode: answers this long are asked as multiple choice, shorter ones typed
DISTRACTOR_BAND = (0.25, 0.85)  # similar enough to be plausible, not so similar it is the same answer
_BLANK = re.compile(r"_{2,}")
_WORD = re.compile(r"[a-z0-9]+")

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class QuizCard:
    card_id: int  # the duplicate group id
    item_id: int  # the group's best item: its question and answer are served
    question: str
    answer: str
    source: str
    n: int
    title: str
    topic: str  # the vocabulary topic closest to the card, or GENERAL (per-topic mastery, --topic)
    cloze: bool
    sources: tuple[str, ...]  # every member's document
    scope: str | None = None  # the space of its documents (a group never crosses spaces); None: shared
    # The group's live members a scope may be served or take a correction from (not disabled), in the
    # card's order: the served item first, then by id. Empty: the item alone.
    members: tuple[int, ...] = ()

    @property
    def blanks(self) -> int:
        return len(_BLANK.findall(self.question))

    @property
    def member_ids(self) -> tuple[int, ...]:
        return self.members or (self.item_id,)


@dataclass(frozen=True)
class Catalogue:
    """Every quizzable card with the vectors selection needs; rebuilt when the store's content changes.

    Caches (card index, key terms, options, the cards of each space) are computed on first use and kept on
    the instance; a scope's view (``within``) takes its key terms and options from its parent's.
    """

    cards: tuple[QuizCard, ...]
    answer_vectors: np.ndarray  # (len(cards), dim), L2-normalised
    fingerprint: str
    question_vectors: np.ndarray | None = None  # (len(cards), dim): a card asking the same is no distractor
    # item id -> its card served from that member instead (a servable member that is not the card's item):
    # what a scope that hides the card's item is asked (``served``).
    variants: Mapping[int, QuizCard] = field(default_factory=dict)

    def card(self, card_id: int) -> QuizCard | None:
        return self._index().get(card_id)

    def position(self, card_id: int) -> int:
        return self._positions()[card_id]

    def _cached(self, name: str, compute: Callable[[], Any]) -> Any:
        value = self.__dict__.get(name)
        if value is None:
            value = compute()
            object.__setattr__(self, name, value)
        return value

    def _index(self) -> dict[int, QuizCard]:
        return self._cached("_by_id", lambda: {c.card_id: c for c in self.cards})

    def _positions(self) -> dict[int, int]:
        return self._cached("_pos", lambda: {c.card_id: i for i, c in enumerate(self.cards)})

    def _memo(self, name: str, positions: Iterable[int], compute: Callable[[QuizCard], Any]) -> list[Any]:
        """``compute(card)`` at each position, each computed once per catalogue."""
        memo: dict[int, Any] = self._cached(name, dict)
        out = []
        for i in positions:
            value = memo.get(i)
            if value is None:
                value = memo[i] = compute(self.cards[i])
            out.append(value)
        return out

    def answer_terms(self) -> list[frozenset[str]]:
        """Key terms of each card's answer, computed once (distractor checks compare every pair)."""
        return self._cached("_terms", lambda: self._memo("_terms_at", range(len(self.cards)), _answer_terms))

    def question_terms(self) -> list[frozenset[str]]:
        """Key terms of each card's question, computed once."""
        return self._cached(
            "_question_terms",
            lambda: self._memo("_question_terms_at", range(len(self.cards)), _question_terms),
        )

    def options(self) -> list[tuple[str, frozenset[str]]]:
        """Each card's answer as a multiple-choice option (``option_text``) and its words, computed once."""
        return self._cached("_options", lambda: self._memo("_options_at", range(len(self.cards)), _option))

    def topics(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for card in self.cards:
            counts[card.topic] = counts.get(card.topic, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    # --- what one scope sees ----------------------------------------------------------------------------
    def _spaces(self) -> dict[str | None, np.ndarray]:
        """Positions of each space's cards (None: the shared ones), in catalogue order."""

        def split() -> dict[str | None, np.ndarray]:
            groups: dict[str | None, list[int]] = {}
            for i, card in enumerate(self.cards):
                groups.setdefault(card.scope, []).append(i)
            return {key: np.asarray(rows, dtype=np.int64) for key, rows in groups.items()}

        return self._cached("_space_rows", split)

    def _member_positions(self) -> dict[int, int]:
        """item id -> position of the card it is a member of."""
        return self._cached(
            "_member_pos", lambda: {m: i for i, c in enumerate(self.cards) for m in c.member_ids}
        )

    def serves(self, card: QuizCard, item_id: int) -> bool:
        """Whether ``card`` may be served from the item ``item_id`` (its item, or another servable member)."""
        variant = self.variants.get(item_id)
        return item_id == card.item_id or (variant is not None and variant.card_id == card.card_id)

    def served(
        self,
        card: QuizCard,
        scope: Scope,
        overrides: Overrides | None = None,
        item_id: int | None = None,
    ) -> QuizCard | None:
        """``card`` as ``scope`` sees it; None where it sees none of it (another space's card, or its space
        hides every member that could serve it).

        Served from ``item_id`` when given (a session's planned member; None if its space hides it), else
        from the card's item or, where its space hides that, from the first member in the card's order that
        it does not hide and that can be served. Its answer is the correction the scope sees (its space's,
        else the everywhere one) of the served member, else of another member it does not hide, in the
        card's order; else the member's own.
        """
        if not scope.sees(card.scope):
            return None
        hidden = overrides.hidden_in(scope) if overrides is not None else frozenset()
        seen: QuizCard | None
        if item_id is None:
            choices = (card, *(self.variants[m] for m in card.member_ids if m in self.variants))
            seen = next((c for c in choices if c.item_id not in hidden), None)
        else:
            seen = card if item_id == card.item_id else self.variants.get(item_id)
            if seen is not None and (seen.card_id != card.card_id or seen.item_id in hidden):
                seen = None
        if seen is None or overrides is None:
            return seen
        correction = overrides.first_correction(scope, (seen.item_id, *card.member_ids))
        if correction is None or correction.answer == seen.answer:
            return seen
        return replace(seen, answer=correction.answer)

    def visible(
        self, scope: Scope, overrides: Overrides | None = None
    ) -> tuple[np.ndarray, dict[int, QuizCard]]:
        """The positions of the cards ``scope`` sees, in catalogue order (shared cards and its space's, less
        those its space hides, see ``served``), and each position it sees otherwise than the catalogue has
        it (another member's text, a corrected answer), as it sees it. Costs the scope's own cards and the
        overrides, not the catalogue's."""
        spaces = self._spaces()
        empty = np.zeros(0, dtype=np.int64)
        rows = spaces.get(None, empty)
        if scope.key is not None and scope.key in spaces:
            rows = np.sort(np.concatenate([rows, spaces[scope.key]]))
        if overrides is None:
            return rows, {}
        where = self._member_positions()
        keys = {EVERYWHERE, scope.key}
        touched = {where[i] for i in overrides.hidden_in(scope) if i in where}
        touched.update(where[i] for key, i in overrides.corrections if key in keys and i in where)
        changed: dict[int, QuizCard] = {}
        dropped: list[int] = []
        for position in sorted(touched):
            card = self.cards[position]
            if not scope.sees(card.scope):
                continue
            seen = self.served(card, scope, overrides)
            if seen is None:
                dropped.append(position)
            elif seen != card:
                changed[position] = seen
        if dropped:
            rows = rows[~np.isin(rows, dropped)]
        return rows, changed

    def scoped_cards(self, scope: Scope, overrides: Overrides | None = None) -> list[QuizCard]:
        """The cards ``scope`` sees, as it sees them (no vectors: topics, sources, statistics)."""
        rows, changed = self.visible(scope, overrides)
        return [changed.get(i, self.cards[i]) for i in rows.tolist()]

    def within(
        self, scope: Scope, overrides: Overrides | None = None, embed: Embed | None = None
    ) -> Catalogue:
        """The catalogue of what ``scope`` sees (``visible``): its cards, vectors, key terms and options, as it
        sees them (a corrected answer, another member's text), those embedded anew with ``embed`` when
        given (else a card keeps its catalogue vectors). Selection, distractors and hints given this view
        never see another space's card. Where the scope sees every card as it is, that is this catalogue."""
        rows, changed = self.visible(scope, overrides)
        if not changed and len(rows) == len(self.cards):
            return self
        order = rows.tolist()
        cards = tuple(changed.get(i, self.cards[i]) for i in order)
        answer_vectors = self.answer_vectors[rows]  # copies: changed rows are replaced below
        question_vectors = self.question_vectors[rows] if self.question_vectors is not None else None
        if changed and embed is not None:
            fixed = [(k, i) for k, i in enumerate(order) if i in changed]
            answers = [k for k, i in fixed if cards[k].answer != self.cards[i].answer]
            if answers:
                fresh = embed([cards[k].answer[:300] for k in answers])
                answer_vectors[answers] = np.asarray(fresh, dtype=answer_vectors.dtype)
            asked = [k for k, i in fixed if cards[k].question != self.cards[i].question]
            if asked and question_vectors is not None:
                fresh = embed([cards[k].question for k in asked])
                question_vectors[asked] = np.asarray(fresh, dtype=question_vectors.dtype)
        view = Catalogue(cards, answer_vectors, self.fingerprint, question_vectors, self.variants)
        plain = [i for i in order if i not in changed]
        for name, memo, compute in (
            ("_terms", "_terms_at", _answer_terms),
            ("_question_terms", "_question_terms_at", _question_terms),
            ("_options", "_options_at", _option),
        ):
            shared = dict(zip(plain, self._memo(memo, plain, compute), strict=True))
            values = [shared[i] if i in shared else compute(cards[k]) for k, i in enumerate(order)]
            object.__setattr__(view, name, values)
        return view


def _answer_terms(card: QuizCard) -> frozenset[str]:
    return frozenset(key_terms(card.answer))


def _question_terms(card: QuizCard) -> frozenset[str]:
    return frozenset(key_terms(card.question))


def _option(card: QuizCard) -> tuple[str, frozenset[str]]:
    text = option_text(card.answer, card.question)
    return text, _echo_words(text)


def build_catalogue(
    store: Store, embed: Embed, previous: Catalogue | None = None, fingerprint: str | None = None
) -> Catalogue:
    """Every space's quizzable cards (``Catalogue.within`` gives one scope's), with their vectors and topics.

    ``previous``: the catalogue this one replaces. A card it already had, unchanged (same item, texts,
    documents and their topics), keeps its vectors and, where its vocabulary is the same, its topic, so a
    change in one space (a server's new card) embeds and files that space's changed cards only; the rest of
    a rebuild is reading the store. ``fingerprint``: the store's content hash, taken before reading it (so a
    change meanwhile makes the next refresh build again); computed here when not given.
    """
    fingerprint = str(store.content_version()) if fingerprint is None else fingerprint
    items = {it.id: it for it in store.items()}
    documents = {d.source: d for d in store.documents()}
    best = store.best_answers()
    groups: dict[int, list[Item]] = {}
    for it in items.values():
        groups.setdefault(it.group if it.group is not None else it.id, []).append(it)
    cards = []
    others: dict[int, list[Item]] = {}  # card id -> its other servable members, in the card's order
    for group_id, group in groups.items():
        members = _card_members(group_id, group, best.get(group_id))
        servable = [m for m in members if m.servable]
        if not servable:
            continue
        served, sources = servable[0], tuple(sorted({m.source for m in members}))
        members = [served, *(m for m in members if m is not served)]
        cards.append(_card(group_id, served, documents, sources, tuple(m.id for m in members)))
        if len(servable) > 1:
            others[group_id] = servable[1:]
    cards.sort(key=lambda c: (c.source, c.n))
    if not cards:
        return Catalogue((), np.zeros((0, 1), dtype=np.float32), fingerprint)
    signatures = [(c, tuple(documents[s].topics if s in documents else () for s in c.sources)) for c in cards]
    before: dict[int, tuple[Any, int]] = previous.__dict__.get("_built_from", {}) if previous else {}
    kept = {}  # position here -> position in ``previous``
    for i, signature in enumerate(signatures):
        old = before.get(signature[0].card_id)
        if old is not None and old[0] == signature:
            kept[i] = old[1]
    answer_vectors, question_vectors = _card_vectors(cards, kept, previous, embed)
    vocabularies: dict[str | None, tuple[str, ...]] = {}
    topics = _card_topics(
        cards, question_vectors, answer_vectors, documents, embed, vocabularies,
        reuse={i: previous.cards[j].topic for i, j in kept.items()} if previous else {},
        reused_vocabularies=previous.__dict__.get("_vocabularies", {}) if previous else {},
    )  # fmt: skip
    with_topics = tuple(_replace(c, topic=t) for c, t in zip(cards, topics, strict=True))
    variants = {
        m.id: _replace(_card(c.card_id, m, documents, c.sources, c.members), topic=c.topic)
        for c in with_topics
        for m in others.get(c.card_id, ())
    }
    catalogue = Catalogue(with_topics, answer_vectors, fingerprint, question_vectors, variants)
    object.__setattr__(
        catalogue, "_built_from", {sig[0].card_id: (sig, i) for i, sig in enumerate(signatures)}
    )
    object.__setattr__(catalogue, "_vocabularies", vocabularies)
    return catalogue


def _card_members(group_id: int, group: Sequence[Item], best_id: int | None) -> list[Item]:
    """A group's members a card may serve or take a correction from, best first, then by id: the live ones
    of the group's space (its lowest member's: a group is numbered after it) that are not disabled. A best
    that is missing (retired), another space's or not in the group (the store between an ingest's publish
    and its analysis) is not first: the lowest member is."""
    space = min(group, key=lambda m: m.id).scope
    members = sorted((m for m in group if m.scope == space and DISABLED not in m.flags), key=lambda m: m.id)
    first = next((m for m in members if m.id == best_id), None)
    return members if first is None else [first, *(m for m in members if m is not first)]


def _card(
    card_id: int, item: Item, documents: dict, sources: tuple[str, ...], members: tuple[int, ...]
) -> QuizCard:
    doc = documents.get(item.source)
    return QuizCard(
        card_id=card_id, item_id=item.id, question=item.question, answer=item.answer, source=item.source,
        n=item.n, title=doc.title if doc else item.source, topic="", cloze=CLOZE in item.flags, sources=sources,
        scope=item.scope, members=members if len(members) > 1 else (),
    )  # fmt: skip


def _card_vectors(
    cards: Sequence[QuizCard], kept: dict[int, int], previous: Catalogue | None, embed: Embed
) -> tuple[np.ndarray, np.ndarray]:
    """(answer vectors, question vectors): an unchanged card's from ``previous``, the others embedded.
    Answers truncated: the opening of an answer says what it is about, and long answers cost seconds."""
    fresh = [i for i in range(len(cards)) if i not in kept]
    if not kept or previous is None or previous.question_vectors is None:
        return embed([c.answer[:300] for c in cards]), embed([c.question for c in cards])
    out = []
    for old, text in (
        (previous.answer_vectors, lambda c: c.answer[:300]),
        (previous.question_vectors, lambda c: c.question),
    ):
        vectors = np.empty((len(cards), old.shape[1]), dtype=np.float32)
        here, there = list(kept), list(kept.values())
        vectors[here] = old[there]
        if fresh:
            vectors[fresh] = embed([text(cards[i]) for i in fresh])
        out.append(vectors)
    return out[0], out[1]


def _card_topics(
    cards: Sequence[QuizCard],
    question_vectors: np.ndarray,
    answer_vectors: np.ndarray,
    documents: dict,
    embed: Embed,
    vocabularies: dict[str | None, tuple[str, ...]] | None = None,
    reuse: dict[int, str] | None = None,
    reused_vocabularies: dict[str | None, tuple[str, ...]] | None = None,
) -> list[str]:
    """Each card's topic, from the shared documents' topics (and the glossary's broad ones); a space whose
    documents list topics of their own files its cards under those too, and no other space sees them.

    ``vocabularies`` is filled with each vocabulary's texts (by space key; None: the shared one); a card in
    ``reuse`` (position -> its topic before) keeps that topic where its vocabulary is the same as in
    ``reused_vocabularies`` (a card's topic depends on nothing else)."""
    vocabularies = {} if vocabularies is None else vocabularies
    reuse, reused_vocabularies = reuse or {}, reused_vocabularies or {}
    shared = [d.topics for d in documents.values() if d.scope is None]
    own: dict[str, list[tuple[str, ...]]] = {}
    for doc in documents.values():
        if doc.scope is not None and doc.topics:
            own.setdefault(doc.scope, []).append(doc.topics)
    rows: dict[str | None, list[int]] = {}  # None: the cards filed with the shared vocabulary
    for i, card in enumerate(cards):
        rows.setdefault(card.scope if card.scope in own else None, []).append(i)
    topics = [GENERAL] * len(cards)
    for key, positions in rows.items():
        vocabulary = topic_vocabulary(shared + own.get(key, []) if key is not None else shared)
        vocabularies[key] = vocabulary.texts
        if reused_vocabularies.get(key) == vocabulary.texts:
            for i in positions:
                if i in reuse:
                    topics[i] = reuse[i]
            positions = [i for i in positions if i not in reuse]
        if not positions:
            continue
        part = [cards[i] for i in positions]
        evidence = topic_evidence(
            vocabulary, part, question_vectors[positions], answer_vectors[positions], documents, embed
        )
        chosen = choose_topics(vocabulary, evidence, fallbacks=[_fallback_topic(c, documents) for c in part])
        for i, topic in zip(positions, chosen, strict=True):
            topics[i] = topic
    return topics


# --- topics -----------------------------------------------------------------------------------------------
# A card is filed under one topic of a fixed vocabulary: every document's topics (manifest ``topics``, merged
# where the glossary says two names are one topic) plus the glossary's broad topics. Each topic is embedded
# through its glossary description ("what it covers"), not its bare name, so "batch size" and "batch
# normalization" are told apart by meaning. A card's score for a topic is
#
#     question_weight * cos(question, topic) + (1 - question_weight) * cos(answer, topic)
#     + term_bonus (its name, a synonym or one of its glossary terms in the question; half if only in the answer)
#     + document_prior (the topic is one of the card's documents' topics)
#
# over the whole vocabulary; the best topic wins unless its score is under ``min_score``, when the card is
# filed under GENERAL (or its document's title where the document lists no topics: an imported deck on
# another subject keeps its title). The settings were chosen by grid search on hand labels of the bundled
# base's 203 cards (``data/topic_labels.jsonl``, how they were made in ``data/topic_labels.md``): right on
# 0.956 of them, 0.941 with 5-fold cross-validation, against 0.512 for the nearest bare topic name among the
# card's own document's topics (the tagger before). ``bench/topic_tagger.py [--search]`` reproduces them.
GLOSSARY = Path(__file__).parent / "data" / "topic_glossary.jsonl"
GENERAL = "general"


@dataclass(frozen=True)
class TopicSettings:
    question_weight: float = 0.7
    term_bonus: float = 0.2
    document_prior: float = 0.0
    min_score: float = 0.225


TOPIC_SETTINGS = TopicSettings()


@dataclass(frozen=True)
class GlossaryEntry:
    topic: str
    covers: str  # one or two sentences of what the topic covers: what is embedded
    terms: tuple[str, ...] = ()  # words characteristic of the topic
    same_as: tuple[str, ...] = ()  # other names of the same topic (merged into this one)
    broad: bool = False  # a candidate for every base, whether or not a document lists it


@cache
def load_glossary(path: Path = GLOSSARY) -> dict[str, GlossaryEntry]:
    """The glossary by lower-cased topic name and synonym (an empty one if the file is missing)."""
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return index_glossary(
        GlossaryEntry(
            r["topic"],
            r["covers"],
            tuple(r.get("terms", ())),
            tuple(r.get("same_as", ())),
            bool(r.get("broad")),
        )
        for r in rows
    )


def index_glossary(entries: Iterable[GlossaryEntry]) -> dict[str, GlossaryEntry]:
    """Entries by lower-cased topic name and by each synonym."""
    return {name.lower(): e for e in entries for name in (e.topic, *e.same_as)}


def canonical_topic(name: str, glossary: dict[str, GlossaryEntry] | None = None) -> str:
    """The vocabulary's name for a topic: a glossary synonym ("ActivationStats") becomes its topic."""
    entry = (load_glossary() if glossary is None else glossary).get(name.strip().lower())
    return entry.topic if entry else name.strip()


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern | None:
    """Any of the phrases as whole words, case-insensitive; spaces and hyphens interchangeable, plural -s."""
    parts = []
    for phrase in sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True):
        words = [re.escape(w) for w in re.split(r"[\s-]+", phrase)]
        parts.append(r"[\s-]?".join(words) + (r"(?:e?s)?" if phrase[-1].isalpha() else ""))
    if not parts:
        return None
    return re.compile(r"(?<![\w-])(?:" + "|".join(parts) + r")(?![\w])", re.IGNORECASE)


@dataclass(frozen=True)
class TopicVocabulary:
    names: tuple[str, ...]
    texts: tuple[str, ...]  # what is embedded for each: "name: what it covers", or the bare name
    term_patterns: tuple[re.Pattern | None, ...] = field(repr=False)  # name, synonyms and glossary terms


def topic_vocabulary(
    document_topics: Iterable[Sequence[str]], glossary: dict[str, GlossaryEntry] | None = None
) -> TopicVocabulary:
    """Every document's topics (synonyms merged) plus the glossary's broad topics, sorted by name."""
    glossary = load_glossary() if glossary is None else glossary
    listed = {canonical_topic(t, glossary) for topics in document_topics for t in topics if t.strip()}
    broad = {e.topic for e in glossary.values() if e.broad}
    names = tuple(sorted(listed | broad, key=str.lower))
    entries = [glossary.get(n.lower()) for n in names]
    return TopicVocabulary(
        names=names,
        texts=tuple(f"{n}: {e.covers}" if e else n for n, e in zip(names, entries, strict=True)),
        term_patterns=tuple(
            _phrase_pattern([n, *(e.same_as + e.terms if e else ())]) for n, e in zip(names, entries, strict=True)
        ),
    )  # fmt: skip


@dataclass(frozen=True)
class TopicEvidence:
    """(cards, topics) matrices; ``choose_topics`` weighs them (kept apart so settings can be searched)."""

    question_similarity: np.ndarray
    answer_similarity: np.ndarray
    term_hits: np.ndarray  # 1 in the question, 0.5 only in the answer
    in_document: np.ndarray


def _hits(
    patterns: Sequence[re.Pattern | None], questions: Sequence[str], answers: Sequence[str]
) -> np.ndarray:
    out = np.zeros((len(questions), len(patterns)), dtype=np.float32)
    for j, pattern in enumerate(patterns):
        if pattern is None:
            continue
        for i, (q, a) in enumerate(zip(questions, answers, strict=True)):
            out[i, j] = 1.0 if pattern.search(q) else 0.5 if pattern.search(a) else 0.0
    return out


def topic_evidence(
    vocabulary: TopicVocabulary,
    cards: Sequence[QuizCard],
    question_vectors: np.ndarray,
    answer_vectors: np.ndarray,
    documents: dict,
    embed: Embed,
    glossary: dict[str, GlossaryEntry] | None = None,
) -> TopicEvidence:
    """What says which topic each card is about; ``embed`` should cache (``TextVectors``): built once."""
    glossary = load_glossary() if glossary is None else glossary
    topic_vectors = embed(list(vocabulary.texts))
    questions = [c.question for c in cards]
    answers = [c.answer[:300] for c in cards]
    index = {n: j for j, n in enumerate(vocabulary.names)}
    in_document = np.zeros((len(cards), len(vocabulary.names)), dtype=np.float32)
    for i, card in enumerate(cards):
        for source in card.sources or (card.source,):
            doc = documents.get(source)
            for t in doc.topics if doc else ():
                j = index.get(canonical_topic(t, glossary))
                if j is not None:
                    in_document[i, j] = 1.0
    return TopicEvidence(
        question_similarity=np.asarray(question_vectors @ topic_vectors.T, dtype=np.float32),
        answer_similarity=np.asarray(answer_vectors @ topic_vectors.T, dtype=np.float32),
        term_hits=_hits(vocabulary.term_patterns, questions, answers),
        in_document=in_document,
    )


def topic_scores(evidence: TopicEvidence, settings: TopicSettings = TOPIC_SETTINGS) -> np.ndarray:
    w = settings.question_weight
    return (
        w * evidence.question_similarity
        + (1 - w) * evidence.answer_similarity
        + settings.term_bonus * evidence.term_hits
        + settings.document_prior * evidence.in_document
    )


def choose_topics(
    vocabulary: TopicVocabulary,
    evidence: TopicEvidence,
    settings: TopicSettings = TOPIC_SETTINGS,
    fallbacks: Sequence[str] | None = None,
) -> list[str]:
    """Each card's best topic, or its fallback (GENERAL by default) when no topic scores ``min_score``."""
    n = evidence.question_similarity.shape[0]
    fallbacks = list(fallbacks) if fallbacks is not None else [GENERAL] * n
    if not vocabulary.names:
        return fallbacks
    scores = topic_scores(evidence, settings)
    best = scores.argmax(axis=1)
    return [
        vocabulary.names[j] if scores[i, j] >= settings.min_score else fallbacks[i]
        for i, j in enumerate(best)
    ]


def _fallback_topic(card: QuizCard, documents: dict) -> str:
    """GENERAL for a card of a document that lists topics; otherwise (an imported deck) its title."""
    listed = any(documents[s].topics for s in card.sources or (card.source,) if s in documents)
    return GENERAL if listed else card.title


def _replace(card: QuizCard, **changes) -> QuizCard:
    from dataclasses import replace

    return replace(card, **changes)


def matches(card: QuizCard, topic: str | None = None, source: str | None = None) -> bool:
    """--topic: the card's topic, its document's title, or all the topic's words in the card's text.
    --source: a document's file name (or its prefix, "004") or a word of its title."""
    if source:
        wanted = source.strip().lower()
        if not any(s.lower().startswith(wanted) for s in card.sources) and wanted not in card.title.lower():
            return False
    if topic:
        wanted = topic.strip().lower()
        if wanted in card.topic.lower() or wanted in card.title.lower():
            return True
        if canonical_topic(topic).lower() == card.topic.lower():  # a synonym: "ActivationStats"
            return True
        terms = set(key_terms(topic))
        return bool(terms) and terms <= set(key_terms(f"{card.question} {card.answer}"))
    return True


def resolve_mode(card: QuizCard, mode: str, catalogue: Catalogue | None = None) -> str:
    """What a card is asked as: cloze prompts are always cloze; "auto" types short answers, picks long ones
    unless its options would give the right one away (``gives_itself_away``, checked given ``catalogue``)."""
    if card.cloze:
        return MC if mode == MC else CLOZE_MODE
    if mode in (FREE, MC):
        return mode
    if len(card.answer.split()) < AUTO_MC_MIN_WORDS:
        return FREE
    return FREE if catalogue is not None and gives_itself_away(catalogue, card) else MC


def select_cards(
    catalogue: Catalogue,
    due: dict[int, datetime],
    now: datetime,
    n: int,
    *,
    topic: str | None = None,
    source: str | None = None,
    mode: str = AUTO,
    review_only: bool = False,
) -> list[tuple[QuizCard, bool]]:
    """Up to ``n`` (card, is_new) pairs: due cards (most overdue first), then new ones in document order.

    ``due`` maps every card the user has reviewed to its FSRS due time.
    """
    eligible = [c for c in catalogue.cards if matches(c, topic, source) and (mode != CLOZE_MODE or c.cloze)]
    overdue = sorted(
        (c for c in eligible if c.card_id in due and due[c.card_id] <= now), key=lambda c: due[c.card_id]
    )
    picks = [(c, False) for c in overdue[:n]]
    if not review_only:
        fresh = [c for c in eligible if c.card_id not in due]
        picks += [(c, True) for c in fresh[: n - len(picks)]]
    return picks


def distractors(catalogue: Catalogue, card: QuizCard, k: int = MC_CHOICES - 1) -> list[str]:
    """Other cards' answers that are similar but wrong, distinct from the right answer and from each other."""
    return [catalogue.cards[j].answer for j in _distractor_indices(catalogue, card, k)]


def gives_itself_away(catalogue: Catalogue, card: QuizCard) -> bool:
    """No plausible distractor repeats as many of the question's words as the right option does, so in every
    multiple-choice form of this card the option sharing the most words with the question is the right one
    (answers naming something no other answer names: "hierarchical softmax", "L-BFGS"). "auto" asks such a
    card typed."""
    return not _distractor_indices(catalogue, card, cover_only=True)


def _distractor_indices(
    catalogue: Catalogue,
    card: QuizCard,
    k: int = MC_CHOICES - 1,
    draw: random.Random | None = None,
    cover_only: bool = False,
) -> list[int]:
    """Positions of the distractors' cards (``cover_only``: the pool's that echo the question as much as the
    right option, see ``gives_itself_away``).

    Wrong: never the same answer, one whose key terms contain the right answer's or are a piece of it, one at
    answer cosine >= the band's top to it or to another distractor, one shown the same, the answer to a
    question asked the same way (question cosine >= ``SAME_QUESTION``) or about the same thing (the key
    terms of one question all in the other's).

    Plausible: a pool of the ``DISTRACTOR_POOL`` best by answer-answer cosine, those inside
    ``DISTRACTOR_BAND`` first, less the difference from the right option as shown (``option_text``) in length
    (``LENGTH_WEIGHT`` per unit of log ratio) and in how many of the question's words it repeats
    (``ECHO_WEIGHT`` per word); and the ``ECHO_POOL`` next best that repeat as many of them as the right
    option does (an answer can only look like the right one if some distractor echoes the question too).

    Not told apart by form: of that pool, the ``k`` that put the right option where a random draw (``draw``,
    or one seeded by the card) says: in length order, after 0 to ``k`` shorter options with equal chance; in
    echo order, first (repeating the most question words) one time in ``k + 1``; the most plausible such set
    first. So neither the longest, the shortest nor the most echoing option is right more often than chance
    allows, where the pool makes it possible (``bench/mc_form_guesser.py`` measures it).
    """
    index = catalogue.position(card.card_id)
    sims = catalogue.answer_vectors @ catalogue.answer_vectors[index]
    asked = (
        catalogue.question_vectors @ catalogue.question_vectors[index]
        if catalogue.question_vectors is not None
        else np.zeros(len(catalogue.cards))
    )
    all_terms = catalogue.answer_terms()
    right_terms = all_terms[index]
    shown = catalogue.options()
    question_words = _echo_words(card.question)
    right_len, right_echo = _form(shown[index], question_words)
    question_terms_of = catalogue.question_terms()
    subject = question_terms_of[index]
    lo, hi = DISTRACTOR_BAND

    def ok(j: int) -> bool:
        other = catalogue.cards[j]
        if j == index or sims[j] >= hi or other.answer.strip().lower() == card.answer.strip().lower():
            return False
        if asked[j] >= SAME_QUESTION or shown[j][0].lower() == shown[index][0].lower():
            return False
        # A question about the same thing (all its key terms the other's) may have the same right answer.
        if (
            subject
            and question_terms_of[j]
            and (question_terms_of[j] <= subject or subject <= question_terms_of[j])
        ):
            return False
        terms = all_terms[j]
        # Containing the right answer, or being a piece of it, is not wrong.
        if right_terms and (right_terms <= terms or terms <= right_terms):
            return False
        return bool(terms)

    def plausibility(j: int) -> float:
        length, echo = _form(shown[j], question_words)
        return (
            float(sims[j])
            - LENGTH_WEIGHT * abs(np.log(length / right_len))
            - ECHO_WEIGHT * abs(echo - right_echo)
        )

    def compatible(a: int, b: int) -> bool:
        return (
            float(catalogue.answer_vectors[a] @ catalogue.answer_vectors[b]) < hi
            and all_terms[a] != all_terms[b]
            and shown[a][0].lower() != shown[b][0].lower()
        )

    candidates = [j for j in range(len(catalogue.cards)) if ok(j)]
    score = {j: plausibility(j) for j in candidates}
    ranked = sorted(candidates, key=lambda j: (bool(sims[j] >= lo), score[j]), reverse=True)
    pool = ranked[:DISTRACTOR_POOL]  # need not be pairwise compatible; a set must
    # And the most plausible of those repeating as many of the question's words as the right option does.
    echoing = [
        j for j in ranked[DISTRACTOR_POOL:] if _form(shown[j], question_words)[1] >= max(right_echo, 1)
    ]
    pool += echoing[:ECHO_POOL]
    if cover_only:
        return [j for j in pool if _form(shown[j], question_words)[1] >= right_echo]
    k = min(k, len(pool))
    draw = draw or random.Random(f"distractors:{card.card_id}")
    shorter, echoes_most = draw.randint(0, k), draw.randint(0, k) == k

    def below(values: Iterable[int], right: int) -> float:
        return sum(1.0 if v < right else 0.5 if v == right else 0.0 for v in values)

    forms = {j: _form(shown[j], question_words) for j in pool}
    fits = {(a, b): compatible(a, b) for a, b in itertools.combinations(pool, 2)}
    best: tuple[float, float, tuple[int, ...]] | None = None
    for subset in itertools.combinations(pool, k):
        if not all(fits[pair] for pair in itertools.combinations(subset, 2)):
            continue
        miss = abs(below((forms[j][0] for j in subset), right_len) - shorter)
        most = max(forms[j][1] for j in subset)
        if most == right_echo:
            miss += 0.5  # a tie: the echo guesser is right 1 time in (ties + 1)
        elif (most < right_echo) != echoes_most:
            miss += 1.0
        key = (miss, -sum(score[j] for j in subset), subset)
        if best is None or key[:2] < best[:2]:
            best = key
    if best is None:  # no compatible set of k in the pool: the greedy choice
        chosen: list[int] = []
        for j in ranked:
            if all(compatible(j, c) for c in chosen):
                chosen.append(j)
                if len(chosen) == k:
                    break
        return chosen
    return sorted(best[2], key=lambda j: -score[j])


def _form(option: tuple[str, frozenset[str]], question_words: frozenset[str]) -> tuple[int, int]:
    """(length, echo): an option's characters and how many of the question's words it repeats."""
    text, words = option
    return max(len(text), 1), len(words & question_words)


def _echo_words(text: str) -> frozenset[str]:
    """The words a reader sees repeated: lower-cased, stopwords left out (no stemming: "layer" != "layers")."""
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in ANSWER_FILLERS)


def multiple_choice(catalogue: Catalogue, card: QuizCard, rng: random.Random) -> tuple[list[str], int]:
    """Shuffled choices, each as shown (``option_text``), and the index of the right one."""
    shown = catalogue.options()
    picks = [catalogue.position(card.card_id), *_distractor_indices(catalogue, card, draw=rng)]
    choices = [shown[j][0] for j in picks]
    order = list(range(len(choices)))
    rng.shuffle(order)
    return [choices[i] for i in order], order.index(0)


# --- how an option is shown -------------------------------------------------------------------------------
# Every option, right or wrong, is shown the same way, so that its form does not tell which is right: one
# line; without an opening that restates its own question ("Padding is the additional pixels..." for "What
# is padding?" is shown "The additional pixels...", and a distractor's "Pixel similarity is ..." loses its
# subject too; see ``_without_subject``); at most MAX_OPTION_CHARS, cut at a sentence end if one falls in the
# last 40 %, else at a word, with an ellipsis. The full answer is still the reference shown after answering.
# MAX_OPTION_CHARS and the distractor pools and weights were set with bench/mc_form_guesser.py over a small
# grid (80 to 140 characters, pools of 4 to 12, echo weight 0.1 or 0.2): 100 characters is the longest that
# kept every guesser within 10 points of chance over all cards.
MAX_OPTION_CHARS = 100
LENGTH_WEIGHT = 0.3  # plausibility lost per unit of |log(length ratio)| to the right option
ECHO_WEIGHT = 0.2  # ... per question word repeated more, or fewer, times than in the right option
SAME_QUESTION = 0.9  # question cosine at which another card asks the same question
# The draw picks among the DISTRACTOR_POOL most plausible wrong answers and the ECHO_POOL next that echo the
# question as much as the right option.
DISTRACTOR_POOL = 8
ECHO_POOL = 8
_LEAD_WORDS = 8  # a restated subject is at most this many words
_CLAUSE_WORDS = 12  # a restating clause ending in a colon, this many
RESTATED_SHARE = 0.6  # of its key terms the question's
_COPULAS = {"is": "", "are": "", "means": "", "refers": "to", "stands": "for", "describes": "", "denotes": ""}
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?](?=\s)")


def option_text(answer: str, question: str, max_chars: int = MAX_OPTION_CHARS) -> str:
    """An answer as a multiple-choice option: one line, its subject not restated, at most ``max_chars``."""
    lines = [_BULLET.sub("", line).strip() for line in answer.splitlines()]
    text = " ".join(line for line in lines if line)
    text = _without_subject(text, question)
    if len(text) <= max_chars:
        return text
    head = text[: max_chars + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(head) if m.end() >= 0.6 * max_chars]
    if ends:
        return head[: ends[-1]]
    cut = head[:max_chars].rsplit(" ", 1)[0] if " " in head[:max_chars] else head[:max_chars]
    return cut.rstrip(" ,;:-") + "…"


def _without_subject(text: str, question: str) -> str:
    """``text`` without an opening that only repeats its question.

    Three kinds: a leading sentence or clause ending in "?" or ":" whose key terms are mostly the
    question's ("How does kernel size affect CNN? ...", "Training with a high learning rate gives two
    benefits: ..."); and a subject made of the question's words (and stopwords) followed by a copula
    ("Padding is ...", "SGD stands for ...", "The receptive fieldis ..." as the source has it). What is left
    must keep two words at least.
    """
    words = text.split()
    asked = set(key_terms(question))
    if not asked or len(words) < 3:
        return text
    for k, word in enumerate(words[:_CLAUSE_WORDS]):
        if word.endswith((":", "?")):
            terms = key_terms(" ".join(words[: k + 1]))
            if terms and sum(t in asked for t in terms) >= RESTATED_SHARE * len(terms) and len(words) > k + 2:
                return _capitalised(words[k + 1 :], text)
            break
        if word.endswith((".", "!")):
            break
    subject = False  # words before k are the question's words or stopwords, one of them a content word
    for k, word in enumerate(words[: _LEAD_WORDS + 1]):
        low = word.lower()
        if low in _COPULAS:
            second = _COPULAS[low]
            if second and (k + 1 >= len(words) or words[k + 1].lower() != second):
                return text
            rest = words[k + (2 if second else 1) :]
            return _capitalised(rest, text) if subject and len(rest) >= 2 else text
        terms = set(key_terms(word))
        if terms and not terms <= asked:
            glued = next((c for c in ("is", "are") if low.endswith(c) and len(low) > len(c) + 1), None)
            stem = set(key_terms(word[: -len(glued)])) if glued else set()
            if stem and stem <= asked and len(words) > k + 2:  # "fieldis": the source lost a space
                return _capitalised(words[k + 1 :], text)
            return text
        subject = subject or bool(terms)
        if word.endswith((",", ";", ".", ":", "?", "!")):
            return text
    return text


def _capitalised(words: list[str], original: str) -> str:
    out = " ".join(words)
    return out[0].upper() + out[1:] if original[:1].isupper() else out


def _skeleton(text: str) -> str:
    """First letter of each word, the rest masked; digits always masked: "[-1,1]" -> "[-_,_]"."""

    def mask(word: str) -> str:
        keep = word[0] if word[0].isalpha() else ""
        return keep + "".join("_" if ch.isalnum() else ch for ch in word[len(keep) :])

    return " ".join(mask(w) for w in text.split())


def hint_for(card: QuizCard, mode: str) -> str | None:
    """A nudge, not the answer: blank sizes and first letters; the opening words of a long answer."""
    if mode == MC:
        return None
    shown = readable_line(card.answer)  # LaTeX as text: a hint never shows markup
    answer = re.sub(r"\s*\([^)]*\)", "", shown).strip() or shown
    if mode == CLOZE_MODE:
        parts = [p.strip() for p in answer.split(";")] if card.blanks > 1 else [answer]
        return "; ".join(
            f"{len(p.split())} word{'s' if len(p.split()) != 1 else ''}: {_skeleton(p)}" for p in parts
        )
    words = answer.split()
    if len(words) <= 6:
        return f"{len(words)} word{'s' if len(words) != 1 else ''}: {_skeleton(answer)}"
    return "Starts with: " + " ".join(words[:4]) + " ..."
