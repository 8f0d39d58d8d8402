"""Fitting text into Discord's limits without breaking what it renders.

Discord rejects a message over 2,000 characters and an embed description over 4,096 (and the whole embed
over 6,000), so long answers are split. A cut in the middle of a fenced code block would leave the rest of
the message rendered as code, and a cut inside a word reads as a typo, so ``split_text`` prefers paragraph,
then line, then word boundaries, and closes and reopens a code fence it has to split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_TOTAL_LIMIT = 6000
EMBED_TITLE_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
BUTTON_LABEL_LIMIT = 80
CHOICE_NAME_LIMIT = 100

ELLIPSIS = "…"
FENCE = "```"
_FENCE_RE = re.compile(r"^```([^\n`]*)\n(.*?)(?:^```[ \t]*$|\Z)", re.M | re.S)
_SEPARATORS = ("\n\n", "\n", " ")


@dataclass(frozen=True)
class _Block:
    """A piece of the text that is either prose or one fenced code block (``lang`` is then not None)."""

    text: str
    lang: str | None = None


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` as chunks of at most ``limit`` characters, cut at the coarsest boundary that fits.

    Every chunk renders on its own: a code block that cannot fit whole is closed at the end of one chunk and
    reopened (same language) at the start of the next. A word is only cut when it alone exceeds ``limit``.
    Whitespace at the cut points is dropped; nothing else is.
    """
    if limit < 16:
        raise ValueError("limit must leave room for a code fence")
    text = text.strip()
    if not text:
        return []
    if len(text) <= limit:
        return [text]
    units: list[str] = []
    for block in _blocks(text):
        if block.lang is None:
            units += _split_plain(block.text, limit)
        else:
            units += _split_code(block, limit)
    return _pack(units, limit)


def valid_text(text: str) -> str:
    """``text`` with every unpaired surrogate (e.g. "\\ud800", which JSON can carry but UTF-8 cannot) replaced
    by U+FFFD, and split surrogate pairs joined: what arrives from Discord is made encodable before use."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, cut at a word boundary with an ellipsis (titles, labels)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    if " " in cut and text[len(cut)] != " ":
        head = cut.rsplit(" ", 1)[0]
        if len(head) >= limit // 2:
            cut = head
    return cut.rstrip(" ,;:.") + ELLIPSIS


def shorten_block(text: str, limit: int) -> str:
    """Like ``shorten`` but keeping line breaks and code blocks (a reference answer whose matrix is a grid):
    ``text`` whole when it fits, else its first ``split_text`` chunk and an ellipsis."""
    text = text.strip()
    if len(text) <= limit:
        return text
    first = split_text(text, limit - 2)[0]
    return first + ("\n" if first.endswith(FENCE) else " ") + ELLIPSIS


def _blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    pos = 0
    for match in _FENCE_RE.finditer(text):
        if match.start() > pos and text[pos : match.start()].strip():
            blocks.append(_Block(text[pos : match.start()].strip("\n")))
        blocks.append(_Block(match.group(2).rstrip("\n"), match.group(1).strip()))
        pos = match.end()
    if text[pos:].strip():
        blocks.append(_Block(text[pos:].strip("\n")))
    return blocks


def _fenced(body: str, lang: str) -> str:
    return f"{FENCE}{lang}\n{body}\n{FENCE}"


def _split_code(block: _Block, limit: int) -> list[str]:
    lang = block.lang or ""
    whole = _fenced(block.text, lang)
    if len(whole) <= limit:
        return [whole]
    room = limit - len(_fenced("", lang))
    if room < 8:  # an absurd language tag: drop it rather than fail
        lang, room = "", limit - len(_fenced("", ""))
    return [_fenced(piece, lang) for piece in _split_plain(block.text, room, separators=("\n", " "))]


def _split_plain(text: str, limit: int, separators: tuple[str, ...] = _SEPARATORS) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at the first separator that occurs (then finer ones)."""
    if len(text) <= limit:
        return [text] if text.strip() else []
    for i, sep in enumerate(separators):
        if sep not in text:
            continue
        pieces: list[str] = []
        for part in text.split(sep):
            if len(part) > limit:
                pieces += _split_plain(part, limit, separators[i + 1 :])
            elif part.strip():
                pieces.append(part)
        return _pack(pieces, limit, sep)
    return [text[i : i + limit] for i in range(0, len(text), limit)]  # one word longer than the limit


def _pack(pieces: list[str], limit: int, sep: str = "\n\n") -> list[str]:
    """Greedily join consecutive pieces (each already within ``limit``) with ``sep`` while they fit."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        piece = piece.strip("\n") if sep != " " else piece.strip()
        if not piece:
            continue
        candidate = f"{current}{sep}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    strip = (lambda c: c.strip()) if sep == " " else (lambda c: c.strip("\n"))
    return [c for c in map(strip, chunks) if c.strip()]
