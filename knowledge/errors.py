"""Errors of the knowledge package: each names the file and, where known, the line."""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base class for knowledge-base errors."""


class ParseError(KnowledgeError):
    """A source file could not be parsed; nothing was written."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class StoreError(KnowledgeError):
    """The SQLite store is missing, corrupt or from a newer version."""


class NotFound(KnowledgeError):
    """No item with that id."""
