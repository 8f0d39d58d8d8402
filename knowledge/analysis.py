"""Model-based judgements over the whole knowledge base: duplicate groups, off-topic answers, best answers.

The rules, stated so they can be tested:

* **Duplicate groups.** Two items of different documents are the same question when either
  (a) their documents cover the same chapter of the same course and the pair survives a greedy one-to-one
  matching by question cosine similarity with cosine >= ``SAME_CHAPTER_MIN`` (0.75), or
  (b) the pair survives that matching over any two documents with cosine >= ``ANY_DOCUMENT_MIN`` (0.90).
  Groups are the connected components of those links.
* **Relevance.** cosine(question, answer) of each answered item, recorded as its score.
* **Off-topic.** Within a group, an answer whose best cosine to the other members' answers is below
  ``AGREEMENT_MIN`` (0.50) and which is not the group's most relevant answer answers a different question.
  Bi-encoder question-answer cosine alone cannot separate a terse correct flash-card answer ("[-1,1]",
  "sparse") from a fluent wrong one, so the absolute score is recorded but not thresholded; disagreement
  with another answer set for the same question is the measurable signal.
* **Best answer.** Placeholder, unanswered and off-topic members lose; then the highest relevance;
  ties go to the lower (source, n).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.models import NOT_SERVABLE, OFF_TOPIC

SAME_CHAPTER_MIN = 0.75
ANY_DOCUMENT_MIN = 0.90
AGREEMENT_MIN = 0.50

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """What the analysis needs to know about an item."""

    key: int  # item id (or any unique key)
    source: str
    n: int
    chapter: str  # "course/chapter", empty when unknown
    question: str
    answer: str
    flags: frozenset[str]


@dataclass(frozen=True)
class Analysis:
    relevance: dict[int, float | None]
    agreement: dict[int, float | None]
    off_topic: frozenset[int]
    groups: dict[int, int]  # item key -> group id (the smallest key in the group)
    best: dict[int, int]  # group id -> key of the best member


def _greedy_pairs(sim: np.ndarray, rows: list[int], cols: list[int], minimum: float) -> list[tuple[int, int]]:
    """One-to-one matching, highest similarity first, between two documents' items."""
    if not rows or not cols:
        return []
    block = sim[np.ix_(rows, cols)]
    order = np.argsort(-block, axis=None)
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for flat in order:
        r, c = divmod(int(flat), len(cols))
        if block[r, c] < minimum:
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((rows[r], cols[c]))
    return pairs


def analyse(items: Sequence[Candidate], embed: Embed) -> Analysis:
    if not items:
        return Analysis({}, {}, frozenset(), {}, {})
    questions = embed([it.question for it in items])
    answered = [i for i, it in enumerate(items) if it.answer.strip()]
    answers = np.zeros_like(questions)
    if answered:
        answers[answered] = embed([items[i].answer for i in answered])
    relevance = {
        it.key: (float(questions[i] @ answers[i]) if it.answer.strip() else None)
        for i, it in enumerate(items)
    }

    # Duplicate links between documents.
    sim = questions @ questions.T
    by_source: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_source.setdefault(it.source, []).append(i)
    parent = list(range(len(items)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    sources = sorted(by_source)
    for a_index, src_a in enumerate(sources):
        for src_b in sources[a_index + 1 :]:
            rows, cols = by_source[src_a], by_source[src_b]
            same_chapter = bool(items[rows[0]].chapter) and items[rows[0]].chapter == items[cols[0]].chapter
            minimum = SAME_CHAPTER_MIN if same_chapter else ANY_DOCUMENT_MIN
            for r, c in _greedy_pairs(sim, rows, cols, minimum):
                parent[find(r)] = find(c)

    members: dict[int, list[int]] = {}
    for i in range(len(items)):
        members.setdefault(find(i), []).append(i)

    agreement: dict[int, float | None] = {it.key: None for it in items}
    off_topic: set[int] = set()
    groups: dict[int, int] = {}
    best: dict[int, int] = {}
    for group in members.values():
        group_id = min(items[i].key for i in group)
        for i in group:
            groups[items[i].key] = group_id
        with_answer = [i for i in group if items[i].answer.strip() and not items[i].flags & NOT_SERVABLE]
        if len(with_answer) > 1:
            most_relevant = max(with_answer, key=lambda i: relevance[items[i].key] or -1.0)
            for i in with_answer:
                others = [j for j in with_answer if j != i]
                agree = float(max(answers[i] @ answers[j] for j in others))
                agreement[items[i].key] = agree
                if agree < AGREEMENT_MIN and i != most_relevant:
                    off_topic.add(items[i].key)

        def rank(i: int, group_off_topic: set[int] = off_topic) -> tuple:
            it = items[i]
            loses = bool(it.flags & NOT_SERVABLE) or it.key in group_off_topic
            return (loses, -(relevance[it.key] or -1.0), it.source, it.n)

        best[group_id] = items[min(group, key=rank)].key
    return Analysis(relevance, agreement, frozenset(off_topic), groups, best)


__all__ = [
    "AGREEMENT_MIN",
    "ANY_DOCUMENT_MIN",
    "OFF_TOPIC",
    "SAME_CHAPTER_MIN",
    "Analysis",
    "Candidate",
    "analyse",
]
