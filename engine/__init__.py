"""Compute engine: live deep-learning demonstrations from plain-language requests, as numbers and plots.

`import engine` is cheap (no torch, no matplotlib): those are imported when a demo first runs.

    >>> import engine
    >>> r = engine.run("show receptive field after two stride-2 convs")
    >>> r.numbers["size"]
    7
"""

from __future__ import annotations

from engine.catalogue import catalogue
from engine.core import resolve, run
from engine.errors import (
    BadParameter,
    DemosUnavailable,
    DemoTimeout,
    EngineBusy,
    EngineError,
    UnknownDemo,
    WorkerCrashed,
)
from engine.request import parse
from engine.spec import DemoRequest, DemoResult, DemoSpec, ParamSpec

__all__ = [
    "BadParameter",
    "DemoRequest",
    "DemoResult",
    "DemoSpec",
    "DemoTimeout",
    "DemoWorker",
    "DemosUnavailable",
    "EngineBusy",
    "EngineError",
    "ParamSpec",
    "UnknownDemo",
    "WorkerCrashed",
    "catalogue",
    "parse",
    "resolve",
    "run",
]


def __getattr__(name: str):
    if name == "DemoWorker":  # the worker pulls in multiprocessing/concurrent machinery; load on demand
        from engine.worker import DemoWorker

        return DemoWorker
    raise AttributeError(name)
