"""The lexical signal: BM25 over item text with SQLite FTS5, plus the knowledge base's vocabulary.

Dense embeddings blur jargon and identifiers (``NCHW``, ``1cycle``, ``color_dim``, ``to_fp16``); FTS5 with
the porter stemmer and ``_`` kept inside tokens matches them exactly. The vocabulary serves typo
correction and tells which words of a query the knowledge base has never used (a strong "not in my
notes" signal).

Both are per scope (``knowledge.scope``): a question in DMs is read and scored against the shared notes, one
in a server against the shared notes plus that server's cards, never another server's (``LexicalIndex``).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from index.errors import IndexCorrupt
from index.files import replacing
from knowledge.files import connect_read_only
from knowledge.words import STOPWORDS, light_stem

_WORD = re.compile(r"[a-z0-9][a-z0-9_]*(?:[.'-][a-z0-9_]+)*")
# The words a question can drop: the shared stopwords, plus the function words the grader keeps (in an answer
# "not", "before" or "between" is content), the words of asking ("tell", "explain", "mean") and of chat
# ("hey", "thanks").
QUERY_FILLERS = STOPWORDS | frozenset(
    """above after before below between during through until no nor not yes yet too few even ever now must
    am doing having getting hers him itself us yours one
    explain explained give given go going know mean means meant need say show tell want work works vs versus
    bot hello hey hi please question quick thanks whats""".split()
)


# Everyday qualifiers, fillers and library names that say nothing about the topic: a question using one
# ("typical lr", "vanilla sgd", "numpy broadcasting", "hmm dropout?") is not about something the notes lack,
# so they never count as unknown words.
GENERAL_WORDS = frozenset(
    """actual basic best better big bigger biggest bad worse worst classic common correct decent default
    different easy entire exact famous general good great huge ideal important key large larger largest main
    massive modern naive new nice normal old optimal ordinary original overall particular plain popular
    proper pros cons real reasonable regular right simple small smaller smallest specific standard tiny
    traditional typical usual vanilla whole wrong kind kinds type types sort sorts lot lots stuff
    basically actually exactly generally usually typically normally really simply
    brief briefly concise short layman confused confusing hmm hmmm um umm uh ok okay
    numpy tensorflow keras pytorch torch jax sklearn scikit python""".split()
)


def words(text: str) -> list[str]:
    """Lowercased word tokens, keeping identifiers like ``color_dim`` and ``l-bfgs`` whole."""
    return _WORD.findall(text.lower())


def terms(text: str) -> set[str]:
    """Words plus the parts of compounds: "mixed-precision" also counts as "mixed" and "precision", and
    hyphenated names also count written solid, as students type them ("L-BFGS" -> "lbfgs")."""
    found = set(words(text))
    for word in list(found):
        if any(sep in word for sep in "-_."):
            found.update(p for p in re.split(r"[-_.']", word) if len(p) > 1)
        if "-" in word:
            found.add(word.replace("-", ""))
    return found


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in QUERY_FILLERS and not w.isdigit()]


def american(word: str) -> str:
    """British spellings as the notes write them: "normalisation" -> "normalization", "neighbour" -> "neighbor"."""
    word = re.sub(r"(?<=[a-z]{3})is(e|ed|es|ing|ation|ations)$", r"iz\1", word)
    return re.sub(r"(?<=[a-z]{2})our(s|ed|ing|ite|ites)?$", r"or\1", word) if len(word) > 5 else word


def common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _edits1(word: str) -> set[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return {
        *(a + b[1:] for a, b in splits if b),
        *(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1),
        *(a + c + b[1:] for a, b in splits if b for c in letters),
        *(a + c + b for a, b in splits for c in letters),
    }


@dataclass(frozen=True)
class LexicalHit:
    key: int
    score: float  # BM25, higher is better


SHARED_TOKEN = "shared"
_SHARED_KEY = ""  # a shared row's space in the vocab, sizes and cards tables
_FTS = (
    "CREATE VIRTUAL TABLE docs USING fts5(question, answer, scope,"
    " tokenize=\"porter unicode61 tokenchars '_'\")"
)
# The spaces whose FTS5 table (the shared notes plus their cards) and vocabulary are kept after first use, at
# most this many and this many bytes: a space's first question after a reload or an eviction makes its table
# (about 1-2 ms for 100 cards beside the 221 shared notes: a copy of the shared table, then its cards; ~160
# KiB each); its vocabulary is read from the file a word at a time (its stems were computed at build).
SPACE_CACHE = 256
SPACE_CACHE_BYTES = 64 * 2**20


class _Rows(Mapping[str, int]):
    """One space's rows of ``vocab`` or ``stems`` (key -> df), read from the index file as they are asked
    for and remembered: a space's first question reads the few words it uses, not its whole vocabulary."""

    def __init__(self, conn: Callable[[], sqlite3.Connection], table: str, column: str, scope: str):
        self._conn, self._scope = conn, scope
        self._one = f"SELECT df FROM {table} WHERE scope = ? AND {column} = ?"
        self._many = (
            f"SELECT {column} FROM {table} WHERE scope = ? AND {column} IN (SELECT value FROM json_each(?))"
        )
        self._all = f"SELECT {column} FROM {table} WHERE scope = ?"
        self._seen: dict[str, int | None] = {}

    def __getitem__(self, key: str) -> int:
        if key not in self._seen:
            row = self._conn().execute(self._one, (self._scope, key)).fetchone()
            self._seen[key] = row[0] if row else None
        found = self._seen[key]
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def present(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` the space has (one query)."""
        return {r[0] for r in self._conn().execute(self._many, (self._scope, json.dumps(sorted(keys))))}

    def __iter__(self) -> Iterator[str]:
        return (r[0] for r in self._conn().execute(self._all, (self._scope,)))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def stem_frequencies(words: dict[str, int], base: dict[str, int] | None = None) -> dict[str, int]:
    """stem -> the highest document frequency among ``words`` sharing it (each word's df plus its df in
    ``base``, the shared vocabulary, when a space's words are layered on it)."""
    stems: dict[str, int] = {}
    for word, n in words.items():
        stem = light_stem(word)
        n += base.get(word, 0) if base is not None else 0
        if n > stems.get(stem, 0):
            stems[stem] = n
    return stems


def scope_token(key: str | None) -> str:
    """The token a row's space is indexed as: ``shared``, or ``sp`` + the key in hex (FTS5 folds case and
    splits on '-', and keys may use both)."""
    return SHARED_TOKEN if key is None else "sp" + key.encode().hex()


class Vocabulary:
    """The words one scope's rows use, with their document frequencies: the shared notes', and in a space
    also its own cards' (layered on the shared vocabulary, never another space's).

    ``size`` is the number of rows (the scope's documents), ``df`` a word's document frequency among them,
    ``stem_df`` the highest of those over the words sharing a stem (``knowledge.words.light_stem``)."""

    def __init__(
        self,
        size: int,
        words: Mapping[str, int],
        base: Vocabulary | None = None,
        stems: Mapping[str, int] | None = None,
    ):
        self.size = size + (base.size if base is not None else 0)
        self._base = base
        self._own = words
        # stem -> highest document frequency of this layer's words (with the base's df of each word);
        # ``stems``: as the index build computed it (``stem_frequencies``), so a space's first question
        # does not stem its whole vocabulary
        self._stems = (
            stems if stems is not None else stem_frequencies(dict(words), base._own if base else None)
        )

    def __contains__(self, word: str) -> bool:
        return word in self._own or (self._base is not None and word in self._base._own)

    def df(self, word: str) -> int:
        return self._own.get(word, 0) + (self._base._own.get(word, 0) if self._base is not None else 0)

    def stem_df(self, stem: str) -> int:
        own = self._stems.get(stem, 0)
        return max(own, self._base._stems.get(stem, 0)) if self._base is not None else own

    def known(self, word: str) -> bool:
        """Whether the scope's rows use this word, up to inflection."""
        if word in self:
            return True
        stem = light_stem(word)
        return stem in self._stems or (self._base is not None and stem in self._base._stems)

    def correct(self, word: str) -> str:
        """The scope's word a typo most likely meant, or the word itself.

        Conservative on purpose: only words of 5+ letters, one edit away, same first letter, the edit not
        confined to the word's ending, and the most frequent candidate wins; anything else is left alone.
        (Two edits turned "transformers" into the notes' "transformed", hiding that the notes never cover
        transformers.)
        """
        if len(word) < 5 or not word.isalpha() or self.known(word):
            return word
        edits = _edits1(word)
        candidates = (
            {w for w in edits if w in self._own} if isinstance(self._own, dict) else self._own.present(edits)
        )
        if self._base is not None:
            candidates |= {w for w in edits if w in self._base._own}
        # Same first letter; and not a different ending of the same stem ("transformer" is not a typo of
        # "transformed": a change confined to the last two letters is a different word, not a slip).
        candidates = {
            c for c in candidates if c[0] == word[0] and common_prefix(c, word) < min(len(c), len(word)) - 2
        }
        if not candidates:
            return word
        return max(candidates, key=lambda c: (self.df(c), c))


@dataclass
class _Space:
    """A space's lexical view, built on first use: its vocabulary and an in-memory FTS5 table of the shared
    rows plus its cards (so BM25's statistics are those of the rows the space sees)."""

    vocabulary: Vocabulary
    docs: sqlite3.Connection | None = None
    nbytes: int = 0


class LexicalIndex:
    """BM25 over item text with SQLite FTS5, and the vocabulary, both per scope.

    The file holds the shared notes in an FTS5 table (``docs``), every space's cards in a plain table
    (``cards``), and each scope's word -> document frequency (``vocab``) and row count (``sizes``), the
    shared rows under ``''`` and a space's cards under its key. A question in DMs is searched and read
    against the shared notes alone; one in a space with cards against the shared notes plus that space's
    cards: an in-memory FTS5 table of both (a copy of the shared one with the cards added, made on first use)
    and the two vocabularies layered. What one space holds never changes what another scope sees: neither a
    word's correction or novelty, nor its document frequency, nor BM25's IDF and average length.

    The space column is matched, never scored (its BM25 weight is 0); it is kept so that each row's length,
    and so its BM25, is the same as in a single table of every row the scope sees."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise IndexCorrupt(f"{self.path}: lexical index missing")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._spaces: OrderedDict[str, _Space] = OrderedDict()  # least recently used first
        self._template: bytes | None = None  # the shared FTS5 table, serialized (made on first use)
        try:
            conn = self._conn()
            self.size = conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
            # The shared notes' words and stems with their document frequencies (stems computed at build).
            words = dict(conn.execute("SELECT word, df FROM vocab WHERE scope = ?", (_SHARED_KEY,)))
            stems = dict(conn.execute("SELECT stem, df FROM stems WHERE scope = ?", (_SHARED_KEY,)))
            conn.execute("SELECT scope, n FROM sizes LIMIT 1").fetchall()
            conn.execute("SELECT scope, id, question, answer FROM cards LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"{self.path}: unreadable lexical index ({exc})") from exc
        self.shared = Vocabulary(self.size, words, stems=stems)

    def _conn(self) -> sqlite3.Connection:
        """One read-only connection per thread (sqlite3 connections are not shared across threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_read_only(self.path, check_same_thread=False)
            self._local.conn = conn
        return conn

    @classmethod
    def build(cls, path: str | Path, rows: Iterable[tuple[int, str, str, str | None]]) -> LexicalIndex:
        """Write a fresh index next to the old one and swap it in atomically."""
        path = Path(path)
        with replacing(path) as tmp:
            cls._write(tmp, rows)
        return cls(path)

    @staticmethod
    def _write(tmp: Path, rows: Iterable[tuple[int, str, str, str | None]]) -> None:
        conn = sqlite3.connect(tmp)
        conn.execute(_FTS)
        conn.execute(
            "CREATE TABLE cards (scope TEXT, id INTEGER, question TEXT, answer TEXT,"
            " PRIMARY KEY (scope, id)) WITHOUT ROWID"
        )
        conn.execute(
            "CREATE TABLE vocab (scope TEXT, word TEXT, df INTEGER, PRIMARY KEY (scope, word)) WITHOUT ROWID"
        )
        conn.execute("CREATE TABLE sizes (scope TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID")
        conn.execute(
            "CREATE TABLE stems (scope TEXT, stem TEXT, df INTEGER, PRIMARY KEY (scope, stem)) WITHOUT ROWID"
        )
        df: dict[str, Counter[str]] = {_SHARED_KEY: Counter()}
        with conn:
            for key, question, answer, scope in rows:
                if scope is None:
                    conn.execute(
                        "INSERT INTO docs (rowid, question, answer, scope) VALUES (?, ?, ?, ?)",
                        (key, question, answer, SHARED_TOKEN),
                    )
                else:
                    conn.execute("INSERT INTO cards VALUES (?, ?, ?, ?)", (scope, key, question, answer))
                counts = df.setdefault(_SHARED_KEY if scope is None else scope, Counter())
                counts.update(terms(f"{question} {answer}"))
            shared = dict(df[_SHARED_KEY])
            for scope, counts in df.items():
                conn.executemany(
                    "INSERT INTO vocab VALUES (?, ?, ?)", ((scope, word, n) for word, n in counts.items())
                )
                stems = stem_frequencies(counts, None if scope == _SHARED_KEY else shared)
                conn.executemany(
                    "INSERT INTO stems VALUES (?, ?, ?)", ((scope, s, n) for s, n in stems.items())
                )
            conn.execute("INSERT INTO sizes SELECT scope, COUNT(*) FROM cards GROUP BY scope")
            conn.execute("INSERT INTO sizes SELECT ?, COUNT(*) FROM docs", (_SHARED_KEY,))
        conn.execute("INSERT INTO docs(docs) VALUES ('optimize')")
        conn.commit()
        conn.close()

    # --- per scope ---
    def vocabulary_of(self, space: str | None) -> Vocabulary:
        """The vocabulary a question in ``space`` is read with (``None``: DMs, the shared notes)."""
        if space is None:
            return self.shared
        found = self._space(space)
        return found.vocabulary if found is not None else self.shared

    def known(self, word: str, space: str | None = None) -> bool:
        """Whether the rows ``space`` sees use this word, up to inflection."""
        return self.vocabulary_of(space).known(word)

    def correct(self, word: str, space: str | None = None) -> str:
        """The word of the rows ``space`` sees that a typo most likely meant (``Vocabulary.correct``)."""
        return self.vocabulary_of(space).correct(word)

    def _space(self, key: str) -> _Space | None:
        """The space's cached view, made on first use; None when it has no cards (it sees the shared rows)."""
        with self._lock:
            found = self._spaces.get(key)
            if found is not None:
                self._spaces.move_to_end(key)
                return found
        try:
            conn = self._conn()
            row = conn.execute("SELECT n FROM sizes WHERE scope = ?", (key,)).fetchone()
            if row is None or key == _SHARED_KEY:
                return None
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"{self.path}: unreadable lexical index ({exc})") from exc
        words = _Rows(self._conn, "vocab", "word", key)
        stems = _Rows(self._conn, "stems", "stem", key)
        made = _Space(Vocabulary(row[0], words, self.shared, stems))
        with self._lock:
            found = self._spaces.setdefault(key, made)
            self._spaces.move_to_end(key)
            self._evict()
        return found

    def _evict(self) -> None:
        """Drop the least recently used spaces beyond the cache's count or bytes (always keeping one)."""
        total = sum(s.nbytes for s in self._spaces.values())
        while len(self._spaces) > 1 and (len(self._spaces) > SPACE_CACHE or total > SPACE_CACHE_BYTES):
            _, gone = self._spaces.popitem(last=False)
            total -= gone.nbytes

    def _docs_of(self, key: str, space: _Space) -> sqlite3.Connection:
        """The space's in-memory FTS5 table: a copy of the shared one plus its cards, so BM25's statistics
        are those of the rows the space sees (a space with three cards is scored as the notes plus three)."""
        if space.docs is not None:
            return space.docs
        with self._lock:
            if space.docs is not None:
                return space.docs
            try:
                conn = sqlite3.connect(":memory:", check_same_thread=False)
                conn.deserialize(self._shared_template())
                cards = self._conn().execute(
                    "SELECT id, question, answer FROM cards WHERE scope = ? ORDER BY id", (key,)
                )
                token = scope_token(key)
                with conn:
                    conn.executemany(
                        "INSERT INTO docs (rowid, question, answer, scope) VALUES (?, ?, ?, ?)",
                        ((rowid, question, answer, token) for rowid, question, answer in cards),
                    )
            except sqlite3.DatabaseError as exc:
                raise IndexCorrupt(f"{self.path}: unreadable lexical index ({exc})") from exc
            space.docs = conn
            space.nbytes = (
                conn.execute("PRAGMA page_count").fetchone()[0]
                * conn.execute("PRAGMA page_size").fetchone()[0]
            )
            self._evict()
            return conn

    def _shared_template(self) -> bytes:
        """The shared FTS5 table as a serialized in-memory database (called under the lock)."""
        if self._template is None:
            conn = sqlite3.connect(":memory:")
            conn.execute(_FTS)
            with conn:
                conn.executemany(
                    "INSERT INTO docs (rowid, question, answer, scope) VALUES (?, ?, ?, ?)",
                    self._conn().execute("SELECT rowid, question, answer, scope FROM docs ORDER BY rowid"),
                )
            self._template = conn.serialize()
            conn.close()
        return self._template

    def search(
        self, terms: Sequence[str], limit: int = 50, spaces: Sequence[str | None] = (None,)
    ) -> list[LexicalHit]:
        """BM25 (question column weighted double) over any of ``terms``, among the rows of ``spaces``
        (``None``: the shared rows; at most one space), best first, with the statistics of the rows that
        scope sees: the shared notes, plus the space's cards when one is named. What one space holds never
        changes another scope's scores."""
        terms = [t for t in dict.fromkeys(terms) if t]
        keys = {s for s in spaces if s is not None}
        if len(keys) > 1:
            raise ValueError(f"one space at a time, not {sorted(keys)}")
        if not terms or not spaces:
            return []
        match = "{question answer} : (" + " OR ".join('"' + t.replace('"', '""') + '"' for t in terms) + ")"
        key = next(iter(keys), None)
        found = self._space(key) if key is not None else None
        if found is None:  # DMs, or a space without cards: the shared table
            return self._match(self._conn(), match, limit) if None in spaces else []
        if None not in spaces:
            match = f"scope : {scope_token(key)} AND {match}"
        return self._match(self._docs_of(key, found), match, limit)

    @staticmethod
    def _match(conn: sqlite3.Connection, match: str, limit: int) -> list[LexicalHit]:
        try:
            rows = conn.execute(
                "SELECT rowid, -bm25(docs, 2.0, 1.0, 0.0) FROM docs WHERE docs MATCH ?"
                " ORDER BY bm25(docs, 2.0, 1.0, 0.0) LIMIT ?",
                (match, limit),
            ).fetchall()
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse has no lexical evidence
        return [LexicalHit(int(key), float(score)) for key, score in rows]
