"""Feature extensions: one package per feature, each with a ``setup(bot)``; ``TutorBot`` loads them all."""

from __future__ import annotations

import importlib
import pkgutil


def walk_extensions() -> tuple[str, ...]:
    """Every extension package under ``bot.exts`` (a package with a ``setup``), in a stable order."""
    found = []
    for module in pkgutil.iter_modules(__path__, f"{__name__}."):
        private = module.name.rsplit(".", 1)[-1].startswith("_")
        if module.ispkg and not private and hasattr(importlib.import_module(module.name), "setup"):
            found.append(module.name)
    return tuple(sorted(found, key=lambda name: (not name.endswith(".core"), name)))
