"""The lexical signal: BM25 over item text with SQLite FTS5, plus the knowledge base's vocabulary.

Dense embeddings blur jargon and identifiers (``NCHW``, ``1cycle``, ``color_dim``, ``to_fp16``); FTS5 with
the porter stemmer and ``_`` kept inside tokens matches them exactly. The vocabulary table serves typo
correction and tells which words of a query the knowledge base has never used (a strong "not in my
notes" signal).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
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


def scope_token(key: str | None) -> str:
    """The token a row's space is indexed as: ``shared``, or ``sp`` + the key in hex (FTS5 folds case and
    splits on '-', and keys may use both)."""
    return SHARED_TOKEN if key is None else "sp" + key.encode().hex()


class LexicalIndex:
    """An FTS5 table of (key, question, answer, space) rows and a word -> document-frequency table.

    The space column is matched, never scored (its BM25 weight is 0): a search names the spaces whose rows
    it may return, and FTS5 intersects those rows' postings with the terms'."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise IndexCorrupt(f"{self.path}: lexical index missing")
        self._local = threading.local()
        try:
            conn = self._conn()
            self.size = conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
            self.vocabulary: dict[str, int] = dict(conn.execute("SELECT word, df FROM vocab"))
            self._stems = {light_stem(w) for w in self.vocabulary}
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"{self.path}: unreadable lexical index ({exc})") from exc

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
        conn.execute(
            "CREATE VIRTUAL TABLE docs USING fts5(question, answer, scope,"
            " tokenize=\"porter unicode61 tokenchars '_'\")"
        )
        conn.execute("CREATE TABLE vocab (word TEXT PRIMARY KEY, df INTEGER) WITHOUT ROWID")
        df: Counter[str] = Counter()
        with conn:
            for key, question, answer, scope in rows:
                conn.execute(
                    "INSERT INTO docs (rowid, question, answer, scope) VALUES (?, ?, ?, ?)",
                    (key, question, answer, scope_token(scope)),
                )
                df.update(terms(f"{question} {answer}"))
            conn.executemany("INSERT INTO vocab VALUES (?, ?)", df.items())
        conn.execute("INSERT INTO docs(docs) VALUES ('optimize')")
        conn.commit()
        conn.close()

    def search(
        self, terms: Sequence[str], limit: int = 50, spaces: Sequence[str | None] | None = None
    ) -> list[LexicalHit]:
        """BM25 (question column weighted double) over any of ``terms``, among the rows of ``spaces``
        (``None`` in it: the shared rows; ``spaces=None``: every row)."""
        terms = [t for t in dict.fromkeys(terms) if t]
        if not terms:
            return []
        match = "{question answer} : (" + " OR ".join('"' + t.replace('"', '""') + '"' for t in terms) + ")"
        if spaces is not None:
            match = f"scope : ({' OR '.join(scope_token(s) for s in spaces)}) AND {match}"
        try:
            rows = (
                self._conn()
                .execute(
                    "SELECT rowid, -bm25(docs, 2.0, 1.0, 0.0) FROM docs WHERE docs MATCH ?"
                    " ORDER BY bm25(docs, 2.0, 1.0, 0.0)"
                    " LIMIT ?",
                    (match, limit),
                )
                .fetchall()
            )
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse has no lexical evidence
        return [LexicalHit(int(key), float(score)) for key, score in rows]

    def known(self, word: str) -> bool:
        """Whether the knowledge base uses this word, up to inflection."""
        return word in self.vocabulary or light_stem(word) in self._stems

    def correct(self, word: str) -> str:
        """The knowledge-base word a typo most likely meant, or the word itself.

        Conservative on purpose: only words of 5+ letters, one edit away, same first letter, the edit not
        confined to the word's ending, and the most frequent candidate wins; anything else is left alone. (Two edits turned "transformers" into the
        notes' "transformed", hiding that the notes never cover transformers.)
        """
        if len(word) < 5 or not word.isalpha() or word in self.vocabulary or self.known(word):
            return word
        candidates = {w for w in _edits1(word) if w in self.vocabulary}
        # Same first letter; and not a different ending of the same stem ("transformer" is not a typo of
        # "transformed": a change confined to the last two letters is a different word, not a slip).
        candidates = {
            c for c in candidates if c[0] == word[0] and common_prefix(c, word) < min(len(c), len(word)) - 2
        }
        if not candidates:
            return word
        return max(candidates, key=lambda c: (self.vocabulary[c], c))
