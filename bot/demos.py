"""Demos for Discord: a bounded queue in front of the engine's worker, and a demo result as a message.

The engine's ``DemoWorker`` runs one demo at a time in a killable process (torch and matplotlib never run
in the bot's process). A chat full of students could queue minutes of work, so the queue here bounds how
many demos one user, and everyone together, may have waiting or running; past that the user is told to
wait instead of the request silently queueing. Both ``/demo`` and the "Show me" button use it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import discord

import engine
from bot.formatting import EMBED_DESCRIPTION_LIMIT, FIELD_VALUE_LIMIT, FOOTER_LIMIT, shorten, split_text
from engine import DemoRequest, DemoResult, DemoSpec, EngineBusy, EngineError
from engine.worker import demo_budget
from knowledge.models import question_key

log = logging.getLogger(__name__)

MAX_NUMBER_FIELDS = 12
DEMO_COLOUR = discord.Colour.teal()


class DemoQueue:
    """At most ``per_user`` demos per user and ``total`` overall, queued or running.

    ``worker`` is the embedded ``DemoWorker`` or a ``DemoPool`` (Celery workers); with a pool, ``shared``
    (``SharedSlots``) holds the limits in Redis so that every bot process counts against the same ones.
    """

    def __init__(
        self,
        worker: Any,
        *,
        per_user: int = 1,
        total: int = 6,
        max_budget_s: float = 60.0,
        shared: Any = None,
    ) -> None:
        self.worker = worker
        self.per_user = per_user
        self.total = total
        self.max_budget_s = max_budget_s
        self.shared = shared
        self._by_user: Counter[int] = Counter()

    @property
    def in_flight(self) -> int:
        """This process's demos queued or running."""
        return sum(self._by_user.values())

    def resolve(self, request: str | dict | DemoRequest) -> DemoRequest:
        """Parse and validate (cheap, no torch): bad requests fail here, before any queueing."""
        return engine.resolve(request)

    async def warm_up(self) -> None:
        """Start the worker process ahead of the first request (imports torch: seconds, off the loop).

        With a pool this checks the broker and the workers; if they are not there yet, demos say so when
        asked and start working when they are, so it is a warning, not a failure.
        """
        try:
            await asyncio.to_thread(self.worker.start)
        except EngineError as exc:
            log.warning("demos are not available yet: %s", exc)

    @asynccontextmanager
    async def slot(self, user_id: int) -> AsyncIterator[None]:
        """Hold a place in the queue, or raise ``EngineBusy`` at once (before the user is kept waiting)."""
        token = None
        if self.shared is not None:
            token = await asyncio.to_thread(self.shared.acquire, str(user_id), self.per_user, self.total)
        else:
            if self.in_flight >= self.total:
                raise EngineBusy(f"{self.in_flight} demos are queued or running; try again in a minute.")
            if self._by_user[user_id] >= self.per_user:
                raise EngineBusy("You already have a demo running; wait for it to finish first.")
        self._by_user[user_id] += 1
        try:
            yield
        finally:
            self._by_user[user_id] -= 1
            if self._by_user[user_id] <= 0:
                del self._by_user[user_id]
            if token is not None:
                await asyncio.to_thread(self.shared.release, str(user_id), token)

    async def run(self, request: DemoRequest) -> DemoResult:
        """Run in the worker process, within the demo's own budget (capped by ``max_budget_s``)."""
        budget = demo_budget(request.demo, self.max_budget_s)
        return await self.worker.run_async(request, budget_s=budget)


def demo_spec(name: str) -> DemoSpec:
    from engine.catalogue import get

    return get(name)


@dataclass(frozen=True)
class Illustration:
    """The demo that illustrates a knowledge-base entry (each demo's spec names its entries)."""

    demo: str
    summary: str


def _by_entry() -> dict[tuple[str, str], Illustration]:
    """(document title, question key) -> the first demo, in catalogue order, that cites the entry."""
    table: dict[tuple[str, str], Illustration] = {}
    for spec in engine.catalogue():
        for ref in spec.kb:
            table.setdefault((ref.title, question_key(ref.question)), Illustration(spec.name, spec.summary))
    return table


def _bundled_titles() -> dict[str, str]:
    """Source file -> title of the bundled documents, from their manifest (read once, when first needed)."""
    from knowledge.loader import MANIFEST, SOURCES_DIR
    from knowledge.parsers.bounds import load_yaml

    path = SOURCES_DIR / MANIFEST
    listed = load_yaml(path.read_text(encoding="utf-8"), str(path), what="manifest") or {}
    return {
        str(name): str(meta.get("title") or "") for name, meta in listed.items() if isinstance(meta, dict)
    }


_ILLUSTRATIONS: dict[tuple[str, str], Illustration] | None = None
_TITLES: dict[str, str] | None = None


def illustration_for(
    entries: Iterable[tuple[str, str]], titles: Mapping[str, str] | None = None
) -> Illustration | None:
    """The first demo that illustrates any of ``entries`` (``(source, question)`` pairs), if one does.

    A demo names its entries by document title (the engine knows no file names); ``titles`` maps a source
    to its title (the retriever's ``titles``: every document in the store), else the bundled documents'
    manifest does."""
    global _ILLUSTRATIONS, _TITLES
    if _ILLUSTRATIONS is None:
        _ILLUSTRATIONS = _by_entry()
    if titles is None:
        if _TITLES is None:
            _TITLES = _bundled_titles()
        titles = _TITLES
    for source, question in entries:
        found = _ILLUSTRATIONS.get((titles.get(source, source), question_key(question)))
        if found is not None:
            return found
    return None


def demo_reply(result: DemoResult) -> tuple[discord.Embed, list[discord.File]]:
    """The embed (text, key numbers, the first plot inline) and the PNG files of one demo result."""
    text_chunks = split_text(result.text, EMBED_DESCRIPTION_LIMIT - 200) or [""]
    description = text_chunks[0] + (" …" if len(text_chunks) > 1 else "")
    embed = discord.Embed(title=f"Demo: {result.demo}", description=description, colour=DEMO_COLOUR)
    for name, value in list(result.numbers.items())[:MAX_NUMBER_FIELDS]:
        embed.add_field(name=shorten(str(name), 256), value=format_number(value), inline=True)
    params = ", ".join(f"{k}={_compact(v)}" for k, v in result.params.items() if v is not None)
    footer = f"{params} · {result.device} · {result.elapsed_ms:.0f} ms" if params else result.device
    embed.set_footer(text=shorten(footer, FOOTER_LIMIT))
    files = [
        discord.File(io.BytesIO(png), filename=f"{result.demo}_{i + 1}.png")
        for i, png in enumerate(result.images[:10])
    ]
    if files:
        embed.set_image(url=f"attachment://{files[0].filename}")
    return embed, files


def format_number(value: Any) -> str:
    """A key number, short enough for an embed field (floats to 4 significant digits, lists shortened)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _float(value)
    return shorten(_compact(value), FIELD_VALUE_LIMIT) or "—"


def _float(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list | tuple):
        inner = ", ".join(_compact(v) for v in value[:8])
        return f"[{inner}{', …' if len(value) > 8 else ''}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in list(value.items())[:6]) + "}"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
