"""Demos on a worker pool: Celery tasks over a Redis broker, for more demos than one process can run.

The caller side (``DemoPool``) has the embedded ``DemoWorker``'s interface (``submit``, ``run``,
``run_async``, ``start``, ``close``), so the bot and the CLI switch by configuration only. The worker side is
``tutor worker``: a Celery worker whose processes import torch once and run ``engine.core.execute``.

- **Routing.** Every worker writes a heartbeat key (``tutor:worker:<name>``: queue, device, tasks done) that
  expires ``HEARTBEAT_TTL_S`` after its last refresh. A request goes to the ``gpu`` queue while a live GPU
  worker has a free process (fewer demos wait there than it has processes), else to ``cpu``; with no live
  heartbeat, demos are unavailable.
- **Nothing lost, nothing twice.** Tasks are acknowledged after they ran (``acks_late``) and requeued if
  their worker dies (``reject_on_worker_lost``; a worker killed outright leaves its task unacknowledged, and
  the broker hands it out again after ``visibility_timeout_s``). The caller names each task with a fresh
  id and resolves one future per id, so a task that runs twice still gives one reply.
- **Budgets.** A demo's budget is the task's soft time limit (the demo stops with ``DemoTimeout``) and,
  with a grace, its hard one (the worker process is replaced). The caller waits at most ``max_wait_s``
  (queueing included) and then says the demo took too long.
- **Faults.** A broker that cannot be reached, or no live worker, raises ``DemosUnavailable`` at once;
  redis-py reconnects on the next call, so demos work again when the broker is back.

Jobs are the resolved request's plain dict, as for the embedded worker; results travel as JSON through
the Redis result backend (PNG bytes base64), expire after
``result_ttl_s`` and are refused by the worker above ``max_result_bytes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from engine.catalogue import BY_NAME
from engine.core import Request, resolve
from engine.errors import (
    DemosUnavailable,
    DemoTimeout,
    EngineError,
    WorkerCrashed,
    error_from_dict,
)
from engine.spec import DemoRequest, DemoResult

log = logging.getLogger(__name__)

QUEUES = ("gpu", "cpu")
TASK_NAME = "tutor.run_demo"
HEARTBEAT_PREFIX = "tutor:worker:"
HEARTBEAT_TTL_S = 10
HEARTBEAT_EVERY_S = 2.0
HARD_LIMIT_GRACE_S = 5.0
POLL_S = 0.005  # how often the caller looks for finished results (one MGET for all pending tasks)
CONNECTION_ERRORS = {"ConnectionError", "TimeoutError", "OperationalError", "BusyLoadingError"}


@dataclass(frozen=True)
class PoolSettings:
    broker_url: str
    result_ttl_s: int = 600
    max_result_bytes: int = 16 * 2**20
    visibility_timeout_s: int = 120  # > the longest demo budget + grace, or a slow demo runs twice
    max_wait_s: float = 180.0
    connect_timeout_s: float = 1.0
    broker_grace_s: float = (
        15.0  # waiting demos fail as "unavailable" once the broker has been gone this long
    )

    def __post_init__(self) -> None:
        if not self.broker_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"the broker URL must be redis://host:port/db, not {self.broker_url!r}")


# --- the Celery app (both sides) ----------------------------------------------------------------------
def make_app(settings: PoolSettings):
    """The Celery app over ``settings.broker_url`` (broker and result backend), with the demo task."""
    from celery import Celery

    app = Celery("tutor", broker=settings.broker_url, backend=settings.broker_url, set_as_current=False)
    timeouts = {
        "socket_timeout": max(settings.connect_timeout_s, 5.0),
        "socket_connect_timeout": settings.connect_timeout_s,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="cpu",
        result_expires=settings.result_ttl_s,
        task_publish_retry=False,  # a dead broker is an answer ("unavailable"), not a wait
        broker_connection_timeout=settings.connect_timeout_s,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for the broker to come back
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": 2,
            "unacked_restore_throttle": 1,
            **timeouts,
        },
        redis_socket_timeout=timeouts["socket_timeout"],
        redis_socket_connect_timeout=settings.connect_timeout_s,
        redis_retry_on_timeout=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    app.conf["tutor_max_result_bytes"] = settings.max_result_bytes
    app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)(_run_demo_task)
    return app


MAX_ATTEMPTS = 2  # a demo whose process died is run once more, then reported as a crash


def _run_demo_task(task, job: dict, budget_s: float) -> dict:  # pragma: no cover - runs in a worker
    """Run one demo; errors come back as values (``{"error": code, ...}``), never as pickled exceptions."""
    from celery.exceptions import SoftTimeLimitExceeded

    from engine.core import execute

    name = str(job.get("demo", "?"))
    if _attempt(task.request.id) > MAX_ATTEMPTS:  # it killed its worker process each time (OOM, crash)
        return {
            "error": "worker_crashed",
            "message": f"{name} stopped its worker process twice; not run again",
        }
    try:
        result = execute(DemoRequest.from_dict(job))
    except SoftTimeLimitExceeded:
        return {"error": "timeout", "message": f"{name} ran past its {budget_s:g} s budget and was stopped"}
    except EngineError as exc:
        return exc.to_dict()
    except Exception as exc:  # a bug in one demo must not take the worker down
        log.exception("demo %s failed", name)
        return {"error": "engine_error", "message": f"{type(exc).__name__}: {exc}"}
    finally:
        _count_done()
    payload = {"ok": result.to_dict(images="base64")}
    size = len(json.dumps(payload))
    limit = int(task.app.conf.get("tutor_max_result_bytes", 16 * 2**20))
    if size > limit:
        return {"error": "engine_error", "message": f"{name}'s result is {size / 2**20:.1f} MB; the limit is "
                f"{limit / 2**20:.0f} MB"}  # fmt: skip
    return payload


_WORKER_NAME: str | None = None  # set by run_worker before the pool forks its processes
_WORKER_BROKER: str | None = None
_worker_client = None


def _worker_redis():  # pragma: no cover - runs in a worker
    """One Redis client per worker process, for the worker's own bookkeeping."""
    global _worker_client
    if _worker_client is None and _WORKER_BROKER is not None:
        _worker_client = redis_client(_WORKER_BROKER, 1.0)
    return _worker_client


def _attempt(task_id: str | None) -> int:  # pragma: no cover - runs in a worker
    client = _worker_redis()
    if client is None or not task_id:
        return 1
    try:
        key = f"tutor:attempts:{task_id}"
        count, _ = client.pipeline().incr(key).expire(key, 3600).execute()
        return int(count)
    except Exception:  # bookkeeping; never refuse a demo over it
        return 1


def _count_done() -> None:  # pragma: no cover - runs in a worker
    client = _worker_redis()
    if client is None or _WORKER_NAME is None:
        return
    try:
        key = f"{HEARTBEAT_PREFIX}{_WORKER_NAME}:done"
        client.pipeline().incr(key).expire(key, 86400).execute()
    except Exception:  # a statistic; never fail a demo over it
        pass


# --- the caller ------------------------------------------------------------------------------------------
def redis_client(url: str, timeout_s: float):
    """A redis-py client with short timeouts (a dead broker is noticed in about a second)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=max(timeout_s, 2.0))


WORKERS_KEY = "tutor:workers"  # the names of the workers that have announced themselves


def live_workers(client) -> list[dict]:
    """The workers whose heartbeat has not expired: name, queue, device, concurrency, tasks done."""
    names = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in client.smembers(WORKERS_KEY))
    if not names:
        return []
    beats = client.mget([f"{HEARTBEAT_PREFIX}{n}" for n in names])
    done = client.mget([f"{HEARTBEAT_PREFIX}{n}:done" for n in names])
    out, gone = [], []
    for name, raw, count in zip(names, beats, done, strict=True):
        if raw is None:
            gone.append(name)
            continue
        try:
            info = json.loads(raw)
        except ValueError:
            continue
        out.append({**info, "done": int(count or 0)})
    if gone:
        client.srem(WORKERS_KEY, *gone)
    return out


def queue_depths(client) -> dict[str, int]:
    """Tasks waiting in each queue (not yet taken by a worker)."""
    return {q: int(client.llen(q)) for q in QUEUES}


class DemoPool:
    """Submit demos to the Celery workers and wait for their results; the ``DemoWorker`` interface.

    Thread-safe. One background thread collects finished results for every pending task with one MGET.
    """

    def __init__(self, settings: PoolSettings):
        self.settings = settings
        self.app = make_app(settings)
        self.device: str | None = None
        self._client = redis_client(settings.broker_url, settings.connect_timeout_s)
        self._pending: dict[str, tuple[Future, float, str]] = {}  # task id -> (future, deadline, demo)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._workers_cache: tuple[float, list[dict]] | None = None
        self._unreachable_since: float | None = None
        self._run_id: str | None = None
        self._run_id_checked = 0.0
        self._collector = threading.Thread(target=self._collect, name="demo-pool-results", daemon=True)
        self._collector.start()

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> DemoPool:
        """Check that the broker answers and a worker is alive (nothing to warm on this side)."""
        self._route(fresh=True)
        return self

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._collector.join(5)
        self._fail_all(DemosUnavailable("the demo pool was closed"))
        self._client.close()

    def __enter__(self) -> DemoPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- routing ----------------------------------------------------------------------------------------
    def _route(self, fresh: bool = False) -> str:
        """``gpu`` while a live GPU worker has a free process, else ``cpu``; raises when no worker is alive.

        The workers are read at most once a second; the gpu queue's depth on every request, so a burst
        spills over to the CPU workers instead of queueing behind one GPU.
        """
        now = time.monotonic()
        try:
            if fresh or not self._workers_cache or now - self._workers_cache[0] >= 1.0:
                self._workers_cache = (now, live_workers(self._client))
            workers = self._workers_cache[1]
            capacity = {
                q: sum(int(w.get("concurrency", 1)) for w in workers if w.get("queue") == q) for q in QUEUES
            }
            gpu_busy = (
                capacity["gpu"] > 0
                and capacity["cpu"] > 0
                and int(self._client.llen("gpu")) >= capacity["gpu"]
            )
        except Exception as exc:
            self._workers_cache = None
            raise DemosUnavailable(f"the demo queue cannot be reached ({_short(exc)})") from None
        if capacity["gpu"] and not gpu_busy:
            queue = "gpu"
        elif capacity["cpu"]:
            queue = "cpu"
        else:
            raise DemosUnavailable("no demo worker is running")
        self.device = next((w.get("device") for w in workers if w.get("queue") == queue), None)
        return queue

    # -- jobs -------------------------------------------------------------------------------------------
    def submit(self, request: Request, budget_s: float | None = None, task_id: str | None = None) -> Future:
        """Validate here (cheap), then send the task; the Future resolves to a ``DemoResult``."""
        if self._closed:
            raise DemosUnavailable("the demo pool is closed")
        req = resolve(request)
        budget = float(budget_s if budget_s is not None else BY_NAME[req.demo].budget_s)
        queue = self._route()
        task_id = task_id or uuid.uuid4().hex
        fut: Future = Future()
        with self._lock:
            self._pending[task_id] = (fut, time.monotonic() + self.settings.max_wait_s, req.demo)
        try:
            self.app.send_task(
                # the resolved request is JSON-safe (an uploaded image is a matrix by now)
                TASK_NAME, args=[req.to_dict(), budget], task_id=task_id, queue=queue,
                soft_time_limit=budget, time_limit=budget + HARD_LIMIT_GRACE_S,
                expires=self.settings.max_wait_s,  # nobody waits for it after that: workers skip it
            )  # fmt: skip
        except Exception as exc:
            with self._lock:
                self._pending.pop(task_id, None)
            self._workers_cache = None
            raise DemosUnavailable(f"the demo queue cannot be reached ({_short(exc)})") from None
        self._wake.set()
        return fut

    def run(self, request: Request, budget_s: float | None = None) -> DemoResult:
        return self.submit(request, budget_s).result()

    async def run_async(self, request: Request, budget_s: float | None = None) -> DemoResult:
        fut = await asyncio.to_thread(self.submit, request, budget_s)  # network I/O: off the event loop
        return await asyncio.wrap_future(fut)

    # -- results ----------------------------------------------------------------------------------------
    def _collect(self) -> None:
        """Resolve pending futures from the result backend; never dies (a dead collector would hang callers)."""
        while not self._closed:
            try:
                self._collect_once()
            except Exception:  # pragma: no cover - a bug here must not stop every later reply
                log.exception("demo result collector")
                time.sleep(0.2)

    def _collect_once(self) -> None:
        backend = self.app.backend
        with self._lock:
            ids = list(self._pending)
        if not ids:
            self._wake.wait(0.5)
            self._wake.clear()
            return
        now = time.monotonic()
        keys = [backend.get_key_for_task(i) for i in ids]
        try:
            raw = backend.client.mget(keys)
            restarted = self._broker_restarted()
            self._unreachable_since = None
        except Exception as exc:  # the broker is down: wait for it a while, then say so
            log.debug("result poll failed: %s", exc)
            self._unreachable_since = self._unreachable_since or now
            grace = self.settings.broker_grace_s
            if now - self._unreachable_since > grace:
                self._fail_all(DemosUnavailable(f"the demo queue has been unreachable for {grace:g} s"))
            time.sleep(0.2)
            return
        if restarted:  # a broker restarted without persistence forgot its queues: nothing will come
            self._fail_all(DemosUnavailable("the demo queue restarted and lost the waiting demos; try again"))
            return
        done_keys = []
        for task_id, key, value in zip(ids, keys, raw, strict=True):
            outcome = self._outcome(backend, value) if value else None
            with self._lock:
                entry = self._pending.get(task_id)
                if entry is None or (outcome is None and now < entry[1]):
                    continue
                del self._pending[task_id]
            fut, _, demo = entry
            if outcome is None:
                outcome = DemoTimeout(f"{demo} waited {self.settings.max_wait_s:g} s for a free worker")
            else:
                done_keys.append(key)
            _resolve(fut, outcome)
        if done_keys:  # read once: free the broker's memory now rather than at the expiry
            with contextlib.suppress(Exception):
                backend.client.delete(*done_keys)
        time.sleep(POLL_S)

    def _broker_restarted(self) -> bool:
        """True once when the broker's run id changes (checked at most once a second)."""
        now = time.monotonic()
        if now - self._run_id_checked < 1.0:
            return False
        self._run_id_checked = now
        run_id = self._client.info("server").get("run_id")
        previous, self._run_id = self._run_id, run_id
        return previous is not None and run_id != previous

    def _fail_all(self, error: EngineError) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut, _, _ in pending.values():
            _resolve(fut, error)

    @staticmethod
    def _outcome(backend, value) -> DemoResult | EngineError | None:
        meta = backend.decode_result(value)
        status = meta.get("status")
        if status == "SUCCESS":
            payload = meta.get("result") or {}
            if "ok" in payload:
                return DemoResult.from_dict(payload["ok"])
            return error_from_dict(payload)
        if status == "FAILURE":
            exc = meta.get("result") or {}
            kind = exc.get("exc_type", "") if isinstance(exc, dict) else ""
            if kind in CONNECTION_ERRORS:  # the demo ran, but its result could not be stored
                return DemosUnavailable("the demo queue lost its connection; try again")
            if kind == "TimeLimitExceeded":
                return DemoTimeout("the demo ran past its budget and its worker process was replaced")
            return WorkerCrashed(f"the demo worker failed ({kind or 'unknown error'})")
        return None  # PENDING / STARTED / RETRY: not yet


def _resolve(fut: Future, outcome) -> None:
    """Set a future once; a caller that gave up (cancelled) is simply skipped."""
    if fut.done():
        return
    with contextlib.suppress(Exception):  # InvalidStateError: cancelled meanwhile
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


# --- limits shared by every bot process ----------------------------------------------------------------
_ACQUIRE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local total = redis.call('ZCARD', KEYS[1])
local mine = redis.call('ZCARD', KEYS[2])
if total >= tonumber(ARGV[3]) then return {1, total} end
if mine >= tonumber(ARGV[4]) then return {2, mine} end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(ttl))
redis.call('EXPIRE', KEYS[2], math.ceil(ttl))
return {0, total + 1}
"""


class SharedSlots:
    """Per-user and overall demo limits in Redis, atomic (one script), so several bot processes share them.

    A slot is a member of two sorted sets scored by its expiry: a bot process that dies holding slots
    gives them back after ``ttl_s`` instead of leaking them.
    """

    def __init__(self, settings: PoolSettings, prefix: str = "tutor:demo-slots"):
        self._client = redis_client(settings.broker_url, settings.connect_timeout_s)
        self._prefix = prefix
        self.ttl_s = settings.max_wait_s + 60.0
        self._acquire = self._client.register_script(_ACQUIRE)

    def acquire(self, user: str, per_user: int, total: int) -> str:
        """A token for one slot, or ``EngineBusy`` (limits) / ``DemosUnavailable`` (no broker)."""
        from engine.errors import EngineBusy

        token = uuid.uuid4().hex
        keys = [f"{self._prefix}:all", f"{self._prefix}:user:{user}"]
        try:
            refused, count = self._acquire(keys=keys, args=[token, self.ttl_s, total, per_user])
        except Exception as exc:
            raise DemosUnavailable(f"the demo queue cannot be reached ({_short(exc)})") from None
        if refused == 1:
            raise EngineBusy(f"{count} demos are queued or running; try again in a minute.")
        if refused == 2:
            raise EngineBusy("You already have a demo running; wait for it to finish first.")
        return token

    def release(self, user: str, token: str) -> None:
        try:
            pipe = self._client.pipeline()
            pipe.zrem(f"{self._prefix}:all", token).zrem(f"{self._prefix}:user:{user}", token).execute()
        except Exception as exc:  # expires by itself
            log.debug("slot release failed: %s", exc)

    def in_flight(self) -> int:
        try:
            return int(self._client.zcount(f"{self._prefix}:all", time.time(), "+inf"))
        except Exception:
            return 0

    def close(self) -> None:
        self._client.close()


# --- the worker side -----------------------------------------------------------------------------------
SUPERVISOR_ENV = "TUTOR_WORKER_SUPERVISOR"  # the pid of `tutor worker`, which restarts the Celery worker


def supervisor_pid() -> int:
    return int(os.environ.get(SUPERVISOR_ENV) or os.getpid())


def worker_name(queue: str) -> str:
    """Stable across restarts by the supervisor, so a restarted worker keeps its name and counter."""
    return f"{queue}-{socket.gethostname()}-{supervisor_pid()}"


def run_worker(settings: PoolSettings, queue: str, concurrency: int, max_tasks: int, max_memory_mb: int,
               loglevel: str = "WARNING") -> None:  # fmt: skip  # pragma: no cover - a process of its own
    """Run a Celery worker on ``queue`` until stopped; its processes import torch once, at start."""
    from celery import signals

    global _WORKER_NAME, _WORKER_BROKER
    app = make_app(settings)
    name = _WORKER_NAME = worker_name(queue)
    _WORKER_BROKER = settings.broker_url
    beat = _Heartbeat(settings, name, queue, concurrency)

    @signals.worker_process_init.connect(weak=False)
    def _warm(**_kwargs) -> None:
        from engine import plot  # noqa: F401  - matplotlib (Agg) and torch once per process
        from engine.core import warm_up

        warm_up()

    @signals.worker_ready.connect(weak=False)
    def _ready(**_kwargs) -> None:
        beat.start()

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**_kwargs) -> None:
        beat.stop()

    app.worker_main(
        [
            "worker", f"--queues={queue}", f"--concurrency={concurrency}", f"--hostname=tutor@{name}",
            "--pool=prefork", f"--max-tasks-per-child={max_tasks}",
            f"--max-memory-per-child={max_memory_mb * 1024}", f"--loglevel={loglevel}",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
    )  # fmt: skip


def spawn_worker(
    broker_url: str,
    queue: str = "cpu",
    concurrency: int = 1,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
):
    """Start ``tutor worker`` as a subprocess in its own process group (benchmarks, tests)."""
    log = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115 - the child's
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "tutor.cli", "worker", "--broker", broker_url, "--queue", queue,
             "--concurrency", str(concurrency)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})},
        )  # fmt: skip
    finally:
        if log_path is not None:
            log.close()


def wait_for_workers(broker_url: str, pids: set[int], timeout_s: float = 90.0) -> list[dict]:
    """Block until every process in ``pids`` has a live heartbeat; ``TimeoutError`` past ``timeout_s``."""
    client = redis_client(broker_url, 1.0)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            live = [w for w in live_workers(client) if w.get("pid") in pids]
            if len(live) >= len(pids):
                return live
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(live)} of {len(pids)} demo workers came up within {timeout_s:g} s")
            time.sleep(0.2)
    finally:
        client.close()


def stop_worker(proc, timeout_s: float = 20.0) -> None:
    """SIGTERM the worker's process group (a warm shutdown), SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


class _Heartbeat:  # pragma: no cover - runs in a worker
    """Refreshes this worker's key every ``HEARTBEAT_EVERY_S``; the key expires if the worker dies."""

    def __init__(self, settings: PoolSettings, name: str, queue: str, concurrency: int):
        from engine.core import select_device

        self.key = f"{HEARTBEAT_PREFIX}{name}"
        self.info = {
            "name": name, "queue": queue, "device": select_device(), "concurrency": concurrency,
            "pid": supervisor_pid(), "worker_pid": os.getpid(), "host": socket.gethostname(),
            "started": time.time(),
        }  # fmt: skip
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tutor-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        client = redis_client(self.settings.broker_url, self.settings.connect_timeout_s)
        while not self._stop.is_set():
            try:
                pipe = client.pipeline()
                pipe.set(self.key, json.dumps(self.info), ex=HEARTBEAT_TTL_S).sadd(
                    WORKERS_KEY, self.info["name"]
                )
                pipe.execute()
            except Exception as exc:  # the broker is down; Celery reconnects, so do we
                log.debug("heartbeat failed: %s", exc)
            self._stop.wait(HEARTBEAT_EVERY_S)
        with contextlib.suppress(Exception):
            client.delete(self.key)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(3)


__all__ = [
    "QUEUES",
    "DemoPool",
    "PoolSettings",
    "SharedSlots",
    "live_workers",
    "make_app",
    "queue_depths",
    "redis_client",
    "run_worker",
    "spawn_worker",
    "stop_worker",
    "wait_for_workers",
]
