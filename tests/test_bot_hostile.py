"""Hostile users against the real bot under the local Discord server: one bad message among many, a
failing handler, a burst of mentions, and credentials in DEBUG logs."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Iterator

import discord
import pytest

from bot.errors import GENERIC
from bot.logs import REDACTED, RedactingFormatter, RedactSecrets, configure_logging
from bot.ratelimit import RateLimiter, wait_text
from tests.bot_harness import GatedEncoder, World, hold_batch, replies_to, reply_to, running_tutor, store_held
from tests.fakediscord import DiscordServer
from tutor.settings import Settings

QUESTIONS = ("what is stride", "what is a receptive field", "what does NCHW mean", "how does dropout work")
ASK_AGAIN = "You can ask again in"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def world(fake_retriever, demo_worker, tmp_path) -> AsyncIterator[World]:
    async with running_tutor(fake_retriever, demo_worker, tmp_path) as w:
        yield w


def count_retrieval(world: World) -> list[str]:
    """Every text the bot hands to the retriever (rate-limited questions must never get here)."""
    retriever, asked = world.services.retriever, []
    real = retriever.ask

    def ask(text: str, *args):
        asked.append(text)
        return real(text, *args)

    retriever.ask = ask
    return asked


# --- 1. one bad message among 16 simultaneous ones --------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["\ud800 what is stride", "xq7 what is stride"], ids=["lone-surrogate", "poison"]
)
async def test_one_bad_message_among_16_does_not_silence_the_others(world: World, bad: str) -> None:
    """16 users ask at once and their questions share one encoder batch; one question is unreadable (a lone
    surrogate, which Discord's JSON can carry) or makes the encoder fail. Every other user is answered."""
    srv, retriever = world.server, world.services.retriever
    gate = GatedEncoder(retriever.query_encoder, poison="xq7")
    retriever.query_encoder = gate
    users = [srv.create_user(f"student{i}") for i in range(16)]
    texts = [QUESTIONS[i % len(QUESTIONS)] for i in range(16)]
    texts[7] = bad
    posted = [await srv.post_message(users[0], world.general, f"{srv.bot_user.mention} {texts[0]}")]
    await srv.wait_for(gate.entered.is_set, timeout=20, what="the first question to reach the encoder")
    posted += [
        await srv.post_message(user, world.general, f"{srv.bot_user.mention} {text}")
        for user, text in zip(users[1:], texts[1:], strict=True)
    ]
    await hold_batch(srv, retriever, gate, 15)
    replies = [await reply_to(srv, p) for p in posted]
    assert gate.calls[1] >= 2, "the bad question shared a batch with others"
    for i, reply in enumerate(replies):
        if i == 7 and "xq7" in bad:
            assert reply.content == GENERIC, "the failing question gets the apology"
            continue
        assert reply.embed is not None and reply.embed["title"], (i, reply.content)
        assert reply.embed["footer"]["text"].startswith("You asked:")
    surrogate_reply = replies[7].embed["footer"]["text"] if replies[7].embed else ""
    assert "\ud800" not in surrogate_reply, "a lone surrogate never reaches the retriever or the reply"


# --- 2. a failing message handler gets the apology ---------------------------------------------------------


async def test_failing_message_handler_gets_the_apology(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    srv, retriever = world.server, world.services.retriever
    retriever.query_encoder = GatedEncoder(retriever.query_encoder, poison="xq7", gate=False)
    with caplog.at_level(logging.INFO):
        posted = await srv.post_message(
            world.alice, world.general, f"{srv.bot_user.mention} xq7 what is stride"
        )
        reply = await reply_to(srv, posted)
    assert reply.content == GENERIC and not reply.pings_anyone
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "bot.errors" and record.exc_info is not None and "on_message" in record.getMessage()
    posted = await srv.post_message(world.bob, world.general, f"{srv.bot_user.mention} what is stride")
    assert (await reply_to(srv, posted)).embed is not None, "still answering"


async def test_unreadable_question_gets_its_own_error_not_the_apology(world: World) -> None:
    """A question the encoder rejects as text (BadQuery) is told so, in words the user can act on."""
    srv, retriever = world.server, world.services.retriever

    class Rejects:
        model_id, dim = retriever.query_encoder.model_id, retriever.query_encoder.dim

        def encode_one(self, text: str):
            raise TypeError("TextInputSequence must be str")

    retriever.query_encoder = Rejects()
    posted = await srv.post_message(world.alice, world.general, f"{srv.bot_user.mention} what is stride")
    reply = await reply_to(srv, posted)
    assert "could not be read as text" in reply.content and reply.content != GENERIC


# --- 3. per-user rate limit on questions --------------------------------------------------------------------


async def test_burst_of_40_mentions_is_limited_per_user(world: World) -> None:
    srv, cog = world.server, world.bot.get_cog("Ask")
    clock = Clock()
    cog.limiter = RateLimiter(5, 10, clock=clock)  # the default settings, on a clock the test moves
    asked = count_retrieval(world)
    burst = []
    for i in range(40):
        burst.append(
            await srv.post_message(world.alice, world.general, f"{srv.bot_user.mention} {QUESTIONS[i % 4]}")
        )
        if i == 19:
            from_bob = await srv.post_message(
                world.bob, world.general, f"{srv.bot_user.mention} what is padding"
            )
    bob_reply = await reply_to(srv, from_bob, timeout=20)
    assert bob_reply.embed is not None and bob_reply.embed["title"], "another user is not affected"
    for posted in burst[:5]:
        assert (await reply_to(srv, posted, timeout=20)).embed is not None
    notice = await reply_to(srv, burst[5])
    assert ASK_AGAIN in notice.content and "6 s" in notice.content and not notice.pings_anyone
    await asyncio.sleep(0.5)  # anything still in flight would show up now
    assert [len(replies_to(srv, p)) for p in burst] == [1] * 6 + [0] * 34, "one notice, not 35"
    assert len(asked) == 6, "rate-limited messages never reach the retriever"

    # /ask shares the bucket: refused, ephemerally, without retrieval; bob's still works
    ix = await srv.invoke_slash(world.alice, world.general, "ask", {"question": "what is stride"})
    refused = await ix.wait_message()
    assert refused.ephemeral and ASK_AGAIN in refused.content
    ok = await srv.invoke_slash(world.bob, world.general, "ask", {"question": "what is stride"})
    assert (await ok.wait_message()).embed is not None
    assert len(asked) == 7

    clock.now += 6.1  # one token back: alice may ask once more, and is told again after that
    again = await srv.post_message(world.alice, world.general, f"{srv.bot_user.mention} what is stride")
    assert (await reply_to(srv, again)).embed is not None
    over = await srv.post_message(world.alice, world.general, f"{srv.bot_user.mention} what is stride")
    assert ASK_AGAIN in (await reply_to(srv, over)).content
    assert len(asked) == 8


async def test_bare_mentions_count_against_the_limit(world: World) -> None:
    """A flood of empty mentions gets the help card five times and one notice, not forty replies."""
    srv, cog = world.server, world.bot.get_cog("Ask")
    cog.limiter = RateLimiter(5, 10, clock=Clock())
    flood = [await srv.post_message(world.alice, world.general, srv.bot_user.mention) for _ in range(20)]
    notice = await reply_to(srv, flood[5])
    assert ASK_AGAIN in notice.content
    await asyncio.sleep(0.5)
    assert [len(replies_to(srv, p)) for p in flood] == [1] * 6 + [0] * 14


async def test_limits_come_from_the_settings(fake_retriever, demo_worker, tmp_path) -> None:
    async with running_tutor(fake_retriever, demo_worker, tmp_path, ask_burst=2, ask_per_minute=3) as w:
        limiter = w.bot.get_cog("Ask").limiter
        assert (limiter.burst, limiter.per_minute) == (2, 3.0)


def test_settings_read_the_limits_from_the_environment(monkeypatch) -> None:
    assert (Settings(_env_file=None).ask_burst, Settings(_env_file=None).ask_per_minute) == (5, 10.0)
    monkeypatch.setenv("TUTOR_ASK_BURST", "3")
    monkeypatch.setenv("TUTOR_ASK_PER_MINUTE", "0.5")
    assert (Settings(_env_file=None).ask_burst, Settings(_env_file=None).ask_per_minute) == (3, 0.5)
    for name, value in (
        ("TUTOR_ASK_BURST", "0"),
        ("TUTOR_ASK_PER_MINUTE", "0"),
        ("TUTOR_ASK_PER_MINUTE", "inf"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError):
            Settings(_env_file=None)
        monkeypatch.delenv(name)


def test_token_bucket_refills_and_tells_once_per_refusal() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 6, clock=clock)  # one token every 10 s
    assert [limiter.take(1).allowed for _ in range(2)] == [True, True]
    first, second = limiter.take(1), limiter.take(1)
    assert not first.allowed and first.notify and first.retry_after == pytest.approx(10)
    assert not second.allowed and not second.notify
    assert limiter.take(2).allowed, "another user has their own bucket"
    clock.now += 4
    assert limiter.take(1).retry_after == pytest.approx(6)
    clock.now += 6
    assert limiter.take(1).allowed
    refused = limiter.take(1)
    assert not refused.allowed and refused.notify, "told again after an allowed question"
    clock.now += 1000
    assert [limiter.take(1).allowed for _ in range(3)] == [True, True, False], "never more than the burst"


def test_bucket_table_forgets_idle_users_and_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(5, 10, clock=clock, max_users=100)  # an idle bucket is full again after 30 s
    for user in range(50):
        limiter.take(user)
    assert len(limiter) == 50
    clock.now += limiter.refill_s
    limiter.take(1000)
    assert len(limiter) == 1, "idle users are forgotten"
    for user in range(10_000):  # many users at once: the table never exceeds max_users
        limiter.take(user)
        assert len(limiter) <= 100
    assert limiter.take(9_999).allowed


def test_wait_text() -> None:
    assert [wait_text(s) for s in (0.2, 5.5, 60, 61, 150)] == [
        "1 s",
        "6 s",
        "1 min",
        "1 min 1 s",
        "2 min 30 s",
    ]


# --- 4. no token in the logs at DEBUG ------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes the root logger (as the bot's entry point does): put everything back."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), {h: (list(h.filters), h.formatter) for h in root.handlers})
    yield
    level, handlers, state = saved
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, (filters, formatter) in state.items():
        handler.filters[:] = filters
        handler.setFormatter(formatter)
    root.setLevel(level)


async def test_debug_logs_never_contain_tokens(
    fake_retriever, demo_worker, tmp_path, restore_logging
) -> None:
    stream = io.StringIO()
    async with DiscordServer() as srv:
        configure_logging("DEBUG", secrets=[srv.token], handler=logging.StreamHandler(stream))  # as tutor.bot
        async with running_tutor(
            fake_retriever, demo_worker, tmp_path, server=srv, log_level="DEBUG", view_timeout_s=1.0
        ) as w:
            ix = await srv.invoke_slash(w.alice, w.general, "ask", {"question": "what is a receptive field"})
            msg = await ix.wait_message()
            async with store_held(w.services.store):  # the vote waits: the thanks goes out as a follow-up
                click = await srv.click(msg, label="Helpful", user=w.bob)
                await click.wait_response()
            await click.wait_followup()
            await srv.wait_for(lambda: not msg.components, timeout=10)  # expiry edits @original by webhook
    tokens = [srv.token, *(i.token for i in srv.interactions.values())]
    paths = [c.path for c in srv.rest_log]
    assert any(f"/interactions/{ix.id}/{ix.token}/callback" in p for p in paths)
    assert any(f"/webhooks/{srv.application_id}/{click.token}" in p for p in paths)
    assert any(f"/webhooks/{srv.application_id}/{ix.token}/messages/@original" in p for p in paths)
    logged = stream.getvalue()
    assert "/callback" in logged and "/webhooks/" in logged and "WebSocket Event" in logged, "DEBUG was on"
    assert f"/interactions/{ix.id}/{REDACTED}/callback" in logged
    leaked = [t for t in tokens if t in logged]
    assert not leaked, f"{len(leaked)} tokens in the log"


def test_the_entry_point_installs_the_redaction(monkeypatch, tmp_path, restore_logging) -> None:
    """``tutor bot`` configures logging through ``configure_logging``: every root handler redacts, and knows
    the bot token from the settings."""
    import tutor.bot

    token = "test.the-bot-token-from-the-environment"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUTOR_DISCORD_TOKEN", token)
    monkeypatch.setenv("TUTOR_LOG_LEVEL", "DEBUG")
    monkeypatch.setattr(tutor.bot, "build_services", lambda settings: "services")
    settings, services = tutor.bot._prepare()
    root = logging.getLogger()
    assert services == "services" and settings.log_level == "DEBUG"
    assert root.level == logging.DEBUG and root.handlers
    for handler in root.handlers:
        [redactor] = [f for f in handler.filters if isinstance(f, RedactSecrets)]
        assert token in redactor.secrets and isinstance(handler.formatter, RedactingFormatter)
    record = logging.LogRecord("discord.http", logging.DEBUG, __file__, 1, "auth %s", (token,), None)
    assert all(f.filter(record) for h in root.handlers for f in h.filters)
    assert record.getMessage() == f"auth {REDACTED}"


def test_redaction_covers_args_headers_payloads_and_tracebacks() -> None:
    bot_token = "MTA5ODc2NTQzMjEwOTg3NjU0.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789"
    ix_token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6"
    redactor = RedactSecrets(["literal-secret-value"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redactor)
    handler.setFormatter(RedactingFormatter(discord.utils._ColourFormatter(), redactor))
    log = logging.getLogger("test.redaction")
    log.propagate, log.level = False, logging.DEBUG
    log.addHandler(handler)
    try:
        log.debug(
            "%s %s with %s has returned %s",
            "POST",
            f"https://x/api/interactions/1/{ix_token}/callback",
            None,
            204,
        )
        log.debug(
            "Webhook ID %s with %s %s", 1, "PATCH", f"https://x/api/webhooks/1/{ix_token}/messages/@original"
        )
        log.debug("WebSocket Event: %s", {"t": "INTERACTION_CREATE", "d": {"id": "1", "token": ix_token}})
        log.info("headers %s", {"Authorization": f"Bot {bot_token}", "User-Agent": "x"})
        log.info("sent %s", f'{{"token":"{ix_token}"}} and literal-secret-value')
        try:
            raise RuntimeError(f"404 url=https://x/api/webhooks/1/{ix_token} token {bot_token}")
        except RuntimeError:
            log.exception("failed")  # the colour formatter renders the traceback again from exc_info
        log.info("bad args %s %s", "only one")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert ix_token not in out and bot_token not in out and "literal-secret-value" not in out
    assert out.count(REDACTED) >= 8 and "RuntimeError" in out and "Traceback" in out
    assert "POST https://x/api/interactions/1/[REDACTED]/callback" in out
