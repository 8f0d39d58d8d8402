"""Per-guild settings (answer channels, quiz defaults), read on every message, so cached in memory.

The settings live in the store (``guild_settings``); this wrapper has its own SQLite connection (the
retriever's is used from retrieval threads) and a lock, and is safe to call from any thread. Every method
but ``is_answer_channel`` may touch SQLite or wait for the lock: call them in a thread, never on the event
loop. ``is_answer_channel`` (asked for every message, on the event loop) only reads the cache, without the
lock: a cached value is never changed in place, only replaced (one atomic dict assignment).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from knowledge.store import Store


class GuildSettings:
    """``GuildSettings(store_path)``: cached reads, write-through updates."""

    def __init__(self, store_path: str | Path) -> None:
        self._store = Store(store_path)
        self._lock = threading.Lock()
        with self._lock:
            self._cache: dict[str, dict[str, Any]] = self._store.all_guild_settings()

    def close(self) -> None:
        with self._lock:
            self._store.close()

    def get(self, guild_id: int | str) -> dict[str, Any]:
        with self._lock:
            key = str(guild_id)
            if key not in self._cache:
                self._cache[key] = self._store.guild_settings(key)
            return dict(self._cache[key])

    def update(self, guild_id: int | str, **values: Any) -> dict[str, Any]:
        with self._lock:
            self._cache[str(guild_id)] = self._store.update_guild_settings(guild_id, **values)
            return dict(self._cache[str(guild_id)])

    def is_answer_channel(self, guild_id: int | None, channel_id: int) -> bool:
        """Cache only, no lock: safe on the event loop while a write holds the lock in a thread."""
        if guild_id is None:
            return False
        settings = self._cache.get(str(guild_id))
        return settings is not None and channel_id in settings["answer_channels"]

    def set_leaderboard(self, guild_id: int | str, user_id: int | str, joined: bool) -> None:
        with self._lock:
            self._store.set_guild_leaderboard(guild_id, user_id, joined)

    def leaderboard_users(self, guild_id: int | str) -> list[str]:
        with self._lock:
            return self._store.guild_leaderboard_users(guild_id)
