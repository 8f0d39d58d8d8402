"""A newcomer's first run: one data folder per user, a container that answers on a new volume, a store
that cannot be written still answering, and the shipped vectors that make the first start fast."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from knowledge.errors import ReadOnlyStore, StoreError
from knowledge.loader import SOURCES_DIR, collect_paths, load_document
from knowledge.store import Store
from knowledge.vectors import BUNDLED_VECTORS, TextVectors, load_bundled, text_key

REPO = Path(__file__).resolve().parents[1]
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
BIN = Path(sys.executable).parent


class CountingEncoder:
    """Stands in for MiniLM under its model id: counts the texts it is asked to encode."""

    def __init__(self, model_id: str, dim: int = 384):
        self.model_id, self.dim, self.texts = model_id, dim, []

    def encode(self, texts, batch_size: int = 64):
        self.texts.extend(texts)
        rng = np.random.default_rng(len(self.texts))
        vectors = rng.normal(size=(len(texts), self.dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode_one(self, text):
        return self.encode([text])[0]


def _run(args, data_dir: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUTOR_DATA_DIR": str(data_dir), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, **kwargs)


def test_default_data_folder_is_the_users_whatever_the_current_folder(monkeypatch, tmp_path):
    from platformdirs import user_data_path

    from tutor.settings import load_settings

    monkeypatch.delenv("TUTOR_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert load_settings().data_dir == user_data_path("dl-tutor", appauthor=False)
    monkeypatch.setenv("TUTOR_DATA_DIR", "~/elsewhere")
    assert load_settings().data_dir == Path.home() / "elsewhere"


def test_the_bundled_notes_embed_nothing_on_a_fresh_install(tmp_path):
    """The shipped vectors cover the ingest, the index and the quiz cards; `make vectors` rewrites them."""
    from index import store_index
    from index.encoder import MODEL_ID
    from knowledge.quiz.service import QuizService

    counting = CountingEncoder(MODEL_ID)
    store = Store.open(tmp_path)
    vectors = TextVectors(store, counting)
    store.ingest([load_document(p) for p in collect_paths([SOURCES_DIR])], vectors)
    store_index.build(store, vectors, tmp_path / "index")
    quiz = QuizService(store, counting)
    quiz.catalogue()
    quiz.close()
    store.close()
    assert counting.texts == [], (
        f"{len(counting.texts)} texts not in {BUNDLED_VECTORS.name}: run `make vectors`"
    )


def test_text_vectors_are_remembered_and_another_model_is_not_served_them(tmp_path):
    store = Store.open(tmp_path)
    first = CountingEncoder("model-a")
    vectors = TextVectors(store, first, bundled=None)
    a = vectors.encode(["what is stride", "what is padding", "what is stride"])
    assert first.texts == ["what is stride", "what is padding"]  # each distinct text once
    again = TextVectors(store, CountingEncoder("model-a"), bundled=None)
    np.testing.assert_array_equal(again.encode(["what is padding"]), a[1:2])
    assert again.encoded == 0
    other = CountingEncoder("model-b")
    TextVectors(store, other, bundled=None).encode(["what is stride"])
    assert other.texts == ["what is stride"]
    store.close()


def test_a_damaged_shipped_file_only_costs_time(tmp_path):
    bad = tmp_path / "bundled.npz"
    bad.write_bytes(b"not a zip")
    assert load_bundled(bad, 384) == {}
    np.savez(tmp_path / "wrong.npz", keys=np.array(["k"]), vectors=np.zeros((1, 3), dtype=np.float32))
    assert load_bundled(tmp_path / "wrong.npz", 384) == {}
    good = load_bundled(BUNDLED_VECTORS, 384)
    from index.encoder import MODEL_ID

    assert text_key(MODEL_ID, "What is “stride”?") in good


def test_the_container_entrypoint_ingests_a_new_volume_once(tmp_path):
    volume = tmp_path / "volume"
    first = _run(["sh", str(ENTRYPOINT), "kb", "stats"], volume)
    assert first.returncode == 0, first.stderr
    assert "221 items" in first.stdout
    assert (volume / "index" / "manifest.json").is_file()  # the first question needs no rebuild
    assert "WARNING" not in first.stderr
    stamp = (volume / "index" / "manifest.json").stat().st_mtime_ns
    again = _run(["sh", str(ENTRYPOINT), "ask", "what is stride"], volume)
    assert again.returncode == 0, again.stderr
    assert "Stride" in again.stdout
    assert (volume / "index" / "manifest.json").stat().st_mtime_ns == stamp  # nothing ingested twice


def test_the_entrypoint_leaves_demo_workers_alone(tmp_path):
    volume = tmp_path / "volume"
    result = _run(["sh", str(ENTRYPOINT), "worker", "--help"], volume)
    assert result.returncode == 0, result.stderr
    assert not volume.exists()


def test_a_data_folder_that_cannot_be_created_is_a_message_not_a_traceback(tmp_path):
    from tutor.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["kb", "stats"], env={"TUTOR_DATA_DIR": str(blocker / "sub")})
    assert result.exit_code == 1
    assert "cannot create the data folder" in result.output and "TUTOR_DATA_DIR" in result.output
    assert result.exc_info[0] is SystemExit


def _read_only_prefix(folder: Path) -> list[str] | None:
    """A command prefix under which ``folder`` cannot be written, even by root (a read-only bind mount)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        for path in folder.rglob("*"):
            path.chmod(0o555 if path.is_dir() else 0o444)
        return []
    if shutil.which("unshare") is None:
        return None
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, str(folder), "true"], capture_output=True)
    return ["unshare", "-m", "sh", "-c", script, str(folder)] if probe.returncode == 0 else None


def test_a_read_only_store_answers_and_says_why_it_cannot_record_progress(tmp_path):
    data = tmp_path / "data"
    built = _run([str(BIN / "tutor"), "kb", "ingest", "-q"], data)
    assert built.returncode == 0, built.stderr
    shutil.rmtree(data / "index")  # the index too must be built somewhere writable
    prefix = _read_only_prefix(data)
    if prefix is None:
        pytest.skip("no way to make a folder read-only here (root without mount namespaces)")
    answer = _run([*prefix, str(BIN / "tutor"), "ask", "what is stride"], data)
    assert answer.returncode == 0, answer.stderr
    assert "Stride" in answer.stdout
    assert "Traceback" not in answer.stderr
    quiz = _run([*prefix, str(BIN / "tutor"), "quiz", "-n", "1"], data, stdin=subprocess.DEVNULL)
    assert quiz.returncode == 1
    assert "record your progress" in quiz.stderr and "can only be read" in quiz.stderr
    assert "move it aside" not in quiz.stderr and "Traceback" not in quiz.stderr
    assert not (data / "index").exists()


def test_writes_to_a_read_only_store_raise_a_plain_error(tmp_path):
    store = Store.open(tmp_path)
    store.close()
    view = Store(tmp_path / "tutor.db")
    view.read_only = "a test said so"
    with pytest.raises(ReadOnlyStore, match="a test said so"), view.transaction():
        pass
    assert issubclass(ReadOnlyStore, StoreError)
    view.close()


async def test_the_bot_on_a_read_only_store_answers_and_explains_quizzes(
    fake_quiz_store_path,
    fake_index_dir,
    fake_encoder,
    retrieval_model,
    demo_worker,
    tmp_path,
    monkeypatch,
):
    """Every store on the file opens read-only (as on a read-only mount): the bot starts, /ask answers, and
    /quiz says why it cannot record progress."""
    import knowledge.store
    from index.retriever import Retriever
    from tests.bot_harness import running_tutor

    shutil.copy(fake_quiz_store_path, tmp_path / "tutor.db")
    shutil.copytree(fake_index_dir, tmp_path / "index")
    monkeypatch.setattr(knowledge.store, "unwritable", lambda path: "the test mounted it read-only")
    store = Store(tmp_path / "tutor.db")
    assert store.read_only
    retriever = Retriever(store, fake_encoder, tmp_path / "index", model=retrieval_model)
    async with running_tutor(retriever, demo_worker, tmp_path) as world:
        srv = world.server
        asked = await srv.invoke_slash(world.alice, world.general, "ask", {"question": "what is dropout?"})
        assert "ropout" in json.dumps((await asked.wait_message(timeout=20)).embed or {})
        quiz = await srv.invoke_slash(world.alice, world.general, "quiz start", {"questions": 2})
        reply = await quiz.wait_message(timeout=20)
        assert "record your progress" in reply.content and "read-only" in reply.content
    store.close()


def test_a_vector_write_inside_a_transaction_joins_it(tmp_path):
    """A quiz step builds its cards inside its own transaction: the cache's writes join it."""
    store = Store.open(tmp_path)
    vectors = TextVectors(store, CountingEncoder("model-a"), bundled=None)
    with store.transaction():
        vectors.encode(["inside a quiz step"])
    assert store.db.execute("SELECT count(*) FROM text_vectors").fetchone()[0] == 1
    store.close()


def test_threads_sharing_one_store_keep_their_transactions_and_reads_apart(tmp_path):
    import threading

    store = Store.open(tmp_path)
    store.db.execute("CREATE TABLE scratch (thread TEXT, n INTEGER)")
    errors = []

    def write(name: str) -> None:
        try:
            for n in range(200):
                with store.transaction():
                    store.db.execute("INSERT INTO scratch VALUES (?, ?)", [name, n])
        except Exception as exc:
            errors.append(exc)

    def read() -> None:  # sqlite-utils' query() would open a SAVEPOINT on the shared connection
        try:
            for _ in range(400):
                list(store.db.query("SELECT count(*) AS n FROM scratch"))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(name,)) for name in "ab"]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert store.db.execute("SELECT count(*) FROM scratch").fetchone()[0] == 400
    store.close()


def test_the_entrypoint_lets_a_damaged_database_be_restored(tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "tutor.db").write_bytes(b"")  # damaged: truncated to nothing
    stats = _run(["sh", str(ENTRYPOINT), "kb", "stats"], volume)
    assert stats.returncode == 1 and "damaged" in stats.stderr
    assert "running `tutor kb stats` anyway" in stats.stderr
    restore = _run(["sh", str(ENTRYPOINT), "kb", "restore", "--yes"], volume)
    assert "Traceback" not in restore.stderr and "first-start ingest" not in restore.stderr


def test_an_interrupted_first_start_is_completed(tmp_path):
    from tutor.cli import main

    store = Store.open(tmp_path)
    first = collect_paths([SOURCES_DIR])[0]
    store.ingest([load_document(first)], TextVectors(store, CountingEncoder("m"), bundled=None))
    store.close()
    env = {"TUTOR_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["kb", "ingest", "--first-start"], env=env)
    assert result.exit_code == 0, result.output
    assert "221 unchanged" not in result.output and "ingested 5 documents" in result.output
    again = CliRunner().invoke(main, ["kb", "ingest", "--first-start"], env=env)
    assert "nothing to do" in again.output


def test_ingest_into_a_read_only_store_says_why(tmp_path, monkeypatch):
    import knowledge.store

    Store.open(tmp_path).close()
    monkeypatch.setattr(knowledge.store, "unwritable", lambda path: "the test mounted it read-only")
    store = Store.open(tmp_path)
    with pytest.raises(ReadOnlyStore, match="read-only"):
        store.ingest([load_document(collect_paths([SOURCES_DIR])[0])], CountingEncoder("m").encode)
    store.close()
