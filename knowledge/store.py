"""The SQLite store (sqlite-utils): documents, items and duplicate groups, with migrations.

Ingest parses every file first, then plans and analyses the whole base (duplicate groups, off-topic
answers, best answers) without any lock, and publishes in short set-based transactions: one per changed
document, each leaving that document whole, then one for the analysis (see ``Store.ingest``). A failure
before publishing (a parse error, a name clash, the model, the analysis) leaves the database exactly as it
was; the write lock is held for one bounded step at a time, so quiz answers and feedback written meanwhile
by the bot are not blocked.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from knowledge.analysis import Analysis, Candidate, Embed, analyse
from knowledge.backup import AUTOMATIC, InUse, create_if_absent, damaged_message, make_folder
from knowledge.backup import backup as backup_database
from knowledge.connection import SharedDatabase, check_once, safe_to_read_immutable, unwritable
from knowledge.errors import KnowledgeError, NameClash, NotFound, ReadOnlyStore, StoreError
from knowledge.files import connect_read_only
from knowledge.flags import static_flags
from knowledge.loader import (
    BUNDLED_ORIGIN,
    FILE_ORIGIN,
    GUILD_ORIGIN,
    PROGRAM_ORIGIN,
    SOURCES_DIR,
    describe_origin,
)
from knowledge.migrations import GUILD_SOURCE, MIGRATIONS
from knowledge.migrations import now as _now
from knowledge.models import (
    DISABLED,
    OFF_TOPIC,
    DocumentMeta,
    Entry,
    Item,
    ParsedDocument,
    question_key,
)

DB_NAME = "tutor.db"
STAGE_BATCH = 5000  # rows per write to an ingest's staging tables
PUBLISH_ROWS = 25_000  # rows one publish transaction writes (small documents share one; none is split)
# Between two publish transactions: SQLite's busy handler polls at most 100 ms apart, so a writer waiting
# for the lock (a quiz answer) gets its turn instead of waiting out every step of a long ingest.
PUBLISH_PAUSE = 0.1
_ATTEMPTS = 3  # plans of one ingest, when other writers keep changing the base under it


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


@dataclass(frozen=True)
class RemovalReport:
    """What :meth:`Store.remove_document` did: the document, its origin, and what stays stored."""

    source: str
    title: str
    origin: str | None  # ``bundled``, ``discord``, ``file:<path>``, ``program``; None: never recorded
    retired: int  # items retired (kept, with their ids)
    reviews: int  # quiz reviews of those items (kept)
    cards: int  # users' card states (FSRS) of the duplicate groups they were in (kept)


class IngestConflict(StoreError):
    """Other writers changed the base under an ingest every time it tried; what it published is whole."""


class _Conflict(Exception):
    """Another writer changed the knowledge base between an ingest's plan and a publish step."""


@dataclass
class _Plan:
    """What an ingest does to one document: ``write`` it, ``claim`` it (record a legacy row's origin), or
    nothing (``unchanged``). ``rows``: (item id, n, entry, add/update/same, disabled) per entry."""

    doc: ParsedDocument
    source: str
    origin: str
    path: str | None
    revision: int | None  # the stored document's revision when planned; None: not stored yet
    scope: str | None = None  # the document's space (knowledge.scope); None: shared
    previous_scope: str | None = None  # the space it was stored in, when it moves to another
    action: str = "write"
    rows: list[tuple[int, int, Entry, str, int]] = field(default_factory=list)
    retire: list[int] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


_STAGING_TABLES = (
    "DROP TABLE IF EXISTS temp.ingest_rows",
    "DROP TABLE IF EXISTS temp.ingest_retire",
    "DROP TABLE IF EXISTS temp.ingest_analysis",
    "DROP TABLE IF EXISTS temp.ingest_groups",
    "CREATE TEMP TABLE ingest_rows (id INTEGER PRIMARY KEY, source TEXT, op TEXT, n INTEGER, line INTEGER,"
    " question TEXT, answer TEXT, question_key TEXT)",
    "CREATE INDEX temp.ingest_rows_source ON ingest_rows (source, op)",
    "CREATE TEMP TABLE ingest_retire (id INTEGER PRIMARY KEY, source TEXT)",
    "CREATE INDEX temp.ingest_retire_source ON ingest_retire (source)",
    "CREATE TEMP TABLE ingest_analysis (id INTEGER PRIMARY KEY, flags_off TEXT, flags_on TEXT, relevance REAL,"
    " agreement REAL, group_id INTEGER)",
    "CREATE TEMP TABLE ingest_groups (id INTEGER PRIMARY KEY, best_item_id INTEGER, size INTEGER)",
    "DROP TABLE IF EXISTS temp.ingest_scopes",
    "CREATE TEMP TABLE ingest_scopes (scope TEXT PRIMARY KEY)",
)
_ITEMS = "SELECT i.*, d.scope AS scope FROM items i LEFT JOIN documents d ON d.source = i.source"
_TEMP_TABLES = ("ingest_rows", "ingest_retire", "ingest_analysis", "ingest_groups", "ingest_scopes")


def _publish_batches(plans: Sequence[_Plan]) -> list[list[_Plan]]:
    """The documents to publish, grouped so that a transaction writes about ``PUBLISH_ROWS`` rows at most;
    a document is never split (a bigger one, up to ``MAX_ENTRIES``, gets a transaction of its own)."""
    batches: list[list[_Plan]] = []
    size = 0
    for plan in plans:
        if plan.action == "unchanged":
            continue
        weight = 1 + plan.counts["added"] + plan.counts["updated"] + plan.counts["retired"]
        if not batches or size + weight > PUBLISH_ROWS:
            batches.append([])
            size = 0
        batches[-1].append(plan)
        size += weight
    return batches


def _analysis_rows(candidates: Sequence[Candidate], result: Analysis) -> Iterator[tuple]:
    """Per item: its flags without and with ``disabled`` (chosen at publish time, so a concurrent
    ``set_disabled`` is kept), relevance, agreement and group."""
    for cand in candidates:
        flags = set(cand.flags) - {DISABLED} | ({OFF_TOPIC} if cand.key in result.off_topic else set())
        yield (
            cand.key,
            json.dumps(sorted(flags)),
            json.dumps(sorted(flags | {DISABLED})),
            result.relevance[cand.key],
            result.agreement[cand.key],
            result.groups[cand.key],
        )


@dataclass(frozen=True)
class _Candidates:
    """The items an ingest analyses: every live item of the spaces it touches, and the space of each."""

    items: list[Candidate]
    scope_of: dict[int, str]  # item id -> space key ('' shared)
    scopes: frozenset[str]


def _analyse_by_scope(candidates: _Candidates, embed: Embed) -> Analysis:
    """The analysis run within each space on its own: a space's cards never join a group of another space
    or of the shared notes (whose best answer would then leak, or be replaced), and a card added in one
    server costs an analysis of that server's cards only."""
    per_scope: dict[str, list[Candidate]] = {}
    for cand in candidates.items:
        per_scope.setdefault(candidates.scope_of[cand.key], []).append(cand)
    merged = Analysis({}, {}, frozenset(), {}, {})
    off_topic: set[int] = set()
    for scope in sorted(per_scope):
        part = analyse(per_scope[scope], embed)
        merged.relevance.update(part.relevance)
        merged.agreement.update(part.agreement)
        merged.groups.update(part.groups)
        merged.best.update(part.best)
        off_topic |= part.off_topic
    return Analysis(merged.relevance, merged.agreement, frozenset(off_topic), merged.groups, merged.best)


def _deduplicated(embed: Embed) -> Embed:
    """``embed`` that encodes each distinct text of a batch once (decks repeat questions and answers)."""

    def run(texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        index: dict[str, int] = {}
        inverse = [index.setdefault(text, len(index)) for text in texts]
        if len(index) == len(texts):
            return embed(texts)
        return np.asarray(embed(list(index)))[np.asarray(inverse, dtype=np.int64)]

    return run


class Store:
    """A knowledge store in one SQLite file (WAL mode).

    A store whose file or folder cannot be written (a read-only mount, another user's files) opens
    read-only: questions are still answered from it, and every write raises ``ReadOnlyStore`` saying why.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.read_only: str | None = None  # why the store cannot be written, when it cannot
        self._immutable = False  # read without a WAL index: nothing can write the file meanwhile
        self.lock = threading.RLock()  # the connection's: its transactions and reads, one thread at a time
        self._depth = 0  # transactions of the lock's thread open on this connection
        make_folder(self.path.parent, "the data folder", "set TUTOR_DATA_DIR to a folder you can write")
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a tutor database")
        if self.path.is_file() and self.path.stat().st_size == 0:  # SQLite would silently start afresh
            detail = "the file is empty (0 bytes): truncated or never written"
            raise StoreError(damaged_message(self.path, detail))
        self.read_only = unwritable(self.path)
        if self.read_only is not None:
            self._open_read_only()
            return
        self._in_use = InUse(self.path)
        conn = None
        try:
            create_if_absent(self.path)  # so that a 0-byte file always means damage
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self.db = SharedDatabase(conn, self.lock)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA synchronous=NORMAL")
            check_once(conn, self.path)
            self.migrate()
        except (sqlite3.DatabaseError, OSError) as exc:
            if conn is not None:
                conn.close()
            self._in_use.release()
            if isinstance(exc, sqlite3.OperationalError | OSError) and "malformed" not in str(exc):
                raise StoreError(f"{self.path}: cannot open the tutor database ({exc})") from exc
            raise StoreError(damaged_message(self.path, str(exc))) from exc

    def _open_read_only(self) -> None:
        """Read the file without creating anything beside it (no lock file, no WAL index, no migration)."""
        self._in_use = InUse(self.path, shared_optional=True)
        conn = None
        try:
            try:
                conn = connect_read_only(self.path, check_same_thread=False, isolation_level=None, timeout=30)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError as exc:
                # A WAL database whose index (-shm) cannot be created beside it. Read as an immutable file
                # only where no one else can be writing (a read-only file system) and no committed
                # transaction waits in a -wal (immutable reading ignores it); otherwise say so, never guess.
                if conn is not None:
                    conn.close()
                    conn = None
                if not safe_to_read_immutable(self.path):
                    raise ReadOnlyStore(
                        f"{self.path} can only be read ({self.read_only}), and SQLite cannot read it safely "
                        f"from here ({exc}): its owner may be writing it. Open it once as its owner (any "
                        "tutor command) or copy tutor.db to a folder you can write and point TUTOR_DATA_DIR "
                        "there."
                    ) from None
                self._immutable = True
                conn = connect_read_only(
                    self.path, check_same_thread=False, isolation_level=None, timeout=30, immutable=True
                )
            self.db = SharedDatabase(conn, self.lock)
            check_once(conn, self.path)
            self.db.execute("PRAGMA query_only=ON")
            pending = self.pending_migrations()
        except (sqlite3.DatabaseError, OSError, ReadOnlyStore) as exc:
            if conn is not None:
                conn.close()
            self._in_use.release()
            if isinstance(exc, ReadOnlyStore):
                raise
            # Never the damaged-file advice from here: restoring a backup over a file another user is
            # writing would lose their newer work. Its owner's next open checks it properly.
            raise StoreError(
                f"{self.path}: cannot read the tutor database ({exc}); it can only be read here "
                f"({self.read_only}), so nothing was changed. If it stays unreadable, its owner can check it "
                "with any tutor command."
            ) from exc
        if pending:
            self.close()
            raise ReadOnlyStore(
                f"{self.path} was written by an older version of the tutor and must be upgraded, which needs "
                f"write access, but {self.read_only}. Make it writable and run any tutor command once."
            )

    def pending_migrations(self) -> list[str]:
        if not self.db["_migrations"].exists():
            return [name for name, _ in MIGRATIONS]
        done = {row["name"] for row in self.db.query("SELECT name FROM _migrations")}
        return [name for name, _ in MIGRATIONS if name not in done]

    @classmethod
    def open(cls, data_dir: str | Path) -> Store:
        return cls(Path(data_dir) / DB_NAME)

    def close(self) -> None:
        with self.lock:  # not under another thread's transaction or read
            self.db.conn.close()
        self._in_use.release()

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
            with self.transaction():  # the write lock: a process opening the same file meanwhile waits here
                if self.db.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone():
                    continue  # applied by that other process while we read `done`
                fn(self.db)
                self.db.execute("INSERT INTO _migrations VALUES (?, ?)", [name, _now()])
            applied.append(name)
        return applied

    def backup(self, target: Path | None = None, reason: str = "manual") -> Path:
        """A consistent copy made while the store is in use (SQLite's online backup); see knowledge.backup."""
        return backup_database(self.db.conn, self.path, target, reason)

    @contextmanager
    def _read_snapshot(self) -> Iterator[None]:
        """BEGIN (deferred) ... COMMIT: several reads that see one moment of the base; takes no write lock.
        Callers hold ``self.lock``, so no other thread's statement lands inside it."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def check_writable(self) -> None:
        """Raise ``ReadOnlyStore`` (saying why) before a write to a store opened read-only."""
        if self.read_only is not None:
            raise ReadOnlyStore(f"{self.path} can only be read: {self.read_only}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (the connection is in autocommit mode).

        One connection is shared by the threads of a process (the bot's feedback, the vector cache during a
        reload): a lock keeps their transactions apart, and a transaction opened inside one of the same
        thread joins it (commits or rolls back with it) instead of failing.
        """
        self.check_writable()
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            self.db.execute("COMMIT")

    # --- ingest ---
    def ingest(
        self,
        documents: Sequence[ParsedDocument],
        embed: Embed,
        progress: Callable[[str], None] | None = None,
        *,
        replace: bool = False,
    ) -> IngestReport:
        """Add or update documents; entries gone from a document are retired, never deleted.

        A document is identified by its origin and its name (``ParsedDocument.origin``; a document built in
        code without one is a server's cards when named ``guild_<id>.jsonl``, as ``/kb add`` names them, else
        ``program``). A name already stored from a
        different origin raises :class:`NameClash` naming both, unless ``replace``: then the new document takes
        the name over, its entries matched to the old ones by question only (never by position, so no item
        and its quiz history becomes a different question) and the rest retired.

        **Transactions and what a reader sees.** Nothing holds the write lock for longer than one bounded,
        set-based step, whatever the size of the ingest:

        1. *Plan* (one read snapshot, no lock): match entries to stored items, allocate ids for new ones.
        2. *Analyse* (no transaction): embed and compute duplicate groups, flags and best answers for the
           knowledge base as it will be. A failure here (model, analysis) changes nothing.
        3. *Stage* (no lock on the shared database): the rows to write go to this connection's TEMP tables
           in batches of ``STAGE_BATCH``.
        4. *Publish* the changed documents, each whole inside one short transaction (small documents share
           one, up to ``PUBLISH_ROWS`` rows; a document is never split): its rows are copied in from the
           staging tables, complete with their analysis (flags, group, relevance), and the removed ones
           retired, so a reader sees each document entirely as it was or entirely as it is now, never half
           written. ``PUBLISH_PAUSE`` between transactions lets a writer waiting for the lock in.
        5. One last transaction applies the rest of the analysis: the rows of other documents whose group or
           flags changed, and the ``groups`` table (only what changed).

        Between steps 4 and 5 a reader can see new items whose groups are not in ``groups`` yet and old
        items still pointing at their old group: every reader already treats a missing best answer as "the
        item itself", and ids stay valid. A publish that finds another writer changed the base since the plan
        (a document's revision, or new item ids) stops and the ingest plans again (``_ATTEMPTS`` times); a
        crash between steps leaves every published document whole, marked not analysed, and the next ingest
        re-runs the analysis even when no file changed. The entry bound per file (``MAX_ENTRIES``) bounds
        each step; the longest, publishing a 100,000-entry document, takes about 0.3 s
        (``bench/ingest_scale.py``).
        """
        self.check_writable()
        say = progress or (lambda _msg: None)
        documents = self._distinct(documents)
        reported: dict[str, Counter] = {}  # per document, what its publish did (kept across attempts)
        skipped: set[str] = set()
        try:
            self._ingest_attempts(documents, replace, embed, reported, skipped, say)
        except KnowledgeError as exc:  # an error of a later attempt may follow a publish: say which it is
            exc.published = tuple(sorted(source for source in reported if source not in skipped))
            raise
        counts: Counter = sum(reported.values(), Counter())
        return IngestReport(
            documents=len(documents),
            added=counts["added"],
            updated=counts["updated"],
            unchanged=counts["unchanged"],
            retired=counts["retired"],
            skipped_documents=len(skipped),
        )

    def _ingest_attempts(self, documents, replace, embed, reported, skipped, say) -> None:
        for _attempt in range(_ATTEMPTS):
            plans, revisions, max_id, candidates = self._plan(documents, replace)
            for plan in plans:
                if plan.action != "write" and plan.source not in reported:
                    skipped.add(plan.source)
                    reported[plan.source] = plan.counts
                    say(f"{plan.source}: unchanged ({len(plan.doc.entries)} items)")
            if candidates is None and all(p.action == "unchanged" for p in plans):
                break
            try:
                self._publish(plans, revisions, max_id, candidates, embed, reported, skipped, say)
            except _Conflict:
                continue
            break
        else:
            raise IngestConflict(
                f"{self.path}: another writer kept changing the knowledge base during this ingest "
                f"({_ATTEMPTS} tries); run the ingest again"
            )

    def _origin(self, doc: ParsedDocument) -> str:
        if doc.origin:
            return doc.origin
        return GUILD_ORIGIN if GUILD_SOURCE.fullmatch(doc.meta.source) else PROGRAM_ORIGIN

    def _scope(self, doc: ParsedDocument) -> str | None:
        """The document's space: as built, or a server's cards by their name (``guild_<id>.jsonl``)."""
        if doc.scope is not None:
            return doc.scope
        found = GUILD_SOURCE.fullmatch(doc.meta.source)
        if found and self._origin(doc) == GUILD_ORIGIN:
            return found[1]
        return None

    def _distinct(self, documents: Sequence[ParsedDocument]) -> list[ParsedDocument]:
        """The documents of one ingest, each once: the same file twice is read once, two files sharing a
        name are a :class:`NameClash` (whatever ``replace`` says: neither is in the base yet)."""
        seen: dict[str, ParsedDocument] = {}
        out = []
        for doc in documents:
            first = seen.get(doc.meta.source)
            if first is None:
                seen[doc.meta.source] = doc
                out.append(doc)
                continue
            if self._origin(first) == self._origin(doc) and first.content_hash == doc.content_hash:
                continue
            a = describe_origin(self._origin(first), doc.meta.source)
            b = describe_origin(self._origin(doc), doc.meta.source)
            raise NameClash(
                doc.meta.source,
                a,
                b,
                f"{doc.meta.source}: two documents of this ingest have that name: {a} and {b}. Answers cite "
                "documents by name, so one would replace the other; rename one of them.",
            )
        return out

    def _plan(
        self, documents: Sequence[ParsedDocument], replace: bool
    ) -> tuple[list[_Plan], dict[str, int], int, _Candidates | None]:
        """Read, in one snapshot, what each document changes; no write. Raises :class:`NameClash`.

        Returns the plans, every document's revision, the largest item id, and the items to analyse (None
        when nothing changed and no earlier ingest left the analysis undone): those of the spaces whose
        documents change or were left unanalysed, as duplicates are only grouped within one space.
        """
        with self.lock, self._read_snapshot():  # deferred: one read snapshot, no SQLite lock
            revisions = {
                r["source"]: r["revision"] for r in self.db.query("SELECT source, revision FROM documents")
            }
            max_id = self._max_id()
            stale = {
                r[0]
                for r in self.db.execute(
                    "SELECT DISTINCT COALESCE(scope, '') FROM documents WHERE analysed = 0"
                )
            }
            plans = []
            next_id = max_id + 1
            for doc in documents:
                plan = self._plan_document(doc, replace, next_id)
                next_id += plan.counts["added"]
                plans.append(plan)
            scopes = stale | {
                s
                for p in plans
                if p.action == "write"
                for s in (p.scope or "", p.previous_scope)
                if s is not None
            }
            candidates = self._candidates(plans, scopes) if scopes else None
        return plans, revisions, max_id, candidates

    def _plan_document(self, doc: ParsedDocument, replace: bool, next_id: int) -> _Plan:
        """Match entries to stored rows so ids stay stable: same question first, then, within the same file,
        same position (an edited question). A document stored before origins were recorded is adopted by a
        file of its name, but matched by question only: it may be a different file."""
        source, origin = doc.meta.source, self._origin(doc)
        row = self._document_row(source)
        stored_origin = row["origin"] if row else None
        replacing = stored_origin is not None and stored_origin != origin
        if replacing and not replace:
            old, new = describe_origin(stored_origin, source), describe_origin(origin, source)
            raise NameClash(
                source,
                old,
                new,
                f"{source}: {new} has the same name as {old}, which is already in the knowledge base. "
                "Answers cite documents by name, so it would replace that one. Rename the file, or pass "
                "--replace (tutor kb ingest --replace) to replace it: entries with the same question keep "
                "their id and quiz history, the others are retired.",
            )
        path = origin[len(FILE_ORIGIN) :] if origin.startswith(FILE_ORIGIN) else None
        if origin == BUNDLED_ORIGIN:
            path = str(SOURCES_DIR / source)
        scope = self._scope(doc)
        plan = _Plan(doc, source, origin, path, row["revision"] if row else None, scope)
        existing = self._items_of(source)
        active = sum(1 for r in existing if r["retired_at"] is None)
        moved = row is not None and row["scope"] != scope
        if moved:
            plan.previous_scope = row["scope"] or ""
        if (
            row
            and not replacing
            and not moved
            and row["content_hash"] == doc.content_hash
            and active == len(doc.entries)
        ):
            plan.action = "unchanged" if stored_origin == origin else "claim"  # claim: record a legacy origin
            plan.counts["unchanged"] = len(doc.entries)
            return plan

        by_key: dict[str, list[dict]] = {}
        for r in existing:
            by_key.setdefault(r["question_key"], []).append(r)
        claimed: set[int] = set()
        assignment: list[dict | None] = []
        # An entry naming the live item it edits (``Entry.item_id``: a server's card edited in place) keeps
        # that id whatever its question now says; the others are matched by question.
        live_by_id = {r["id"]: r for r in existing if r["retired_at"] is None}
        named: dict[int, dict] = {}  # entry index -> the item it names (the first entry naming it)
        for index, entry in enumerate(doc.entries):
            row = live_by_id.get(entry.item_id) if entry.item_id is not None else None
            if row is not None and row["id"] not in claimed:
                claimed.add(row["id"])
                named[index] = row
        for index, entry in enumerate(doc.entries):
            if index in named:
                assignment.append(named[index])
                continue
            candidates = [r for r in by_key.get(question_key(entry.question), []) if r["id"] not in claimed]
            match = (
                min(candidates, key=lambda r: (r["retired_at"] is not None, r["id"])) if candidates else None
            )
            if match:
                claimed.add(match["id"])
            assignment.append(match)
        if stored_origin == origin and scope is None:  # entry n of another file, or of a file whose
            # origin was never recorded (ingested before origins), is a different question: only the same
            # file's moves. A space's deck is matched by question (and named ids) only: its admins replace
            # cards wholesale (an import), and a new question taking an old card's id would take its
            # history, hides and corrections with it.
            by_n = {r["n"]: r for r in existing if r["retired_at"] is None}
            for index in range(len(doc.entries)):
                if assignment[index] is None:
                    r = by_n.get(index + 1)
                    if r is not None and r["id"] not in claimed:
                        claimed.add(r["id"])
                        assignment[index] = r

        plan.action = "write"
        for index, (entry, r) in enumerate(zip(doc.entries, assignment, strict=True)):
            n = index + 1
            if r is None:
                plan.rows.append((next_id, n, entry, "add", 0))
                next_id += 1
                plan.counts["added"] += 1
            elif (r["n"], r["line"], r["question"], r["answer"], r["retired_at"]) == (
                n, entry.line, entry.question, entry.answer, None
            ):  # fmt: skip
                plan.rows.append((r["id"], n, entry, "same", r["disabled"]))
                plan.counts["unchanged"] += 1
            else:
                plan.rows.append((r["id"], n, entry, "update", r["disabled"]))
                plan.counts["updated"] += 1
        plan.retire = [r["id"] for r in existing if r["id"] not in claimed and r["retired_at"] is None]
        plan.counts["retired"] = len(plan.retire)
        return plan

    def _document_row(self, source: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM documents WHERE source = ?", [source]))
        return rows[0] if rows else None

    def _items_of(self, source: str, include_retired: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM items WHERE source = ?" + ("" if include_retired else " AND retired_at IS NULL")
        return list(self.db.query(sql + " ORDER BY id", [source]))

    def _candidates(self, plans: Sequence[_Plan], scopes: set[str]) -> _Candidates:
        """Every item of ``scopes`` (space keys, '' shared) live once the plans are published, in id order,
        as the analysis sees it, with the space of each."""
        written = {p.source: p for p in plans if p.action == "write"}
        candidates = []
        scope_of: dict[int, str] = {}
        marks = ", ".join("?" * len(scopes))
        for row in self.db.query(
            "SELECT i.id, i.source, i.n, i.question, i.answer, i.disabled, d.course, d.chapter,"
            " COALESCE(d.scope, '') AS scope FROM items i JOIN documents d ON d.source = i.source"
            f" WHERE i.retired_at IS NULL AND COALESCE(d.scope, '') IN ({marks}) ORDER BY i.id",
            sorted(scopes),
        ):
            if row["source"] in written:
                continue
            scope_of[row["id"]] = row["scope"]
            chapter = f"{row['course']}/{row['chapter']}" if row["chapter"] else ""
            flags = static_flags(row["question"], row["answer"]) | ({DISABLED} if row["disabled"] else set())
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
        for plan in written.values():
            meta = plan.doc.meta
            chapter = f"{meta.course}/{meta.chapter}" if meta.chapter else ""
            for item_id, n, entry, _op, disabled in plan.rows:
                scope_of[item_id] = plan.scope or ""
                flags = static_flags(entry.question, entry.answer) | ({DISABLED} if disabled else set())
                candidates.append(
                    Candidate(
                        item_id, plan.source, n, chapter, entry.question, entry.answer, frozenset(flags)
                    )
                )
        candidates.sort(key=lambda c: c.key)
        return _Candidates(candidates, scope_of, frozenset(scopes))

    def _stage(self, table: str, columns: int, rows: Iterable[Sequence[Any]]) -> None:
        """Fill a TEMP table in batches; TEMP tables belong to this connection and lock nothing shared."""
        sql = f"INSERT INTO temp.{table} VALUES ({', '.join('?' * columns)})"
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= STAGE_BATCH:
                self._stage_batch(sql, batch)
                batch = []
        if batch:
            self._stage_batch(sql, batch)

    def _stage_batch(self, sql: str, batch: list[Sequence[Any]]) -> None:
        with self.lock:  # deferred, and only the temp database is written: no SQLite lock on the store
            self.db.execute("BEGIN")
            try:
                self.db.conn.executemany(sql, batch)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _publish(
        self,
        plans: Sequence[_Plan],
        revisions: dict[str, int],
        max_id: int,
        candidates: _Candidates | None,
        embed: Embed,
        reported: dict[str, Counter],
        skipped: set[str],
        say: Callable[[str], None],
    ) -> None:
        """Analyse, stage, then publish document by document and the analysis last (see :meth:`ingest`)."""
        writes = [p for p in plans if p.action == "write"]
        result = None
        published = False
        if candidates is not None:
            say("analysing duplicates and answers ...")
            result = _analyse_by_scope(candidates, _deduplicated(embed))
        for sql in _STAGING_TABLES:
            self.db.execute(sql)
        try:
            self._stage(
                "ingest_rows",
                8,
                (
                    (item_id, p.source, op, n, e.line, e.question, e.answer, question_key(e.question))
                    for p in writes
                    for item_id, n, e, op, _disabled in p.rows
                    if op != "same"
                ),
            )
            self._stage("ingest_retire", 2, ((item_id, p.source) for p in writes for item_id in p.retire))
            if result is not None:
                self._stage(
                    "ingest_analysis", 6, _analysis_rows(candidates.items if candidates else [], result)
                )
                self._stage(
                    "ingest_scopes",
                    1,
                    ((scope,) for scope in sorted(candidates.scopes if candidates else ())),
                )
                sizes = Counter(result.groups.values())
                self._stage("ingest_groups", 3, ((g, b, sizes[g]) for g, b in result.best.items()))
            candidates = None
            expected = dict(revisions)
            for step, batch in enumerate(_publish_batches(plans)):
                if step:
                    time.sleep(PUBLISH_PAUSE)
                with self.transaction():
                    self.mark_changed()
                    for plan in batch:
                        self._check(plan.source, plan.revision, max_id)
                        self._publish_document(plan)
                        max_id += plan.counts["added"]
                for plan in batch:
                    expected[plan.source] = (plan.revision or 0) + 1
                    if plan.action == "write":
                        reported[plan.source] = plan.counts
                        skipped.discard(plan.source)
                        say(
                            f"{plan.source}: {len(plan.doc.entries)} items "
                            f"(+{plan.counts['added']} ~{plan.counts['updated']} -{plan.counts['retired']})"
                        )
                published = True
            if result is not None:
                if published:
                    time.sleep(PUBLISH_PAUSE)
                with self.transaction():
                    current = {
                        r["source"]: r["revision"]
                        for r in self.db.query("SELECT source, revision FROM documents")
                    }
                    if current != expected or self._max_id() != max_id:
                        raise _Conflict
                    self._publish_analysis()
        finally:
            for table in _TEMP_TABLES:
                self.db.execute(f"DROP TABLE IF EXISTS temp.{table}")

    def _max_id(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(id), 0) FROM items").fetchone()[0]

    def _check(self, source: str, revision: int | None, max_id: int) -> None:
        """Inside the publish transaction: the document and the ids are as planned, else :class:`_Conflict`."""
        row = self.db.execute("SELECT revision FROM documents WHERE source = ?", [source]).fetchone()
        if (row[0] if row else None) != revision or self._max_id() != max_id:
            raise _Conflict

    def _publish_document(self, plan: _Plan) -> None:
        """One document, whole: its row, its new and changed items (with their analysis), its retirements."""
        meta, now = plan.doc.meta, _now()
        write = plan.action == "write"
        self.db.execute(
            "INSERT INTO documents (source, title, course, chapter, topics, layout, content_hash, path, ingested_at,"
            " origin, revision, analysed, removed_at, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?)"
            " ON CONFLICT(source) DO UPDATE"
            " SET title=excluded.title, course=excluded.course, chapter=excluded.chapter, topics=excluded.topics,"
            " layout=excluded.layout, content_hash=excluded.content_hash, path=excluded.path,"
            " ingested_at=excluded.ingested_at, origin=excluded.origin, revision=documents.revision + 1,"
            " analysed=CASE WHEN ? THEN 0 ELSE documents.analysed END, removed_at=excluded.removed_at,"
            " scope=excluded.scope",
            [plan.source, meta.title, meta.course, meta.chapter, json.dumps(list(meta.topics)), meta.layout,
             plan.doc.content_hash, plan.path, now, plan.origin, None if plan.doc.entries else now, plan.scope,
             int(write)],
        )  # fmt: skip
        if not write:
            return
        if plan.scope is not None:  # a space's own cards: its overrides follow what the card says
            self._drop_stale_overrides(plan)
        self.db.execute(
            "INSERT INTO items (id, source, n, line, question, answer, question_key, flags, relevance, agreement,"
            " group_id, created_at, updated_at) SELECT s.id, s.source, s.n, s.line, s.question, s.answer,"
            " s.question_key, COALESCE(a.flags_off, '[]'), a.relevance, a.agreement, a.group_id, ?, ?"
            " FROM temp.ingest_rows s LEFT JOIN temp.ingest_analysis a ON a.id = s.id"
            " WHERE s.source = ? AND s.op = 'add' ORDER BY s.id",
            [now, now, plan.source],
        )
        self.db.execute(
            "UPDATE items SET n=s.n, line=s.line, question=s.question, answer=s.answer, question_key=s.question_key,"
            " retired_at=NULL, updated_at=?, flags=COALESCE(CASE WHEN items.disabled THEN s.flags_on"
            " ELSE s.flags_off END, items.flags), relevance=s.relevance, agreement=s.agreement, group_id=s.group_id"
            " FROM (SELECT r.*, a.flags_off, a.flags_on, a.relevance, a.agreement, a.group_id"
            " FROM temp.ingest_rows r LEFT JOIN temp.ingest_analysis a ON a.id = r.id"
            " WHERE r.source = ? AND r.op = 'update') AS s WHERE items.id = s.id",
            [now, plan.source],
        )  # fmt: skip
        self.db.execute(
            "UPDATE items SET retired_at=?, updated_at=? WHERE id IN"
            " (SELECT id FROM temp.ingest_retire WHERE source = ?)",
            [now, now, plan.source],
        )

    def _drop_stale_overrides(self, plan: _Plan) -> None:
        """Before a space's deck is written: its overrides of cards being retired go (a card added again
        later starts clean), and so do its corrections of cards whose question or answer the admins
        changed (the new text is what they want served)."""
        self.db.execute(
            "DELETE FROM overrides WHERE scope = ? AND item_id IN (SELECT id FROM temp.ingest_retire WHERE source = ?)",
            [plan.scope, plan.source],
        )
        self.db.execute(
            "DELETE FROM overrides WHERE scope = ? AND kind = 'correct' AND item_id IN (SELECT r.id"
            " FROM temp.ingest_rows r JOIN items i ON i.id = r.id WHERE r.source = ? AND r.op = 'update'"
            " AND (i.question IS NOT r.question OR i.answer IS NOT r.answer))",
            [plan.scope, plan.source],
        )

    def _publish_analysis(self) -> None:
        """Groups, flags and scores of the analysed spaces' live items, writing only what changed; then mark
        those spaces' documents analysed. Another space's groups are left as they are."""
        self.mark_changed()
        self.db.execute(
            "UPDATE items SET flags=s.flags, relevance=s.relevance, agreement=s.agreement, group_id=s.group_id"
            " FROM (SELECT a.id, CASE WHEN i.disabled THEN a.flags_on ELSE a.flags_off END AS flags, a.relevance,"
            " a.agreement, a.group_id FROM temp.ingest_analysis a JOIN items i ON i.id = a.id) AS s"
            " WHERE items.id = s.id AND (items.flags IS NOT s.flags OR items.relevance IS NOT s.relevance"
            " OR items.agreement IS NOT s.agreement OR items.group_id IS NOT s.group_id)"
        )  # fmt: skip
        self.db.execute(
            "DELETE FROM groups WHERE id NOT IN (SELECT id FROM temp.ingest_groups) AND id IN (SELECT i.id"
            " FROM items i JOIN documents d ON d.source = i.source"
            " WHERE COALESCE(d.scope, '') IN (SELECT scope FROM temp.ingest_scopes))"
        )
        self.db.execute(
            "INSERT OR REPLACE INTO groups (id, best_item_id, size) SELECT g.id, g.best_item_id, g.size"
            " FROM temp.ingest_groups g LEFT JOIN groups o ON o.id = g.id"
            " WHERE o.id IS NULL OR o.best_item_id IS NOT g.best_item_id OR o.size IS NOT g.size"
        )
        self.db.execute(
            "UPDATE documents SET analysed = 1 WHERE analysed = 0"
            " AND COALESCE(scope, '') IN (SELECT scope FROM temp.ingest_scopes)"
        )

    # --- admin ---
    def set_disabled(self, item_id: int, disabled: bool = True) -> Item:
        """Hide an item from answers and quizzes (or bring it back) without touching its source."""
        item = self.item(item_id)
        with self.transaction():
            self.mark_changed()
            flags = set(item.flags) - {DISABLED} | ({DISABLED} if disabled else set())
            self.db.execute(
                "UPDATE items SET disabled=?, flags=?, updated_at=? WHERE id=?",
                [int(disabled), json.dumps(sorted(flags)), _now(), item_id],
            )
        return self.item(item_id)

    # --- removing a document ---
    def removed_sources(self) -> set[str]:
        """Documents removed with ``tutor kb remove`` (and not ingested since)."""
        return {r[0] for r in self.db.execute("SELECT source FROM documents WHERE removed_at IS NOT NULL")}

    def remove_document(
        self, source: str, embed: Embed, progress: Callable[[str], None] | None = None
    ) -> RemovalReport:
        """Retire every live item of the document ``source`` (``tutor kb remove``); nothing is deleted.

        The items keep their rows and ids, and so does everything that refers to them (quiz cards, sessions,
        reviews, feedback, contests); every reader skips retired items, so answers, quizzes and the retrieval
        index (stale from here: the content hash changed) no longer use them. It is an ingest of the document
        with no entries: the duplicate groups, flags and best answers of the rest are analysed again and
        published by the ingest's own steps (the same conflict checks and short transactions). Ingesting the
        document again brings its items back under their old ids, matched by question, with their history.

        A duplicate group is numbered after its lowest item id, so a question of another document that was
        grouped with one of these gets its own number, and the quiz treats it as a new card until the
        document comes back (the old card's progress stays stored under the old number).

        Raises :class:`NotFound` when no document of that name has a live item.
        """
        self.check_writable()
        say = progress or (lambda _msg: None)
        reported: dict[str, Counter] = {}  # set once the document's retirement is published
        report: RemovalReport | None = None
        for _attempt in range(_ATTEMPTS):
            with self.lock, self._read_snapshot():  # one read snapshot, as an ingest's plan
                row = self._document_row(source)
                live = [r["id"] for r in self._items_of(source, include_retired=False)]
                if row is None or (not live and source not in reported):
                    raise NotFound(f"no document named {source!r} with live items in the knowledge base")
                revisions = {
                    r["source"]: r["revision"]
                    for r in self.db.query("SELECT source, revision FROM documents")
                }
                max_id = self._max_id()
                meta = DocumentMeta(
                    source=source,
                    title=row["title"] or source,
                    course=row["course"] or "",
                    chapter=row["chapter"] or "",
                    topics=tuple(json.loads(row["topics"] or "[]")),
                    layout=row["layout"] or "",
                )
                doc = ParsedDocument(meta, (), row["content_hash"] or "", row["origin"] or "", row["scope"])
                plan = _Plan(
                    doc, source, row["origin"], row["path"], row["revision"], row["scope"], retire=live
                )
                plan.counts["retired"] = len(live)
                if source in reported:  # retired by an earlier try, whose analysis met another writer
                    plan.action = "unchanged"
                candidates = self._candidates([plan], {row["scope"] or ""})
                if report is None:
                    reviews, cards = (
                        self.db.execute(sql, [source]).fetchone()[0]
                        for sql in (
                            "SELECT COUNT(*) FROM quiz_reviews WHERE item_id IN"
                            " (SELECT id FROM items WHERE source = ? AND retired_at IS NULL)",
                            "SELECT COUNT(*) FROM quiz_cards WHERE card_id IN"
                            " (SELECT group_id FROM items WHERE source = ? AND retired_at IS NULL)",
                        )
                    )
                    report = RemovalReport(source, meta.title, row["origin"], len(live), reviews, cards)
            try:
                self._publish([plan], revisions, max_id, candidates, embed, reported, set(), say)
            except _Conflict:
                continue
            return report
        conflict = IngestConflict(
            f"{self.path}: another writer kept changing the knowledge base during this removal "
            f"({_ATTEMPTS} tries); run it again"
        )
        conflict.published = tuple(reported)  # retired, but the others' analysis is left to the next ingest
        raise conflict

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
            scope=row.get("scope"),
        )

    def items(self, include_retired: bool = False, source: str | None = None) -> list[Item]:
        where, params = [], []
        if not include_retired:
            where.append("retired_at IS NULL")
        if source is not None:
            where.append("source = ?")
            params.append(source)
        sql = (
            _ITEMS
            + (" WHERE " + " AND ".join(f"i.{w}" for w in where) if where else "")
            + " ORDER BY i.source, i.n, i.id"
        )
        return [self._to_item(row) for row in self.db.query(sql, params)]

    def item(self, item_id: int) -> Item:
        rows = list(self.db.query(_ITEMS + " WHERE i.id = ?", [item_id]))
        if not rows:
            raise NotFound(f"no item with id {item_id}")
        return self._to_item(rows[0])

    def group_members(self, group_id: int) -> list[Item]:
        rows = self.db.query(
            _ITEMS + " WHERE i.group_id = ? AND i.retired_at IS NULL ORDER BY i.source, i.n", [group_id]
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
                scope=row["scope"],
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
        view.read_only = "a snapshot"
        view._immutable = self._immutable
        view.lock, view._depth = threading.RLock(), 0
        conn = connect_read_only(self.path, isolation_level=None, timeout=30, immutable=self._immutable)
        view.db = sqlite_utils.Database(conn)
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the snapshot starts here
            yield view
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    def content_version(self) -> int:
        """A number that grows with every change to what is answered and quizzed (items, their groups and
        documents): one row to read, where ``content_hash`` reads them all. The quiz checks it at every
        start; the retrieval index keeps the exact hash in its manifest."""
        row = self.db.execute("SELECT n FROM content_version WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def mark_changed(self) -> None:
        """Count a change to items, groups or documents; called inside the transaction that makes it."""
        self.db.execute("UPDATE content_version SET n = n + 1 WHERE id = 1")

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
        for row in self.db.query("SELECT source, title, topics, scope FROM documents ORDER BY source"):
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
