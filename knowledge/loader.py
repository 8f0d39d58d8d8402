"""Turn files on disk into :class:`ParsedDocument` values, choosing the right parser for each.

Every document records its *origin*: ``bundled`` for ``knowledge/sources/``, ``file:<resolved path>`` for a
user's file (the store adds ``discord`` for a server's own cards). With the file name it is the document's
identity, so a file cannot silently take the place of another that has the same name.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from knowledge.errors import ParseError, excerpt
from knowledge.models import DocumentMeta, ParsedDocument
from knowledge.parsers.bounds import MAX_MANIFEST_BYTES, load_yaml
from knowledge.parsers.decks import DECK_PARSERS, FORMATS, detect_format, meta_text, topic_list
from knowledge.parsers.questionnaire import LAYOUTS

MANIFEST = "manifest.yaml"
SOURCES_DIR = Path(__file__).parent / "sources"
ALL_FORMATS = (*LAYOUTS, *FORMATS)
MAX_FILE_BYTES = 5 * 1024 * 1024
_SKIP = {MANIFEST, "README.md", "readme.md"}

BUNDLED_ORIGIN = "bundled"
GUILD_ORIGIN = "discord"  # a server's own cards (``/kb add``), stored as ``guild_<id>.jsonl``
PROGRAM_ORIGIN = "program"  # built in code without saying where from
FILE_ORIGIN = "file:"


def origin_of(path: Path) -> str:
    """``bundled`` for a file of ``knowledge/sources/``, else ``file:`` and the file's resolved path."""
    resolved = path.resolve()
    return BUNDLED_ORIGIN if resolved.parent == SOURCES_DIR.resolve() else FILE_ORIGIN + str(resolved)


def describe_origin(origin: str | None, source: str) -> str:
    """The document as a person would name it in a message."""
    if origin == BUNDLED_ORIGIN:
        return f"the bundled source knowledge/sources/{source}"
    if origin == GUILD_ORIGIN:
        return f"a server's own cards ({source}, added with /kb add)"
    if origin and origin.startswith(FILE_ORIGIN):
        return origin[len(FILE_ORIGIN) :]
    if origin == PROGRAM_ORIGIN:
        return f"{source} (written by a program, not read from a file)"
    return f"{source} (ingested before origins were recorded)"


def _read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ParseError(str(path), None, f"manifest is larger than {MAX_MANIFEST_BYTES // 1024} KB")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ParseError(str(path), None, f"cannot read the manifest ({exc.strerror or exc})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ParseError(str(path), None, f"manifest is larger than {MAX_MANIFEST_BYTES // 1024} KB")
    return _parse_manifest(str(path), raw)


@functools.lru_cache(maxsize=4)  # one parse per manifest and ingest, not one per file it lists
def _parse_manifest(path: str, raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ParseError(path, None, "manifest is not valid UTF-8 text") from None
    data = load_yaml(text, path, what="manifest") or {}
    if not isinstance(data, dict):
        raise ParseError(path, None, "manifest must map file names to metadata")
    return data


def collect_paths(paths: Iterable[Path]) -> list[Path]:
    """Expand directories (non-recursively) into their document files, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.name not in _SKIP and not p.name.startswith(".")
            )
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise ParseError(str(path), None, "not a regular file or directory")
        else:
            raise ParseError(str(path), None, "no such file or directory")
    return files


def load_document(path: Path, fmt: str | None = None) -> ParsedDocument:
    """Parse one file: a manifest-listed questionnaire, or a user deck (auto-detected or ``fmt``)."""
    if fmt is not None and fmt not in ALL_FORMATS:
        raise ParseError(
            str(path), None, f"unknown format {excerpt(repr(fmt))}; choose one of {', '.join(ALL_FORMATS)}"
        )
    try:
        str(path.resolve()).encode("utf-8")  # its name and origin are stored as text
    except UnicodeEncodeError:
        shown = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
        raise ParseError(
            shown, None, "the path is not valid UTF-8 text; rename the file or its folder"
        ) from None
    try:
        with open(path, "rb") as fh:  # never more than the limit in memory, whatever the file claims to be
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ParseError(str(path), None, f"cannot read the file ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ParseError(str(path), None, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ParseError(str(path), line, "not valid UTF-8 text") from None
    if "\x00" in text:
        raise ParseError(str(path), None, "binary file (contains NUL bytes)")
    listed = _read_manifest(path.parent).get(path.name)
    manifest = path.parent / MANIFEST
    if listed is not None and not isinstance(listed, dict):
        raise ParseError(
            str(manifest), None, f"the entry for {path.name} must be a mapping (title: ..., topics: [...])"
        )
    layout = fmt or (listed or {}).get("layout")
    if layout is not None and (not isinstance(layout, str) or layout not in ALL_FORMATS):
        raise ParseError(
            str(manifest),
            None,
            f"layout of {path.name} must be one name ({', '.join(ALL_FORMATS)}), not {excerpt(layout)}",
        )
    if layout in LAYOUTS:
        listed = listed or {}
        meta = DocumentMeta(
            source=path.name,
            title=meta_text(listed, "title", manifest) or path.stem,
            course=meta_text(listed, "course", manifest),
            chapter=meta_text(listed, "chapter", manifest),
            topics=topic_list(listed.get("topics"), manifest),
            layout=layout,
        )
        entries = LAYOUTS[layout](text, str(path))
    else:
        deck_format = layout or detect_format(path, text)
        meta, entries = DECK_PARSERS[deck_format](path, text)
        if listed:  # a manifest entry overrides what the deck says about itself
            meta = DocumentMeta(
                source=meta.source,
                title=meta_text(listed, "title", manifest) or meta.title,
                course=meta_text(listed, "course", manifest) or meta.course,
                chapter=meta_text(listed, "chapter", manifest) or meta.chapter,
                topics=topic_list(listed.get("topics"), manifest) or meta.topics,
                layout=meta.layout,
            )
    # The manifest's title/chapter/topics are part of the document: editing them must count as a change.
    content_hash = hashlib.sha256(
        raw + json.dumps(dataclasses.asdict(meta), sort_keys=True).encode()
    ).hexdigest()
    return ParsedDocument(
        meta=meta, entries=tuple(entries), content_hash=content_hash, origin=origin_of(path)
    )
