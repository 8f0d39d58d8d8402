"""Plain values passed between the parsers, the store and the layers above."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

# Flags an item can carry. Unanswered/placeholder/off-topic items are kept but never served or quizzed.
UNANSWERED = "unanswered"
PLACEHOLDER = "placeholder"
CLOZE = "cloze"
OFF_TOPIC = "off_topic"
DISABLED = "disabled"
ALL_FLAGS = (UNANSWERED, PLACEHOLDER, CLOZE, OFF_TOPIC, DISABLED)
NOT_SERVABLE = frozenset({UNANSWERED, PLACEHOLDER, OFF_TOPIC, DISABLED})


@dataclass(frozen=True)
class Entry:
    """One questionnaire entry as parsed from a document, before it gets an id."""

    question: str
    answer: str
    line: int  # 1-based line of the question in the source file
    # The stored item this entry is an edit of (a server's card edited in place): it keeps that id even when
    # its question changes. Parsed files never set it; the store matches their entries by question.
    item_id: int | None = None


@dataclass(frozen=True)
class DocumentMeta:
    """What the manifest (or a deck's front matter) says about a document."""

    source: str  # file name: the citation id
    title: str
    course: str = ""
    chapter: str = ""
    topics: tuple[str, ...] = ()
    layout: str = ""  # parser name
    scope: str | None = None  # the space the document belongs to (knowledge.scope); None: shared


@dataclass(frozen=True)
class ParsedDocument:
    meta: DocumentMeta
    entries: tuple[Entry, ...]
    content_hash: str
    # Where the document comes from: with its name, its identity in the store ("bundled", "file:<resolved
    # path>"; empty for documents built in code, which the store attributes, see ``Store.ingest``).
    origin: str = ""
    scope: str | None = None  # the space whose cards these are (knowledge.scope); None: shared


@dataclass(frozen=True)
class Item:
    """A stored questionnaire item."""

    id: int
    source: str
    n: int
    question: str
    answer: str
    flags: frozenset[str] = field(default_factory=frozenset)
    relevance: float | None = None  # cosine(question, answer): the off-topic rule's score
    group: int | None = None
    retired: bool = False
    scope: str | None = None  # its document's space (knowledge.scope); None: shared

    @property
    def servable(self) -> bool:
        """Whether the answer may be shown as an answer or quizzed."""
        return not (self.flags & NOT_SERVABLE) and not self.retired


def question_key(text: str) -> str:
    """The key a question is matched by (the store's ``question_key``): its letters and digits, in any
    script, case-folded, so "What is a tensor?" and "what is a Tensor" are one question, and two questions
    written in Cyrillic or Chinese are two."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())
