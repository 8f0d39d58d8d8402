"""The `tutor` command: a thin, lazily-loaded shell over the domain packages.

Every command group is a module of this package (``tutor.kb``, ``tutor.ask``, ``tutor.quiz``,
``tutor.bench``, ``tutor.bot``, ``tutor.demo``, ``tutor.worker``), over
the services of one composition root (``tutor.services``). They are imported only when invoked, so
``tutor ask`` never pays for torch, matplotlib or discord at start-up.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

import click
from click_didyoumean import DYMGroup

# HF libraries must see these before they are imported anywhere.
import index.offline  # noqa: F401 - the Hugging Face environment, before those libraries load


class LazyGroup(DYMGroup):
    """A click group whose subcommands are ``"module:attribute"`` strings resolved on first use; a mistyped
    command gets the nearest names (``tutor aks`` -> "Did you mean one of these? ask")."""

    def __init__(self, *args, lazy_subcommands: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # name -> (import path, short help shown in --help without importing the module)
        self.lazy_subcommands = lazy_subcommands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            module_name, attr = self.lazy_subcommands[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module_name}:{attr} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in sorted(self.lazy_subcommands.items())]
        for name in super().list_commands(ctx):
            command = super().get_command(ctx, name)
            if command is not None and name not in self.lazy_subcommands:
                rows.append((name, command.get_short_help_str(60)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


# Registered here (and only here): the commands sit on top of the packages they drive, which never import
# them (the layers in pyproject.toml, checked by `lint-imports`).
COMMANDS: dict[str, tuple[str, str]] = {
    "kb": ("tutor.kb:kb", "Ingest, list and inspect the knowledge base."),
    "ask": ("tutor.ask:ask", "Answer a question from the knowledge base."),
    "chat": ("tutor.ask:chat", "Interactive terminal chat with the tutor."),
    "eval": ("tutor.ask:eval_cmd", "Answer quality on labelled messages (served, wrong, refused)."),
    "index": ("tutor.ask:index_group", "Train the retrieval model from the shipped messages."),
    "demo": ("tutor.demo:demo", "Run a deep-learning demonstration (numbers + PNG plots)."),
    "worker": (
        "tutor.worker:worker",
        "Run a demo worker for the Celery + Redis pool; `status` lists them.",
    ),
    "bench": ("tutor.bench:bench", "Benchmarks (ask, demo, grade)."),
    "bot": ("tutor.bot:bot", "Run the Discord bot."),
    "quiz": ("tutor.quiz:quiz", "Quiz yourself with spaced repetition (FSRS)."),
    "stats": ("tutor.quiz:stats", "Your quiz progress: reviews, retention, due cards, mastery."),
}


@click.group(
    cls=LazyGroup, lazy_subcommands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="dl-tutor")
def main() -> None:
    """A deep-learning tutor: answers, quizzes and live demos, in Discord or the terminal."""
    tolerate_undecodable_stdin()


def tolerate_undecodable_stdin() -> None:
    """Bytes on stdin that are not UTF-8 become U+FFFD: one odd line, never a crash losing the rest."""
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):  # a closed or detached stdin: nothing to read anyway
            reconfigure(errors="replace")


@main.command()
@click.pass_context
def start(ctx: click.Context) -> None:
    """The main job: the Discord bot when a token is configured, else the terminal chat."""
    from tutor.settings import load_settings

    name = "bot" if load_settings().discord_token else "chat"
    command = main.get_command(ctx, name)
    assert command is not None
    ctx.invoke(command)


if __name__ == "__main__":  # pragma: no cover
    main()
