"""A space's overrides of the knowledge base, and the review of Not helpful answers that leads to them.

Overrides never touch a source document or an item row: a hide or a correction is a row of ``overrides``
(scope key, item, kind, the new answer with the original it replaces, who, when), read by the retriever
and the quiz at each reload (``load_overrides``) and applied per scope (``knowledge.scope.Overrides``). So
a correction to a bundled answer survives every re-ingest, and another space never sees it.

The review queue groups a scope's Not helpful feedback by the entry it was about: votes, the latest
questions asked, the answer shown and the comments, most voted and newest first. Resolving an entry
(corrected, hidden, dismissed) takes it off that queue; the owners' queue over the shared notes, from
every space, is resolved separately (``owner_resolution``), so a server's staff and the owners never take
each other's entries away.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from knowledge.card_text import MAX_ANSWER, TextError, clean_answer
from knowledge.errors import KnowledgeError, NotFound
from knowledge.migrations import now as _now
from knowledge.models import Item
from knowledge.scope import EVERYWHERE, Correction, OverrideKind, Overrides, Scope
from knowledge.store import Store

MAX_CORRECTION = MAX_ANSWER  # characters of a corrected answer: as many as a card's answer
MAX_PAGE = 50


class OverrideError(KnowledgeError):
    """An override that cannot be made (another space's item, an empty answer); nothing was changed."""


class Resolution(StrEnum):
    CORRECTED = "corrected"
    HIDDEN = "hidden"
    DISMISSED = "dismissed"


def load_overrides(store: Store) -> Overrides:
    """Every space's hides and corrections of live items (one small query)."""
    hidden: dict[str, set[int]] = {}
    corrections: dict[tuple[str, int], Correction] = {}
    for row in store.db.query(
        "SELECT o.* FROM overrides o JOIN items i ON i.id = o.item_id WHERE i.retired_at IS NULL ORDER BY o.id"
    ):
        if row["kind"] == OverrideKind.HIDE:
            hidden.setdefault(row["scope"], set()).add(row["item_id"])
        else:
            corrections[(row["scope"], row["item_id"])] = _correction(row)
    return Overrides({k: frozenset(v) for k, v in hidden.items()}, corrections)


def _correction(row: dict) -> Correction:
    return Correction(
        item_id=row["item_id"], scope=row["scope"], answer=row["answer"] or "", original=row["original"] or "",
        author=row["author"], created_at=row["created_at"], note=row["note"] or "",
    )  # fmt: skip


def _visible_item(store: Store, key: str, item_id: int) -> Item:
    """The live item, if the space ``key`` (or every space, EVERYWHERE) may override it."""
    item = store.item(item_id)  # NotFound
    if key == EVERYWHERE:
        if item.scope is not None:
            raise OverrideError(f"item {item_id} is a space's own card, not a shared note")
    elif not Scope.of(key).sees(item.scope):
        raise NotFound(f"no item with id {item_id}")  # another space's card: not even its existence
    if item.retired:
        raise NotFound(f"item {item_id} was retired from the knowledge base")
    return item


def _group_in(store: Store, scope: Scope, item: Item) -> list[Item]:
    """The item and the members of its duplicate group that ``scope`` sees: one question, one answer served,
    so hiding it hides them all (otherwise a twin in another document answers in its place)."""
    members = store.group_members(item.group) if item.group is not None else []
    return [item, *(m for m in members if m.id != item.id and scope.sees(m.scope))]


def hide(store: Store, scope: Scope, item_id: int, author: str) -> Item:
    """Hide an item, with its duplicates, in one space (its own card or a shared note); the others still
    see it."""
    if scope.key is None:
        raise OverrideError("hiding an item everywhere is the owners' `/owner disable`, not a space's")
    with store.transaction():
        item = _visible_item(store, scope.key, item_id)
        store.db.conn.executemany(
            "INSERT INTO overrides (scope, item_id, kind, author, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(scope, item_id, kind) DO NOTHING",
            [
                (scope.key, m.id, OverrideKind.HIDE, str(author), _now())
                for m in _group_in(store, scope, item)
            ],
        )
    return item


def restore(store: Store, scope: Scope, item_id: int) -> bool:
    """Show an item the space hid (with its duplicates) again; False if it was not hidden there."""
    if scope.key is None:
        raise OverrideError("only a space hides items of its own")
    with store.transaction():
        item = store.item(item_id)  # NotFound
        if not scope.sees(item.scope):
            raise NotFound(f"no item with id {item_id}")
        ids = [m.id for m in _group_in(store, scope, item)]
        cursor = store.db.execute(
            f"DELETE FROM overrides WHERE scope = ? AND kind = ? AND item_id IN ({', '.join('?' * len(ids))})",
            [scope.key, OverrideKind.HIDE, *ids],
        )
    return cursor.rowcount > 0


def correct(store: Store, key: str, item_id: int, answer: str, author: str, note: str = "") -> Correction:
    """Give an item a corrected answer in the space ``key`` (EVERYWHERE: the owners' overlay on a shared
    note). The original answer is kept beside it; correcting again replaces the correction, keeping the
    first original."""
    try:  # the checks a card's answer gets (knowledge.card_text): readable, no controls, MAX_CORRECTION
        answer = clean_answer(answer, what="corrected answer")
    except TextError as exc:
        raise OverrideError(str(exc)) from None
    with store.transaction():
        item = _visible_item(store, key, item_id)
        store.db.execute(
            "INSERT INTO overrides (scope, item_id, kind, answer, original, author, created_at, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(scope, item_id, kind) DO UPDATE SET"
            " answer=excluded.answer, author=excluded.author, created_at=excluded.created_at, note=excluded.note",
            [key, item_id, OverrideKind.CORRECT, answer, item.answer, str(author), _now(), note or None],
        )
        row = next(
            store.db.query(
                "SELECT * FROM overrides WHERE scope = ? AND item_id = ? AND kind = ?",
                [key, item_id, OverrideKind.CORRECT],
            )
        )
    return _correction(row)


def drop_correction(store: Store, key: str, item_id: int) -> bool:
    """Serve the item's own answer again in the space ``key``; False if it had no correction there."""
    with store.transaction():
        cursor = store.db.execute(
            "DELETE FROM overrides WHERE scope = ? AND item_id = ? AND kind = ?",
            [key, item_id, OverrideKind.CORRECT],
        )
    return cursor.rowcount > 0


def space_overrides(store: Store, key: str) -> list[dict]:
    """A space's overrides as plain rows (with each item's question), for an export."""
    return list(
        store.db.query(
            "SELECT o.kind, o.item_id, i.question, o.answer, o.original, o.author, o.created_at, o.note"
            " FROM overrides o JOIN items i ON i.id = o.item_id WHERE o.scope = ? ORDER BY o.id",
            [key],
        )
    )


# --- the review of Not helpful answers ---------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewEntry:
    """One entry students marked Not helpful, with what they asked and said."""

    item_id: int
    question: str  # the entry's question
    answer_shown: str  # the latest answer shown for it
    queries: tuple[str, ...]  # the latest questions asked (distinct, newest first)
    votes: int  # Not helpful votes not yet resolved
    comments: tuple[str, ...]  # "what was wrong", newest first
    last_at: str
    scope: str | None  # the entry's space (None: a shared note)


@dataclass(frozen=True)
class ReviewPage:
    entries: tuple[ReviewEntry, ...]
    total: int  # entries in the whole queue
    offset: int


def review_queue(store: Store, scope: Scope | None, *, offset: int = 0, limit: int = 10) -> ReviewPage:
    """A space's unresolved Not helpful answers (``scope``), or the owners' (``None``: shared notes, from
    every space and direct messages); most voted, then newest, first."""
    if not 1 <= limit <= MAX_PAGE:
        raise OverrideError(f"a review page has 1 to {MAX_PAGE} entries, not {limit}")
    offset = max(0, int(offset))
    if scope is None:
        where = "f.owner_resolution IS NULL AND d.scope IS NULL"
        params: list = []
    elif scope.key is None:
        raise OverrideError("direct messages have no staff to review answers: the owners review them")
    else:
        where = "f.resolution IS NULL AND f.guild_id = ? AND (d.scope IS NULL OR d.scope = ?)"
        params = [scope.key, scope.key]
    base = (
        "FROM feedback f JOIN items i ON i.id = f.item_id JOIN documents d ON d.source = i.source"
        f" WHERE f.helpful = 0 AND i.retired_at IS NULL AND {where}"
    )
    with store.lock:
        total = store.db.execute(f"SELECT COUNT(DISTINCT f.item_id) {base}", params).fetchone()[0]
        groups = list(
            store.db.query(
                f"SELECT f.item_id, COUNT(*) AS votes, MAX(f.created_at) AS last_at, MAX(f.id) AS last_id,"
                f" i.question, d.scope {base} GROUP BY f.item_id ORDER BY votes DESC, last_at DESC, last_id DESC"
                " LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
        )
        entries = []
        for g in groups:
            rows = list(
                store.db.query(
                    f"SELECT f.query, f.answer, f.comment, f.created_at {base} AND f.item_id = ?"
                    " ORDER BY f.id DESC LIMIT 20",
                    [*params, g["item_id"]],
                )
            )
            entries.append(
                ReviewEntry(
                    item_id=g["item_id"], question=g["question"], answer_shown=rows[0]["answer"] if rows else "",
                    queries=tuple(dict.fromkeys(r["query"] for r in rows))[:5],
                    votes=g["votes"], comments=tuple(r["comment"] for r in rows if r["comment"])[:5],
                    last_at=g["last_at"], scope=g["scope"],
                )
            )  # fmt: skip
    return ReviewPage(tuple(entries), total, offset)


def resolve(store: Store, scope: Scope | None, item_id: int, resolution: Resolution, by: str) -> int:
    """Take an entry off a review queue (a space's, or the owners' when ``scope`` is None); returns how
    many feedback rows it resolved."""
    resolution = Resolution(resolution)
    with store.transaction():
        if scope is None:
            cursor = store.db.execute(
                "UPDATE feedback SET owner_resolution = ? WHERE item_id = ? AND helpful = 0"
                " AND owner_resolution IS NULL",
                [json.dumps({"resolution": resolution, "by": str(by), "at": _now()}), item_id],
            )
        else:
            if scope.key is None:
                raise OverrideError("direct messages have no review queue")
            cursor = store.db.execute(
                "UPDATE feedback SET resolution = ?, resolved_by = ?, resolved_at = ? WHERE item_id = ?"
                " AND helpful = 0 AND guild_id = ? AND resolution IS NULL",
                [resolution, str(by), _now(), item_id, scope.key],
            )
    return cursor.rowcount
