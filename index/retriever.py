"""Answers from the knowledge base: dense + lexical candidates, a learned ranker, a calibrated decision.

For a message the retriever (1) cleans it (``index.text``; which hand rules run is part of the trained
model, ``index.model.QueryRules``), (2) embeds it with the query encoder (all-MiniLM-L6-v2 plus the trained
LoRA adapter), (3) gathers candidate entries from FAISS over two views per entry (question, question +
answer; the entries are embedded by the plain model) and from BM25, (4) collapses duplicate groups and
orders them by the trained ranker over per-entry features, and (5) turns the top entry's features into
the calibrated probability that it is the entry asked about. ``answer_min`` and ``unsure_min`` on that
probability decide answered / unsure / no_match; they were chosen on the training authors' out-of-fold
probabilities by an explicit cost (``index.train``), never on the validation author. ``tutor eval``
measures it; ``tutor index train`` rebuilds it.

Every question is asked in a scope (``knowledge.scope``): the shared notes plus one space's cards, minus
what that space hides, with its corrections. Candidates come only from what the scope sees (FAISS over the
shared items, the space's own block of vectors, the lexical index filtered by space), and so do duplicate
groups' citations, the served answer and the "did you mean" alternatives; a candidate of another space is
a bug that raises, never an answer.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index import store_index
from index.answer import ANSWERED, NO_ANSWER, NO_MATCH, UNSURE, Alternative, Answer, Citation, Status
from index.errors import BadQuery, RetrievalError
from index.lexical import GENERAL_WORDS, american, content_words, terms
from index.model import CALIBRATION_FEATURES, RANK_FEATURES, RetrievalModel
from index.text import retrieval_query
from knowledge.models import DISABLED, OFF_TOPIC, PLACEHOLDER, UNANSWERED, Item, question_key
from knowledge.overrides import load_overrides
from knowledge.scope import Overrides, Scope
from knowledge.store import Store
from knowledge.words import light_stem

log = logging.getLogger(__name__)

DENSE_CANDIDATES = 40
LEXICAL_CANDIDATES = 40
MAX_ALTERNATIVES = 3
_SHARED = Scope.shared()


@dataclass(frozen=True)
class Scoring:
    """Everything the decision is made from, for one message (also what ``tutor index train`` fits on)."""

    query: str
    groups: tuple[tuple[int, Item], ...]  # (group key, its best-ranked member), best first
    features: np.ndarray  # (n_groups, len(RANK_FEATURES))
    scores: np.ndarray  # ranker score per group
    calibration: np.ndarray  # (len(CALIBRATION_FEATURES),) of the top group; zeros when there is none
    unknown: tuple[str, ...]  # content words the notes never use


@dataclass(frozen=True)
class _Snapshot:
    """One consistent view of the knowledge base; ``reload`` replaces it whole."""

    index: store_index.LoadedIndex
    items: dict[int, Item]
    titles: dict[str, str]
    best: dict[int, int]
    members: dict[int, list[Item]]
    row_of: dict[int, int]  # item id -> row of the index's arrays
    stems: dict[int, frozenset[str]]  # filled lazily; belongs to this snapshot only
    overrides: Overrides

    def sees(self, scope: Scope, item: Item) -> bool:
        """Whether ``scope`` may be shown ``item``: its space's or shared, live, not hidden there."""
        return (
            scope.sees(item.scope)
            and DISABLED not in item.flags
            and item.id not in self.overrides.hidden_in(scope)
        )


class Retriever:
    """Answers questions from one knowledge store. Thread-safe; concurrent ``ask`` calls are micro-batched.

    ``encoder`` embeds the entries (the index); ``query_encoder`` embeds messages (by default the same).
    """

    def __init__(
        self,
        store: Store,
        encoder,
        index_dir: str | Path,
        model: RetrievalModel | None = None,
        query_encoder=None,
    ):
        self.store = store
        self.encoder = encoder
        self.query_encoder = query_encoder if query_encoder is not None else encoder
        self.model = model if model is not None else RetrievalModel.plain()
        self.index_dir = Path(index_dir)
        self.rebuilt_because: str | None = None
        self._batch_lock = threading.Condition()
        self._pending: list[_Request] = []
        self._leader = False
        self._reload_lock = threading.Lock()
        self.reload()

    # --- loading ---
    def reload(self) -> None:
        """(Re)load the store's items and the index, rebuilding the index if it is missing or stale.

        Everything is built first and published as one snapshot, so a question answered during a reload
        sees either the old knowledge base or the new one, never half of each. Reloads run one at a time:
        one that began before a change (a server's hide) can never publish after the reload that change
        asked for, putting the old state back.
        """
        with self._reload_lock:
            self._reload()

    def _reload(self) -> None:
        index, reason = store_index.load_or_build(self.store, self.encoder, self.index_dir)
        items = {it.id: it for it in self.store.items()}
        overrides = load_overrides(self.store)
        members: dict[int, list[Item]] = {}
        for item in items.values():
            members.setdefault(_group_of(item), []).append(item)
        self._kb = _Snapshot(
            index=index,
            items=items,
            titles={doc.source: doc.title for doc in self.store.documents()},
            best=self.store.best_answers(),
            members=members,
            row_of=index.row_of,
            stems={},
            overrides=overrides,
        )
        self.rebuilt_because = reason

    @property
    def index(self) -> store_index.LoadedIndex:
        return self._kb.index

    @property
    def items(self) -> dict[int, Item]:
        return self._kb.items

    @property
    def titles(self) -> dict[str, str]:
        return self._kb.titles

    # --- public API ---
    def ask(self, text: str, scope: Scope = _SHARED) -> Answer:
        """Answer one message in ``scope``. Safe to call from many threads at once: their embeddings share a
        batch."""
        kb = self._kb
        query = self._clean(text, kb, scope)
        if not query:
            return Answer(
                status=NO_MATCH, query=text if isinstance(text, str) else "", suggestions=_topics(kb, None)
            )
        return self._answer_batched(_Request(text, query, kb, scope))

    def ask_many(self, texts: Sequence[str], scope: Scope = _SHARED) -> list[Answer]:
        """Answer a batch: one encoder call for all of them."""
        return [answer for answer, _ in self.ask_scored(texts, scope)]

    def ask_scored(self, texts: Sequence[str], scope: Scope = _SHARED) -> list[tuple[Answer, Scoring | None]]:
        """Answers with the scoring behind each (``None`` for an empty message): for training and eval."""
        kb = self._kb
        started = time.perf_counter()
        out = []
        for text, scoring, vector in self._score_many(kb, texts, scope):
            if scoring is None:
                answer = Answer(status=NO_MATCH, query=text, suggestions=_topics(kb, None))
            else:
                answer = self._decide(kb, text, scoring, vector, started, scope)
            out.append((answer, scoring))
        return out

    def answer_item(self, item_id: int, query: str = "", scope: Scope = _SHARED) -> Answer:
        """The answer for one entry the user picked (a "did you mean" choice): answered, as chosen."""
        kb = self._kb
        matched = kb.items.get(item_id)
        if matched is None or not kb.sees(scope, matched):
            raise BadQuery(f"there is no knowledge-base entry {item_id}")
        return self._matched(kb, query, matched, ANSWERED, scope, score=1.0)

    def explain(self, text: str, scope: Scope = _SHARED) -> dict:
        """Scores behind an answer (for `tutor ask --explain`)."""
        ((_, scoring),) = self.ask_scored([text], scope)
        if scoring is None:
            return {"query": "", "ranked": []}
        return {
            "query": scoring.query,
            "probability": round(self.model.probability(scoring.calibration), 4) if scoring.groups else None,
            "calibration": dict(zip(CALIBRATION_FEATURES, map(float, scoring.calibration), strict=True)),
            "unknown_words": list(scoring.unknown),
            "ranked": [
                (item.id, item.question, round(float(score), 4))
                for (_, item), score in zip(scoring.groups[:5], scoring.scores[:5], strict=False)
            ],
        }

    def group_ids(self, scoring: Scoring) -> list[set[int]]:
        """Each ranked group as its members' item ids (training labels are item ids)."""
        kb = self._kb
        return [{m.id for m in kb.members[key]} for key, _ in scoring.groups]

    def group_keys(self, scoring: Scoring) -> list[set[tuple[str, str]]]:
        """Each ranked group as its members' (source, question key)."""
        kb = self._kb
        return [{(m.source, question_key(m.question)) for m in kb.members[key]} for key, _ in scoring.groups]

    # --- internals ---
    def _clean(self, text: str, kb: _Snapshot, scope: Scope = _SHARED) -> str:
        """The message as the model reads it (the rules the model was trained with); typos are corrected
        against the words ``scope`` sees (the shared notes', and a server's own cards')."""
        if not isinstance(text, str):
            raise BadQuery(f"a question must be text, not {type(text).__name__}")
        rules = self.model.rules
        query = retrieval_query(text, keep_context=rules.keep_context, glossary=rules.glossary)
        if not rules.typos:
            return query
        vocabulary = kb.index.lexical.vocabulary_of(scope.key)
        return re.sub(
            r"[A-Za-z]{5,}",
            lambda m: (
                m.group(0) if vocabulary.known(m.group(0).lower()) else vocabulary.correct(m.group(0).lower())
            ),
            query,
        )

    def _score_many(self, kb: _Snapshot, texts: Sequence[str], scope: Scope):
        queries = [self._clean(t, kb, scope) for t in texts]
        todo = [q for q in queries if q]
        try:
            vectors = iter(self.query_encoder.encode(todo) if todo else [])
        except (TypeError, ValueError) as exc:  # text the encoder cannot read; `ask` finds which one
            raise BadQuery(
                "a question in this batch could not be read as text; ask them one at a time"
            ) from exc
        for text, query in zip(texts, queries, strict=True):
            if not query:
                yield text, None, None
            else:
                vector = next(vectors)
                yield text, self._score(kb, query, vector, scope), vector

    def _answer_batched(self, request: _Request) -> Answer:
        """Leader/follower micro-batching: whoever finds no batch running answers everything queued.

        The leader encodes the queued queries in one call and scores them all; followers just wait. Scoring
        in the leader too, rather than in each caller's thread, keeps callers from fighting over the GIL
        while the encoder runs; `tutor bench ask` compares it with unbatched concurrent callers.

        One caller's question never fails another's: when the batch's encoder call fails, each question is
        encoded again on its own and only those that still fail get an error; scoring errors, too, stay
        with their own question.
        """
        with self._batch_lock:
            self._pending.append(request)
            while not request.done and self._leader:
                self._batch_lock.wait()
            if request.done:
                return request.result()
            self._leader = True
        try:
            while True:
                with self._batch_lock:
                    batch, self._pending = self._pending[:64], self._pending[64:]
                    if not batch:
                        break
                try:
                    self._answer_batch(batch)
                except Exception as exc:  # a bug in the isolation itself: still delivered, never swallowed
                    for req in batch:
                        if req.answer is None and req.error is None:
                            req.error = exc
                finally:
                    with self._batch_lock:
                        for req in batch:
                            req.done = True
                        self._batch_lock.notify_all()
        finally:
            with self._batch_lock:
                self._leader = False
                self._batch_lock.notify_all()
        return request.result()

    def _answer_batch(self, batch: list[_Request]) -> None:
        """Fill in each request's answer or its own error: one encoder call, per question on failure."""
        for req, vector in zip(batch, self._encode_batch(batch), strict=True):
            if req.error is not None:
                continue
            try:
                scoring = self._score(req.kb, req.query, vector, req.scope)
                req.answer = self._decide(req.kb, req.text, scoring, vector, req.started, req.scope)
            except Exception as exc:
                req.error = exc

    def _encode_batch(self, batch: list[_Request]) -> list[np.ndarray | None]:
        """The batch's query vectors in one encoder call; if that fails, each query on its own.

        A request whose own query cannot be encoded gets its error (``BadQuery`` when the encoder rejects
        the text itself) and ``None`` as its vector; the others are unaffected.
        """
        encoder = self.query_encoder
        if len(batch) > 1:
            try:
                return list(encoder.encode([r.query for r in batch]))
            except Exception as exc:
                log.warning(
                    "encoding a batch of %d questions failed (%s: %s); encoding them one by one",
                    len(batch),
                    type(exc).__name__,
                    exc,
                )
        vectors: list[np.ndarray | None] = []
        for req in batch:
            try:
                if hasattr(encoder, "encode_one"):
                    vectors.append(encoder.encode_one(req.query))
                else:
                    vectors.append(encoder.encode([req.query])[0])
            except Exception as exc:
                req.error = _query_error(req.query, exc)
                vectors.append(None)
        return vectors

    def _score(self, kb: _Snapshot, query: str, vector: np.ndarray, scope: Scope = _SHARED) -> Scoring:
        """Candidates the scope sees, their features and ranker scores, and the top group's calibration
        features."""
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        dense: dict[int, float] = {}  # item -> its best view's cosine
        if len(kb.index.vectors):
            hits = kb.index.vectors.search(vector[None, :], DENSE_CANDIDATES * store_index.N_VIEWS)
            for i, score in zip(hits.ids[0], hits.scores[0], strict=True):
                if i >= 0:
                    dense.setdefault(int(i) // store_index.N_VIEWS, float(score))
        wanted = len(dense) or DENSE_CANDIDATES
        rows = kb.index.spaces.get(scope.key) if scope.key is not None else None
        if rows is not None:  # the space's own cards: exact cosines over its block, competing for the
            # same number of dense candidates as the shared notes alone get (so ranking costs the same)
            best = (kb.index.views[rows[0] : rows[1]] @ vector).max(axis=1)
            top = np.argsort(-best)[:wanted]
            for row in top:
                dense[int(kb.index.item_ids[rows[0] + row])] = float(best[row])
            dense = dict(sorted(dense.items(), key=lambda kv: -kv[1])[:wanted])
        candidates = set(dense)
        corrected, unknown = self._unknown_words(kb, query, scope)
        spaces = (None,) if scope.key is None else (None, scope.key)
        lexical_hits = kb.index.lexical.search(corrected, LEXICAL_CANDIDATES, spaces=spaces)
        top_bm25 = max((h.score for h in lexical_hits), default=0.0)
        lexical = {h.key: h.score / top_bm25 for h in lexical_hits if top_bm25 > 0}
        candidates |= lexical.keys()
        for c in candidates:
            item = kb.items.get(c)
            if item is not None and not scope.sees(item.scope):
                raise RetrievalError(f"item {c} of another space was a candidate in {scope}")
        ids = sorted(
            c for c in candidates if c in kb.row_of and c in kb.items and kb.sees(scope, kb.items[c])
        )
        empty = np.zeros(len(CALIBRATION_FEATURES))
        if not ids:
            return Scoring(query, (), np.zeros((0, len(RANK_FEATURES))), np.zeros(0), empty, tuple(unknown))
        cosines = kb.index.views[[kb.row_of[c] for c in ids]] @ vector  # (n, N_VIEWS)
        per_item = np.column_stack(
            [
                cosines[:, 0],
                cosines[:, 1],
                [lexical.get(c, 0.0) for c in ids],
            ]
        )
        item_scores = self.model.ranker(per_item)
        best: dict[int, int] = {}  # group -> row of its best-scored member
        features: dict[int, np.ndarray] = {}
        for row, item_id in enumerate(ids):
            key = _group_of(kb.items[item_id])
            if key not in best or item_scores[row] > item_scores[best[key]]:
                best[key] = row
            features[key] = per_item[row] if key not in features else np.maximum(features[key], per_item[row])
        keys = list(best)
        matrix = np.stack([features[k] for k in keys])
        scores = self.model.ranker(matrix)
        order = sorted(range(len(keys)), key=lambda i: (-scores[i], ids[best[keys[i]]]))
        groups = tuple((keys[i], kb.items[ids[best[keys[i]]]]) for i in order)
        matrix, scores = matrix[order], scores[order]
        margin = scores[0] - scores[1] if len(scores) > 1 else 1.0
        n_words = len(content_words(query))
        calibration = np.array(
            [
                scores[0],
                margin,
                matrix[0, 0],
                matrix[0, 1],
                matrix[0, 2],
                len(unknown) / max(1, n_words),
                self._coverage(kb, query, groups[0][1], scope),
                math.log1p(n_words),
            ]
        )
        return Scoring(query, groups, matrix, scores, calibration, tuple(unknown))

    def _decide(
        self, kb: _Snapshot, text: str, scoring: Scoring, vector, started: float, scope: Scope
    ) -> Answer:
        if not scoring.groups:
            return Answer(status=NO_MATCH, query=text, suggestions=_topics(kb, vector))
        timings = {"total": (time.perf_counter() - started) * 1000}
        matched = scoring.groups[0][1]
        probability = self.model.probability(scoring.calibration)
        alternatives = [
            Alternative(it.id, it.question, it.source, it.n, round(float(s), 4))
            for (_, it), s in zip(scoring.groups[: 1 + MAX_ALTERNATIVES], scoring.scores, strict=False)
        ]
        if probability < self.model.unsure_min:
            return Answer(
                status=NO_MATCH,
                query=text,
                score=probability,
                suggestions=_topics(kb, vector),
                alternatives=tuple(alternatives[:MAX_ALTERNATIVES]),
                timings_ms=timings,
            )
        status = ANSWERED if probability >= self.model.answer_min else UNSURE
        return self._matched(
            kb,
            text,
            matched,
            status,
            scope,
            score=probability,
            alternatives=tuple(alternatives[1 : 1 + MAX_ALTERNATIVES]),
            timings_ms=timings,
        )

    def _coverage(self, kb: _Snapshot, query: str, item: Item, scope: Scope = _SHARED) -> float:
        """IDF-weighted share of the query's content words that the matched group's text uses (IDF over the
        rows ``scope`` sees)."""
        words = content_words(query)
        if not words:
            return 0.0
        stems = set()
        for member in kb.members[_group_of(item)]:  # a group never crosses spaces (knowledge.store)
            if member.id not in kb.stems:
                kb.stems[member.id] = frozenset(
                    light_stem(w) for w in terms(f"{member.question} {member.answer}")
                )
            stems |= kb.stems[member.id]
        vocabulary = kb.index.lexical.vocabulary_of(scope.key)
        size = vocabulary.size
        weights = [math.log(1 + size / (1 + vocabulary.stem_df(light_stem(w)))) for w in words]
        return sum(wt for w, wt in zip(words, weights, strict=True) if light_stem(w) in stems) / sum(weights)

    def _unknown_words(
        self, kb: _Snapshot, query: str, scope: Scope = _SHARED
    ) -> tuple[list[str], list[str]]:
        """(content words after typo correction, those the rows ``scope`` sees never use)."""
        vocabulary = kb.index.lexical.vocabulary_of(scope.key)
        corrected, unknown = [], []
        for word in content_words(query):
            fixed = vocabulary.correct(word.removesuffix("'s"))  # "nesterov's momentum" is about nesterov
            corrected.append(fixed)
            if any(ch.isdigit() for ch in fixed) or "'" in fixed:
                continue  # numbers, shapes (2x2, conv2d), contractions carry no topic
            if fixed in GENERAL_WORDS or vocabulary.known(fixed) or vocabulary.known(american(fixed)):
                continue
            parts = [p for p in re.split(r"[-_.]", fixed) if p]
            if not all(
                vocabulary.known(p) or vocabulary.known(re.sub(r"^(?:un|non)(?=[a-z]{3})", "", p))
                for p in parts
            ):
                unknown.append(word)
        return corrected, unknown

    def _matched(
        self, kb: _Snapshot, text: str, matched: Item, status: Status, scope: Scope, *, score: float, **extra
    ) -> Answer:
        """An answer for ``matched``: its group's best answer (or why there is none), citing every member the
        scope sees; a correction the scope sees (of the served entry, else of the matched one, else of
        another member) replaces the answer and is returned with it."""
        visible = [m for m in kb.members[_group_of(matched)] if kb.sees(scope, m)] or [matched]
        served = kb.items.get(kb.best.get(matched.group, matched.id), matched) if matched.group else matched
        if served not in visible:
            served = matched
        correction = kb.overrides.first_correction(scope, (m.id for m in (served, matched, *visible)))
        reason = None if correction is not None else _no_answer_reason(served)
        if reason and status == ANSWERED:
            status = NO_ANSWER
        members = sorted(visible, key=lambda m: (m.id != served.id, m.source, m.n))
        return Answer(
            status=status,
            query=text,
            answer=None if reason else (correction.answer if correction else served.answer),
            correction=correction,
            question=matched.question,
            item_id=matched.id,
            source=matched.source,
            n=matched.n,
            score=score,
            citations=tuple(
                Citation(m.source, m.n, kb.titles.get(m.source, m.source), m.id) for m in members
            ),
            no_answer_reason=reason,
            **extra,
        )


def _no_answer_reason(item: Item) -> str | None:
    for flag in (UNANSWERED, PLACEHOLDER, OFF_TOPIC, DISABLED):
        if flag in item.flags:
            return flag
    return None


class _Request:
    """One caller's question waiting for the batch leader."""

    __slots__ = ("answer", "done", "error", "kb", "query", "scope", "started", "text")

    def __init__(self, text: str, query: str, kb: _Snapshot, scope: Scope):
        self.text = text
        self.kb = kb
        self.query = query
        self.scope = scope
        self.started = time.perf_counter()
        self.answer: Answer | None = None
        self.error: BaseException | None = None
        self.done = False

    def result(self) -> Answer:
        if self.error is not None:
            raise self.error
        if self.answer is None:  # the leader was interrupted (KeyboardInterrupt, SystemExit) mid-batch
            raise RetrievalError("the question was not answered: the batch it was in was interrupted")
        return self.answer


def _query_error(query: str, exc: Exception) -> Exception:
    """The error one question's failed encoding is reported as: ``BadQuery`` when the text is at fault.

    The encoder rejects text it cannot tokenize with ``TypeError``/``ValueError`` (a lone surrogate such as
    "\\ud800" is not encodable text); anything else (the model failing) is passed on as it is. The
    message of a ``BadQuery`` is meant for the asker; the encoder's own error is its cause.
    """
    if _has_lone_surrogate(query):
        error = BadQuery(
            "your question contains characters that are not valid text (an unpaired surrogate); "
            "please retype it"
        )
    elif isinstance(exc, TypeError | ValueError):
        error = BadQuery("your question could not be read as text; please retype it")
    else:
        log.warning("a question could not be encoded on its own (%s: %s)", type(exc).__name__, exc)
        return exc
    log.info("a question could not be encoded (%s: %s)", type(exc).__name__, exc)
    error.__cause__ = exc
    return error


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _topics(kb: _Snapshot, vector: np.ndarray | None, k: int = 3) -> tuple[str, ...]:
    topics = kb.index.topics
    if not topics:
        return ()
    if vector is None:
        return tuple(topics[:k])
    scores = kb.index.topic_vectors @ np.asarray(vector, dtype=np.float32).reshape(-1)
    return tuple(topics[i] for i in np.argsort(-scores)[:k])


def _group_of(item: Item) -> int:
    return item.group if item.group is not None else -item.id
