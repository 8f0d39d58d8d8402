"""The bot's own tables (``bot.repository``, ``bot.migrations``): adopting the tables the knowledge store
used to own, settings, leaderboards, departures and their grace period, ``/forget-me``, and deleting the
data of a server the bot left, end to end against the local Discord server."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime, timedelta

import discord
import pytest
import sqlite_utils
from pydantic import ValidationError

from bot.guilds import GuildSettings
from bot.migrations import BOT_MIGRATIONS
from bot.repository import BotRepository
from knowledge.errors import StoreError
from knowledge.models import DocumentMeta, Entry, ParsedDocument
from knowledge.store import Store
from tests.bot_harness import running_tutor
from tutor.settings import Settings

T0 = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)


def _old_guild_tables(db: sqlite_utils.Database) -> None:
    """The tables as ``knowledge.migrations`` created them before they moved to the bot."""
    db["guild_settings"].create(
        {"guild_id": str, "answer_channels": str, "quiz_questions": int, "quiz_mode": str, "updated_at": str},
        pk="guild_id",
        defaults={"answer_channels": "[]"},
    )
    db["guild_leaderboard"].create(
        {"guild_id": str, "user_id": str, "joined_at": str}, pk=("guild_id", "user_id")
    )


def _columns(path, table: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA table_info({table})").fetchall()
    finally:
        conn.close()


def _names(store: Store) -> set[str]:
    return set(store.db.table_names())


# --- migrations ---------------------------------------------------------------------------------------
def test_an_existing_database_keeps_its_tables_and_rows(tmp_path):
    old = tmp_path / "old" / "tutor.db"
    store = Store(old)
    with store.transaction():  # a database made before the move: knowledge's migration 004 made these
        _old_guild_tables(store.db)
        store.db["guild_settings"].insert(
            {"guild_id": "7", "answer_channels": "[5, 3]", "quiz_questions": 4, "quiz_mode": "mc"}
        )
        store.db["guild_leaderboard"].insert({"guild_id": "7", "user_id": "u1", "joined_at": "then"})
    assert "_bot_migrations" not in _names(store)
    store.close()

    store = Store(old)
    assert store.pending_migrations() == []
    repo = BotRepository(store)
    assert repo.applied == [name for name, _ in BOT_MIGRATIONS] and repo.pending_migrations() == []
    assert repo.settings(7) == {"answer_channels": [5, 3], "quiz_questions": 4, "quiz_mode": "mc"}
    assert repo.leaderboard_users(7) == ["u1"]
    assert BotRepository(store).applied == [], "applied once"
    store.close()

    fresh = tmp_path / "new" / "tutor.db"
    store = Store(fresh)
    BotRepository(store)
    store.close()
    for table in ("guild_settings", "guild_leaderboard"):
        assert _columns(old, table) == _columns(fresh, table), f"{table}: adopted = created"


def test_a_new_database_gets_the_tables_from_the_bot(tmp_path):
    store = Store(tmp_path / "tutor.db")
    assert not {"guild_settings", "guild_leaderboard"} & _names(store), "the knowledge store makes none"
    repo = BotRepository(store)
    assert {"guild_settings", "guild_leaderboard", "guild_departures", "_bot_migrations"} <= _names(store)
    applied = [r["name"] for r in store.db.query("SELECT name FROM _bot_migrations ORDER BY name")]
    assert applied == [name for name, _ in BOT_MIGRATIONS]
    assert repo.settings(1) == {"answer_channels": [], "quiz_questions": None, "quiz_mode": None}
    store.close()


def test_a_later_bot_migration_is_preceded_by_a_backup(tmp_path, monkeypatch):
    from knowledge import backup

    path = tmp_path / "tutor.db"
    store = Store(path)
    BotRepository(store).update_settings(1, quiz_questions=3)
    assert backup.list_backups(path) == []
    monkeypatch.setattr(
        "bot.repository.BOT_MIGRATIONS",
        [*BOT_MIGRATIONS, ("999_later", lambda db: db.execute("CREATE TABLE later (x)"))],
    )
    assert BotRepository(store).applied == ["999_later"]
    (copy,) = backup.list_backups(path)
    assert copy.stem.endswith("-auto")
    store.close()


def test_a_read_only_store_reads_what_is_there(tmp_path, monkeypatch):
    path = tmp_path / "tutor.db"
    Store(path).close()  # no bot tables yet
    monkeypatch.setattr("knowledge.store.unwritable", lambda path: "a read-only mount (test)")
    store = Store(path)
    assert store.read_only
    repo = BotRepository(store)
    assert repo.settings(1)["answer_channels"] == [] and repo.departed_before(T0) == []
    assert GuildSettings(repo).get(1)["quiz_mode"] is None and repo.leaderboard_users(1) == []
    with pytest.raises(StoreError, match="can only be read"):
        repo.update_settings(1, quiz_mode="mc")
    store.close()


# --- settings and leaderboards ------------------------------------------------------------------------
def test_settings_round_trip(fake_store):
    repo = BotRepository(fake_store)
    assert repo.update_settings(5, answer_channels=[3, 1, 3]) == {
        "answer_channels": [1, 3],
        "quiz_questions": None,
        "quiz_mode": None,
    }
    assert repo.update_settings("5", quiz_questions=7)["answer_channels"] == [1, 3], "the others are kept"
    repo.update_settings(6, quiz_mode="mc")
    assert repo.all_settings() == {
        "5": {"answer_channels": [1, 3], "quiz_questions": 7, "quiz_mode": None},
        "6": {"answer_channels": [], "quiz_questions": None, "quiz_mode": "mc"},
    }
    with pytest.raises(StoreError, match="unknown guild settings"):
        repo.update_settings(5, colour="red")

    repo.set_leaderboard(5, 100, True)
    repo.set_leaderboard(5, 100, True)  # twice: still once
    repo.set_leaderboard(5, 200, True)
    repo.set_leaderboard(6, 100, True)
    assert sorted(repo.leaderboard_users(5)) == ["100", "200"]
    repo.set_leaderboard(5, 200, False)
    assert repo.leaderboard_users(5) == ["100"]


def test_forget_user_leaves_every_leaderboard(fake_store):
    repo = BotRepository(fake_store)
    for guild in (1, 2, 3):
        repo.set_leaderboard(guild, "alice", True)
    repo.set_leaderboard(1, "bob", True)
    assert repo.forget_user("alice") == 3
    assert repo.forget_user("alice") == 0
    assert [repo.leaderboard_users(g) for g in (1, 2, 3)] == [["bob"], [], []]


# --- departures ---------------------------------------------------------------------------------------
def test_departures_and_the_grace_cutoff(fake_store):
    repo = BotRepository(fake_store)
    repo.mark_departed(1, T0)
    repo.mark_departed(2, T0 + timedelta(days=10))
    repo.mark_departed("3", datetime(2025, 1, 10, 13, 0))  # naive: UTC
    assert repo.departed_before(T0 - timedelta(seconds=1)) == []
    assert repo.departed_before(T0) == ["1"], "at the cutoff counts"
    assert repo.departed_before(T0 + timedelta(days=1)) == ["1", "3"], "the longest gone first"
    assert repo.mark_present(1) is True and repo.mark_present(1) is False
    assert repo.departed_before(T0 + timedelta(days=30)) == ["3", "2"]
    repo.mark_departed(3, T0 + timedelta(days=20))  # left again: a new grace period
    assert repo.departed_before(T0 + timedelta(days=15)) == ["2"]


def test_delete_guild_deletes_its_rows_only(fake_store):
    guilds = GuildSettings(fake_store)
    repo = guilds.repository
    for guild in (1, 2):
        guilds.update(guild, answer_channels=[10 + guild], quiz_questions=guild)
        guilds.set_leaderboard(guild, "alice", True)
    repo.mark_departed(1, T0)
    assert guilds.is_answer_channel(1, 11)
    assert guilds.delete_guild(1) == {"guild_settings": 1, "guild_leaderboard": 1, "guild_departures": 1}
    assert not guilds.is_answer_channel(1, 11), "the cache forgets it too"
    assert guilds.get(1) == {"answer_channels": [], "quiz_questions": None, "quiz_mode": None}
    assert repo.departed_before(T0 + timedelta(days=1)) == [] and guilds.leaderboard_users(1) == []
    assert guilds.get(2)["quiz_questions"] == 2 and guilds.leaderboard_users(2) == ["alice"]
    assert guilds.delete_guild(1) == {"guild_settings": 0, "guild_leaderboard": 0, "guild_departures": 0}


# --- settings -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "ids"), [("", []), ("123", [123]), ("1, 2,3", [1, 2, 3]), ("[4, 5]", [4, 5]), (" [] ", [])]
)
def test_owner_ids_from_the_environment(monkeypatch, raw, ids):
    monkeypatch.setenv("TUTOR_OWNER_IDS", raw)
    assert Settings(_env_file=None).owner_ids == ids


def test_owner_ids_and_grace_days_are_checked(monkeypatch):
    assert Settings(_env_file=None).guild_grace_days == 30 and Settings(_env_file=None).owner_ids == []
    monkeypatch.setenv("TUTOR_GUILD_GRACE_DAYS", "0")
    assert Settings(_env_file=None).guild_grace_days == 0
    for name, value in (
        ("TUTOR_GUILD_GRACE_DAYS", "-1"),
        ("TUTOR_GUILD_GRACE_DAYS", "nan"),
        ("TUTOR_OWNER_IDS", "alice"),
        ("TUTOR_OWNER_IDS", "[1,"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError):
            Settings(_env_file=None)
        monkeypatch.delenv(name)


def _add_card(w, guild_id: int) -> int:
    """A card of the server's own (``guild_<id>.jsonl`` is its space), as ``/kb add`` makes; its id."""
    source, retriever = f"guild_{guild_id}.jsonl", w.services.retriever
    meta = DocumentMeta(source=source, title="Gone cards", layout="jsonl")
    entries = (Entry("What is the zorblax layer?", "A made-up layer that one server knows about.", 1),)
    w.services.store.ingest([ParsedDocument(meta, entries, "zorblax")], retriever.encoder.encode)
    retriever.reload()
    return next(item.id for item in w.services.store.items(source=source))


# --- end to end ---------------------------------------------------------------------------------------
async def test_the_tutor_owner(fake_quiz_retriever, demo_worker, tmp_path, caplog) -> None:
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        bot, owner = w.bot, discord.Object(w.server.owner.id)

        async def unreachable():
            raise OSError("network is unreachable")

        real = bot.application_info
        bot.application_info = unreachable  # type: ignore[method-assign]
        with caplog.at_level(logging.WARNING, logger="bot.bot"):
            assert not await bot.is_tutor_owner(owner) and not await bot.is_tutor_owner(owner)
        assert len([r for r in caplog.records if "owners" in r.getMessage()]) == 1, "logged once"
        bot.application_info = real  # type: ignore[method-assign]
        assert await bot.is_tutor_owner(owner), "the application's owner"
        assert not await bot.is_tutor_owner(discord.Object(w.bob.id))
        w.services.settings.owner_ids = [w.bob.id]
        assert await bot.is_tutor_owner(discord.Object(w.bob.id)), "TUTOR_OWNER_IDS"


async def test_forget_me_asks_then_deletes(fake_quiz_retriever, demo_worker, tmp_path) -> None:
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        srv, alice, bob, repo = w.server, w.alice, w.bob, w.bot.repository
        await (await srv.invoke_slash(alice, w.general, "leaderboard join")).wait_message()
        await (await srv.invoke_slash(bob, w.general, "leaderboard join")).wait_message()
        repo.set_leaderboard(999, alice.id, True)  # another server's

        # Cancel deletes nothing; someone else cannot click the buttons.
        asked = await (await srv.invoke_slash(alice, w.general, "forget-me")).wait_message()
        assert asked.ephemeral and "cannot be undone" in asked.content
        intruder = await srv.click(asked, label="Confirm: delete my data", user=bob)
        refused = await intruder.wait_message()
        assert refused.ephemeral and "someone else" in refused.content
        await srv.click(asked, label="Cancel")
        await srv.wait_for(lambda: "nothing was deleted" in asked.content, timeout=5)
        assert not asked.buttons and str(alice.id) in repo.leaderboard_users(w.guild.id)

        asked = await (await srv.invoke_slash(alice, w.general, "forget-me")).wait_message()
        await srv.click(asked, label="Confirm: delete my data")
        await srv.wait_for(lambda: asked.content.startswith("Done"), timeout=20)
        assert "server leaderboard places: 2" in asked.content and not asked.buttons, asked.content
        assert repo.leaderboard_users(w.guild.id) == [str(bob.id)] and repo.leaderboard_users(999) == []

        # In a DM too (the command is global there).
        await w.bot.tree.sync()
        dm = srv.dm_channel(alice)
        asked = await (await srv.invoke_slash(alice, dm, "forget-me")).wait_message()
        await srv.click(asked, label="Confirm: delete my data")
        await srv.wait_for(lambda: asked.content.startswith("Done"), timeout=20)


async def test_a_server_left_is_forgotten_after_the_grace_period(
    fake_quiz_retriever, demo_worker, tmp_path
) -> None:
    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        srv, bot, repo = w.server, w.bot, w.bot.repository
        spaces = bot.get_cog("Spaces")
        gone, back = srv.create_guild("Gone"), srv.create_guild("Back")
        await srv.wait_for(lambda: bot.get_guild(gone.id) and bot.get_guild(back.id), timeout=5)
        for guild in (w.guild, gone, back):
            bot.guild_settings.update(guild.id, answer_channels=[guild.id + 1], quiz_questions=3)
            bot.guild_settings.set_leaderboard(guild.id, w.alice.id, True)
        card = await asyncio.to_thread(_add_card, w, gone.id)
        assert card in w.services.retriever.items

        for guild in (gone, back):  # the bot is removed from both
            srv.dispatch_raw("GUILD_DELETE", {"id": str(guild.id)}, guild_id=guild.id)
        await srv.wait_for(lambda: bot.get_guild(gone.id) is None and bot.get_guild(back.id) is None)
        future = datetime.now(UTC) + timedelta(days=1)
        await srv.wait_for(lambda: len(repo.departed_before(future)) == 2, what="both departures")

        assert await spaces.purge_departed() == {}, "within the grace period (30 days) nothing goes"
        srv.gateway.dispatch_guild_create(back)  # ... and the bot is back in one of them
        await srv.wait_for(lambda: repo.departed_before(future) == [str(gone.id)], what="the return")

        w.services.settings.guild_grace_days = 0
        purged = await spaces.purge_departed()
        assert list(purged) == [str(gone.id)] and purged[str(gone.id)]["guild_settings"] == 1
        assert (
            bot.guild_settings.get(gone.id)["answer_channels"] == [] and repo.leaderboard_users(gone.id) == []
        )
        assert card not in w.services.retriever.items, "its cards are gone, the retriever reloaded"
        assert repo.departed_before(future) == []
        for guild in (w.guild, back):  # present: kept
            assert bot.guild_settings.get(guild.id)["quiz_questions"] == 3
            assert repo.leaderboard_users(guild.id) == [str(w.alice.id)]
        assert await spaces.purge_departed() == {}
