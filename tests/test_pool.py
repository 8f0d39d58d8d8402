"""Demos on the Celery + Redis pool: a real ``redis-server`` and real ``tutor worker`` processes.

Without ``redis-server`` these tests are skipped, saying why; under CI (``CI`` set) a missing server is a
failure instead, so CI never skips them. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import engine
from engine.errors import BadParameter, DemosUnavailable, DemoTimeout, EngineBusy
from engine.pool import (
    DemoPool,
    PoolSettings,
    SharedSlots,
    live_workers,
    redis_client,
    spawn_worker,
    stop_worker,
    wait_for_workers,
)

REDIS = shutil.which("redis-server")
if REDIS is None:
    if os.environ.get("CI"):
        raise RuntimeError("redis-server is missing on CI: .ci/run installs it (Debian package redis-server)")
    pytest.skip(
        "redis-server is not installed (apt-get install redis-server); the pool tests need a real broker",
        allow_module_level=True,
    )

WORKER_START = 90.0  # a worker imports torch and matplotlib before its heartbeat appears
VISIBILITY_S = 8  # the test workers hand out a killed worker's task again after this (a worker setting)


def box_png() -> bytes:
    import io

    from PIL import Image

    picture = Image.new("RGB", (90, 60), "white")
    picture.paste((0, 0, 0), (20, 15, 70, 45))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis_client(self.url, 0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    server = Redis(free_port())
    server.start()
    yield server
    server.stop()


class Workers:
    """``tutor worker`` subprocesses, each in its own process group (so SIGKILL takes its children too)."""

    def __init__(self, url: str, log_dir: Path):
        self.url, self.log_dir, self.procs = url, log_dir, []

    def start(self, n: int = 1) -> list[subprocess.Popen]:
        started = [
            spawn_worker(self.url, "cpu", log_path=self.log_dir / f"worker-{len(self.procs) + i}.log",
                         env={"TUTOR_BROKER_VISIBILITY_S": str(VISIBILITY_S)})
            for i in range(n)
        ]  # fmt: skip
        self.procs += started
        try:
            wait_for_workers(self.url, {p.pid for p in self.procs if p.poll() is None}, WORKER_START)
        except TimeoutError as exc:
            logs = "\n".join(p.read_text(errors="replace")[-800:] for p in self.log_dir.glob("*.log"))
            raise TimeoutError(f"{exc}\n{logs}") from None
        return started

    def wait_live_again(self) -> None:
        wait_for_workers(self.url, {p.pid for p in self.procs if p.poll() is None}, WORKER_START)

    def kill(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs:
            stop_worker(proc)


@pytest.fixture(scope="module")
def workers(redis, tmp_path_factory) -> Iterator[Workers]:
    pool = Workers(redis.url, tmp_path_factory.mktemp("workers"))
    pool.start(1)
    yield pool
    pool.stop()


@pytest.fixture
def pool(redis, workers) -> Iterator[DemoPool]:
    with DemoPool(PoolSettings(redis.url, max_wait_s=60)) as p:
        yield p.start()


# --- the pool itself ---------------------------------------------------------------------------------
def test_pool_runs_demos_with_the_same_results_as_in_process(pool):
    request = "show receptive field after two stride-2 convs"
    remote, local = pool.run(request), engine.run(request)
    assert remote.numbers == local.numbers and remote.params == local.params and remote.device == "cpu"
    assert remote.images and all(png.startswith(b"\x89PNG") for png in remote.images)
    assert pool.device == "cpu"
    # a picture parameter (bytes) travels too
    shown = pool.run(engine.DemoRequest("conv_apply", {"image": box_png()}))
    assert "your image" in shown.text


def test_bad_requests_fail_before_reaching_the_broker(pool):
    with pytest.raises(BadParameter, match="kernel must be between"):
        pool.submit("conv output for W=10 F=30 S=1 P=0")


def test_a_demo_past_its_budget_is_stopped_and_a_late_result_is_not_waited_for(redis, workers):
    with DemoPool(PoolSettings(redis.url, max_wait_s=60)) as p, pytest.raises(DemoTimeout, match="budget"):
        p.run({"demo": "lr_finder", "params": {"steps": 400}}, budget_s=0.05)
    impatient = DemoPool(PoolSettings(redis.url, max_wait_s=0.05))
    with impatient, pytest.raises(DemoTimeout, match=r"waited 0\.05 s for a free worker"):
        impatient.run({"demo": "lr_finder", "params": {"steps": 300}})


def test_no_broker_or_no_worker_is_unavailable_at_once(redis, workers):
    nobody = PoolSettings(f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=0.5)
    start = time.monotonic()
    with DemoPool(nobody) as p, pytest.raises(DemosUnavailable, match="cannot be reached"):
        p.run("receptive_field")
    with pytest.raises(DemosUnavailable):
        SharedSlots(nobody).acquire("u", 1, 6)
    assert time.monotonic() - start < 5
    empty_db = PoolSettings(redis.url.rsplit("/", 1)[0] + "/7")  # a broker no worker listens on
    with DemoPool(empty_db) as p, pytest.raises(DemosUnavailable, match="no demo worker is running"):
        p.run("receptive_field")


def test_gpu_first_until_its_processes_are_busy_then_cpu(redis, workers):
    """A (pretend) GPU worker's heartbeat draws requests to the gpu queue until demos wait there."""
    import json

    from engine.pool import HEARTBEAT_PREFIX, WORKERS_KEY

    client = redis_client(redis.url, 0.5)
    fake = {"name": "gpu-test", "queue": "gpu", "device": "cuda", "concurrency": 1, "pid": 0}
    try:
        client.set(f"{HEARTBEAT_PREFIX}gpu-test", json.dumps(fake), ex=30)
        client.sadd(WORKERS_KEY, "gpu-test")
        with DemoPool(PoolSettings(redis.url)) as pool:
            assert pool._route(fresh=True) == "gpu" and pool.device == "cuda"
            client.rpush("gpu", "a demo waiting for the GPU")
            assert pool._route() == "cpu" and pool.device == "cpu"
    finally:
        client.delete(f"{HEARTBEAT_PREFIX}gpu-test", "gpu")
        client.srem(WORKERS_KEY, "gpu-test")
        client.close()


def test_limits_are_shared_by_every_bot_process_and_expire(redis):
    one, two = SharedSlots(PoolSettings(redis.url)), SharedSlots(PoolSettings(redis.url))
    one._prefix = two._prefix = f"test-slots-{time.monotonic_ns()}"
    first = one.acquire("ann", per_user=1, total=2)
    with pytest.raises(EngineBusy, match="already have a demo running"):
        two.acquire("ann", per_user=1, total=2)
    second = two.acquire("bob", per_user=1, total=2)
    with pytest.raises(EngineBusy, match="2 demos are queued or running"):
        one.acquire("cy", per_user=1, total=2)
    one.release("ann", first)
    two.release("bob", second)
    assert one.in_flight() == 0
    one.ttl_s = 0.2  # a bot process that died holding a slot gives it back after the expiry
    one.acquire("dee", per_user=1, total=1)
    time.sleep(0.3)
    two.acquire("dee", per_user=1, total=1)
    one.close(), two.close()


def test_worker_status_command(redis, workers):
    import json

    from click.testing import CliRunner

    from tutor.cli import main

    result = CliRunner().invoke(main, ["worker", "--broker", redis.url, "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert (
        status["workers"]
        and status["workers"][0]["queue"] == "cpu"
        and set(status["queues"]) == {"gpu", "cpu"}
    )
    no_broker = CliRunner().invoke(main, ["worker", "status"], env={"TUTOR_BROKER_URL": ""})
    assert no_broker.exit_code == 1 and "no broker configured" in no_broker.output


# --- through the bot -------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def tutor_on_pool(retriever, tmp_path, settings: PoolSettings, **overrides) -> AsyncIterator:
    from tests.bot_harness import running_tutor

    pool, shared = DemoPool(settings), SharedSlots(settings)
    try:
        async with running_tutor(retriever, pool, tmp_path, shared=shared, **overrides) as world:
            yield world
    finally:
        pool.close()
        shared.close()


async def test_two_hundred_demos_one_worker_killed_every_request_answered_once(
    fake_retriever, redis, workers, tmp_path
):
    """50 users x 4 demos, two workers, one SIGKILLed mid-run: one reply each, the survivor drains the queue."""
    workers.start(1)  # two live now
    victim = workers.procs[0]
    settings = PoolSettings(redis.url, max_wait_s=150, visibility_timeout_s=VISIBILITY_S)
    requests = ["softmax of 1, 2, 3", "receptive field after two stride-2 convs", "conv output for W=32 F=3 S=1 P=1",
                "softmax of 2, 4, 8"]  # fmt: skip
    async with tutor_on_pool(
        fake_retriever, tmp_path, settings, demo_queue_per_user=4, demo_queue_total=200, demo_timeout_s=30
    ) as w:
        users = [w.server.create_user(f"student{i}") for i in range(50)]
        interactions = []
        for user in users:
            for text in requests:
                interactions.append(await w.server.invoke_slash(user, w.general, "demo", {"request": text}))

        async def replied() -> int:
            return sum(bool(ix.messages()) for ix in interactions)

        deadline = time.monotonic() + 60
        while await replied() < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await replied() < len(interactions), "the kill must land mid-run"
        await asyncio.to_thread(workers.kill, victim)
        for ix in interactions:
            await ix.wait_message(timeout=180)
        await asyncio.sleep(1.0)  # a task that ran twice would post its second reply by now
        counts = [len(ix.messages()) for ix in interactions]
        assert counts == [1] * len(interactions), "exactly one reply per request"
        titles = [
            ix.messages()[0].embed.get("title", "") if ix.messages()[0].embed else "" for ix in interactions
        ]
        failures = [ix.messages()[0].content for ix, t in zip(interactions, titles, strict=True) if not t]
        assert failures == [], f"the killed worker's demo is run again by the other: {failures[:3]}"
        assert all(t.startswith("Demo: ") for t in titles)
        client = redis_client(redis.url, 0.5)
        assert sum(client.llen(q) for q in ("cpu", "gpu")) == 0, "the surviving worker drained the queue"
        client.close()


async def test_broker_down_then_back_demos_unavailable_meanwhile_then_work(
    fake_retriever, redis, workers, tmp_path
):
    settings = PoolSettings(redis.url, max_wait_s=60, connect_timeout_s=0.5)
    async with tutor_on_pool(fake_retriever, tmp_path, settings) as w:
        srv = w.server
        ok = await srv.invoke_slash(w.alice, w.general, "demo", {"request": "receptive_field"})
        assert (await ok.wait_message(timeout=60)).embed["title"] == "Demo: receptive_field"
        await asyncio.to_thread(redis.stop)
        try:
            down = await srv.invoke_slash(w.alice, w.general, "demo", {"request": "receptive_field"})
            reply = await down.wait_message(timeout=10)
            assert down.latency is not None and down.latency < 3
            assert "Demos are unavailable right now" in reply.content
            asked = await srv.invoke_slash(w.bob, w.general, "ask", {"question": "what is a receptive field"})
            assert (await asked.wait_message(timeout=20)).embed, "questions still work"
        finally:
            await asyncio.to_thread(redis.start)
        deadline = time.monotonic() + 60  # the worker reconnects and its heartbeat comes back
        while True:
            again = await srv.invoke_slash(w.alice, w.general, "demo", {"request": "softmax of 1, 2, 3"})
            msg = await again.wait_message(timeout=60)
            if msg.embed and msg.embed.get("title") == "Demo: softmax":
                break
            assert "unavailable" in msg.content and time.monotonic() < deadline, msg.content
            await asyncio.sleep(1.0)


def test_cli_demo_runs_on_the_pool_when_a_broker_is_configured(redis, workers, tmp_path):
    import json

    from click.testing import CliRunner

    from tutor.cli import main

    runner = CliRunner()
    ok = runner.invoke(main, ["demo", "receptive_field", "--json", "--out", str(tmp_path)],
                       env={"TUTOR_BROKER_URL": redis.url})  # fmt: skip
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.output)
    assert (
        payload["result"]["size"] == 7 and payload["device"] == "cpu" and Path(payload["images"][0]).exists()
    )
    down = runner.invoke(
        main, ["demo", "receptive_field"], env={"TUTOR_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    )
    assert down.exit_code == 2 and "cannot be reached" in down.output


def test_a_worker_that_dies_is_started_again_by_its_supervisor(redis, workers):
    client = redis_client(redis.url, 0.5)
    try:
        before = {w["pid"]: w["worker_pid"] for w in live_workers(client)}
        supervisor = workers.procs[-1]
        os.kill(before[supervisor.pid], signal.SIGKILL)  # the Celery worker, not its supervisor
        deadline = time.monotonic() + WORKER_START
        while True:
            now = {w["pid"]: w["worker_pid"] for w in live_workers(client)}
            if now.get(supervisor.pid) not in (None, before[supervisor.pid]):
                break
            assert time.monotonic() < deadline, "the supervisor did not start the worker again"
            time.sleep(0.2)
    finally:
        client.close()
    with DemoPool(PoolSettings(redis.url, max_wait_s=60)) as p:
        assert p.run("receptive_field").numbers["size"] == 7


def test_waiting_demos_fail_as_unavailable_when_the_broker_goes_away(redis, workers):
    settings = PoolSettings(redis.url, max_wait_s=60, broker_grace_s=1.0, connect_timeout_s=0.3)
    with DemoPool(settings) as p:
        slow = p.submit({"demo": "lr_finder", "params": {"steps": 300}}, budget_s=30)
        redis.stop()
        try:
            start = time.monotonic()
            with pytest.raises(DemosUnavailable, match=r"unreachable|restarted|lost"):
                slow.result(timeout=20)
            assert time.monotonic() - start < 10
        finally:
            redis.start()
    workers.wait_live_again()
