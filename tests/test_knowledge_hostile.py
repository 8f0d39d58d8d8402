"""Hostile input to the knowledge base: ingest at scale, YAML alias bombs, deep JSON, files taking another's
name, and property tests that arbitrary text only ever raises the package's own errors, quickly.

Vectors come from a deterministic stand-in encoder (identical texts, identical vectors); one test uses the
real model, to check the bundled sources' groups against the full n x n matrix.
"""

from __future__ import annotations

import json
import sqlite3
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.analysis import ANY_DOCUMENT_MIN, SAME_CHAPTER_MIN, Candidate, analyse
from knowledge.errors import KnowledgeError, NameClash, ParseError
from knowledge.loader import SOURCES_DIR, collect_paths, load_document
from knowledge.models import DocumentMeta, Entry, ParsedDocument, question_key
from knowledge.parsers.bounds import MAX_ENTRIES, MAX_NESTING
from knowledge.parsers.decks import DECK_PARSERS, detect_format
from knowledge.parsers.questionnaire import LAYOUTS
from knowledge.store import MIGRATIONS, Store
from tests.stores import RandomEncoder, TimedStore, ingest_bundled, open_copy, random_embed

CS231N = "004_0cc870b9a54faf0e.txt"


fake_embed = random_embed


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bundled_store_path(tmp_path_factory) -> Path:
    return ingest_bundled(tmp_path_factory.mktemp("hostile-kb") / "tutor.db", fake_embed)


@pytest.fixture
def store(bundled_store_path, tmp_path):
    with open_copy(bundled_store_path, tmp_path) as store:
        yield store


# --- 1. scale -----------------------------------------------------------------------------------------------
def _reference_analysis(items, embed):
    """The n x n rule as first written (the full similarity matrix): the oracle for the candidate search."""
    questions = embed([it.question for it in items])
    sim = questions @ questions.T
    by_source: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_source.setdefault(it.source, []).append(i)
    parent = list(range(len(items)))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    sources = sorted(by_source)
    for a_index, src_a in enumerate(sources):
        for src_b in sources[a_index + 1 :]:
            rows, cols = by_source[src_a], by_source[src_b]
            same = bool(items[rows[0]].chapter) and items[rows[0]].chapter == items[cols[0]].chapter
            minimum = SAME_CHAPTER_MIN if same else ANY_DOCUMENT_MIN
            block = sim[np.ix_(rows, cols)]
            used_r, used_c = set(), set()
            for flat in np.argsort(-block, axis=None, kind="stable"):
                r, c = divmod(int(flat), len(cols))
                if block[r, c] < minimum:
                    break
                if r not in used_r and c not in used_c:
                    used_r.add(r)
                    used_c.add(c)
                    parent[find(rows[r])] = find(cols[c])
    groups = {}
    for i, it in enumerate(items):
        groups.setdefault(find(i), []).append(it.key)
    return {key: min(keys) for keys in groups.values() for key in keys}


def test_candidate_search_matches_the_full_matrix_with_many_answer_sets():
    """30 answer sets of one 40-question questionnaire (29 near-twins per item: more than the first 20
    neighbours the search looks at) plus unrelated decks: the groups are those of the n x n rule."""
    rng = np.random.default_rng(7)
    base = rng.standard_normal((40, 48))
    vectors: dict[str, np.ndarray] = {}
    items = []
    for doc in range(34):
        for n in range(40):
            text = f"d{doc} q{n}"
            v = base[n] + rng.normal(scale=0.15, size=48) if doc < 30 else rng.standard_normal(48)
            vectors[text] = (v / np.linalg.norm(v)).astype(np.float32)
            chapter = "course/13" if doc % 2 else "course/4"
            items.append(Candidate(len(items) + 1, f"doc{doc:02d}", n + 1, chapter, text, "", frozenset()))
    embed = lambda texts: np.stack([vectors[t] for t in texts])  # noqa: E731
    assert analyse(items, embed).groups == _reference_analysis(items, embed)


@pytest.mark.model
def test_bundled_groups_are_the_full_matrix_groups(embed):
    """The real knowledge base with the real model: the candidate search changes no group."""
    from knowledge.flags import static_flags

    items = []
    for path in collect_paths([SOURCES_DIR]):
        doc = load_document(path)
        chapter = f"{doc.meta.course}/{doc.meta.chapter}" if doc.meta.chapter else ""
        for n, e in enumerate(doc.entries, 1):
            flags = frozenset(static_flags(e.question, e.answer))
            items.append(Candidate(len(items) + 1, doc.meta.source, n, chapter, e.question, e.answer, flags))
    groups = analyse(items, embed).groups
    assert groups == _reference_analysis(items, embed)
    assert sum(1 for key, group in groups.items() if key != group) == 9  # the nine pairs of chapter 13


def test_analysis_memory_grows_with_n_not_n_squared():
    """12,000 items in two documents: the n x n matrix alone would be 576 MB."""
    items = [
        Candidate(i + 1, f"doc{i % 2}", i // 2 + 1, "", f"question {i}", f"answer {i}", frozenset())
        for i in range(12_000)
    ]
    tracemalloc.start()
    try:
        result = analyse(items, fake_embed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.groups) == 12_000
    assert peak < 100 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB"


def test_a_50000_line_tsv_ingests_in_short_transactions(tmp_path):
    """The deck that crashed the n x n analysis: ingested, and no transaction holds the lock for 1 s."""
    deck = _write(tmp_path / "big.tsv", "".join(f"q{i}?\ta{i}\n" for i in range(50_000)))
    store = TimedStore(tmp_path / "tutor.db")
    store.durations.clear()
    other = _write(tmp_path / "small.tsv", "q7?\tseven\nWhat is a tensor?\tAn array.\n")
    report = store.ingest([load_document(deck), load_document(other)], fake_embed)
    assert report.added == 50_002
    assert store.durations and max(store.durations) < 1.0, store.durations
    # "q7?" is asked by both decks: one duplicate group of two, whose best answer is a member.
    grouped = list(store.db.query("SELECT id, best_item_id FROM groups WHERE size > 1"))
    assert len(grouped) == 1
    assert store.db.execute(
        "SELECT COUNT(*) FROM items WHERE retired_at IS NULL AND group_id NOT IN (SELECT id FROM groups)"
    ).fetchone() == (0,)
    store.close()


def test_more_entries_than_the_bound_is_a_clear_error(tmp_path):
    deck = _write(tmp_path / "huge.tsv", "q\ta\n" * (MAX_ENTRIES + 1))
    started = time.thread_time()
    with pytest.raises(ParseError, match=r"more than 100,000 entries; split the file"):
        load_document(deck)
    assert time.thread_time() - started < 5
    jsonl = _write(tmp_path / "huge.jsonl", '{"q": "x", "a": "y"}\n' * (MAX_ENTRIES + 1))
    with pytest.raises(ParseError, match="more than 100,000 entries"):
        load_document(jsonl)


def test_readers_never_see_half_a_document(store, tmp_path):
    """After every committed transaction of an ingest that edits, adds and removes entries, a reader sees
    the document entirely as it was or entirely as it is now."""
    old = [(f"What is thing {i}?", f"old answer {i}") for i in range(300)]
    new = [(f"What is thing {i}?", f"new answer {i}") for i in range(50, 400)]
    deck = tmp_path / "deck.tsv"
    _write(deck, "".join(f"{q}\t{a}\n" for q, a in old))
    store.ingest([load_document(deck)], fake_embed)
    reader = sqlite3.connect(store.path, isolation_level=None)
    seen = []

    def look() -> None:
        rows = reader.execute(
            "SELECT question, answer FROM items WHERE source = 'deck.tsv' AND retired_at IS NULL ORDER BY n"
        ).fetchall()
        seen.append(rows)

    timed = TimedStore(store.path, after_commit=look)
    _write(deck, "".join(f"{q}\t{a}\n" for q, a in new))
    report = timed.ingest([load_document(deck)], fake_embed)
    assert (report.added, report.updated, report.retired) == (100, 250, 50)
    assert len(seen) >= 2  # the document, then the analysis
    for rows in seen:
        assert rows in (old, new)
    assert seen[-1] == new
    timed.close()
    reader.close()


def test_the_model_and_the_staging_run_outside_the_write_lock(store, tmp_path, monkeypatch):
    deck = _write(tmp_path / "deck.tsv", "".join(f"q{i}?\ta{i}\n" for i in range(12_000)))
    other = sqlite3.connect(store.path, timeout=0, isolation_level=None)
    free: list[bool] = []

    def probe() -> None:
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            free.append(True)
        except sqlite3.OperationalError:
            free.append(False)

    original = Store._stage_batch

    def staging(self, sql, batch):
        probe()
        original(self, sql, batch)
        probe()

    monkeypatch.setattr(Store, "_stage_batch", staging)
    report = store.ingest([load_document(deck)], lambda texts: (probe(), fake_embed(texts))[1])
    other.close()
    assert report.added == 12_000
    assert len(free) > 6 and all(free)


def test_a_concurrent_ingest_is_noticed_and_planned_again(store, tmp_path, monkeypatch):
    mine = _write(tmp_path / "mine.tsv", "What is a tensor?\tAn array.\n")
    theirs = _write(tmp_path / "theirs.tsv", "What is a tensor?\tA multi-dimensional array.\n")
    import knowledge.store as store_module

    real = store_module.analyse
    calls = []

    def analyse_while_another_writes(items, embed):
        calls.append(len(items))
        if len(calls) == 1:  # another process commits an ingest between our plan and our publish
            other = Store(store.path)
            other.ingest([load_document(theirs)], fake_embed)  # (its own analysis is call 2)
            other.close()
        return real(items, embed)

    monkeypatch.setattr(store_module, "analyse", analyse_while_another_writes)
    report = store.ingest([load_document(mine)], fake_embed)
    assert report.added == 1 and len(calls) == 3  # ours planned twice, the second time with their deck
    assert calls[2] == calls[0] + 1
    sources = {it.source: it for it in store.items() if it.source in ("mine.tsv", "theirs.tsv")}
    assert sources["mine.tsv"].group == sources["theirs.tsv"].group  # analysed together
    ids = [it.id for it in store.items(include_retired=True)]
    assert len(ids) == len(set(ids))


def test_a_crash_between_publish_steps_is_repaired_by_the_next_ingest(store, tmp_path, monkeypatch):
    deck = _write(tmp_path / "deck.tsv", "What is padding?\tZeros around the input.\n")

    def crash(self):
        raise RuntimeError("killed after the document was published")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "_publish_analysis", crash)
        with pytest.raises(RuntimeError):
            store.ingest([load_document(deck)], fake_embed)
    assert [it.question for it in store.items(source="deck.tsv")] == ["What is padding?"]  # whole
    assert store.db.execute("SELECT analysed FROM documents WHERE source = 'deck.tsv'").fetchone() == (0,)
    report = store.ingest([load_document(deck)], fake_embed)  # nothing changed in the file...
    assert report.skipped_documents == 1
    assert store.db.execute("SELECT MIN(analysed) FROM documents").fetchone() == (1,)  # ...analysed anyway
    assert store.db.execute(
        "SELECT COUNT(*) FROM items WHERE retired_at IS NULL AND group_id NOT IN (SELECT id FROM groups)"
    ).fetchone() == (0,)


# --- 2. YAML ------------------------------------------------------------------------------------------------
def _alias_bomb() -> str:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, prev in zip("bcdefghi", "abcdefgh", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    return "\n".join(levels) + "\ntitle: *i\n"


def test_a_yaml_alias_bomb_in_front_matter_is_refused_at_once(tmp_path):
    deck = _write(tmp_path / "bomb.md", "---\n" + _alias_bomb() + "---\n## What is x?\nx.\n")
    assert len(deck.read_bytes()) < 500
    tracemalloc.start()
    started = time.thread_time()
    try:
        with pytest.raises(ParseError, match=r"aliases \(\*name\) are not allowed") as info:
            load_document(deck)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.thread_time() - started < 2 and peak < 10 * 1024 * 1024  # CPU s; it took 74 s before
    assert info.value.line == 3 and len(str(info.value)) < 400


def test_a_yaml_alias_bomb_in_the_manifest_is_refused(tmp_path):
    _write(tmp_path / "manifest.yaml", _alias_bomb().replace("title: *i", "deck.tsv:\n  title: *i"))
    deck = _write(tmp_path / "deck.tsv", "q\ta\n")
    with pytest.raises(ParseError, match=r"invalid manifest: .*aliases"):
        load_document(deck)


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("title: " + "[" * 10_000 + "]" * 10_000, f"nested more than {MAX_NESTING} levels"),
        ("title: " + "9" * 5000, "invalid YAML front matter"),  # more digits than int() converts
        ("title: 2024-13-45", "invalid YAML front matter"),  # a date that does not exist
        ("title: !!python/object:os.system x", "invalid YAML front matter"),
        ("title: x\n" + "# padding\n" * 10_000, "front matter is longer than 64 KB"),
    ],
)
def test_hostile_front_matter_is_a_parse_error(tmp_path, front, message):
    deck = _write(tmp_path / "deck.md", f"---\n{front}\n---\n## q\na\n")
    with pytest.raises(ParseError, match=message) as info:
        load_document(deck)
    assert len(str(info.value)) < 1200


def test_error_messages_quote_a_bounded_excerpt(tmp_path):
    value = "x" * 50_000
    deck = _write(tmp_path / "deck.md", f"---\ntopics: {{a: {value}}}\n---\n## q\na\n")
    with pytest.raises(ParseError, match="topics must be a list") as info:
        load_document(deck)
    assert len(str(info.value)) < 600
    _write(tmp_path / "manifest.yaml", f"deck2.tsv:\n  layout: [{value}]\n")
    with pytest.raises(ParseError, match="must be one name") as info:
        load_document(_write(tmp_path / "deck2.tsv", "q\ta\n"))
    assert len(str(info.value)) < 600


# --- 3. JSON ------------------------------------------------------------------------------------------------
def test_deeply_nested_json_is_a_parse_error(tmp_path):
    deep = _write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ParseError, match=f"nested more than {MAX_NESTING} levels deep") as info:
        load_document(deep)
    assert info.value.line == 1
    lines = '{"q": "a", "a": "b"}\n' + '{"q": ' * 50_000 + '"x"' + "}" * 50_000 + "\n"
    with pytest.raises(ParseError, match="nested more than") as info:
        load_document(_write(tmp_path / "deep.jsonl", lines))
    assert info.value.line == 2
    # No extension: detection reads the first line, which is just as deep.
    with pytest.raises(ParseError):
        load_document(_write(tmp_path / "deep.txt", "{" * 100_000))


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    deck = _write(tmp_path / "deck.json", json.dumps([{"q": "[" * 1000 + '"\\{', "a": "}" * 1000}]))
    assert load_document(deck).entries[0].answer == "}" * 1000


def test_a_huge_integer_in_json_is_a_parse_error(tmp_path):
    with pytest.raises(ParseError, match="invalid JSON"):
        load_document(_write(tmp_path / "deck.json", '[{"q": "x", "a": ' + "9" * 5000 + "}]"))


# --- 4. a file cannot take another's place -----------------------------------------------------------------
def test_a_deck_named_like_a_bundled_source_is_refused(store, tmp_path):
    before = [it.id for it in store.items(source=CS231N)]
    clash = _write(tmp_path / CS231N, "What is a receptive field?\tA link to my site.\n")
    with pytest.raises(NameClash) as info:
        store.ingest([load_document(clash)], fake_embed)
    message = str(info.value)
    assert str(clash.resolve()) in message and f"knowledge/sources/{CS231N}" in message
    assert "--replace" in message
    assert [it.id for it in store.items(source=CS231N)] == before  # nothing retired
    report = store.ingest([load_document(clash)], fake_embed, replace=True)
    assert report.added == 1 and report.retired == len(before)


def test_the_same_name_from_another_folder_is_refused_and_replace_never_reuses_an_item(store, tmp_path):
    a = _write(tmp_path / "a" / "notes.md", "## What is a tensor?\nAn array.\n\n## What is SGD?\nA step.\n")
    b = _write(tmp_path / "b" / "notes.md", "## What is padding?\nZeros.\n\n## What is SGD?\nAn update.\n")
    store.ingest([load_document(a)], fake_embed)
    ids = {it.question: it.id for it in store.items(source="notes.md")}
    again = store.ingest([load_document(a)], fake_embed)  # same file, same place: unchanged
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    with pytest.raises(NameClash) as info:
        store.ingest([load_document(b)], fake_embed)
    assert str(a.resolve()) in str(info.value) and str(b.resolve()) in str(info.value)
    store.ingest([load_document(b)], fake_embed, replace=True)
    after = {it.question: it.id for it in store.items(source="notes.md")}
    # Entry 1 ("tensor" -> "padding") is a new item, not item 1 with a different question.
    assert after["What is padding?"] not in ids.values()
    assert after["What is SGD?"] == ids["What is SGD?"]
    retired = {it.id: it.question for it in store.items(include_retired=True) if it.retired}
    assert retired[ids["What is a tensor?"]] == "What is a tensor?"
    # From now on b is the document: its own edits are updates again, and a is the stranger.
    with pytest.raises(NameClash):
        store.ingest([load_document(a)], fake_embed)


def test_two_files_with_one_name_in_one_ingest_is_refused(store, tmp_path):
    a = _write(tmp_path / "a" / "notes.tsv", "q\ta\n")
    b = _write(tmp_path / "b" / "notes.tsv", "r\tb\n")
    with pytest.raises(NameClash, match="two documents of this ingest") as info:
        store.ingest([load_document(a), load_document(b)], fake_embed, replace=True)
    assert str(a.resolve()) in str(info.value) and str(b.resolve()) in str(info.value)
    report = store.ingest([load_document(a), load_document(a)], fake_embed)  # the same file twice: once
    assert report.added == 1


def test_server_cards_keep_their_name(store, tmp_path):
    """/kb add builds its document in code (no origin): a file of the same name cannot replace it."""
    meta = DocumentMeta(source="guild_42.jsonl", title="Server cards", layout="jsonl")
    entries = (Entry("What is a server card?", "One added with /kb add.", 1),)
    store.ingest([ParsedDocument(meta, entries, "digest-1")], fake_embed)
    deck = _write(tmp_path / "guild_42.jsonl", '{"q": "Spoofed?", "a": "yes"}\n')
    with pytest.raises(NameClash, match=r"a server's own cards \(guild_42.jsonl, added with /kb add\)"):
        store.ingest([load_document(deck)], fake_embed)
    entries += (Entry("And a second one?", "Yes.", 2),)
    report = store.ingest([ParsedDocument(meta, entries, "digest-2")], fake_embed)
    assert (report.added, report.unchanged) == (1, 1)


def _database_before_origins(path: Path) -> sqlite_utils.Database:
    """A database as the code before migration 006 left it (its first five migrations applied)."""
    db = sqlite_utils.Database(path)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, fn in MIGRATIONS[:5]:
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, '2024-01-01')", [name])
    return db


def test_existing_databases_get_origins_backfilled(tmp_path):
    """A database from before origins: bundled and server rows are recognised, others adopted on ingest."""
    path = tmp_path / "tutor.db"
    db = _database_before_origins(path)
    for source in (CS231N, "guild_7.jsonl", "notes.tsv"):
        db["documents"].insert({"source": source, "title": source, "content_hash": "old"})
        db["items"].insert(
            {"source": source, "n": 1, "question": "Old question?", "answer": "old",
             "question_key": question_key("Old question?")}
        )  # fmt: skip
    db.conn.commit()
    db.conn.close()
    store = Store(path)
    origins = dict(store.db.execute("SELECT source, origin FROM documents").fetchall())
    assert origins == {CS231N: "bundled", "guild_7.jsonl": "discord", "notes.tsv": None}
    deck = _write(tmp_path / "notes.tsv", "Old question?\tnew answer\nAnother question?\tyes\n")
    report = store.ingest([load_document(deck)], fake_embed)  # adopted: the same question keeps its id
    assert (report.added, report.updated) == (1, 1)
    origin = store.db.execute("SELECT origin FROM documents WHERE source = 'notes.tsv'").fetchone()[0]
    assert origin == f"file:{deck.resolve()}"
    store.close()


def test_a_legacy_document_is_never_taken_over_by_position(tmp_path):
    """Stored before origins, it may be another file of that name: its items keep their questions."""
    path = tmp_path / "tutor.db"
    db = _database_before_origins(path)
    db["documents"].insert({"source": "notes.tsv", "title": "notes", "content_hash": "old"})
    db["items"].insert(
        {"source": "notes.tsv", "n": 1, "question": "What is a tensor?", "answer": "An array",
         "question_key": question_key("What is a tensor?")}
    )  # fmt: skip
    db.conn.commit()
    db.conn.close()
    store = Store(path)
    (old_id,) = [it.id for it in store.items()]
    deck = _write(tmp_path / "b" / "notes.tsv", "What is padding?\tZeros around the input.\n")
    report = store.ingest([load_document(deck)], fake_embed)
    assert (report.added, report.retired) == (1, 1)
    assert store.item(old_id).question == "What is a tensor?" and store.item(old_id).retired
    store.close()


def test_cli_name_clash_names_both_files_and_replace_allows_it(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import tutor.services
    from tutor.cli import main

    monkeypatch.setenv("TUTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(tutor.services, "encoder", RandomEncoder)
    monkeypatch.setattr(tutor.services, "refresh_index", lambda store, progress=None: None)
    a = _write(tmp_path / "a" / "notes.tsv", "What is a tensor?\tAn array.\n")
    b = _write(tmp_path / "b" / "notes.tsv", "What is padding?\tZeros.\n")
    runner = CliRunner()
    assert runner.invoke(main, ["kb", "ingest", str(a)]).exit_code == 0
    refused = runner.invoke(main, ["kb", "ingest", str(b)])
    assert refused.exit_code == 1
    assert str(a.resolve()) in refused.output and str(b.resolve()) in refused.output
    assert "--replace" in refused.output and "nothing was changed" in refused.output
    replaced = runner.invoke(main, ["kb", "ingest", "--replace", str(b)])
    assert replaced.exit_code == 0, replaced.output
    assert "1 added" in replaced.output and "1 retired" in replaced.output


# --- 5. properties: any text, only our errors, quickly -------------------------------------------------------
_TOKENS = [
    "---\n", "## ", "# ", "\n", "\n\n", "\t", '"', "'", "[", "]", "{", "}", ":", ",", "&a ", "*a", "<<: ",
    "- ", "? ", "!!", "!!binary ", "!!python/object ", "1. ", "2. ", "Ans. ", "<br>", "<div>", "</div>", "<",
    "#html:true\n", "#separator:tab\n", "\\", "title: ", "topics: ", "chapter: ", "items", "question",
    "answer", '"q": ', '"a": ', "null", "1e999", "9" * 30, "\r", "\u2028", "\ufeff", " ", "    ", "?", ".",
    "What is it", "Explain", "Further Research", "2024-13-45",
]  # fmt: skip
_text = st.lists(st.one_of(st.sampled_from(_TOKENS), st.text(max_size=6)), max_size=120).map("".join)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["q", "a", "items", "title", "question", "x"]), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip
_json_text = st.one_of(_json_values.map(json.dumps), _text)
_markdown = st.builds(
    lambda front, body: f"---\n{front}\n---\n{body}", _text, _text
) | _text  # fmt: skip
_tsv = (
    st.lists(st.tuples(_text, _text), max_size=6).map(lambda rows: "".join(f"{q}\t{a}\n" for q, a in rows))
    | _text
)

fast = settings(
    max_examples=120, deadline=5000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
MEMORY_BOUND = 32 * 1024 * 1024


def _bounded(parse, *args) -> None:
    """Parse; anything but our own error fails the test, and so does a peak of more than 32 MB."""
    tracemalloc.start()
    try:
        parse(*args)
    except KnowledgeError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MB"


@fast
@given(text=_markdown)
def test_markdown_with_front_matter_only_raises_parse_errors(text):
    _bounded(DECK_PARSERS["markdown"], Path("deck.md"), text)


@fast
@given(text=_tsv)
def test_tsv_only_raises_parse_errors(text):
    _bounded(DECK_PARSERS["tsv"], Path("deck.tsv"), text)


@fast
@given(text=_json_text)
def test_json_only_raises_parse_errors(text):
    _bounded(DECK_PARSERS["json"], Path("deck.json"), text)


@fast
@given(lines=st.lists(_json_text, max_size=5))
def test_jsonl_only_raises_parse_errors(lines):
    _bounded(DECK_PARSERS["jsonl"], Path("deck.jsonl"), "\n".join(lines))


@fast
@given(text=_text, layout=st.sampled_from(sorted(LAYOUTS)))
def test_questionnaire_layouts_only_raise_parse_errors(text, layout):
    _bounded(LAYOUTS[layout], text, "doc.txt")


@fast
@given(text=_text | _json_text | _markdown)
def test_format_detection_only_raises_parse_errors(text):
    _bounded(detect_format, Path("deck.txt"), text)


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=300) | _text.map(str.encode),
    name=st.sampled_from(["d.md", "d.tsv", "d.json", "d.jsonl", "d.txt"]),
)
def test_any_file_only_raises_our_errors(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data)
    _bounded(load_document, path)


def test_linear_time_on_long_hostile_lines():
    """Inputs that were quadratic: an unclosed-tag HTML field, and a question that never ends a sentence."""
    started = time.thread_time()
    DECK_PARSERS["tsv"](Path("d.tsv"), "#html:true\n" + "q\t" + "<div" * 30_000 + "\n")
    DECK_PARSERS["tsv"](Path("d.tsv"), "#html:true\n" + "q\t" + "<a" * 50_000 + "\n")
    for layout in ("bullets", "numbered"):
        first = "- a" if layout == "bullets" else "1. a"
        LAYOUTS[layout](first + "\nb" * 200_000, "d.txt")
    LAYOUTS["lines"]("What is it?\n" + "and more\n" * 200_000, "d.txt")
    assert time.thread_time() - started < 10


def test_a_path_that_is_not_utf8_is_a_parse_error_before_anything_is_written(tmp_path):
    import os

    folder = Path(os.fsdecode(bytes(tmp_path) + b"/bad\xff"))
    deck = _write(folder / "deck.tsv", "What is x?\tx.\n")
    with pytest.raises(ParseError, match="not valid UTF-8"):
        load_document(deck)


def test_an_error_after_a_publish_says_what_was_published(tmp_path, monkeypatch):
    """Another writer forces a second plan after a.tsv was published, and that plan meets a clash: the
    error must not claim that nothing was changed."""
    import knowledge.store as store_module

    store = Store(tmp_path / "tutor.db")
    a = _write(tmp_path / "a.tsv", "What is a tensor?\tAn array.\n")
    real_publish, real_plan = Store._publish, Store._plan
    calls = {"plan": 0}

    def publish_then_conflict(self, *args, **kwargs):
        real_publish(self, *args, **kwargs)
        raise store_module._Conflict()

    def plan_then_clash(self, documents, replace):
        calls["plan"] += 1
        if calls["plan"] == 2:
            raise NameClash("a.tsv", "x", "y", "a.tsv: a clash found on the second plan")
        return real_plan(self, documents, replace)

    monkeypatch.setattr(Store, "_publish", publish_then_conflict)
    monkeypatch.setattr(Store, "_plan", plan_then_clash)
    with pytest.raises(NameClash) as caught:
        store.ingest([load_document(a)], fake_embed)
    assert caught.value.published == ("a.tsv",)
    assert [it.question for it in store.items()] == ["What is a tensor?"]
    store.close()


def test_quiet_ingest_prints_nothing_on_success(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import tutor.services
    from tutor.cli import main

    monkeypatch.setenv("TUTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(tutor.services, "encoder", RandomEncoder)
    monkeypatch.setattr(tutor.services, "refresh_index", lambda store, progress=None: "built")
    deck = _write(tmp_path / "notes.tsv", "What is a tensor?\tAn array.\n")
    result = CliRunner().invoke(main, ["kb", "ingest", "-q", str(deck)])
    assert result.exit_code == 0 and result.output == ""
