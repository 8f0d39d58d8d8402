"""Load test of the Discord bot: many users asking at once through the local Discord-compatible server.

Not a unit test: it runs the real bot with the real store, retriever and encoder against
``tests/fakediscord/``, sends ``--users`` questions at the same instant (as mentions, then as
``/ask``), for ``--rounds`` rounds, and reports the time to first response (p50/p95/p99/max), whether every
question was answered, and every error seen (bot log records at ERROR, server errors, refused responses).

    .venv/bin/python -m bench.bot_load                 # 50 users x 3 rounds, mentions and /ask
    .venv/bin/python -m bench.bot_load --users 100 --json

Exit status 1 when a question went unanswered or any error was seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:  # run as a file: the test helpers (``tests.fakediscord``) import only from the root
    sys.exit("run it from the repository root as a module: python -m bench.bot_load")
import index.offline  # noqa: F401 - the Hugging Face environment, before those libraries load

QUESTIONS = (
    "what is a receptive field",
    "how does dropout work",
    "what is the learning rate finder",
    "why do we use batch normalization",
    "what is a rank 3 tensor",
    "what does softmax do",
    "what is a convolution",
    "how do I combat overfitting",
    "what is momentum in SGD",
    "why use a GPU",
    "what is the weather like today",
    "who won the football yesterday",
    "what about the numbers",
    "what is a stride 2 convolution",
    "how is a color image represented",
    "what is weight decay",
    "what does view do in PyTorch",
    "what is the bias trick",
    "what is one cycle training",
    "what is cross entropy loss",
)


class ErrorCounter(logging.Handler):
    """Counts log records at ERROR and above from the bot and discord.py (unhandled exceptions end there)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("bot", "discord")):
            self.records.append(f"{record.name}: {record.getMessage()}")


@dataclass
class Mode:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds to first response
    complete: list[float] = field(default_factory=list)  # seconds to the answer itself
    asked: int = 0
    answered: int = 0

    def summary(self) -> dict:
        def pct(values: list[float], q: float) -> float:
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else 0.0

        return {
            "mode": self.name,
            "asked": self.asked,
            "answered": self.answered,
            "first_response_ms": {
                "p50": pct(self.latencies, 0.50),
                "p95": pct(self.latencies, 0.95),
                "p99": pct(self.latencies, 0.99),
                "max": pct(self.latencies, 1.0),
                "mean": statistics.fmean(self.latencies) * 1000 if self.latencies else 0.0,
            },
            "answer_ms": {"p50": pct(self.complete, 0.50), "p99": pct(self.complete, 0.99)},
        }


def build_services(data_dir: Path):
    """Ingest the course documents into a fresh store and open the retriever (as `tutor kb ingest` does)."""
    from knowledge.loader import SOURCES_DIR, collect_paths, load_document
    from knowledge.store import Store
    from tutor.services import embed, open_retriever

    store = Store.open(data_dir)
    store.ingest([load_document(p) for p in collect_paths([SOURCES_DIR])], embed)
    store.close()
    return open_retriever(data_dir)


async def mention_round(world, users, mode: Mode) -> None:
    srv = world.server

    async def one(i: int, user) -> None:
        question = f"{srv.bot_user.mention} {QUESTIONS[i % len(QUESTIONS)]}"
        posted = await srv.post_message(user, world.general, question)
        mode.asked += 1
        reply = await srv.wait_for_message(
            world.general,
            lambda m: bool(m.reference) and m.reference["message_id"] == str(posted.id),
            after=posted,
            timeout=30,
        )
        mode.latencies.append(reply.created_at - posted.created_at)
        mode.complete.append(reply.created_at - posted.created_at)
        if reply.embed is not None and not reply.pings_anyone:
            mode.answered += 1

    await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))


async def slash_round(world, users, mode: Mode) -> None:
    srv = world.server

    async def one(i: int, user) -> None:
        ix = await srv.invoke_slash(user, world.general, "ask", {"question": QUESTIONS[i % len(QUESTIONS)]})
        mode.asked += 1
        msg = await ix.wait_message(timeout=30)
        mode.latencies.append(ix.latency if ix.latency is not None else float("inf"))
        mode.complete.append(time.monotonic() - ix.created_at)
        if msg.embed is not None and not ix.rejected:
            mode.answered += 1

    await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))


async def run(args: argparse.Namespace) -> dict:
    from engine import DemoWorker
    from tests.bot_harness import running_tutor
    from tests.fakediscord import DiscordServer

    counter = ErrorCounter()
    logging.getLogger().addHandler(counter)
    with tempfile.TemporaryDirectory(prefix="bot-load-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        retriever = await asyncio.to_thread(build_services, data_dir)
        setup_s = time.perf_counter() - started
        worker = DemoWorker()  # never started: this load is questions only
        modes = {"mention": Mode("mention"), "slash /ask": Mode("slash /ask")}
        async with (
            DiscordServer() as srv,
            # every user asks 6-7 times in a few seconds: a load test, so the per-user rate limit is lifted
            running_tutor(retriever, worker, data_dir, server=srv, ask_burst=10_000) as world,
        ):
            users = [srv.create_user(f"student{i}") for i in range(args.users)]
            warm = await srv.invoke_slash(users[0], world.general, "ask", {"question": "warm up"})
            await warm.wait_message(timeout=30)
            for _ in range(args.rounds):
                await mention_round(world, users, modes["mention"])
                await slash_round(world, users, modes["slash /ask"])
            rejected = [r for ix in srv.interactions.values() for r in ix.rejected]
            report = {
                "users": args.users,
                "rounds": args.rounds,
                "setup_s": round(setup_s, 1),
                "modes": [m.summary() for m in modes.values()],
                "errors": {
                    "bot_log_errors": counter.records,
                    "server_errors": list(srv.internal_errors),
                    "unknown_routes": list(srv.unknown_routes),
                    "rejected_responses": [(r.status, r.code, r.message) for r in rejected],
                },
            }
        worker.close()
        retriever.store.close()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    report = asyncio.run(run(args))
    errors = report["errors"]
    failed = any(errors.values()) or any(m["answered"] != m["asked"] for m in report["modes"])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.users} users asking at once, {args.rounds} rounds (setup {report['setup_s']} s)")
        for m in report["modes"]:
            f = m["first_response_ms"]
            print(
                f"  {m['mode']:<11} answered {m['answered']}/{m['asked']}   first response ms: "
                f"p50 {f['p50']:.0f}  p95 {f['p95']:.0f}  p99 {f['p99']:.0f}  max {f['max']:.0f}"
                f"   answer p99 {m['answer_ms']['p99']:.0f}"
            )
        print("  errors: " + ("none" if not any(errors.values()) else json.dumps(errors)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
