"""`tutor demo`: run a demonstration from plain language or the structured form, print numbers, save PNGs.

tutor demo "show receptive field after two stride-2 convs"
tutor demo receptive_field --layers 3:2,3:2
tutor demo "W=227 F=11 S=4 P=0" --json --out plots/
tutor demo --list
echo "softmax of 1, 2, 3" | tutor demo --json -
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

import click

from engine.catalogue import BY_NAME, DEMOS
from engine.core import resolve
from engine.errors import BadParameter, EngineError
from engine.spec import MAX_IMAGE_BYTES, DemoRequest


def _structured(tokens: list[str], params: tuple[str, ...]) -> dict | str:
    """`NAME --key value --key=value` (+ `--param key=value`) -> structured request; anything else is text."""
    extra = [t for t in tokens[1:] if t.startswith("--")]
    if not tokens or tokens[0] not in BY_NAME or (not extra and not params):
        return " ".join(tokens)
    out: dict = {}
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise click.UsageError(f"unexpected {tok!r}: use --name value for {tokens[0]}'s parameters")
        key, eq, val = tok[2:].partition("=")
        if not eq:
            if i + 1 >= len(tokens):
                raise click.UsageError(f"--{key} needs a value")
            val = tokens[i + 1]
            i += 1
        out[key.replace("-", "_")] = val
        i += 1
    for kv in params:
        key, eq, val = kv.partition("=")
        if not eq:
            raise click.UsageError(f"--param takes key=value (got {kv!r})")
        out[key.strip()] = val.strip()
    return {"demo": tokens[0], "params": out}


def _with_image(req: dict | str, path: Path) -> DemoRequest:
    """The request with the picture added, for the demos that take one."""
    base = resolve(req)
    if not BY_NAME[base.demo].takes_image:
        takes = ", ".join(d.name for d in DEMOS if d.takes_image)
        raise BadParameter(f"{base.demo} does not take an image; {takes} does")
    data = read_image(path, f"{base.demo}: image")
    return resolve(DemoRequest(base.demo, {**base.params, "image": data}, base.text))


def read_image(path: Path, where: str = "image") -> bytes:
    """A picture's bytes, its size checked before it is read: a 3 GB file is refused, not loaded.

    Only regular files (a FIFO or /dev/zero has no size to check), and never more than the limit plus one
    byte is read, in case the file grows between the check and the read."""
    limit = f"the limit is {MAX_IMAGE_BYTES // 2**20} MB"
    try:
        info = path.stat()
    except OSError as exc:
        raise BadParameter(f"{where}: cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadParameter(f"{where}: {path} is not a regular file")
    if info.st_size > MAX_IMAGE_BYTES:
        raise BadParameter(f"{where}: the image is {info.st_size / 2**20:.1f} MB; {limit}")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise BadParameter(f"{where}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise BadParameter(f"{where}: the image is over {MAX_IMAGE_BYTES // 2**20} MB; {limit}")
    return data


def _save(result, out_dir: Path) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    # The plots are part of the tag: two pictures of the same size echo the same params.
    digest = hashlib.sha1(json.dumps(result.params, sort_keys=True).encode())
    for data in result.images:
        digest.update(data)
    tag = digest.hexdigest()[:8]
    paths = []
    for i, data in enumerate(result.images):
        path = out_dir / f"{result.demo}_{tag}_{i + 1}.png"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def _payload(result, paths: list[str]) -> dict:
    return {
        "demo": result.demo,
        "params": result.params,
        "result": result.numbers,
        "text": result.text,
        "images": paths,
        "device": result.device,
        "elapsed_ms": result.elapsed_ms,
    }


def _error(exc: EngineError, request=None) -> dict:
    """The error as JSON, with the request as the user gave it: the text, or the demo and its parameters.

    Never the resolved request: that holds an uploaded picture (bytes or a pixel matrix), which is neither
    JSON nor anything to echo; an image parameter is named, not shown."""
    d = exc.to_dict()
    if request is not None:
        d["request"] = _request_echo(request)
    return d


def _request_echo(request) -> str | dict:
    if isinstance(request, str):
        return request
    if isinstance(request, DemoRequest):
        if request.text is not None:
            return request.text
        request = {"demo": request.demo, "params": request.params}
    if isinstance(request, dict):
        params = request.get("params") or {}
        shown = (
            {k: ("<image>" if k == "image" else v) for k, v in params.items()}
            if isinstance(params, dict)
            else {}
        )
        return json.loads(json.dumps({"demo": request.get("demo"), "params": shown}, default=str))
    return str(request)


def _runner():
    """How this process runs demos, with the bot's wall-clock budgets (each demo's own, capped by the
    ``demo_timeout_s`` setting): the command root's demo client (``tutor.services.Root.demo_client``): the
    Celery pool when ``TUTOR_BROKER_URL`` is set, else a killable worker process (`engine.worker.DemoWorker`),
    started at the first request that validates. The root closes it when the command ends."""
    from tutor.services import for_command

    root = for_command()
    runner, _shared = root.demo_client()
    start = _starter(runner) if hasattr(runner, "pid") else None
    return _budgeted(runner.run, root.settings.demo_timeout_s, start), lambda: None


def _starter(worker):
    """Start the local worker unless it runs: the seconds that took (torch imported in a new process), or
    None when it was already running. Timed apart from the demo, so the header can say which is which."""

    def start() -> float | None:
        if worker.pid is not None:
            return None
        t0 = time.perf_counter()
        worker.start()
        return time.perf_counter() - t0

    return start


def _budgeted(run, max_budget_s: float, start=None):
    """``run(request, budget_s=...)`` with the demo's budget: validated here first, so a bad request never
    starts a worker, and a demo past its budget is stopped (`DemoTimeout`) instead of running on.

    With ``start`` (see `_starter`), the worker is started after validation and the time it took is kept
    in ``go.startup_s`` (None when no worker had to start) for the header."""
    from engine.worker import demo_budget

    def go(request):
        req = resolve(request)
        go.startup_s = None
        if start is not None:
            go.startup_s = start()
        return run(req, budget_s=demo_budget(req.demo, max_budget_s))

    go.startup_s = None
    return go


def _one(request, out_dir: Path, run):
    result = run(request)
    return result, _save(result, out_dir)


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s >= 1 else f"{s * 1000:.0f} ms"


def _header(result, startup_s: float | None = None) -> str:
    """The demo's own time, as the worker measured it (on a fresh worker it includes loading the demo's
    module and data once) and, when this request had to start the worker first (a new process importing
    torch), that start-up apart: "conv_apply  (cpu, 224 ms; worker start 3.4 s)"."""
    timing = f"{result.device}, {_seconds(result.elapsed_ms / 1000)}"
    if startup_s is not None:
        timing += f"; worker start {_seconds(startup_s)}"
    return click.style(f"{result.demo}", bold=True) + f"  ({timing})"


def _human(result, paths: list[str], startup_s: float | None = None) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.6g}"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list) and len(v) > 8:
            return "[" + ", ".join(fmt(x) for x in v[:8]) + ", …]"
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return str(v)

    lines = [
        _header(result, startup_s),
        "parameters: " + ", ".join(f"{k}={fmt(v)}" for k, v in result.params.items()),
        "",
    ]
    lines += [f"  {k}: {fmt(v)}" for k, v in result.numbers.items()]
    lines += ["", result.text, ""]
    lines += [f"image: {p}" for p in paths]
    return "\n".join(lines)


KEEP_RUNS = 20  # runs without --out kept in the shared folder


def default_out_dir(root: Path | None = None) -> Path:
    """A new folder for one run's PNGs in one folder per user under the temp dir, keeping the newest
    KEEP_RUNS runs: the printed paths stay valid for a while, and nothing piles up in /tmp."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    root = root or Path(tempfile.gettempdir()) / f"tutor-demos-{uid}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    runs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: (p.stat().st_mtime, p.name))
    for old in runs[: max(0, len(runs) - (KEEP_RUNS - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=root))


@click.command("demo", context_settings={"ignore_unknown_options": True, "allow_extra_args": False})
@click.argument("request", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: {demo, params, result, text, images, device, elapsed_ms}.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder for the PNGs (default: a new folder under the temp dir; the last {KEEP_RUNS} runs are kept).",
)
@click.option("--list", "list_", is_flag=True, help="List the demos with an example request each.")
@click.option(
    "--param", "-p", "params", multiple=True, help="key=value for the structured form (repeatable)."
)
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Your own picture for conv_apply (PNG/JPEG, up to 8 MB).",
)
def demo(
    request: tuple[str, ...],
    as_json: bool,
    out_dir: Path | None,
    list_: bool,
    params: tuple[str, ...],
    image: Path | None,
) -> None:
    """Run a deep-learning demonstration: REQUEST in plain language, or NAME --param value.

    \b
    tutor demo "receptive field after two stride-2 convs"
    tutor demo receptive_field --layers 3:2,3:2,3:1     (structured: any parameter of --list)
    tutor demo conv_output --size 64 --layers 5:1:2
    tutor demo "apply a left edge kernel" --image photo.jpg

    Use "-" as REQUEST to read one request per line from stdin (with --json: one JSON line out per request).
    """
    if list_:
        if as_json:
            click.echo(json.dumps([d.to_dict() for d in DEMOS], indent=2))
        else:
            for d in DEMOS:
                click.echo(
                    click.style(d.name, bold=True) + f': {d.summary}\n    e.g. tutor demo "{d.examples[0]}"'
                )
                click.echo("    params: " + ", ".join(f"{p.name}={p.default}" for p in d.params))
        return
    tokens = list(request)
    if not tokens:
        raise click.UsageError(
            'give a request, e.g. tutor demo "receptive field after two stride-2 convs", or --list'
        )
    out = out_dir or default_out_dir()
    try:
        run, close = _runner()
    except ValueError as exc:  # a malformed TUTOR_BROKER_URL
        raise click.ClickException(str(exc)) from None
    try:
        _run_requests(tokens, params, image, as_json, out, run)
    finally:
        close()


def _run_requests(tokens: list[str], params, image: Path | None, as_json: bool, out: Path, run) -> None:
    if tokens == ["-"]:
        failures = 0
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                result, paths = _one(line, out, run)
                payload = _payload(result, paths)
                shown = json.dumps(payload) if as_json else _human(result, paths, _startup(run)) + "\n"
                click.echo(shown)
            except EngineError as exc:
                failures += 1
                click.echo(json.dumps(_error(exc, line)) if as_json else f"error: {exc}\n")
        sys.exit(1 if failures else 0)
    given = req = _structured(tokens, params)
    try:
        if image is not None:
            req = _with_image(req, image)
        result, paths = _one(req, out, run)
    except EngineError as exc:
        if as_json:
            error = _error(exc, given)  # as given: the request with the picture is no JSON
            if image is not None:
                error["image"] = str(image)
            click.echo(json.dumps(error))
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(
        json.dumps(_payload(result, paths), indent=2) if as_json else _human(result, paths, _startup(run))
    )


def _startup(run) -> float | None:
    """Seconds the last request spent starting the worker (`_budgeted`), None if none started or unknown."""
    return getattr(run, "startup_s", None)
