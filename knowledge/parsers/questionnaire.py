"""Parsers for the questionnaire layouts found in the source documents.

Each layout is a small line-oriented state machine; all of them share the same rules for gluing
fragments that HTML-to-text conversion broke apart (a question split around an inline code span, a
lone ``?`` on its own line, a paragraph that continues after a blank line).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from knowledge.errors import ParseError
from knowledge.models import Entry

_TERMINAL = (".", "?", "!")
_NO_SPACE_BEFORE = tuple("?.,;:)!]’”'")
_IMPERATIVES = (
    "calculate", "complete", "compute", "create", "describe", "draw", "explain", "find", "give",
    "implement", "list", "look", "name", "read", "run", "show", "try", "use", "write",
)  # fmt: skip


def smart_join(left: str, right: str) -> str:
    """Join two fragments of one sentence: no space before closing punctuation."""
    left, right = left.rstrip(), right.strip()
    if not left:
        return right
    if not right:
        return left
    if right.startswith(_NO_SPACE_BEFORE) or left.endswith(("(", "[")):
        return left + right
    return f"{left} {right}"


def is_complete_sentence(text: str) -> bool:
    return text.rstrip().endswith(_TERMINAL)


def continues_paragraph(previous: str, line: str) -> bool:
    """After a blank line, does ``line`` still belong to the paragraph ``previous``?

    True when the previous text stops mid-sentence or the new line cannot start a sentence (lowercase,
    punctuation, a bare inline-code span): the signature of text broken around ``code``.
    """
    stripped = line.strip()
    if not previous.rstrip().endswith((*_TERMINAL, ":")):
        return True
    first = stripped[:1]
    return (
        first.islower() or stripped.startswith(_NO_SPACE_BEFORE) or bool(re.fullmatch(r"`[^`]+`", stripped))
    )


class _AnswerBuilder:
    """Accumulates answer lines into paragraphs and ``- `` bullet lists."""

    def __init__(self) -> None:
        self.paragraphs: list[str] = []
        self.blank_before = False
        self.in_list = False

    def blank(self) -> None:
        self.blank_before = True
        self.in_list = False

    def accepts_bullet(self) -> bool:
        """A ``- `` line belongs to the answer when it continues a list or follows a ``...:`` lead-in."""
        if not self.paragraphs:
            return False
        return self.in_list or self.paragraphs[-1].rstrip().endswith(":")

    def add_bullet(self, text: str) -> None:
        self.paragraphs.append(f"- {text.strip()}")
        self.in_list = True
        self.blank_before = False

    def add(self, line: str) -> None:
        if not self.paragraphs:
            self.paragraphs.append(line.strip())
        elif not self.blank_before or continues_paragraph(self.paragraphs[-1], line):
            self.paragraphs[-1] = smart_join(self.paragraphs[-1], line)
        else:
            self.paragraphs.append(line.strip())
        self.blank_before = False

    def text(self) -> str:
        out: list[str] = []
        for para in self.paragraphs:
            if out and not (para.startswith("- ") and out[-1].startswith("- ")):
                out.append("")
            out.append(para)
        return "\n".join(out).strip()


def _entry(question: str, answer: _AnswerBuilder | str, line: int) -> Entry:
    text = answer.text() if isinstance(answer, _AnswerBuilder) else answer.strip()
    return Entry(question=" ".join(question.split()), answer=text, line=line)


def parse_bullets(text: str, path: str = "<text>") -> list[Entry]:
    """``- question`` bullets, answers as free paragraphs (fastbook ch. 13 community answers).

    Traps handled: questions broken across lines and blank lines around inline code (the question
    continues until it ends a sentence), answers with their own ``- `` lists (a list that follows a
    ``...:`` lead-in belongs to the answer until a blank line), questions with no answer.
    """
    entries: list[Entry] = []
    question: str | None = None
    q_line = 0
    answer = _AnswerBuilder()

    def flush() -> None:
        if question is not None:
            entries.append(_entry(question, answer, q_line))

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip():
            answer.blank()
            continue
        if line.startswith("- ") and not answer.accepts_bullet():
            # A new bullet: a new question, unless the previous question is still mid-sentence.
            flush()
            question, q_line, answer = line[2:].strip(), lineno, _AnswerBuilder()
            continue
        if question is None:
            continue  # preamble such as "Here are the questions:"
        if not answer.paragraphs and not is_complete_sentence(question):
            question = smart_join(question, line)
        elif line.startswith("- "):
            answer.add_bullet(line[2:])
        else:
            # Bullets glued onto one line ("...named super-convergence.- By training...") are split.
            parts = re.split(r"(?<=[.!?])- (?=[A-Z])", line)
            answer.add(parts[0])
            for part in parts[1:]:
                answer.add_bullet(part)
    flush()
    if not entries:
        raise ParseError(path, None, "no '- question' bullets found")
    return entries


_NUMBERED = re.compile(r"^\s{0,3}(\d{1,3})\.(?!\d)\s*(\S.*)$")
_ANS = re.compile(r"^\s*Ans\.\s*(.*)$")


def parse_numbered(text: str, path: str = "<text>") -> list[Entry]:
    """``1. question`` entries with either indented answers or ``Ans.`` markers.

    Numbers must run in sequence, so a numbered line inside an answer is not a new entry. With ``Ans.``
    markers, lines between the question and its marker (e.g. "completed later") are notes, not content.
    """
    lines = text.splitlines()
    uses_ans = any(_ANS.match(line) for line in lines)
    entries: list[Entry] = []
    expected = 1
    question: str | None = None
    q_line = 0
    answer = _AnswerBuilder()
    answer_started = False

    def flush() -> None:
        if question is not None:
            entries.append(_entry(question, answer, q_line))

    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        match = _NUMBERED.match(line)
        if match and int(match.group(1)) == expected:
            flush()
            question, q_line, answer, answer_started = match.group(2).strip(), lineno, _AnswerBuilder(), False
            expected += 1
            continue
        if question is None:
            continue  # title such as "Assignment 03 Solutions"
        if not line.strip():
            answer.blank()
            continue
        if uses_ans:
            ans = _ANS.match(line)
            if ans and not answer_started:
                answer_started = True
                if ans.group(1).strip():
                    answer.add(ans.group(1))
            elif answer_started:
                answer.add(line)
            elif not is_complete_sentence(question) and not answer.blank_before:
                question = smart_join(question, line)
            # else: a stray note between the question and "Ans." (e.g. "completed later")
        elif raw.startswith("    ") or raw.startswith("\t"):
            answer.add(line)
        elif not answer.paragraphs and not is_complete_sentence(question):
            question = smart_join(question, line)
        else:
            answer.add(line)
    flush()
    if not entries:
        raise ParseError(path, None, "no '1. question' entries found")
    return entries


_SECTION_HEADER = re.compile(r"^[A-Z][a-z]+(?: [A-Z][a-z]+){0,3}$")


def _looks_like_question(line: str) -> bool:
    stripped = line.strip()
    if stripped.startswith("- ") or not re.search(r"[A-Za-z]", stripped):
        return False
    if stripped.endswith("?"):
        return True
    return stripped.split(" ", 1)[0].lower().strip(",") in _IMPERATIVES


def parse_lines(text: str, path: str = "<text>") -> list[Entry]:
    """One line per question and per answer, no markers (fastbook ch. 5 community answers).

    First, wrapped lines are glued: a line that stops mid-sentence continues on the next line when that
    line starts lowercase or with punctuation (``...DataLoaders`` + ``?``). Then a line is a question
    if it ends with ``?`` or starts with an exercise verb; the lines up to the next question are its
    answer. A short Title Case line followed by a question ("Further Research") is a section header.
    """
    logical: list[tuple[int, str]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if logical:
            prev_no, prev = logical[-1]
            starts_lower = line[0].islower() or line.startswith(_NO_SPACE_BEFORE)
            if not prev.endswith((*_TERMINAL, ")", ":")) and starts_lower and not line.startswith("- "):
                logical[-1] = (prev_no, smart_join(prev, line))
                continue
        logical.append((lineno, line))

    entries: list[Entry] = []
    question: str | None = None
    q_line = 0
    answer_lines: list[str] = []
    seen_question = False
    for index, (lineno, line) in enumerate(logical):
        next_is_question = index + 1 < len(logical) and _looks_like_question(logical[index + 1][1])
        if _looks_like_question(line):
            if question is not None:
                entries.append(_entry(question, "\n".join(answer_lines), q_line))
            question, q_line, answer_lines, seen_question = line, lineno, [], True
        elif not seen_question:
            continue  # title line
        elif _SECTION_HEADER.match(line) and next_is_question and (answer_lines or question is None):
            if question is not None:
                entries.append(_entry(question, "\n".join(answer_lines), q_line))
            question, answer_lines = None, []
        elif question is not None:
            answer_lines.append(line)
    if question is not None:
        entries.append(_entry(question, "\n".join(answer_lines), q_line))
    if not entries:
        raise ParseError(path, None, "no question lines found")
    return entries


def parse_flashcards(text: str, path: str = "<text>") -> list[Entry]:
    """Alternating prompt / answer lines; an odd line count means the first line is the set's title."""
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(lines) % 2 == 1:
        lines = lines[1:]
    if not lines:
        raise ParseError(path, None, "no prompt/answer lines found")
    return [
        Entry(question=" ".join(prompt.split()), answer=answer, line=n)
        for (n, prompt), (_, answer) in zip(lines[::2], lines[1::2], strict=True)
    ]


LAYOUTS: dict[str, Callable[[str, str], list[Entry]]] = {
    "bullets": parse_bullets,
    "numbered": parse_numbered,
    "lines": parse_lines,
    "flashcards": parse_flashcards,
}
