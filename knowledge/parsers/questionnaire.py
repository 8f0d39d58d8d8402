"""Parsers for the questionnaire layouts found in the source documents.

Each layout is a small line-oriented state machine; all of them share the same rules for gluing
fragments that HTML-to-text conversion broke apart (a question split around an inline code span, a
lone ``?`` on its own line, a paragraph that continues after a blank line).

Fragments are glued by :class:`_Joined`, which keeps the pieces and joins them once: rebuilding a string
per line would make a question or paragraph that never ends (a hostile file) quadratic in its length.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from knowledge.errors import ParseError
from knowledge.models import Entry
from knowledge.parsers.bounds import MAX_ENTRIES, too_many_entries

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


class _Joined:
    """``smart_join`` applied fragment after fragment, in linear time; ``str()`` gives the joined text."""

    __slots__ = ("parts",)

    def __init__(self, text: str = "") -> None:
        self.parts = [text] if text else []

    def tail(self) -> str:
        """The end of the text, trailing whitespace removed: all that the gluing rules look at."""
        for part in reversed(self.parts):
            if part.strip():
                return part.rstrip()
        return ""

    def join(self, right: str) -> None:
        right = right.strip()
        while self.parts and not self.parts[-1].strip():
            self.parts.pop()
        if self.parts:
            self.parts[-1] = self.parts[-1].rstrip()
        if not self.parts:
            self.parts = [right] if right else []
        elif right:
            glue = "" if right.startswith(_NO_SPACE_BEFORE) or self.parts[-1].endswith(("(", "[")) else " "
            self.parts.append(glue + right)

    def __str__(self) -> str:
        return "".join(self.parts)


def _add_entry(entries: list[Entry], entry: Entry, path: str) -> None:
    if len(entries) >= MAX_ENTRIES:
        raise too_many_entries(path)
    entries.append(entry)


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
        self.paragraphs: list[_Joined] = []
        self.blank_before = False
        self.in_list = False

    def blank(self) -> None:
        self.blank_before = True
        self.in_list = False

    def accepts_bullet(self) -> bool:
        """A ``- `` line belongs to the answer when it continues a list or follows a ``...:`` lead-in."""
        if not self.paragraphs:
            return False
        return self.in_list or self.paragraphs[-1].tail().endswith(":")

    def add_bullet(self, text: str) -> None:
        self.paragraphs.append(_Joined(f"- {text.strip()}"))
        self.in_list = True
        self.blank_before = False

    def add(self, line: str) -> None:
        if not self.paragraphs:
            self.paragraphs.append(_Joined(line.strip()))
        elif not self.blank_before or continues_paragraph(self.paragraphs[-1].tail(), line):
            self.paragraphs[-1].join(line)
        else:
            self.paragraphs.append(_Joined(line.strip()))
        self.blank_before = False

    def text(self) -> str:
        out: list[str] = []
        for para in map(str, self.paragraphs):
            if out and not (para.startswith("- ") and out[-1].startswith("- ")):
                out.append("")
            out.append(para)
        return "\n".join(out).strip()


def _entry(question: _Joined | str, answer: _AnswerBuilder | str, line: int) -> Entry:
    text = answer.text() if isinstance(answer, _AnswerBuilder) else answer.strip()
    return Entry(question=" ".join(str(question).split()), answer=text, line=line)


def parse_bullets(text: str, path: str = "<text>") -> list[Entry]:
    """``- question`` bullets, answers as free paragraphs (fastbook ch. 13 community answers).

    Traps handled: questions broken across lines and blank lines around inline code (the question
    continues until it ends a sentence), answers with their own ``- `` lists (a list that follows a
    ``...:`` lead-in belongs to the answer until a blank line), questions with no answer.
    """
    entries: list[Entry] = []
    question: _Joined | None = None
    q_line = 0
    answer = _AnswerBuilder()

    def flush() -> None:
        if question is not None:
            _add_entry(entries, _entry(question, answer, q_line), path)

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip():
            answer.blank()
            continue
        if line.startswith("- ") and not answer.accepts_bullet():
            # A new bullet: a new question, unless the previous question is still mid-sentence.
            flush()
            question, q_line, answer = _Joined(line[2:].strip()), lineno, _AnswerBuilder()
            continue
        if question is None:
            continue  # preamble such as "Here are the questions:"
        if not answer.paragraphs and not is_complete_sentence(question.tail()):
            question.join(line)
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
    question: _Joined | None = None
    q_line = 0
    answer = _AnswerBuilder()
    answer_started = False

    def flush() -> None:
        if question is not None:
            _add_entry(entries, _entry(question, answer, q_line), path)

    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        match = _NUMBERED.match(line)
        if match and int(match.group(1)) == expected:
            flush()
            question, q_line, answer, answer_started = (
                _Joined(match.group(2).strip()),
                lineno,
                _AnswerBuilder(),
                False,
            )
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
            elif not is_complete_sentence(question.tail()) and not answer.blank_before:
                question.join(line)
            # else: a stray note between the question and "Ans." (e.g. "completed later")
        elif raw.startswith("    ") or raw.startswith("\t"):
            answer.add(line)
        elif not answer.paragraphs and not is_complete_sentence(question.tail()):
            question.join(line)
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
    glued: list[tuple[int, _Joined]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if glued:
            prev = glued[-1][1]
            starts_lower = line[0].islower() or line.startswith(_NO_SPACE_BEFORE)
            if (
                not prev.tail().endswith((*_TERMINAL, ")", ":"))
                and starts_lower
                and not line.startswith("- ")
            ):
                prev.join(line)
                continue
        glued.append((lineno, _Joined(line)))
    logical = [(lineno, str(line)) for lineno, line in glued]
    del glued

    entries: list[Entry] = []
    question: str | None = None
    q_line = 0
    answer_lines: list[str] = []
    seen_question = False
    for index, (lineno, line) in enumerate(logical):
        next_is_question = index + 1 < len(logical) and _looks_like_question(logical[index + 1][1])
        if _looks_like_question(line):
            if question is not None:
                _add_entry(entries, _entry(question, "\n".join(answer_lines), q_line), path)
            question, q_line, answer_lines, seen_question = line, lineno, [], True
        elif not seen_question:
            continue  # title line
        elif _SECTION_HEADER.match(line) and next_is_question and (answer_lines or question is None):
            if question is not None:
                _add_entry(entries, _entry(question, "\n".join(answer_lines), q_line), path)
            question, answer_lines = None, []
        elif question is not None:
            answer_lines.append(line)
    if question is not None:
        _add_entry(entries, _entry(question, "\n".join(answer_lines), q_line), path)
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
    if len(lines) // 2 > MAX_ENTRIES:
        raise too_many_entries(path)
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
