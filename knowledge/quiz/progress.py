"""Progress statistics: a learner's reviews, retention, due cards and per-topic mastery, and the leaderboard.

Read-only over the quiz tables (``QuizRepository``), except the leaderboard opt-in. ``QuizService``
delegates ``stats``, ``next_due``, ``set_leaderboard`` and ``leaderboard`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from fsrs import Rating, Scheduler, State

from knowledge.quiz import scheduler as sched
from knowledge.quiz.grading import VERDICTS, Verdict
from knowledge.quiz.models import DayCount, LeaderRow, TopicMastery, UserStats
from knowledge.quiz.repository import QuizRepository
from knowledge.quiz.selection import Catalogue, QuizCard, matches
from knowledge.scope import Scope

MASTERED_RECALL = 0.9
DAILY_DAYS = 30  # days of ``UserStats.daily``


class QuizProgress:
    """``QuizProgress(repository, scheduler, clock)``: statistics computed from the review log and card states."""

    def __init__(self, repository: QuizRepository, scheduler: Scheduler, clock: Callable[[], datetime]):
        self._repo = repository
        self._scheduler = scheduler
        self._clock = clock

    def next_due(self, user_id: str, card_ids: Collection[int] | None = None) -> datetime | None:
        """When the user's next card is due: of ``card_ids`` (the cards a scope sees), or of all theirs."""
        with self._repo.lock:
            if card_ids is None:
                return self._repo.next_due(str(user_id))
            dues = self._repo.due_dates(str(user_id))
        return min((due for card_id, due in dues.items() if card_id in card_ids), default=None)

    def stats(
        self,
        user_id: str,
        cards: Catalogue | Sequence[QuizCard],
        topic: str | None = None,
        *,
        scope: Scope | None = None,
        hidden: Collection[int] = (),
    ) -> UserStats:
        """Reviews, retention, due counts and per-topic mastery over ``cards`` (a scope's, or a catalogue's):
        what ``tutor stats`` and /stats show. With ``scope``, only the reviews of items of the shared notes
        and of its space count, less those of the items in ``hidden`` (its space's hides); without, all."""
        user_id = str(user_id)
        now = self._clock()
        everywhere = scope is None
        with self._repo.lock:
            states = self._repo.cards(user_id)
            reviews = self._repo.reviews(
                user_id, space=None if everywhere else scope.key, everywhere=everywhere, hidden=hidden
            )
        listed = cards.cards if isinstance(cards, Catalogue) else cards
        quizzable = [c for c in listed if matches(c, topic)]
        return user_stats(user_id, quizzable, states, reviews, self._scheduler, now)

    def set_leaderboard(self, user_id: str, opt_in: bool, display_name: str | None = None) -> None:
        """Opt in to (or out of) leaderboards; nobody is listed without opting in."""
        with self._repo.writing():
            self._repo.ensure_user(str(user_id), display_name, self._clock())
            self._repo.set_leaderboard(str(user_id), opt_in)

    def leaderboard(
        self,
        user_ids: Iterable[str] | None = None,
        days: int = 7,
        limit: int = 10,
        scope: Scope | None = None,
    ) -> list[LeaderRow]:
        """Opted-in users (restricted to ``user_ids``, a guild's members, when given) by reviews in ``days``:
        one query (``repository.LEADERBOARD_SQL``); retention and streak as ``stats`` computes them.
        ``scope``: count only reviews of what it sees (a server's board never counts another's cards)."""
        now = self._clock()
        wanted = [str(u) for u in user_ids] if user_ids is not None else None
        with self._repo.lock:
            rows = self._repo.leaderboard(
                wanted, now - timedelta(days=days), now.date(), limit,
                space=scope.key if scope is not None else None, anywhere=scope is None,
            )  # fmt: skip
        return [
            LeaderRow(
                r["user_id"],
                r["display_name"] or r["user_id"],
                r["reviews"],
                r["correct"] or 0,
                round(r["recalled"] / r["learned"], 3) if r["learned"] else None,
                r["streak"],
            )
            for r in rows
        ]


def user_stats(
    user_id: str,
    quizzable: Sequence[QuizCard],
    cards: dict[int, dict[str, Any]],
    reviews: Sequence[dict[str, Any]],
    scheduler: Scheduler,
    now: datetime,
) -> UserStats:
    """``UserStats`` from the cards in scope, the user's card states (card id -> ``quiz_cards`` row) and
    their reviews (oldest first)."""
    known = {c.card_id for c in quizzable}
    recall = {}  # a card still in (re)learning is not learned yet, however recently it was seen
    for card_id, row in cards.items():
        learned_card = row["state"] == int(State.Review)
        card = sched.card_from_json(row["fsrs"])
        recall[card_id] = scheduler.get_card_retrievability(card, now) if learned_card else 0.0
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
    graded = [r for r in reviews if r["verdict"] in VERDICTS]
    days = [(now - timedelta(days=i)).date().isoformat() for i in range(DAILY_DAYS - 1, -1, -1)]
    per_day = {d: [0, 0] for d in days}
    for r in reviews:
        day = r["reviewed_at"][:10]
        if day in per_day:
            per_day[day][0] += 1
            per_day[day][1] += int(r["rating"] >= int(Rating.Hard))
    seen_here = [c for c in cards if c in known]
    dues = [sched.parse_time(cards[c]["due"]) for c in seen_here]
    return UserStats(
        user_id=user_id, reviews=len(reviews),
        reviews_7d=sum(1 for r in reviews if sched.parse_time(r["reviewed_at"]) >= now - timedelta(days=7)),
        cards_total=len(quizzable), cards_seen=len(seen_here), due_now=sum(1 for d in dues if d <= now),
        due_24h=sum(1 for d in dues if d <= now + timedelta(days=1)),
        new_available=len(quizzable) - len(seen_here),
        retention=round(sum(r["rating"] > int(Rating.Again) for r in learned) / len(learned), 3) if learned else None,
        accuracy=round(sum(r["verdict"] == Verdict.CORRECT for r in graded) / len(graded), 3) if graded else None,
        streak_days=streak_days({r["reviewed_at"][:10] for r in reviews}, now),
        next_due=min(dues) if dues else None, topics=tuple(mastery),
        daily=tuple(DayCount(d, *per_day[d]) for d in days),
    )  # fmt: skip


def streak_days(active_days: set[str], now: datetime) -> int:
    """Consecutive days with a review (``YYYY-MM-DD``) up to today; today not yet practised does not break
    the streak. ``LEADERBOARD_SQL`` computes the same in SQL."""
    streak, day = 0, now.date()
    if day.isoformat() not in active_days:
        day -= timedelta(days=1)
    while day.isoformat() in active_days:
        streak += 1
        day -= timedelta(days=1)
    return streak
