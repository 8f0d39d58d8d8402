"""Flags that need no model: unanswered, placeholder answers and fill-in-the-blank prompts.

The model-based ``off_topic`` flag lives in :mod:`knowledge.analysis`.
"""

from __future__ import annotations

import re

from knowledge.models import CLOZE, PLACEHOLDER, UNANSWERED

# An answer that *starts* with one of these is a placeholder, even if an example follows.
_PLACEHOLDER = re.compile(
    r"^\s*(to be completed( by the reader)?|completed later|(the )?excel sheet is not available"
    r"|not available|tbd|todo|n/a|\?{3,}|left as an exercise|answer (coming|pending))\b",
    re.IGNORECASE,
)
_CLOZE = re.compile(r"_{2,}")


def is_placeholder(answer: str) -> bool:
    return bool(_PLACEHOLDER.match(answer))


def static_flags(question: str, answer: str) -> set[str]:
    flags: set[str] = set()
    if not answer.strip():
        flags.add(UNANSWERED)
    elif is_placeholder(answer):
        flags.add(PLACEHOLDER)
    if _CLOZE.search(question):
        flags.add(CLOZE)
    return flags
