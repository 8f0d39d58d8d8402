"""The SQLite store (sqlite-utils): documents, items and duplicate groups, with migrations.

Ingest is one transaction: every file is parsed first, then all writes and the whole-base analysis
(duplicate groups, off-topic answers, best answers) happen inside a single ``BEGIN ... COMMIT``. A failure
anywhere leaves the database exactly as it was. The texts are embedded before the transaction begins, so
the write lock is held for milliseconds, not for the seconds the model needs (quiz answers and feedback
written meanwhile by the bot are not blocked).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from knowledge.analysis import Candidate, Embed, analyse
from knowledge.backup import AUTOMATIC, damaged_message
from knowledge.backup import backup as backup_database
from knowledge.errors import NotFound, StoreError
from knowledge.flags import static_flags
from knowledge.models import DISABLED, OFF_TOPIC, DocumentMeta, Item, ParsedDocument, normalize_question

DB_NAME = "tutor.db"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- migrations -------------------------------------------------------------------------------------------
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
    """Per-guild settings (answer channels, quiz defaults) and per-guild leaderboard opt-ins."""
    db["guild_settings"].create(
        {"guild_id": str, "answer_channels": str, "quiz_questions": int, "quiz_mode": str, "updated_at": str},
        pk="guild_id",
        defaults={"answer_channels": "[]"},
    )
    db["guild_leaderboard"].create(
        {"guild_id": str, "user_id": str, "joined_at": str}, pk=("guild_id", "user_id")
    )


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


# Later issues append here (users, reviews, feedback); never edit an applied migration.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_documents_items_groups", _m001_documents_items_groups),
    ("002_feedback", _m002_feedback),
    ("003_quiz", _m003_quiz),
    ("004_guild_settings", _m004_guild_settings),
    ("005_grade_contests", _m005_grade_contests),
]
GUILD_SETTING_KEYS = ("answer_channels", "quiz_questions", "quiz_mode")


def register_migration(name: str, fn: Callable[[sqlite_utils.Database], None]) -> None:
    """Let another package (quiz, feedback) add its tables; applied on the next open."""
    if name not in {n for n, _ in MIGRATIONS}:
        MIGRATIONS.append((name, fn))


@dataclass(frozen=True)
class IngestReport:
    documents: int
    added: int
    updated: int
    unchanged: int
    retired: int
    skipped_documents: int  # unchanged files that needed no work

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.retired)


class Store:
    """A knowledge store in one SQLite file (WAL mode)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a tutor database")
        if self.path.is_file() and self.path.stat().st_size == 0:  # SQLite would silently start afresh
            detail = "the file is empty (0 bytes): truncated or never written"
            raise StoreError(damaged_message(self.path, detail))
        conn = None
        try:
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA synchronous=NORMAL")
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]  # reads every page: ~1 ms per 200 KB
            if verdict != "ok":
                raise sqlite3.DatabaseError(verdict)
            self.migrate()
        except sqlite3.OperationalError as exc:
            if conn is not None:
                conn.close()
            if "malformed" in str(exc):
                raise StoreError(damaged_message(self.path, str(exc))) from exc
            raise StoreError(f"{self.path}: cannot open the tutor database ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(damaged_message(self.path, str(exc))) from exc

    @classmethod
    def open(cls, data_dir: str | Path) -> Store:
        return cls(Path(data_dir) / DB_NAME)

    def close(self) -> None:
        self.db.conn.close()

    # --- schema ---
    def migrate(self) -> list[str]:
        self.db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {row["name"] for row in self.db.query("SELECT name FROM _migrations")}
        if done and any(name not in done for name, _ in MIGRATIONS):  # a schema change: keep a way back
            self.backup(reason=AUTOMATIC)
        applied = []
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():
                fn(self.db)
                self.db.execute("INSERT INTO _migrations VALUES (?, ?)", [name, _now()])
            applied.append(name)
        return applied

    def backup(self, target: Path | None = None, reason: str = "manual") -> Path:
        """A consistent copy made while the store is in use (SQLite's online backup); see knowledge.backup."""
        return backup_database(self.db.conn, self.path, target, reason)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (the connection is in autocommit mode)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- ingest ---
    def ingest(
        self,
        documents: Sequence[ParsedDocument],
        embed: Embed,
        progress: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """Add or update documents atomically; entries gone from a document are retired, never deleted."""
        say = progress or (lambda _msg: None)
        counts = Counter()
        skipped = 0
        embed = self._embed_ahead(documents, embed)
        with self.transaction():
            for doc in documents:
                if self._unchanged(doc):
                    skipped += 1
                    counts["unchanged"] += len(doc.entries)
                    say(f"{doc.meta.source}: unchanged ({len(doc.entries)} items)")
                    continue
                self._upsert_document(doc)
                doc_counts = self._sync_items(doc)
                counts.update(doc_counts)
                say(
                    f"{doc.meta.source}: {len(doc.entries)} items "
                    f"(+{doc_counts['added']} ~{doc_counts['updated']} -{doc_counts['retired']})"
                )
            changed_documents = len(documents) - skipped
            if counts["added"] or counts["updated"] or counts["retired"] or changed_documents:
                # A chapter change alone regroups duplicates (same-chapter pairs use a lower bar).
                say("analysing duplicates and answers ...")
                self._reanalyse(embed)
        return IngestReport(
            documents=len(documents),
            added=counts["added"],
            updated=counts["updated"],
            unchanged=counts["unchanged"],
            retired=counts["retired"],
            skipped_documents=skipped,
        )

    def _embed_ahead(self, documents: Sequence[ParsedDocument], embed: Embed) -> Embed:
        """Embed, outside any transaction, every text the analysis will need if anything changed.

        Returns an ``embed`` that serves those vectors and embeds only what it has not seen (texts another
        writer added between this read and the transaction).
        """
        if all(self._unchanged(doc) for doc in documents):
            return embed
        replaced = {doc.meta.source for doc in documents}
        texts = {
            text
            for row in self.db.query("SELECT source, question, answer FROM items WHERE retired_at IS NULL")
            if row["source"] not in replaced
            for text in (row["question"], row["answer"])
        }
        texts |= {text for doc in documents for e in doc.entries for text in (e.question, e.answer)}
        texts = sorted(t for t in texts if t.strip())
        known = dict(zip(texts, embed(texts), strict=True)) if texts else {}

        def cached(batch: Sequence[str]) -> np.ndarray:
            missing = sorted({t for t in batch if t not in known})
            if missing:
                known.update(zip(missing, embed(missing), strict=True))
            return np.stack([known[t] for t in batch]) if batch else np.zeros((0, 0), dtype=np.float32)

        return cached

    def _unchanged(self, doc: ParsedDocument) -> bool:
        """Stored with the same content hash and all its entries still active: nothing to write."""
        row = self._document_row(doc.meta.source)
        active = self._items_of(doc.meta.source, include_retired=False)
        return bool(row) and row["content_hash"] == doc.content_hash and len(active) == len(doc.entries)

    def _document_row(self, source: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM documents WHERE source = ?", [source]))
        return rows[0] if rows else None

    def _upsert_document(self, doc: ParsedDocument) -> None:
        meta = doc.meta
        self.db.execute(
            "INSERT INTO documents (source, title, course, chapter, topics, layout, content_hash, ingested_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET title=excluded.title,"
            " course=excluded.course, chapter=excluded.chapter, topics=excluded.topics, layout=excluded.layout,"
            " content_hash=excluded.content_hash, ingested_at=excluded.ingested_at",
            [meta.source, meta.title, meta.course, meta.chapter, json.dumps(list(meta.topics)), meta.layout,
             doc.content_hash, _now()],
        )  # fmt: skip

    def _items_of(self, source: str, include_retired: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM items WHERE source = ?" + ("" if include_retired else " AND retired_at IS NULL")
        return list(self.db.query(sql + " ORDER BY id", [source]))

    def _sync_items(self, doc: ParsedDocument) -> Counter:
        """Match entries to existing rows (same question first, then same position) so ids stay stable."""
        counts: Counter = Counter()
        existing = self._items_of(doc.meta.source)
        by_key: dict[str, list[dict]] = {}
        for row in existing:
            by_key.setdefault(row["question_key"], []).append(row)
        claimed: set[int] = set()
        assignment: list[dict | None] = []
        for entry in doc.entries:
            candidates = [
                r for r in by_key.get(normalize_question(entry.question), []) if r["id"] not in claimed
            ]
            match = (
                min(candidates, key=lambda r: (r["retired_at"] is not None, r["id"])) if candidates else None
            )
            if match:
                claimed.add(match["id"])
            assignment.append(match)
        by_n = {r["n"]: r for r in existing if r["retired_at"] is None}
        for index, _entry in enumerate(doc.entries):
            if assignment[index] is None:
                row = by_n.get(index + 1)
                if row is not None and row["id"] not in claimed:
                    claimed.add(row["id"])
                    assignment[index] = row

        now = _now()
        for index, (entry, row) in enumerate(zip(doc.entries, assignment, strict=True)):
            n = index + 1
            values = [n, entry.line, entry.question, entry.answer, normalize_question(entry.question)]
            if row is None:
                self.db.execute(
                    "INSERT INTO items (source, n, line, question, answer, question_key, flags, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, '[]', ?, ?)",
                    [doc.meta.source, *values, now, now],
                )
                counts["added"] += 1
            elif (row["n"], row["line"], row["question"], row["answer"], row["retired_at"]) == (
                n, entry.line, entry.question, entry.answer, None
            ):  # fmt: skip
                counts["unchanged"] += 1
            else:
                self.db.execute(
                    "UPDATE items SET n=?, line=?, question=?, answer=?, question_key=?, retired_at=NULL,"
                    " updated_at=? WHERE id=?",
                    [*values, now, row["id"]],
                )
                counts["updated"] += 1
        for row in existing:
            if row["id"] not in claimed and row["retired_at"] is None:
                self.db.execute(
                    "UPDATE items SET retired_at=?, updated_at=? WHERE id=?", [now, now, row["id"]]
                )
                counts["retired"] += 1
        return counts

    def _reanalyse(self, embed: Embed) -> None:
        rows = list(
            self.db.query(
                "SELECT i.id, i.source, i.n, i.question, i.answer, i.disabled, d.course, d.chapter FROM items i"
                " JOIN documents d ON d.source = i.source WHERE i.retired_at IS NULL ORDER BY i.id"
            )
        )
        candidates = []
        for row in rows:
            flags = static_flags(row["question"], row["answer"]) | ({DISABLED} if row["disabled"] else set())
            chapter = f"{row['course']}/{row['chapter']}" if row["chapter"] else ""
            candidates.append(
                Candidate(
                    row["id"],
                    row["source"],
                    row["n"],
                    chapter,
                    row["question"],
                    row["answer"],
                    frozenset(flags),
                )
            )
        result = analyse(candidates, embed)
        sizes = Counter(result.groups.values())
        for cand in candidates:
            flags = set(cand.flags) | ({OFF_TOPIC} if cand.key in result.off_topic else set())
            self.db.execute(
                "UPDATE items SET flags=?, relevance=?, agreement=?, group_id=? WHERE id=?",
                [json.dumps(sorted(flags)), result.relevance[cand.key], result.agreement[cand.key],
                 result.groups[cand.key], cand.key],
            )  # fmt: skip
        self.db.execute("DELETE FROM groups")
        for group_id, best in result.best.items():
            self.db.execute(
                "INSERT INTO groups (id, best_item_id, size) VALUES (?, ?, ?)",
                [group_id, best, sizes[group_id]],
            )

    # --- admin ---
    def set_disabled(self, item_id: int, disabled: bool = True) -> Item:
        """Hide an item from answers and quizzes (or bring it back) without touching its source."""
        item = self.item(item_id)
        with self.transaction():
            flags = set(item.flags) - {DISABLED} | ({DISABLED} if disabled else set())
            self.db.execute(
                "UPDATE items SET disabled=?, flags=?, updated_at=? WHERE id=?",
                [int(disabled), json.dumps(sorted(flags)), _now(), item_id],
            )
        return self.item(item_id)

    # --- guild settings ---
    def guild_settings(self, guild_id: str | int) -> dict[str, Any]:
        """A guild's settings; a guild never configured gets no answer channels and no quiz defaults."""
        rows = list(self.db.query("SELECT * FROM guild_settings WHERE guild_id = ?", [str(guild_id)]))
        row = rows[0] if rows else {}
        return {
            "answer_channels": [int(c) for c in json.loads(row.get("answer_channels") or "[]")],
            "quiz_questions": row.get("quiz_questions"),
            "quiz_mode": row.get("quiz_mode"),
        }

    def all_guild_settings(self) -> dict[str, dict[str, Any]]:
        ids = [r["guild_id"] for r in self.db.query("SELECT guild_id FROM guild_settings")]
        return {guild_id: self.guild_settings(guild_id) for guild_id in ids}

    def update_guild_settings(self, guild_id: str | int, **values: Any) -> dict[str, Any]:
        """Set some of a guild's settings (``GUILD_SETTING_KEYS``); the others keep their value."""
        unknown = set(values) - set(GUILD_SETTING_KEYS)
        if unknown:
            raise StoreError(f"unknown guild settings {sorted(unknown)}")
        with self.transaction():
            merged = {**self.guild_settings(guild_id), **values}
            self.db.execute(
                "INSERT INTO guild_settings (guild_id, answer_channels, quiz_questions, quiz_mode, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(guild_id) DO UPDATE SET answer_channels=excluded.answer_channels,"
                " quiz_questions=excluded.quiz_questions, quiz_mode=excluded.quiz_mode, updated_at=excluded.updated_at",
                [str(guild_id), json.dumps(sorted({int(c) for c in merged["answer_channels"]})),
                 merged["quiz_questions"], merged["quiz_mode"], _now()],
            )  # fmt: skip
        return self.guild_settings(guild_id)

    def set_guild_leaderboard(self, guild_id: str | int, user_id: str | int, joined: bool) -> None:
        """Opt a user in to (or out of) one guild's leaderboard."""
        with self.transaction():
            if joined:
                self.db.execute(
                    "INSERT OR IGNORE INTO guild_leaderboard (guild_id, user_id, joined_at) VALUES (?, ?, ?)",
                    [str(guild_id), str(user_id), _now()],
                )
            else:
                self.db.execute(
                    "DELETE FROM guild_leaderboard WHERE guild_id = ? AND user_id = ?",
                    [str(guild_id), str(user_id)],
                )

    def guild_leaderboard_users(self, guild_id: str | int) -> list[str]:
        return [
            r["user_id"]
            for r in self.db.query(
                "SELECT user_id FROM guild_leaderboard WHERE guild_id = ?", [str(guild_id)]
            )
        ]

    # --- feedback ---
    def add_feedback(
        self,
        *,
        user_id: str,
        query: str,
        helpful: bool,
        status: str = "",
        item_id: int | None = None,
        answer: str | None = None,
        comment: str | None = None,
        guild_id: str | None = None,
        channel_id: str | None = None,
    ) -> int:
        """Record a user's verdict on an answer; returns the feedback id."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO feedback (created_at, user_id, guild_id, channel_id, query, status, item_id, answer,"
                " helpful, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_now(), str(user_id), guild_id, channel_id, query[:4000], status, item_id,
                 (answer or "")[:4000], int(helpful), (comment or None) and comment[:4000]],
            )  # fmt: skip
        return int(cursor.lastrowid)

    def add_feedback_comment(self, feedback_id: int, comment: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE feedback SET comment=? WHERE id=?", [comment[:4000], feedback_id])

    def feedback(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM feedback ORDER BY id"))

    # --- queries ---
    @staticmethod
    def _to_item(row: dict[str, Any]) -> Item:
        return Item(
            id=row["id"],
            source=row["source"],
            n=row["n"],
            question=row["question"],
            answer=row["answer"],
            flags=frozenset(json.loads(row["flags"] or "[]")),
            relevance=row["relevance"],
            group=row["group_id"],
            retired=row["retired_at"] is not None,
        )

    def items(self, include_retired: bool = False, source: str | None = None) -> list[Item]:
        where, params = [], []
        if not include_retired:
            where.append("retired_at IS NULL")
        if source is not None:
            where.append("source = ?")
            params.append(source)
        sql = (
            "SELECT * FROM items"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY source, n, id"
        )
        return [self._to_item(row) for row in self.db.query(sql, params)]

    def item(self, item_id: int) -> Item:
        rows = list(self.db.query("SELECT * FROM items WHERE id = ?", [item_id]))
        if not rows:
            raise NotFound(f"no item with id {item_id}")
        return self._to_item(rows[0])

    def group_members(self, group_id: int) -> list[Item]:
        rows = self.db.query(
            "SELECT * FROM items WHERE group_id = ? AND retired_at IS NULL ORDER BY source, n", [group_id]
        )
        return [self._to_item(row) for row in rows]

    def best_answers(self) -> dict[int, int]:
        """group id -> the item whose answer the group serves."""
        return {
            row["id"]: row["best_item_id"] for row in self.db.query("SELECT id, best_item_id FROM groups")
        }

    def documents(self) -> list[DocumentMeta]:
        return [
            DocumentMeta(
                source=row["source"],
                title=row["title"],
                course=row["course"] or "",
                chapter=row["chapter"] or "",
                topics=tuple(json.loads(row["topics"] or "[]")),
                layout=row["layout"] or "",
            )
            for row in self.db.query("SELECT * FROM documents ORDER BY source")
        ]

    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """A read-only view of one moment of the store: its own connection inside one read transaction.

        Work that reads the store in several queries (an index build: items, documents, then the content
        hash its manifest records) sees no ingest that commits meanwhile, so what it records matches what
        it read and a concurrent change is detected as stale afterwards.
        """
        view = Store.__new__(Store)
        view.path = self.path
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
        view.db = sqlite_utils.Database(conn)
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the snapshot starts here
            yield view
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    def content_hash(self) -> str:
        """A digest of everything retrieval depends on; the index manifest compares against it."""
        import hashlib

        digest = hashlib.sha256()
        for row in self.db.query(
            "SELECT id, source, n, question, answer, flags, group_id FROM items WHERE retired_at IS NULL ORDER BY id"
        ):
            digest.update(json.dumps(row, sort_keys=True).encode())
        for row in self.db.query("SELECT id, best_item_id FROM groups ORDER BY id"):
            digest.update(json.dumps(row, sort_keys=True).encode())
        for row in self.db.query("SELECT source, title, topics FROM documents ORDER BY source"):
            digest.update(json.dumps(row, sort_keys=True).encode())  # citations and topic suggestions
        return digest.hexdigest()

    def stats(self) -> dict[str, Any]:
        per_source: dict[str, int] = {}
        per_flag: Counter = Counter()
        for item in self.items():
            per_source[item.source] = per_source.get(item.source, 0) + 1
            per_flag.update(item.flags)
        retired = self.db.execute("SELECT COUNT(*) FROM items WHERE retired_at IS NOT NULL").fetchone()[0]
        multi = self.db.execute("SELECT COUNT(*) FROM groups WHERE size > 1").fetchone()[0]
        return {
            "items": sum(per_source.values()),
            "per_source": per_source,
            "per_flag": dict(sorted(per_flag.items())),
            "duplicate_groups": multi,
            "retired": retired,
        }
