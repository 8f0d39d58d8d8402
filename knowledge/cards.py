"""A space's own cards: card text that is checked before it is stored, and every change to a space's deck
as one whole-document ingest.

A space (the bot maps a Discord server to one) keeps its cards in one document, ``guild_<key>.jsonl``,
scoped to it (``knowledge.scope``): no other space sees them. Adding, editing, removing and importing all
rebuild that document's entries and ingest it whole, so each change is one publish of one document (all or
nothing), and the store keeps ids stable (it matches entries by question, then by position). The space's
hides and corrections are overrides (``knowledge.overrides``); :func:`export_overrides` writes them out.

Card text is what a person could read: at least one letter or digit (so not empty, not only spaces or
zero-width characters), no control characters (an answer keeps its line breaks and tabs) and no
direction overrides, and at most ``MAX_QUESTION`` / ``MAX_ANSWER`` characters. A deck imported from a file
(the deck formats ``tutor kb ingest`` reads) is at most ``MAX_IMPORT_BYTES`` and, with the cards already
there, at most ``MAX_CARDS`` cards; a bad entry is a :class:`ParseError` naming its line, and nothing
changes.

Items a space may not see (another space's cards) are reported exactly as ids that do not exist:
"no such item".
"""

from __future__ import annotations

import hashlib
import json
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from knowledge.analysis import Embed
from knowledge.errors import KnowledgeError, NotFound, ParseError, excerpt
from knowledge.loader import GUILD_ORIGIN, SOURCES_DIR, collect_paths, load_document
from knowledge.models import DocumentMeta, Entry, Item, ParsedDocument
from knowledge.overrides import space_overrides
from knowledge.parsers.decks import DECK_PARSERS, detect_format
from knowledge.scope import Scope
from knowledge.store import IngestReport, Store

MAX_QUESTION = 1000  # characters
MAX_ANSWER = 2000
MAX_CARDS = 2000  # cards one space may have
MAX_IMPORT_BYTES = 1024 * 1024
MAX_TITLE = 100
# Characters that reorder the text around them (a question that reads differently from what it is).
_DIRECTION_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ALLOWED_CONTROLS = frozenset("\n\t")
_DECKS = threading.Lock()  # one change to a space's deck at a time in this process (read, then ingest)


class CardError(KnowledgeError):
    """A card or a change a space cannot make (empty text, too long, too many cards); nothing changed."""


@dataclass(frozen=True)
class ImportReport:
    """What an import did to the space's deck."""

    read: int  # entries in the file
    added: int
    updated: int
    unchanged: int
    removed: int  # cards no longer in the deck (``replace`` only)
    total: int  # the space's cards now


# --- card text ----------------------------------------------------------------------------------------------
def _visible_edges(text: str) -> str:
    """``text`` without whitespace or invisible format characters (zero-width space, BOM ...) at its ends."""
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start]) == "Cf"):
        start += 1
    while end > start and (text[end - 1].isspace() or unicodedata.category(text[end - 1]) == "Cf"):
        end -= 1
    return text[start:end]


def _checked(text: object, what: str, limit: int) -> str:
    if not isinstance(text, str):
        raise CardError(f"the {what} must be text")
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise CardError(f"the {what} is not valid text (it contains a lone surrogate)")
        if category == "Cc" and ch not in _ALLOWED_CONTROLS:
            raise CardError(f"the {what} contains a control character (U+{ord(ch):04X}); remove it")
        if ch in _DIRECTION_OVERRIDES:
            raise CardError(f"the {what} contains a text-direction override (U+{ord(ch):04X}); remove it")
    if not any(ch.isalnum() for ch in text):
        raise CardError(f"the {what} needs some text: at least one letter or digit")
    if len(text) > limit:
        raise CardError(f"the {what} is {len(text):,} characters long; the limit is {limit:,}")
    return text


def clean_question(text: object) -> str:
    """A card's question as stored: one line, spaces collapsed, nothing invisible at its ends."""
    if isinstance(text, str):
        text = _visible_edges(" ".join(text.replace("\r", " ").split()))
    return _checked(text, "question", MAX_QUESTION)


def clean_answer(text: object) -> str:
    """A card's answer as stored: line breaks kept (``\\n``), nothing invisible at its ends."""
    if isinstance(text, str):
        text = _visible_edges(text.replace("\r\n", "\n").replace("\r", "\n"))
    return _checked(text, "answer", MAX_ANSWER)


def _same_question(text: str) -> str:
    """What two questions of one deck must not share: letters and digits of any script, case folded."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


# --- reading a deck file ------------------------------------------------------------------------------------
def _file_name(filename: str) -> str:
    """The uploaded file's own name (no folders), as messages name it: bounded, its extension kept."""
    name = PurePath(str(filename).replace("\\", "/")).name or "deck"
    if len(name) > MAX_TITLE:
        suffix = PurePath(name).suffix[:16]
        name = name[: MAX_TITLE - len(suffix)] + suffix
    return name


def read_deck(filename: str, data: bytes) -> list[Entry]:
    """The entries of an uploaded deck (Markdown, TSV, JSON or JSONL, as ``tutor kb ingest`` reads them),
    each checked as a card; raises :class:`ParseError` naming the file and the line (a JSON file: the item)."""
    name = _file_name(filename)
    if len(data) > MAX_IMPORT_BYTES:
        raise ParseError(name, None, f"the file is {len(data) / 2**20:.1f} MiB; the limit is 1 MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(name, data[: exc.start].count(b"\n") + 1, "not valid UTF-8 text") from None
    if "\x00" in text:
        raise ParseError(name, None, "binary file (contains NUL bytes)")
    path = Path(name)  # a name only: the parsers read the text given, never the file system
    try:
        fmt = detect_format(path, text)
    except ParseError:  # its message names the CLI's --format, which an upload does not have
        raise ParseError(
            name, None, "cannot tell the deck format: name the file .md, .tsv, .json or .jsonl"
        ) from None
    _meta, entries = DECK_PARSERS[fmt](path, text)
    if len(entries) > MAX_CARDS:
        raise ParseError(name, None, f"{len(entries):,} entries; a server keeps at most {MAX_CARDS:,} cards")

    def fail(entry: Entry, message: str) -> ParseError:
        if fmt == "json":  # JSON entries are numbered by position, not by line
            return ParseError(name, None, f"item {entry.line}: {message}")
        return ParseError(name, entry.line, message)

    out: list[Entry] = []
    first: dict[str, int] = {}
    for entry in entries:
        try:
            question, answer = clean_question(entry.question), clean_answer(entry.answer)
        except CardError as exc:
            raise fail(entry, str(exc)) from None
        key = _same_question(question)
        if key in first:
            where = "item" if fmt == "json" else "line"
            raise fail(entry, f"repeats the question of {where} {first[key]}: “{excerpt(question, 80)}”")
        first[key] = entry.line
        out.append(Entry(question, answer, entry.line))
    return out


# --- a space's deck -----------------------------------------------------------------------------------------
def deck_source(scope: Scope) -> str:
    """The document a space's cards live in."""
    return f"guild_{_key(scope)}.jsonl"


def _key(scope: Scope) -> str:
    if scope.key is None:
        raise CardError("direct messages have no cards of their own: cards belong to a server")
    return scope.key


def cards(store: Store, scope: Scope) -> list[Item]:
    """The space's live cards, in deck order."""
    return sorted(store.items(source=deck_source(scope)), key=lambda item: item.n)


def visible_item(store: Store, scope: Scope, item_id: int) -> Item:
    """The live item, if ``scope`` sees it (a shared note or the space's own card); anything else, another
    space's card included, is :class:`NotFound` with the very words an unknown id gets."""
    try:
        item = store.item(item_id)
    except NotFound:
        item = None
    if item is None or item.retired or not scope.sees(item.scope):
        raise NotFound(f"no such item: {item_id}")
    return item


def own_card(store: Store, scope: Scope, item_id: int) -> Item:
    """One of the space's own cards (a shared note is refused with a hint; another space's: no such item)."""
    item = visible_item(store, scope, item_id)
    if item.scope != scope.key:
        raise CardError(
            f"item {item_id} is one of the shared notes, not one of your own cards: it cannot be edited "
            "or removed, but it can be hidden here"
        )
    return item


def matching(items: Iterable[Item], text: str, limit: int = 25) -> list[Item]:
    """Items to suggest for what someone is typing: the id itself, or questions containing every word of
    ``text`` (any case), in id order; at most ``limit``."""
    words = text.casefold().split()
    wanted = int(text) if text.strip().isdigit() else None
    found = [
        item
        for item in items
        if item.id == wanted
        or (words and all(w in item.question.casefold() for w in words))
        or not text.strip()
    ]
    return sorted(found, key=lambda item: (item.id != wanted, item.id))[:limit]


def _title(store: Store, source: str, title: str | None) -> str:
    if title:
        return " ".join(title.split())[:MAX_TITLE] or source
    stored = next((d.title for d in store.documents() if d.source == source), None)
    return stored or source


def _publish(
    store: Store, scope: Scope, pairs: Sequence[tuple[str, str]], embed: Embed, title: str | None
) -> IngestReport:
    """Ingest the space's deck as exactly ``pairs`` (one document, one publish)."""
    key, source = _key(scope), deck_source(scope)
    title = _title(store, source, title)
    entries = tuple(Entry(q, a, n) for n, (q, a) in enumerate(pairs, 1))
    digest = hashlib.sha256(json.dumps([title, list(pairs)]).encode()).hexdigest()
    meta = DocumentMeta(source=source, title=title, layout="jsonl", scope=key)
    return store.ingest([ParsedDocument(meta, entries, digest, GUILD_ORIGIN, key)], embed)


def _card_at(store: Store, scope: Scope, n: int) -> Item:
    return next(item for item in cards(store, scope) if item.n == n)


def _check_new_question(deck: Sequence[Item], question: str, skip: int | None = None) -> None:
    key = _same_question(question)
    for item in deck:
        if item.id != skip and _same_question(item.question) == key:
            raise CardError(f"this server already has that question as item {item.id}: edit that one instead")


def add_card(
    store: Store, scope: Scope, question: str, answer: str, embed: Embed, title: str | None = None
) -> Item:
    """Add a card to the space's deck; returns the stored card."""
    question, answer = clean_question(question), clean_answer(answer)
    with _DECKS:
        deck = cards(store, scope)
        if len(deck) >= MAX_CARDS:
            raise CardError(f"this server has {len(deck):,} cards, the most it can keep; remove some first")
        _check_new_question(deck, question)
        _publish(store, scope, [*((c.question, c.answer) for c in deck), (question, answer)], embed, title)
        return _card_at(store, scope, len(deck) + 1)


def edit_card(
    store: Store,
    scope: Scope,
    item_id: int,
    question: str,
    answer: str,
    embed: Embed,
    title: str | None = None,
) -> Item:
    """Rewrite one of the space's own cards; returns it as stored (same place in the deck)."""
    question, answer = clean_question(question), clean_answer(answer)
    with _DECKS:
        own_card(store, scope, item_id)
        deck = cards(store, scope)
        _check_new_question(deck, question, skip=item_id)
        index = next(i for i, c in enumerate(deck) if c.id == item_id)
        pairs = [(c.question, c.answer) for c in deck]
        pairs[index] = (question, answer)
        _publish(store, scope, pairs, embed, title)
        return _card_at(store, scope, index + 1)


def remove_card(store: Store, scope: Scope, item_id: int, embed: Embed, title: str | None = None) -> Item:
    """Take one of the space's own cards out of its deck (the item is retired, its history kept)."""
    with _DECKS:
        card = own_card(store, scope, item_id)
        deck = cards(store, scope)
        _publish(store, scope, [(c.question, c.answer) for c in deck if c.id != item_id], embed, title)
        return card


def import_deck(
    store: Store,
    scope: Scope,
    filename: str,
    data: bytes,
    embed: Embed,
    title: str | None = None,
    *,
    replace: bool = False,
) -> ImportReport:
    """Import a deck file into the space's cards, all or nothing. A card whose question is already in the
    deck gets the file's answer, the others are added after the deck's cards; with ``replace`` the deck
    becomes exactly the file's cards (the others are retired)."""
    entries = read_deck(filename, data)
    name = _file_name(filename)
    with _DECKS:
        deck = cards(store, scope)
        pairs: list[tuple[str, str]] = [] if replace else [(c.question, c.answer) for c in deck]
        position = {_same_question(q): i for i, (q, _a) in enumerate(pairs)}
        for entry in entries:
            key = _same_question(entry.question)
            if key in position:
                pairs[position[key]] = (entry.question, entry.answer)
            else:
                position[key] = len(pairs)
                pairs.append((entry.question, entry.answer))
        if len(pairs) > MAX_CARDS:
            raise ParseError(
                name,
                None,
                f"with the {len(deck):,} cards already here this server would have {len(pairs):,}; the "
                f"limit is {MAX_CARDS:,} (import with replace, or remove some cards first)",
            )
        _publish(store, scope, pairs, embed, title)
    before = {_same_question(c.question): c.answer for c in deck}
    after = {_same_question(q): a for q, a in pairs}
    read = {_same_question(e.question) for e in entries}
    return ImportReport(
        read=len(entries),
        added=sum(1 for k in after if k not in before),
        updated=sum(1 for k in read if k in before and before[k] != after[k]),
        unchanged=sum(1 for k in read if k in before and before[k] == after[k]),
        removed=sum(1 for k in before if k not in after),
        total=len(pairs),
    )


def export_cards(store: Store, scope: Scope) -> bytes:
    """The space's cards as JSONL (``{"question", "answer", "id"}`` a line): a file ``import_deck`` and
    ``tutor kb ingest`` read back (the id is for reference; an import ignores it)."""
    return b"".join(
        json.dumps({"question": c.question, "answer": c.answer, "id": c.id}, ensure_ascii=False).encode()
        + b"\n"
        for c in cards(store, scope)
    )


def export_overrides(store: Store, scope: Scope) -> bytes:
    """The space's hides and corrections as JSONL, one override a line (kind, item, its question, the
    corrected answer and the original, who and when): a record, not a deck to import."""
    return b"".join(
        json.dumps(row, ensure_ascii=False, default=str).encode() + b"\n"
        for row in space_overrides(store, _key(scope))
    )


# --- the owners' operations (every space) -------------------------------------------------------------------
def disable_everywhere(store: Store, item_id: int, disabled: bool = True) -> Item:
    """Hide a shared note from every space and direct messages (or bring it back): ``Store.set_disabled``,
    for shared notes only (a space's cards are its own to hide or remove)."""
    item = store.item(item_id)  # NotFound
    if item.retired:
        raise NotFound(f"item {item_id} was retired from the knowledge base")
    if item.scope is not None:
        raise CardError(f"item {item_id} is a server's own card, not a shared note")
    return store.set_disabled(item_id, disabled)


def reingest_bundled(store: Store, embed: Embed) -> IngestReport:
    """Ingest the bundled sources again (``tutor kb ingest`` without paths); ``tutor kb remove``d decks stay
    out."""
    removed = store.removed_sources()
    documents = [load_document(p) for p in collect_paths([SOURCES_DIR]) if p.name not in removed]
    return store.ingest(documents, embed)
