"""The bot's schema: its Discord tables in the store's file, as migrations applied in order; never edit an
applied one.

Server settings, leaderboards and departures are Discord concepts, so the bot owns them (issue 12), not
``knowledge``. They live in the same SQLite file as the knowledge base (one backup, one restore) but have
their own migrations, recorded in ``_bot_migrations`` (name, applied_at) as ``knowledge.migrations``
records the store's in ``_migrations``. :class:`bot.repository.BotRepository` applies them when it opens,
each inside one ``Store.transaction()`` with its row.

The first one *adopts* the tables ``knowledge.migrations`` used to create (``004_guild_settings``): in an
existing database they are kept with their rows (``CREATE TABLE IF NOT EXISTS``, the same schema), and a
new database gets them here.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

TABLE = "_bot_migrations"

# The exact schema knowledge's migration 004 created (sqlite-utils' CREATE TABLE), so an adopted table and
# a new one are the same.
_GUILD_SETTINGS = """
CREATE TABLE IF NOT EXISTS "guild_settings" (
   "guild_id" TEXT PRIMARY KEY,
   "answer_channels" TEXT DEFAULT '[]',
   "quiz_questions" INTEGER,
   "quiz_mode" TEXT,
   "updated_at" TEXT
)
"""
_GUILD_LEADERBOARD = """
CREATE TABLE IF NOT EXISTS "guild_leaderboard" (
   "guild_id" TEXT,
   "user_id" TEXT,
   "joined_at" TEXT,
   PRIMARY KEY ("guild_id", "user_id")
)
"""


def _m001_guild_tables(db: sqlite_utils.Database) -> None:
    """Per-server settings (answer channels, quiz defaults) and leaderboard opt-ins: adopted where
    ``knowledge`` created them, created otherwise."""
    db.execute(_GUILD_SETTINGS)
    db.execute(_GUILD_LEADERBOARD)


def _m002_guild_departures(db: sqlite_utils.Database) -> None:
    """When the bot left a server (its data is deleted after a grace period), and a user's leaderboard
    rows by user (``/forget-me``)."""
    db.execute(
        'CREATE TABLE IF NOT EXISTS "guild_departures" ("guild_id" TEXT PRIMARY KEY, "left_at" TEXT NOT NULL)'
    )
    db.execute("CREATE INDEX IF NOT EXISTS guild_leaderboard_user ON guild_leaderboard (user_id)")


# Later changes append here; never edit an applied migration.
BOT_MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_guild_tables", _m001_guild_tables),
    ("002_guild_departures", _m002_guild_departures),
]
