"""Per-guild settings (answer channels, quiz defaults), read on every message, so cached in memory.

The settings live in the store (``guild_settings``). ``GuildSettings(store)`` uses the process's one
store (``Services.store``), reading it under the store's lock like every user of that shared connection
(why: ``knowledge.quiz.repository``); a path still works and opens a store of its own, closed with this.
A lock of its own keeps the cache and the store in step, so this is safe to call from any thread. Every
method but ``is_answer_channel`` may touch SQLite or wait for a lock: call them in a thread, never on the
event loop. ``is_answer_channel`` (asked for every message, on
the event loop) only reads the cache, without the lock: a cached value is never changed in place, only
replaced (one atomic dict assignment).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from knowledge.store import Store


class GuildSettings:
    """``GuildSettings(store)``: cached reads, write-through updates. ``GuildSettings(path)``: the same over
    a store of its own (a script, an older caller); prefer passing the process's store."""

    def __init__(self, store: Store | str | Path) -> None:
        self._owned = not isinstance(store, Store)  # opened here, so closed here
        self._store = Store(store) if self._owned else store
        self._lock = threading.Lock()  # then the store's (``_db``), never the other way round
        self._db = self._store.lock
        with self._lock, self._db:
            self._cache: dict[str, dict[str, Any]] = self._store.all_guild_settings()

    def close(self) -> None:
        """Close the store if this opened it; a shared store is its owner's to close."""
        if self._owned:
            with self._lock, self._db:
                self._store.close()

    def get(self, guild_id: int | str) -> dict[str, Any]:
        with self._lock:
            key = str(guild_id)
            if key not in self._cache:
                with self._db:
                    self._cache[key] = self._store.guild_settings(key)
            return dict(self._cache[key])

    def update(self, guild_id: int | str, **values: Any) -> dict[str, Any]:
        with self._lock, self._db:
            self._cache[str(guild_id)] = self._store.update_guild_settings(guild_id, **values)
            return dict(self._cache[str(guild_id)])

    def is_answer_channel(self, guild_id: int | None, channel_id: int) -> bool:
        """Cache only, no lock: safe on the event loop while a write holds the lock in a thread."""
        if guild_id is None:
            return False
        settings = self._cache.get(str(guild_id))
        return settings is not None and channel_id in settings["answer_channels"]

    def set_leaderboard(self, guild_id: int | str, user_id: int | str, joined: bool) -> None:
        with self._lock, self._db:
            self._store.set_guild_leaderboard(guild_id, user_id, joined)

    def leaderboard_users(self, guild_id: int | str) -> list[str]:
        with self._lock, self._db:
            return self._store.guild_leaderboard_users(guild_id)
