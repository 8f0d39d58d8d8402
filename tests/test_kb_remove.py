"""`tutor kb remove` (retire a deck, keep its history, rebuild the index) and the `tutor kb stats` table.

The encoder is the random test embedder (tests/stores.py): identical texts get identical vectors, so a
question asked in two decks is a duplicate group, and nothing here loads the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import tutor.services
from knowledge.loader import load_document
from knowledge.models import DocumentMeta, Entry
from knowledge.store import Store
from tests.deck_writers import to_markdown
from tests.stores import RandomEncoder, TimedStore, random_embed
from tutor.cli import main

SHARED = "What does a pooling layer do?"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TUTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(tutor.services, "encoder", RandomEncoder)
    return tmp_path / "data"


def _deck(folder: Path, name: str, title: str, topic: str, questions: list[str]) -> Path:
    meta = DocumentMeta(source=name, title=title, topics=(topic,))
    path = folder / name
    path.write_text(to_markdown(meta, [Entry(q, f"The answer to {q.lower()}", 0) for q in questions]))
    return path


@pytest.fixture
def decks(tmp_path, data_dir) -> tuple[Path, Path]:
    alpha = _deck(tmp_path, "alpha.md", "Alpha notes", "alpha topic", [SHARED, "What is stride?"])
    beta = _deck(
        tmp_path, "beta-deck.md", "Beta flash cards", "beta topic", [SHARED, "What is beta?", "Why b?"]
    )
    result = CliRunner().invoke(main, ["kb", "ingest", "-q", str(alpha), str(beta)])
    assert result.exit_code == 0, result.output
    return alpha, beta


def _items(runner: CliRunner, *extra: str) -> list[dict]:
    listed = runner.invoke(main, ["kb", "list", "--json", *extra])
    return [json.loads(line) for line in listed.output.splitlines()]


def test_remove_retires_the_deck_keeps_its_history_and_rebuilds_the_index(decks, data_dir):
    runner = CliRunner()
    beta_ids = {row["id"]: row["question"] for row in _items(runner) if row["source"] == "beta-deck.md"}
    store = Store.open(data_dir)
    store.db.execute(
        "INSERT INTO quiz_reviews (user_id, card_id, item_id, rating, reviewed_at) VALUES ('u1', 1, ?, 3, 'now')",
        [min(beta_ids)],
    )
    store.close()

    result = runner.invoke(main, ["kb", "remove", "beta-deck.md", "--yes"])
    assert result.exit_code == 0, result.output
    assert "removed beta-deck.md (Beta flash cards): 3 items retired" in result.output
    assert "1 quiz reviews" in result.output and "index rebuilt" in result.output
    assert "tutor kb ingest " in result.output and "beta-deck.md` brings it back" in result.output

    assert {row["source"] for row in _items(runner)} == {"alpha.md"}
    retired = {r["id"]: r["question"] for r in _items(runner, "--all") if r["retired"]}
    assert retired == beta_ids, "every item kept, same ids"
    manifest = json.loads((data_dir / "index" / "manifest.json").read_text())
    assert manifest["n_items"] == 2 and manifest["topics"] == ["alpha topic"], "the index no longer has it"
    store = Store.open(data_dir)
    try:
        assert store.db.execute("SELECT COUNT(*) FROM quiz_reviews").fetchone()[0] == 1
        assert store.content_hash() == manifest["content_hash"], "the index is current: nothing to rebuild"
        [shared] = [it for it in store.items() if it.question == SHARED]
        assert store.group_members(shared.group) == [shared], "the duplicate group lost its retired member"
        assert store.best_answers()[shared.group] == shared.id
    finally:
        store.close()
    stats = runner.invoke(main, ["kb", "stats"]).output
    assert "2 items, 0 duplicate groups, 3 retired" in stats
    assert any(
        line.split()[:3] == ["beta-deck.md", "0", "3"] and "(removed)" in line for line in stats.splitlines()
    )

    again = runner.invoke(main, ["kb", "remove", "beta-deck.md", "--yes"])
    assert again.exit_code == 1 and "already removed" in again.output

    back = runner.invoke(main, ["kb", "ingest", str(decks[1])])
    assert back.exit_code == 0 and "3 updated" in back.output, back.output
    assert {r["id"]: r["question"] for r in _items(runner) if r["source"] == "beta-deck.md"} == beta_ids


def test_a_name_prefix_or_title_prefix_that_fits_one_deck(decks, data_dir):
    runner = CliRunner()
    assert runner.invoke(main, ["kb", "remove", "beta flash", "--yes"]).exit_code == 0
    assert {row["source"] for row in _items(runner)} == {"alpha.md"}
    last = runner.invoke(main, ["kb", "remove", "ALPHA", "--yes"])
    assert last.exit_code == 0 and "now empty" in last.output
    assert _items(runner) == []
    manifest = json.loads((data_dir / "index" / "manifest.json").read_text())
    store = Store.open(data_dir)
    try:
        assert store.content_hash() != manifest["content_hash"], "the old index is stale: never served"
    finally:
        store.close()
    stats = runner.invoke(main, ["kb", "stats"]).output
    assert "empty" in stats


def test_unknown_or_ambiguous_names_are_refused_with_the_known_ones(decks, data_dir):
    runner = CliRunner()
    unknown = runner.invoke(main, ["kb", "remove", "gamma.md", "--yes"])
    assert unknown.exit_code == 1
    assert "no document 'gamma.md'" in unknown.output
    assert "\n  alpha.md      Alpha notes\n  beta-deck.md  Beta flash cards" in unknown.output, "aligned"
    both = _deck(data_dir.parent, "alphabet.md", "Letters", "letters", ["What is c?"])
    assert runner.invoke(main, ["kb", "ingest", "-q", str(both)]).exit_code == 0
    ambiguous = runner.invoke(main, ["kb", "remove", "alpha", "--yes"])
    assert ambiguous.exit_code == 1 and "fits 2 documents" in ambiguous.output
    assert len(_items(runner)) == 6, "nothing was removed"


def test_confirmation_on_a_terminal_and_yes_elsewhere(decks, data_dir, monkeypatch):
    import tutor.kb

    runner = CliRunner()
    piped = runner.invoke(main, ["kb", "remove", "alpha.md"])
    assert piped.exit_code == 1 and "pass --yes" in piped.output
    monkeypatch.setattr(tutor.kb, "_interactive", lambda: True)
    declined = runner.invoke(main, ["kb", "remove", "alpha.md"], input="n\n")
    assert declined.exit_code == 1 and "Remove alpha.md (Alpha notes, 2 items)?" in declined.output
    assert len(_items(runner)) == 5, "declined: nothing changed"
    accepted = runner.invoke(main, ["kb", "remove", "alpha.md"], input="y\n")
    assert accepted.exit_code == 0 and "2 items retired" in accepted.output
    assert len(_items(runner)) == 3


def test_a_removed_bundled_source_stays_out_until_its_file_is_ingested_by_name(data_dir):
    from knowledge.loader import SOURCES_DIR

    runner = CliRunner()
    assert runner.invoke(main, ["kb", "ingest", "-q"]).exit_code == 0
    removed = runner.invoke(main, ["kb", "remove", "CS231n", "--yes"])
    assert removed.exit_code == 0, removed.output
    assert "112 items retired" in removed.output and "bundled source" in removed.output
    name = "004_0cc870b9a54faf0e.txt"
    assert f"`tutor kb ingest {SOURCES_DIR / name}` brings it back" in " ".join(removed.output.split())
    assert len(_items(runner)) == 221 - 112
    again = runner.invoke(main, ["kb", "ingest"])  # what `make run` does on every start
    assert again.exit_code == 0, again.output
    assert f"skipped {name}: removed" in again.output
    assert len(_items(runner)) == 221 - 112
    assert runner.invoke(main, ["kb", "ingest", "-q", str(SOURCES_DIR / name)]).exit_code == 0
    assert len(_items(runner)) == 221
    assert runner.invoke(main, ["kb", "ingest", "-q"]).exit_code == 0  # and it is no longer skipped
    assert len(_items(runner)) == 221


def test_remove_help_says_what_comes_back():
    text = CliRunner().invoke(main, ["kb", "remove", "--help"]).output
    flat = " ".join(text.split())
    assert "Nothing is deleted" in flat and "ingested by name" in flat and "--yes" in flat


def test_stats_is_an_aligned_table_when_piped(tmp_path, data_dir):
    long_name = "a-rather-long-deck-file-name-for-alignment.md"
    big = _deck(
        tmp_path, long_name, "Long [title] with brackets", "long", [f"Question {i}?" for i in range(1, 121)]
    )
    small = _deck(tmp_path, "s.md", "S", "s", ["What is s?"])
    assert CliRunner().invoke(main, ["kb", "ingest", "-q", str(big), str(small)]).exit_code == 0
    lines = CliRunner().invoke(main, ["kb", "stats"]).output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("SOURCE"))
    table = lines[header : header + 3]
    assert "\x1b" not in "".join(lines), "no colour when piped"
    title_at = {line.index(word) for line, word in zip(table, ("TITLE", "Long [title]", "S"), strict=True)}
    assert len(title_at) == 1, table
    ends = {line.index("ITEMS") + len("ITEMS") for line in table[:1]}
    ends |= {line.index(count) + len(count) for line, count in zip(table[1:], ("120", "1"), strict=True)}
    assert len(ends) == 1, f"counts right-aligned under ITEMS: {table}"
    json_out = json.loads(CliRunner().invoke(main, ["kb", "stats", "--json"]).output)
    assert json_out["per_source"] == {long_name: 120, "s.md": 1}


def test_a_writer_between_the_retirement_and_the_analysis_is_waited_out(tmp_path):
    path = tmp_path / "tutor.db"
    alpha = _deck(tmp_path, "alpha.md", "Alpha notes", "alpha topic", [SHARED, "What is stride?"])
    beta = _deck(tmp_path, "beta.md", "Beta cards", "beta topic", [SHARED, "What is beta?", "Why b?"])
    gamma = _deck(tmp_path, "gamma.md", "Gamma", "gamma topic", ["What is gamma?"])
    other = Store(path)
    other.ingest([load_document(alpha), load_document(beta)], random_embed)
    store = TimedStore(path)
    commits = []

    def meanwhile() -> None:  # right after the retirement commits, before the analysis: another ingest
        commits.append(1)
        if len(commits) == 1:
            other.ingest([load_document(gamma)], random_embed)

    store.after_commit = meanwhile
    tries, publish = [], store._publish

    def counted(plans, *args):
        tries.append(plans[0].action)
        return publish(plans, *args)

    store._publish = counted
    try:
        report = store.remove_document("beta.md", random_embed)
        assert tries == ["write", "unchanged"], "the second try only analyses: the items are retired already"
        assert (report.retired, len(commits)) == (3, 2)
        assert {it.source for it in store.items()} == {"alpha.md", "gamma.md"}
        assert store.db.execute("SELECT COUNT(*) FROM documents WHERE analysed = 0").fetchone()[0] == 0
        [shared] = [it for it in store.items() if it.question == SHARED]
        assert store.group_members(shared.group) == [shared]
    finally:
        store.close()
        other.close()
