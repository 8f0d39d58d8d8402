"""Errors of the retrieval layer."""

from __future__ import annotations


class RetrievalError(Exception):
    """Base class for retrieval errors."""


class IndexCorrupt(RetrievalError):
    """A persisted index file is missing, stale or unreadable; the retriever rebuilds it."""


class EmptyKnowledgeBase(RetrievalError):
    """There is nothing to search: run `tutor kb ingest` first."""


class BadQuery(RetrievalError):
    """The query cannot be answered as given (wrong type, too long after cleaning, ...)."""
