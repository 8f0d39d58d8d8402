"""Per-guild settings (answer channels, quiz defaults), read on every message, so cached in memory.

The settings live in the bot's tables (``bot.repository.BotRepository``, in the store's file).
``GuildSettings(store)`` works over the process's one store (``Services.store``), reading it under the
store's lock like every user of that shared connection (why: ``knowledge.quiz.repository``).
A lock of its own keeps the cache and the store in step, so this is safe to call from any thread. Every
method but ``is_answer_channel`` may touch SQLite or wait for a lock: call them in a thread, never on the
event loop. ``is_answer_channel`` (asked for every message, on
the event loop) only reads the cache, without the lock: a cached value is never changed in place, only
replaced (one atomic dict assignment).
"""

from __future__ import annotations

import threading
from typing import Any

from bot.repository import BotRepository
from knowledge.store import Store


class GuildSettings:
    """``GuildSettings(store)``: cached reads, write-through updates, over the bot's repository in the
    process's store (or over a given ``BotRepository``, which :attr:`repository` then is)."""

    def __init__(self, store: Store | BotRepository) -> None:
        self.repository = store if isinstance(store, BotRepository) else BotRepository(store)
        self._lock = threading.Lock()  # then the store's (``_db``), never the other way round
        self._db = self.repository.lock
        with self._lock, self._db:
            self._cache: dict[str, dict[str, Any]] = self.repository.all_settings()

    def close(self) -> None:
        """Nothing to close: the store is its owner's (kept so that owners close what they opened)."""

    def get(self, guild_id: int | str) -> dict[str, Any]:
        with self._lock:
            key = str(guild_id)
            if key not in self._cache:
                with self._db:
                    self._cache[key] = self.repository.settings(key)
            return dict(self._cache[key])

    def update(self, guild_id: int | str, **values: Any) -> dict[str, Any]:
        with self._lock, self._db:
            self._cache[str(guild_id)] = self.repository.update_settings(guild_id, **values)
            return dict(self._cache[str(guild_id)])

    def is_answer_channel(self, guild_id: int | None, channel_id: int) -> bool:
        """Cache only, no lock: safe on the event loop while a write holds the lock in a thread."""
        if guild_id is None:
            return False
        settings = self._cache.get(str(guild_id))
        return settings is not None and channel_id in settings["answer_channels"]

    def set_leaderboard(self, guild_id: int | str, user_id: int | str, joined: bool) -> None:
        with self._lock, self._db:
            self.repository.set_leaderboard(guild_id, user_id, joined)

    def leaderboard_users(self, guild_id: int | str) -> list[str]:
        with self._lock, self._db:
            return self.repository.leaderboard_users(guild_id)

    def delete_guild(self, guild_id: int | str) -> dict[str, int]:
        """Delete a server's settings, leaderboard and departure (``BotRepository.delete_guild``) and forget
        its cached settings: a server the bot joins again starts with none."""
        with self._lock, self._db:
            deleted = self.repository.delete_guild(guild_id)
            self._cache.pop(str(guild_id), None)
            return deleted
