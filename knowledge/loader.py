"""Turn files on disk into :class:`ParsedDocument` values, choosing the right parser for each."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import yaml

from knowledge.errors import ParseError
from knowledge.models import DocumentMeta, ParsedDocument
from knowledge.parsers.decks import DECK_PARSERS, FORMATS, detect_format
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
    content_hash = hashlib.sha256(raw).hexdigest()

    listed = _read_manifest(path.parent).get(path.name)
    layout = fmt or (listed or {}).get("layout")
    if layout in LAYOUTS:
        listed = listed or {}
        meta = DocumentMeta(
            source=path.name,
            title=str(listed.get("title") or path.stem),
            course=str(listed.get("course") or ""),
            chapter=str(listed.get("chapter") or ""),
            topics=tuple(str(t) for t in listed.get("topics") or ()),
            layout=layout,
        )
        entries = LAYOUTS[layout](text, str(path))
    else:
        deck_format = layout or detect_format(path, text)
        meta, entries = DECK_PARSERS[deck_format](path, text)
        if listed:  # a manifest entry overrides what the deck says about itself
            meta = DocumentMeta(
                source=meta.source,
                title=str(listed.get("title") or meta.title),
                course=str(listed.get("course") or meta.course),
                chapter=str(listed.get("chapter") or meta.chapter),
                topics=tuple(str(t) for t in listed.get("topics") or meta.topics),
                layout=meta.layout,
            )
    return ParsedDocument(meta=meta, entries=tuple(entries), content_hash=content_hash)
