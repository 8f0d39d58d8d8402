"""The quiz service: sessions of questions over the knowledge store, graded and scheduled with FSRS.

Front ends (the terminal, the Discord bot) call only this class and get frozen values back. Everything a
session needs to resume (its planned cards, multiple-choice options, the current question's phase) is in
SQLite, so a session survives a restart of the process, and a review is committed in the same transaction
that records the answer: what the learner was told is what the database holds.

Thread safety: the service has its own SQLite connection, and every read-modify-write runs under one lock
inside ``BEGIN IMMEDIATE`` (which also serialises against other processes on the same file). Grading, the
only slow step, runs outside the lock. Per-slot phases make every call idempotent: a second answer to the
same question returns the first grade, never a second review.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fsrs import Rating, Scheduler, State

from knowledge.errors import ReadOnlyStore
from knowledge.models import NOT_SERVABLE
from knowledge.quiz import scheduler as sched
from knowledge.quiz.grading import CORRECT, PARTLY, VERDICTS, WRONG, Grader
from knowledge.quiz.models import (
    ACTIVE,
    ANSWERED,
    ASKING,
    ENDED,
    FINISHED,
    PENDING,
    RATED,
    SKIPPED,
    DayCount,
    Graded,
    LeaderRow,
    Question,
    QuizError,
    Session,
    TopicMastery,
    UserStats,
)
from knowledge.quiz.selection import (
    AUTO,
    MC,
    MODES,
    Catalogue,
    QuizCard,
    build_catalogue,
    hint_for,
    matches,
    multiple_choice,
    resolve_mode,
    select_cards,
)
from knowledge.store import Store
from knowledge.vectors import TextVectors

MAX_QUESTIONS = 50
MASTERED_RECALL = 0.9
SessionRef = Session | str


class QuizService:
    """``QuizService(store, encoder)``; ``encoder`` has ``encode(texts) -> (n, d)`` L2-normalised vectors.

    ``grader`` grades typed answers (``grade``/``grade_many`` like ``Grader``); by default the rule grader.
    Entry points pass the trained one (``knowledge.quiz.learned``).
    """

    def __init__(
        self,
        store: Store,
        encoder: Any,
        *,
        scheduler: Scheduler | None = None,
        clock: Callable[[], datetime] | None = None,
        grader: Any = None,
    ):
        self._store = Store(store.path)  # a connection of our own: other threads may use ``store``'s
        self._lock = threading.RLock()
        embed = encoder.encode if hasattr(encoder, "encode") else encoder
        self._grader = grader if grader is not None else Grader(embed)  # the trained one: tutor.services
        self._vectors = TextVectors(self._store, encoder)
        self._scheduler = scheduler or Scheduler()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._catalogue: Catalogue | None = None

    def close(self) -> None:
        with self._lock:
            self._store.close()

    def __enter__(self) -> QuizService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- catalogue -------------------------------------------------------------------------------------
    def catalogue(self, refresh: bool = False) -> Catalogue:
        """The quizzable cards; ``refresh`` rebuilds them if the store changed (re-ingest, disabled item)."""
        with self._lock:
            if self._catalogue is None or (
                refresh and self._catalogue.fingerprint != self._store.content_hash()
            ):
                self._catalogue = build_catalogue(self._store, self._vectors)
            return self._catalogue

    def topics(self) -> list[tuple[str, int]]:
        """(topic, number of cards), most cards first: for autocomplete and ``--topic``."""
        return self.catalogue().topics()

    def sources(self) -> list[tuple[str, str, int]]:
        """(source, title, number of cards)."""
        counts: dict[tuple[str, str], int] = {}
        for card in self.catalogue().cards:
            counts[(card.source, card.title)] = counts.get((card.source, card.title), 0) + 1
        return [(s, t, n) for (s, t), n in sorted(counts.items())]

    # --- sessions --------------------------------------------------------------------------------------
    def start(
        self,
        user_id: str,
        *,
        topic: str | None = None,
        source: str | None = None,
        n: int = 10,
        mode: str = AUTO,
        review_only: bool = False,
        display_name: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Session:
        """Plan a session: due cards first, then new ones. The user's previous active session is ended.

        A session may have 0 questions (nothing due with ``review_only``); ``question`` then returns None and
        ``next_due`` says when to come back.
        """
        user_id = str(user_id)
        if self._store.read_only is not None:  # before anything: a quiz that cannot be saved is not begun
            raise ReadOnlyStore(
                f"Quizzes record your progress, and {self._store.path} can only be read "
                f"({self._store.read_only}). Questions are still answered, and your statistics shown. To quiz, "
                "make it writable, or copy it to a folder you can write and point TUTOR_DATA_DIR there."
            )
        if mode not in MODES:
            raise QuizError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if not 1 <= n <= MAX_QUESTIONS:
            raise QuizError(f"a quiz has 1 to {MAX_QUESTIONS} questions, not {n}")
        catalogue = self.catalogue(refresh=True)
        _check_filters(catalogue, topic, source)
        session_id = uuid.uuid4().hex
        rng = random.Random(session_id)
        with self._lock, self._store.transaction():
            now = self._clock()
            self._ensure_user(user_id, display_name, now)
            self._store.db.execute(
                "UPDATE quiz_sessions SET status=?, updated_at=? WHERE user_id=? AND status=?",
                [ENDED, sched.iso(now), user_id, ACTIVE],
            )
            due = {
                row["card_id"]: sched.parse_time(row["due"])
                for row in self._store.db.query(
                    "SELECT card_id, due FROM quiz_cards WHERE user_id = ?", [user_id]
                )
            }
            picks = select_cards(
                catalogue, due, now, n, topic=topic, source=source, mode=mode, review_only=review_only
            )
            self._store.db.execute(
                "INSERT INTO quiz_sessions (id, user_id, mode, topic, source, review_only, total, position, status,"
                " meta, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                [session_id, user_id, mode, topic, source, int(review_only), len(picks),
                 ACTIVE if picks else FINISHED, json.dumps(meta or {}), sched.iso(now), sched.iso(now)],
            )  # fmt: skip
            for position, (card, is_new) in enumerate(picks):
                card_mode = resolve_mode(card, mode, catalogue)
                choices, correct = (None, None)
                if card_mode == MC:
                    options, correct = multiple_choice(catalogue, card, rng)
                    choices = json.dumps(options)
                self._store.db.execute(
                    "INSERT INTO quiz_slots (session_id, position, card_id, item_id, mode, is_new, choices,"
                    " correct_choice, phase) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [session_id, position, card.card_id, card.item_id, card_mode, int(is_new), choices, correct,
                     PENDING],
                )  # fmt: skip
        return self.session(session_id)

    def session(self, session: SessionRef) -> Session:
        with self._lock:
            return self._session(self._id(session))

    def active_session(self, user_id: str) -> Session | None:
        """The user's session in progress, if any (a restarted bot resumes it)."""
        with self._lock:
            rows = list(
                self._store.db.query(
                    "SELECT id FROM quiz_sessions WHERE user_id = ? AND status = ? ORDER BY created_at DESC LIMIT 1",
                    [str(user_id), ACTIVE],
                )
            )
            return self._session(rows[0]["id"]) if rows else None

    def set_meta(self, session: SessionRef, **values: Any) -> Session:
        """Attach front-end data (channel and message ids, say) to a session; merged into ``Session.meta``."""
        session_id = self._id(session)
        with self._lock, self._store.transaction():
            current = self._session_row(session_id)
            meta = {**json.loads(current["meta"] or "{}"), **values}
            self._store.db.execute(
                "UPDATE quiz_sessions SET meta=? WHERE id=?", [json.dumps(meta), session_id]
            )
        return self.session(session_id)

    def end(self, session: SessionRef, user_id: str | None = None) -> Session:
        """Stop early; every review already given stays recorded, unanswered questions are dropped."""
        session_id = self._id(session)
        with self._lock, self._store.transaction():
            row = self._session_row(session_id, user_id)
            if row["status"] == ACTIVE:
                self._store.db.execute(
                    "UPDATE quiz_sessions SET status=?, updated_at=? WHERE id=?",
                    [ENDED, sched.iso(self._clock()), session_id],
                )
        return self.session(session_id)

    def end_stale(self, older_than: timedelta) -> int:
        """End sessions untouched for ``older_than`` (the bot's housekeeping); returns how many."""
        cutoff = sched.iso(self._clock() - older_than)
        with self._lock, self._store.transaction():
            cursor = self._store.db.execute(
                "UPDATE quiz_sessions SET status=? WHERE status=? AND updated_at < ?", [ENDED, ACTIVE, cutoff]
            )
        return cursor.rowcount

    # --- questions -------------------------------------------------------------------------------------
    def current(self, session: SessionRef) -> Question | None:
        """The current question in whatever phase it is, without moving on (to redraw a view)."""
        with self._lock:
            row = self._session_row(self._id(session))
            if row["status"] != ACTIVE:
                return None
            slot = self._slot(row["id"], row["position"])
            return self._question(row, slot) if slot else None

    def question(self, session: SessionRef, user_id: str | None = None) -> Question | None:
        """The question to show: the open one again, or the next once the current one is done; None at the end."""
        session_id = self._id(session)
        with self._lock, self._store.transaction():
            row = self._session_row(session_id, user_id)
            if row["status"] != ACTIVE:
                return None
            position = row["position"]
            slot = self._slot(session_id, position)
            if slot is not None and slot["phase"] in (ANSWERED, RATED, SKIPPED):
                position += 1
                slot = self._slot(session_id, position)
            now = sched.iso(self._clock())
            if slot is None:
                self._store.db.execute(
                    "UPDATE quiz_sessions SET status=?, position=?, updated_at=? WHERE id=?",
                    [FINISHED, row["total"], now, session_id],
                )
                return None
            if slot["phase"] == PENDING:
                self._store.db.execute(
                    "UPDATE quiz_slots SET phase=?, asked_at=? WHERE session_id=? AND position=?",
                    [ASKING, now, session_id, position],
                )
            self._store.db.execute(
                "UPDATE quiz_sessions SET position=?, updated_at=? WHERE id=?", [position, now, session_id]
            )
            row = self._session_row(session_id)
            return self._question(row, self._slot(session_id, position))

    def hint(self, session: SessionRef, user_id: str | None = None) -> str | None:
        """The current question's hint (None where there is none); using it caps the derived rating at Hard."""
        session_id = self._id(session)
        with self._lock, self._store.transaction():
            _row, slot = self._open_slot(session_id, user_id)
            card = self._card(slot)
            text = hint_for(card, slot["mode"])
            if text is not None and slot["phase"] in (PENDING, ASKING):
                self._store.db.execute(
                    "UPDATE quiz_slots SET hint_used=1 WHERE session_id=? AND position=?",
                    [session_id, slot["position"]],
                )
            return text

    def answer(self, session: SessionRef, response: str | int, user_id: str | None = None) -> Graded:
        """Grade a typed answer (or a multiple-choice index / letter) and commit the review.

        The review is committed with the rating derived from the grade; ``rate`` may replace that rating
        until the next question is shown. Answering an answered question returns the first grade.
        """
        session_id = self._id(session)
        with self._lock:
            _row, slot = self._open_slot(session_id, user_id)
            if slot["phase"] in (ANSWERED, RATED):
                return self._graded(slot)
            if slot["phase"] == SKIPPED:
                raise QuizError("that question was skipped")
            card = self._card(slot)
            mode = slot["mode"]
        if mode == MC:
            choices = json.loads(slot["choices"])
            choice = _parse_choice(response, len(choices))
            right = choice == slot["correct_choice"]
            verdict, score, text = (CORRECT if right else WRONG), (1.0 if right else 0.0), choices[choice]
            grade_info = {"matched": [], "missing": [], "choice": choice}
        else:
            text = str(response).strip()
            grade = self._grader.grade(card.answer, text, question=card.question, cloze=card.cloze)
            verdict, score = grade.verdict, grade.score
            grade_info = {"matched": list(grade.matched), "missing": list(grade.missing), "choice": None}
        return self._commit(session_id, slot["position"], verdict, score, text, grade_info)

    def reveal(self, session: SessionRef, user_id: str | None = None) -> Graded:
        """Show the answer without an attempt: recorded as not recalled (Again) unless the learner rates."""
        session_id = self._id(session)
        with self._lock:
            _row, slot = self._open_slot(session_id, user_id)
            if slot["phase"] in (ANSWERED, RATED):
                return self._graded(slot)
            if slot["phase"] == SKIPPED:
                raise QuizError("that question was skipped")
        return self._commit(
            session_id,
            slot["position"],
            sched.REVEALED,
            0.0,
            "",
            {"matched": [], "missing": [], "choice": None},
        )

    def skip(self, session: SessionRef, user_id: str | None = None) -> Session:
        """Pass on the current question: nothing is recorded and the card stays due."""
        session_id = self._id(session)
        with self._lock, self._store.transaction():
            _row, slot = self._open_slot(session_id, user_id)
            if slot["phase"] in (PENDING, ASKING):
                self._store.db.execute(
                    "UPDATE quiz_slots SET phase=? WHERE session_id=? AND position=?",
                    [SKIPPED, session_id, slot["position"]],
                )
        return self.session(session_id)

    def rate(self, session: SessionRef, rating: Rating | int | str, user_id: str | None = None) -> Graded:
        """The learner's own rating (Again/Hard/Good/Easy) for the question just answered or revealed."""
        value = sched.parse_rating(rating)
        session_id = self._id(session)
        with self._lock, self._store.transaction():
            row, slot = self._open_slot(session_id, user_id)
            if slot["phase"] not in (ANSWERED, RATED):
                raise QuizError("answer or reveal the question before rating it")
            review = next(
                iter(self._store.db.query("SELECT * FROM quiz_reviews WHERE id = ?", [slot["review_id"]]))
            )
            before = sched.card_from_json(slot["card_before"])
            when = sched.parse_time(review["reviewed_at"])
            after = sched.review(self._scheduler, before, value, when, review["duration_ms"])
            fields = sched.review_row(before, after, value, "self", when, review["duration_ms"])
            sets = ", ".join(f"{k}=?" for k in fields)
            self._store.db.execute(
                f"UPDATE quiz_reviews SET {sets} WHERE id=?", [*fields.values(), review["id"]]
            )
            stored = sched.load_card(self._store.db, row["user_id"], slot["card_id"])
            # Only rewrite the card if no later review (another session) has moved it on since.
            if stored is None or stored.last_review is None or stored.last_review <= when:
                sched.save_card(self._store.db, row["user_id"], after, self._clock())
            self._store.db.execute(
                "UPDATE quiz_slots SET phase=? WHERE session_id=? AND position=?",
                [RATED, session_id, slot["position"]],
            )
            return self._graded(self._slot(session_id, slot["position"]))

    # --- internals -------------------------------------------------------------------------------------
    def _commit(
        self, session_id: str, position: int, verdict: str, score: float, text: str, info: dict[str, Any]
    ) -> Graded:
        with self._lock, self._store.transaction():
            row = self._session_row(session_id)
            slot = self._slot(session_id, position)
            if slot is None or slot["phase"] in (ANSWERED, RATED):  # answered meanwhile (a double click)
                return self._graded(slot)
            if row["status"] != ACTIVE or slot["phase"] == SKIPPED or row["position"] != position:
                raise QuizError("that question is closed")
            now = self._clock()
            asked = sched.parse_time(slot["asked_at"]) if slot["asked_at"] else now
            duration = max(0, int((now - asked).total_seconds() * 1000))
            user_id = row["user_id"]
            before = sched.load_card(self._store.db, user_id, slot["card_id"]) or sched.new_card(
                slot["card_id"], now
            )
            rating = sched.rating_from_grade(verdict, bool(slot["hint_used"]))
            after = sched.review(self._scheduler, before, rating, now, duration)
            fields = sched.review_row(before, after, rating, "grade", now, duration)
            cursor = self._store.db.execute(
                "INSERT INTO quiz_reviews (user_id, card_id, item_id, session_id, position, mode, verdict, score,"
                f" answer, {', '.join(fields)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {', '.join('?' * len(fields))})",
                [user_id, slot["card_id"], slot["item_id"], session_id, position, slot["mode"], verdict, score,
                 text[:4000], *fields.values()],
            )  # fmt: skip
            sched.save_card(self._store.db, user_id, after, now)
            info = {**info, "verdict": verdict, "score": round(score, 3), "suggested": int(rating)}
            self._store.db.execute(
                "UPDATE quiz_slots SET phase=?, asked_at=?, answer=?, grade=?, card_before=?, review_id=?"
                " WHERE session_id=? AND position=?",
                [ANSWERED, sched.iso(asked), text[:4000], json.dumps(info), json.dumps(before.to_dict()),
                 cursor.lastrowid, session_id, position],
            )  # fmt: skip
            self._store.db.execute(
                "UPDATE quiz_sessions SET updated_at=? WHERE id=?", [sched.iso(now), session_id]
            )
            return self._graded(self._slot(session_id, position))

    def _ensure_user(self, user_id: str, display_name: str | None, now: datetime) -> None:
        self._store.db.execute(
            "INSERT INTO quiz_users (user_id, display_name, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT(user_id) DO UPDATE SET display_name=COALESCE(excluded.display_name, display_name)",
            [user_id, display_name, sched.iso(now)],
        )

    @staticmethod
    def _id(session: SessionRef) -> str:
        return session.id if isinstance(session, Session) else str(session)

    def _session_row(self, session_id: str, user_id: str | None = None) -> dict[str, Any]:
        rows = list(self._store.db.query("SELECT * FROM quiz_sessions WHERE id = ?", [session_id]))
        if not rows:
            raise QuizError(f"no quiz session {session_id}")
        if user_id is not None and rows[0]["user_id"] != str(user_id):
            raise QuizError("this quiz belongs to someone else")
        return rows[0]

    def _slot(self, session_id: str, position: int) -> dict[str, Any] | None:
        rows = list(
            self._store.db.query(
                "SELECT * FROM quiz_slots WHERE session_id = ? AND position = ?", [session_id, position]
            )
        )
        return rows[0] if rows else None

    def _open_slot(self, session_id: str, user_id: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        row = self._session_row(session_id, user_id)
        if row["status"] != ACTIVE:
            raise QuizError("this quiz is over")
        slot = self._slot(session_id, row["position"])
        if slot is None:
            raise QuizError("this quiz has no open question")
        return row, slot

    def _card(self, slot: dict[str, Any]) -> QuizCard:
        """The card as planned; if the store changed since, the item's current text (or an error if retired)."""
        card = self.catalogue().card(slot["card_id"])
        if card is not None and card.item_id == slot["item_id"]:
            return card
        item = self._store.item(slot["item_id"])
        if item.flags & NOT_SERVABLE or item.retired:
            raise QuizError("this question was withdrawn from the knowledge base; skip it")
        return QuizCard(
            slot["card_id"], item.id, item.question, item.answer, item.source, item.n, item.source,
            card.topic if card else "", "cloze" in item.flags, (item.source,),
        )  # fmt: skip

    def _session(self, session_id: str) -> Session:
        row = self._session_row(session_id)
        counts = {
            r["verdict"]: r["n"]
            for r in self._store.db.query(
                "SELECT verdict, COUNT(*) AS n FROM quiz_reviews WHERE session_id = ? GROUP BY verdict",
                [session_id],
            )
        }
        skipped = self._store.db.execute(
            "SELECT COUNT(*) FROM quiz_slots WHERE session_id = ? AND phase = ?", [session_id, SKIPPED]
        ).fetchone()[0]
        return Session(
            id=row["id"], user_id=row["user_id"], mode=row["mode"], topic=row["topic"], source=row["source"],
            review_only=bool(row["review_only"]), total=row["total"], position=row["position"],
            status=row["status"], created_at=sched.parse_time(row["created_at"]), answered=sum(counts.values()),
            correct=counts.get(CORRECT, 0), partly=counts.get(PARTLY, 0),
            wrong=counts.get(WRONG, 0) + counts.get(sched.REVEALED, 0), skipped=skipped,
            meta=json.loads(row["meta"] or "{}"),
        )  # fmt: skip

    def _question(self, row: dict[str, Any], slot: dict[str, Any]) -> Question:
        card = self._card(slot)
        return Question(
            session_id=row["id"], position=slot["position"], total=row["total"], card_id=slot["card_id"],
            item_id=slot["item_id"], mode=slot["mode"], prompt=card.question,
            choices=tuple(json.loads(slot["choices"])) if slot["choices"] else (),
            has_hint=hint_for(card, slot["mode"]) is not None, is_new=bool(slot["is_new"]), topic=card.topic,
            source=card.source, n=card.n, title=card.title, phase=slot["phase"],
            graded=self._graded(slot) if slot["phase"] in (ANSWERED, RATED) else None,
        )  # fmt: skip

    def _graded(self, slot: dict[str, Any] | None) -> Graded:
        assert slot is not None and slot["review_id"] is not None
        review = next(
            iter(self._store.db.query("SELECT * FROM quiz_reviews WHERE id = ?", [slot["review_id"]]))
        )
        info = json.loads(slot["grade"])
        card = self._card(slot)
        due = sched.parse_time(review["due_after"])
        return Graded(
            session_id=slot["session_id"], position=slot["position"], card_id=slot["card_id"],
            item_id=slot["item_id"], mode=slot["mode"], verdict=info["verdict"], score=info["score"],
            answer=slot["answer"] or "", reference=card.answer, choice=info.get("choice"),
            correct_choice=slot["correct_choice"], matched=tuple(info["matched"]), missing=tuple(info["missing"]),
            hint_used=bool(slot["hint_used"]), suggested_rating=info["suggested"], rating=review["rating"],
            rated_by=review["rated_by"], due=due, interval=sched.describe_interval(due, sched.parse_time(review["reviewed_at"])),
            source=card.source, n=card.n, title=card.title,
        )  # fmt: skip

    # --- contested grades -------------------------------------------------------------------------------
    def contest(
        self, session: SessionRef, position: int, user_id: str | None = None, claimed: str = CORRECT
    ) -> int:
        """ "I think I was right": record the learner's claim about a graded free answer; returns its id.

        Stored for an admin to confirm or reject (``tutor quiz contests``); a confirmed claim is kept, with
        the admin's grade, as a labelled answer for training a grader. Contesting twice keeps the first.
        """
        if claimed not in VERDICTS:
            raise QuizError(f"a claimed grade is correct, partly or wrong, not {claimed!r}")
        session_id = self._id(session)
        with self._lock, self._store.transaction():
            row = self._session_row(session_id, user_id)
            slot = self._slot(session_id, position)
            if slot is None or slot["phase"] not in (ANSWERED, RATED):
                raise QuizError("only a graded answer can be contested")
            info = json.loads(slot["grade"])
            if slot["mode"] == MC or info["verdict"] not in VERDICTS:
                raise QuizError("only a typed answer's grade can be contested")
            card = self._card(slot)
            existing = self._store.db.execute(
                "SELECT id FROM grade_contests WHERE session_id = ? AND position = ?", [session_id, position]
            ).fetchone()
            if existing:
                return int(existing[0])
            cursor = self._store.db.execute(
                "INSERT INTO grade_contests (created_at, user_id, session_id, position, item_id, source, n, answer,"
                " verdict, claimed, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                [sched.iso(self._clock()), row["user_id"], session_id, position, slot["item_id"], card.source,
                 card.n, slot["answer"] or "", info["verdict"], claimed],
            )  # fmt: skip
        return int(cursor.lastrowid)

    def contested(self, session: SessionRef, position: int) -> bool:
        with self._lock:
            return bool(
                self._store.db.execute(
                    "SELECT 1 FROM grade_contests WHERE session_id = ? AND position = ?",
                    [self._id(session), position],
                ).fetchone()
            )

    def contests(self, status: str | None = None) -> list[dict[str, Any]]:
        """Contested grades, newest first (``status``: pending, confirmed or rejected)."""
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        with self._lock:
            return list(self._store.db.query(f"SELECT * FROM grade_contests {where} ORDER BY id DESC", args))

    def decide_contest(self, contest_id: int, label: str | None, decided_by: str) -> dict[str, Any]:
        """An admin's decision: ``label`` (correct, partly, wrong) confirms it as that grade; None rejects it."""
        if label is not None and label not in VERDICTS:
            raise QuizError(f"a grade is correct, partly or wrong, not {label!r}")
        with self._lock, self._store.transaction():
            changed = self._store.db.execute(
                "UPDATE grade_contests SET status = ?, label = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                [
                    "confirmed" if label else "rejected",
                    label,
                    decided_by,
                    sched.iso(self._clock()),
                    contest_id,
                ],
            ).rowcount
            if not changed:
                raise QuizError(f"there is no contested grade {contest_id}")
        return next(iter(self._store.db.query("SELECT * FROM grade_contests WHERE id = ?", [contest_id])))

    # --- progress --------------------------------------------------------------------------------------
    def next_due(self, user_id: str) -> datetime | None:
        with self._lock:
            row = self._store.db.execute(
                "SELECT MIN(due) FROM quiz_cards WHERE user_id = ?", [str(user_id)]
            ).fetchone()
        return sched.parse_time(row[0]) if row and row[0] else None

    def stats(self, user_id: str, topic: str | None = None) -> UserStats:
        """Reviews, retention, due counts and per-topic mastery: what ``tutor stats`` and /stats show."""
        user_id = str(user_id)
        catalogue = self.catalogue()
        now = self._clock()
        with self._lock:
            db = self._store.db
            cards = {
                r["card_id"]: r for r in db.query("SELECT * FROM quiz_cards WHERE user_id = ?", [user_id])
            }
            reviews = list(
                db.query(
                    "SELECT reviewed_at, rating, verdict, state_before FROM quiz_reviews WHERE user_id = ?"
                    " ORDER BY reviewed_at",
                    [user_id],
                )
            )
        quizzable = [c for c in catalogue.cards if matches(c, topic)]
        known = {c.card_id for c in quizzable}
        recall = {}  # a card still in (re)learning is not learned yet, however recently it was seen
        for card_id, row in cards.items():
            learned_card = row["state"] == int(State.Review)
            card = sched.card_from_json(row["fsrs"])
            recall[card_id] = self._scheduler.get_card_retrievability(card, now) if learned_card else 0.0
        topics: dict[str, list[QuizCard]] = {}
        for card in quizzable:
            topics.setdefault(card.topic, []).append(card)
        mastery = []
        for name, members in topics.items():
            seen = [c for c in members if c.card_id in cards]
            mastered = [
                c for c in seen
                if cards[c.card_id]["state"] == int(State.Review) and recall[c.card_id] >= MASTERED_RECALL
            ]  # fmt: skip
            mastery.append(
                TopicMastery(
                    name, len(members), len(seen), len(mastered),
                    round(sum(recall.get(c.card_id, 0.0) for c in members) / len(members), 3),
                )
            )  # fmt: skip
        mastery.sort(key=lambda t: (-t.seen, -t.cards, t.topic))
        learned = [r for r in reviews if r["state_before"] in (int(State.Review), int(State.Relearning))]
        graded = [r for r in reviews if r["verdict"] in (CORRECT, PARTLY, WRONG)]
        days = [(now - timedelta(days=i)).date().isoformat() for i in range(29, -1, -1)]
        per_day = {d: [0, 0] for d in days}
        for r in reviews:
            day = r["reviewed_at"][:10]
            if day in per_day:
                per_day[day][0] += 1
                per_day[day][1] += int(r["rating"] >= int(Rating.Hard))
        active_days = {r["reviewed_at"][:10] for r in reviews}
        streak, day = 0, now.date()
        if day.isoformat() not in active_days:
            day -= timedelta(days=1)  # today not yet practised does not break the streak
        while day.isoformat() in active_days:
            streak += 1
            day -= timedelta(days=1)
        seen_here = [c for c in cards if c in known]
        dues = [sched.parse_time(cards[c]["due"]) for c in seen_here]
        return UserStats(
            user_id=user_id, reviews=len(reviews),
            reviews_7d=sum(1 for r in reviews if sched.parse_time(r["reviewed_at"]) >= now - timedelta(days=7)),
            cards_total=len(quizzable), cards_seen=len(seen_here), due_now=sum(1 for d in dues if d <= now),
            due_24h=sum(1 for d in dues if d <= now + timedelta(days=1)),
            new_available=len(quizzable) - len(seen_here),
            retention=round(sum(r["rating"] > int(Rating.Again) for r in learned) / len(learned), 3) if learned else None,
            accuracy=round(sum(r["verdict"] == CORRECT for r in graded) / len(graded), 3) if graded else None,
            streak_days=streak, next_due=min(dues) if dues else None, topics=tuple(mastery),
            daily=tuple(DayCount(d, *per_day[d]) for d in days),
        )  # fmt: skip

    def set_leaderboard(self, user_id: str, opt_in: bool, display_name: str | None = None) -> None:
        """Opt in to (or out of) leaderboards; nobody is listed without opting in."""
        with self._lock, self._store.transaction():
            self._ensure_user(str(user_id), display_name, self._clock())
            self._store.db.execute(
                "UPDATE quiz_users SET leaderboard=? WHERE user_id=?", [int(opt_in), str(user_id)]
            )

    def leaderboard(
        self, user_ids: Iterable[str] | None = None, days: int = 7, limit: int = 10
    ) -> list[LeaderRow]:
        """Opted-in users (restricted to ``user_ids``, a guild's members, when given) by reviews in ``days``."""
        since = sched.iso(self._clock() - timedelta(days=days))
        wanted = {str(u) for u in user_ids} if user_ids is not None else None
        with self._lock:
            users = list(
                self._store.db.query("SELECT user_id, display_name FROM quiz_users WHERE leaderboard = 1")
            )
        rows = []
        for user in users:
            if wanted is not None and user["user_id"] not in wanted:
                continue
            with self._lock:
                counts = self._store.db.execute(
                    "SELECT COUNT(*), SUM(verdict = ?) FROM quiz_reviews WHERE user_id = ? AND reviewed_at >= ?",
                    [CORRECT, user["user_id"], since],
                ).fetchone()
            if not counts[0]:
                continue
            stats = self.stats(user["user_id"])
            rows.append(
                LeaderRow(
                    user["user_id"], user["display_name"] or user["user_id"], counts[0], counts[1] or 0,
                    stats.retention, stats.streak_days,
                )
            )  # fmt: skip
        rows.sort(key=lambda r: (-r.reviews, -r.correct, r.user_id))
        return rows[:limit]


def _parse_choice(response: str | int, count: int) -> int:
    """0-based index from 0-based int, "1".."4" or "a".."d"."""
    if isinstance(response, int) and not isinstance(response, bool):
        index = response
    else:
        text = str(response).strip().lower().rstrip(").")
        if len(text) == 1 and "a" <= text <= "z":
            index = ord(text) - ord("a")
        elif text.isdigit():
            index = int(text) - 1
        else:
            raise QuizError(f"choose one of {', '.join(chr(ord('A') + i) for i in range(count))}")
    if not 0 <= index < count:
        raise QuizError(f"choose one of {', '.join(chr(ord('A') + i) for i in range(count))}")
    return index


def _check_filters(catalogue: Catalogue, topic: str | None, source: str | None) -> None:
    """A filter that matches no card is a typo, not "nothing due": say so and name what exists."""
    if source and not any(matches(c, source=source) for c in catalogue.cards):
        names = sorted({s for c in catalogue.cards for s in c.sources})
        raise QuizError(f"no document matches {source!r}; documents: {', '.join(names)}")
    if topic and not any(matches(c, topic=topic) for c in catalogue.cards):
        known = ", ".join(name for name, _ in catalogue.topics()[:8])
        raise QuizError(f"no cards match the topic {topic!r}; topics include: {known}")
    if topic and source and not any(matches(c, topic, source) for c in catalogue.cards):
        raise QuizError(f"no cards on {topic!r} in {source!r}")
