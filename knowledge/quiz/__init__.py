"""Quizzes over the knowledge base: selection, grading, FSRS scheduling, progress. No front-end code here.

from knowledge.quiz import QuizService
quiz = QuizService(store, encoder)
session = quiz.start(user_id, topic="dropout", n=5, mode="auto")  # scope=Scope.of(key): a space's quiz
question = quiz.question(session)           # None when the quiz is over
graded = quiz.answer(session, "keeps a neuron active with probability p")  # review committed
quiz.rate(session, "good")                  # optional: the learner's own rating replaces the derived one
"""

from knowledge.quiz.grading import Grade, Grader
from knowledge.quiz.models import (
    DayCount,
    Graded,
    LeaderRow,
    Question,
    QuizError,
    Session,
    TopicMastery,
    UserStats,
)
from knowledge.quiz.scheduler import RATING_NAMES, Rating
from knowledge.quiz.selection import MODES
from knowledge.quiz.service import QuizService

__all__ = [
    "MODES",
    "RATING_NAMES",
    "DayCount",
    "Grade",
    "Graded",
    "Grader",
    "LeaderRow",
    "Question",
    "QuizError",
    "QuizService",
    "Rating",
    "Session",
    "TopicMastery",
    "UserStats",
]
