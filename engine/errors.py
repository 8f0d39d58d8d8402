"""Engine exceptions: one hierarchy so the CLI and the bot can catch `EngineError` and show its message."""

from __future__ import annotations


class EngineError(Exception):
    """Base class; `str(err)` is always a message fit to show a student."""

    code = "engine_error"

    def to_dict(self) -> dict:
        return {"error": self.code, "message": str(self)}


class UnknownDemo(EngineError):
    """The request matched no demo (or several equally): carries the nearest demos and how to ask."""

    code = "unknown_demo"

    def __init__(self, message: str, nearest: tuple[str, ...] = (), examples: tuple[str, ...] = ()):
        super().__init__(message)
        self.nearest = tuple(nearest)
        self.examples = tuple(examples)

    def __reduce__(self):  # keep the extra fields across process boundaries
        return (type(self), (str(self), self.nearest, self.examples))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "nearest": list(self.nearest), "examples": list(self.examples)}


class BadParameter(EngineError):
    """A parameter is missing its type, out of bounds or inconsistent with another one."""

    code = "bad_parameter"


class DemoTimeout(EngineError):
    """The demo ran past its wall-clock budget; the worker running it was killed and restarted."""

    code = "timeout"


class EngineBusy(EngineError):
    """Too many requests are queued on a worker; try again shortly."""

    code = "busy"


class WorkerCrashed(EngineError):
    """The worker process died while running a demo (it is restarted for the next request)."""

    code = "worker_crashed"


class DemosUnavailable(EngineError):
    """The demo pool cannot take requests now (its broker is unreachable, or no worker is alive)."""

    code = "unavailable"


ERRORS: dict[str, type[EngineError]] = {
    cls.code: cls
    for cls in (
        EngineError,
        UnknownDemo,
        BadParameter,
        DemoTimeout,
        EngineBusy,
        WorkerCrashed,
        DemosUnavailable,
    )
}


def error_from_dict(d: dict) -> EngineError:
    """The error ``EngineError.to_dict`` described (across a process or a broker), of the same class."""
    cls = ERRORS.get(str(d.get("error")), EngineError)
    message = str(d.get("message", "the demo failed"))
    if cls is UnknownDemo:
        return UnknownDemo(message, tuple(d.get("nearest", ())), tuple(d.get("examples", ())))
    return cls(message)
