"""Plain values the quiz service hands to its front ends (terminal, Discord): frozen, no behaviour that needs I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from knowledge.errors import KnowledgeError
from knowledge.quiz.grading import Verdict


class SessionStatus(StrEnum):
    """``quiz_sessions.status``: a ``str``, so SQLite holds the plain value ("active")."""

    ACTIVE = "active"  # questions left to ask
    FINISHED = "finished"  # every planned question was asked (or none could be planned)
    ENDED = "ended"  # stopped early: by the learner, a new session of theirs, or housekeeping


class SlotPhase(StrEnum):
    """``quiz_slots.phase``, one question of a session: ``PENDING`` (planned) -> ``ASKING`` (shown) ->
    ``ANSWERED`` (graded, review committed) -> ``RATED`` (self-rated); or ``SKIPPED`` (no review).

    Not retrieval's ``ANSWERED`` status (``index.answer``): always spelt ``SlotPhase.ANSWERED``.
    """

    PENDING = "pending"
    ASKING = "asking"
    ANSWERED = "answered"
    RATED = "rated"
    SKIPPED = "skipped"

    @property
    def open(self) -> bool:
        """Not yet answered or skipped: a hint, an answer or a skip still applies."""
        return self in (SlotPhase.PENDING, SlotPhase.ASKING)

    @property
    def graded(self) -> bool:
        """Answered or revealed, a review committed (and perhaps rated since)."""
        return self in (SlotPhase.ANSWERED, SlotPhase.RATED)

    @property
    def done(self) -> bool:
        """The session moves on from this question at the next ``question`` call."""
        return self in (SlotPhase.ANSWERED, SlotPhase.RATED, SlotPhase.SKIPPED)


class QuizError(KnowledgeError):
    """A request the quiz cannot honour (no such session, not the owner, question closed); safe to show."""


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    mode: str
    topic: str | None
    source: str | None
    review_only: bool
    total: int  # questions planned
    position: int  # 0-based index of the current question
    status: SessionStatus
    created_at: datetime
    answered: int = 0  # reviews recorded
    correct: int = 0
    partly: int = 0
    wrong: int = 0  # includes revealed
    skipped: int = 0
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # front-end data (channel, message ids)
    scope: str | None = None  # the key of the space it draws from (knowledge.scope); None: the shared notes

    @property
    def active(self) -> bool:
        return self.status == SessionStatus.ACTIVE


@dataclass(frozen=True)
class Graded:
    """The outcome of one question: verdict, the reference answer, and what FSRS made of it."""

    session_id: str
    position: int
    card_id: int
    item_id: int
    mode: str
    verdict: str  # a Verdict (correct | partly | wrong), or revealed (scheduler.REVEALED)
    score: float
    answer: str  # what the learner typed (or the chosen option's text)
    reference: str
    choice: int | None  # multiple choice: the learner's 0-based choice
    correct_choice: int | None
    matched: tuple[str, ...]
    missing: tuple[str, ...]
    hint_used: bool
    suggested_rating: int  # derived from the verdict (1 Again .. 4 Easy)
    rating: int  # the rating in force: suggested until the learner rates
    rated_by: str  # "grade" | "self"
    due: datetime
    interval: str  # "in 10 minutes"
    source: str
    n: int
    title: str

    @property
    def contestable(self) -> bool:
        """A typed answer the grader marked down: the learner may claim it was right."""
        return self.mode != "mc" and self.verdict in (Verdict.PARTLY, Verdict.WRONG)


@dataclass(frozen=True)
class Question:
    session_id: str
    position: int
    total: int
    card_id: int
    item_id: int
    mode: str  # free | mc | cloze
    prompt: str
    choices: tuple[str, ...]  # multiple choice only
    has_hint: bool
    is_new: bool
    topic: str
    source: str
    n: int
    title: str
    phase: SlotPhase  # asking | answered | rated | skipped
    graded: Graded | None = None  # set once answered: a restored view shows the rating buttons

    @property
    def number(self) -> int:
        return self.position + 1


@dataclass(frozen=True)
class TopicMastery:
    topic: str
    cards: int
    seen: int
    mastered: int  # in FSRS review state and still recalled with probability >= 0.9
    mastery: float  # mean current recall probability over the topic's cards (unseen count 0)


@dataclass(frozen=True)
class DayCount:
    day: str  # YYYY-MM-DD (UTC)
    reviews: int
    recalled: int  # rated Hard or better


@dataclass(frozen=True)
class UserStats:
    user_id: str
    reviews: int
    reviews_7d: int
    cards_total: int  # quizzable cards in the base
    cards_seen: int
    due_now: int
    due_24h: int
    new_available: int
    retention: float | None  # share of reviews of already-learned cards recalled (not Again)
    accuracy: float | None  # share of graded answers judged correct
    streak_days: int
    next_due: datetime | None
    topics: tuple[TopicMastery, ...]
    daily: tuple[DayCount, ...]  # the last 30 days, oldest first


@dataclass(frozen=True)
class LeaderRow:
    user_id: str
    display_name: str
    reviews: int
    correct: int
    retention: float | None
    streak_days: int
