"""`tutor bench demo`: per-demo p50 latency, cold and warm, through the real worker process.

cold = the demo's first run in a fresh worker (torch already imported by the worker's start-up, which is
reported separately); warm = median of --repeat further runs in the same worker. Times are wall-clock as
seen by the caller (IPC and PNG transfer included), which is what a bot user waits for.
"""

from __future__ import annotations

import json
import statistics
import time

import click

from engine.catalogue import DEMOS

TARGET_ARITH_MS = 300
TARGET_MS = 2000


@click.command("bench_demo")
@click.option(
    "--repeat", default=5, show_default=True, type=click.IntRange(1, 50), help="Warm runs per demo."
)
@click.option("--demo", "only", multiple=True, help="Only these demos (repeatable).")
@click.option(
    "--threads", default=1, show_default=True, type=click.IntRange(1, 64), help="torch threads per worker."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@click.option("--broker", help="redis://...: benchmark the Celery pool against the embedded worker instead.")
@click.option(
    "--workers", "worker_counts", default="1,2", show_default=True, help="With --broker: pool sizes."
)
@click.option("--burst", default=60, show_default=True, type=click.IntRange(4, 1000),
              help="With --broker: demos submitted at once for the throughput figure.")  # fmt: skip
def bench_demo(
    repeat: int, only: tuple[str, ...], threads: int, as_json: bool, broker: str | None, worker_counts: str,
    burst: int,
) -> None:  # fmt: skip
    """Per-demo p50, cold (fresh worker) and warm, with the targets (2 s warm; 300 ms arithmetic).

    With --broker: throughput with each pool size and the pool's added latency per demo against the
    embedded worker, in the same run (start `redis-server` first; the workers are started here).
    """
    from engine.worker import DemoWorker

    if broker:
        try:
            counts = sorted({int(x) for x in worker_counts.split(",") if x.strip()})
        except ValueError:
            raise click.BadParameter("a list like 1,2", param_hint="--workers") from None
        if not counts or counts[0] < 1 or counts[-1] > 16:
            raise click.BadParameter("between 1 and 16 workers", param_hint="--workers")
        result = bench_pool(broker, counts, burst, repeat=max(repeat, 20))
        click.echo(json.dumps(result, indent=2) if as_json else format_pool(result))
        return

    rows = []
    for spec in DEMOS:
        if only and spec.name not in only:
            continue
        request = {"demo": spec.name, "params": {}}
        with DemoWorker(env={"ENGINE_THREADS": threads}) as worker:
            t0 = time.perf_counter()
            worker.start()
            startup = time.perf_counter() - t0
            t0 = time.perf_counter()
            first = worker.run(request)
            cold = (time.perf_counter() - t0) * 1000
            warm, inner = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = worker.run(request)
                warm.append((time.perf_counter() - t0) * 1000)
                inner.append(r.elapsed_ms)
        target = TARGET_ARITH_MS if spec.arithmetic else TARGET_MS
        p50 = statistics.median(warm)
        rows.append(
            {
                "demo": spec.name,
                "device": first.device,
                "startup_s": round(startup, 2),
                "cold_ms": round(cold, 1),
                "warm_p50_ms": round(p50, 1),
                "warm_p50_in_worker_ms": round(statistics.median(inner), 1),
                "target_ms": target,
                "ok": p50 <= target,
            }
        )
        if not as_json:
            click.echo(f"  measured {spec.name}", err=True)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    head = f"{'demo':<18} {'device':<6} {'start s':>7} {'cold ms':>9} {'warm p50':>9} {'(worker)':>9} {'target':>7}  ok"
    click.echo(head)
    click.echo("-" * len(head))
    for r in rows:
        click.echo(
            f"{r['demo']:<18} {r['device']:<6} {r['startup_s']:>7.2f} {r['cold_ms']:>9.0f} "
            f"{r['warm_p50_ms']:>9.0f} {r['warm_p50_in_worker_ms']:>9.0f} {r['target_ms']:>7}  "
            f"{'yes' if r['ok'] else 'NO'}"
        )


POOL_REQUESTS = (
    {"demo": "receptive_field", "params": {}},
    {"demo": "softmax", "params": {}},
    {"demo": "conv_output", "params": {}},
    {"demo": "activations", "params": {}},
)


def _p50(samples: list[float]) -> float:
    return round(statistics.median(samples), 1)


def _timed(runner, request) -> float:
    t0 = time.perf_counter()
    runner.run(request)
    return (time.perf_counter() - t0) * 1000


def _burst(runner, requests) -> float:
    """Demos per second for ``requests`` submitted at once."""
    t0 = time.perf_counter()
    for f in [runner.submit(r) for r in requests]:
        f.result()
    return round(len(requests) / (time.perf_counter() - t0), 2)


def bench_pool(broker: str, counts: list[int], burst: int, repeat: int = 20) -> dict:
    """Embedded worker vs the pool: one demo at a time, paired (the same request on each, alternately, so
    drift on a busy machine cancels), and a burst submitted at once (throughput)."""
    import tempfile
    from pathlib import Path

    from engine.pool import DemoPool, PoolSettings, spawn_worker, stop_worker, wait_for_workers
    from engine.worker import DemoWorker

    settings = PoolSettings(broker, max_wait_s=600)
    sequence = [POOL_REQUESTS[i % len(POOL_REQUESTS)] for i in range(repeat)]
    burst_requests = [POOL_REQUESTS[i % len(POOL_REQUESTS)] for i in range(burst)]
    out: dict = {"broker": broker, "repeat": repeat, "burst": burst, "pool": {}}
    logs = Path(tempfile.mkdtemp(prefix="tutor-bench-workers-"))
    with DemoWorker(max_pending=burst) as embedded:
        embedded.start()
        for r in POOL_REQUESTS * 2:
            embedded.run(r)
        out["embedded"] = {"burst_per_s": _burst(embedded, burst_requests)}
        for n in counts:
            procs = [spawn_worker(broker, "cpu", log_path=logs / f"n{n}-{i}.log") for i in range(n)]
            try:
                wait_for_workers(broker, {p.pid for p in procs})
                with DemoPool(settings) as pool:
                    pool.start()
                    for r in POOL_REQUESTS * (3 * n):  # every worker process has run every demo
                        pool.run(r)
                    pairs = [(_timed(embedded, r), _timed(pool, r)) for r in sequence]
                    rate = _burst(pool, burst_requests)
                out["pool"][str(n)] = {
                    "embedded_p50_ms": _p50([e for e, _ in pairs]),
                    "p50_ms": _p50([p for _, p in pairs]),
                    "added_p50_ms": _p50([p - e for e, p in pairs]),
                    "burst_per_s": rate,
                }
            finally:
                for p in procs:
                    stop_worker(p)
    return out


def format_pool(result: dict) -> str:
    lines = [
        f"{result['repeat']} demos one at a time, each on the embedded worker and on the pool in turn; "
        f"a burst of {result['burst']} submitted at once; broker {result['broker']}",
        f"  embedded worker                                              burst {result['embedded']['burst_per_s']:>6.2f} demos/s",
    ]
    for n, r in result["pool"].items():
        lines.append(
            f"  pool, {n} worker(s): p50 {r['p50_ms']:>6.1f} ms against {r['embedded_p50_ms']:>6.1f} ms embedded, "
            f"added p50 {r['added_p50_ms']:+.1f} ms   burst {r['burst_per_s']:>6.2f} demos/s"
        )
    return "\n".join(lines)
