"""Running the bot, and registering its slash commands globally, with the services it is handed.

``tutor bot`` (``tutor/bot.py``) builds the services and calls :func:`run` or :func:`sync`; whatever
Discord says when it refuses or cannot be reached comes back as a :class:`StartError` with a message for
the person starting it. Global command sync is a deliberate, separate step: Discord rate-limits it and
takes a while to propagate, so the bot never does it on start (it syncs to ``TUTOR_DEV_GUILD_ID`` only).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.bot import Services

DOCS = 'README.md, section "The Discord bot"'


class StartError(Exception):
    """The bot could not log in, keep its connection, or sync: ``message`` says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def run_bot(services: Services, token: str) -> None:
    """Run until the process is stopped (Ctrl-C, SIGTERM) or Discord closes the connection for good."""
    from bot.bot import TutorBot

    async with TutorBot(services) as client:
        await client.start(token)


async def sync_global(services: Services, token: str) -> list[str]:
    """Log in over REST only (no gateway), load the commands and sync them globally; returns their names."""
    from bot.bot import TutorBot

    async with TutorBot(services, serve=False) as client:
        await client.login(token)
        return [command.name for command in await client.sync_commands(None)]


def run(services: Services, token: str) -> None:
    """:func:`run_bot` in its own event loop; Ctrl-C ends it (``KeyboardInterrupt`` goes to the caller)."""
    import aiohttp
    import discord

    try:
        asyncio.run(run_bot(services, token))
    except (discord.DiscordException, aiohttp.ClientError, OSError) as exc:
        raise start_error(exc) from None


def sync(services: Services, token: str) -> list[str]:
    """:func:`sync_global` in its own event loop: the names of the commands registered."""
    import aiohttp
    import discord

    try:
        return asyncio.run(sync_global(services, token))
    except (discord.DiscordException, aiohttp.ClientError, OSError) as exc:
        raise start_error(exc) from None


def start_error(exc: Exception) -> StartError:
    """What to tell the person starting the bot about ``exc`` (a discord, aiohttp or OS error)."""
    import discord

    if isinstance(exc, discord.LoginFailure):
        return StartError("Discord rejected TUTOR_DISCORD_TOKEN: reset the bot token and try again.")
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return StartError(
            "Discord refused the Message Content intent: enable it under Bot > Privileged Gateway Intents "
            f"in the Developer Portal (see {DOCS})."
        )
    return StartError(f"could not reach Discord: {exc}")
