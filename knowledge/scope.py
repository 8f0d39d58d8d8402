"""Whose knowledge a question is answered from: the shared notes, plus one space's own cards and overrides.

A *space* is where the tutor is used by one community (the bot maps a Discord server to one; the domain
never knows). Every document is either shared (the bundled notes and files the operators ingest) or
belongs to one space (its cards). A space also has overrides: shared items it hides, and answers its staff
corrected. A :class:`Scope` is the plain value passed down from the edge: ``Scope.shared()`` for direct
messages and the terminal, ``Scope.of(key)`` inside a space. What a scope sees:

* items of shared documents and of its own space's documents, never another space's;
* minus items hidden everywhere (``disabled``, an owner's operation) and items its space hides;
* with answers corrected for it: its own space's correction first, else an everywhere correction (the
  owners' overlay on the bundled notes, which survives re-ingest).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from knowledge.errors import KnowledgeError

EVERYWHERE = ""  # the scope key of an override that applies in every space (an owner's)
_KEY = re.compile(r"[0-9A-Za-z_-]{1,64}")


class ScopeError(KnowledgeError):
    """A scope key that is not one (empty, too long, or with characters outside [0-9A-Za-z_-])."""


@dataclass(frozen=True)
class Scope:
    """``key`` names a space; ``None`` is the shared notes alone (direct messages, the terminal)."""

    key: str | None = None

    def __post_init__(self) -> None:
        if self.key is not None and not (isinstance(self.key, str) and _KEY.fullmatch(self.key)):
            raise ScopeError(f"a scope key is 1-64 letters, digits, '-' or '_', not {self.key!r}")

    @classmethod
    def shared(cls) -> Scope:
        return cls(None)

    @classmethod
    def of(cls, key: str | int | None) -> Scope:
        """The scope of a space (``None``: the shared notes only)."""
        return cls(None if key is None else str(key))

    def sees(self, item_scope: str | None) -> bool:
        """Whether an item of a document in ``item_scope`` (``None``: shared) belongs to this scope."""
        return item_scope is None or item_scope == self.key

    def __str__(self) -> str:
        return "shared" if self.key is None else f"space {self.key}"


class OverrideKind(StrEnum):
    HIDE = "hide"
    CORRECT = "correct"


@dataclass(frozen=True)
class Correction:
    """An answer rewritten for a space (or everywhere), with where it came from."""

    item_id: int
    scope: str  # a space's key, or EVERYWHERE
    answer: str
    original: str  # the answer it replaces, as it was when corrected
    author: str  # who wrote it (a user id, or a name from the terminal)
    created_at: str
    note: str = ""

    @property
    def everywhere(self) -> bool:
        return self.scope == EVERYWHERE


@dataclass(frozen=True)
class Overrides:
    """Every space's hides and corrections at one moment; small (one row per override)."""

    hidden: Mapping[str, frozenset[int]] = field(default_factory=dict)  # scope key -> item ids hidden there
    corrections: Mapping[tuple[str, int], Correction] = field(default_factory=dict)  # (scope key, item id)

    def hidden_in(self, scope: Scope) -> frozenset[int]:
        """Items a scope does not see beyond the ``disabled`` ones: its space's hides."""
        if scope.key is None:
            return frozenset()
        return self.hidden.get(scope.key, frozenset())

    def correction(self, scope: Scope, item_id: int) -> Correction | None:
        """The correction a scope sees for an item: its space's own, else the everywhere one."""
        if scope.key is not None:
            own = self.corrections.get((scope.key, item_id))
            if own is not None:
                return own
        return self.corrections.get((EVERYWHERE, item_id))

    def first_correction(self, scope: Scope, item_ids: Iterable[int]) -> Correction | None:
        """The correction a scope sees of the first of ``item_ids`` that has one (a duplicate group's
        members, the one served first), passing over those its space hides: one question, one answer."""
        hidden = self.hidden_in(scope)
        for item_id in item_ids:
            found = None if item_id in hidden else self.correction(scope, item_id)
            if found is not None:
                return found
        return None
