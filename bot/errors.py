"""The one place errors end up: the user gets a short, friendly message; the log gets the traceback.

Slash commands (the tree's ``on_error``), buttons and modals (``bot.ui``'s base classes) and event
listeners (``TutorBot.on_error``) all land here. Errors the user can act on (a demo that does not exist, a
full queue) are shown as their own message and logged without a traceback; anything else is a bug: the
user hears that something went wrong and the traceback goes to the log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import discord
from discord import app_commands

from engine.errors import DemosUnavailable, DemoTimeout, EngineBusy, EngineError, UnknownDemo, WorkerCrashed
from index.errors import BadQuery, EmptyKnowledgeBase
from knowledge.cards import CardError
from knowledge.errors import NameClash, NotFound, ParseError, ReadOnlyStore
from knowledge.overrides import OverrideError
from knowledge.quiz.models import QuizError

log = logging.getLogger(__name__)

GENERIC = "Sorry, something went wrong on my side. It has been logged; please try again in a moment."


class UserError(Exception):
    """Raised by the bot's own code when the message is meant for the user as is."""


class NotTutorOwner(app_commands.CheckFailure):
    """An owners' command (``/owner``) run by someone who is not one of the tutor's owners."""

    def __init__(self) -> None:
        super().__init__("Only the tutor's owners can do that: it changes what every server sees.")


def friendly_message(error: BaseException) -> tuple[str, bool]:
    """(what to tell the user, whether the error is an expected one that needs no traceback)."""
    error = _unwrap(error)
    if isinstance(error, UnknownDemo):
        # The engine's message names the nearest demos; its CLI hint becomes the Discord one.
        text = str(error).replace("`tutor demo --list` shows them all.", "Type in `/demo` to see them all.")
        return text, True
    if isinstance(error, DemoTimeout):
        return f"⏱️ That demo took too long and was stopped: {error}", True
    if isinstance(error, EngineBusy):
        return f"⏳ I'm busy with other demos right now. {error}", True
    if isinstance(error, DemosUnavailable):
        return (
            f"🚧 Demos are unavailable right now ({error}). Questions and quizzes still work; "
            "try the demo again in a few minutes.",
            True,
        )
    if isinstance(error, WorkerCrashed):
        return f"The demo crashed: {error}", False
    if isinstance(
        error,
        EngineError | UserError | BadQuery | QuizError | NotFound | NameClash | ReadOnlyStore,
    ):
        return str(error), True
    if isinstance(error, CardError | OverrideError):
        return f"That didn't work: {error}. Nothing was changed.", True
    if isinstance(error, ParseError):
        return f"I couldn't read that file, so nothing was changed: {error}", True
    if isinstance(error, EmptyKnowledgeBase):
        return "My knowledge base is empty; an admin needs to run `tutor kb ingest`.", False
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f} s.", True
    if isinstance(error, app_commands.TransformerError):
        return f"I couldn't read that option: {error}", True
    if isinstance(error, app_commands.MissingPermissions):
        return "You need the Manage Server permission for that.", True
    if isinstance(error, NotTutorOwner):
        return str(error), True
    if isinstance(error, app_commands.NoPrivateMessage):
        return "That command only works in a server.", True
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use that command here.", True
    return GENERIC, False


def _unwrap(error: BaseException) -> BaseException:
    return error.original if isinstance(error, app_commands.CommandInvokeError) else error


async def handle_interaction_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user (ephemerally, as a response or follow-up) and log; never raises."""
    message, expected = friendly_message(error)
    where = _describe(interaction)
    original = _unwrap(error)
    if expected:
        log.info("%s: %s: %s", where, type(original).__name__, original)
    else:
        log.error("unhandled error in %s", where, exc_info=original)
    if isinstance(original, discord.NotFound) and original.code == 10062:
        return  # the interaction expired: there is no one left to answer
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not tell the user about the error in %s: %s", where, exc)


async def handle_event_error(client: discord.Client, event: str, args: tuple[Any, ...]) -> None:
    """An exception escaped an event listener: log it, and answer the message that caused it, if any.

    discord.py names the event by its handler, ``"on_message"`` (``Client.on_error``'s ``event_method``);
    the bare ``"message"`` is accepted too. The user hears what ``friendly_message`` makes of the error: its
    own text for an error they can act on, the generic apology for a bug (whose traceback is logged).
    """
    error = sys.exc_info()[1]
    message = args[0] if args else None
    if event.removeprefix("on_") != "message" or not isinstance(message, discord.Message):
        log.error("unhandled error in event %s", event, exc_info=error)
        return
    text, expected = friendly_message(error) if error is not None else (GENERIC, False)
    if expected:
        log.info("event %s: %s: %s", event, type(error).__name__, error)
    else:
        log.error("unhandled error in event %s", event, exc_info=error)
    if message.author.bot or message.webhook_id is not None:
        return
    try:
        await message.reply(text, mention_author=False)
    except discord.HTTPException as exc:
        log.warning("could not tell the user about the error in %s: %s", event, exc)


def _describe(interaction: discord.Interaction) -> str:
    command = interaction.command.qualified_name if interaction.command else None
    if command:
        return f"/{command}"
    custom_id = (interaction.data or {}).get("custom_id") if isinstance(interaction.data, dict) else None
    return f"component {custom_id}" if custom_id else f"interaction type {interaction.type}"
