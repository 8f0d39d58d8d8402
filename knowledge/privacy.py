"""Deleting what the tutor keeps about one person (``forget_user``) or one space (``purge_space``).

``forget_user`` is a learner's "forget me": every row about them in every space, whatever the front end
(quiz profile, sessions and their questions, reviews, card states, contested grades, feedback, and any
other table of the file with a ``user_id`` column, such as the bot's leaderboard places); where they are
only named as the author or reviewer of something a space keeps (a correction, a resolved Not helpful
vote, a decided contest), the name is taken off and the thing stays. ``purge_space`` deletes a space (the
bot calls it some time after leaving a server): its documents and items, for good, with everything that
refers to those items (quiz questions, reviews, card states, contests, overrides, feedback), its overrides
of shared notes, its members' feedback given there and the quiz sessions started there. A learner's
progress on the shared notes is theirs, not the space's, and stays (``forget_user`` deletes it).

Both write in one ``Store.transaction()`` (``BEGIN IMMEDIATE`` under the store's lock, as every writer
does): a reader, the retriever or a quiz step sees everything before or everything after, and a failure
deletes nothing. Rows are deleted in the order foreign keys need (a row referring to a deleted one by a
declared foreign key goes first, found in the schema, so a table added later is covered). Both return the
rows deleted per table, and for a user or space with nothing stored return zeros without raising.

Deleting items changes the store's content hash: the retrieval index and the quiz catalogue are rebuilt at
their next reload (the caller triggers it). Backups made earlier still hold the rows until removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from knowledge.errors import KnowledgeError
from knowledge.scope import Scope
from knowledge.store import Store
from knowledge.vectors import text_key

# Tables whose rows belong to a learner: deleted first, in this order (others with a user_id column after).
USER_TABLES = (
    "grade_contests",
    "quiz_reviews",
    "quiz_sessions",  # and its questions (quiz_slots, by their foreign key)
    "quiz_cards",
    "quiz_users",
    "feedback",
)
# Where a user is named as the author or reviewer of a space's content: (table, column, how it is cleared).
AUTHORED = (
    ("overrides", "author", "overrides (author name removed)"),
    ("feedback", "resolved_by", "feedback resolutions (reviewer name removed)"),
    ("grade_contests", "decided_by", "contest decisions (reviewer name removed)"),
)
FORGOTTEN = "forgotten user"  # what an override's author becomes (the column is NOT NULL)


class PrivacyError(KnowledgeError):
    """A deletion that was refused (no user id, no space key); nothing was deleted."""


def forget_user(store: Store, user_id: str) -> dict[str, int]:
    """Delete every row about ``user_id`` in every space, in one transaction; returns the rows deleted (or,
    for the tables in ``AUTHORED``, with the name taken off) per table. Nothing stored: zeros."""
    user = "" if user_id is None else str(user_id).strip()
    if not user:
        raise PrivacyError("forgetting a user needs their id")
    counts: dict[str, int] = {}
    with store.transaction():
        schema = _Schema(store)
        owned = [t for t in schema.tables if "user_id" in schema.columns(t)]
        for table in [t for t in USER_TABLES if t in owned] + sorted(set(owned) - set(USER_TABLES)):
            schema.delete(table, '"user_id" = ?', [user], counts)
        for table, column, label in AUTHORED:
            if column not in schema.columns(table):
                continue
            value = FORGOTTEN if table == "overrides" else None
            cursor = store.db.execute(
                f'UPDATE "{table}" SET "{column}" = ? WHERE "{column}" = ?', [value, user]
            )
            counts[label] = cursor.rowcount
        if "owner_resolution" in schema.columns("feedback"):  # the owners' review: {"resolution", "by", "at"}
            cursor = store.db.execute(
                "UPDATE feedback SET owner_resolution = json_set(owner_resolution, '$.by', ?)"
                " WHERE json_valid(owner_resolution) AND json_extract(owner_resolution, '$.by') = ?",
                [FORGOTTEN, user],
            )
            label = "feedback resolutions (reviewer name removed)"
            counts[label] = counts.get(label, 0) + cursor.rowcount
    return counts


def purge_space(store: Store, key: str, *, model_ids: Iterable[str] = ()) -> dict[str, int]:
    """Delete the space ``key`` entirely, in one transaction; returns the rows deleted per table.

    Its documents and items (hard delete: ids and history go), and first what refers to those items: quiz
    questions (``quiz_slots``), reviews, card states of their duplicate groups, contested grades,
    overrides, feedback; its groups; every override whose scope is ``key`` (its hides and corrections of
    shared notes); feedback given in it (``guild_id = key``); the quiz sessions started in it, with their
    questions. Reviews and card states of shared notes stay, also those given in its sessions: they are the
    learners' progress (``forget_user`` deletes them).

    ``text_vectors`` (knowledge.vectors) is keyed by ``sha1(model, text)``, so the store cannot tell which
    vectors are a space's without the model: given ``model_ids`` (the entry encoder's ``model_id``), the
    vectors of its items' texts (question, answer, the quiz's 300-character answer, the index's "question
    answer" view) that no other item has are deleted too; without, they stay (a cache of numbers, never
    shown; an unknown key is a miss).
    """
    key = "" if key is None else str(key).strip()
    if not key:
        raise PrivacyError("purging a space needs its key (the everywhere overrides are no space's)")
    Scope(key)  # ScopeError for a key that cannot be a space's
    counts: dict[str, int] = {}
    with store.transaction():
        schema = _Schema(store)
        db = store.db
        items = [r[0] for r in db.execute(_SPACE_ITEMS.format(cols="i.id"), [key]).fetchall()]
        cards = [
            r[0]
            for r in db.execute(
                _SPACE_ITEMS.format(cols="DISTINCT COALESCE(i.group_id, i.id)")
                + " EXCEPT SELECT COALESCE(i.group_id, i.id) FROM items i JOIN documents d ON d.source = i.source"
                " WHERE d.scope IS NOT ?",
                [key, key],
            ).fetchall()
        ]  # a group never crosses spaces; EXCEPT keeps a number any other item still uses
        stale = _space_vectors(store, key, list(model_ids)) if model_ids else []
        ids, groups = json.dumps(items), json.dumps(cards)
        in_items, in_cards = "IN (SELECT value FROM json_each(?))", "IN (SELECT value FROM json_each(?))"
        schema.delete("quiz_sessions", '"scope" = ?', [key], counts)
        for table in ("quiz_slots", "quiz_reviews"):
            schema.delete(table, f"item_id {in_items} OR card_id {in_cards}", [ids, groups], counts)
        schema.delete("quiz_cards", f"card_id {in_cards}", [groups], counts)
        schema.delete("grade_contests", f"item_id {in_items}", [ids], counts)
        schema.delete("feedback", f"item_id {in_items} OR guild_id = ?", [ids, key], counts)
        schema.delete("overrides", f"item_id {in_items} OR scope = ?", [ids, key], counts)
        schema.delete("groups", f"id {in_cards}", [groups], counts)
        schema.delete("items", f"id {in_items}", [ids], counts)
        schema.delete("documents", '"scope" = ?', [key], counts)
        if items:
            store.mark_changed()
        deleted = 0
        for start in range(0, len(stale), 500):
            chunk = stale[start : start + 500]
            deleted += db.execute(
                f"DELETE FROM text_vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk
            ).rowcount
        counts["text_vectors"] = deleted
    return counts


_SPACE_ITEMS = "SELECT {cols} FROM items i JOIN documents d ON d.source = i.source WHERE d.scope = ?"


def _forms(question: str, answer: str) -> set[str]:
    """The texts of an item that get embedded (analysis, quiz, retrieval index)."""
    question, answer = question or "", answer or ""
    return {question, answer, answer[:300], f"{question} {answer}".strip()} - {""}


def _space_vectors(store: Store, key: str, model_ids: list[str]) -> list[str]:
    """The ``text_vectors`` keys of the space's item texts that no item of another space uses."""
    rows = store.db.execute(_SPACE_ITEMS.format(cols="i.question, i.answer"), [key]).fetchall()
    texts = set().union(*(_forms(q, a) for q, a in rows)) if rows else set()
    if not texts:
        return []
    wanted = json.dumps(sorted(texts))
    others = store.db.execute(
        "SELECT i.question, i.answer FROM items i JOIN documents d ON d.source = i.source"
        " WHERE d.scope IS NOT ? AND (i.question IN (SELECT value FROM json_each(?))"
        " OR i.answer IN (SELECT value FROM json_each(?)) OR substr(i.answer, 1, 300) IN"
        " (SELECT value FROM json_each(?)))",
        [key, wanted, wanted, wanted],
    ).fetchall()
    kept = set().union(*(_forms(q, a) for q, a in others)) if others else set()
    return sorted({text_key(model, text) for model in model_ids for text in texts - kept})


class _Schema:
    """The file's tables, their columns and foreign keys, read once per deletion (inside its transaction)."""

    def __init__(self, store: Store):
        self.db = store.db
        self.tables = [
            r[0]
            for r in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()
        ]
        self._columns: dict[str, list[Any]] = {
            t: self.db.execute(f'PRAGMA table_info("{t}")').fetchall() for t in self.tables
        }
        # parent table -> (child table, child column, parent column) for each declared foreign key
        self.children: dict[str, list[tuple[str, str, str]]] = {}
        for child in self.tables:
            for fk in self.db.execute(f'PRAGMA foreign_key_list("{child}")').fetchall():
                parent, column, target = fk[2], fk[3], fk[4] or self._primary_key(fk[2])
                self.children.setdefault(parent, []).append((child, column, target))

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self._columns.get(table, [])}

    def _primary_key(self, table: str) -> str:
        keys = [row[1] for row in self._columns.get(table, []) if row[5]]
        return keys[0] if len(keys) == 1 else "rowid"

    def delete(self, table: str, where: str, params: list[Any], counts: dict[str, int]) -> None:
        """DELETE FROM ``table`` WHERE ``where``, after the rows of other tables that refer to those rows by
        a foreign key (recursively); adds what it deleted to ``counts`` (a missing table: 0)."""
        counts.setdefault(table, 0)
        if table not in self._columns:
            return
        for child, column, target in self.children.get(table, []):
            if child != table:
                self.delete(
                    child, f'"{column}" IN (SELECT "{target}" FROM "{table}" WHERE {where})', params, counts
                )
        counts[table] += self.db.execute(f'DELETE FROM "{table}" WHERE {where}', params).rowcount
