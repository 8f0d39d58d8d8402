"""A space's own cards: card text that is checked before it is stored, and every change to a space's deck
as one whole-document ingest.

A space (the bot maps a Discord server to one) keeps its cards in one document, ``guild_<key>.jsonl``,
scoped to it (``knowledge.scope``): no other space sees them. Adding, editing, removing and importing all
rebuild that document's entries and ingest it whole, so each change is one publish of one document (all or
nothing). Ids are stable: every card already in the deck is published with its id (``Entry.item_id``), so an
edited card keeps its id and quiz history even when its question changes, and a new question gets a new id,
never an old card's (the store matches entries without an id by question only). The space's hides and
corrections are overrides (``knowledge.overrides``); :func:`export_overrides` writes them out.

Card text is what a person could read (``knowledge.card_text``, which corrections are checked by too): at
least one letter or digit that shows (so not empty, not only spaces or invisible characters such as
zero-width ones and Hangul fillers), no control characters (an answer keeps its line breaks and tabs) and no
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from knowledge import card_text
from knowledge.analysis import Embed
from knowledge.card_text import TextError
from knowledge.errors import KnowledgeError, NotFound, ParseError, excerpt
from knowledge.loader import GUILD_ORIGIN, SOURCES_DIR, collect_paths, load_document
from knowledge.models import DocumentMeta, Entry, Item, ParsedDocument
from knowledge.overrides import drop_correction, load_overrides, space_overrides
from knowledge.parsers.decks import DECK_PARSERS, detect_format
from knowledge.scope import Scope
from knowledge.store import IngestReport, Store

MAX_QUESTION = card_text.MAX_QUESTION  # characters
MAX_ANSWER = card_text.MAX_ANSWER
MAX_CARDS = 2000  # cards one space may have
MAX_IMPORT_BYTES = 1024 * 1024
MAX_TITLE = 100
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


# --- card text (``knowledge.card_text``, shared with the corrections) -----------------------------------------
def clean_question(text: object) -> str:
    """A card's question as stored: one line, spaces collapsed, nothing invisible at its ends."""
    try:
        return card_text.clean_question(text)
    except TextError as exc:
        raise CardError(str(exc)) from None


def clean_answer(text: object) -> str:
    """A card's answer as stored: line breaks kept (``\\n``), nothing invisible at its ends."""
    try:
        return card_text.clean_answer(text)
    except TextError as exc:
        raise CardError(str(exc)) from None


def _same_question(text: str) -> str:
    """What two questions of one deck must not share: letters and digits that show, of any script, case
    folded."""
    return card_text.text_key(text)


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


# A card as published: (question, answer, the id of the stored card it is, or None for a new question).
_Card = tuple[str, str, int | None]


def _publish(
    store: Store, scope: Scope, deck: Sequence[_Card], embed: Embed, title: str | None
) -> IngestReport:
    """Ingest the space's deck as exactly ``deck`` (one document, one publish). A card naming the id of a
    stored card (``Entry.item_id``) keeps that id, whatever its question now says; a new one (None) never
    takes the id of another question."""
    key, source = _key(scope), deck_source(scope)
    title = _title(store, source, title)
    entries = tuple(Entry(q, a, n, item_id=i) for n, (q, a, i) in enumerate(deck, 1))
    digest = hashlib.sha256(json.dumps([title, [[q, a] for q, a, _i in deck]]).encode()).hexdigest()
    meta = DocumentMeta(source=source, title=title, layout="jsonl", scope=key)
    return store.ingest([ParsedDocument(meta, entries, digest, GUILD_ORIGIN, key)], embed)


def _as_published(deck: Iterable[Item]) -> list[_Card]:
    return [(c.question, c.answer, c.id) for c in deck]


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
    """Add a card to the space's deck; returns the stored card (a new id: never another card's)."""
    question, answer = clean_question(question), clean_answer(answer)
    with _DECKS:
        deck = cards(store, scope)
        if len(deck) >= MAX_CARDS:
            raise CardError(f"this server has {len(deck):,} cards, the most it can keep; remove some first")
        _check_new_question(deck, question)
        _publish(store, scope, [*_as_published(deck), (question, answer, None)], embed, title)
        return _card_at(store, scope, len(deck) + 1)


def for_editing(store: Store, scope: Scope, item_id: int) -> tuple[Item, str]:
    """One of the space's own cards and the answer its students are served: the space's correction of it
    if it has one (what the edit form shows, so the admin edits what students see), else its own."""
    card = own_card(store, scope, item_id)
    correction = load_overrides(store).correction(scope, card.id)
    return card, card.answer if correction is None else correction.answer


def edit_card(
    store: Store,
    scope: Scope,
    item_id: int,
    question: str,
    answer: str,
    embed: Embed,
    title: str | None = None,
) -> Item:
    """Rewrite one of the space's own cards; returns it as stored: same id (its quiz history kept, even when
    the question changes), same place in the deck. What the admin saved is what is served from then on: the
    space's correction of the card, if any, is dropped (the form showed it, see ``for_editing``)."""
    question, answer = clean_question(question), clean_answer(answer)
    with _DECKS:
        own_card(store, scope, item_id)
        deck = cards(store, scope)
        _check_new_question(deck, question, skip=item_id)
        index = next(i for i, c in enumerate(deck) if c.id == item_id)
        published = _as_published(deck)
        published[index] = (question, answer, item_id)
        _publish(store, scope, published, embed, title)
        drop_correction(store, _key(scope), item_id)
        return _card_at(store, scope, index + 1)


def remove_card(store: Store, scope: Scope, item_id: int, embed: Embed, title: str | None = None) -> Item:
    """Take one of the space's own cards out of its deck (the item is retired, its history kept)."""
    with _DECKS:
        card = own_card(store, scope, item_id)
        deck = cards(store, scope)
        _publish(store, scope, _as_published(c for c in deck if c.id != item_id), embed, title)
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
    deck gets the file's answer (and keeps its id), the others are added after the deck's cards, with new
    ids; with ``replace`` the deck becomes exactly the file's cards (the others are retired, and a question
    of the file takes no old card's id unless it is that card's very question)."""
    entries = read_deck(filename, data)
    name = _file_name(filename)
    with _DECKS:
        deck = cards(store, scope)
        old = {_same_question(c.question): c.id for c in deck}
        published: list[_Card] = [] if replace else _as_published(deck)
        position = {_same_question(q): i for i, (q, _a, _i) in enumerate(published)}
        for entry in entries:
            key = _same_question(entry.question)
            if key in position:
                published[position[key]] = (entry.question, entry.answer, published[position[key]][2])
            else:
                position[key] = len(published)
                published.append((entry.question, entry.answer, old.get(key)))
        if len(published) > MAX_CARDS:
            raise ParseError(
                name,
                None,
                f"with the {len(deck):,} cards already here this server would have {len(published):,}; the "
                f"limit is {MAX_CARDS:,} (import with replace, or remove some cards first)",
            )
        _publish(store, scope, published, embed, title)
    before = {_same_question(c.question): c.answer for c in deck}
    after = {_same_question(q): a for q, a, _i in published}
    read = {_same_question(e.question) for e in entries}
    return ImportReport(
        read=len(entries),
        added=sum(1 for k in after if k not in before),
        updated=sum(1 for k in read if k in before and before[k] != after[k]),
        unchanged=sum(1 for k in read if k in before and before[k] == after[k]),
        removed=sum(1 for k in before if k not in after),
        total=len(published),
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
