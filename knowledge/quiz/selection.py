"""Which cards a quiz asks, in which mode, with which distractors and hints.

A card is a duplicate group: every member shares one FSRS state and the card is served with the group's best
answer (``Store.best_answers``). Items flagged unanswered, placeholder, off-topic or disabled are never asked:
a group whose best item is not servable has no servable member (the best-answer rule ranks them last).
Due cards come first, most overdue first; then new cards in document order. Cards reviewed but not yet due
are left alone, as FSRS intends.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from knowledge.models import CLOZE
from knowledge.quiz.grading import key_terms
from knowledge.store import Store

FREE, MC, CLOZE_MODE, AUTO = "free", "mc", "cloze", "auto"
MODES = (FREE, MC, CLOZE_MODE, AUTO)
MC_CHOICES = 4
AUTO_MC_MIN_WORDS = 13  # auto mode: answers this long are asked as multiple choice, shorter ones typed
DISTRACTOR_BAND = (0.25, 0.85)  # similar enough to be plausible, not so similar it is the same answer
_BLANK = re.compile(r"_{2,}")

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
    topic: str  # the document topic closest to the card (per-topic mastery, --topic)
    cloze: bool
    sources: tuple[str, ...]  # every member's document

    @property
    def blanks(self) -> int:
        return len(_BLANK.findall(self.question))


@dataclass(frozen=True)
class Catalogue:
    """Every quizzable card with the vectors selection needs; rebuilt when the store's content changes."""

    cards: tuple[QuizCard, ...]
    answer_vectors: np.ndarray  # (len(cards), dim), L2-normalised
    fingerprint: str

    def card(self, card_id: int) -> QuizCard | None:
        return self._index().get(card_id)

    def position(self, card_id: int) -> int:
        return self._positions()[card_id]

    def _index(self) -> dict[int, QuizCard]:
        cached = self.__dict__.get("_by_id")
        if cached is None:
            cached = {c.card_id: c for c in self.cards}
            object.__setattr__(self, "_by_id", cached)
        return cached

    def _positions(self) -> dict[int, int]:
        cached = self.__dict__.get("_pos")
        if cached is None:
            cached = {c.card_id: i for i, c in enumerate(self.cards)}
            object.__setattr__(self, "_pos", cached)
        return cached

    def answer_terms(self) -> list[frozenset[str]]:
        """Key terms of each card's answer, computed once (distractor checks compare every pair)."""
        cached = self.__dict__.get("_terms")
        if cached is None:
            cached = [frozenset(key_terms(c.answer)) for c in self.cards]
            object.__setattr__(self, "_terms", cached)
        return cached

    def topics(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for card in self.cards:
            counts[card.topic] = counts.get(card.topic, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


class VectorCache:
    """Embeddings of card texts kept in ``quiz_vectors`` (keyed by model and text): built once per base."""

    def __init__(self, store: Store, embed: Embed, model_id: str = ""):
        self.store = store
        self.embed = embed
        self.model_id = model_id

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.model_id}\0{text}".encode()).hexdigest()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.store.db.query(
                f"SELECT key, vector FROM quiz_vectors WHERE key IN ({marks})", chunk
            ):
                found[row["key"]] = np.frombuffer(row["vector"], dtype=np.float32)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            vectors = self.embed([texts[i] for i in missing])
            with self.store.transaction():
                for i, vec in zip(missing, vectors, strict=True):
                    vec = np.ascontiguousarray(vec, dtype=np.float32)
                    found[keys[i]] = vec
                    self.store.db.execute(
                        "INSERT OR REPLACE INTO quiz_vectors (key, vector) VALUES (?, ?)",
                        [keys[i], vec.tobytes()],
                    )
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, 1), dtype=np.float32)


def build_catalogue(store: Store, embed: Embed) -> Catalogue:
    items = {it.id: it for it in store.items()}
    documents = {d.source: d for d in store.documents()}
    best = store.best_answers()
    members: dict[int, list[int]] = {}
    for it in items.values():
        members.setdefault(it.group if it.group is not None else it.id, []).append(it.id)
    cards = []
    for group_id, ids in members.items():
        best_item = items.get(best.get(group_id, min(ids)))
        if best_item is None or not best_item.servable:
            continue
        doc = documents.get(best_item.source)
        cards.append(
            QuizCard(
                card_id=group_id, item_id=best_item.id, question=best_item.question, answer=best_item.answer,
                source=best_item.source, n=best_item.n, title=doc.title if doc else best_item.source, topic="",
                cloze=CLOZE in best_item.flags, sources=tuple(sorted({items[i].source for i in ids})),
            )
        )  # fmt: skip
    cards.sort(key=lambda c: (c.source, c.n))
    if not cards:
        return Catalogue((), np.zeros((0, 1), dtype=np.float32), store.content_hash())
    # Truncated texts: the opening of an answer says what it is about, and long answers cost seconds to embed.
    answer_vectors = embed([c.answer[:300] for c in cards])
    card_vectors = embed([f"{c.question} {c.answer[:150]}" for c in cards])
    topic_names = sorted({t for d in documents.values() for t in d.topics})
    topic_vectors = dict(zip(topic_names, embed(topic_names), strict=True)) if topic_names else {}
    with_topics = []
    for card, vector in zip(cards, card_vectors, strict=True):
        doc = documents.get(card.source)
        names = [t for t in (doc.topics if doc else ()) if t in topic_vectors]
        topic = max(names, key=lambda t: float(vector @ topic_vectors[t])) if names else card.title
        with_topics.append(_replace(card, topic=topic))
    return Catalogue(tuple(with_topics), answer_vectors, store.content_hash())


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
        terms = set(key_terms(topic))
        return bool(terms) and terms <= set(key_terms(f"{card.question} {card.answer}"))
    return True


def resolve_mode(card: QuizCard, mode: str) -> str:
    """What a card is asked as: cloze prompts are always cloze; "auto" types short answers, picks long ones."""
    if card.cloze:
        return MC if mode == MC else CLOZE_MODE
    if mode in (FREE, MC):
        return mode
    return MC if len(card.answer.split()) >= AUTO_MC_MIN_WORDS else FREE


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
    """Other cards' answers that are similar but wrong, distinct from the right answer and from each other.

    Ranked by answer-answer cosine inside ``DISTRACTOR_BAND`` (minus a length penalty, so the right answer
    is not the odd one out by length); an answer whose key terms contain the right answer's is never used.
    """
    index = catalogue.position(card.card_id)
    sims = catalogue.answer_vectors @ catalogue.answer_vectors[index]
    all_terms = catalogue.answer_terms()
    right_terms = all_terms[index]
    right_len = max(len(card.answer), 1)
    lo, hi = DISTRACTOR_BAND

    def ok(j: int) -> bool:
        other = catalogue.cards[j]
        if j == index or sims[j] >= hi or other.answer.strip().lower() == card.answer.strip().lower():
            return False
        terms = all_terms[j]
        # Containing the right answer, or being a piece of it, is not wrong.
        if right_terms and (right_terms <= terms or terms <= right_terms):
            return False
        return bool(terms)

    def rank(j: int) -> float:
        ratio = max(len(catalogue.cards[j].answer), 1) / right_len
        return float(sims[j]) - 0.1 * abs(np.log(ratio))

    in_band = sorted(
        (j for j in range(len(catalogue.cards)) if ok(j) and sims[j] >= lo), key=rank, reverse=True
    )
    rest = sorted((j for j in range(len(catalogue.cards)) if ok(j) and sims[j] < lo), key=rank, reverse=True)
    chosen: list[int] = []
    for j in in_band + rest:
        vec = catalogue.answer_vectors[j]
        if any(float(vec @ catalogue.answer_vectors[c]) >= hi for c in chosen):
            continue
        if any(all_terms[j] == all_terms[c] for c in chosen):
            continue
        chosen.append(j)
        if len(chosen) == k:
            break
    return [catalogue.cards[j].answer for j in chosen]


def multiple_choice(catalogue: Catalogue, card: QuizCard, rng: random.Random) -> tuple[list[str], int]:
    """Shuffled choices and the index of the right one."""
    choices = [card.answer, *distractors(catalogue, card)]
    order = list(range(len(choices)))
    rng.shuffle(order)
    return [choices[i] for i in order], order.index(0)


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
    answer = re.sub(r"\s*\([^)]*\)", "", card.answer).strip() or card.answer
    if mode == CLOZE_MODE:
        parts = [p.strip() for p in answer.split(";")] if card.blanks > 1 else [answer]
        return "; ".join(
            f"{len(p.split())} word{'s' if len(p.split()) != 1 else ''}: {_skeleton(p)}" for p in parts
        )
    words = answer.split()
    if len(words) <= 6:
        return f"{len(words)} word{'s' if len(words) != 1 else ''}: {_skeleton(answer)}"
    return "Starts with: " + " ".join(words[:4]) + " ..."
