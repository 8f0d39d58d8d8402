"""What the retriever returns: plain frozen values that the CLI, the chat and the bot format."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from knowledge.scope import Correction


class Status(StrEnum):
    """How sure the tutor is, and whether there is an answer to show."""

    ANSWERED = "answered"  # the right entry, confidently; ``answer`` is its text
    UNSURE = "unsure"  # a best guess with "did you mean" alternatives
    NO_ANSWER = "no_answer"  # confidently this entry, but its source has no answer (``no_answer_reason``)
    NO_MATCH = "no_match"  # not in the notes: nearest topics instead


ANSWERED = Status.ANSWERED
UNSURE = Status.UNSURE
NO_ANSWER = Status.NO_ANSWER
NO_MATCH = Status.NO_MATCH


@dataclass(frozen=True)
class Citation:
    source: str  # the document's file name: its citation id
    n: int  # 1-based entry number in the document
    title: str
    item_id: int


@dataclass(frozen=True)
class Alternative:
    item_id: int
    question: str
    source: str
    n: int
    score: float


@dataclass(frozen=True)
class Answer:
    """One reply. ``answer`` is ``None`` unless there is a servable answer to show.

    ``no_answer_reason`` explains a match whose source has no usable answer ("unanswered",
    "placeholder", "off_topic") so callers say so instead of showing the text as an answer; such a match
    is ``no_answer`` (or ``unsure``), never ``answered``. ``score`` is the calibrated probability that
    ``question`` is the entry the message asks about.
    """

    status: Status
    query: str
    answer: str | None = None
    question: str | None = None
    item_id: int | None = None
    source: str | None = None
    n: int | None = None
    score: float = 0.0
    citations: tuple[Citation, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    no_answer_reason: str | None = None
    suggestions: tuple[str, ...] = ()  # nearest topics, for no_match
    correction: Correction | None = None  # set when ``answer`` is a correction (by a space's staff or owners)
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The `tutor ask --json` schema."""
        return {
            "status": str(self.status),
            "answer": self.answer,
            "question": self.question,
            "item_id": self.item_id,
            "source": self.source,
            "n": self.n,
            "score": round(self.score, 4),
            "citations": [{"source": c.source, "n": c.n, "title": c.title} for c in self.citations],
            "alternatives": [{**asdict(a), "score": round(a.score, 4)} for a in self.alternatives],
            "no_answer_reason": self.no_answer_reason,
            "suggestions": list(self.suggestions),
            "corrected": None
            if self.correction is None
            else {
                "by": self.correction.author,
                "at": self.correction.created_at,
                "everywhere": self.correction.everywhere,
            },
        }


NO_ANSWER_TEXT = {
    "unanswered": "The source lists this question but gives no answer to it.",
    "placeholder": "The source has only a placeholder here (an exercise left to the reader), not an answer.",
    "off_topic": "The source's answer to this addresses a different question, so I won't repeat it.",
    "disabled": "This entry has been disabled by an admin.",
}
