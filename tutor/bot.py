"""`tutor bot` (run the bot) and `tutor bot sync` (register the slash commands globally).

The process's root (``tutor.services``) opens the services and hands them to the bot; they are closed once
the bot has stopped. What runs the bot, and what Discord's refusals mean, is the bot's own
(``bot.launch``); nothing here imports discord.
"""

from __future__ import annotations

import click

from bot.launch import DOCS, StartError
from tutor.services import Root

NO_TOKEN = (
    "TUTOR_DISCORD_TOKEN is not set. Create a Discord application with a bot user, copy its token into "
    f"TUTOR_DISCORD_TOKEN (environment or .env), and see {DOCS} for the intents and the invite link."
)


def build_services(settings) -> Root:
    """The process's root with the bot's services open: the store, the retriever (its index built if
    needed), the quiz, the guild settings and the demo client (its worker started later)."""
    root = Root(settings)
    try:
        root.bot_services()
    except BaseException:
        root.close()
        raise
    return root


def _prepare():
    """Settings, logging (secrets redacted) and the token check, then the services: ``(settings, root)``."""
    from bot.logs import configure_logging
    from index.errors import RetrievalError
    from knowledge.errors import KnowledgeError
    from tutor.settings import load_settings

    settings = load_settings()
    # Redacted at every level: discord.py's DEBUG lines carry interaction tokens and headers.
    token = settings.discord_token.get_secret_value() if settings.discord_token is not None else None
    configure_logging(settings.log_level, secrets=[token] if token else [])
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        raise click.ClickException(NO_TOKEN)
    try:
        root = build_services(settings)
    except (RetrievalError, KnowledgeError) as exc:
        raise click.ClickException(str(exc)) from None
    return settings, root


@click.group(invoke_without_command=True)
@click.pass_context
def bot(ctx: click.Context) -> None:
    """Run the Discord bot (needs TUTOR_DISCORD_TOKEN). `tutor bot sync` registers its commands globally."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.launch import run

    settings, root = _prepare()
    try:
        run(root.bot_services(), settings.discord_token.get_secret_value())
    except KeyboardInterrupt:
        pass
    except StartError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        root.close()


@bot.command()
def sync() -> None:
    """Register the slash commands globally (all servers; Discord may take up to an hour to show them)."""
    from bot.launch import sync as sync_commands

    settings, root = _prepare()
    try:
        names = sync_commands(root.bot_services(), settings.discord_token.get_secret_value())
    except StartError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        root.close()
    click.echo(f"synced {len(names)} global commands: {', '.join(sorted(names))}")
