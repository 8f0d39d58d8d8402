"""Errors of the knowledge package: each names the file and, where known, the line."""

from __future__ import annotations

import reprlib

QUOTE_LIMIT = 200  # characters of a user's content an error message may quote
MESSAGE_LIMIT = 1000  # and the most any parse error message says (a net under QUOTE_LIMIT)

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxstring = _REPR.maxother = QUOTE_LIMIT


def excerpt(value: object, limit: int = QUOTE_LIMIT) -> str:
    """What an error message may show of a user's value: text as is, anything else as a bounded ``repr``,
    cut to ``limit`` characters with a note of how much was left out (a value expanded from hostile input
    can be gigabytes; the message stays a line)."""
    text = value if isinstance(value, str) else _REPR.repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


class KnowledgeError(Exception):
    """Base class for knowledge-base errors."""

    published: tuple[str, ...] = ()  # set by an ingest that failed after publishing these documents


class ParseError(KnowledgeError):
    """A source file could not be parsed; nothing was written."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path = path
        self.line = line
        self.message = excerpt(message, MESSAGE_LIMIT)
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {self.message}")


class NameClash(KnowledgeError):
    """A document would take the place of a different one stored under the same name.

    A document's identity is its origin (the bundled sources, a server's own cards, or a user's file at its
    resolved path) plus its name; names are what answers cite, so two origins cannot share one. Nothing was
    written; ``Store.ingest(..., replace=True)`` (``tutor kb ingest --replace``) lets the new one replace it.
    """

    def __init__(self, source: str, existing: str, incoming: str, message: str):
        self.source = source
        self.existing = existing
        self.incoming = incoming
        super().__init__(message)


class StoreError(KnowledgeError):
    """The SQLite store is missing, corrupt or from a newer version."""


class ReadOnlyStore(StoreError):
    """A write to a store opened read-only (its folder or file cannot be written): says why, loses nothing."""


class NotFound(KnowledgeError):
    """No item with that id."""
