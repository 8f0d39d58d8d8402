"""Progress on a terminal (rich), silence when piped: for the slow first steps a newcomer waits on."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def on_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def embedding_bar(
    enabled: bool = True, waiting: str | None = None
) -> Iterator[Callable[[int, int], None] | None]:
    """A bar for ``TextVectors(progress=...)`` on stderr; None (no output at all) when not a terminal.

    ``waiting``: a spinner with this text until embedding starts (the model loading before it)."""
    if not (enabled and on_terminal()):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(waiting or "embedding", total=None, visible=waiting is not None)
        loaded = False

        def update(done: int, total: int) -> None:
            nonlocal loaded
            what = "embedding texts" if loaded else "loading the model, then embedding texts"
            loaded = loaded or done > 0
            bar.update(task, description=what, completed=done, total=total, visible=True)

        yield update


@contextmanager
def status(message: str, enabled: bool = True) -> Iterator[None]:
    """A spinner with ``message`` on stderr while a slow step runs (model loading); nothing when piped."""
    if not (enabled and on_terminal()):
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
