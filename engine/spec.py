"""Plain data crossing the engine's boundaries: parameter and demo specs, requests and results.

Everything here is frozen and serialisable (JSON for requests, JSON or pickle for results) so a job can move
from an in-process call to a worker process, and later to a remote worker pool, without changing shape.
Nothing here imports torch or matplotlib. The demo modules (`engine.demos`) declare their specs with these
classes, and with the few things several of them share (the seed parameter, the conv-layer help and
limit, the titles of the knowledge-base documents they cite).
"""

from __future__ import annotations

import base64
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from engine.errors import BadParameter

# One number token, read whole or not at all: possessive quantifiers and atomic groups, so a regex built on it
# can never backtrack into a number (no "1" out of "1e12", no super-linear matching on long digit runs).
# inf / infinity / nan are numbers too, so that they are refused by a parameter's bounds, never skipped.
NUM_RE = (
    r"[-+]?+(?:(?>\d++(?:\.(?!\.)\d*+)?+|\.\d++)(?>e[-+]?+\d++)?+"
    r"|(?<![a-z])(?:infinity|inf|nan)(?![a-z]))"
)
_NUMBER_TEXT = re.compile(rf"\s*(?:{NUM_RE})\s*", re.I)
_INTEGER_TEXT = re.compile(r"\s*[-+]?\d{1,30}\s*")
# A number with thousands separators ("1,200", "1,000,000.5"): read whole where one number is expected. Lists
# are split on commas before their items are read, so "3,224,224" as a shape stays three numbers.
GROUPED_RE = r"[-+]?[1-9]\d{0,2}(?:,\d{3})++(?:\.\d++)?+"
_GROUPED_TEXT = re.compile(rf"\s*{GROUPED_RE}\s*")
# a parameter given as text (a layer list, a matrix, a number): longer is refused unread
MAX_VALUE_CHARS = 2000

LAYER_FIELDS = ("kernel", "stride", "padding", "dilation")
LAYER_BOUNDS = {"kernel": (1, 15), "stride": (1, 8), "padding": (0, 16), "dilation": (1, 16)}


@dataclass(frozen=True)
class ParamSpec:
    """One typed, bounded parameter. `kind` is one of: int, float, bool, choice, choices, ints, floats,
    layers, matrix, image (a picture of the user's: PNG/JPEG bytes or base64 in, a small grayscale
    matrix out). `words` are the plain-language names the parser looks for ("10 classes", "lr 0.1").
    Written with keyword arguments; `choices` and `words` may be lists, `aliases` a dict {spoken: choice}."""

    name: str
    kind: str
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()  # (spoken form, choice)
    min_len: int = 1
    max_len: int = 1
    words: tuple[str, ...] = ()
    number_before: bool = False  # "10 classes": the number may precede the word
    optional: bool = False  # None is allowed (meaning "demo picks")

    def __post_init__(self) -> None:
        # a spec is written with lists and an alias dict ({"fc": "linear"}); it is kept as tuples
        for key in ("choices", "words"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        aliases = self.aliases.items() if isinstance(self.aliases, dict) else self.aliases
        object.__setattr__(self, "aliases", tuple((str(a), str(c)) for a, c in aliases))

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "default": self.default, "help": self.help}
        if self.lo is not None:
            out["min"] = self.lo
        if self.hi is not None:
            out["max"] = self.hi
        if self.choices:
            out["choices"] = list(self.choices)
        if self.kind in ("choices", "ints", "floats", "layers", "matrix"):
            out["min_len"], out["max_len"] = self.min_len, self.max_len
        return out

    # -- coercion -------------------------------------------------------------------------------------
    def coerce(self, value: Any, demo: str = "") -> Any:
        """Turn a JSON value or a CLI string into this parameter's type, enforcing the bounds.

        Every count and size is checked against its bound before anything proportional to it is built, and
        anything else than a `BadParameter` (an overflow, a huge integer's text, a deep list) is a bug."""
        where = f"{demo}: {self.name}" if demo else self.name
        if value is None:
            if self.optional:
                return None
            raise BadParameter(f"{where} is required ({self.help})")
        if isinstance(value, str) and self.kind != "image":
            if len(value) > MAX_VALUE_CHARS:
                raise BadParameter(
                    f"{where}: {len(value)} characters is too long (at most {MAX_VALUE_CHARS})"
                )
            if value.strip().lower() in ("none", "auto", "default") and self.optional:
                return None
        kind = self.kind
        if kind in ("int", "float") and isinstance(value, str) and value.strip().endswith("%"):
            value = self._percent(value, where)
        if kind == "int":
            return self._bound(_to_int(value, where), where, value)
        if kind == "float":
            return self._bound(_to_float(value, where, finite=False), where, value)
        if kind == "bool":
            return _to_bool(value, where)
        if kind == "choice":
            return self._choice(value, where)
        if kind == "choices":
            items = _split(value) if isinstance(value, str) else list(_as_list(value, where))
            if len(items) == 1 and isinstance(items[0], str) and items[0].strip().lower() == "all":
                return list(self.choices)
            out = []
            for item in items:
                c = self._choice(item, where)
                if c not in out:
                    out.append(c)
            return self._length(out, where)
        if kind in ("ints", "floats"):
            items = _split(value, where) if isinstance(value, str) else list(_as_list(value, where))
            self._length(items, where)  # the count first: nothing is converted past the limit
            if kind == "ints":
                return [self._bound(_to_int(v, where), where, v) for v in items]
            return [self._bound(_to_float(v, where, finite=False), where, v) for v in items]
        if kind == "layers":
            return self._length(_to_layers(value, where, self.min_len, self.max_len), where)
        if kind == "matrix":
            return _to_matrix(value, where, self.max_len, self.lo, self.hi)
        if kind == "image":
            return _to_image(value, where, self.max_len)
        raise BadParameter(f"{where}: unknown parameter kind {kind!r}")  # pragma: no cover

    @property
    def is_fraction(self) -> bool:
        """A rate, probability or fraction: a float whose whole range lies within [0, 1]."""
        return (
            self.kind == "float"
            and self.lo is not None
            and self.hi is not None
            and 0 <= self.lo <= self.hi <= 1
        )

    def _percent(self, value: str, where: str) -> float:
        """ "20%" as 0.2 for a fraction (a drop rate, a probability); refused, as written, for anything else."""
        text = value.strip()
        if not self.is_fraction:
            raise BadParameter(
                f"{where} must be {self.range_text() or 'a number'}, not a percentage (got {_shown_text(text)})"
            )
        v = _to_float(text[:-1], where, finite=False)
        if not (math.isfinite(v) and self.lo <= v / 100 <= self.hi):
            raise BadParameter(f"{where} must be {self.range_text()} (got {_shown_text(text)})")
        return v / 100

    def range_text(self) -> str:
        """The allowed values in words, e.g. "between 2 and 10000" ("" when unbounded)."""
        return _range_text(self.lo, self.hi)

    def _bound(self, v: float, where: str, raw: Any = None):
        """`v` within [lo, hi]; inf, -inf and nan are refused here, with the range, like any other value."""
        finite = not isinstance(v, float) or math.isfinite(v)
        if finite and (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi):
            return v
        got = _shown_number(v, raw)
        if isinstance(v, float) and math.isnan(v):
            rng = self.range_text()
            raise BadParameter(f"{where} must be a finite number{' ' + rng if rng else ''} (got {got})")
        raise BadParameter(f"{where} must be {self.range_text() or 'a finite number'} (got {got})")

    def _length(self, items: list, where: str) -> list:
        if not self.min_len <= len(items) <= self.max_len:
            raise BadParameter(_length_message(where, self.min_len, self.max_len, len(items)))
        return items

    def _choice(self, value: Any, where: str) -> str:
        try:
            key = re.sub(r"[\s\-]+", "_", str(value).strip().lower())
        except ValueError:  # an int too large to print
            key = ""
        if key in self.choices:
            return key
        for spoken, choice in self.aliases:
            if key == re.sub(r"[\s\-]+", "_", spoken):
                return choice
        raise BadParameter(f"{where} must be one of {', '.join(self.choices)} (got {_shown(value)})")


def _length_message(where: str, lo: int, hi: int, n: int) -> str:
    if lo == hi:
        return f"{where} takes exactly {lo} values (got {n})"
    return f"{where} takes {lo} to {hi} values (got {n})"


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {_fmt(lo)} and {_fmt(hi)}"
    if lo is not None:
        return f"at least {_fmt(lo)}"
    if hi is not None:
        return f"at most {_fmt(hi)}"
    return ""


def _shown(value: Any, limit: int = 60) -> str:
    """A value quoted in an error message, cut short: a wrong value can be a whole uploaded file."""
    if isinstance(value, str | bytes | bytearray) and len(value) > 4 * limit:
        value = value[: 4 * limit]  # repr of a whole upload would be slow: only the start is shown
    try:
        text = repr(value)
    except ValueError:  # an int too large to print (sys.set_int_max_str_digits)
        text = f"a {value.bit_length()}-bit integer" if isinstance(value, int) else type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown_text(text: str, limit: int = 40) -> str:
    """A number as written, cut short: a 480-digit one is shown by its start and its length."""
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text)} characters)"


def _shown_number(v: float, raw: Any = None) -> str:
    """A refused number as the user wrote it ("1e12", "inf"), or formatted when it came as a number."""
    if isinstance(raw, str) and raw.strip():
        return _shown_text(raw.strip())
    if isinstance(raw, int) and not isinstance(raw, bool):  # 10**400 is too large, not "inf"
        return _fmt(raw)
    return _fmt(v)


def _fmt(v: float | None) -> str:
    if v is None:
        return "?"
    if isinstance(v, int) and v.bit_length() > 332:  # over 100 digits: said, not printed
        return f"a number of about {int(v.bit_length() * 0.30103)} digits"
    if isinstance(v, float) and (abs(v) >= 1e5 or (v != 0 and abs(v) < 1e-3)):
        return f"{v:g}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _as_list(value: Any, where: str) -> list:
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


_LEADING_ZERO = re.compile(r"[-+]?0\d")


def _split(text: str, where: str = "a list") -> list[str]:
    """A list given as text: "1, 2", "1;2", "1 and 2", "1 & 2" or "1 2 0.1" (spaces alone separate too).

    An item with a leading zero ("1,000,2", "1,05") is no list item anyone writes but a thousands group or a
    decimal comma: refused, never read as 0 or 5."""
    parts = [p for p in re.split(r"\s*+(?:,|;|\band\b|&)\s*+|\s++", text.strip().strip("[]()")) if p]
    odd = next((p for p in parts if _LEADING_ZERO.match(p)), None)
    if odd is not None:
        raise BadParameter(
            f"{where}: I can't read {_shown_text(text.strip())} as a list (an item {odd!r} starts with 0); "
            "write thousands without commas (1000) and decimals with a point (1.05)"
        )
    return parts


def _number(value: Any, where: str, what: str) -> int | float:
    """A number from JSON or text, as it is: 1e12, 10**400, inf and nan included, for the bounds to judge.

    Text is read by float() (linear in its length; "1e999" is inf, never an OverflowError) except short plain
    integers, which stay exact; thousands separators are read ("1,200" is 1200: a list never gets here, it is
    split first). Never raises anything but BadParameter."""
    if isinstance(value, bool):
        raise BadParameter(f"{where} must be {what} (got {_shown(value)})")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and len(value) <= MAX_VALUE_CHARS and _GROUPED_TEXT.fullmatch(value):
        value = value.replace(",", "")
    if isinstance(value, str) and len(value) <= MAX_VALUE_CHARS and _NUMBER_TEXT.fullmatch(value):
        try:
            return int(value) if _INTEGER_TEXT.fullmatch(value) else float(value)
        except ValueError:  # pragma: no cover - the patterns only pass what int()/float() read
            pass
    raise BadParameter(f"{where} must be {what} (got {_shown(value)})")


def _to_int(value: Any, where: str) -> int | float:
    """An integer; or inf, -inf, nan as floats, which the caller's bounds refuse with the allowed range."""
    v = _number(value, where, "an integer")
    if isinstance(v, float):
        if not math.isfinite(v):
            return v
        if not v.is_integer():
            raise BadParameter(f"{where} must be an integer (got {_shown_number(v, value)})")
        return int(v)
    return v


def _to_float(value: Any, where: str, finite: bool = True) -> float:
    """A float; with ``finite=False`` inf and nan come back for the caller's bounds to refuse with the range."""
    v = _number(value, where, "a number")
    try:
        f = float(v)
    except OverflowError:  # an int beyond float range
        f = math.inf if v > 0 else -math.inf
    if finite and not math.isfinite(f):
        got = _shown_number(f, value)
        if _written_non_finite(v, value):
            raise BadParameter(f"{where} must be a finite number (got {got})")
        raise BadParameter(f"{where} must be a finite number ({got} is too large)")
    return f


def _written_non_finite(v: Any, raw: Any) -> bool:
    """Whether a value that is not finite was meant so (inf, nan), not a finite number too large for a float."""
    if isinstance(raw, str):
        return bool(re.search(r"inf|nan", raw, re.I))
    return isinstance(v, float) and not math.isfinite(v)


def _to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    s = value.strip().lower() if isinstance(value, str) else None
    if s in ("1", "true", "yes", "on", "y"):
        return True
    if s in ("0", "false", "no", "off", "n"):
        return False
    raise BadParameter(f"{where} must be true or false (got {_shown(value)})")


def _to_layers(value: Any, where: str, min_len: int = 1, max_len: int = 12) -> list[dict]:
    """Layers as "3:2,3:2" (kernel:stride[:padding[:dilation]]), lists of such lists, or dicts.

    The number of layers is checked before any layer is built."""
    if isinstance(value, str):
        items: list = [s.split(":") for s in re.split(r"[,\s]++", value.strip()) if s]
    else:
        items = list(_as_list(value, where))
    if not min_len <= len(items) <= max_len:
        raise BadParameter(_length_message(where, min_len, max_len, len(items)))
    layers = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            unknown = set(map(str, item)) - set(LAYER_FIELDS)
            if unknown:
                raise BadParameter(f"{where}: layer {i + 1} has unknown fields {sorted(unknown)}")
            raw = {k: item.get(k) for k in LAYER_FIELDS if item.get(k) is not None}
        else:
            vals = list(item) if isinstance(item, list | tuple) else [item]
            if not 1 <= len(vals) <= 4:
                raise BadParameter(f"{where}: layer {i + 1} must be kernel[:stride[:padding[:dilation]]]")
            raw = dict(zip(LAYER_FIELDS, vals, strict=False))
        layer = {"kernel": 3, "stride": 1, "padding": 0, "dilation": 1}
        for k, v in raw.items():
            n = _to_int(v, f"{where}[{i + 1}].{k}")
            lo, hi = LAYER_BOUNDS[k]
            if not lo <= n <= hi:  # False for nan too
                raise BadParameter(
                    f"{where}: layer {i + 1} {k} must be between {lo} and {hi} (got {_shown_number(n, v)})"
                )
            layer[k] = n
        layers.append(layer)
    return layers


MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_IMAGE_PIXELS = 16_000_000  # refuse decompression bombs before decoding (a 16 MP photo is plenty)


def _to_image(value: Any, where: str, max_side: int) -> list[list[float]]:
    """An uploaded picture -> darkness in [0, 1] (ink = 1, like the digits), at most ``max_side`` a side.

    Accepts the file's bytes, the same as base64 text (JSON requests), or an already converted matrix
    (a resolved request validated again, e.g. by the worker queue)."""
    if isinstance(value, list):
        rows = _as_list(value, where)
        if not rows or not all(isinstance(r, list) and len(r) == len(rows[0]) for r in rows):
            raise BadParameter(f"{where}: an image matrix needs equal rows")
        if len(rows) > max_side or len(rows[0]) > max_side or not rows[0]:
            raise BadParameter(f"{where}: an image matrix is at most {max_side}x{max_side}")
        out = [[_to_float(v, where) for v in row] for row in rows]
        if any(not 0.0 <= v <= 1.0 for row in out for v in row):
            raise BadParameter(f"{where}: image values must lie in [0, 1]")
        return out
    if isinstance(value, str):
        if len(value) > (MAX_IMAGE_BYTES + 2) // 3 * 4:  # base64 of more than the limit: refused undecoded
            raise BadParameter(f"{where}: the image is over {MAX_IMAGE_BYTES // 2**20} MB; the limit is 8 MB")
        try:
            value = base64.b64decode(value, validate=True)
        except ValueError:
            raise BadParameter(f"{where}: expected image bytes or base64 text") from None
    if not isinstance(value, bytes | bytearray):
        raise BadParameter(f"{where}: expected an image file, not {type(value).__name__}")
    if len(value) > MAX_IMAGE_BYTES:
        raise BadParameter(f"{where}: the image is {len(value) / 2**20:.1f} MB; the limit is 8 MB")
    import warnings

    with _DECODING, warnings.catch_warnings():  # one picture at a time: full-size decodes are memory-hungry
        warnings.simplefilter("ignore")  # Pillow warns about damaged EXIF etc.; the outcome is what counts
        width, height, pixels = _decode(value, where, max_side)
    if min(width, height) < 3:
        raise BadParameter(f"{where}: the image is too small ({width}x{height}); at least 3x3")
    return (1.0 - pixels).round(4).tolist()


_DECODING = threading.Lock()
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


def _decode(data: bytes, where: str, max_side: int):
    """(width, height, gray in [0, 1]) of a picture, shrunk to ``max_side``; any failure is a BadParameter."""
    import io

    import numpy as np
    from PIL import Image, ImageOps

    unreadable = BadParameter(f"{where}: not an image I can read ({', '.join(IMAGE_FORMATS)})")
    try:
        img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError:
        raise BadParameter(f"{where}: the image is far too large; at most 16 megapixels") from None
    except Exception:  # Pillow raises many kinds (SyntaxError, struct.error, ...) for broken files
        raise unreadable from None
    with img:
        if img.width * img.height > MAX_IMAGE_PIXELS:
            raise BadParameter(f"{where}: the image is {img.width}x{img.height}; at most 16 megapixels")
        try:
            img.draft("L", (max_side * 4, max_side * 4))  # JPEG: decode at a reduced size
            img = ImageOps.exif_transpose(img)  # phone photos: upright as the user saw them
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16/32-bit: scale, do not clip at 255
                deep = np.asarray(img, dtype=np.float64)
                top = 65535.0 if img.mode.startswith("I;16") else max(float(deep.max()), 1.0)
                img = Image.fromarray(np.clip(deep / top * 255.0, 0, 255).astype(np.uint8), "L")
            if img.has_transparency_data:  # transparent means background: paper-white, not ink
                img = img.convert("RGBA")
                img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # small before compositing
                img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img)
            gray = img.convert("L")
            gray.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            pixels = np.asarray(gray, dtype=np.float32) / 255.0
        except BadParameter:
            raise
        except Exception:
            raise unreadable from None
    return gray.size[0], gray.size[1], pixels


def _to_matrix(
    value: Any, where: str, max_side: int, lo: float | None, hi: float | None
) -> list[list[float]]:
    """A small matrix as nested lists or text like "[[0,-1,0],[-1,5,-1],[0,-1,0]]" or "0 -1 0; -1 5 -1; ..."."""
    if isinstance(value, str):
        text = value.strip()
        rows_text = re.findall(r"\[([^\[\]]*+)\]", text) if "[" in text else re.split(r"[;/|]", text)
        cells = [re.findall(NUM_RE, r, re.I) for r in rows_text if r.strip()]
    else:
        cells = [_as_list(r, where) for r in _as_list(value, where)]
    if not cells or any(len(r) != len(cells[0]) for r in cells):
        raise BadParameter(f"{where} must be a rectangular matrix, e.g. [[0,-1,0],[-1,5,-1],[0,-1,0]]")
    if len(cells) > max_side or len(cells[0]) > max_side:  # the size first, then the numbers
        raise BadParameter(f"{where} may be at most {max_side}x{max_side} (got {len(cells)}x{len(cells[0])})")
    rows = []
    for r in cells:
        rows.append([])
        for raw in r:
            x = _to_float(raw, where, finite=False)
            if not math.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
                raise BadParameter(
                    f"{where} entries must be {_range_text(lo, hi) or 'finite'} (got {_shown_number(x, raw)})"
                )
            rows[-1].append(x)
    return rows


# The knowledge-base documents the demos cite, by title: the title the knowledge base gives the document
# (knowledge/sources/manifest.yaml), so that a caller can find the entry; the engine knows no file names.
FASTBOOK_CH4 = "Fastbook ch. 4 questionnaire: Under the Hood: Training a Digit Classifier (community answers)"
FASTBOOK_CH5 = "Fastbook ch. 5 questionnaire: Image Classification (community answers)"
FASTBOOK_CH13 = "Fastbook ch. 13 questionnaire: Convolutional Neural Networks (community answers)"
FASTBOOK_CH13_SET2 = "Fastbook ch. 13 questionnaire: Assignment 03 Solutions (second answer set)"
CS231N_CARDS = "CS231n midterm study flash cards"


@dataclass(frozen=True)
class KBRef:
    """A knowledge-base entry a demo illustrates: its document's title and the entry's question, as the
    document writes it. Resolving the title to a document (the bot's "Show me") is the caller's business."""

    title: str
    question: str

    def cite(self) -> str:
        return f"{self.title}: “{self.question}”"


@dataclass(frozen=True)
class DemoSpec:
    """A demo's catalogue entry, declared in its own module (``engine/demos/<name>.py``) beside its
    extractor and its run function: everything the bot needs for autocomplete and slash options, and the
    parser for keywords, without importing torch.

    ``keywords`` weigh regular expressions on the normalised request (a dict ``{pattern: weight}`` is
    accepted); ``own`` names the parameters the demo's extractor reads itself (the generic "word number"
    reading would misfire on them); ``singular`` those whose names are read in the singular only, never
    after a number ("class 2" is a target, "3 classes" counts the logits); ``order`` places the demo in
    the catalogue (listing, autocomplete, and ties between equally likely demos)."""

    name: str
    summary: str
    params: tuple[ParamSpec, ...]
    examples: tuple[str, ...]
    keywords: tuple[tuple[str, int], ...]
    kb: tuple[KBRef, ...] = ()
    budget_s: float = 20.0
    arithmetic: bool = False
    own: tuple[str, ...] = ()
    singular: tuple[str, ...] = ()
    order: int = 1000

    def __post_init__(self) -> None:
        keywords = self.keywords.items() if isinstance(self.keywords, dict) else self.keywords
        object.__setattr__(self, "keywords", tuple((str(p), int(w)) for p, w in keywords))
        for key in ("params", "examples", "kb", "own", "singular"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        names = [p.name for p in self.params]
        unknown = (set(self.own) | set(self.singular)) - set(names)
        if len(set(names)) != len(names) or unknown:
            raise ValueError(f"{self.name}: parameters {names}; own/singular name others: {sorted(unknown)}")

    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    @property
    def takes_image(self) -> bool:
        """Whether a user's picture can be passed (a parameter of kind "image", not merely named so)."""
        return any(p.kind == "image" for p in self.params)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "summary": self.summary,
            "examples": list(self.examples),
            "params": [p.to_dict() for p in self.params],
            "kb": [{"title": r.title, "question": r.question} for r in self.kb],
            "budget_s": self.budget_s,
        }


# Shared by several demos' specs.
MAX_LAYERS = 12  # the most conv layers a demo takes (a layer count past it is refused before any is built)
LAYERS_HELP = "conv layers as kernel:stride[:padding[:dilation]], comma-separated, e.g. 3:2,3:2"
SEED = ParamSpec(
    name="seed",
    kind="int",
    default=0,
    help="random seed (results are deterministic for a seed)",
    lo=0,
    hi=2**31 - 1,
    words=("seed",),
)


def layer_str(layer: dict) -> str:
    """A conv layer for a label: "3x3 s2 p1", with " d2" when dilated."""
    s = f"{layer['kernel']}x{layer['kernel']} s{layer['stride']} p{layer['padding']}"
    return s + (f" d{layer['dilation']}" if layer["dilation"] > 1 else "")


@dataclass(frozen=True)
class DemoRequest:
    """The job: a demo name and its (already validated) parameters. Plain data; `text` is the original
    phrasing when there was one, kept for echoing."""

    demo: str
    params: dict = field(default_factory=dict)
    text: str | None = None

    def to_dict(self) -> dict:
        return {"demo": self.demo, "params": dict(self.params), "text": self.text}

    @classmethod
    def from_dict(cls, d: dict) -> DemoRequest:
        if not isinstance(d, dict) or "demo" not in d:
            raise BadParameter('a structured request needs {"demo": name, "params": {...}}')
        params = d.get("params") or {}
        if not isinstance(params, dict):
            raise BadParameter("params must be an object of name: value")
        if not isinstance(d["demo"], str):
            raise BadParameter(f"the demo is named by text (got {_shown(d['demo'])})")
        text = d.get("text")
        return cls(demo=d["demo"], params=dict(params), text=text if isinstance(text, str) else None)


@dataclass(frozen=True)
class DemoResult:
    """What a demo produced. `numbers` are the key numbers (JSON-safe), `images` PNG bytes."""

    demo: str
    params: dict
    numbers: dict
    text: str
    images: tuple[bytes, ...]
    device: str
    elapsed_ms: float

    def to_dict(self, images: str = "bytes") -> dict:
        """`images="base64"` gives a JSON-safe dict; "bytes" keeps raw PNG bytes (pickle/msgpack)."""
        imgs = (
            [base64.b64encode(b).decode("ascii") for b in self.images]
            if images == "base64"
            else list(self.images)
        )
        return {
            "demo": self.demo,
            "params": self.params,
            "numbers": self.numbers,
            "text": self.text,
            "images": imgs,
            "device": self.device,
            "elapsed_ms": self.elapsed_ms,
        }

    @classmethod
    def from_dict(cls, d: dict) -> DemoResult:
        imgs = tuple(b if isinstance(b, bytes) else base64.b64decode(b) for b in d["images"])
        return cls(d["demo"], d["params"], d["numbers"], d["text"], imgs, d["device"], d["elapsed_ms"])


@dataclass(frozen=True)
class DemoOutput:
    """What a demo function returns; the runner adds timing, device, the echoed params and citations."""

    numbers: dict
    text: str
    images: tuple[bytes, ...]
    ignored: tuple[
        str, ...
    ] = ()  # parameters this run did not use (not echoed back, e.g. digit for an upload)
