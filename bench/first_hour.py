"""A newcomer's first minutes, timed: `make run` on an empty data folder to the first answer, `/quiz` in
the terminal chat to its first question, and the container's entry point starting the bot on a new volume
(the local Discord-compatible server in ``tests/``) to its first `/quiz` question.

    .venv/bin/python -m bench.first_hour            # a table; --json for one JSON object
    .venv/bin/python -m bench.first_hour --runs 3   # medians of 3 fresh runs

Targets (issue 16, this 2-core machine, after the install): first answer <= 12 s, first question <= 2 s.
Every wait is bounded; everything stays on the loopback interface.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a file: the test helpers (``tests.fakediscord``) import only from the root
    sys.exit("run it from the repository root as a module: python -m bench.first_hour")
BIN = Path(sys.executable).parent
WAIT_S = 120.0


def _read_until(stream, needle: str, deadline: float) -> str:
    for line in stream:
        if needle in line:
            return line
        if time.perf_counter() > deadline:
            break
    raise TimeoutError(f"no line with {needle!r}")


def make_run(data_dir: Path) -> dict[str, float]:
    """`make run` (the terminal chat) on an empty data folder: a question, then `/quiz 3`."""
    env = {
        **os.environ,
        "TUTOR_DATA_DIR": str(data_dir),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "TUTOR_DISCORD_TOKEN": "",
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["make", "-s", "run"], cwd=ROOT, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        proc.stdin.write("what is a receptive field\n")
        proc.stdin.flush()
        _read_until(proc.stdout, "Source:", started + WAIT_S)
        answer = time.perf_counter() - started
        asked = time.perf_counter()
        proc.stdin.write("/quiz 3\n")
        proc.stdin.flush()
        _read_until(proc.stdout, "Question 1/", asked + WAIT_S)
        question = time.perf_counter() - asked
    finally:
        proc.kill()
        stderr = proc.communicate(timeout=10)[1]
    return {
        "first_answer_s": answer,
        "chat_quiz_first_question_s": question,
        "warnings": stderr.count("WARNING"),
    }


async def bot_on_new_volume(data_dir: Path) -> dict[str, float]:
    """docker/entrypoint.sh bot on an empty folder: seconds to the gateway READY, then /quiz to a question."""
    from tests.fakediscord import DiscordServer

    async with DiscordServer() as srv:
        guild = srv.create_guild("Course", channels=("general",))
        channel = guild.channel("general")
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "TUTOR_DISCORD_TOKEN": srv.token,
            "TUTOR_DISCORD_API_URL": srv.api_url,
            "TUTOR_DISCORD_GATEWAY_URL": srv.gateway_url,
            "TUTOR_DATA_DIR": str(data_dir),
            "TUTOR_DEV_GUILD_ID": str(guild.id),
            "TUTOR_GUILD_READY_TIMEOUT": "0.2",
        }
        started = time.perf_counter()
        log = open(data_dir.parent / "bot.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            ["sh", str(ROOT / "docker" / "entrypoint.sh"), "bot"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await srv.wait_for(
                lambda: any(s.ready and not s.invalid for s in srv._sessions.values()),
                timeout=WAIT_S,
                what="the bot to connect",
            )
            ready = time.perf_counter() - started
            quiz = []
            for i in range(3):
                who = srv.create_user(f"student{i}")
                asked = time.perf_counter()
                ix = await srv.invoke_slash(who, channel, "quiz start", {"questions": 3}, sync_timeout=30)
                await ix.wait_message(timeout=WAIT_S)
                quiz.append(time.perf_counter() - asked)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    return {
        "bot_ready_s": ready,
        "bot_first_quiz_question_s": quiz[0],
        "bot_quiz_question_p50_s": statistics.median(quiz),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="fresh runs; medians are reported")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.runs <= 10:
        parser.error("--runs must be 1-10")
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="first-hour-") as tmp:
            row = make_run(Path(tmp) / "chat")
            row.update(asyncio.run(bot_on_new_volume(Path(tmp) / "volume")))
            runs.append(row)
    result = {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
    result["runs"] = args.runs
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
