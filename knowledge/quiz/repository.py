"""The quiz's SQL: users, sessions and their question slots, reviews, FSRS card states, contested grades.

``QuizRepository(store)`` is a thin layer over the process's one :class:`~knowledge.store.Store`: it opens
no connection of its own, decides nothing, and returns plain rows (a slot's ``phase`` as a
:class:`SlotPhase`). The session flow is ``knowledge.quiz.service``, the statistics
``knowledge.quiz.progress``.

Sharing the store's connection between threads. A process opens one ``Store`` (``Services.store`` in the
bot) and every component uses it: the retriever, the quiz, the guild settings, the admin cog's changes. Its
SQLite connection (``check_same_thread=False``) is called from many threads (the bot's
``asyncio.to_thread`` workers), so what one thread does must not land inside another's transaction:

* **Writes** go through ``Store.transaction()``: ``BEGIN IMMEDIATE ... COMMIT`` under the store's
  re-entrant lock, so two threads' transactions never interleave, and a transaction opened inside one of
  the same thread (the vector cache writing while a quiz step builds its cards) joins it. Other processes
  on the same file (``tutor quiz`` while the bot runs) are kept apart by SQLite's own file lock.
* **Reads take the same lock** (``Store.lock``). A plain ``execute(...).fetchone()`` could do without,
  but sqlite-utils' ``query()``, which most reads use, wraps the statement in a ``SAVEPOINT``: outside a
  transaction that *begins* one on the shared connection, so another thread's ``BEGIN`` meanwhile fails
  ("cannot start a transaction within a transaction") or its ``COMMIT`` ends the reader's savepoint. Under
  the lock, a read also sees only committed data (no other thread's transaction is half done), and a quiz
  step that reads then writes (answering a question) commits what it read.
* Slow work runs without the lock: grading an answer, the retriever's answers. A change of the knowledge
  base (the admin cog's ingest, which also opens plain read transactions of its own) holds it throughout.

So the quiz's lock is the store's: ``QuizRepository.lock``. Nothing that holds it waits for another lock
that a thread could hold while waiting for this one (the encoder's lock is never held across a store call).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import sqlite_utils
from fsrs import Card, Rating, State

from knowledge.quiz import scheduler as sched
from knowledge.quiz.grading import Verdict
from knowledge.quiz.models import SessionStatus, SlotPhase
from knowledge.store import Store

# Opted-in users with reviews in the window, ranked; retention and streak over all their reviews, as
# ``QuizProgress.stats`` computes them. One query: the streak is the run of consecutive review days
# (gaps and islands: a day's date minus its rank is constant along a run) that ends today or yesterday.
LEADERBOARD_SQL = """
WITH board AS (
    SELECT user_id, display_name FROM quiz_users
    WHERE leaderboard = 1 AND (:everyone OR user_id IN (SELECT value FROM json_each(:wanted)))
),
counted AS (  -- the reviews the board counts: every one, or those of items its space sees
    SELECT r.* FROM quiz_reviews AS r JOIN board AS b ON b.user_id = r.user_id
    WHERE :anywhere OR r.item_id IN (
        SELECT i.id FROM items AS i JOIN documents AS d ON d.source = i.source
        WHERE d.scope IS NULL OR d.scope = :space
    )
),
recent AS (
    SELECT r.user_id, COUNT(*) AS reviews, COALESCE(SUM(r.verdict = :correct), 0) AS correct
    FROM counted AS r
    WHERE r.reviewed_at >= :since
    GROUP BY r.user_id
),
history AS (
    SELECT r.user_id, SUM(r.state_before IN (:review, :relearning)) AS learned,
           SUM(r.state_before IN (:review, :relearning) AND r.rating > :again) AS recalled
    FROM counted AS r JOIN recent AS t ON t.user_id = r.user_id
    GROUP BY r.user_id
),
days AS (
    SELECT DISTINCT r.user_id, substr(r.reviewed_at, 1, 10) AS day
    FROM counted AS r JOIN recent AS t ON t.user_id = r.user_id
    WHERE substr(r.reviewed_at, 1, 10) <= :today
),
runs AS (
    SELECT user_id, MAX(day) AS last_day, COUNT(*) AS length
    FROM (
        SELECT user_id, day, julianday(day) - ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY day) AS run
        FROM days
    )
    GROUP BY user_id, run
)
SELECT t.user_id, b.display_name, t.reviews, t.correct, h.learned, h.recalled,
       COALESCE(s.length, 0) AS streak
FROM recent AS t
JOIN board AS b ON b.user_id = t.user_id
JOIN history AS h ON h.user_id = t.user_id
LEFT JOIN runs AS s ON s.user_id = t.user_id AND s.last_day >= :yesterday
ORDER BY t.reviews DESC, t.correct DESC, t.user_id
LIMIT :limit
"""


class QuizRepository:
    """The quiz tables of one shared ``Store``. Callers hold ``lock`` (``writing()`` for a transaction)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = store.lock  # the quiz's steps one at a time, and apart from other threads' writes

    @property
    def db(self) -> sqlite_utils.Database:
        return self.store.db

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One store transaction under the lock (committed at the end, rolled back on error)."""
        with self.lock, self.store.transaction():
            yield

    def _rows(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params if isinstance(params, dict) else list(params)))

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    # --- users ---------------------------------------------------------------------------------------
    def ensure_user(self, user_id: str, display_name: str | None, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO quiz_users (user_id, display_name, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT(user_id) DO UPDATE SET display_name=COALESCE(excluded.display_name, display_name)",
            [user_id, display_name, sched.iso(now)],
        )

    def set_leaderboard(self, user_id: str, opt_in: bool) -> None:
        self.db.execute("UPDATE quiz_users SET leaderboard=? WHERE user_id=?", [int(opt_in), user_id])

    # --- sessions ------------------------------------------------------------------------------------
    def end_active(self, user_id: str, now: datetime) -> None:
        """End the user's sessions in progress (a new one replaces them)."""
        self.db.execute(
            "UPDATE quiz_sessions SET status=?, updated_at=? WHERE user_id=? AND status=?",
            [SessionStatus.ENDED, sched.iso(now), user_id, SessionStatus.ACTIVE],
        )

    def add_session(
        self,
        session_id: str,
        user_id: str,
        *,
        mode: str,
        topic: str | None,
        source: str | None,
        review_only: bool,
        total: int,
        meta: dict[str, Any] | None,
        now: datetime,
        scope: str | None = None,
    ) -> None:
        """A new session; ``scope``: the key of the space it draws from (None: the shared notes)."""
        status = SessionStatus.ACTIVE if total else SessionStatus.FINISHED
        self.db.execute(
            "INSERT INTO quiz_sessions (id, user_id, mode, topic, source, review_only, total, position, status,"
            " meta, created_at, updated_at, scope) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
            [session_id, user_id, mode, topic, source, int(review_only), total, status, json.dumps(meta or {}),
             sched.iso(now), sched.iso(now), scope],
        )  # fmt: skip

    def add_slot(
        self,
        session_id: str,
        position: int,
        *,
        card_id: int,
        item_id: int,
        mode: str,
        is_new: bool,
        choices: list[str] | None,
        correct_choice: int | None,
    ) -> None:
        self.db.execute(
            "INSERT INTO quiz_slots (session_id, position, card_id, item_id, mode, is_new, choices,"
            " correct_choice, phase) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [session_id, position, card_id, item_id, mode, int(is_new),
             json.dumps(choices) if choices is not None else None, correct_choice, SlotPhase.PENDING],
        )  # fmt: skip

    def session(self, session_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM quiz_sessions WHERE id = ?", [session_id])

    def active_session_id(self, user_id: str) -> str | None:
        row = self._one(
            "SELECT id FROM quiz_sessions WHERE user_id = ? AND status = ? ORDER BY created_at DESC LIMIT 1",
            [user_id, SessionStatus.ACTIVE],
        )
        return row["id"] if row else None

    def set_meta(self, session_id: str, meta: dict[str, Any]) -> None:
        self.db.execute("UPDATE quiz_sessions SET meta=? WHERE id=?", [json.dumps(meta), session_id])

    def set_status(self, session_id: str, status: SessionStatus, now: datetime) -> None:
        self.db.execute(
            "UPDATE quiz_sessions SET status=?, updated_at=? WHERE id=?", [status, sched.iso(now), session_id]
        )

    def finish(self, session_id: str, total: int, now: datetime) -> None:
        """Every question was asked: the session is finished, its position past the last one."""
        self.db.execute(
            "UPDATE quiz_sessions SET status=?, position=?, updated_at=? WHERE id=?",
            [SessionStatus.FINISHED, total, sched.iso(now), session_id],
        )

    def move_to(self, session_id: str, position: int, now: datetime) -> None:
        self.db.execute(
            "UPDATE quiz_sessions SET position=?, updated_at=? WHERE id=?",
            [position, sched.iso(now), session_id],
        )

    def touch(self, session_id: str, now: datetime) -> None:
        self.db.execute("UPDATE quiz_sessions SET updated_at=? WHERE id=?", [sched.iso(now), session_id])

    def end_stale(self, cutoff: datetime) -> int:
        """End the sessions in progress untouched since ``cutoff``; returns how many."""
        cursor = self.db.execute(
            "UPDATE quiz_sessions SET status=? WHERE status=? AND updated_at < ?",
            [SessionStatus.ENDED, SessionStatus.ACTIVE, sched.iso(cutoff)],
        )
        return cursor.rowcount

    def verdict_counts(self, session_id: str) -> dict[str, int]:
        """verdict -> reviews recorded in the session."""
        rows = self.db.query(
            "SELECT verdict, COUNT(*) AS n FROM quiz_reviews WHERE session_id = ? GROUP BY verdict",
            [session_id],
        )
        return {r["verdict"]: r["n"] for r in rows}

    def skipped(self, session_id: str) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM quiz_slots WHERE session_id = ? AND phase = ?",
            [session_id, SlotPhase.SKIPPED],
        ).fetchone()[0]

    # --- slots ---------------------------------------------------------------------------------------
    def slot(self, session_id: str, position: int) -> dict[str, Any] | None:
        """One question of a session; ``phase`` as a :class:`SlotPhase`."""
        row = self._one(
            "SELECT * FROM quiz_slots WHERE session_id = ? AND position = ?", [session_id, position]
        )
        if row is not None:
            row["phase"] = SlotPhase(row["phase"])
        return row

    def set_phase(self, session_id: str, position: int, phase: SlotPhase) -> None:
        self.db.execute(
            "UPDATE quiz_slots SET phase=? WHERE session_id=? AND position=?", [phase, session_id, position]
        )

    def mark_asked(self, session_id: str, position: int, now: datetime) -> None:
        self.db.execute(
            "UPDATE quiz_slots SET phase=?, asked_at=? WHERE session_id=? AND position=?",
            [SlotPhase.ASKING, sched.iso(now), session_id, position],
        )

    def use_hint(self, session_id: str, position: int) -> None:
        self.db.execute(
            "UPDATE quiz_slots SET hint_used=1 WHERE session_id=? AND position=?", [session_id, position]
        )

    def record_answer(
        self,
        session_id: str,
        position: int,
        *,
        asked: datetime,
        answer: str,
        grade: dict[str, Any],
        card_before: Card,
        review_id: int,
    ) -> None:
        """The slot is answered: what was typed, its grade, the card before the review, the review."""
        self.db.execute(
            "UPDATE quiz_slots SET phase=?, asked_at=?, answer=?, grade=?, card_before=?, review_id=?"
            " WHERE session_id=? AND position=?",
            [SlotPhase.ANSWERED, sched.iso(asked), answer[:4000], json.dumps(grade),
             json.dumps(card_before.to_dict()), review_id, session_id, position],
        )  # fmt: skip

    # --- reviews and FSRS cards ----------------------------------------------------------------------
    def review(self, review_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM quiz_reviews WHERE id = ?", [review_id])
        assert row is not None, f"no review {review_id}"
        return row

    def add_review(
        self,
        user_id: str,
        slot: dict[str, Any],
        *,
        verdict: str,
        score: float,
        answer: str,
        fields: dict[str, Any],
    ) -> int:
        """Log one review of a slot (``fields``: ``sched.review_row``); returns its id."""
        cursor = self.db.execute(
            "INSERT INTO quiz_reviews (user_id, card_id, item_id, session_id, position, mode, verdict, score,"
            f" answer, {', '.join(fields)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {', '.join('?' * len(fields))})",
            [user_id, slot["card_id"], slot["item_id"], slot["session_id"], slot["position"], slot["mode"],
             verdict, score, answer[:4000], *fields.values()],
        )  # fmt: skip
        return int(cursor.lastrowid)

    def update_review(self, review_id: int, fields: dict[str, Any]) -> None:
        sets = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE quiz_reviews SET {sets} WHERE id=?", [*fields.values(), review_id])

    def load_card(self, user_id: str, card_id: int) -> Card | None:
        return sched.load_card(self.db, user_id, card_id)

    def save_card(self, user_id: str, card: Card, now: datetime) -> None:
        sched.save_card(self.db, user_id, card, now)

    def due_dates(self, user_id: str) -> dict[int, datetime]:
        """card id -> when it is due, for every card the user has seen."""
        rows = self.db.query("SELECT card_id, due FROM quiz_cards WHERE user_id = ?", [user_id])
        return {row["card_id"]: sched.parse_time(row["due"]) for row in rows}

    def next_due(self, user_id: str) -> datetime | None:
        row = self.db.execute("SELECT MIN(due) FROM quiz_cards WHERE user_id = ?", [user_id]).fetchone()
        return sched.parse_time(row[0]) if row and row[0] else None

    def cards(self, user_id: str) -> dict[int, dict[str, Any]]:
        """card id -> the user's ``quiz_cards`` row (FSRS state)."""
        return {
            r["card_id"]: r for r in self.db.query("SELECT * FROM quiz_cards WHERE user_id = ?", [user_id])
        }

    def reviews(
        self, user_id: str, *, space: str | None = None, everywhere: bool = True, hidden: Iterable[int] = ()
    ) -> list[dict[str, Any]]:
        """The user's reviews, oldest first: what statistics need of them. ``everywhere`` (the default): all
        of them; else only reviews of items of the shared notes and of the space ``space`` (None: the shared
        notes alone), less the items in ``hidden``. A review of an item no longer stored counts as shared."""
        if everywhere:
            return self._rows(
                "SELECT reviewed_at, rating, verdict, state_before FROM quiz_reviews WHERE user_id = ?"
                " ORDER BY reviewed_at",
                [user_id],
            )
        return self._rows(
            "SELECT r.reviewed_at, r.rating, r.verdict, r.state_before FROM quiz_reviews r"
            " LEFT JOIN items i ON i.id = r.item_id LEFT JOIN documents d ON d.source = i.source"
            " WHERE r.user_id = :user AND (d.scope IS NULL OR d.scope = :space)"
            " AND r.item_id NOT IN (SELECT value FROM json_each(:hidden)) ORDER BY r.reviewed_at",
            {"user": user_id, "space": space, "hidden": json.dumps(sorted(hidden))},
        )

    def leaderboard(
        self,
        wanted: Iterable[str] | None,
        since: datetime,
        today: date,
        limit: int,
        space: str | None = None,
        anywhere: bool = True,
    ) -> list[dict[str, Any]]:
        """``LEADERBOARD_SQL``: user_id, display_name, reviews and correct since ``since``; learned and
        recalled (reviews of learned cards, and those not rated Again) and the streak in days, ending today
        or yesterday, over all their reviews (``anywhere``), or those of the shared notes and ``space``'s
        cards. ``wanted``: only these users (None: every opted-in user)."""
        return self._rows(
            LEADERBOARD_SQL,
            {
                "anywhere": anywhere,
                "space": space,
                "everyone": wanted is None,
                "wanted": json.dumps(sorted(set(wanted))) if wanted is not None else None,
                "correct": Verdict.CORRECT,
                "since": sched.iso(since),
                "review": int(State.Review),
                "relearning": int(State.Relearning),
                "again": int(Rating.Again),
                "today": today.isoformat(),
                "yesterday": (today - timedelta(days=1)).isoformat(),
                "limit": limit,
            },
        )

    # --- contested grades ----------------------------------------------------------------------------
    def contest_id(self, session_id: str, position: int) -> int | None:
        row = self.db.execute(
            "SELECT id FROM grade_contests WHERE session_id = ? AND position = ?", [session_id, position]
        ).fetchone()
        return int(row[0]) if row else None

    def add_contest(
        self,
        *,
        user_id: str,
        slot: dict[str, Any],
        source: str,
        n: int,
        verdict: str,
        claimed: str,
        now: datetime,
    ) -> int:
        cursor = self.db.execute(
            "INSERT INTO grade_contests (created_at, user_id, session_id, position, item_id, source, n, answer,"
            " verdict, claimed, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            [sched.iso(now), user_id, slot["session_id"], slot["position"], slot["item_id"], source, n,
             slot["answer"] or "", verdict, claimed],
        )  # fmt: skip
        return int(cursor.lastrowid)

    def contests(self, status: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        return self._rows(f"SELECT * FROM grade_contests {where} ORDER BY id DESC", args)

    def contest(self, contest_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM grade_contests WHERE id = ?", [contest_id])

    def decide_contest(self, contest_id: int, label: str | None, decided_by: str, now: datetime) -> bool:
        """Confirm (``label``) or reject (None) a contest; False if there is no such contest."""
        cursor = self.db.execute(
            "UPDATE grade_contests SET status = ?, label = ?, decided_by = ?, decided_at = ? WHERE id = ?",
            ["confirmed" if label else "rejected", label, decided_by, sched.iso(now), contest_id],
        )
        return bool(cursor.rowcount)
