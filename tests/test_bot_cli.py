"""`tutor bot` and `tutor bot sync`: the token check, and where commands are synced."""

from __future__ import annotations

import re
from pathlib import Path

import discord
import pytest
from click.testing import CliRunner

from bot.bot import Services
from bot.demos import DemoQueue
from bot.guilds import GuildSettings
from bot.launch import start_error as _discord_errors
from bot.launch import sync_global
from knowledge.quiz import QuizService
from tests.bot_harness import make_settings, running_tutor
from tests.fakediscord import DiscordServer
from tutor.bot import NO_TOKEN
from tutor.cli import main


@pytest.mark.parametrize("args", [["bot"], ["bot", "sync"]])
def test_missing_token_is_a_clear_error(args, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("TUTOR_DISCORD_TOKEN", "")
    monkeypatch.setenv("TUTOR_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and NO_TOKEN[:40] in result.output


def test_messages_point_to_the_readme_section_that_exists() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    intents = _discord_errors(discord.PrivilegedIntentsRequired(None)).message
    for message in (NO_TOKEN, intents):
        assert "bot/README.md" not in message
        [section] = re.findall(r'README\.md, section "([^"]+)"', message)
        assert re.search(rf"^## {re.escape(section)}$", readme, re.MULTILINE), section


async def test_start_syncs_to_the_dev_guild_only(fake_retriever, demo_worker, tmp_path) -> None:
    async with running_tutor(fake_retriever, demo_worker, tmp_path) as world:
        srv = world.server
        assert [c.route for c in srv.calls("PUT")] == ["/applications/{}/guilds/{}/commands"]
        assert {"ask", "demo", "quiz"} <= set(srv.commands[world.guild.id]) and None not in srv.commands
        assert srv.token not in repr(world.services.settings)


async def test_tutor_bot_sync_registers_global_commands_over_rest_only(
    fake_retriever, demo_worker, tmp_path
) -> None:
    async with DiscordServer() as srv:
        guild = srv.create_guild(channels=("general", "answers"))
        settings = make_settings(srv, guild, tmp_path, discord_token=srv.token)
        quiz, guilds = (
            QuizService(fake_retriever.store, fake_retriever.encoder),
            GuildSettings(fake_retriever.store),
        )
        services = Services(
            settings, fake_retriever.store, fake_retriever, DemoQueue(demo_worker), quiz, guilds
        )
        names = await sync_global(services, srv.token)
        assert {"ask", "demo", "quiz"} <= set(names)
        assert set(srv.commands[None]) == set(names) and guild.id not in srv.commands
        assert not srv.gateway_log, "syncing needs no gateway connection"
        schema = {o["name"]: o for o in srv.commands[None]["demo"]["options"]}
        assert schema["request"]["autocomplete"] is True and schema["request"]["required"] is True
        assert {"layers", "size", "steps", "lr", "seed"} <= set(schema)
