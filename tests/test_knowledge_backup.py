"""A damaged or empty database is reported with a way back, and backups make that way back exist."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from bot.repository import BotRepository
from knowledge import backup
from knowledge.errors import StoreError
from knowledge.store import MIGRATIONS, Store


def _store_with_progress(path):
    store = Store(path)
    # Stands in for what cannot be re-ingested; the bot's tables share the file, so backups carry them.
    BotRepository(store).update_settings("42", quiz_questions=7)
    return store


def _quiz_questions(store) -> int | None:
    return BotRepository(store).settings("42")["quiz_questions"]


def _damage_pages(path) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    for start in range(2 * page, len(data), page):  # keep the header page: only the contents are garbage
        data[start : start + page] = b"\xde\xad\xbe\xef" * (page // 4)
    path.write_bytes(bytes(data))


def _backed_up_then_damaged(path):
    """A database with progress, a backup of it, then garbage in its pages; returns the backup."""
    store = _store_with_progress(path)
    made = store.backup()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    _damage_pages(path)
    return made


def test_an_empty_file_is_reported_not_silently_started_afresh(tmp_path):
    path = tmp_path / "tutor.db"
    path.write_bytes(b"")
    with pytest.raises(StoreError, match=r"empty \(0 bytes\).*no backup.*move it aside \(not delete\)"):
        Store(path)
    assert path.stat().st_size == 0, "nothing was written over it"


def test_garbage_in_the_pages_is_reported_with_the_newest_backup(tmp_path):
    path = tmp_path / "tutor.db"
    made = _backed_up_then_damaged(path)
    with pytest.raises(StoreError, match="damaged") as caught:
        Store(path)
    assert (
        str(path) in str(caught.value)
        and str(made) in str(caught.value)
        and "tutor kb restore" in str(caught.value)
    )


def test_a_folder_in_place_of_the_database_is_a_clear_error(tmp_path):
    (tmp_path / "tutor.db").mkdir()
    with pytest.raises(StoreError, match="is a folder"):
        Store(tmp_path / "tutor.db")


def test_restore_brings_back_progress_and_keeps_the_damaged_file(tmp_path):
    path = tmp_path / "tutor.db"
    made = _backed_up_then_damaged(path)
    damaged = path.read_bytes()
    kept = backup.restore(path, made)
    assert kept is not None and kept.read_bytes() == damaged
    restored = Store(path)
    assert _quiz_questions(restored) == 7
    restored.close()


def test_restore_refuses_a_damaged_or_foreign_backup_and_changes_nothing(tmp_path):
    path = tmp_path / "tutor.db"
    _store_with_progress(path).close()
    before = path.read_bytes()
    foreign = tmp_path / "other.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all" * 300)
    for bad, reason in (
        (foreign, "not a tutor database"),
        (garbage, "not a readable"),
        (tmp_path / "no.db", "no"),
    ):
        with pytest.raises(StoreError, match=reason):
            backup.restore(path, bad)
    assert path.read_bytes() == before


def test_a_migration_is_preceded_by_an_automatic_backup(tmp_path, monkeypatch):
    path = tmp_path / "tutor.db"
    _store_with_progress(path).close()
    assert backup.list_backups(path) == []
    added = []

    def _m999(db) -> None:
        added.append(True)
        db.execute("CREATE TABLE later_feature (x INTEGER)")

    monkeypatch.setattr("knowledge.store.MIGRATIONS", [*MIGRATIONS, ("999_later", _m999)])
    Store(path).close()
    (copy,) = backup.list_backups(path)
    assert added and copy.stem.endswith("-auto")
    old = sqlite3.connect(copy)
    assert not old.execute("SELECT 1 FROM sqlite_master WHERE name = 'later_feature'").fetchone()
    assert old.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)
    old.close()


def test_automatic_backups_are_bounded(tmp_path):
    path = tmp_path / "tutor.db"
    store = _store_with_progress(path)
    for _ in range(backup.KEEP_AUTOMATIC + 3):
        store.backup(reason=backup.AUTOMATIC)
    manual = store.backup()
    store.close()
    found = backup.list_backups(path)
    assert len(found) == backup.KEEP_AUTOMATIC + 1 and manual in found


def test_cli_backup_then_restore(tmp_path, monkeypatch):
    from tutor.cli import main

    monkeypatch.setenv("TUTOR_DATA_DIR", str(tmp_path))
    _store_with_progress(tmp_path / "tutor.db").close()
    runner = CliRunner()
    made = runner.invoke(main, ["kb", "backup"])
    assert made.exit_code == 0 and "backed up" in made.output, made.output
    (tmp_path / "tutor.db").write_bytes(b"")
    broken = runner.invoke(main, ["kb", "stats"])
    assert broken.exit_code == 1 and "tutor kb restore" in broken.output and "Traceback" not in broken.output
    restored = runner.invoke(main, ["kb", "restore", "--yes"])
    assert restored.exit_code == 0 and "kept as" in restored.output, restored.output
    assert _quiz_questions(Store(tmp_path / "tutor.db")) == 7


def test_restore_is_refused_while_the_database_is_open(tmp_path):
    path = tmp_path / "tutor.db"
    store = _store_with_progress(path)
    made = store.backup()
    with pytest.raises(StoreError, match="in use"):
        backup.restore(path, made)
    # The open store still writes to the one database.
    BotRepository(store).update_settings("42", quiz_questions=9)
    store.close()
    backup.restore(path, made)  # closed: now it may
    assert _quiz_questions(Store(path)) == 7


def test_a_restore_that_fails_midway_leaves_the_database_in_place(tmp_path, monkeypatch):
    path = tmp_path / "tutor.db"
    store = _store_with_progress(path)
    made = store.backup()
    store.close()

    def disk_full(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup, "_copy_to_temp", disk_full)
    with pytest.raises(StoreError, match="nothing was changed"):
        backup.restore(path, made)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("tutor.db.replaced")] == []
    assert _quiz_questions(Store(path)) == 7


def test_a_new_database_never_exists_as_an_empty_file(tmp_path):
    """Created under a temp name and linked into place: many first opens at once all find a database."""
    import threading

    path = tmp_path / "tutor.db"
    errors: list[BaseException] = []

    def first_open() -> None:
        try:
            Store(path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_open) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and path.stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".new", ".tmp"))]
