"""Resolve a request (text, dict or DemoRequest) into validated parameters and run it in this process.

The worker (`engine.worker`) calls `execute` on the far side of a process boundary; the parent only calls
`resolve`, which is cheap (no torch), so bad requests fail fast without touching a worker.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from typing import Any

from engine.catalogue import BY_NAME, get, runner
from engine.errors import BadParameter, EngineError
from engine.spec import DemoOutput, DemoRequest, DemoResult

Request = str | dict | DemoRequest


def resolve(request: Request) -> DemoRequest:
    """Any accepted request form -> a DemoRequest whose params are complete, typed and within bounds."""
    if isinstance(request, DemoRequest):
        req = request
    elif isinstance(request, dict):
        req = DemoRequest.from_dict(request)
    elif isinstance(request, str):
        stripped = request.strip()
        if stripped.startswith("{"):
            try:
                data = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise BadParameter(f"request looks like JSON but does not parse: {exc.msg}") from None
            except (ValueError, RecursionError):  # an integer of thousands of digits; nesting too deep
                raise BadParameter(
                    "request looks like JSON but holds a number or nesting too large"
                ) from None
            req = DemoRequest.from_dict(data)
        else:
            from engine.request import parse

            req = parse(request)
    else:
        raise BadParameter(f"a request is text, a dict or a DemoRequest (got {type(request).__name__})")
    spec = get(req.demo)
    return DemoRequest(demo=spec.name, params=validate(spec.name, req.params), text=req.text)


def validate(demo: str, params: dict) -> dict:
    spec = BY_NAME[demo]
    names = [p.name for p in spec.params]
    unknown = sorted(str(k)[:40] for k in set(params) - set(names))
    if unknown:
        raise BadParameter(f"{demo} has no parameter {', '.join(unknown)}; it takes: {', '.join(names)}")
    out: dict[str, Any] = {}
    for p in spec.params:
        out[p.name] = p.coerce(params[p.name], demo) if p.name in params else p.default
    return out


_THREADS_SET = False


def warm_up() -> str:
    """Import what the first demo would otherwise wait for (a worker's start, not a student's demo): torch,
    and the optimizer machinery whose first step imports ``torch._dynamo`` (about 2 s on a small CPU)."""
    import torch

    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.1)
    weight.sum().backward()
    optimizer.step()
    return select_device()


def select_device() -> str:
    """cuda, then mps, then cpu; ENGINE_DEVICE overrides (e.g. to force cpu on a GPU box)."""
    import torch

    forced = os.environ.get("ENGINE_DEVICE")
    if forced:
        return forced
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _prepare(seed: int) -> None:
    global _THREADS_SET
    import numpy as np
    import torch

    if not _THREADS_SET:
        # the demos' tensors are tiny: intra-op threads cost more than they gain, and scale-out is by worker
        # processes, so one thread unless ENGINE_THREADS says otherwise
        torch.set_num_threads(max(1, int(os.environ.get("ENGINE_THREADS", "1"))))
        _THREADS_SET = True
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def jsonable(x: Any) -> Any:
    """Numbers from numpy/torch -> plain Python, so results serialise as JSON."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist"):
        return jsonable(x.tolist())
    if isinstance(x, bool) or x is None or isinstance(x, int | str):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    return str(x)


def execute(req: DemoRequest) -> DemoResult:
    """Run a resolved request here and now (imports the demo's module on first use)."""
    spec = BY_NAME[req.demo]
    t0 = time.perf_counter()
    device = select_device()
    _prepare(int(req.params.get("seed", 0)))
    from engine.plot import style

    with style():
        out = runner(req.demo)(dict(req.params), device)
    if not isinstance(out, DemoOutput):  # pragma: no cover - programming error
        raise EngineError(f"{req.demo} returned {type(out).__name__}, not DemoOutput")
    refs = "\n".join(f"• {r.cite()}" for r in spec.kb)
    text = out.text.strip() + (f"\n\nIllustrates (knowledge base):\n{refs}" if refs else "")
    elapsed = (time.perf_counter() - t0) * 1000
    return DemoResult(
        demo=req.demo,
        params=jsonable(_echoed(spec, req.params, out.ignored)),
        numbers=jsonable(out.numbers),
        text=text,
        images=tuple(out.images),
        device=device,
        elapsed_ms=round(elapsed, 1),
    )


def _echoed(spec, params: dict, ignored: tuple[str, ...] = ()) -> dict:
    """The params as shown back: those the run used, an uploaded image as its size, not its pixels."""
    out = {name: value for name, value in params.items() if name not in ignored}
    for p in spec.params:
        if p.kind == "image" and out.get(p.name) is not None:
            out[p.name] = f"{len(out[p.name])} x {len(out[p.name][0])} (H x W) grayscale image"
    return out


def run(request: Request) -> DemoResult:
    """Parse/validate then run in-process (the CLI path; the bot uses `engine.worker.DemoWorker`)."""
    return execute(resolve(request))
