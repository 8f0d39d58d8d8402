"""What the retriever returns: plain frozen values that the CLI, the chat and the bot format."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["answered", "unsure", "no_match"]
ANSWERED: Status = "answered"
UNSURE: Status = "unsure"
NO_MATCH: Status = "no_match"


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
    "placeholder", "off_topic") so callers say so instead of showing the text as an answer.
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
    variant: str | None = None  # no_match because the question is about a kind the notes lack ("focal loss")
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The `tutor ask --json` schema."""
        return {
            "status": self.status,
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
            "variant": self.variant,
        }


NO_ANSWER_TEXT = {
    "unanswered": "The source lists this question but gives no answer to it.",
    "placeholder": "The source has only a placeholder here (an exercise left to the reader), not an answer.",
    "off_topic": "The source's answer to this addresses a different question, so I won't repeat it.",
    "disabled": "This entry has been disabled by an admin.",
}


def variant_text(variant: str) -> str:
    """Why a question about a kind of a covered term got no answer, e.g. "focal loss"."""
    modifier = variant.split()[0]
    return f"My notes never mention “{modifier}”, so “{variant}” is not something I can answer from them."
