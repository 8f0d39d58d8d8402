"""`tutor worker`: run a demo worker for the Celery pool, and `tutor worker status` to see the pool."""

from __future__ import annotations

import json
import time

import click


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
@click.pass_context
def worker(ctx, broker, queue, concurrency, max_tasks, max_memory_mb, loglevel) -> None:
    """Run demos for the bot and the CLI from a Redis broker (Celery), until stopped (Ctrl-C, SIGTERM)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = broker
        return
    from engine.pool import run_worker

    settings = _pool_settings(broker)
    cuda = _has_cuda()
    if queue is None:
        queue = "gpu" if cuda else "cpu"
    elif queue == "gpu" and not cuda:
        raise click.ClickException(
            "this machine has no CUDA device; a gpu worker would run on the CPU (use --queue cpu)"
        )
    click.echo(
        f"demo worker: queue {queue}, {concurrency} process(es), broker {settings.broker_url}", err=True
    )
    run_worker(settings, queue, concurrency, max_tasks, max_memory_mb, loglevel)


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
