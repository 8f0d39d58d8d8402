"""``/quiz start``, ``/quiz review``, ``/quiz resume``, ``/quiz end`` and the quiz message's buttons.

One message per quiz, edited in place: question -> grade with rating buttons -> next question -> summary.
All state lives in the ``QuizService`` (SQLite); the bot holds only a lock per session while it is in use
(so a double click is one action) and the views that time the buttons out. Every service call, and every
read of the server's settings, runs in a thread.

A quiz belongs to where it was started: in a server, its scope (``Scope.of(guild_id)``: the shared notes and
that server's own cards, as the server hid and corrected them); in direct messages, the shared notes alone.
Topics, resuming, ending and the next due date follow the same scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.exts.quiz._embeds import (
    graded_embed,
    nothing_due_embed,
    question_embed,
    rating_name,
    summary_embed,
)
from bot.exts.quiz._views import (
    ANSWER,
    CHOICE,
    CONTEST,
    END,
    HINT,
    RATE,
    REVEAL,
    SKIP,
    AnswerModal,
    QuizButton,
    QuizView,
    disabled_copy,
    question_view,
    rating_view,
)
from bot.formatting import CHOICE_NAME_LIMIT, shorten
from bot.ui import send, within_deadline
from knowledge.quiz.models import Graded, Question, Session, SlotPhase
from knowledge.quiz.selection import AUTO, MODES
from knowledge.scope import Scope

if TYPE_CHECKING:
    from bot.bot import TutorBot

log = logging.getLogger(__name__)

DEFAULT_QUESTIONS = 10
MAX_QUESTIONS = 25
STALE_AFTER = timedelta(days=1)  # sessions untouched this long are ended when the bot starts
AUTOCOMPLETE_WITHIN_S = 2.0
MODE_NAMES = {"auto": "auto (multiple choice for new cards)", "free": "free answer", "mc": "multiple choice",
              "cloze": "fill in the blank"}  # fmt: skip
TIMED_OUT = "⏱️ These buttons timed out: /quiz resume continues where you left off."


@dataclass(frozen=True)
class Screen:
    """What the quiz message should show next, computed in a worker thread (no discord objects)."""

    question: Question | None = None
    graded: Graded | None = None
    session: Session | None = None  # set: the quiz is over, show its summary
    next_due: datetime | None = None
    hint: str | None = None
    note: str | None = None
    contestable: bool = False  # the graded answer may still be contested ("I think I was right")


class Quiz(commands.Cog):
    """Drives quiz sessions from slash commands and buttons; the ``QuizService`` does the rest."""

    quiz = app_commands.Group(
        name="quiz", description="Quiz yourself on the course notes (spaced repetition)."
    )

    def __init__(self, bot: TutorBot) -> None:
        self.bot = bot
        self.service = bot.quiz
        self.view_timeout = bot.settings.view_timeout_s
        self._views: dict[int, QuizView] = {}  # message id -> the live view (its timeout)
        self._locks: dict[str, asyncio.Lock] = {}  # session id -> its lock, while held or awaited
        self._lock_users: Counter[str] = Counter()  # session id -> clicks holding or awaiting its lock
        self._warm: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self._warm = asyncio.create_task(self._warm_up(), name="quiz-warmup")

    async def cog_unload(self) -> None:
        if self._warm is not None and not self._warm.done():
            self._warm.cancel()
        for view in self._views.values():
            view.stop()
        self._views.clear()

    async def _warm_up(self) -> None:
        """Build the card catalogue (first build embeds every card) so the first /quiz is quick."""
        try:
            await asyncio.to_thread(self.service.catalogue)
            ended = await asyncio.to_thread(self.service.end_stale, STALE_AFTER)
            if ended:
                log.info("ended %d stale quiz sessions", ended)
        except Exception:
            log.exception("quiz warm-up failed")

    # --- slash commands ---------------------------------------------------------------------------------
    @quiz.command(name="start", description="Start a quiz: due cards first, then new ones.")
    @app_commands.describe(
        topic="Only this topic (start typing to see them)",
        questions=f"How many questions (1-{MAX_QUESTIONS}; default {DEFAULT_QUESTIONS} or the server's)",
        mode="How to answer (default: auto, or the server's default)",
    )
    @app_commands.choices(mode=[app_commands.Choice(name=MODE_NAMES[m], value=m) for m in MODES])
    async def start(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, 100] | None = None,
        questions: app_commands.Range[int, 1, MAX_QUESTIONS] | None = None,
        mode: str | None = None,
    ) -> None:
        await self.begin(interaction, server_defaults=True, topic=topic, n=questions, mode=mode)

    @quiz.command(name="review", description="Review the cards that are due.")
    @app_commands.describe(questions=f"At most this many (default {MAX_QUESTIONS})")
    async def review(
        self,
        interaction: discord.Interaction,
        questions: app_commands.Range[int, 1, MAX_QUESTIONS] | None = None,
    ) -> None:
        await self.begin(interaction, n=questions or MAX_QUESTIONS, review_only=True)

    @quiz.command(name="resume", description="Show your quiz in progress again (after a timeout or restart).")
    async def resume(self, interaction: discord.Interaction) -> None:
        uid = str(interaction.user.id)
        scope = Scope.of(interaction.guild_id)
        session = await asyncio.to_thread(self.service.active_session, uid, scope)
        if session is None:
            await interaction.response.send_message(
                "You have no quiz in progress. `/quiz start` begins one.", ephemeral=True
            )
            return
        screen = await asyncio.to_thread(self._resume, session.id, uid, "Resumed")
        old = session.meta.get("message_id")
        await self.post(interaction, screen, interaction.user.id)
        if old is not None:
            await self.retire(int(old))

    @quiz.command(name="end", description="End your quiz in progress (every answer so far stays saved).")
    async def end(self, interaction: discord.Interaction) -> None:
        uid = str(interaction.user.id)
        scope = Scope.of(interaction.guild_id)
        session = await asyncio.to_thread(self.service.active_session, uid, scope)
        if session is None:
            await interaction.response.send_message("You have no quiz in progress.", ephemeral=True)
            return

        def work() -> tuple[Session, datetime | None]:
            return self.service.end(session.id, uid), self.service.next_due(uid, scope)

        async with self._locked(session.id, interaction, ephemeral=True):
            ended, due = await within_deadline(interaction, asyncio.to_thread(work), ephemeral=True)
        await send(interaction, embed=summary_embed(ended, due), ephemeral=True)
        if session.meta.get("message_id") is not None:
            await self.retire(int(session.meta["message_id"]))

    @start.autocomplete("topic")
    async def topic_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        scope = Scope.of(interaction.guild_id)
        try:
            topics = await asyncio.wait_for(
                asyncio.to_thread(self.service.topics, scope), AUTOCOMPLETE_WITHIN_S
            )
        except TimeoutError:
            return []  # the catalogue is still being built; Discord shows "no options" and the user may type
        wanted = current.strip().lower()
        return [
            app_commands.Choice(name=shorten(f"{name} ({count} cards)", CHOICE_NAME_LIMIT), value=name[:100])
            for name, count in topics
            if wanted in name.lower()
        ][:25]

    async def begin(
        self, interaction: discord.Interaction, *, server_defaults: bool = False, **options: Any
    ) -> None:
        """Start a session; with ``server_defaults``, a missing ``n`` or ``mode`` is the server's own."""
        uid, owner, guild_id = str(interaction.user.id), interaction.user.id, interaction.guild_id
        scope = Scope.of(guild_id)  # the shared notes and the server's own cards; DMs: the notes alone
        meta = {"guild_id": guild_id, "channel_id": interaction.channel_id}

        def work() -> tuple[Session, Screen]:
            chosen = dict(options)
            if server_defaults:  # the server's settings are in SQLite: read here, off the event loop
                saved = self.bot.guild_settings.get(guild_id) if guild_id else {}
                chosen["n"] = chosen.get("n") or saved.get("quiz_questions") or DEFAULT_QUESTIONS
                chosen["mode"] = chosen.get("mode") or saved.get("quiz_mode") or AUTO
            session = self.service.start(
                uid, display_name=interaction.user.display_name, meta=meta, scope=scope, **chosen
            )
            return session, self._resume(session.id, uid) if session.total else Screen()

        session, screen = await within_deadline(interaction, asyncio.to_thread(work))
        if session.total == 0:
            due = await asyncio.to_thread(self.service.next_due, uid, scope)
            await send(interaction, embed=nothing_due_embed(due, options.get("topic")), ephemeral=True)
            return
        await self.post(interaction, screen, owner)

    # --- buttons and the modal ------------------------------------------------------------------------
    async def on_button(self, interaction: discord.Interaction, button: QuizButton) -> None:
        if interaction.user.id != button.owner:
            await interaction.response.send_message(
                f"This quiz belongs to <@{button.owner}>. Start your own with `/quiz start`.", ephemeral=True
            )
            return
        if button.action == ANSWER:
            current = await asyncio.to_thread(self.service.current, button.session)
            if (
                current is not None
                and current.position == button.position
                and current.phase == SlotPhase.ASKING
            ):
                await interaction.response.send_modal(
                    AnswerModal(self, button, current.prompt, current.number)
                )
                return
        async with self._locked(button.session, interaction):
            screen = await within_deadline(
                interaction, asyncio.to_thread(self._act, button, None), thinking=False
            )
            await self.show(interaction, screen, button.owner)

    async def on_answer(self, interaction: discord.Interaction, button: QuizButton, text: str) -> None:
        async with self._locked(button.session, interaction):
            screen = await within_deadline(
                interaction, asyncio.to_thread(self._act, button, text), thinking=False
            )
            await self.show(interaction, screen, button.owner)

    # --- the quiz's state machine (worker threads) ------------------------------------------------------
    def _act(self, button: QuizButton, text: str | None) -> Screen:
        """Apply one click to the session; a click from an older render just redraws the current state."""
        service, sid, uid = self.service, button.session, str(button.owner)
        session = service.session(sid)
        scope = Scope(session.scope)
        if not session.active:
            return Screen(session=session, next_due=service.next_due(uid, scope), note="This quiz is over.")
        action = button.action
        if session.position != button.position or (action == ANSWER and text is None):
            return self._resume(sid, uid)
        if action == END:
            return Screen(session=service.end(sid, user_id=uid), next_due=service.next_due(uid, scope))
        if action in (ANSWER, CHOICE, REVEAL):
            if action == REVEAL:
                graded = service.reveal(sid, user_id=uid)
            else:
                graded = service.answer(
                    sid, int(button.arg) if action == CHOICE else (text or ""), user_id=uid
                )
            return Screen(question=service.current(sid), graded=graded, contestable=self._contestable(graded))
        if action == CONTEST:
            service.contest(sid, button.position, user_id=uid)
            return self._resume(sid, uid, "Noted: your answer and its grade go to an admin to check.")
        if action == HINT:
            hint = service.hint(sid, user_id=uid) or "No hint for this one."
            return Screen(question=service.current(sid), hint=hint)
        if action == SKIP:
            service.skip(sid, user_id=uid)
            return self._resume(sid, uid, "Skipped")
        if action == RATE:
            graded = service.rate(sid, int(button.arg), user_id=uid)
            return self._resume(
                sid, uid, f"Rated {rating_name(graded.rating)}: next review {graded.interval}"
            )
        raise ValueError(f"unknown quiz action {action!r}")

    def _resume(self, sid: str, uid: str, note: str | None = None) -> Screen:
        """Where the session is: the open question, the answered one awaiting a rating, or the summary."""
        question = self.service.current(sid)
        if question is None or question.phase not in (SlotPhase.ASKING, SlotPhase.ANSWERED):
            question = self.service.question(sid, user_id=uid)
        if question is None:
            session = self.service.session(sid)
            due = self.service.next_due(uid, Scope(session.scope))
            return Screen(session=session, next_due=due, note=note)
        if question.phase == SlotPhase.ANSWERED and question.graded is not None:
            graded = question.graded
            return Screen(question=question, graded=graded, note=note, contestable=self._contestable(graded))
        return Screen(question=question, note=note)

    def _contestable(self, graded: Graded) -> bool:
        return graded.contestable and not self.service.contested(graded.session_id, graded.position)

    # --- drawing ----------------------------------------------------------------------------------------
    def draw(self, screen: Screen, owner: int) -> tuple[discord.Embed, QuizView | None]:
        if screen.session is not None:
            return summary_embed(screen.session, screen.next_due, note=screen.note), None
        if screen.graded is not None:
            embed = graded_embed(screen.graded, screen.question)
            if screen.note:
                embed.add_field(name="\u200b", value=screen.note, inline=False)
            return embed, rating_view(self, screen.graded, owner, embed, contestable=screen.contestable)
        assert screen.question is not None
        embed = question_embed(screen.question, hint=screen.hint, note=screen.note)
        return embed, question_view(self, screen.question, owner, embed, hint_shown=screen.hint is not None)

    async def show(self, interaction: discord.Interaction, screen: Screen, owner: int) -> None:
        """Redraw the quiz message the interaction came from."""
        embed, view = self.draw(screen, owner)
        if interaction.response.is_done():
            await interaction.edit_original_response(embed=embed, view=view)
        else:
            await interaction.response.edit_message(embed=embed, view=view)
        message = interaction.message
        if message is not None:
            self.track(view, message.channel.id, message.id)

    async def post(self, interaction: discord.Interaction, screen: Screen, owner: int) -> None:
        """A new quiz message (start, resume); its ids go into the session for a restarted bot."""
        embed, view = self.draw(screen, owner)
        message = await send(interaction, embed=embed, **({"view": view} if view is not None else {}))
        if message is None:
            return
        self.track(view, message.channel.id, message.id)
        if screen.question is not None:
            await asyncio.to_thread(
                self.service.set_meta, screen.question.session_id, channel_id=message.channel.id,
                message_id=message.id,
            )  # fmt: skip

    def track(self, view: QuizView | None, channel_id: int, message_id: int) -> None:
        old = self._views.pop(message_id, None)
        if old is not None and old is not view:
            old.stop()
        if view is not None:
            view.channel_id, view.message_id = channel_id, message_id
            self._views[message_id] = view

    async def expire(self, view: QuizView) -> None:
        """A render's buttons timed out: grey them out so nobody presses a dead button."""
        if view.message_id is None or self._views.get(view.message_id) is not view:
            return
        del self._views[view.message_id]
        embed = view.embed.copy().set_footer(text=TIMED_OUT)
        greyed = disabled_copy(view)
        partial = self.bot.get_partial_messageable(view.channel_id or 0).get_partial_message(view.message_id)
        with contextlib.suppress(discord.HTTPException):
            await partial.edit(embed=embed, view=greyed)
        greyed.stop()

    async def retire(self, message_id: int) -> None:
        """Take the buttons off an older message of the same session (resume posted a new one)."""
        view = self._views.pop(message_id, None)
        if view is None or view.channel_id is None:
            return
        view.stop()
        partial = self.bot.get_partial_messageable(view.channel_id).get_partial_message(message_id)
        with contextlib.suppress(discord.HTTPException):
            await partial.edit(view=None)

    @contextlib.asynccontextmanager
    async def _locked(
        self, session_id: str, interaction: discord.Interaction | None = None, *, ephemeral: bool = False
    ) -> AsyncIterator[None]:
        """Hold the session's lock. When another click holds or awaits it, the interaction is deferred
        first: the wait may outlast the 3 s Discord gives to answer. The lock is dropped once unused."""
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        self._lock_users[session_id] += 1
        try:
            busy = self._lock_users[session_id] > 1
            if busy and interaction is not None and not interaction.response.is_done():
                await interaction.response.defer(ephemeral=ephemeral)
            async with lock:
                yield
        finally:
            self._lock_users[session_id] -= 1
            if not self._lock_users[session_id]:
                del self._lock_users[session_id], self._locks[session_id]
