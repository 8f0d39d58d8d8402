"""The demo catalogue: every module of the `engine.demos` package is one demo.

A demo module holds everything about its demo: ``SPEC`` (a `DemoSpec`: parameters with kinds and bounds,
examples, keywords, knowledge-base references), ``extract(norm)`` when it reads parameters from text beyond
the generic "word number" pairs (a dict, or a dict and the text it did not consume), and ``run(params,
device)``, which imports torch and matplotlib only when it runs. The modules are found by listing the
package, so adding a demo is adding its file: nothing here names one. Loading the catalogue imports the
demo modules but nothing heavy (no torch, matplotlib or scikit-learn).

The bot reads the specs for autocomplete and slash options, the request parser (`engine.request`) for
keywords and extractors, the runner (`engine.core`) for the run functions and the citations.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import engine.demos
from engine.errors import UnknownDemo
from engine.parse import MAX_TEXT, normalize_demo_request
from engine.spec import DemoOutput, DemoSpec


def _load() -> dict[str, ModuleType]:
    """The demo modules by demo name, in catalogue order (each spec's ``order``, then its name)."""
    found = []
    for info in pkgutil.iter_modules(engine.demos.__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{engine.demos.__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if (
            not isinstance(spec, DemoSpec)
            or spec.name != info.name
            or not callable(getattr(module, "run", None))
        ):
            raise ImportError(
                f"{module.__name__} must define SPEC (a DemoSpec named {info.name!r}) and run()"
            )
        found.append(module)
    found.sort(key=lambda m: (m.SPEC.order, m.SPEC.name))
    return {m.SPEC.name: m for m in found}


_MODULES = _load()
DEMOS: tuple[DemoSpec, ...] = tuple(m.SPEC for m in _MODULES.values())
BY_NAME = {d.name: d for d in DEMOS}


def catalogue() -> tuple[DemoSpec, ...]:
    """All demos, in catalogue order."""
    return DEMOS


def get(name: str) -> DemoSpec:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in BY_NAME:
        return BY_NAME[key]
    name = name if len(name) <= 60 else name[:59] + "…"  # a name is short: no work, nor echo, past that
    near = nearest(name[:MAX_TEXT])
    raise UnknownDemo(
        f"no demo called {name!r}; nearest: {', '.join(near)}",
        near,
        tuple(BY_NAME[n].examples[0] for n in near),
    )


def extractor(name: str) -> Callable[[str], dict | tuple[dict, str]] | None:
    """The demo's own reading of a normalised request, if it has one."""
    return getattr(_MODULES[name], "extract", None)


def runner(name: str) -> Callable[[dict, str], DemoOutput]:
    """The demo's run function: (validated params, device) -> DemoOutput."""
    return _MODULES[name].run


# -- demo detection ---------------------------------------------------------------------------------------
def scores(norm: str) -> list[tuple[int, str]]:
    out = []
    for spec in DEMOS:
        s = sum(w for pat, w in spec.keywords if re.search(pat, norm))
        if "_" in spec.name and re.search(rf"\b{spec.name}\b|\b{spec.name.replace('_', ' ')}\b", norm):
            s += 10
        out.append((s, spec.name))
    return sorted(out, key=lambda x: -x[0])


SIMILAR_CHARS = 100  # string similarity looks at the request's start: quadratic work, bounded


def nearest(text: str, n: int = 3) -> tuple[str, ...]:
    """Demos closest to a request: keyword scores first, then string similarity to names and examples."""
    norm = normalize_demo_request(text[:MAX_TEXT])
    ranked = [name for s, name in scores(norm) if s > 0]
    head = norm[:SIMILAR_CHARS]
    sim = sorted(
        DEMOS,
        key=lambda d: (
            -max(
                difflib.SequenceMatcher(None, head, x.lower()).ratio()
                for x in (d.name, d.summary, *d.examples)
            )
        ),
    )
    for d in sim:
        if d.name not in ranked:
            ranked.append(d.name)
    return tuple(ranked[:n])


# -- one parameter across demos -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SharedParam:
    """A parameter name as every demo that takes it does: the widest bounds among them (each demo still
    checks its own) and the demos, in catalogue order. For one form field serving several demos, like the
    bot's ``/demo`` options."""

    name: str
    kind: str
    lo: float | None
    hi: float | None
    demos: tuple[str, ...]


def shared_param(name: str) -> SharedParam:
    takers = [(d.name, p) for d in DEMOS for p in d.params if p.name == name]
    if not takers:
        raise KeyError(f"no demo takes a parameter {name!r}")
    kinds = {p.kind for _, p in takers}
    if len(kinds) != 1:
        raise ValueError(f"{name} is of several kinds: {sorted(kinds)}")
    los, his = [p.lo for _, p in takers], [p.hi for _, p in takers]
    return SharedParam(
        name=name,
        kind=kinds.pop(),
        lo=None if None in los else min(los),
        hi=None if None in his else max(his),
        demos=tuple(d for d, _ in takers),
    )
