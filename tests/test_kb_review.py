"""`tutor kb review`: the owners' queue of Not helpful answers on the bundled notes, from every server and
DM, and what the owners do with an entry: a corrected answer everywhere (an overlay that survives re-ingest),
a hide everywhere, a dismissal.

The bundled sources are copied to a temporary folder that stands in for knowledge/sources/ (so a test can
edit one and re-ingest it), and the encoder is the random test embedder: nothing here loads the model.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import knowledge.loader
import tutor.kb
import tutor.services
from knowledge import overrides
from knowledge.models import DocumentMeta, Entry, ParsedDocument
from knowledge.scope import Scope
from knowledge.store import Store
from tests.stores import RandomEncoder, random_embed
from tutor.cli import main


@pytest.fixture
def sources(tmp_path, monkeypatch) -> Path:
    """A copy of the bundled sources, taken for knowledge/sources/ by the loader and `tutor kb ingest`."""
    folder = tmp_path / "sources"
    shutil.copytree(knowledge.loader.SOURCES_DIR, folder)
    monkeypatch.setattr(knowledge.loader, "SOURCES_DIR", folder)
    monkeypatch.setattr(tutor.kb, "SOURCES_DIR", folder)
    return folder


@pytest.fixture
def data_dir(tmp_path, monkeypatch, sources) -> Path:
    monkeypatch.setenv("TUTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(tutor.services, "encoder", RandomEncoder)
    result = CliRunner().invoke(main, ["kb", "ingest", "-q"])
    assert result.exit_code == 0, result.output
    return tmp_path / "data"


def editable_items(store: Store, sources: Path, n: int) -> list:
    """``n`` servable bundled items whose answer appears exactly once, verbatim, in their source file."""
    found = []
    for item in store.items():
        text = (sources / item.source).read_text(encoding="utf-8")
        if item.servable and item.scope is None and len(item.answer) > 20 and text.count(item.answer) == 1:
            found.append(item)
        if len(found) == n:
            return found
    raise AssertionError("not enough items with a verbatim answer")


@pytest.fixture
def voted(data_dir, sources) -> tuple[int, int]:
    """Item A: 4 Not helpful votes (two servers and a DM); item B: 1; a server's own card: 1 (not the
    owners' to review). Returns (A, B)."""
    store = Store.open(data_dir)
    try:
        a, b = editable_items(store, sources, 2)
        votes = [(a, "111", "what is it", "it is wrong"), (a, "111", "what's that", None),
                 (a, "222", "explain it", "too short"), (a, None, "in a DM", None), (b, "111", "and b?", "meh")]  # fmt: skip
        for n, (item, guild, query, comment) in enumerate(votes):
            store.add_feedback(
                user_id=f"u{n}", query=query, helpful=False, item_id=item.id, answer=item.answer,
                comment=comment, guild_id=guild,
            )  # fmt: skip
        store.add_feedback(
            user_id="u9", query="liked", helpful=True, item_id=b.id, answer="x", guild_id="111"
        )
        meta = DocumentMeta(source="guild_111.jsonl", title="111 cards", layout="jsonl")
        card = ParsedDocument(meta, (Entry("What is a widget?", "A thing.", 1),), "d" * 64, "discord", "111")
        store.ingest([card], random_embed)
        [own] = store.items(source="guild_111.jsonl")
        store.add_feedback(
            user_id="u8", query="widget?", helpful=False, item_id=own.id, answer="A thing.", guild_id="111"
        )
        return a.id, b.id
    finally:
        store.close()


def review(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["kb", "review", *args], input=input)


def queue(*args: str) -> list[dict]:
    result = review("--json", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()


def test_the_owners_queue_spans_every_server_and_dm(voted, data_dir) -> None:
    a, b = voted
    listed = review()
    assert listed.exit_code == 0, listed.output
    out = listed.output
    assert "Not helpful on the bundled notes: 2 entries, page 1 of 1" in out
    assert f"#{a}  4 votes" in out and f"#{b}  1 vote " in out
    assert out.index(f"#{a} ") < out.index(f"#{b} "), "most voted first"
    for text in ("“it is wrong”", "“too short”", "“in a DM”", "“what is it”"):
        assert text in out
    assert "widget" not in out, "a server's own card is its admins' to review, not the owners'"
    assert "tutor kb review --correct ITEM_ID" in out

    records = queue()
    assert [(r["item_id"], r["votes"]) for r in records] == [(a, 4), (b, 1)]
    assert records[0]["comments"] == ["too short", "it is wrong"] and records[0]["correction"] is None
    assert records[0]["answer_shown"] and records[0]["source"].endswith(".txt") and records[0]["title"]

    first = review("--limit", "1")
    assert "page 1 of 2" in first.output and "more: tutor kb review --page 2" in first.output
    assert [r["item_id"] for r in queue("--limit", "1", "--page", "2")] == [b]
    past = review("--limit", "1", "--page", "3")
    assert past.exit_code == 1 and "past the end" in past.output


def test_a_correction_is_an_overlay_that_survives_reingest(voted, data_dir, sources) -> None:
    a, b = voted
    before = digest(sources)
    fixed = review("--correct", str(a), "--answer", "The owners' better answer.", "--by", "alice")
    assert fixed.exit_code == 0, fixed.output
    assert f"item {a} corrected everywhere by alice (4 Not helpful votes resolved)" in fixed.output
    assert digest(sources) == before, "the source file is never rewritten"

    store = Store.open(data_dir)
    try:
        original, source = store.item(a).answer, store.item(a).source
        seen = overrides.load_overrides(store)
        correction = seen.correction(Scope.shared(), a)
        assert correction.answer == "The owners' better answer." and correction.author == "alice"
        assert correction.original == original and correction.everywhere
        assert seen.correction(Scope.of("111"), a) == correction, "every server sees the owners' overlay"
        # The owners' resolution leaves the servers' own queues alone.
        assert [e.item_id for e in overrides.review_queue(store, Scope.of("111")).entries][:1] == [a]
    finally:
        store.close()
    assert [r["item_id"] for r in queue()] == [b], "off the owners' queue"

    # The bundled source changes (this entry's answer too) and is ingested again: same item, same overlay.
    path = sources / source
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(original, original + " Revised upstream."), encoding="utf-8")
    again = CliRunner().invoke(main, ["kb", "ingest"])
    assert again.exit_code == 0, again.output
    assert "1 updated" in again.output
    store = Store.open(data_dir)
    try:
        assert store.item(a).answer == original + " Revised upstream." and not store.item(a).retired
        kept = overrides.load_overrides(store).correction(Scope.shared(), a)
        assert kept == correction, "the overlay, its author, time and original are kept"
    finally:
        store.close()

    # --answer-file, from standard input; correcting again replaces the answer and keeps the first original.
    piped = review("--correct", str(a), "--answer-file", "-", "--note", "clearer", input="Even better.\n")
    assert piped.exit_code == 0, piped.output
    store = Store.open(data_dir)
    try:
        again_fixed = overrides.load_overrides(store).correction(Scope.shared(), a)
        assert again_fixed.answer == "Even better." and again_fixed.note == "clearer"
        assert again_fixed.original == original and again_fixed.author == getpass.getuser()
    finally:
        store.close()


def test_hide_everywhere_and_dismiss(voted, data_dir) -> None:
    a, b = voted
    hidden = review("--hide", str(b), "--by", "bob")
    assert hidden.exit_code == 0, hidden.output
    assert f"item {b} hidden everywhere" in hidden.output
    dismissed = review("--dismiss", str(a), "--json")
    assert dismissed.exit_code == 0, dismissed.output
    assert json.loads(dismissed.output) == {
        "action": "dismissed", "item_id": a, "resolved": 4, "by": getpass.getuser()
    }  # fmt: skip
    assert queue() == [] and "Nothing to review" in review().output

    store = Store.open(data_dir)
    try:
        assert "disabled" in store.item(b).flags
        assert overrides.load_overrides(store).correction(Scope.shared(), a) is None, "nothing else changed"
        rows = [r for r in store.feedback() if r["helpful"] == 0 and r["item_id"] in (a, b)]
        assert {json.loads(r["owner_resolution"])["resolution"] for r in rows if r["item_id"] == a} == {
            "dismissed"
        }
        assert {json.loads(r["owner_resolution"])["by"] for r in rows if r["item_id"] == b} == {"bob"}
        assert all(r["resolution"] is None for r in rows), "the servers' queues are theirs"
    finally:
        store.close()
    twice = review("--dismiss", str(a))
    assert twice.exit_code == 1 and "no open Not helpful votes" in twice.output


def test_mistakes_change_nothing(voted, data_dir) -> None:
    a, b = voted
    for args, says in (
        (["--correct", str(a)], "--answer TEXT or --answer-file"),
        (["--answer", "x"], "go with --correct"),
        (["--correct", str(a), "--answer", "x", "--answer-file", "-"], "--answer TEXT or --answer-file"),
        (["--correct", str(a), "--hide", str(b), "--answer", "x"], "one action at a time"),
    ):
        result = review(*args)
        assert result.exit_code == 2 and says in result.output, (args, result.output)
    store = Store.open(data_dir)
    try:
        [own] = store.items(source="guild_111.jsonl")
    finally:
        store.close()
    for args, says in (
        (["--correct", str(own.id), "--answer", "x"], "a space's own card"),
        (["--correct", str(a), "--answer", " ... "], "needs some text"),
        (["--correct", "999999", "--answer", "x"], "999999"),
    ):
        result = review(*args)
        assert result.exit_code == 1 and says in result.output and "nothing was changed" in result.output
    assert [r["votes"] for r in queue()] == [4, 1]


def test_hide_takes_a_shared_note_only(voted, data_dir) -> None:
    store = Store.open(data_dir)
    try:
        [own] = store.items(source="guild_111.jsonl")
        # The server's card is replaced by another question: the old item is retired.
        meta = DocumentMeta(source="guild_111.jsonl", title="111 cards", layout="jsonl")
        deck = ParsedDocument(meta, (Entry("What is a gadget?", "A tool.", 1),), "e" * 64, "discord", "111")
        store.ingest([deck], random_embed)
        [card] = store.items(source="guild_111.jsonl")
        assert card.id != own.id and store.item(own.id).retired
    finally:
        store.close()
    for item_id, says in ((card.id, "a server's own card"), (own.id, "retired"), (999999, "999999")):
        result = review("--hide", str(item_id))
        assert result.exit_code == 1, result.output
        assert says in result.output and "nothing was changed" in result.output
    store = Store.open(data_dir)
    try:
        assert not any("disabled" in it.flags for it in store.items(include_retired=True))
    finally:
        store.close()


def test_the_reload_hint_names_the_owners_command(voted, data_dir) -> None:
    a, b = voted
    for result in (
        review("--help"),
        review("--correct", str(a), "--answer", "The owners' better answer."),
        review("--hide", str(b)),
    ):
        assert result.exit_code == 0, result.output
        assert "/owner reload" in result.output and "/kb reload" not in result.output
