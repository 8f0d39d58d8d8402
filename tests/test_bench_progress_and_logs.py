"""A newcomer's first hour: `tutor bench ask` says what it is doing, and the bot's log is plain when piped
(no colour codes, no faiss loader noise) and coloured on a terminal."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging
from tutor.progress import Phases


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bench_phases_are_one_line_each_when_piped():
    stream = io.StringIO()
    phases = Phases(total=2, stream=stream)
    with phases.phase("ours: 3 queries one at a time", 3) as step:
        for _ in range(3):
            step()
    with phases.phase("one-shot: 5 `tutor ask` processes"):
        pass
    assert stream.getvalue().splitlines() == [
        "bench ask [1/2] ours: 3 queries one at a time",
        "bench ask [2/2] one-shot: 5 `tutor ask` processes",
    ]


def test_bench_phases_on_a_terminal_leave_a_line_with_the_time():
    stream = Terminal()
    phases = Phases(total=1, stream=stream)
    with phases.phase("baseline: [10] queries", 10) as step:  # brackets are text, not rich markup
        for _ in range(10):
            step()
    lines = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", stream.getvalue()).splitlines()
    assert re.fullmatch(r"done \[1/1\] baseline: \[10\] queries \(\d+\.\d s\)", lines[-1]), lines[-1]


def test_bench_phases_can_be_silent():
    stream = Terminal()
    with Phases(total=1, stream=stream, enabled=False).phase("x", 2) as step:
        step()
    assert stream.getvalue() == ""


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, loader = logging.getLogger(), logging.getLogger("faiss.loader")
    saved = (root.level, list(root.handlers), loader.level)
    yield
    level, handlers, loader_level = saved
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    loader.setLevel(loader_level)


def _faiss_import_lines() -> None:
    loader = logging.getLogger("faiss.loader")
    loader.info("Loading faiss with AVX2 support.")
    loader.info(
        "Could not load library with AVX2 support due to:\nModuleNotFoundError(\"No module named 'x'\")"
    )
    logging.getLogger("tutor.test").warning("a real warning")


def test_piped_bot_log_has_no_colour_and_no_faiss_loader_noise(restore_logging, monkeypatch):
    monkeypatch.setattr(
        "discord.utils.is_docker", lambda: True
    )  # discord.py colours in Docker even when piped
    stream = io.StringIO()
    configure_logging("INFO", handler=logging.StreamHandler(stream))
    _faiss_import_lines()
    logged = stream.getvalue()
    assert "a real warning" in logged and "\x1b[" not in logged
    assert "ModuleNotFoundError" not in logged and "faiss" not in logged


def test_debug_shows_the_faiss_loader_and_a_terminal_gets_colour(restore_logging, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = Terminal()
    configure_logging("DEBUG", handler=logging.StreamHandler(stream))
    _faiss_import_lines()
    assert "ModuleNotFoundError" in stream.getvalue() and "\x1b[" in stream.getvalue()


def test_no_color_turns_colour_off_on_a_terminal(restore_logging, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    stream = Terminal()
    configure_logging("INFO", handler=logging.StreamHandler(stream))
    _faiss_import_lines()
    assert "a real warning" in stream.getvalue() and "\x1b[" not in stream.getvalue()
