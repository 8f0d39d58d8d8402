"""Reliability load test of quizzes: 50 users at once, the bot killed with SIGKILL mid-way and restarted.

Not a unit test. The local Discord-compatible server (``tests/fakediscord/``) runs in this process;
the real bot runs in a separate process (``python -m tutor.cli bot``, pointed at the server by environment
variables). Every user starts a quiz and answers by button (multiple choice) or by the modal (free
answer), then rates each answer. A review counts as *acknowledged* once the user has seen its grade, and
a rating once the user has seen the next question after it. Part-way through, the bot process is killed
with SIGKILL and started again; users whose click got no answer retry on the message as they last saw it.
At the end the SQLite file is checked: every acknowledged review stored with the acknowledged rating, no
duplicate reviews, ``PRAGMA integrity_check`` ok.

    .venv/bin/python -m bench.quiz_load                    # 50 users x 6 questions, kill after 120 acks
    .venv/bin/python -m bench.quiz_load --users 20 --questions 4 --kill-after 30

Exit status 1 when a review was lost, duplicated, or the database is not intact. All waits are bounded and
everything stays on the loopback interface.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a file: the test helpers (``tests.fakediscord``) import only from the root
    sys.exit("run it from the repository root as a module: python -m bench.quiz_load")
import index.offline  # noqa: E402, F401 - the Hugging Face environment, before those libraries load

RATE_ID = re.compile(r"quiz:rate:(?P<session>[0-9a-f]{32}):(?P<position>\d+):")
CLICK_TIMEOUT_S = 20.0  # one answer to one click (grading under load included)
READY_TIMEOUT_S = 120.0  # the bot process: import, load the encoder, connect


@dataclass
class Ledger:
    """What users were shown: (session, position) -> rating in force when they last saw it."""

    acked: dict[tuple[str, int], int] = field(default_factory=dict)
    retries: int = 0
    gave_up: int = 0
    finished: int = 0


def prepare(data_dir: Path) -> None:
    """A store with the bundled sources, its index and the quiz's card vectors (what `tutor kb ingest` makes)."""
    from knowledge.loader import SOURCES_DIR, collect_paths, load_document
    from knowledge.quiz import QuizService
    from tutor.services import embed, encoder, open_retriever, open_store

    store = open_store(data_dir)
    store.ingest([load_document(p) for p in collect_paths([SOURCES_DIR])], embed)
    with QuizService(store, encoder()) as quiz:
        quiz.catalogue()
    store.close()
    open_retriever(data_dir).store.close()


def start_bot(srv, guild, data_dir: Path, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "TUTOR_DISCORD_TOKEN": srv.token,
        "TUTOR_DISCORD_API_URL": srv.api_url,
        "TUTOR_DISCORD_GATEWAY_URL": srv.gateway_url,
        "TUTOR_DATA_DIR": str(data_dir),
        "TUTOR_DEV_GUILD_ID": str(guild.id),
        "TUTOR_DEMO_WARM_START": "false",
        "TUTOR_GUILD_READY_TIMEOUT": "0.2",
        "TUTOR_ANSWER_CHANNEL_IDS": "[]",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tutor.cli", "bot"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def wait_ready(srv, before: set[str]) -> None:
    """A new gateway session (not one of ``before``) has received READY."""
    await srv.wait_for(
        lambda: any(s.ready and not s.invalid and k not in before for k, s in srv._sessions.items()),
        timeout=READY_TIMEOUT_S,
        what="the bot process to connect",
    )


async def user(srv, who, channel, n: int, free: bool, ledger: Ledger, rng: random.Random) -> None:
    mode = "free" if free else "mc"
    ix = await srv.invoke_slash(who, channel, "quiz start", {"questions": n, "mode": mode}, sync_timeout=30)
    msg = await ix.wait_message(timeout=CLICK_TIMEOUT_S * 3)
    for _ in range(n * 12):  # every step is bounded: a stuck user gives up rather than hang the bench
        labels = [b["label"] for b in msg.buttons]
        if not msg.components:
            ledger.finished += 1
            return
        rates = [b for b in msg.buttons if RATE_ID.match(b["custom_id"])]
        before = json.dumps(msg.embed, sort_keys=True)
        pending: tuple[str, int, int] | None = None
        if rates:  # a graded answer on screen: its review is acknowledged
            match = RATE_ID.match(rates[0]["custom_id"])
            key = (match["session"], int(match["position"]))
            ledger.acked.setdefault(key, 0)
            value = rng.randint(1, 4)
            pending = (*key, value)
            await srv.click(msg, label=("Again", "Hard", "Good", "Easy")[value - 1], user=who)
        elif "Answer" in labels:
            click = await srv.click(msg, label="Answer", user=who)
            try:
                await click.wait_response(CLICK_TIMEOUT_S)
                if click.modal is None:
                    raise TimeoutError("no modal")
                await srv.submit_modal(click, {"quiz:answer-text": rng.choice(ANSWERS)})
            except (TimeoutError, AssertionError):
                pass
        else:
            await srv.click(msg, label=rng.choice([x for x in labels if len(x) == 1]), user=who)
        try:
            await srv.wait_for(
                lambda b=before: json.dumps(msg.embed, sort_keys=True) != b, timeout=CLICK_TIMEOUT_S
            )
        except TimeoutError:
            ledger.retries += 1  # the bot died under this click: try again on what is on screen
            await asyncio.sleep(1.0)
            continue
        if pending is not None:  # the next screen is showing: the rating is acknowledged
            ledger.acked[pending[:2]] = pending[2]
    ledger.gave_up += 1


ANSWERS = (
    "the area of the input image that affects an activation",
    "it reduces overfitting by randomly zeroing activations",
    "a matrix multiplication followed by a nonlinearity",
    "I don't know",
    "gradient descent with momentum",
)


def check(db_path: Path, ledger: Ledger) -> dict:
    conn = sqlite3.connect(db_path)
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    rows = conn.execute("SELECT session_id, position, rating, rated_by FROM quiz_reviews").fetchall()
    conn.close()
    stored: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for session, position, rating, rated_by in rows:
        stored.setdefault((session, position), []).append((rating, rated_by))
    duplicates = sum(len(v) - 1 for v in stored.values())
    lost = [k for k in ledger.acked if k not in stored]
    wrong_rating = [k for k, r in ledger.acked.items() if r and k in stored and stored[k][0] != (r, "self")]
    return {
        "acknowledged": len(ledger.acked),
        "ratings_acknowledged": sum(1 for r in ledger.acked.values() if r),
        "stored": len(rows),
        "duplicates": duplicates,
        "lost": len(lost),
        "wrong_rating": len(wrong_rating),
        "integrity": integrity,
    }


async def main(args: argparse.Namespace) -> int:
    from tests.fakediscord import DiscordServer

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="quiz-load-"))
    t0 = time.perf_counter()
    await asyncio.to_thread(prepare, data_dir)
    print(f"store ready in {time.perf_counter() - t0:.1f}s at {data_dir}", flush=True)
    ledger = Ledger()
    rng = random.Random(args.seed)
    log = open(data_dir / "bot.log", "ab")  # noqa: SIM115 - the bot processes write here until the end
    async with DiscordServer() as srv:
        guild = srv.create_guild("Course", channels=("general",))
        channel = guild.channel("general")
        users = [srv.create_user(f"user{i:02d}") for i in range(args.users)]
        proc = start_bot(srv, guild, data_dir, log)
        try:
            await wait_ready(srv, set())
            tasks = [
                asyncio.create_task(
                    user(srv, u, channel, args.questions, i % 2 == 1, ledger, random.Random(rng.random()))
                )
                for i, u in enumerate(users)
            ]
            await srv.wait_for(lambda: len(ledger.acked) >= args.kill_after, timeout=300, what="acks")
            before = set(srv._sessions)
            acked_at_kill = len(ledger.acked)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            print(f"killed the bot (SIGKILL) after {acked_at_kill} acknowledged reviews", flush=True)
            proc = start_bot(srv, guild, data_dir, log)
            await wait_ready(srv, before)
            print("bot restarted", flush=True)
            done, pending = await asyncio.wait(tasks, timeout=args.questions * 12 * CLICK_TIMEOUT_S)
            for task in pending:
                task.cancel()
            errors = [t.exception() for t in done if t.exception() is not None]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    result = check(data_dir / "tutor.db", ledger)
    result.update(
        users=args.users, finished=ledger.finished, gave_up=ledger.gave_up + len(pending), retries=ledger.retries,
        user_errors=len(errors), seconds=round(time.perf_counter() - t0, 1),
    )  # fmt: skip
    for error in errors[:3]:
        print(f"user error: {error!r}"[:300])
    print(json.dumps(result, indent=2))
    ok = not result["lost"] and not result["duplicates"] and not result["wrong_rating"]
    return 0 if ok and result["integrity"] == "ok" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--kill-after", type=int, default=120, help="acknowledged reviews before the kill")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", help="default: a new temporary directory")
    sys.exit(asyncio.run(main(parser.parse_args())))
