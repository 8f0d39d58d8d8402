"""Progress on a terminal (rich), silence (or one line a step) when piped: for the slow first steps a
newcomer waits on, and the phases of a benchmark."""

from __future__ import annotations

import sys
import time
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


class Phases:
    """What a benchmark (`tutor bench ask`) is doing, on stderr (stdout keeps only the report).

    On a terminal each phase is a rich progress bar (queries done, elapsed time) that leaves one line with
    its time; piped, each phase is one short line as it starts. A bar advances between timed calls, never
    inside one, and redraws 4 times a second, so the figures are measured as before.
    """

    def __init__(self, total: int = 0, stream=None, enabled: bool = True, command: str = "bench ask") -> None:
        self.command = command
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = total
        self.done = 0

    @contextmanager
    def phase(self, name: str, steps: int | None = None) -> Iterator[Callable[[], None]]:
        """A phase of ``steps`` steps (None: not counted); yields the function to call after each step."""
        if not self.enabled:
            yield lambda: None
            return
        self.done += 1
        label = f"[{self.done}/{self.total}] {name}" if self.total else name
        if not self.live:
            print(f"{self.command} {label}", file=self.stream, flush=True)
            yield lambda: None
            return
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

        console = Console(file=self.stream, highlight=False)
        counted = (BarColumn(), MofNCompleteColumn()) if steps else ()
        started = time.perf_counter()
        with Progress(
            SpinnerColumn(),
            "{task.description}",
            *counted,
            TimeElapsedColumn(),
            console=console,
            transient=True,
            refresh_per_second=4,
        ) as bar:
            task = bar.add_task(escape(label), total=steps)
            yield lambda: bar.advance(task)
        console.print(f"[green]done[/] {escape(label)} [dim]({time.perf_counter() - started:.1f} s)[/]")
