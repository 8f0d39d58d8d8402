"""Hostile input and faults, run against the real CLI and the real bot: every case must end in a clear message
or a correct result, within memory, while other users keep getting answers.

Not a unit test (each case is also a regression test in ``tests/``): this is the table the issue asks for.

* **CLI cases** run ``tutor ...`` as child processes on a data folder ingested once at the start (damaging
  cases get their own copy). Peak RSS is the child's own (``os.wait4``); a case passes when it exits within
  its time limit, prints no traceback and says what the case expects.
* **Bot cases** run the real ``TutorBot`` with the real retriever and the embedded demo worker against the
  local Discord-compatible server (``tests/fakediscord/``). Peak RSS is this process (bot, server and
  retriever together) and the demo worker's, each reset before every case (``/proc/<pid>/clear_refs``). A
  bystander asks a question every six seconds throughout; every one of its questions must be answered.

    .venv/bin/python -m bench.hostile              # everything (a few minutes)
    .venv/bin/python -m bench.hostile --only cli   # or --only bot; --json for the raw rows

Exit status 1 when any case fails, the bot or the worker passes 1.5 GB, or the bystander misses a reply.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

if not __package__:  # run as a file: the test helpers (``tests.fakediscord``) import only from the root
    sys.exit("run it from the repository root as a module: python -m bench.hostile")
import index.offline  # noqa: F401 - the Hugging Face environment, before those libraries load

RSS_LIMIT_MB = 1536
TUTOR = str(Path(sys.executable).with_name("tutor"))
TRACEBACK = "Traceback (most recent call last)"


@dataclass
class Row:
    where: str
    case: str
    passed: bool
    outcome: str
    peak_rss_mb: float
    seconds: float


# --- CLI ---------------------------------------------------------------------------------------------------
def run_child(argv: list[str], env: dict[str, str], stdin: bytes = b"", timeout: float = 180.0):
    """Run a child to completion (or kill it at ``timeout``); its output, exit status and own peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as feed:
        feed.write(stdin)
        feed.seek(0)
        started = time.perf_counter()
        proc_pid = os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, feed.fileno(), 0),
                (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, out.fileno(), 2),
            ],
        )
        killed = False
        while True:
            pid, status, usage = os.wait4(proc_pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout and not killed:
                os.kill(proc_pid, signal.SIGKILL)
                killed = True
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    code = os.waitstatus_to_exitcode(status)
    return code, text, usage.ru_maxrss / 1024, seconds, killed


def last_words(text: str, pattern: str | None = None, width: int = 110) -> str:
    """The line that says what happened: the first matching ``pattern``, else the last non-empty one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    matching = [line for line in lines if pattern and re.search(pattern, line, re.I | re.S)]
    line = matching[0] if matching else lines[-1] if lines else "(no output)"
    return line if len(line) <= width else line[: width - 1] + "…"


@dataclass
class CliCase:
    name: str
    args: list[str]
    expect: str  # regex the output must match (case-insensitive)
    stdin: bytes = b""
    prepare: Callable[[Path], None] | None = None  # damages a private copy of the data folder
    exit_codes: tuple[int, ...] = (0, 1, 2)
    timeout: float = 180.0


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)  # no disk used
    return path


def cli_cases(scratch: Path) -> list[CliCase]:
    decks = scratch / "decks"
    decks.mkdir()
    bomb = decks / "bomb.md"
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    bomb.write_text("---\n" + "\n".join(levels) + "\ntitle: *i\n---\n## What is x?\nx.\n", encoding="utf-8")
    big_tsv = decks / "big.tsv"
    big_tsv.write_text("".join(f"q{i}?\ta{i}\n" for i in range(50_000)), encoding="utf-8")
    over_cap = decks / "over_cap.tsv"
    over_cap.write_text("".join(f"q{i}?\ta{i}\n" for i in range(100_001)), encoding="utf-8")
    million = decks / "million.tsv"
    million.write_text("".join(f"q{i}?\ta{i}\n" for i in range(1_000_000)), encoding="utf-8")
    manifest_bomb = decks / "listed"
    manifest_bomb.mkdir()
    (manifest_bomb / "deck.tsv").write_text("What is x?\tx.\n", encoding="utf-8")
    (manifest_bomb / "manifest.yaml").write_text("\n".join(levels) + "\ndeck.tsv:\n  title: *i\n")
    deep = decks / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    clash = decks / "000_bc2d647321f7b90f.txt"  # a bundled source's file name, in the user's folder
    clash.write_text("What is a receptive field?\tA link to my site.\n", encoding="utf-8")
    (decks / "a").mkdir()
    (decks / "b").mkdir()
    (decks / "a" / "notes.tsv").write_text("What is a tensor?\tAn n-dimensional array.\n", encoding="utf-8")
    (decks / "b" / "notes.tsv").write_text("What is padding?\tZeros around the input.\n", encoding="utf-8")
    huge_image = _sparse(scratch / "huge.png", 3 * 1024**3)
    bad_utf8 = b"what is stride\n\xff\xfe not utf-8 \xc3\nwhat is \xed\xa0\x80 a surrogate\nwhat is dropout\n"

    def write_index_manifest(text: str) -> Callable[[Path], None]:
        return lambda data: (data / "index" / "manifest.json").write_text(text)

    def folder_for(name: str) -> Callable[[Path], None]:
        def damage(data: Path) -> None:
            (data / "index" / name).unlink()
            (data / "index" / name / "x").mkdir(parents=True)

        return damage

    def manifest_files_null(data: Path) -> None:
        path = data / "index" / "manifest.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "files": None}))

    def garbage_pages(data: Path) -> None:
        raw = bytearray((data / "tutor.db").read_bytes())
        for start in range(8192, len(raw), 4096):
            raw[start : start + 4096] = b"\xde\xad\xbe\xef" * 1024
        (data / "tutor.db").write_bytes(bytes(raw))

    answered = r"stride refers to|Q: "
    demo_refused = r"at most|no more than|between|too (large|many|big)|must be|finite|limit"
    return [
        CliCase(
            "demo: 999999999 stride-2 convs",
            ["demo", "receptive field after 999999999 stride 2 convs"],
            demo_refused,
        ),
        CliCase(
            "demo: memory estimate, huge model",
            ["demo", "memory estimate batch 4096 image 1024 width 512 blocks 5 classes 10000"],
            demo_refused + r"|GiB|GB",
        ),
        CliCase("demo: W=10^12", ["demo", "conv output for W=10^12 F=3 S=1 P=0"], demo_refused),
        CliCase("demo: W=1e12", ["demo", "conv output for W=1e12 F=3 S=1 P=0"], demo_refused),
        CliCase("demo: softmax of nan, inf, -inf", ["demo", "softmax of nan, inf, -inf"], demo_refused),
        CliCase("demo: lr finder 10^9 steps", ["demo", "lr finder with 10^9 steps"], demo_refused),
        CliCase(
            "demo: 3 GB --image (sparse)",
            ["demo", "apply an edge kernel", "--image", str(huge_image)],
            r"larger than|too large|MB",
        ),
        CliCase("ingest: YAML alias bomb", ["kb", "ingest", str(bomb)], r"alias|anchor"),
        CliCase("ingest: YAML alias bomb in manifest.yaml", ["kb", "ingest", str(manifest_bomb)], r"alias"),
        CliCase(
            "ingest: 50,000-line TSV (real model, index too)",
            ["kb", "ingest", str(big_tsv)],
            r"ingested 1 documents: 50000 added",
            timeout=900,
        ),
        CliCase("ingest: 100,001-line TSV", ["kb", "ingest", str(over_cap)], r"more than 100,000 entries"),
        CliCase("ingest: 1,000,000-line TSV (14 MB)", ["kb", "ingest", str(million)], r"larger than"),
        CliCase("ingest: JSON nested 100,000 deep", ["kb", "ingest", str(deep)], r"nest|deep"),
        CliCase("ingest: deck named like a bundled source", ["kb", "ingest", str(clash)], r"--replace"),
        CliCase(
            "ingest: a/notes.tsv then b/notes.tsv",
            ["kb", "ingest", str(decks / "b" / "notes.tsv")],
            r"--replace",
            prepare=None,
        ),
        CliCase("ask -: invalid UTF-8 on stdin", ["ask", "-"], answered, stdin=bad_utf8),
        CliCase("chat: invalid UTF-8 on stdin", ["chat"], r"tutor> ", stdin=bad_utf8),
        CliCase(
            "index manifest [1,2,3]",
            ["ask", "what is stride"],
            answered,
            prepare=write_index_manifest("[1, 2, 3]"),
        ),
        CliCase(
            "index manifest null", ["ask", "what is stride"], answered, prepare=write_index_manifest("null")
        ),
        CliCase(
            "index manifest files: null", ["ask", "what is stride"], answered, prepare=manifest_files_null
        ),
        CliCase(
            "index files are folders", ["ask", "what is stride"], answered, prepare=folder_for("views.npy")
        ),
        CliCase(
            "database: garbage in its pages",
            ["ask", "what is stride"],
            r"damaged.*(restore|backup)",
            prepare=garbage_pages,
        ),
        CliCase(
            "database: 0 bytes",
            ["kb", "stats"],
            r"empty \(0 bytes\)",
            prepare=lambda data: (data / "tutor.db").write_bytes(b""),
        ),
    ]


def run_cli(only: str | None) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hostile-cli-") as tmp:
        scratch = Path(tmp)
        seeded = scratch / "seeded"
        env = {**os.environ, "TUTOR_DATA_DIR": str(seeded), "COLUMNS": "200"}
        code, text, _, seconds, _ = run_child([TUTOR, "kb", "ingest", "-q"], env)
        if code != 0:
            raise SystemExit(f"could not ingest the bundled notes:\n{text}")
        print(f"(seeded a data folder in {seconds:.0f} s)", file=sys.stderr)
        cases = cli_cases(scratch)
        # a/notes.tsv first, so the b/ case meets a document of the same name from another folder
        run_child([TUTOR, "kb", "ingest", str(scratch / "decks" / "a" / "notes.tsv")], env)
        for case in cases:
            if only and only not in case.name:
                continue
            data = seeded
            if case.prepare is not None or case.args[:2] == ["kb", "ingest"]:
                data = scratch / f"case-{len(rows)}"
                shutil.copytree(seeded, data)
                if case.prepare is not None:
                    case.prepare(data)
            code, text, rss, seconds, killed = run_child(
                [TUTOR, *case.args], {**env, "TUTOR_DATA_DIR": str(data)}, case.stdin, case.timeout
            )
            clear = bool(re.search(case.expect, text, re.I | re.S)) and TRACEBACK not in text
            passed = clear and not killed and code in case.exit_codes and rss <= RSS_LIMIT_MB
            outcome = (
                "killed at the time limit" if killed else f"exit {code}: {last_words(text, case.expect)}"
            )
            rows.append(Row("cli", case.name, passed, outcome, round(rss), round(seconds, 1)))
            print(f"  {'ok  ' if passed else 'FAIL'} cli  {case.name}", file=sys.stderr)
    return rows


# --- bot ---------------------------------------------------------------------------------------------------
def reset_peak(pid: int | str = "self") -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_mb(pid: int | str | None = "self") -> float:
    if pid is None:
        return 0.0
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


class LogCapture(logging.Handler):
    """Every record the bot and discord.py log, formatted as a handler would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []
        self.recording = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.recording:
            self.lines.append(self.format(record))


class Bystander:
    """A user who asks a question every ``every`` seconds while the hostile cases run; each must be answered.

    Every six seconds: within the default per-user rate limit (10 a minute), so a refusal is a failure.
    """

    def __init__(self, world, user, every: float = 6.0) -> None:
        self.world, self.user, self.every = world, user, every
        self.asked = 0
        self.answered = 0
        self.slowest = 0.0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        srv = self.world.server
        while not self._stop.is_set():
            posted = await srv.post_message(
                self.user, self.world.general, f"{srv.bot_user.mention} what is stride"
            )
            self.asked += 1
            try:
                reply = await srv.wait_for_message(
                    self.world.general,
                    lambda m, p=posted: bool(m.reference) and m.reference["message_id"] == str(p.id),
                    after=posted,
                    timeout=30,
                )
                self.answered += int("stride" in reply.text.lower())
                self.slowest = max(self.slowest, reply.created_at - posted.created_at)
            except TimeoutError:
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.every)

    def stop(self) -> None:
        self._stop.set()


async def bot_cases(world, capture) -> list[tuple[str, Callable[[], Awaitable[tuple[bool, str]]]]]:
    from bot.logs import REDACTED

    srv = world.server

    async def demo(text: str, expect: str) -> tuple[bool, str]:
        ix = await srv.invoke_slash(world.alice, world.general, "demo", {"request": text})
        msg = await ix.wait_message(timeout=120)
        said = msg.text
        return bool(re.search(expect, said, re.I | re.S)), last_words(said, expect)

    demo_refused = r"at most|no more than|between|too (large|many|big)|must be|finite|limit"

    async def surrogate_among_sixteen() -> tuple[bool, str]:
        users = [srv.create_user(f"student{i}") for i in range(16)]
        texts = ["what is dropout"] * 16
        texts[5] = "what is \ud800 a lone surrogate"
        posted = await asyncio.gather(
            *(
                srv.post_message(u, world.general, f"{srv.bot_user.mention} {t}")
                for u, t in zip(users, texts, strict=True)
            )
        )
        replies = await asyncio.gather(
            *(
                srv.wait_for_message(
                    world.general,
                    lambda m, p=p: bool(m.reference) and m.reference["message_id"] == str(p.id),
                    after=p,
                    timeout=60,
                )
                for p in posted
            ),
            return_exceptions=True,
        )
        got = [r for r in replies if not isinstance(r, BaseException)]
        answered = sum("dropout" in r.text.lower() for i, r in enumerate(replies) if i != 5 and r in got)
        bad = replies[5]
        bad_said = "no reply" if isinstance(bad, BaseException) else last_words(bad.text)
        passed = answered == 15 and not isinstance(bad, BaseException)
        return passed, f"{answered}/15 answered; odd one: {bad_said}"

    async def burst_of_forty() -> tuple[bool, str]:
        flooder = srv.create_user("flooder")
        other = srv.create_user("patient")
        posted = []
        for i in range(40):
            posted.append(
                await srv.post_message(flooder, world.general, f"{srv.bot_user.mention} question {i}")
            )
            if i == 20:
                middle = await srv.post_message(
                    other, world.general, f"{srv.bot_user.mention} what is padding"
                )
        reply = await srv.wait_for_message(
            world.general,
            lambda m: bool(m.reference) and m.reference["message_id"] == str(middle.id),
            after=middle,
            timeout=60,
        )
        await asyncio.sleep(3)
        to_flooder = [
            m for m in srv.messages_in(world.general, author=srv.bot_user)
            if m.reference and int(m.reference["message_id"]) in {p.id for p in posted}
        ]  # fmt: skip
        limited = [m for m in to_flooder if re.search(r"slow down|again in|too many|rate", m.text, re.I)]
        ok = "padding" in reply.text.lower() and len(limited) > 0 and len(to_flooder) - len(limited) < 40
        return ok, (
            f"flooder: {len(to_flooder) - len(limited)} answered, {len(limited)} asked to wait; "
            f"the other user answered: {'padding' in reply.text.lower()}"
        )

    async def tokens_at_debug() -> tuple[bool, str]:
        root = logging.getLogger()
        old_level = root.level
        capture.lines.clear()
        capture.recording = True
        root.setLevel(logging.DEBUG)
        try:  # an answer (interaction response) and a demo (deferred, then a webhook follow-up)
            ix = await srv.invoke_slash(world.alice, world.general, "ask", {"question": "what is stride"})
            await ix.wait_message(timeout=30)
            ix = await srv.invoke_slash(
                world.alice, world.general, "demo", {"request": "softmax of 2, 1, 0.1"}
            )
            await ix.wait_message(timeout=120)
        finally:
            root.setLevel(old_level)
            capture.recording = False
        secrets = [srv.token, *(i.token for i in srv.interactions.values())]
        leaked = [t for t in secrets if any(t in line for line in capture.lines)]
        carried = [line for line in capture.lines if "INTERACTION_CREATE" in line or "/webhooks/" in line]
        said = (
            f"{len(capture.lines)} log lines at DEBUG, {len(carried)} of them where a token travels, "
            f"{len(leaked)} tokens visible"
        )
        return not leaked and len(carried) >= 2 and all(REDACTED in line for line in carried), said

    return [
        ("/demo: 999999999 stride-2 convs",
         lambda: demo("receptive field after 999999999 stride 2 convs", demo_refused)),
        ("/demo: memory estimate, huge model",
         lambda: demo("memory estimate batch 4096 image 1024 width 512 blocks 5 classes 10000",
                      demo_refused + r"|GiB|GB")),
        ("/demo: W=10^12", lambda: demo("conv output for W=10^12 F=3 S=1 P=0", demo_refused)),
        ("/demo: softmax of nan, inf, -inf", lambda: demo("softmax of nan, inf, -inf", demo_refused)),
        ("/demo: lr finder 10^9 steps", lambda: demo("lr finder with 10^9 steps", demo_refused)),
        ("lone surrogate among 16 questions", surrogate_among_sixteen),
        ("40 mentions in a burst", burst_of_forty),
        ("interaction tokens at DEBUG", tokens_at_debug),
    ]  # fmt: skip


async def run_bot(only: str | None) -> tuple[list[Row], dict]:
    from bot.logs import install_redaction
    from engine import DemoWorker
    from knowledge.loader import SOURCES_DIR, collect_paths, load_document
    from knowledge.store import Store
    from tests.bot_harness import running_tutor
    from tests.fakediscord import DiscordServer
    from tutor.services import embed, open_retriever, refresh_index

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hostile-bot-") as tmp:
        data_dir = Path(tmp)

        def seed():
            store = Store.open(data_dir)
            store.ingest([load_document(p) for p in collect_paths([SOURCES_DIR])], embed)
            refresh_index(store)  # as `tutor kb ingest` leaves it
            store.close()
            return open_retriever(data_dir)

        retriever = await asyncio.to_thread(seed)
        worker = DemoWorker().start()
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
        capture = LogCapture()
        logging.getLogger().addHandler(capture)
        install_redaction()  # on every handler of the root logger, as the bot's entry point does
        async with DiscordServer() as srv, running_tutor(retriever, worker, data_dir, server=srv) as world:
            bystander = Bystander(world, world.bob)
            asking = asyncio.create_task(bystander.run())
            for name, case in await bot_cases(world, capture):
                if only and only not in name:
                    continue
                reset_peak()
                reset_peak(worker.pid or 0)
                started = time.perf_counter()
                try:
                    passed, outcome = await asyncio.wait_for(case(), 240)
                except Exception as exc:  # a case that breaks the harness fails
                    passed, outcome = False, f"{type(exc).__name__}: {exc}"
                seconds = time.perf_counter() - started
                rss = max(peak_mb(), peak_mb(worker.pid))
                rows.append(
                    Row("bot", name, passed and rss <= RSS_LIMIT_MB, outcome, round(rss), round(seconds, 1))
                )
                print(f"  {'ok  ' if rows[-1].passed else 'FAIL'} bot  {name}", file=sys.stderr)
            bystander.stop()
            await asyncio.wait_for(asking, 60)
            errors = list(srv.internal_errors)
        worker.close()
        retriever.store.close()
    return rows, {
        "bystander_asked": bystander.asked,
        "bystander_answered": bystander.answered,
        "bystander_slowest_s": round(bystander.slowest, 2),
        "server_errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="'cli', 'bot', or part of a case name")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[Row] = []
    extra: dict = {}
    name_filter = None if args.only in (None, "cli", "bot") else args.only
    if args.only != "bot":
        rows += run_cli(name_filter)
    if args.only != "cli":
        bot_rows, extra = asyncio.run(run_bot(name_filter))
        rows += bot_rows
    failed = [r for r in rows if not r.passed]
    bystander_ok = extra.get("bystander_asked", 0) == extra.get("bystander_answered", 0)
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in rows], **extra}, indent=2))
    else:
        print("| where | case | outcome | peak RSS MB | s | |\n|---|---|---|---:|---:|---|")
        for r in rows:
            print(f"| {r.where} | {r.case} | {r.outcome} | {r.peak_rss_mb:.0f} | {r.seconds:.1f} | "
                  f"{'ok' if r.passed else 'FAIL'} |")  # fmt: skip
        if extra:
            print(
                f"\nbystander (asks every 6 s during the bot cases): {extra['bystander_answered']}/"
                f"{extra['bystander_asked']} answered, slowest {extra['bystander_slowest_s']} s; "
                f"server errors: {extra['server_errors'] or 'none'}"
            )
        print(f"{len(rows) - len(failed)}/{len(rows)} cases passed")
    return 1 if failed or not bystander_ok else 0


if __name__ == "__main__":
    sys.exit(main())
