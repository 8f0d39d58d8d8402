"""Users' decks: every format round-trips (property tests) and bad files name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.errors import ParseError
from knowledge.loader import load_document
from knowledge.models import DocumentMeta, Entry
from knowledge.parsers.decks import detect_format
from tests.deck_writers import to_json, to_jsonl, to_markdown, to_tsv

# Decks are text: NUL marks a binary file and is refused by design, so it is the one excluded character.
text_chars = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
questions = st.text(text_chars, min_size=1, max_size=80).map(lambda s: " ".join(s.split())).filter(bool)
answers = st.text(text_chars, max_size=200).map(str.strip)
markdown_answers = answers.filter(
    lambda a: "\r" not in a and not any(line.startswith("## ") for line in a.split("\n"))
).map(lambda a: "\n".join(line.rstrip() for line in a.split("\n")).strip())
titles = st.text(
    alphabet=st.characters(categories=["L", "N"], include_characters=" -:'"), min_size=1, max_size=40
)
titles = titles.map(str.strip).filter(bool)
topics = st.lists(titles, max_size=4)


def _entries(answer_strategy):
    return st.lists(st.tuples(questions, answer_strategy), min_size=1, max_size=12)


def _roundtrip(tmp_path: Path, name: str, text: str) -> list[tuple[str, str]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return [(e.question, e.answer) for e in load_document(path).entries]


prop = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@prop
@given(pairs=_entries(markdown_answers), title=titles, tags=topics)
def test_markdown_roundtrip(tmp_path, pairs, title, tags):
    meta = DocumentMeta(source="deck.md", title=title, topics=tuple(tags))
    text = to_markdown(meta, [Entry(q, a, 0) for q, a in pairs])
    doc = load_document(_write(tmp_path, "deck.md", text))
    assert [(e.question, e.answer) for e in doc.entries] == pairs
    assert doc.meta.title == title and doc.meta.topics == tuple(tags)


@prop
@given(pairs=_entries(answers))
def test_tsv_roundtrip(tmp_path, pairs):
    assert _roundtrip(tmp_path, "deck.tsv", to_tsv([Entry(q, a, 0) for q, a in pairs])) == pairs


@prop
@given(pairs=_entries(answers), title=titles)
def test_json_roundtrip(tmp_path, pairs, title):
    meta = DocumentMeta(source="deck.json", title=title)
    text = to_json(meta, [Entry(q, a, 0) for q, a in pairs])
    doc = load_document(_write(tmp_path, "deck.json", text))
    assert [(e.question, e.answer) for e in doc.entries] == pairs and doc.meta.title == title


@prop
@given(pairs=_entries(answers))
def test_jsonl_roundtrip(tmp_path, pairs):
    assert _roundtrip(tmp_path, "deck.jsonl", to_jsonl([Entry(q, a, 0) for q, a in pairs])) == pairs


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_quizlet_export_without_headers_and_anki_tags_column(tmp_path):
    path = _write(
        tmp_path, "quizlet.txt", "What is SGD?\tStochastic gradient descent\nReLU\tmax(0, x)\textra tag\n"
    )
    doc = load_document(path)
    assert [(e.question, e.answer) for e in doc.entries] == [
        ("What is SGD?", "Stochastic gradient descent"),
        ("ReLU", "max(0, x)"),
    ]
    assert doc.meta.layout == "tsv" and doc.meta.title == "quizlet"


def test_format_detection_by_content(tmp_path):
    assert detect_format(Path("x.txt"), "---\ntitle: t\n---\n## q\na") == "markdown"
    assert detect_format(Path("x.txt"), '[{"question": "q"}]') == "json"
    assert detect_format(Path("x.txt"), '{"question": "q"}\n{"question": "r"}') == "jsonl"
    assert detect_format(Path("x.txt"), "q\ta\n") == "tsv"
    with pytest.raises(ParseError, match="--format"):
        detect_format(Path("x.txt"), "just some prose")


def test_format_override(tmp_path):
    path = _write(
        tmp_path, "cards.txt", '{"front": "dropout", "back": "keeps a neuron active with probability p"}\n'
    )
    doc = load_document(path, "jsonl")
    assert doc.entries[0].question == "dropout"
    with pytest.raises(ParseError, match="unknown format"):
        load_document(path, "yaml")


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        ("bad.jsonl", '{"question": "a", "answer": "b"}\n{"question": \n', 2, "invalid JSON"),
        ("bad.jsonl", '{"question": "a"}\n\n["not an object"]\n', 3, "expected an object"),
        ("bad.json", '[{"question": "a"},\n {"q": ', 2, "invalid JSON"),
        ("bad.tsv", "q1\ta1\nno tab here\n", 2, "no tab"),
        ("bad.tsv", "q1\ta1\n\tanswer without question\n", 2, "empty question"),
        ("bad.md", "---\ntitle: [unclosed\n---\n## q\na\n", 2, "invalid YAML"),
        ("bad.md", "---\ntitle: x\n## q\n", 1, "never closed"),
        ("bad.md", "stray text\n## q\na\n", 1, "before the first"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, name, text, line, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(ParseError, match=message) as info:
        load_document(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_binary_and_non_utf8_files_are_refused(tmp_path):
    with pytest.raises(ParseError, match="UTF-8"):
        load_document(_write_bytes(tmp_path / "latin.tsv", "q\tr\u00e9ponse\n".encode("latin-1")))
    with pytest.raises(ParseError, match="binary"):
        load_document(_write_bytes(tmp_path / "blob.tsv", b"q\ta\x00\n"))


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("topics.md", "---\ntitle: x\ntopics: 5\n---\n## q\na\n"),
        ("nested.md", "---\ntopics: [[a, b]]\n---\n## q\na\n"),
        ("title.json", '{"title": ["a"], "items": [{"question": "q", "answer": "a"}]}'),
    ],
)
def test_malformed_metadata_is_a_parse_error(tmp_path, name, text):
    with pytest.raises(ParseError, match=r"(topics|title) must be"):
        load_document(_write(tmp_path, name, text))


def test_topics_as_comma_separated_string(tmp_path):
    doc = load_document(_write(tmp_path, "t.md", "---\ntopics: cnn, stride\n---\n## q\na\n"))
    assert doc.meta.topics == ("cnn", "stride")


def test_anki_html_export_is_turned_into_text(tmp_path):
    text = (
        "#separator:tab\n#html:true\n"
        "What does <b>ReLU</b> compute?\tmax(0,&nbsp;x)<br>for each input\n"
        "a &lt; b &amp;&amp; c\t<div>yes</div><div>really</div>\n"
    )
    doc = load_document(_write(tmp_path, "anki.txt", text))
    assert [(e.question, e.answer) for e in doc.entries] == [
        ("What does ReLU compute?", "max(0, x)\nfor each input"),
        ("a < b && c", "yes\nreally"),
    ]


def test_anki_plain_export_keeps_angle_brackets(tmp_path):
    doc = load_document(_write(tmp_path, "plain.txt", "#html:false\nIs 1 <b> 2?\tno\n"))
    assert doc.entries[0].question == "Is 1 <b> 2?"


def test_manifest_edits_change_the_content_hash(tmp_path):
    deck = _write(tmp_path, "notes.tsv", "q\ta\n")
    before = load_document(deck).content_hash
    (tmp_path / "manifest.yaml").write_text("notes.tsv:\n  title: Better title\n")
    after = load_document(deck)
    assert after.meta.title == "Better title" and after.content_hash != before
    (tmp_path / "manifest.yaml").write_text("notes.tsv: just a string\n")
    with pytest.raises(ParseError, match="must be a mapping"):
        load_document(deck)
    (tmp_path / "manifest.yaml").write_text("notes.tsv:\n  layout: [flashcards]\n")
    with pytest.raises(ParseError, match="must be one name"):
        load_document(deck)
