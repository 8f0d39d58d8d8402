"""The persisted index under faults: a concurrent ingest, and any damage to its folder, end in a rebuild.

The subject is the index's files and manifest, not the model, so a small deterministic encoder stands in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from index import store_index
from index.errors import IndexCorrupt
from knowledge.loader import load_document
from knowledge.store import Store
from tests.stores import HashingEncoder

ENCODER = HashingEncoder()


def _embed(texts):
    return ENCODER.encode(list(texts))


@pytest.fixture
def store(fake_store):
    """A private copy of the bundled notes ingested with the stand-in encoder."""
    return fake_store


def _load(store: Store, directory: Path):
    return store_index.load(directory, store.content_hash(), ENCODER.model_id, ENCODER.dim)


def test_an_ingest_during_the_build_is_detected_and_rebuilt(store, tmp_path):
    """The manifest records the snapshot the build read, not the store as it is after encoding."""
    deck = tmp_path / "late.tsv"
    deck.write_text("What does a late card ask?\tWhether a concurrent ingest is indexed.\n", encoding="utf-8")

    class IngestWhileEncoding(HashingEncoder):
        ingested = False

        def encode(self, texts):
            if not self.ingested:  # another process commits an ingest while the encoder runs
                self.ingested = True
                other = Store(store.path)
                other.ingest([load_document(deck)], _embed)
                other.close()
            return super().encode(texts)

    directory = tmp_path / "index"
    built = store_index.build(store, IngestWhileEncoding(), directory)
    late = [it.id for it in store.items() if it.question == "What does a late card ask?"]
    assert late and late[0] not in set(built.item_ids.tolist())
    with pytest.raises(IndexCorrupt, match="stale"):
        _load(store, directory)
    rebuilt, reason = store_index.load_or_build(store, ENCODER, directory)
    assert "stale" in reason and late[0] in set(rebuilt.item_ids.tolist())
    assert _load(store, directory).manifest["n_items"] == rebuilt.manifest["n_items"]


def _rewrite_manifest(directory: Path, change) -> None:
    path = directory / "manifest.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _replace_with_folder(path: Path) -> None:
    path.unlink()
    (path / "inner").mkdir(parents=True)


DAMAGE = {
    "manifest a list": lambda d: (d / "manifest.json").write_text("[1, 2, 3]"),
    "manifest null": lambda d: (d / "manifest.json").write_text("null"),
    "manifest a string": lambda d: (d / "manifest.json").write_text('"index"'),
    "manifest files null": lambda d: _rewrite_manifest(d, lambda m: {**m, "files": None}),
    "manifest topics null": lambda d: _rewrite_manifest(d, lambda m: {**m, "topics": None}),
    "manifest dim text": lambda d: _rewrite_manifest(d, lambda m: {**m, "dim": "64"}),
    "manifest not utf-8": lambda d: (d / "manifest.json").write_bytes(b"\xff\xfe{"),
    "manifest a folder": lambda d: _replace_with_folder(d / "manifest.json"),
    **{
        f"{name} a folder": (lambda n: lambda d: _replace_with_folder(d / n))(name)
        for name in store_index.FILES
    },
    "index folder a file": lambda d: (shutil.rmtree(d), d.write_text("not a folder")),
    "index folder a dead link": lambda d: (shutil.rmtree(d), d.symlink_to(d.parent / "gone")),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_any_damage_is_reported_then_rebuilt(store, tmp_path, damage):
    directory = tmp_path / "index"
    store_index.build(store, ENCODER, directory)
    n_items = _load(store, directory).manifest["n_items"]
    DAMAGE[damage](directory)
    with pytest.raises(IndexCorrupt):
        _load(store, directory)
    rebuilt, reason = store_index.load_or_build(store, ENCODER, directory)
    assert reason and rebuilt.manifest["n_items"] == n_items
    assert _load(store, directory).manifest["n_items"] == n_items  # valid again, nothing left in the way


def test_stdin_that_is_not_utf8_is_read_with_replacement(monkeypatch):
    import io
    import sys

    from tutor.cli import tolerate_undecodable_stdin

    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(b"what is stride\n\xff\xfe odd \xc3\nlast\n"))
    )
    tolerate_undecodable_stdin()
    assert list(sys.stdin) == ["what is stride\n", "\ufffd\ufffd odd \ufffd\n", "last\n"]


def test_a_batch_from_stdin_fails_only_on_its_bad_line(store, tmp_path, capsys):
    """One question the encoder rejects gets its error in its place; the others are answered in order."""
    from index.retriever import Retriever
    from tutor.ask import _print_batch

    class RejectsOne(HashingEncoder):
        def encode(self, texts):
            if any("poison" in t for t in texts):
                raise ValueError("cannot tokenize")
            return super().encode(texts)

    retriever = Retriever(store, RejectsOne(), tmp_path / "index")
    _print_batch(retriever, ["what is stride", "poison pill", "what is dropout"], as_json=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("error") is None for line in lines] == [True, False, True]
    assert lines[1]["query"] == "poison pill" and "stride" in json.dumps(lines[0]).lower()
