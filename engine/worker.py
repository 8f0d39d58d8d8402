"""A warm, killable worker process: the wall-clock budget per demo is enforced by killing the process.

Threads cannot be interrupted in CPython and a runaway torch op holds the GIL, so the only reliable budget is
a separate process. `DemoWorker` keeps one spawned process warm (torch and matplotlib imported once), sends it
plain-dict jobs over a pipe, and on overrun kills and replaces it, raising `DemoTimeout`. Requests are parsed
and validated in the caller first, so bad requests never reach the worker. The job/result boundary is plain
data (`DemoRequest.to_dict()` / `DemoResult.to_dict()`), which is what a remote pool would carry too.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from engine.catalogue import BY_NAME
from engine.core import Request, resolve
from engine.errors import DemoTimeout, EngineBusy, EngineError, WorkerCrashed, error_from_dict
from engine.spec import DemoRequest, DemoResult


def demo_budget(demo: str, max_budget_s: float | None = None) -> float:
    """A demo's wall-clock budget: its own (from the catalogue), capped by ``max_budget_s`` when given.

    The one rule for every front end: the bot's queue and `tutor demo` both cap with the ``demo_timeout_s``
    setting, so a demo gets the same time from the command line as in Discord."""
    budget = float(BY_NAME[demo].budget_s)
    return budget if max_budget_s is None else min(budget, float(max_budget_s))


def _worker_main(conn, env: dict) -> None:  # pragma: no cover - runs in the child process
    os.environ.update(env)
    from engine import plot  # noqa: F401  - warm matplotlib (Agg) once
    from engine.core import execute, warm_up

    conn.send(("ready", warm_up()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "stop":
            return
        try:
            result = execute(DemoRequest.from_dict(msg[1]))
            conn.send(("ok", result.to_dict()))
        except EngineError as exc:
            conn.send(("err", exc.to_dict()))
        except Exception as exc:  # a bug in a demo must not kill the warm worker
            conn.send(("err", {"error": "engine_error", "message": f"{type(exc).__name__}: {exc}"}))


class DemoWorker:
    """One warm worker process with a per-demo wall-clock budget.

    `submit()` returns a `concurrent.futures.Future`; `run()` blocks; `await run_async()` suits the bot.
    Jobs run one at a time in submission order; more than `max_pending` queued raises `EngineBusy`.
    `budget_s` overrides every demo's own budget (from the catalogue) when given.
    """

    def __init__(
        self,
        budget_s: float | None = None,
        *,
        max_pending: int = 8,
        start_timeout_s: float = 180.0,
        context: str = "spawn",
        env: dict | None = None,
    ):
        self.budget_s = budget_s
        self.max_pending = max_pending
        self.start_timeout_s = start_timeout_s
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.restarts = 0
        self.device: str | None = None
        self._ctx = mp.get_context(context)
        self._proc = None
        self._conn = None
        self._pending = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-worker")
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> DemoWorker:
        """Start (or restart) the process and wait until torch is imported and it says ready."""
        self._pool.submit(self._ensure_started).result()
        return self

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        self._kill()
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self.env), daemon=True, name="demo-worker")
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        if not parent.poll(self.start_timeout_s):
            self._kill()
            raise DemoTimeout(f"the demo worker did not start within {self.start_timeout_s:g} s")
        try:
            _, device = parent.recv()
        except (EOFError, OSError):
            self._kill()
            raise WorkerCrashed("the demo worker died while starting") from None
        self.device = device

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(10)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def close(self) -> None:
        """Stop the process and the dispatch thread."""
        if self._closed:
            return
        self._closed = True

        def stop():
            if self._conn is not None and self._proc is not None and self._proc.is_alive():
                try:
                    self._conn.send(("stop",))
                    self._proc.join(5)
                except (OSError, BrokenPipeError):
                    pass
            self._kill()

        self._pool.submit(stop).result()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> DemoWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    # -- jobs --------------------------------------------------------------------------------------------
    def submit(self, request: Request, budget_s: float | None = None) -> Future:
        """Validate here (cheap, raises at once), then queue the job; the Future resolves to a DemoResult."""
        if self._closed:
            raise EngineBusy("the demo worker is closed")
        req = resolve(request)
        budget = budget_s if budget_s is not None else (self.budget_s or BY_NAME[req.demo].budget_s)
        with self._lock:
            if self._pending >= self.max_pending:
                raise EngineBusy(f"{self._pending} demos are already queued; try again in a moment")
            self._pending += 1
        fut = self._pool.submit(self._do, req.to_dict(), float(budget))
        fut.add_done_callback(self._done)
        return fut

    def _done(self, _fut: Future) -> None:
        with self._lock:
            self._pending -= 1

    def run(self, request: Request, budget_s: float | None = None) -> DemoResult:
        return self.submit(request, budget_s).result()

    async def run_async(self, request: Request, budget_s: float | None = None) -> DemoResult:
        return await asyncio.wrap_future(self.submit(request, budget_s))

    def _do(self, job: dict, budget: float) -> DemoResult:
        self._ensure_started()
        conn = self._conn
        try:
            conn.send(("run", job))
            ready = conn.poll(budget)
        except (OSError, BrokenPipeError):
            self._kill()
            raise WorkerCrashed("the demo worker died; it will be restarted for the next request") from None
        if not ready:
            self._kill()
            self.restarts += 1
            raise DemoTimeout(
                f"{job['demo']} ran past its {budget:g} s budget and was stopped; try smaller parameters"
            )
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            self._kill()
            self.restarts += 1
            raise WorkerCrashed(f"the demo worker died running {job['demo']}; it was restarted") from None
        if msg[0] == "ok":
            return DemoResult.from_dict(msg[1])
        raise error_from_dict(msg[1])
