"""The quiz service: sessions of questions over the knowledge store, graded and scheduled with FSRS.

Front ends (the terminal, the Discord bot) call only this class and get frozen values back. Everything a
session needs to resume (its planned cards, multiple-choice options, the current question's phase) is in
SQLite, so a session survives a restart of the process, and a review is committed in the same transaction
that records the answer: what the learner was told is what the database holds.

Here is the session flow; the SQL is ``knowledge.quiz.repository`` and the statistics and leaderboard
``knowledge.quiz.progress``, which the service delegates to.

Thread safety: the service uses the store it is given, the process's one connection, and opens none of
its own (how threads share it: the note in ``knowledge.quiz.repository``). Every step runs under the
store's lock, and every read-modify-write inside one store transaction (``BEGIN IMMEDIATE``, which also
serialises against other processes on the same file). Grading, the only slow step, runs outside both.
Per-slot phases make every call idempotent: a second answer to the same question returns the first grade,
never a second review.

Spaces (``knowledge.scope``): a session belongs to the scope it was started in (``quiz_sessions.scope``;
``Scope.shared()``, the notes alone, in direct messages and the terminal). Its cards are the ones that scope
sees (``Catalogue.within``): shared cards and its space's own, less what its space hides and what is
disabled, with multiple-choice options from those cards only. Each question is shown, hinted, revealed and
graded against the answer as that scope sees it, its space's correction first, else an everywhere one,
read at each step (``load_overrides``: overrides change without changing the store's content hash), and a
card hidden there after the session began is withdrawn like a retired one. Topics, sources, statistics and
due dates follow the scope too.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fsrs import Rating, Scheduler

from knowledge.errors import ReadOnlyStore
from knowledge.models import NOT_SERVABLE
from knowledge.overrides import load_overrides
from knowledge.quiz import scheduler as sched
from knowledge.quiz.grading import VERDICTS, Grader, Verdict
from knowledge.quiz.models import (
    Graded,
    LeaderRow,
    Question,
    QuizError,
    Session,
    SessionStatus,
    SlotPhase,
    UserStats,
)
from knowledge.quiz.progress import MASTERED_RECALL, QuizProgress
from knowledge.quiz.repository import QuizRepository
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
from knowledge.scope import Overrides, Scope
from knowledge.store import Store
from knowledge.vectors import TextVectors

MAX_QUESTIONS = 50
SessionRef = Session | str
SHARED = Scope.shared()

__all__ = ["MASTERED_RECALL", "MAX_QUESTIONS", "QuizService", "SessionRef"]


class _Withdrawn(QuizError):
    """The card of a question is no longer asked in its session's scope (retired, disabled or hidden)."""


class QuizService:
    """``QuizService(store, encoder)``; ``encoder`` has ``encode(texts) -> (n, d)`` L2-normalised vectors.

    ``store`` is used, not copied: the service opens no connection of its own and ``close`` leaves the
    store open (its owner closes it). ``grader`` grades typed answers (``grade``/``grade_many`` like
    ``Grader``); by default the rule grader. Entry points pass the trained one (``knowledge.quiz.learned``).
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
        self._store = store
        self._repo = QuizRepository(store)
        self._lock = self._repo.lock  # the store's: see knowledge.quiz.repository
        embed = encoder.encode if hasattr(encoder, "encode") else encoder
        self._grader = grader if grader is not None else Grader(embed)  # the trained one: tutor.services
        self._vectors = TextVectors(store, encoder)
        self._scheduler = scheduler or Scheduler()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._progress = QuizProgress(self._repo, self._scheduler, self._clock)
        self._catalogue: Catalogue | None = None

    def close(self) -> None:
        """Forget the cached catalogue; the store stays open (it is shared, and its owner closes it)."""
        with self._lock:
            self._catalogue = None

    def __enter__(self) -> QuizService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- catalogue -------------------------------------------------------------------------------------
    def catalogue(self, refresh: bool = False) -> Catalogue:
        """Every space's quizzable cards; ``refresh`` rebuilds them if the store changed (re-ingest, disabled
        item). What one scope sees of it: ``scoped``.

        Built without holding the store's lock across the embedding (its reads and the vector cache lock
        their own steps), so a first build (the bot's warm-up, a new deck's cards) does not stall the other
        threads; two threads may both build, and the last one's catalogue is kept (they are equal).
        """
        current = self._catalogue
        if current is not None and not refresh:
            return current
        fingerprint = str(self._store.content_version())
        if current is not None and current.fingerprint == fingerprint:
            return current
        # The cards it already had, unchanged, keep their vectors and topics: a change in one space costs
        # that space's cards, plus reading the store.
        built = build_catalogue(self._store, self._vectors, previous=current, fingerprint=fingerprint)
        self._catalogue = built
        return built

    def scoped(self, scope: Scope = SHARED, refresh: bool = False) -> Catalogue:
        """The catalogue of what ``scope`` sees now: its cards (shared and its space's, less its hides and
        the disabled), their answers as corrected for it, and multiple-choice options among them only."""
        return self.catalogue(refresh).within(scope, load_overrides(self._store), self._vectors)

    def cards(self, scope: Scope = SHARED) -> list[QuizCard]:
        """The cards ``scope`` sees, answers corrected for it (without the vectors ``scoped`` subsets)."""
        return self.catalogue().scoped_cards(scope, load_overrides(self._store))

    def topics(self, scope: Scope = SHARED) -> list[tuple[str, int]]:
        """(topic, number of cards) of what ``scope`` sees, most cards first: for autocomplete and ``--topic``."""
        counts: dict[str, int] = {}
        for card in self.cards(scope):
            counts[card.topic] = counts.get(card.topic, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def sources(self, scope: Scope = SHARED) -> list[tuple[str, str, int]]:
        """(source, title, number of cards) of what ``scope`` sees."""
        counts: dict[tuple[str, str], int] = {}
        for card in self.cards(scope):
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
        scope: Scope = SHARED,
    ) -> Session:
        """Plan a session of the cards ``scope`` sees: due cards first, then new ones. The user's previous
        active session (in whatever scope) is ended.

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
        catalogue = self.scoped(scope, refresh=True)
        _check_filters(catalogue, topic, source)
        session_id = uuid.uuid4().hex
        rng = random.Random(session_id)
        repo = self._repo
        with repo.writing():
            now = self._clock()
            repo.ensure_user(user_id, display_name, now)
            repo.end_active(user_id, now)
            picks = select_cards(
                catalogue, repo.due_dates(user_id), now, n,
                topic=topic, source=source, mode=mode, review_only=review_only,
            )  # fmt: skip
            repo.add_session(
                session_id, user_id, mode=mode, topic=topic, source=source, review_only=review_only,
                total=len(picks), meta=meta, now=now, scope=scope.key,
            )  # fmt: skip
            for position, (card, is_new) in enumerate(picks):
                card_mode = resolve_mode(card, mode, catalogue)
                choices, correct = (None, None)
                if card_mode == MC:
                    choices, correct = multiple_choice(catalogue, card, rng)
                repo.add_slot(
                    session_id, position, card_id=card.card_id, item_id=card.item_id, mode=card_mode,
                    is_new=is_new, choices=choices, correct_choice=correct,
                )  # fmt: skip
        return self.session(session_id)

    def session(self, session: SessionRef) -> Session:
        with self._lock:
            return self._session(self._id(session))

    def active_session(self, user_id: str, scope: Scope | None = None) -> Session | None:
        """The user's session in progress, if any (a restarted bot resumes it); with ``scope``, only one
        started in that scope (a quiz begun in one server is not shown in another)."""
        with self._lock:
            session_id = self._repo.active_session_id(str(user_id))
            if not session_id:
                return None
            session = self._session(session_id)
            return session if scope is None or session.scope == scope.key else None

    def set_meta(self, session: SessionRef, **values: Any) -> Session:
        """Attach front-end data (channel and message ids, say) to a session; merged into ``Session.meta``."""
        session_id = self._id(session)
        with self._repo.writing():
            current = self._session_row(session_id)
            self._repo.set_meta(session_id, {**json.loads(current["meta"] or "{}"), **values})
        return self.session(session_id)

    def end(self, session: SessionRef, user_id: str | None = None) -> Session:
        """Stop early; every review already given stays recorded, unanswered questions are dropped."""
        session_id = self._id(session)
        with self._repo.writing():
            row = self._session_row(session_id, user_id)
            if row["status"] == SessionStatus.ACTIVE:
                self._repo.set_status(session_id, SessionStatus.ENDED, self._clock())
        return self.session(session_id)

    def end_stale(self, older_than: timedelta) -> int:
        """End sessions untouched for ``older_than`` (the bot's housekeeping); returns how many."""
        cutoff = self._clock() - older_than
        with self._repo.writing():
            return self._repo.end_stale(cutoff)

    # --- questions -------------------------------------------------------------------------------------
    def current(self, session: SessionRef) -> Question | None:
        """The current question in whatever phase it is, without moving on (to redraw a view)."""
        with self._lock:
            row = self._session_row(self._id(session))
            if row["status"] != SessionStatus.ACTIVE:
                return None
            slot = self._repo.slot(row["id"], row["position"])
            if slot is None:
                return None
            try:
                return self._question(row, slot)
            except _Withdrawn:  # ``question`` moves past it
                return None

    def question(self, session: SessionRef, user_id: str | None = None) -> Question | None:
        """The question to show: the open one again, or the next once the current one is done; None at the end."""
        session_id = self._id(session)
        repo = self._repo
        with repo.writing():
            row = self._session_row(session_id, user_id)
            if row["status"] != SessionStatus.ACTIVE:
                return None
            position = row["position"]
            slot = repo.slot(session_id, position)
            if slot is not None and slot["phase"].done:
                position += 1
                slot = repo.slot(session_id, position)
            scope, overrides = _scope(row), load_overrides(self._store)
            while slot is not None and slot["phase"].open and self._withdrawn(slot, scope, overrides):
                repo.set_phase(session_id, position, SlotPhase.SKIPPED)  # withdrawn since it was planned
                position += 1
                slot = repo.slot(session_id, position)
            now = self._clock()
            if slot is None:
                repo.finish(session_id, row["total"], now)
                return None
            if slot["phase"] == SlotPhase.PENDING:
                repo.mark_asked(session_id, position, now)
            repo.move_to(session_id, position, now)
            row = self._session_row(session_id)
            return self._question(row, repo.slot(session_id, position))

    def hint(self, session: SessionRef, user_id: str | None = None) -> str | None:
        """The current question's hint (None where there is none); using it caps the derived rating at Hard."""
        session_id = self._id(session)
        with self._repo.writing():
            row, slot = self._open_slot(session_id, user_id)
            text = hint_for(self._card(slot, _scope(row)), slot["mode"])
            if text is not None and slot["phase"].open:
                self._repo.use_hint(session_id, slot["position"])
            return text

    def answer(self, session: SessionRef, response: str | int, user_id: str | None = None) -> Graded:
        """Grade a typed answer (or a multiple-choice index / letter) and commit the review.

        The review is committed with the rating derived from the grade; ``rate`` may replace that rating
        until the next question is shown. Answering an answered question returns the first grade.
        """
        session_id = self._id(session)
        with self._lock:
            row, slot = self._open_slot(session_id, user_id)
            scope = _scope(row)
            if slot["phase"].graded:
                return self._graded(slot, scope)
            if slot["phase"] == SlotPhase.SKIPPED:
                raise QuizError("that question was skipped")
            card = self._card(slot, scope)
            mode = slot["mode"]
        if mode == MC:  # graded outside the lock: another learner's step need not wait for it
            choices = json.loads(slot["choices"])
            choice = _parse_choice(response, len(choices))
            right = choice == slot["correct_choice"]
            verdict = Verdict.CORRECT if right else Verdict.WRONG
            score, text = (1.0 if right else 0.0), choices[choice]
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
            row, slot = self._open_slot(session_id, user_id)
            if slot["phase"].graded:
                return self._graded(slot, _scope(row))
            if slot["phase"] == SlotPhase.SKIPPED:
                raise QuizError("that question was skipped")
            self._card(slot, _scope(row))  # a withdrawn card is not revealed
        nothing = {"matched": [], "missing": [], "choice": None}
        return self._commit(session_id, slot["position"], sched.REVEALED, 0.0, "", nothing)

    def skip(self, session: SessionRef, user_id: str | None = None) -> Session:
        """Pass on the current question: nothing is recorded and the card stays due."""
        session_id = self._id(session)
        with self._repo.writing():
            _row, slot = self._open_slot(session_id, user_id)
            if slot["phase"].open:
                self._repo.set_phase(session_id, slot["position"], SlotPhase.SKIPPED)
        return self.session(session_id)

    def rate(self, session: SessionRef, rating: Rating | int | str, user_id: str | None = None) -> Graded:
        """The learner's own rating (Again/Hard/Good/Easy) for the question just answered or revealed."""
        value = sched.parse_rating(rating)
        session_id = self._id(session)
        repo = self._repo
        with repo.writing():
            row, slot = self._open_slot(session_id, user_id)
            if not slot["phase"].graded:
                raise QuizError("answer or reveal the question before rating it")
            review = repo.review(slot["review_id"])
            before = sched.card_from_json(slot["card_before"])
            when = sched.parse_time(review["reviewed_at"])
            after = sched.review(self._scheduler, before, value, when, review["duration_ms"])
            repo.update_review(
                review["id"], sched.review_row(before, after, value, "self", when, review["duration_ms"])
            )
            stored = repo.load_card(row["user_id"], slot["card_id"])
            # Only rewrite the card if no later review (another session) has moved it on since.
            if stored is None or stored.last_review is None or stored.last_review <= when:
                repo.save_card(row["user_id"], after, self._clock())
            repo.set_phase(session_id, slot["position"], SlotPhase.RATED)
            return self._graded(repo.slot(session_id, slot["position"]), _scope(row))

    # --- contested grades -------------------------------------------------------------------------------
    def contest(
        self, session: SessionRef, position: int, user_id: str | None = None, claimed: str = Verdict.CORRECT
    ) -> int:
        """ "I think I was right": record the learner's claim about a graded free answer; returns its id.

        Stored for an admin to confirm or reject (``tutor quiz contests``); a confirmed claim is kept, with
        the admin's grade, as a labelled answer for training a grader. Contesting twice keeps the first.
        """
        if claimed not in VERDICTS:
            raise QuizError(f"a claimed grade is correct, partly or wrong, not {claimed!r}")
        session_id = self._id(session)
        with self._repo.writing():
            row = self._session_row(session_id, user_id)
            slot = self._repo.slot(session_id, position)
            if slot is None or not slot["phase"].graded:
                raise QuizError("only a graded answer can be contested")
            verdict = json.loads(slot["grade"])["verdict"]
            if slot["mode"] == MC or verdict not in VERDICTS:
                raise QuizError("only a typed answer's grade can be contested")
            card = self._card(slot, _scope(row))
            existing = self._repo.contest_id(session_id, position)
            if existing is not None:
                return existing
            return self._repo.add_contest(
                user_id=row["user_id"], slot=slot, source=card.source, n=card.n, verdict=verdict,
                claimed=claimed, now=self._clock(),
            )  # fmt: skip

    def contested(self, session: SessionRef, position: int) -> bool:
        with self._lock:
            return self._repo.contest_id(self._id(session), position) is not None

    def contests(self, status: str | None = None) -> list[dict[str, Any]]:
        """Contested grades, newest first (``status``: pending, confirmed or rejected)."""
        with self._lock:
            return self._repo.contests(status)

    def decide_contest(self, contest_id: int, label: str | None, decided_by: str) -> dict[str, Any]:
        """An admin's decision: ``label`` (correct, partly, wrong) confirms it as that grade; None rejects it."""
        if label is not None and label not in VERDICTS:
            raise QuizError(f"a grade is correct, partly or wrong, not {label!r}")
        with self._repo.writing():
            if not self._repo.decide_contest(contest_id, label, decided_by, self._clock()):
                raise QuizError(f"there is no contested grade {contest_id}")
            decided = self._repo.contest(contest_id)
        assert decided is not None
        return decided

    # --- progress (knowledge.quiz.progress) ------------------------------------------------------------
    def next_due(self, user_id: str, scope: Scope | None = None) -> datetime | None:
        """When the user's next card is due: of the cards ``scope`` sees (None: of every card they have)."""
        if scope is None:
            return self._progress.next_due(user_id)
        return self._progress.next_due(user_id, {c.card_id for c in self.cards(scope)})

    def stats(self, user_id: str, topic: str | None = None, scope: Scope = SHARED) -> UserStats:
        """Reviews, retention, due counts and per-topic mastery of what ``scope`` sees: its cards, and the
        reviews of items of the shared notes and of its space's (less those its space hides). What
        ``tutor stats`` and /stats show."""
        overrides = load_overrides(self._store)
        cards = self.catalogue().scoped_cards(scope, overrides)
        return self._progress.stats(user_id, cards, topic, scope=scope, hidden=overrides.hidden_in(scope))

    def set_leaderboard(self, user_id: str, opt_in: bool, display_name: str | None = None) -> None:
        """Opt in to (or out of) leaderboards; nobody is listed without opting in."""
        self._progress.set_leaderboard(user_id, opt_in, display_name)

    def leaderboard(
        self,
        user_ids: Iterable[str] | None = None,
        days: int = 7,
        limit: int = 10,
        scope: Scope | None = None,
    ) -> list[LeaderRow]:
        """Opted-in users (restricted to ``user_ids``, a guild's members, when given) by reviews in ``days``;
        ``scope``: only reviews of what it sees (None: every review)."""
        return self._progress.leaderboard(user_ids, days, limit, scope)

    # --- internals -------------------------------------------------------------------------------------
    def _commit(
        self, session_id: str, position: int, verdict: str, score: float, text: str, info: dict[str, Any]
    ) -> Graded:
        repo = self._repo
        with repo.writing():
            row = self._session_row(session_id)
            slot = repo.slot(session_id, position)
            if slot is None or slot["phase"].graded:  # answered meanwhile (a double click)
                return self._graded(slot, _scope(row))
            if (
                row["status"] != SessionStatus.ACTIVE
                or slot["phase"] == SlotPhase.SKIPPED
                or row["position"] != position
            ):
                raise QuizError("that question is closed")
            now = self._clock()
            asked = sched.parse_time(slot["asked_at"]) if slot["asked_at"] else now
            duration = max(0, int((now - asked).total_seconds() * 1000))
            user_id = row["user_id"]
            before = repo.load_card(user_id, slot["card_id"]) or sched.new_card(slot["card_id"], now)
            rating = sched.rating_from_grade(verdict, bool(slot["hint_used"]))
            after = sched.review(self._scheduler, before, rating, now, duration)
            review_id = repo.add_review(
                user_id, slot, verdict=verdict, score=score, answer=text,
                fields=sched.review_row(before, after, rating, "grade", now, duration),
            )  # fmt: skip
            repo.save_card(user_id, after, now)
            info = {**info, "verdict": verdict, "score": round(score, 3), "suggested": int(rating)}
            repo.record_answer(
                session_id, position, asked=asked, answer=text, grade=info, card_before=before,
                review_id=review_id,
            )  # fmt: skip
            repo.touch(session_id, now)
            return self._graded(repo.slot(session_id, position), _scope(row))

    @staticmethod
    def _id(session: SessionRef) -> str:
        return session.id if isinstance(session, Session) else str(session)

    def _session_row(self, session_id: str, user_id: str | None = None) -> dict[str, Any]:
        row = self._repo.session(session_id)
        if row is None:
            raise QuizError(f"no quiz session {session_id}")
        if user_id is not None and row["user_id"] != str(user_id):
            raise QuizError("this quiz belongs to someone else")
        return row

    def _open_slot(self, session_id: str, user_id: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        row = self._session_row(session_id, user_id)
        if row["status"] != SessionStatus.ACTIVE:
            raise QuizError("this quiz is over")
        slot = self._repo.slot(session_id, row["position"])
        if slot is None:
            raise QuizError("this quiz has no open question")
        return row, slot

    def _card(self, slot: dict[str, Any], scope: Scope, overrides: Overrides | None = None) -> QuizCard:
        """The card as its session's ``scope`` sees it now (``Catalogue.served``): the planned member's text
        (or its current text if the store changed since), with the answer corrected for that scope (the
        correction of that member, else of another of the card's members it does not hide); ``_Withdrawn``
        if that member was retired, disabled or hidden there since."""
        overrides = load_overrides(self._store) if overrides is None else overrides
        catalogue = self.catalogue()
        card = catalogue.card(slot["card_id"])
        if card is None or not catalogue.serves(card, slot["item_id"]):
            item = self._store.item(slot["item_id"])
            if item.flags & NOT_SERVABLE or item.retired or not scope.sees(item.scope):
                raise _Withdrawn("this question was withdrawn from the knowledge base; skip it")
            # Still one of the card's members: corrections of the others apply to it too.
            others = (
                tuple(m for m in card.member_ids if m != item.id)
                if card and item.id in card.member_ids
                else ()
            )
            card = QuizCard(
                slot["card_id"], item.id, item.question, item.answer, item.source, item.n, item.source,
                card.topic if card else "", "cloze" in item.flags, (item.source,), item.scope,
                (item.id, *others) if others else (),
            )  # fmt: skip
        seen = catalogue.served(card, scope, overrides, item_id=slot["item_id"])
        if seen is None:
            raise _Withdrawn("this question was withdrawn from the knowledge base; skip it")
        return seen

    def _withdrawn(self, slot: dict[str, Any], scope: Scope, overrides: Overrides) -> bool:
        try:
            self._card(slot, scope, overrides)
        except _Withdrawn:
            return True
        return False

    def _session(self, session_id: str) -> Session:
        row = self._session_row(session_id)
        counts = self._repo.verdict_counts(session_id)
        return Session(
            id=row["id"], user_id=row["user_id"], mode=row["mode"], topic=row["topic"], source=row["source"],
            review_only=bool(row["review_only"]), total=row["total"], position=row["position"],
            status=SessionStatus(row["status"]), created_at=sched.parse_time(row["created_at"]),
            answered=sum(counts.values()), correct=counts.get(Verdict.CORRECT, 0),
            partly=counts.get(Verdict.PARTLY, 0),
            wrong=counts.get(Verdict.WRONG, 0) + counts.get(sched.REVEALED, 0),
            skipped=self._repo.skipped(session_id), meta=json.loads(row["meta"] or "{}"), scope=row["scope"],
        )  # fmt: skip

    def _question(self, row: dict[str, Any], slot: dict[str, Any]) -> Question:
        scope = _scope(row)
        card = self._card(slot, scope)
        return Question(
            session_id=row["id"], position=slot["position"], total=row["total"], card_id=slot["card_id"],
            item_id=slot["item_id"], mode=slot["mode"], prompt=card.question,
            choices=tuple(json.loads(slot["choices"])) if slot["choices"] else (),
            has_hint=hint_for(card, slot["mode"]) is not None, is_new=bool(slot["is_new"]), topic=card.topic,
            source=card.source, n=card.n, title=card.title, phase=slot["phase"],
            graded=self._graded(slot, scope, card) if slot["phase"].graded else None,
        )  # fmt: skip

    def _graded(self, slot: dict[str, Any] | None, scope: Scope, card: QuizCard | None = None) -> Graded:
        assert slot is not None and slot["review_id"] is not None
        review = self._repo.review(slot["review_id"])
        info = json.loads(slot["grade"])
        card = card if card is not None else self._card(slot, scope)
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


def _scope(row: dict[str, Any]) -> Scope:
    """The scope a session was started in (``quiz_sessions.scope``; NULL: the shared notes)."""
    return Scope(row.get("scope"))


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
