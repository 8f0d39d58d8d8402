"""The store's schema, as migrations applied in order (``Store.migrate``); never edit an applied one.

Each is a function of the sqlite-utils ``Database``, run inside one transaction with its row in
``_migrations``; the store makes a backup before applying any to an existing base.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

from knowledge.loader import BUNDLED_ORIGIN, GUILD_ORIGIN, MANIFEST, SOURCES_DIR

GUILD_SOURCE = re.compile(r"guild_(\d+)\.jsonl")  # bot/exts/admin: a server's own cards (``/kb add``)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _m001_documents_items_groups(db: sqlite_utils.Database) -> None:
    db["documents"].create(
        {
            "source": str, "title": str, "course": str, "chapter": str, "topics": str, "layout": str,
            "content_hash": str, "path": str, "ingested_at": str,
        },
        pk="source",
    )  # fmt: skip
    db["items"].create(
        {
            "id": int, "source": str, "n": int, "line": int, "question": str, "answer": str,
            "question_key": str, "flags": str, "relevance": float, "agreement": float, "group_id": int,
            "disabled": int, "retired_at": str, "created_at": str, "updated_at": str,
        },
        pk="id",
        foreign_keys=[("source", "documents", "source")],
        defaults={"disabled": 0, "flags": "[]"},
        not_null={"source", "n", "question", "answer"},
    )  # fmt: skip
    db["items"].create_index(["source", "n"])
    db["items"].create_index(["question_key"])
    db["groups"].create({"id": int, "best_item_id": int, "size": int}, pk="id")


def _m002_feedback(db: sqlite_utils.Database) -> None:
    db["feedback"].create(
        {
            "id": int, "created_at": str, "user_id": str, "guild_id": str, "channel_id": str, "query": str,
            "status": str, "item_id": int, "answer": str, "helpful": int, "comment": str,
        },
        pk="id",
        not_null={"created_at", "user_id", "query", "helpful"},
    )  # fmt: skip
    db["feedback"].create_index(["item_id"])


def _m003_quiz(db: sqlite_utils.Database) -> None:
    """Quiz users, per-user FSRS card state (a card is a duplicate group), sessions, their slots, reviews."""
    db["quiz_users"].create(
        {"user_id": str, "display_name": str, "leaderboard": int, "created_at": str},
        pk="user_id",
        defaults={"leaderboard": 0},
    )
    db["quiz_cards"].create(
        {
            "user_id": str, "card_id": int, "state": int, "due": str, "stability": float, "difficulty": float,
            "reps": int, "lapses": int, "last_review": str, "fsrs": str, "updated_at": str,
        },
        pk=("user_id", "card_id"),
        not_null={"due", "fsrs"},
    )  # fmt: skip
    db["quiz_cards"].create_index(["user_id", "due"])
    db["quiz_sessions"].create(
        {
            "id": str, "user_id": str, "mode": str, "topic": str, "source": str, "review_only": int,
            "total": int, "position": int, "status": str, "meta": str, "created_at": str, "updated_at": str,
        },
        pk="id",
        not_null={"user_id", "status"},
    )  # fmt: skip
    db["quiz_sessions"].create_index(["user_id", "status"])
    db["quiz_slots"].create(
        {
            "session_id": str, "position": int, "card_id": int, "item_id": int, "mode": str, "is_new": int,
            "choices": str, "correct_choice": int, "phase": str, "asked_at": str, "hint_used": int,
            "answer": str, "grade": str, "card_before": str, "review_id": int,
        },
        pk=("session_id", "position"),
        foreign_keys=[("session_id", "quiz_sessions", "id")],
        defaults={"hint_used": 0, "phase": "pending"},
    )  # fmt: skip
    db["quiz_reviews"].create(
        {
            "id": int, "user_id": str, "card_id": int, "item_id": int, "session_id": str, "position": int,
            "mode": str, "rating": int, "rated_by": str, "verdict": str, "score": float, "answer": str,
            "reviewed_at": str, "duration_ms": int, "state_before": int, "state_after": int, "due_after": str,
            "stability_after": float, "difficulty_after": float,
        },
        pk="id",
        not_null={"user_id", "card_id", "rating", "reviewed_at"},
    )  # fmt: skip
    # One review per question slot: a double-clicked button or a retried request cannot log twice.
    db["quiz_reviews"].create_index(["session_id", "position"], unique=True)
    db["quiz_reviews"].create_index(["user_id", "reviewed_at"])
    # Embeddings of card texts (distractors, topics), so a restarted process does not re-encode the base.
    db["quiz_vectors"].create({"key": str, "vector": bytes}, pk="key")


def _m004_guild_settings(db: sqlite_utils.Database) -> None:
    """No-op: the per-server tables moved to ``bot.migrations`` (kept where they exist; new bases get them there)."""


def _m005_grade_contests(db: sqlite_utils.Database) -> None:
    """Grades a learner contested ("I think I was right"), and what an admin decided about each."""
    db["grade_contests"].create(
        {
            "id": int, "created_at": str, "user_id": str, "session_id": str, "position": int, "item_id": int,
            "source": str, "n": int, "answer": str, "verdict": str, "claimed": str, "status": str,
            "label": str, "decided_by": str, "decided_at": str,
        },
        pk="id",
        not_null={"created_at", "user_id", "session_id", "position", "answer", "verdict", "status"},
        defaults={"status": "pending"},
    )  # fmt: skip
    db["grade_contests"].create_index(["session_id", "position"], unique=True)
    db["grade_contests"].create_index(["status"])


def _m006_document_origin(db: sqlite_utils.Database) -> None:
    """A document's origin (with its name, its identity), a revision per publish and an "analysed" mark.

    Existing rows are backfilled: a source whose file is in ``knowledge/sources`` is bundled, a
    ``guild_<id>.jsonl`` is a server's cards; any other stays unknown (NULL) and the next ingest of that
    name records where it came from.
    """
    db.execute("ALTER TABLE documents ADD COLUMN origin TEXT")
    db.execute("ALTER TABLE documents ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE documents ADD COLUMN analysed INTEGER NOT NULL DEFAULT 1")
    for row in list(db.query("SELECT source FROM documents")):
        source = row["source"]
        if source and source != MANIFEST and (SOURCES_DIR / source).is_file():
            db.execute(
                "UPDATE documents SET origin = ?, path = ? WHERE source = ?",
                [BUNDLED_ORIGIN, str(SOURCES_DIR / source), source],
            )
        elif GUILD_SOURCE.fullmatch(source or ""):
            db.execute("UPDATE documents SET origin = ? WHERE source = ?", [GUILD_ORIGIN, source])


def _m007_text_vectors(db: sqlite_utils.Database) -> None:
    """The quiz's vector cache becomes every entry text's (ingest, index, quiz): see knowledge.vectors."""
    db.execute("ALTER TABLE quiz_vectors RENAME TO text_vectors")


def _m008_document_removed(db: sqlite_utils.Database) -> None:
    """When a document was removed (``tutor kb remove``): the bundled notes' re-ingest leaves it out."""
    db.execute("ALTER TABLE documents ADD COLUMN removed_at TEXT")


def _m009_scopes(db: sqlite_utils.Database) -> None:
    """Spaces (knowledge.scope): a document's space (NULL: shared), each space's overrides (hidden items,
    corrected answers, with provenance), what became of Not helpful feedback, and a quiz session's space.

    A server's cards (``guild_<id>.jsonl``) belong to that server's space. Every document is marked not
    analysed, so the next ingest regroups duplicates within each space: groups never cross spaces again.
    """
    db.execute("ALTER TABLE documents ADD COLUMN scope TEXT")
    for row in list(db.query("SELECT source FROM documents")):
        if found := GUILD_SOURCE.fullmatch(row["source"] or ""):
            db.execute("UPDATE documents SET scope = ? WHERE source = ?", [found[1], row["source"]])
    db.execute("CREATE INDEX documents_scope ON documents (scope)")
    # Groups that crossed spaces (a server's card grouped with a shared note) end now, not at the next
    # ingest: a space's cards leave their groups and a group served by one is dropped (its shared members
    # are then served their own answers), so nothing of a space is served elsewhere meanwhile.
    scoped = "SELECT i.id FROM items i JOIN documents d ON d.source = i.source WHERE d.scope IS NOT NULL"
    db.execute(f"DELETE FROM groups WHERE best_item_id IN ({scoped}) OR id IN ({scoped})")
    db.execute(f"UPDATE items SET group_id = NULL WHERE id IN ({scoped})")
    db.execute("UPDATE documents SET analysed = 0")
    db["overrides"].create(
        {
            "id": int, "scope": str, "item_id": int, "kind": str, "answer": str, "original": str,
            "author": str, "created_at": str, "note": str,
        },
        pk="id",
        foreign_keys=[("item_id", "items", "id")],
        not_null={"scope", "item_id", "kind", "author", "created_at"},
    )  # fmt: skip
    db["overrides"].create_index(["scope", "item_id", "kind"], unique=True)
    db.execute("ALTER TABLE feedback ADD COLUMN resolution TEXT")
    db.execute("ALTER TABLE feedback ADD COLUMN resolved_by TEXT")
    db.execute("ALTER TABLE feedback ADD COLUMN resolved_at TEXT")
    db.execute("ALTER TABLE feedback ADD COLUMN owner_resolution TEXT")  # the owners' review of shared items
    db["feedback"].create_index(["guild_id", "helpful"])
    db.execute("ALTER TABLE quiz_sessions ADD COLUMN scope TEXT")
    db.execute(  # a quiz begun in a server before now belongs to that server's space
        "UPDATE quiz_sessions SET scope = CAST(json_extract(meta, '$.guild_id') AS TEXT)"
        " WHERE json_valid(meta) AND json_extract(meta, '$.guild_id') IS NOT NULL"
    )


def _m010_content_version(db: sqlite_utils.Database) -> None:
    """A counter of changes to what is answered and quizzed (``Store.content_version``): one row to read."""
    db.execute("CREATE TABLE content_version (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)")
    db.execute("INSERT INTO content_version VALUES (1, 0)")


def _m011_question_keys(db: sqlite_utils.Database) -> None:
    """Question keys in any script (``models.question_key``): the old ones kept a-z and 0-9 only, so every
    question written in another script had the same empty key."""
    from knowledge.models import question_key

    rows = [(question_key(r["question"] or ""), r["id"]) for r in db.query("SELECT id, question FROM items")]
    db.conn.executemany("UPDATE items SET question_key = ? WHERE id = ?", rows)


# Later issues append here (users, reviews, feedback); never edit an applied migration.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_documents_items_groups", _m001_documents_items_groups),
    ("002_feedback", _m002_feedback),
    ("003_quiz", _m003_quiz),
    ("004_guild_settings", _m004_guild_settings),
    ("005_grade_contests", _m005_grade_contests),
    ("006_document_origin", _m006_document_origin),
    ("007_text_vectors", _m007_text_vectors),
    ("008_document_removed", _m008_document_removed),
    ("009_scopes", _m009_scopes),
    ("010_content_version", _m010_content_version),
    ("011_question_keys", _m011_question_keys),
]
