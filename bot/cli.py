"""`tutor bot` (run the bot) and `tutor bot sync` (register the slash commands globally).

This is the bot's composition root: it opens the services, hands them to ``TutorBot``, and closes them
once the bot has stopped. Global command sync is a deliberate, separate step: Discord rate-limits it and
takes a while to propagate, so the bot never does it on start (it syncs to ``TUTOR_DEV_GUILD_ID`` only).
"""

from __future__ import annotations

import asyncio
import logging

import click

log = logging.getLogger(__name__)

DOCS = 'README.md, section "The Discord bot"'
NO_TOKEN = (
    "TUTOR_DISCORD_TOKEN is not set. Create a Discord application with a bot user, copy its token into "
    f"TUTOR_DISCORD_TOKEN (environment or .env), and see {DOCS} for the intents and the invite link."
)


def build_services(settings):
    """Open the store, the retriever (building its index if needed) and the demo worker (started later)."""
    import engine
    from bot.bot import Services
    from bot.demos import DemoQueue
    from bot.guilds import GuildSettings
    from knowledge.quiz import QuizService
    from tutor.services import open_retriever, quiz_grader
    from tutor.settings import pool_settings

    retriever = open_retriever(settings.data_dir)
    pool = pool_settings(settings)
    if pool is None:  # the default: one embedded worker process
        worker, shared = engine.DemoWorker(max_pending=max(settings.demo_queue_total, 1)), None
    else:  # Celery workers behind a Redis broker; the limits shared by every bot process
        from engine.pool import DemoPool, SharedSlots

        worker, shared = DemoPool(pool), SharedSlots(pool)
    demos = DemoQueue(
        worker,
        per_user=settings.demo_queue_per_user,
        total=settings.demo_queue_total,
        max_budget_s=settings.demo_timeout_s,
        shared=shared,
    )
    return Services(
        settings=settings,
        store=retriever.store,
        retriever=retriever,
        demos=demos,
        quiz=QuizService(retriever.store, retriever.encoder, grader=quiz_grader()),
        guilds=GuildSettings(retriever.store.path),
    )


def close_services(services) -> None:
    services.demos.worker.close()
    if services.demos.shared is not None:
        services.demos.shared.close()
    services.quiz.close()
    services.guilds.close()
    services.store.close()


async def run_bot(services, token: str) -> None:
    """Run until the process is stopped (Ctrl-C, SIGTERM) or Discord closes the connection for good."""
    from bot.bot import TutorBot

    async with TutorBot(services) as client:
        await client.start(token)


async def sync_global(services, token: str) -> list[str]:
    """Log in over REST only (no gateway), load the commands and sync them globally; returns their names."""
    from bot.bot import TutorBot

    async with TutorBot(services, serve=False) as client:
        await client.login(token)
        return [command.name for command in await client.sync_commands(None)]


def _prepare():
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
        services = build_services(settings)
    except (RetrievalError, KnowledgeError) as exc:
        raise click.ClickException(str(exc)) from None
    return settings, services


def _discord_errors(exc: Exception) -> click.ClickException:
    import discord

    if isinstance(exc, discord.LoginFailure):
        return click.ClickException(
            "Discord rejected TUTOR_DISCORD_TOKEN: reset the bot token and try again."
        )
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return click.ClickException(
            "Discord refused the Message Content intent: enable it under Bot > Privileged Gateway Intents "
            f"in the Developer Portal (see {DOCS})."
        )
    return click.ClickException(f"could not reach Discord: {exc}")


@click.group(invoke_without_command=True)
@click.pass_context
def bot(ctx: click.Context) -> None:
    """Run the Discord bot (needs TUTOR_DISCORD_TOKEN). `tutor bot sync` registers its commands globally."""
    if ctx.invoked_subcommand is not None:
        return
    import aiohttp
    import discord

    settings, services = _prepare()
    try:
        asyncio.run(run_bot(services, settings.discord_token.get_secret_value()))
    except KeyboardInterrupt:
        pass
    except (discord.DiscordException, aiohttp.ClientError, OSError) as exc:
        raise _discord_errors(exc) from None
    finally:
        close_services(services)


@bot.command()
def sync() -> None:
    """Register the slash commands globally (all servers; Discord may take up to an hour to show them)."""
    import aiohttp
    import discord

    settings, services = _prepare()
    try:
        names = asyncio.run(sync_global(services, settings.discord_token.get_secret_value()))
    except (discord.DiscordException, aiohttp.ClientError, OSError) as exc:
        raise _discord_errors(exc) from None
    finally:
        close_services(services)
    click.echo(f"synced {len(names)} global commands: {', '.join(sorted(names))}")
