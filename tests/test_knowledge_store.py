"""The SQLite store: seeded content, duplicate groups, off-topic answers, idempotent and atomic ingest.

Which entries group and which answers are off topic depends on the real model's embeddings (``seeded_store``,
``embed``); how an ingest updates, rolls back and locks does not, and runs on the store ingested with the
stand-in encoder (``fake_store``, ``fake_embed``).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from knowledge.analysis import AGREEMENT_MIN, Candidate, analyse
from knowledge.errors import NotFound, ParseError, StoreError
from knowledge.loader import SOURCES_DIR, load_document
from knowledge.store import Store

CH13, CH4, CH13_B, CH5, CS231N = (
    "000_bc2d647321f7b90f.txt",
    "001_3c8b6b165987452c.txt",
    "002_0e03a6d0dc41612b.txt",
    "003_9e7b146b1097a2d2.txt",
    "004_0cc870b9a54faf0e.txt",
)


def by_position(store: Store):
    return {(it.source, it.n): it for it in store.items()}


def dump(store: Store) -> list:
    return [list(store.db.query(f"SELECT * FROM {t} ORDER BY 1")) for t in ("documents", "items", "groups")]


def test_seeded_counts_and_flags(seeded_store):
    stats = seeded_store.stats()
    assert stats["per_source"] == {CH13: 40, CH4: 37, CH13_B: 9, CH5: 23, CS231N: 112}
    assert stats["per_flag"] == {"cloze": 20, "off_topic": 3, "placeholder": 3, "unanswered": 6}
    items = by_position(seeded_store)
    assert items[(CH13, 3)].flags == {"unanswered"}
    assert {n for (src, n), it in items.items() if src == CH13 and "placeholder" in it.flags} == {7, 18, 19}
    assert not items[(CH13, 7)].servable


def test_second_answer_set_is_grouped_with_the_first(seeded_store):
    items = by_position(seeded_store)
    expected = {1: 23, 2: 24, 3: 25, 4: 26, 5: 28, 6: 29, 7: 30, 8: 32, 9: 33}
    for n_b, n_a in expected.items():
        assert items[(CH13_B, n_b)].group == items[(CH13, n_a)].group, (n_b, n_a)
    grouped = [it for it in items.values() if len(seeded_store.group_members(it.group)) > 1]
    assert len(grouped) == 18  # nine pairs, nothing else
    # "What is padding?" and CS231n's "why use padding?" are related, not the same question.
    assert items[(CH13, 5)].group != items[(CS231N, 22)].group


def test_off_topic_answers_are_flagged_and_lose_the_group(seeded_store):
    items = by_position(seeded_store)
    # ActivationStats answered with "what an activation function is", callbacks with the training loop,
    # batch sizes with manufacturing batches.
    assert {n for (src, n), it in items.items() if "off_topic" in it.flags} == {3, 4, 6}
    assert all(src == CH13_B for (src, n), it in items.items() if "off_topic" in it.flags)
    best = seeded_store.best_answers()
    for n_b in (3, 4, 6):
        item = items[(CH13_B, n_b)]
        assert best[item.group] != item.id
        assert item.relevance is not None  # the score is recorded


def test_best_answer_rule(embed):
    q = "Why do we double the number of filters after each stride-2 conv?"
    good = "Each stride-2 conv halves the grid, so doubling the filters keeps the computation per layer constant."
    cands = [
        Candidate(1, "a.txt", 1, "c/1", q, "To be completed by the reader.", frozenset({"placeholder"})),
        Candidate(2, "b.txt", 1, "c/1", q, good, frozenset()),
        Candidate(3, "c.txt", 1, "c/1", q, "Bake the cake at 180 degrees for forty minutes.", frozenset()),
    ]
    result = analyse(cands, embed)
    assert result.groups[1] == result.groups[2] == result.groups[3] == 1
    assert result.best[1] == 2
    assert result.off_topic == {3} and result.agreement[3] < AGREEMENT_MIN


def test_reingest_is_idempotent(fake_store, fake_embed):
    before = dump(fake_store)
    docs = [load_document(p) for p in sorted(SOURCES_DIR.glob("*.txt"))]
    report = fake_store.ingest(docs, fake_embed)
    assert (report.added, report.updated, report.retired, report.unchanged) == (0, 0, 0, 221)
    after = dump(fake_store)
    assert after[1] == before[1] and after[2] == before[2]


def test_edited_document_updates_in_place_and_retires_removed(fake_store, fake_embed, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SOURCES_DIR / "manifest.yaml", src)
    text = (SOURCES_DIR / CH4).read_text()
    ids = {it.n: it.id for it in fake_store.items(source=CH4)}
    edited = text.replace(
        "gradient is the slope of a function at a point", "the slope of the loss at a point"
    )
    edited = edited.replace("  27. What does view do in PyTorch?\n\n    view does reshaping\n\n", "")
    for n in range(28, 38):
        edited = edited.replace(f"  {n}. ", f"  {n - 1}. ")
    (src / CH4).write_text(edited)
    # The edited copy is another file than the bundled one (a name clash): replacing it is explicit, and
    # entries then keep their ids by question only.
    report = fake_store.ingest([load_document(src / CH4)], fake_embed, replace=True)
    assert report.retired == 1 and report.added == 0
    items = {it.question: it for it in fake_store.items(source=CH4)}
    assert items["What is a “gradient”?"].answer == "the slope of the loss at a point"
    assert items["What is a “gradient”?"].id == ids[18]
    assert items["What are the “bias” parameters in a neural network? Why do we need them?"].id == ids[28]
    retired = [it for it in fake_store.items(include_retired=True, source=CH4) if it.retired]
    assert [(it.id, it.question) for it in retired] == [(ids[27], "What does view do in PyTorch?")]
    # Restoring the entry brings back the same item.
    fake_store.ingest([load_document(SOURCES_DIR / CH4)], fake_embed, replace=True)
    assert {it.n: it.id for it in fake_store.items(source=CH4)} == ids


def test_metadata_only_edit_regroups_and_changes_the_content_hash(seeded_store, embed, tmp_path):
    """Moving the second chapter-13 answer set to another chapter changes which pairs count as duplicates."""
    src = tmp_path / "src"
    shutil.copytree(SOURCES_DIR, src)
    manifest = (src / "manifest.yaml").read_text()
    entry = manifest.index(CH13_B)
    chapter_at = manifest.index("chapter:", entry)
    line_end = manifest.index("\n", chapter_at)
    (src / "manifest.yaml").write_text(manifest[:chapter_at] + 'chapter: "99"' + manifest[line_end:])
    docs = [load_document(src / name) for name in (CH13, CH4, CH13_B, CH5, CS231N)]
    hash_before = seeded_store.content_hash()
    seeded_store.ingest(docs, embed, replace=True)  # copies of the bundled files: they replace them
    fresh = Store(tmp_path / "fresh.db")
    fresh.ingest(docs, embed)
    grouping = "SELECT i.source, i.n, i.group_id IS NOT NULL AS grouped FROM items i ORDER BY i.source, i.n"
    assert list(seeded_store.db.query(grouping)) == list(fresh.db.query(grouping))
    assert seeded_store.content_hash() != hash_before
    fresh.close()


def test_bad_file_leaves_store_untouched(fake_store, fake_embed, tmp_path):
    before = dump(fake_store)
    good = tmp_path / "good.tsv"
    good.write_text("What is a tensor?\tAn n-dimensional array\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok", "answer": "fine"}\n{oops\n')
    with pytest.raises(ParseError, match=r"bad.jsonl:2"):
        docs = [load_document(good), load_document(bad)]
        fake_store.ingest(docs, fake_embed)
    assert dump(fake_store) == before


def test_failure_inside_the_transaction_rolls_back(fake_store, fake_embed, tmp_path, monkeypatch):
    before = dump(fake_store)
    deck = tmp_path / "deck.tsv"
    deck.write_text("What is a tensor?\tAn n-dimensional array\n")

    def broken_analyse(*_args):
        raise RuntimeError("analysis crashed after the items were written")

    monkeypatch.setattr("knowledge.store.analyse", broken_analyse)
    with pytest.raises(RuntimeError):
        fake_store.ingest([load_document(deck)], fake_embed)
    assert dump(fake_store) == before


def test_failing_model_changes_nothing(fake_store, tmp_path):
    before = dump(fake_store)
    deck = tmp_path / "deck.tsv"
    deck.write_text("What is a tensor?\tAn n-dimensional array\n")

    def broken_embed(_texts):
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        fake_store.ingest([load_document(deck)], broken_embed)
    assert dump(fake_store) == before


def test_model_runs_outside_the_write_lock(fake_store, fake_embed, tmp_path):
    """Embedding takes seconds; other writers (quiz answers, feedback) must not wait for it."""
    deck = tmp_path / "deck.tsv"
    deck.write_text("What is a tensor?\tAn n-dimensional array\nWhat is a ___ layer?\tdense\n")
    other = sqlite3.connect(fake_store.path, timeout=0, isolation_level=None)
    lock_free_during_embed: list[bool] = []

    def watching_embed(texts):
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            lock_free_during_embed.append(True)
        except sqlite3.OperationalError:  # "database is locked": ingest holds the write lock
            lock_free_during_embed.append(False)
        return fake_embed(texts)

    try:
        report = fake_store.ingest([load_document(deck)], watching_embed)
    finally:
        other.close()
    assert report.added == 2
    assert lock_free_during_embed and all(lock_free_during_embed)


def test_user_deck_joins_the_base(fake_store, fake_embed, tmp_path):
    deck = tmp_path / "my_notes.md"
    deck.write_text(
        "---\ntitle: My CNN notes\ntopics: [cnn]\n---\n\n## What is a dilated convolution?\n\n"
        "A convolution whose kernel taps are spaced apart, growing the receptive field.\n\n## ___ pooling\n\nmax\n"
    )
    report = fake_store.ingest([load_document(deck)], fake_embed)
    assert report.added == 2
    items = fake_store.items(source="my_notes.md")
    assert [it.n for it in items] == [1, 2] and "cloze" in items[1].flags
    assert {d.source: d.title for d in fake_store.documents()}["my_notes.md"] == "My CNN notes"


def test_disable_item(fake_store):
    item = fake_store.items(source=CH13)[4]
    assert fake_store.set_disabled(item.id).servable is False
    assert fake_store.set_disabled(item.id, False).servable is True
    with pytest.raises(NotFound):
        fake_store.item(999_999)


def test_corrupt_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "tutor.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"damaged.*no backup"):
        Store(path)


def test_cli_ingest_list_show_stats(tmp_path, monkeypatch):
    from tutor.cli import main

    monkeypatch.setenv("TUTOR_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    result = runner.invoke(main, ["kb", "ingest"])
    assert result.exit_code == 0, result.output
    assert "221 added" in result.output and "index rebuilt" in result.output
    manifest = json.loads((tmp_path / "data" / "index" / "manifest.json").read_text())
    assert manifest["n_items"] == 221, "an ingest leaves a ready index: the first question does not wait"
    again = runner.invoke(main, ["kb", "ingest"])
    assert again.exit_code == 0 and "index rebuilt" not in again.output
    listed = runner.invoke(main, ["kb", "list", "--json"])
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert len(rows) == 221
    assert set(rows[0]) == {"id", "source", "n", "question", "answer", "flags", "group"}
    assert all(row["question"].strip() for row in rows)
    shown = runner.invoke(main, ["kb", "show", str(rows[0]["id"]), "--json"])
    assert json.loads(shown.output)["question"] == rows[0]["question"]
    stats = runner.invoke(main, ["kb", "stats"])
    assert "221 items" in stats.output and CS231N in stats.output and "112" in stats.output
    missing = runner.invoke(main, ["kb", "show", "999999"])
    assert missing.exit_code == 1 and "no item with id 999999" in missing.output
    bad = tmp_path / "bad.tsv"
    bad.write_text("no tab at all\n")
    failed = runner.invoke(main, ["kb", "ingest", str(bad)])
    assert failed.exit_code == 1 and "bad.tsv:1" in failed.output and "nothing was changed" in failed.output
    assert len(runner.invoke(main, ["kb", "list", "--json"]).output.splitlines()) == 221


def test_sources_dir_exists():
    assert Path(SOURCES_DIR, "manifest.yaml").exists()
