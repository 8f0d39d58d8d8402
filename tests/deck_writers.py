"""Deck writers for tests: the inverse of ``knowledge.parsers.decks``' parsers (the round-trip property
tests, and decks written on the fly). The tutor itself never writes decks."""

from __future__ import annotations

import csv
import io
import json

import yaml

from knowledge.models import DocumentMeta, Entry


def to_markdown(meta: DocumentMeta, entries: list[Entry]) -> str:
    front = {"title": meta.title, "course": meta.course, "chapter": meta.chapter, "topics": list(meta.topics)}
    parts = ["---", yaml.safe_dump(front, allow_unicode=True, sort_keys=False).strip(), "---", ""]
    for entry in entries:
        parts += [f"## {entry.question}", "", entry.answer, ""]
    return "\n".join(parts)


def to_tsv(entries: list[Entry]) -> str:
    out = io.StringIO()
    # Quote every field so a question starting with "#" is never mistaken for an Anki header line.
    writer = csv.writer(out, delimiter="\t", quotechar='"', lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerows([e.question, e.answer] for e in entries)
    return "#separator:tab\n#html:false\n" + out.getvalue()


def to_json(meta: DocumentMeta, entries: list[Entry]) -> str:
    items = [{"question": e.question, "answer": e.answer} for e in entries]
    return json.dumps({"title": meta.title, "topics": list(meta.topics), "items": items}, ensure_ascii=False)


def to_jsonl(entries: list[Entry]) -> str:
    return "".join(
        json.dumps({"question": e.question, "answer": e.answer}, ensure_ascii=False) + "\n" for e in entries
    )
