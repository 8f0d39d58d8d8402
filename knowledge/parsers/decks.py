"""Users' own decks: Markdown with YAML front matter, Anki/Quizlet TSV exports, JSON and JSONL.

Every parser either returns all entries of a file or raises :class:`ParseError` naming the file and
line; the store only writes once every file of an ingest has parsed.

Formats:

- ``markdown``: optional ``---`` YAML front matter (title, course, chapter, topics), then one
  ``## question`` heading per entry with the answer as the text below it.
- ``tsv``: ``front<TAB>back`` per line; Anki's ``#key:value`` header lines are skipped and fields may be
  double-quoted (CSV rules) to carry tabs or newlines; extra columns (tags) are ignored.
- ``json``: a list of ``{"question", "answer"}`` objects, or ``{"title": ..., "items": [...]}``;
  ``front``/``back`` and ``q``/``a`` are accepted as key names.
- ``jsonl``: one such object per line.

Hostile files stay bounded (:mod:`knowledge.parsers.bounds`): at most ``MAX_ENTRIES`` entries, YAML without
aliases, JSON nesting checked before parsing, and no regular expression or join that is quadratic in a line.
"""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path
from typing import Any

from knowledge.errors import ParseError, excerpt
from knowledge.models import DocumentMeta, Entry
from knowledge.parsers.bounds import (
    MAX_ENTRIES,
    MAX_FRONT_MATTER_BYTES,
    load_json,
    load_yaml,
    too_many_entries,
)

FORMATS = ("markdown", "tsv", "json", "jsonl")
_EXTENSIONS = {
    ".md": "markdown", ".markdown": "markdown", ".tsv": "tsv", ".tab": "tsv",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
}  # fmt: skip
_ANKI_HEADER = re.compile(r"^#[a-z][a-z ]*:[^\t]*$")
# One break per <br>, and one per block boundary: "</div><div>" is a single line break, not two.
# A tag never spans another "<" ([^<>]): a line of unclosed "<" is then linear, not quadratic, to scan.
_HTML_BREAK = re.compile(
    r"<br\s*/?>|(?:</(?:div|p|li)>\s*)?<(?:div|p|li)\b[^<>]*>|</(?:div|p|li)>", re.IGNORECASE
)
_HTML_TAG = re.compile(r"<[^<>]+>")


def _html_to_text(field: str) -> str:
    """An Anki field exported with ``#html:true``: line breaks kept, tags dropped, entities decoded."""
    text = _HTML_TAG.sub("", _HTML_BREAK.sub("\n", field))
    return "\n".join(line.strip() for line in html.unescape(text).replace("\xa0", " ").splitlines()).strip()


_KEY_PAIRS = (("question", "answer"), ("front", "back"), ("q", "a"), ("prompt", "response"))


def detect_format(path: Path, text: str) -> str:
    """Pick a deck format from the extension, else from the content."""
    by_ext = _EXTENSIONS.get(path.suffix.lower())
    if by_ext:
        return by_ext
    head = text.lstrip()
    if head.startswith("---") or head.startswith("## "):
        return "markdown"
    if head.startswith("["):
        return "json"
    if head.startswith("{"):
        first_line = head.split("\n", 1)[0].strip()
        try:
            load_json(first_line, str(path), 1)
            return "jsonl"
        except ParseError:
            return "json"
    if "\t" in text:
        return "tsv"
    raise ParseError(str(path), None, f"cannot tell the deck format; pass --format ({', '.join(FORMATS)})")


def topic_list(value: Any, path: Path | str, line: int | None = None) -> tuple[str, ...]:
    """``topics`` as written by people: a YAML/JSON list, or one comma-separated string."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list | tuple) and all(isinstance(t, str | int | float) for t in value):
        return tuple(str(t).strip() for t in value if str(t).strip())
    raise ParseError(
        str(path), line, f"topics must be a list of words or a comma-separated string, not {excerpt(value)}"
    )


def meta_text(mapping: dict[str, Any], key: str, path: Path | str, line: int | None = None) -> str:
    """A title/course/chapter value: text or a number, never a list or mapping."""
    value = mapping.get(key)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        raise ParseError(str(path), line, f"{key} must be text, not {excerpt(value)}")
    return str(value).strip()


def _meta_from(mapping: dict[str, Any], path: Path, layout: str) -> DocumentMeta:
    return DocumentMeta(
        source=path.name,
        title=meta_text(mapping, "title", path) or path.stem,
        course=meta_text(mapping, "course", path),
        chapter=meta_text(mapping, "chapter", path),
        topics=topic_list(mapping.get("topics"), path),
        layout=layout,
    )


def _require_question(path: Path, line: int, question: str) -> str:
    question = " ".join(question.split())
    if not question:
        raise ParseError(str(path), line, "entry has an empty question")
    return question


def parse_markdown(path: Path, text: str) -> tuple[DocumentMeta, list[Entry]]:
    lines = [line.rstrip("\r") for line in text.split("\n")]  # not splitlines(): keep U+2028 etc. in text
    front: dict[str, Any] = {}
    start = 0
    if lines and lines[0].strip() == "---":
        try:
            end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
        except StopIteration:
            raise ParseError(str(path), 1, "front matter opened with '---' is never closed") from None
        front_text = "\n".join(lines[1:end])
        if len(front_text) > MAX_FRONT_MATTER_BYTES:
            raise ParseError(
                str(path),
                2,
                f"front matter is longer than {MAX_FRONT_MATTER_BYTES // 1024} KB (title, topics...)",
            )
        loaded = load_yaml(front_text, str(path), first_line=2, what="YAML front matter") or {}
        if not isinstance(loaded, dict):
            raise ParseError(str(path), 2, "front matter must be a mapping (title: ..., topics: [...])")
        front, start = loaded, end + 1

    entries: list[Entry] = []
    question: str | None = None
    q_line = 0
    body: list[str] = []
    for lineno, line in enumerate(lines[start:], start=start + 1):
        if line.startswith("## "):
            if question is not None:
                entries.append(Entry(question, "\n".join(body).strip(), q_line))
                if len(entries) >= MAX_ENTRIES:
                    raise too_many_entries(str(path))
            question, q_line, body = _require_question(path, lineno, line[3:]), lineno, []
        elif question is None:
            if line.strip() and not line.startswith("# "):
                raise ParseError(str(path), lineno, "text before the first '## question' heading")
        else:
            body.append(line)
    if question is not None:
        entries.append(Entry(question, "\n".join(body).strip(), q_line))
    if not entries:
        raise ParseError(str(path), None, "no '## question' headings found")
    return _meta_from(front, path, "markdown"), entries


def parse_tsv(path: Path, text: str) -> tuple[DocumentMeta, list[Entry]]:
    lines = text.splitlines(keepends=True)
    skip = 0
    is_html = False
    while skip < len(lines) and _ANKI_HEADER.match(lines[skip]):
        # Anki export headers: #separator:tab, #html:false, #tags column:3
        is_html = is_html or lines[skip].strip().replace(" ", "").lower() == "#html:true"
        skip += 1
    clean = _html_to_text if is_html else str
    reader = csv.reader(io.StringIO("".join(lines[skip:])), delimiter="\t", quotechar='"', strict=True)
    entries: list[Entry] = []
    try:
        for row in reader:
            lineno = skip + reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise ParseError(str(path), lineno, "expected 'front<TAB>back' but found no tab")
            if len(entries) >= MAX_ENTRIES:
                raise too_many_entries(str(path))
            entries.append(
                Entry(_require_question(path, lineno, clean(row[0])), clean(row[1]).strip(), lineno)
            )
    except csv.Error as exc:
        raise ParseError(str(path), skip + reader.line_num, f"malformed quoting: {exc}") from None
    if not entries:
        raise ParseError(str(path), None, "no 'front<TAB>back' lines found")
    return _meta_from({}, path, "tsv"), entries


def _entry_from_object(path: Path, line: int, obj: Any) -> Entry:
    if not isinstance(obj, dict):
        raise ParseError(
            str(path), line, f"expected an object with question/answer, got {type(obj).__name__}"
        )
    for q_key, a_key in _KEY_PAIRS:
        if q_key in obj:
            question, answer = obj[q_key], obj.get(a_key, "")
            break
    else:
        raise ParseError(str(path), line, "object has no 'question' (or 'front'/'q') key")
    if not isinstance(question, str) or not isinstance(answer, str | type(None)):
        raise ParseError(str(path), line, "question and answer must be strings")
    return Entry(_require_question(path, line, question), (answer or "").strip(), line)


def parse_json(path: Path, text: str) -> tuple[DocumentMeta, list[Entry]]:
    data = load_json(text, str(path))
    meta: dict[str, Any] = {}
    if isinstance(data, dict):
        meta, data = data, data.get("items")
    if not isinstance(data, list) or not data:
        raise ParseError(str(path), 1, "expected a non-empty list of items (or an object with 'items')")
    if len(data) > MAX_ENTRIES:
        raise too_many_entries(str(path))
    # JSON has no per-element line numbers after loading; report the element's position instead.
    entries = []
    for index, obj in enumerate(data, start=1):
        try:
            entries.append(_entry_from_object(path, index, obj))
        except ParseError as exc:
            raise ParseError(str(path), None, f"item {index}: {exc.message}") from None
    return _meta_from(meta, path, "json"), entries


def parse_jsonl(path: Path, text: str) -> tuple[DocumentMeta, list[Entry]]:
    entries = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if len(entries) >= MAX_ENTRIES:
            raise too_many_entries(str(path))
        entries.append(_entry_from_object(path, lineno, load_json(line, str(path), lineno)))
    if not entries:
        raise ParseError(str(path), None, "no JSON lines found")
    return _meta_from({}, path, "jsonl"), entries


DECK_PARSERS = {"markdown": parse_markdown, "tsv": parse_tsv, "json": parse_json, "jsonl": parse_jsonl}
