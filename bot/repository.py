"""The bot's SQL: per-server settings, per-server leaderboard opt-ins, and when the bot left a server.

``BotRepository(store)`` is a thin layer over the process's one :class:`~knowledge.store.Store`, as
``knowledge.quiz.repository.QuizRepository`` is (its docstring explains sharing the connection between
threads): it opens no connection of its own, writes in ``Store.transaction()`` and reads under the store's
lock (``Store.lock``). Its tables are the bot's, with their own migrations (``bot.migrations``), applied
when it opens; they sit in the store's file, so ``tutor kb backup`` and ``restore`` carry them.

Every method may touch SQLite or wait for the lock: call them in a thread, never on the event loop
(``bot.guilds.GuildSettings`` caches what the event loop reads).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.migrations import BOT_MIGRATIONS, TABLE
from knowledge.backup import AUTOMATIC
from knowledge.errors import StoreError
from knowledge.store import Store

SETTING_KEYS = ("answer_channels", "quiz_questions", "quiz_mode")
_TABLES = ("guild_settings", "guild_leaderboard", "guild_departures")


def stamp(when: datetime) -> str:
    """A moment as stored: UTC, ISO 8601 to the second, so stored moments compare as text. A naive
    ``datetime`` is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def _now() -> str:
    return stamp(datetime.now(UTC))


class BotRepository:
    """The bot's tables in ``store``'s file; its migrations are applied on open (a store opened read-only
    is read as it is: a table not there yet reads as empty, and a write raises ``ReadOnlyStore``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = store.lock
        self._missing: frozenset[str] = frozenset()
        if store.read_only is None:
            self.applied = self.migrate()
        else:
            self.applied = []
            with self.lock:
                present = set(store.db.table_names())
            self._missing = frozenset(t for t in _TABLES if t not in present)

    # --- schema ---
    def pending_migrations(self) -> list[str]:
        with self.lock:
            if not self.store.db[TABLE].exists():
                return [name for name, _ in BOT_MIGRATIONS]
            done = {row["name"] for row in self.store.db.query(f"SELECT name FROM {TABLE}")}
        return [name for name, _ in BOT_MIGRATIONS if name not in done]

    def migrate(self) -> list[str]:
        """Apply the bot's pending migrations, each in one transaction with its row in ``_bot_migrations``;
        returns their names. A database that already has some gets a backup first, as the store's do."""
        db = self.store.db
        with self.store.transaction():
            db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied_at TEXT)")
        with self.lock:
            done = {row["name"] for row in db.query(f"SELECT name FROM {TABLE}")}
        if done and any(name not in done for name, _ in BOT_MIGRATIONS):  # a schema change: keep a way back
            self.store.backup(reason=AUTOMATIC)
        applied = []
        for name, fn in BOT_MIGRATIONS:
            if name in done:
                continue
            with self.store.transaction():  # another process opening the same file meanwhile waits here
                if db.execute(f"SELECT 1 FROM {TABLE} WHERE name = ?", [name]).fetchone():
                    continue  # applied by that other process while we read `done`
                fn(db)
                db.execute(f"INSERT INTO {TABLE} VALUES (?, ?)", [name, _now()])
            applied.append(name)
        return applied

    def _rows(self, table: str, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        if table in self._missing:
            return []
        with self.lock:
            return list(self.store.db.query(sql, params))

    # --- settings ---
    def settings(self, guild_id: str | int) -> dict[str, Any]:
        """A server's settings; one never configured has no answer channels and no quiz defaults."""
        rows = self._rows(
            "guild_settings", "SELECT * FROM guild_settings WHERE guild_id = ?", [str(guild_id)]
        )
        return _settings(rows[0] if rows else {})

    def all_settings(self) -> dict[str, dict[str, Any]]:
        """Every configured server's settings, by server id."""
        rows = self._rows("guild_settings", "SELECT * FROM guild_settings", [])
        return {row["guild_id"]: _settings(row) for row in rows}

    def update_settings(self, guild_id: str | int, **values: Any) -> dict[str, Any]:
        """Set some of a server's settings (``SETTING_KEYS``); the others keep their value."""
        unknown = set(values) - set(SETTING_KEYS)
        if unknown:
            raise StoreError(f"unknown guild settings {sorted(unknown)}")
        with self.store.transaction():
            merged = {**self.settings(guild_id), **values}
            self.store.db.execute(
                "INSERT INTO guild_settings (guild_id, answer_channels, quiz_questions, quiz_mode, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(guild_id) DO UPDATE SET answer_channels=excluded.answer_channels,"
                " quiz_questions=excluded.quiz_questions, quiz_mode=excluded.quiz_mode, updated_at=excluded.updated_at",
                [str(guild_id), json.dumps(sorted({int(c) for c in merged["answer_channels"]})),
                 merged["quiz_questions"], merged["quiz_mode"], _now()],
            )  # fmt: skip
            return self.settings(guild_id)

    # --- leaderboards ---
    def set_leaderboard(self, guild_id: str | int, user_id: str | int, joined: bool) -> None:
        """Opt a user in to (or out of) one server's leaderboard."""
        with self.store.transaction():
            if joined:
                self.store.db.execute(
                    "INSERT OR IGNORE INTO guild_leaderboard (guild_id, user_id, joined_at) VALUES (?, ?, ?)",
                    [str(guild_id), str(user_id), _now()],
                )
            else:
                self.store.db.execute(
                    "DELETE FROM guild_leaderboard WHERE guild_id = ? AND user_id = ?",
                    [str(guild_id), str(user_id)],
                )

    def leaderboard_users(self, guild_id: str | int) -> list[str]:
        rows = self._rows(
            "guild_leaderboard", "SELECT user_id FROM guild_leaderboard WHERE guild_id = ?", [str(guild_id)]
        )
        return [row["user_id"] for row in rows]

    def forget_user(self, user_id: str | int) -> int:
        """Take a user off every server's leaderboard (``/forget-me``); returns how many they were on."""
        with self.store.transaction():
            cursor = self.store.db.execute("DELETE FROM guild_leaderboard WHERE user_id = ?", [str(user_id)])
            return cursor.rowcount

    # --- departures ---
    def mark_departed(self, guild_id: str | int, when: datetime) -> None:
        """The bot left (or was removed from) a server at ``when``. Each departure starts a new grace
        period: leaving again after a return counts from the new departure."""
        with self.store.transaction():
            self.store.db.execute(
                "INSERT INTO guild_departures (guild_id, left_at) VALUES (?, ?)"
                " ON CONFLICT(guild_id) DO UPDATE SET left_at=excluded.left_at",
                [str(guild_id), stamp(when)],
            )

    def mark_present(self, guild_id: str | int) -> bool:
        """The bot is in the server (again): nothing of it is to be deleted. Returns whether it had left."""
        with self.store.transaction():
            cursor = self.store.db.execute("DELETE FROM guild_departures WHERE guild_id = ?", [str(guild_id)])
            return cursor.rowcount > 0

    def departed(self) -> list[str]:
        """Every server the bot has left and not come back to."""
        rows = self._rows("guild_departures", "SELECT guild_id FROM guild_departures ORDER BY guild_id", [])
        return [row["guild_id"] for row in rows]

    def departed_before(self, cutoff: datetime) -> list[str]:
        """The servers the bot left at or before ``cutoff``, the longest gone first."""
        rows = self._rows(
            "guild_departures",
            "SELECT guild_id FROM guild_departures WHERE left_at <= ? ORDER BY left_at, guild_id",
            [stamp(cutoff)],
        )
        return [row["guild_id"] for row in rows]

    def delete_guild(self, guild_id: str | int) -> dict[str, int]:
        """Delete everything the bot keeps about a server: its settings, its leaderboard and its departure.
        Returns the rows deleted per table (the server's knowledge is ``knowledge.privacy``'s)."""
        deleted = {}
        with self.store.transaction():
            for table in _TABLES:
                cursor = self.store.db.execute(f"DELETE FROM {table} WHERE guild_id = ?", [str(guild_id)])
                deleted[table] = cursor.rowcount
        return deleted


def _settings(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "answer_channels": [int(c) for c in json.loads(row.get("answer_channels") or "[]")],
        "quiz_questions": row.get("quiz_questions"),
        "quiz_mode": row.get("quiz_mode"),
    }
