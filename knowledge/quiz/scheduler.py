"""FSRS spaced repetition per (user, card), persisted in ``quiz_cards`` with one ``quiz_reviews`` row per review.

The FSRS card is stored whole (``fsrs.Card.to_dict``) next to the columns the queries need (due, state,
stability), so scheduling is exactly what the ``fsrs`` package computes and due-first selection is one index
scan. A card is a duplicate group, so a question that two documents ask is scheduled once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils
from fsrs import Card, Rating, Scheduler, State

from knowledge.quiz.grading import CORRECT, PARTLY

REVEALED = "revealed"
RATING_NAMES = {Rating.Again: "Again", Rating.Hard: "Hard", Rating.Good: "Good", Rating.Easy: "Easy"}


def parse_rating(value: Rating | int | str) -> Rating:
    """Accept Rating, 1-4 or the button label ("good", "Again")."""
    if isinstance(value, str):
        key = value.strip().lower()
        for rating, name in RATING_NAMES.items():
            if key in (name.lower(), str(int(rating)), name[0].lower()):
                return rating
        raise ValueError(f"unknown rating {value!r}; choose Again, Hard, Good or Easy")
    return Rating(int(value))


def rating_from_grade(verdict: str, hint_used: bool = False) -> Rating:
    """The rating a learner who skips self-rating gets: recall quality as graded, a hint costs one step."""
    if verdict == CORRECT:
        return Rating.Hard if hint_used else Rating.Good
    if verdict == PARTLY:
        return Rating.Hard
    return Rating.Again


def new_card(card_id: int, now: datetime) -> Card:
    return Card(card_id=card_id, due=now)


def card_from_json(text: str) -> Card:
    return Card.from_dict(json.loads(text))


def load_card(db: sqlite_utils.Database, user_id: str, card_id: int) -> Card | None:
    rows = list(db.query("SELECT fsrs FROM quiz_cards WHERE user_id = ? AND card_id = ?", [user_id, card_id]))
    return card_from_json(rows[0]["fsrs"]) if rows else None


def save_card(db: sqlite_utils.Database, user_id: str, card: Card, now: datetime) -> None:
    counts = db.execute(
        "SELECT COUNT(*), SUM(CASE WHEN state_before = ? AND rating = ? THEN 1 ELSE 0 END) FROM quiz_reviews"
        " WHERE user_id = ? AND card_id = ?",
        [int(State.Review), int(Rating.Again), user_id, card.card_id],
    ).fetchone()
    db.execute(
        "INSERT INTO quiz_cards (user_id, card_id, state, due, stability, difficulty, reps, lapses, last_review,"
        " fsrs, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, card_id) DO UPDATE SET"
        " state=excluded.state, due=excluded.due, stability=excluded.stability, difficulty=excluded.difficulty,"
        " reps=excluded.reps, lapses=excluded.lapses, last_review=excluded.last_review, fsrs=excluded.fsrs,"
        " updated_at=excluded.updated_at",
        [user_id, card.card_id, int(card.state), iso(card.due), card.stability, card.difficulty, counts[0] or 0,
         counts[1] or 0, iso(card.last_review) if card.last_review else None, json.dumps(card.to_dict()),
         iso(now)],
    )  # fmt: skip


def review(scheduler: Scheduler, card: Card, rating: Rating, when: datetime, duration_ms: int | None) -> Card:
    after, _log = scheduler.review_card(card, rating, review_datetime=when, review_duration=duration_ms)
    return after


def review_row(
    before: Card, after: Card, rating: Rating, rated_by: str, when: datetime, duration_ms: int | None
) -> dict[str, Any]:
    return {
        "rating": int(rating), "rated_by": rated_by, "reviewed_at": iso(when), "duration_ms": duration_ms,
        "state_before": int(before.state), "state_after": int(after.state), "due_after": iso(after.due),
        "stability_after": after.stability, "difficulty_after": after.difficulty,
    }  # fmt: skip


def iso(moment: datetime) -> str:
    """UTC, microseconds kept: review times order reviews and must round-trip exactly."""
    return moment.astimezone(UTC).isoformat()


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def describe_interval(due: datetime, now: datetime) -> str:
    """ "in 10 minutes", "in 3 days": what the learner is told after each review."""
    delta = max(due - now, timedelta(0))
    minutes = delta.total_seconds() / 60
    if minutes < 1:
        return "now"
    if minutes < 60:
        return f"in {round(minutes)} minute{'s' if round(minutes) != 1 else ''}"
    if minutes < 60 * 24:
        hours = round(minutes / 60)
        return f"in {hours} hour{'s' if hours != 1 else ''}"
    days = round(minutes / (60 * 24))
    if days < 60:
        return f"in {days} day{'s' if days != 1 else ''}"
    months = round(days / 30)
    return f"in {months} month{'s' if months != 1 else ''}"


__all__ = [
    "RATING_NAMES",
    "REVEALED",
    "Card",
    "Rating",
    "Scheduler",
    "State",
    "describe_interval",
    "iso",
    "load_card",
    "new_card",
    "parse_rating",
    "parse_time",
    "rating_from_grade",
    "review",
    "review_row",
    "save_card",
]
