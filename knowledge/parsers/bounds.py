"""Bounds on what a user's file can make the parsers do, and the YAML/JSON loaders that enforce them.

A deck is at most ``MAX_FILE_BYTES`` (checked by the loader); within that, these limits keep every parser
linear in time and memory and every failure a :class:`ParseError`:

- ``MAX_ENTRIES`` entries per file: more is refused with a message saying so (split the file).
- YAML (front matter, ``manifest.yaml``) is loaded by :class:`BoundedLoader`: ``safe_load`` rules, but no
  aliases (``*name``: a few hundred bytes of nested aliases expand to gigabytes, the "billion laughs"),
  nesting at most ``MAX_NESTING`` deep, and at most ``MAX_FRONT_MATTER_BYTES`` / ``MAX_MANIFEST_BYTES``.
- JSON nesting is checked before parsing (``MAX_NESTING``; a deck needs three levels), so a deeply nested
  file is refused with its line instead of exhausting Python's recursion limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import yaml

from knowledge.errors import ParseError, excerpt

MAX_ENTRIES = 100_000
MAX_NESTING = 32
MAX_FRONT_MATTER_BYTES = 64 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024


def too_many_entries(path: str) -> ParseError:
    return ParseError(
        path, None, f"more than {MAX_ENTRIES:,} entries; split the file into decks of at most {MAX_ENTRIES:,}"
    )


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases and nesting deeper than ``MAX_NESTING``."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here", self.peek_event().start_mark
            )
        if self._depth >= MAX_NESTING:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_NESTING} levels deep", self.peek_event().start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str, path: str, first_line: int = 1, what: str = "YAML") -> Any:
    """Parse ``text`` with :class:`BoundedLoader`; any failure is a :class:`ParseError` at its line.

    ``first_line`` is the file line ``text`` starts on (front matter starts on line 2).
    """
    try:
        return yaml.load(text, Loader=BoundedLoader)  # BoundedLoader is a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + first_line if mark is not None else first_line
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ParseError(path, line, f"invalid {what}: {excerpt(problem)}") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # ValueError: an integer of more than 4300 digits, an impossible date (2024-13-45).
        raise ParseError(path, first_line, f"invalid {what}: {_problem(exc)}") from None


# A JSON string, or what is left of the text after an unterminated one (possessive: linear time). Where it
# ends differs from json's idea only after the point json itself fails, so brackets json would nest are
# exactly the ones outside these matches.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)


def _nesting_too_deep(text: str) -> int | None:
    """The line on which brackets outside strings nest past ``MAX_NESTING``, if they do."""
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return None
    blanked = _JSON_STRING.sub('""', text).encode()  # strings hold no brackets and (valid) no newlines
    codes = np.frombuffer(blanked, dtype=np.uint8)
    opens = (codes == ord("[")) | (codes == ord("{"))
    closes = (codes == ord("]")) | (codes == ord("}"))
    depth = np.cumsum(opens.astype(np.int32) - closes, dtype=np.int32)
    over = np.flatnonzero(depth > MAX_NESTING)
    return blanked.count(b"\n", 0, int(over[0])) + 1 if len(over) else None


def load_json(text: str, path: str, line: int | None = None) -> Any:
    """``json.loads`` with nesting at most ``MAX_NESTING``; any failure is a :class:`ParseError`.

    ``line``: the file line of ``text`` (a JSONL line); None for a whole file (lines counted in ``text``).
    """
    deep = _nesting_too_deep(text)
    if deep is not None:
        at = line if line is not None else deep
        raise ParseError(path, at, f"JSON nested more than {MAX_NESTING} levels deep (a deck needs 3)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(path, line if line is not None else exc.lineno, f"invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # an integer of more than 4300 digits
        raise ParseError(path, line, f"invalid JSON: {_problem(exc)}") from None


def _problem(exc: BaseException) -> str:
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "a number with more than 4300 digits"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return excerpt(str(exc))
