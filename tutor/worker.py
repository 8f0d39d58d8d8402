"""`tutor worker`: run a demo worker for the Celery pool, and `tutor worker status` to see the pool."""

from __future__ import annotations

import json
import sys
import time

import click

from engine.pool import SUPERVISOR_ENV


def _pool_settings(broker: str | None):
    from engine.pool import PoolSettings
    from tutor.settings import load_settings, pool_settings

    settings = load_settings(**({"broker_url": broker} if broker else {}))
    try:
        pool = pool_settings(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if pool is None:
        raise click.ClickException(
            "no broker configured: set TUTOR_BROKER_URL=redis://host:6379/0 (or pass --broker); without one, "
            "demos run inside the bot and the CLI and need no worker"
        )
    assert isinstance(pool, PoolSettings)
    return pool


def _has_cuda() -> bool:
    import os

    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # ask NVML; do not initialise CUDA pre-fork
    from engine.core import select_device

    return select_device() == "cuda"


@click.group("worker", invoke_without_command=True)
@click.option("--broker", help="redis://host:port/db (default: TUTOR_BROKER_URL).")
@click.option(
    "--queue",
    type=click.Choice(["gpu", "cpu"]),
    default=None,
    help="Which requests to take (default: gpu on a machine with CUDA, else cpu).",
)
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Demo processes in this worker (each imports torch once).")  # fmt: skip
@click.option("--max-tasks", type=click.IntRange(1, None), default=200, show_default=True,
              help="Replace a process after this many demos.")  # fmt: skip
@click.option("--max-memory-mb", type=click.IntRange(64, None), default=3072, show_default=True,
              help="Replace a process whose memory grows past this (checked after each demo).")  # fmt: skip
@click.option("--loglevel", default="WARNING", show_default=True)
@click.option("--once", is_flag=True, hidden=True, help="Run the Celery worker here, without the supervisor.")
@click.pass_context
def worker(ctx, broker, queue, concurrency, max_tasks, max_memory_mb, loglevel, once) -> None:
    """Run demos for the bot and the CLI from a Redis broker (Celery), until stopped (Ctrl-C, SIGTERM).

    The Celery worker runs in a child process that is started again if it exits on its own (a broker
    that went away can take a worker down); Ctrl-C or SIGTERM stops both.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = broker
        return
    settings = _pool_settings(broker)
    if once:
        from engine.pool import run_worker

        run_worker(settings, queue or "cpu", concurrency, max_tasks, max_memory_mb, loglevel)
        return
    cuda = queue != "cpu" and _has_cuda()  # a cpu worker's supervisor need not import torch
    if queue is None:
        queue = "gpu" if cuda else "cpu"
    elif queue == "gpu" and not cuda:
        raise click.ClickException(
            "this machine has no CUDA device; a gpu worker would run on the CPU (use --queue cpu)"
        )
    click.echo(
        f"demo worker: queue {queue}, {concurrency} process(es), broker {settings.broker_url}", err=True
    )
    child = [
        "--broker", settings.broker_url, "--queue", queue, "--concurrency", str(concurrency),
        "--max-tasks", str(max_tasks), "--max-memory-mb", str(max_memory_mb), "--loglevel", loglevel, "--once",
    ]  # fmt: skip
    sys.exit(supervise(child))


def supervise(args: list[str]) -> int:
    """Run ``tutor worker --once ARGS`` and start it again whenever it exits unasked (backoff up to 30 s)."""
    import os
    import signal
    import subprocess

    stopping = False
    proc: subprocess.Popen | None = None

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    env = {**os.environ, SUPERVISOR_ENV: str(os.getpid())}
    backoff = 1.0
    while True:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "tutor.cli", "worker", *args], env=env)
        code = proc.wait()
        if stopping:
            return 0
        if time.monotonic() - started > 60:
            backoff = 1.0
        click.echo(f"demo worker exited ({code}); starting it again in {backoff:g} s", err=True)
        deadline = time.monotonic() + backoff
        while time.monotonic() < deadline and not stopping:
            time.sleep(0.1)
        if stopping:
            return 0
        backoff = min(backoff * 2, 30.0)


@worker.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(broker, as_json) -> None:
    """The live workers (queue, device, processes, demos done) and how many demos wait in each queue."""
    from engine.pool import live_workers, queue_depths, redis_client

    settings = _pool_settings(broker)
    client = redis_client(settings.broker_url, settings.connect_timeout_s)
    try:
        workers, depths = live_workers(client), queue_depths(client)
    except Exception as exc:
        raise click.ClickException(f"the broker at {settings.broker_url} cannot be reached ({exc})") from None
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps({"workers": workers, "queues": depths}))
        return
    if not workers:
        click.echo("no live workers (start one with `tutor worker`)")
    for w in workers:
        age = time.time() - float(w.get("started", time.time()))
        click.echo(
            f"{w.get('name')}: queue {w.get('queue')}, {w.get('device')}, {w.get('concurrency')} process(es), "
            f"{w.get('done', 0)} demos done, up {age:.0f} s"
        )
    click.echo("waiting: " + ", ".join(f"{q} {n}" for q, n in depths.items()))
