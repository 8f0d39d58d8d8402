"""Model-based judgements over the whole knowledge base: duplicate groups, off-topic answers, best answers.

The rules, stated so they can be tested:

* **Duplicate groups.** Two items of different documents are the same question when either
  (a) their documents cover the same chapter of the same course and the pair survives a greedy one-to-one
  matching by question cosine similarity with cosine >= ``SAME_CHAPTER_MIN`` (0.75), or
  (b) the pair survives that matching over any two documents with cosine >= ``ANY_DOCUMENT_MIN`` (0.90).
  Groups are the connected components of those links.
  The matching runs per document pair over *candidate links*, not over every pair: a pair is a candidate
  when it is among the first item's ``NEIGHBOURS`` nearest questions in the documents after its own
  (exact inner-product k-NN with FAISS, what ``IndexFlatIP`` computes, over the normalised vectors in
  chunks of ``SEARCH_CHUNK``; an item whose ``NEIGHBOURS``-th neighbour still clears ``SAME_CHAPTER_MIN``
  is searched again for ``NEIGHBOURS_MAX``). Memory grows with n x ``NEIGHBOURS_MAX`` instead of n x n
  (the full matrix is 40 GB at 100,000 items). The result is the full matrix's whenever no item has more
  than ``NEIGHBOURS_MAX`` questions above the bar in later documents: for the bundled sources, and for
  thirty answer sets of one questionnaire (tests/test_knowledge_hostile.py), the groups are identical.
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
NEIGHBOURS = 20  # candidate links per item: its nearest questions in the documents after its own
NEIGHBOURS_MAX = 64  # ... or this many, for an item whose 20th neighbour still clears SAME_CHAPTER_MIN
SEARCH_CHUNK = 2048  # queries per FAISS search call (bounds the score and id arrays)

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


def _search(queries: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product k-NN of ``queries`` in ``base`` (what ``faiss.IndexFlatIP`` searches, but over
    the caller's array: no copy of the vectors into an index)."""
    import faiss

    return faiss.knn(queries, base, min(k, len(base)), metric=faiss.METRIC_INNER_PRODUCT)


def _candidate_links(questions: np.ndarray, bounds: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows (a, b), a in an earlier document than b, where b is among a's nearest questions of later documents.

    ``questions`` is sorted by document, document d occupying rows ``bounds[d]``. Each document's items are
    searched, ``SEARCH_CHUNK`` at a time, against the rows of the documents after it only: a pair is looked
    at once, never within a document. An item whose ``NEIGHBOURS``-th neighbour still clears the lower bar
    is searched again with ``NEIGHBOURS_MAX``, so crowding by many near-identical answer sets drops no pair.
    Only pairs with cosine >= ``SAME_CHAPTER_MIN`` (less a rounding margin) are kept.
    """
    floor = SAME_CHAPTER_MIN - 1e-4
    rows_out: list[np.ndarray] = []
    cols_out: list[np.ndarray] = []
    for start, stop in bounds:
        if stop >= len(questions):
            break
        later = questions[stop:]
        for chunk in range(start, stop, SEARCH_CHUNK):
            block = questions[chunk : min(chunk + SEARCH_CHUNK, stop)]
            scores, found = _search(block, later, NEIGHBOURS)
            results = [(scores, found, np.arange(len(block)))]
            if scores.shape[1] < len(later):
                crowded = scores[:, -1] >= floor
                if crowded.any():
                    wide_scores, wide_found = _search(block[crowded], later, NEIGHBOURS_MAX)
                    results = [
                        (scores[~crowded], found[~crowded], np.flatnonzero(~crowded)),
                        (wide_scores, wide_found, np.flatnonzero(crowded)),
                    ]
            for sc, fd, rows in results:
                hit_r, hit_c = np.nonzero((fd >= 0) & (sc >= floor))
                rows_out.append(chunk + rows[hit_r])
                cols_out.append(stop + fd[hit_r, hit_c])
    if not rows_out:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows_out), np.concatenate(cols_out)


def _pair_cosines(questions: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cosine of each (a, b) row pair, a few thousand pairs at a time (never all gathered at once)."""
    out = np.empty(len(a), dtype=np.float32)
    for start in range(0, len(a), 4096):
        sl = slice(start, start + 4096)
        out[sl] = np.einsum("ij,ij->i", questions[a[sl]], questions[b[sl]])
    return out


def _duplicate_links(
    items: Sequence[Candidate], order: np.ndarray, questions: np.ndarray
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, highest similarity first, per pair of documents, over the candidates.

    ``order`` sorts the items by document (``questions`` row r is item ``order[r]``); links are item indices.
    """
    source_of = [items[i].source for i in order]
    bounds: list[tuple[int, int]] = []
    chapters: list[str] = []
    for r, source in enumerate(source_of):
        if not bounds or source != source_of[bounds[-1][0]]:
            bounds.append((r, r))
            chapters.append(items[order[r]].chapter)  # a document's chapter: its first item's
        bounds[-1] = (bounds[-1][0], r + 1)
    doc_of_row = np.repeat(np.arange(len(bounds)), [stop - start for start, stop in bounds])
    ra, rb = _candidate_links(questions, bounds)
    sims = _pair_cosines(questions, ra, rb)
    a, b = order[ra], order[rb]  # item indices; a's document sorts first, as the matrix rows did
    doc_a, doc_b = doc_of_row[ra], doc_of_row[rb]
    pair = doc_a * len(bounds) + doc_b
    links = []
    used: set[tuple[int, int]] = set()
    for idx in np.lexsort((b, a, -sims, pair)):
        i, j, p = int(a[idx]), int(b[idx]), int(pair[idx])
        ca, cb = chapters[doc_a[idx]], chapters[doc_b[idx]]
        minimum = SAME_CHAPTER_MIN if ca and ca == cb else ANY_DOCUMENT_MIN
        if sims[idx] < minimum or (p, i) in used or (p, j) in used:
            continue
        used.add((p, i))
        used.add((p, j))
        links.append((i, j))
    return links


def _best_other(vectors: np.ndarray) -> np.ndarray:
    """For each row, its highest inner product with any other row (groups are small; big ones go in chunks)."""
    if len(vectors) <= 64:
        return np.array(
            [
                max(float(vectors[i] @ vectors[j]) for j in range(len(vectors)) if j != i)
                for i in range(len(vectors))
            ]
        )
    out = np.empty(len(vectors), dtype=np.float64)
    for start in range(0, len(vectors), 1024):
        block = vectors[start : start + 1024] @ vectors.T
        block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf
        out[start : start + len(block)] = block.max(axis=1)
    return out


def analyse(items: Sequence[Candidate], embed: Embed) -> Analysis:
    if not items:
        return Analysis({}, {}, frozenset(), {}, {})
    # Questions are embedded in document order (stable: items keep their order within a document), so each
    # document is one contiguous block of rows and the search needs no copy of the vectors.
    order = np.array(sorted(range(len(items)), key=lambda i: items[i].source), dtype=np.int64)
    questions = np.ascontiguousarray(embed([items[i].question for i in order]), dtype=np.float32)
    row_of = np.empty(len(items), dtype=np.int64)
    row_of[order] = np.arange(len(items))
    answered = [i for i, it in enumerate(items) if it.answer.strip()]
    # Answer vectors of answered items only (row answer_row[i]); unanswered items have none.
    answer_row = np.full(len(items), -1, dtype=np.int64)
    answer_row[answered] = np.arange(len(answered))
    answers = (
        np.ascontiguousarray(embed([items[i].answer for i in answered]), dtype=np.float32)
        if answered
        else np.zeros((0, questions.shape[1]), dtype=np.float32)
    )
    relevance = {
        it.key: (float(questions[row_of[i]] @ answers[answer_row[i]]) if answer_row[i] >= 0 else None)
        for i, it in enumerate(items)
    }

    # Duplicate links between documents, then their connected components.
    parent = list(range(len(items)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r, c in _duplicate_links(items, order, questions):
        parent[find(r)] = find(c)
    del questions

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
        with_answer = [i for i in group if answer_row[i] >= 0 and not items[i].flags & NOT_SERVABLE]
        if len(with_answer) > 1:
            most_relevant = max(with_answer, key=lambda i: relevance[items[i].key] or -1.0)
            agrees = _best_other(answers[answer_row[with_answer]])
            for i, agree in zip(with_answer, agrees, strict=True):
                agreement[items[i].key] = float(agree)
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
    "NEIGHBOURS",
    "OFF_TOPIC",
    "SAME_CHAPTER_MIN",
    "Analysis",
    "Candidate",
    "analyse",
]
