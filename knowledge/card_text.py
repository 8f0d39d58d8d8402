"""What text a person may put in the knowledge base (a card's question or answer, a corrected answer): the
checks, shared by ``knowledge.cards`` and ``knowledge.overrides`` (which ``cards`` imports, so they live
here, importing neither).

Text is what a person could read: at least one letter or digit that shows (so not empty, not only spaces,
and not only invisible characters: zero-width ones, the Hangul fillers, variation selectors, tags, every
Unicode default-ignorable code point), no control characters (an answer keeps its line breaks and tabs),
no direction overrides or isolates (text that reads differently from what it is), no lone surrogates, and
at most ``MAX_QUESTION`` / ``MAX_ANSWER`` characters. Invisible characters and spaces at its ends are
dropped; inside it they stay (a zero-width joiner in an emoji, a variation selector).
"""

from __future__ import annotations

import unicodedata

from knowledge.errors import KnowledgeError

MAX_QUESTION = 1000  # characters
MAX_ANSWER = 2000  # a card's answer, and a corrected answer

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, stable since Unicode 5.1): code points
# that are not shown where they are not supported, e.g. U+3164 HANGUL FILLER, which is a letter (``isalnum``)
# that renders as nothing.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
# Characters that reorder the text around them (a question that reads differently from what it is).
DIRECTION_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ALLOWED_CONTROLS = frozenset("\n\t")
_EMOJI_TAGS = (0xE0020, 0xE007F)  # the tail of a flag emoji (🏴 + tags + cancel tag): kept at the end


class TextError(KnowledgeError):
    """Text that cannot be stored (empty, invisible, a control character, too long); nothing changed."""


def is_invisible(ch: str) -> bool:
    """Whether ``ch`` is a default-ignorable code point: it shows as nothing."""
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _DEFAULT_IGNORABLE)


def _trims_at_start(ch: str) -> bool:
    return ch.isspace() or is_invisible(ch) or unicodedata.category(ch) == "Cf"


def _trims_at_end(ch: str) -> bool:
    """Spaces and invisible characters, except those that belong to the character before them: combining
    marks (a variation selector, U+034F) and an emoji's tags."""
    if ch.isspace():
        return True
    category = unicodedata.category(ch)
    if not (is_invisible(ch) or category == "Cf") or category == "Mn":
        return False
    return not _EMOJI_TAGS[0] <= ord(ch) <= _EMOJI_TAGS[1]


def visible_edges(text: str) -> str:
    """``text`` without whitespace or invisible characters (zero-width space, BOM, Hangul filler, other
    format characters ...) at its ends."""
    start, end = 0, len(text)
    while start < end and _trims_at_start(text[start]):
        start += 1
    while end > start and _trims_at_end(text[end - 1]):
        end -= 1
    return text[start:end]


def has_text(text: str) -> bool:
    """Whether ``text`` has a letter or digit that shows."""
    return any(ch.isalnum() and not is_invisible(ch) for ch in text)


def text_key(text: str) -> str:
    """What two questions of one deck must not share: the letters and digits that show, of any script, case
    folded."""
    return "".join(ch for ch in text.casefold() if ch.isalnum() and not is_invisible(ch))


def checked(text: object, what: str, limit: int) -> str:
    """``text`` if it may be stored as the ``what`` ("question", "answer" ...); else :class:`TextError`."""
    if not isinstance(text, str):
        raise TextError(f"the {what} must be text")
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise TextError(f"the {what} is not valid text (it contains a lone surrogate)")
        if category == "Cc" and ch not in _ALLOWED_CONTROLS:
            raise TextError(f"the {what} contains a control character (U+{ord(ch):04X}); remove it")
        if ch in DIRECTION_OVERRIDES:
            raise TextError(f"the {what} contains a text-direction override (U+{ord(ch):04X}); remove it")
    if not has_text(text):
        raise TextError(f"the {what} needs some text: at least one letter or digit that shows")
    if len(text) > limit:
        raise TextError(f"the {what} is {len(text):,} characters long; the limit is {limit:,}")
    return text


def clean_question(text: object, what: str = "question") -> str:
    """A question as stored: one line, spaces collapsed, nothing invisible at its ends."""
    if isinstance(text, str):
        text = visible_edges(" ".join(text.replace("\r", " ").split()))
    return checked(text, what, MAX_QUESTION)


def clean_answer(text: object, what: str = "answer") -> str:
    """An answer (a card's, or a corrected one) as stored: line breaks kept (``\\n``), nothing invisible at
    its ends."""
    if isinstance(text, str):
        text = visible_edges(text.replace("\r\n", "\n").replace("\r", "\n"))
    return checked(text, what, MAX_ANSWER)
