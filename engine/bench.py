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
def bench_demo(repeat: int, only: tuple[str, ...], threads: int, as_json: bool) -> None:
    """Per-demo p50, cold (fresh worker) and warm, with the targets (2 s warm; 300 ms arithmetic)."""
    from engine.worker import DemoWorker

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
