"""Turn files on disk into :class:`ParsedDocument` values, choosing the right parser for each."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import yaml

from knowledge.errors import ParseError
from knowledge.models import DocumentMeta, ParsedDocument
from knowledge.parsers.decks import DECK_PARSERS, FORMATS, detect_format, meta_text, topic_list
from knowledge.parsers.questionnaire import LAYOUTS

MANIFEST = "manifest.yaml"
SOURCES_DIR = Path(__file__).parent / "sources"
ALL_FORMATS = (*LAYOUTS, *FORMATS)
MAX_FILE_BYTES = 5 * 1024 * 1024
_SKIP = {MANIFEST, "README.md", "readme.md"}


def _read_manifest(directory: Path) -> dict[str, dict]:
    path = directory / MANIFEST
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParseError(str(path), None, f"invalid manifest: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError(str(path), None, "manifest must map file names to metadata")
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
        else:
            raise ParseError(str(path), None, "no such file or directory")
    return files


def load_document(path: Path, fmt: str | None = None) -> ParsedDocument:
    """Parse one file: a manifest-listed questionnaire, or a user deck (auto-detected or ``fmt``)."""
    if fmt is not None and fmt not in ALL_FORMATS:
        raise ParseError(str(path), None, f"unknown format {fmt!r}; choose one of {', '.join(ALL_FORMATS)}")
    raw = path.read_bytes()
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
    if layout is not None and not isinstance(layout, str):
        raise ParseError(str(manifest), None, f"layout of {path.name} must be one name, not {layout!r}")
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
    return ParsedDocument(meta=meta, entries=tuple(entries), content_hash=content_hash)
