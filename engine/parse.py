"""Plain language -> DemoRequest, with regular expressions only: user text is never evaluated.

Pipeline: normalise (Markdown emphasis dropped, number words, unicode arrows, "3 x 3", 10^12, 2.5k, 1,000),
pick the demo by weighted keywords (or an explicit leading demo name), then extract parameters: generic
"word number" pairs from the parameter specs, demo-specific shapes ("two stride-2 convs", "W=227 F=11 S=4
P=0", "conv2d 3->64 kernel 7"), then explicit key=value pairs, which win. The result holds raw values;
validation happens in `engine.core`.

A number is read whole or refused, never read in part: where one number is read, "1,200" is 1200 and "1,5"
is refused; where a list is read, commas separate items (kernels 3,3,3; a shape 3,224,224); a chain of
powers and a spaced "10 ** 12" are refused; and a number the request clearly gives that no parameter took
is refused by the rules in `_refuse_stray_numbers`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re

from engine.catalogue import BY_NAME, DEMOS
from engine.errors import BadParameter, UnknownDemo
from engine.spec import GROUPED_RE, LAYER_BOUNDS, NUM_RE, DemoRequest, ParamSpec

MAX_TEXT = 500
# Numbers are read whole (NUM_RE is possessive): "1e12", "1.5", "-3", "inf" and "nan" are one token each, so
# no pattern takes "1" out of "1e12" or "9" out of "10^9". An extractor hands the token on as text unless it
# is a plain integer; validation (engine.spec) then converts it and refuses it with the parameter's range.
NUM = NUM_RE
# a number token that does not continue a word, another number or a comma group ("000" of "1,000")
N = rf"(?<![\w.])(?<!\d,)(?:{NUM})"
INT = rf"{N}(?![\dx.])"
LIST = rf"{INT}(?:\s*+(?:,|\band\b|&)?\s*+(?<![\w.]){NUM}(?![\dx.]))*+"  # items after commas too
FLIST = rf"{NUM}(?:\s*+(?:,|\band\b|&)?\s*+{NUM})*+"
# Where ONE number is read (a scalar: "steps 1,200", "a 1,024 image"), the token runs on over commas with no
# space after them, so that "1,200" is read whole as 1200 and "1,5" or "3,4,5" is refused (_scalar), never
# read as its first part. Where a LIST is read (kernels 3,3,3, a shape 3,224,224, logits 2,1,0.1) commas
# separate items. "1,000" (a group that starts with 0) is a thousands separator everywhere: see normalise.
SB = rf"(?:{NUM})(?:,\d++(?:\.\d++)?+)*+"  # the same after a separator that marks its start ("=", "..")
S = rf"(?<![\w.])(?<!\d,){SB}"
PCT = r"(?: ?%)?+"  # a percentage sign after a number: "20%", "20 %"
_GROUPED = re.compile(rf"{GROUPED_RE}{PCT}")
# the largest number any parameter takes (the seed, 2^31 - 1): past it, or not finite, a number in a request
# cannot mean anything the demos do, so it is refused rather than ignored (see _refuse_stray_numbers)
LARGEST_BOUND = max(
    [p.hi for d in DEMOS for p in d.params if p.hi is not None] + [hi for _, hi in LAYER_BOUNDS.values()]
)
MAX_LAYERS = max(p.max_len for d in DEMOS for p in d.params if p.kind == "layers")

_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "twenty": 20,
    "thirty": 30,
    "fifty": 50,
    "single": 1,
    "a single": 1,
    "a pair of": 2,
    "a couple of": 2,
    "couple of": 2,
    "twice": 2,
}


_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
# a power: "10^12", "10 ^ -3" ("**" has become "^" by then, see _unmark); a whole chain "2^3^2" is one match,
# so no part of it is read on its own (parse() refuses a chain: 2^3^2 is 512 to some and 64 to others). Not
# after "e+": the exponent of 1.5e+19 is not a base.
_POWER_OP = r"\s*+\^\s*+"
_POWER = re.compile(rf"(?<![\w.])(?<!e[-+])\d++(?:\.\d++)?+(?:{_POWER_OP}[-+]?+\d++(?:\.\d++)?+(?!\.?\d))++")
_POWER_CHAIN = re.compile(rf"\d++(?:\.\d++)?+(?:{_POWER_OP}[-+]?+\d++(?:\.\d++)?+){{2,}}+")
# 2.5k, 1m (2.5 thousand, 1 million); never after an exponent ("1e-3m" is refused by parse(), not 1e-3000000)
_SUFFIXED = re.compile(r"(?<![\w.])(?<!e[-+])(\d++(?:\.\d++)?+)([km])\b")
# a k/m suffix right after a number in e-form: "1e-3m" is not 1e-3 million to everyone
_EXP_SUFFIX = re.compile(r"\d(?:\.\d*+)?+e[-+]?+\d++[km]\b")
# "1_000" (Python's digit groups): read whole; any other "_" between digits is refused by parse()
_UNDERSCORED = re.compile(r"(?<![\w.])[1-9]\d{0,2}(?:_\d{3})++(?!\w)")
_DIGIT_UNDERSCORE = re.compile(r"\d_++\d")
# "one" as a pronoun ("a 3x4 tensor and a 1x4 one", "this one"): a word, not the number 1
_PRONOUN_ONE = re.compile(r"\b((?:a|an|the|this|that|which|each|another)\s+(?:[\w-]+\s+)?)one\b")
_ONE_MARK = "\x00"
_SUFFIXES = {"k": 1000, "m": 10**6}
# "1,000" and "2,050": a comma group starting with 0 is never a list ("1, 0"?), only a thousands separator
# (also right after the "x" of a size: "1,024x1,024")
_THOUSANDS = re.compile(r"(?:(?<![\w.,])|(?<=\dx))[1-9]\d{0,2}(?:,\d{3})++(?:\.\d++)?+(?![\d]|[.,]\d)")
_TIMES_TEN = re.compile(
    r"(?<![\w.])(\d++(?:\.\d++)?+)\s*+(?:x|\*|·)\s*+10\s*+(?:\^|\*\*)\s*+([-+]?+\d++(?:\.\d++)?+)(?!\.?\d)"
)
_SCALED = re.compile(rf"(?:(?<![\w.])(\d++(?:\.\d++)?+)[\s-]*+|\ban? )?\b({'|'.join(_SCALES)})s?\b(?! of\b)")


def _number_text(v: float) -> str:
    """A computed number as request text: exact digits up to 10^15, else short scientific ("1e+20", "inf")."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def _power(m: re.Match) -> str:
    """ "10^12", "10^-3" as the number they stand for; never big-integer arithmetic. A chain (which parse()
    refuses) is worked out right to left, as mathematics reads it: 2^3^2 = 2^9."""
    parts = re.split(_POWER_OP, m.group(0))
    try:
        v = float(parts[-1])
        for base in reversed(parts[:-1]):  # bases are unsigned: never a complex result
            v = float(base) ** v
    except OverflowError:
        return "inf"
    except ZeroDivisionError:  # 0^-1
        return "inf"
    return _number_text(v)


def _suffixed(m: re.Match) -> str:
    return _number_text(float(m.group(1)) * _SUFFIXES[m.group(2)])


def _thousands(m: re.Match) -> str:
    """ "1,000" -> "1000" when a group starts with 0; "3,224,224" (a shape, or 3224224) is left to context."""
    groups = m.group(0).split(",")
    # beside the "x" of a size ("1,200x1,200") a comma group is no list item: it separates thousands
    sized = m.string[m.end() : m.end() + 1] == "x" or m.string[max(0, m.start() - 1) : m.start()] == "x"
    if sized or any(g.startswith("0") for g in groups[1:]):
        return m.group(0).replace(",", "")
    return m.group(0)


# Markdown emphasis a chat message may carry (Discord shows it, the user does not mean it): **bold**,
# __underline__, *italic*, _italic_, `code`, ~~strike~~. "**" between two numbers with no space is a power.
_MD_POWER = re.compile(r"(?<=\d)\*\*(?=[-+]?\d)")
# "10 ** 12": a power, or the end and start of two bold spans? refused, not guessed
_SPACED_POWER = re.compile(r"\d[\d.]*+\s++\*\*\s++[-+]?+\d[\d.]*+")
_MD_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\w*])")
_MD_UNDERSCORE = re.compile(r"(?<![\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?!\w)")


def _unmark(text: str) -> str:
    """The text without Markdown emphasis; "10**12" keeps its power, written "10^12"."""
    t = _MD_POWER.sub("^", text)
    t = t.replace("**", "").replace("__", "").replace("~~", "").replace("`", " ")
    t = _MD_ITALIC.sub(r"\1", t)
    return _MD_UNDERSCORE.sub(r"\1", t)


def _times_ten(m: re.Match) -> str:
    """ "3 x 10^8" as 3e8 (text, as written); a fractional power as its value."""
    if "." not in m.group(2):
        return f"{m.group(1)}e{m.group(2)}"
    try:
        return _number_text(float(m.group(1)) * 10.0 ** float(m.group(2)))
    except OverflowError:
        return "inf"


def _scaled(m: re.Match) -> str:
    base = float(m.group(1)) if m.group(1) else 1.0
    return _number_text(base * _SCALES[m.group(2)])


def normalise(text: str) -> str:
    """Lower-case, unify arrows and multiplication signs, spell numbers as digits.

    Markdown emphasis is dropped first (**2** is 2). Numbers written for humans become one token the parser
    reads: "10^12", "2**10" and "3 x 10^8" as their value, "two million" and "2m" as 2000000, "2.5k" as 2500,
    "1,000" as 1000 (a group that starts with 0 is never a list), "infinity" and "∞" as inf. Nothing here
    does work proportional to a number's value: powers are float arithmetic, huge results are written in
    scientific form."""
    t = _unmark(text).lower().strip()
    t = t.replace("×", "x").replace("→", "->").replace("=>", "->").replace("–", "-").replace("—", "-")
    t = t.replace("−", "-").replace("∞", "inf").replace("’", "'").replace("“", '"').replace("”", '"')
    t = re.sub(r"(?<![a-z])infinity(?![a-z])", "inf", t)
    t = re.sub(r"\b(one|1)[\s-]?cycle\b", "onecycle", t)
    t = re.sub(r"\bone[\s-]nn\b", "1-nn", t)
    t = t.replace(_ONE_MARK, " ")
    t = _PRONOUN_ONE.sub(rf"\1{_ONE_MARK}", t)  # a pronoun stays a word: marked, restored below
    for word, n in sorted(_WORDS.items(), key=lambda kv: -len(kv[0])):
        t = re.sub(rf"\b{word}\b", str(n), t)
    t = t.replace(_ONE_MARK, "one")
    t = _UNDERSCORED.sub(lambda m: m.group(0).replace("_", ""), t)
    t = _TIMES_TEN.sub(_times_ten, t)
    t = _POWER.sub(_power, t)
    t = _SCALED.sub(_scaled, t)
    t = _SUFFIXED.sub(_suffixed, t)
    t = _THOUSANDS.sub(_thousands, t)
    # "3 x 3", "32 by 32", "5*5": a size or a kernel (a power is "^" by now: "**" became one, 3*10^8 is 3e8)
    t = re.sub(r"(\d)\s*(?:x|\bby\b|\*)\s*(\d)", r"\1x\2", t)
    t = re.sub(r"\b(stride|dilation|padding|pad)[-_]?(\d)", r"\1 \2", t)
    t = re.sub(r"\s+", " ", t)
    return t


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
    norm = normalise(text[:MAX_TEXT])
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


def _unknown(text: str, why: str) -> UnknownDemo:
    near = nearest(text)
    ex = tuple(BY_NAME[n].examples[0] for n in near)
    hint = "; ".join(f"{n} (e.g. “{e}”)" for n, e in zip(near, ex, strict=True))
    return UnknownDemo(f"{why}. Nearest demos: {hint}. `tutor demo --list` shows them all.", near, ex)


def _quoted(text: str, limit: int = 120) -> str:
    """The request echoed in a message, cut short."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def detect(norm: str, original: str) -> str:
    ranked = scores(norm)
    (best, name), (second, other) = ranked[0], ranked[1]
    if best < 3:
        raise _unknown(original, f"I couldn't tell which demo {_quoted(original)} asks for")
    if best - second < 2 and best < 2 * second:
        near = (name, other)
        ex = tuple(BY_NAME[n].examples[0] for n in near)
        raise UnknownDemo(
            f"{_quoted(original)} is ambiguous between {name} and {other}; say which, e.g. “{ex[0]}” or “{ex[1]}”",
            near,
            ex,
        )
    return name


# -- parameter extraction -----------------------------------------------------------------------------------
def _val(tok: str) -> int | str:
    """A number token as a parameter value: a plain integer as int, anything else ("1e12", "2.5", "inf") as
    its text, which validation converts and refuses with the parameter's range if it is out of it."""
    return int(tok) if tok.isascii() and tok.isdigit() and len(tok) <= 30 else tok


def _cut(tok: str, limit: int = 40) -> str:
    """A number as written, for a message: a 400-digit one is cut short."""
    return tok if len(tok) <= limit else f"{tok[: limit - 1]}… ({len(tok)} characters)"


def _scalar(tok: str, where: str) -> int | str:
    """A number read where one number is expected, whole: "1,200" is 1200 and "20%" stays "20%" (validation
    reads it as 0.2 for a rate, refuses it elsewhere); a comma that does not separate thousands ("1,5",
    "1,2000", "3,4,5") is refused, never read in part."""
    if "," in tok and not _GROUPED.fullmatch(tok):
        raise BadParameter(
            f"{where} takes one number (got {_cut(tok)}); write a thousand as 1000 or 1,000 "
            "and a decimal with a point (1.5)"
        )
    return _val(tok.replace(",", ""))


def _items(s: str, where: str = "a list") -> list[str]:
    """The numbers of a list as written; an item with a leading zero ("3,1,000", "1,05") is no list item
    anyone writes, but a thousands group or a decimal comma, so it is refused rather than read as 0 or 5."""
    toks = re.findall(NUM, s)
    odd = next((t for t in toks if re.match(r"[-+]?0\d", t)), None)
    if odd is not None:
        raise BadParameter(
            f"{where}: I can't read {_cut(s.strip())} as a list (an item {odd!r} starts with 0); "
            "write thousands without commas (1000) and decimals with a point (1.05)"
        )
    return toks


def _ints(s: str, where: str = "a list") -> list[int | str]:
    return [_val(x) for x in _items(s, where)]


def _huge(tok: object) -> bool:
    """Whether a value cannot be meant as any parameter: not finite, or beyond every bound in the catalogue."""
    if isinstance(tok, str):
        try:
            v = float(tok)
        except ValueError:
            return False
    elif isinstance(tok, int | float) and not isinstance(tok, bool):
        v = tok
    else:
        return False
    return not math.isfinite(v) or abs(v) > LARGEST_BOUND


def _word_re(w: str, plural: bool = True) -> str:
    """A parameter's name as a pattern, with its plural unless ``plural`` is false ("class 2" is a target,
    "3 classes" or "classes 2 1 0" count or list them)."""
    if not plural:
        return r"\s*".join(re.escape(part) for part in w.split())
    base = w[:-1] if w.endswith("s") and not w.endswith("ss") else w
    return r"\s*".join(re.escape(part) for part in base.split()) + r"(?:e?s)?"


_NOT_LAYERS = r"(?!\s*layers?\b)"
# parameters whose names are read in the singular only, and never after a number: softmax's "target" is
# "class 2", while "3 classes" counts the logits and "classes 2 1 0" lists them
_SINGULAR = {("softmax", "target")}


def _generic(spec: ParamSpec, norm: str, demo: str = "", plural: bool = True) -> object | None:
    """`word number` (and `number word` where allowed), or a mentioned choice. A number is read whole
    ("1,200 steps" is 1200, "20%" a percentage) or refused (see _scalar)."""
    where = f"{demo}: {spec.name}" if demo else spec.name
    if spec.kind in ("int", "float"):
        after = before = None
        for w in spec.words:
            after = re.search(
                rf"(?<![\w.]){_word_re(w, plural)}\s*(=|:|of|is|at|to|rate)?\s*({SB}{PCT})(?![\dx])", norm
            )
            if after:
                break
        if spec.number_before:
            for w in spec.words:
                # "10 hidden layers" counts layers, not hidden units
                before = re.search(rf"(?<!every )(?<!-)({S})\s*-?\s*{_word_re(w)}\b{_NOT_LAYERS}", norm)
                if before:
                    break
        # "3 blocks at 128px", "300 steps to 0.1": the number right before the word wins over one after a
        # preposition; "steps 300", "lr=0.1" (nothing or = or : between) win over a number before
        if after and (after.group(1) in (None, "=", ":") or not before):
            return _scalar(after.group(2), where)
        if before:
            return _scalar(before.group(1), where)
    elif spec.kind in ("choice", "choices"):
        found = []
        forms = [(c, c) for c in spec.choices] + [(a, c) for a, c in spec.aliases]
        for form, choice in forms:
            pat = r"[\s_\-]?".join(re.escape(p) for p in re.split(r"[\s_\-]+", form))
            for m in re.finditer(rf"(?<![\w.]){pat}(?![\w])", norm):
                found.append((m.start(), m.end(), choice))
        found = [f for f in found if not any(o[0] <= f[0] and f[1] <= o[1] and o != f for o in found)]
        found.sort()
        uniq = list(dict.fromkeys(c for _, _, c in found))
        if uniq:
            return uniq[0] if spec.kind == "choice" else uniq
    elif spec.kind in ("ints", "floats"):
        for w in spec.words:
            m = re.search(rf"(?<![\w.]){_word_re(w)}\s*(?:=|:|of|are)?\s*({FLIST})", norm)
            if m:
                return _items(m.group(1), where)
    return None


def parse_layers(text: str, demo: str = "receptive_field", max_layers: int = MAX_LAYERS) -> list[dict] | None:
    """Conv stacks in words: "two stride-2 convs", "3 3x3 convs then a 5x5 conv", "dilation 1, 2 and 4".

    Each segment's layer count is checked against ``max_layers`` before its layers are built, so the work
    is bounded by the text's length, never by a number in it."""
    layers: list[dict] = []
    for seg in re.split(r"\bthen\b|\bfollowed by\b|;|\bafter that\b", text):
        layers += _segment_layers(seg, demo, max_layers)
    if len(layers) > max_layers:
        raise BadParameter(f"{demo}: at most {max_layers} layers (you asked for {len(layers)})")
    return layers or None


_UNSIGNED = r"(?:\d++(?:\.\d*+)?+|\.\d++)(?:e[-+]?+\d++)?+"
_COUNT = re.compile(
    rf"(?<!stride )(?<!dilation )(?<!padding )(?<!kernel )(?<!pad )(?<![\w.=])({S})\s+"
    rf"(?:(?:stride\s*+{_UNSIGNED}|{_UNSIGNED}x{_UNSIGNED}|dilated|same|padded|more|conv(?:olutional)?|strided|-)"
    r"\s*+)*(?:convs?|convolutions?|layers?)\b"
)


def _layer_count(tok: str, demo: str, max_layers: int) -> int:
    """ "3 convs" -> 3; a count past the limit (or not a whole number) is refused before anything is built."""
    tok = str(_scalar(tok, f"{demo}: the number of layers"))
    v = float(tok)
    if v > max_layers:  # inf included
        raise BadParameter(f"{demo}: at most {max_layers} layers (you asked for {_cut(tok)})")
    if not (v.is_integer() and v >= 1):  # nan, 2.5, 0, -3
        raise BadParameter(
            f"{demo}: a number of layers is a whole number from 1 to {max_layers} (got {_cut(tok)})"
        )
    return int(v)


def _in_bounds(v: int | str, field: str) -> bool:
    lo, hi = LAYER_BOUNDS[field]
    return isinstance(v, int) and lo <= v <= hi


def _segment_layers(seg: str, demo: str = "receptive_field", max_layers: int = MAX_LAYERS) -> list[dict]:
    count = None
    m = _COUNT.search(seg)
    if m:
        count = _layer_count(m.group(1), demo, max_layers)
    lists: dict[str, list[int | str]] = {}
    pats = {
        "kernel": r"(?:\bkernels?(?:\s*sizes?)?|\bfilters?(?:\s*sizes?)?|\bks|\bf)\s*(?:=|:|of|are)?\s*",
        "stride": r"(?:\bstrides?|\bs)\s*(?:=|:|of|are)?\s*",
        "padding": r"(?:\bpad(?:dings?)?|\bp)\s*(?:=|:|of|are)?\s*",
        "dilation": r"(?:\bdilations?|\bdilated|\bdilation rates?|\bd)\s*(?:=|:|of|are|by)?\s*",
    }
    for key, pre in pats.items():
        mm = re.search(pre + rf"({LIST})", seg)
        if mm:
            lists[key] = _ints(mm.group(1), f"{demo}: {key}")
    if "kernel" not in lists:
        sq = re.findall(rf"({N})x({NUM})(?!\s*(?:input|image|grid|px|pixel))", seg)
        if sq:
            if any(a != b for a, b in sq):
                shown = ", ".join(f"{_cut(a)}x{_cut(b)}" for a, b in sq[:4]) + (", …" if len(sq) > 4 else "")
                raise BadParameter(f"only square kernels are supported (got {shown})")
            lists["kernel"] = [_val(a) for a, _ in sq]
    same = bool(re.search(r"\bsame\b|\bpadded\b", seg))
    n = max([count or 0] + [len(v) for v in lists.values()])
    if n > max_layers:  # a list of values: checked before any layer is built, like a count
        key = max(lists, key=lambda k: len(lists[k]))
        raise BadParameter(f"{demo}: at most {max_layers} layers (you gave {n} {key} values)")
    if n == 0 and not same:
        return []
    n = max(n, 1)
    out = []
    for i in range(n):
        layer: dict[str, int | str] = {"kernel": 3, "stride": 1, "padding": 0, "dilation": 1}
        for key, vals in lists.items():
            if len(vals) not in (1, n):
                raise BadParameter(f"got {len(vals)} {key} values for {n} layers; give one or {n}")
            layer[key] = vals[0] if len(vals) == 1 else vals[i]
        k, d = layer["kernel"], layer["dilation"]
        # "same" padding from sizes in range; others are left for validation to refuse with their range
        if same and "padding" not in lists and _in_bounds(k, "kernel") and _in_bounds(d, "dilation"):
            layer["padding"] = d * (k - 1) // 2
        out.append(layer)
    return out


def _input_size(norm: str, demo: str = "conv_output") -> tuple[int | str | None, str]:
    """Find the input size ("W=227", "32x32 input", "input of 28", "a 1,024 image") and cut it out."""
    pats = [
        rf"\bw\s*=\s*({SB})",
        rf"({N})x\1\s*(?:input|image|grid|px|pixel|picture)s?",
        rf"\b(?:input|image|picture)(?:\s*(?:size|width|of|is|=|:))*\s*({S})(?:x{NUM})?",
        rf"\b(?:on|of|for) an? ({N})x\1\b",
        rf"\bsize\s*(?:=|:|of)?\s*({S})(?:x{NUM})?",
        rf"({S})\s*-?\s*(?:px|pixels?)?\s*(?:wide )?(?:input|image|picture)s?\b(?!\s*(?:channels?|features?))",
        rf"({N})x\1\b(?!\s*(?:convs?|convolutions?|kernels?|filters?|layers?|stride|dilat|pad))",
    ]
    for p in pats:
        m = re.search(p, norm)
        if m:
            return _scalar(m.group(1), f"{demo}: size"), norm[: m.start()] + " " + norm[m.end() :]
    return None, norm


def _max_layers(demo: str) -> int:
    return BY_NAME[demo].param("layers").max_len


def _x_receptive_field(norm: str) -> dict:
    layers = parse_layers(norm, "receptive_field", _max_layers("receptive_field"))
    return {"layers": layers} if layers else {}


def _x_conv_output(norm: str) -> dict:
    out: dict = {}
    size, rest = _input_size(norm, "conv_output")
    if size is not None:
        out["size"] = size
    layers = parse_layers(rest, "conv_output", _max_layers("conv_output"))
    if layers:
        out["layers"] = layers
    return out


def _x_param_count(norm: str) -> dict:
    out: dict = {}
    if re.search(r"\b(linear|fully[\s-]?connected|fc|dense)\b", norm):
        out["layer"] = "linear"
    ins, outs = "param_count: in_channels", "param_count: out_channels"
    m = re.search(rf"({S})\s*->\s*({S})", norm) or re.search(
        rf"from ({S}) to ({S})(?: channels| features)?", norm
    )
    if m:
        out["in_channels"], out["out_channels"] = _scalar(m.group(1), ins), _scalar(m.group(2), outs)
    # "8 input channels", "784 inputs", "64 in, 128 out" (in/out alone only before a comma, "and" or the end)
    end = r"(?=\s*+(?:,|;|\band\b|&|->|$))"
    m = re.search(
        rf"({S})\s*(?:input|in)[\s_](?:channels?|features?)|({S})\s*inputs?\b|({S}) in\b{end}", norm
    )
    if m:
        out["in_channels"] = _scalar(next(g for g in m.groups() if g is not None), ins)
    m = re.search(
        rf"({S})\s*(?:output|out)[\s_](?:channels?|features?)|({S})\s*outputs?\b|({S}) out\b{end}", norm
    )
    if m:
        out["out_channels"] = _scalar(next(g for g in m.groups() if g is not None), outs)
    # "16 filters", not the 8 of "input channels 8 filters 16" (a value of the name before it)
    m = re.search(
        rf"(?<!channels )(?<!channel )(?<!features )({S})\s+(?:{N}x{NUM}\s+)?(?:filters|kernels)\b", norm
    )
    if m:
        out["out_channels"] = _scalar(m.group(1), outs)
    if re.search(r"\brgb\b|colou?r image", norm):
        out.setdefault("in_channels", 3)
    if re.search(r"gr[ae]yscale|black and white|mnist", norm):
        out.setdefault("in_channels", 1)
    m = re.search(rf"({N})x({NUM})(?!\s*(?:grid|output|input|image|activation))", norm)
    if m:
        if m.group(1) != m.group(2):
            raise BadParameter(
                f"only square kernels are supported (got {_cut(m.group(1))}x{_cut(m.group(2))})"
            )
        out["kernel"] = _val(m.group(1))
    m = re.search(rf"\b(?:kernel|filter)(?:\s*size)?\s*(?:=|:|of)?\s*({S})(?![\dx])", norm)
    if m:
        pair = re.fullmatch(rf"({NUM}),({NUM})", m.group(1))
        if pair and not _GROUPED.fullmatch(m.group(1)):  # PyTorch's kernel_size=(3, 3) written "3,3"
            if pair.group(1) != pair.group(2):
                raise BadParameter(f"only square kernels are supported (got {_cut(m.group(1))})")
            out["kernel"] = _val(pair.group(1))
        else:
            out["kernel"] = _scalar(m.group(1), "param_count: kernel")
    m = re.search(rf"(?:on an? |over an? )?({N})x\1\s*(?:grid|output|activation)", norm)
    if m:
        out["grid"] = _val(m.group(1))
    if re.search(r"\bno bias|without (a )?bias|bias\s*=\s*false", norm):
        out["bias"] = False
    return out


def _x_conv_apply(norm: str) -> dict:
    out: dict = {}
    m = re.search(r"\[\s*\[.*?\]\s*\]", norm)
    if m:
        out["kernel"], out["matrix"] = "custom", m.group(0)
        norm = norm[: m.start()] + norm[m.end() :]
    m = re.search(
        rf"\b(?:digit|number)\s*(?:=|:)?\s*({S})(?![\w.])|\b(?:on|to) (?:an?|the) (\d)\b|\b(?:an?|the) (\d)s?$",
        norm,
    )
    if m:
        out["digit"] = _scalar(next(g for g in m.groups() if g is not None), "conv_apply: digit")
    return out


_RUN = re.compile(rf"{N}(?:(?:\s*+(?:,|\band\b)\s*+|\s++){NUM})++")


def _x_softmax(norm: str) -> tuple[dict, str]:
    """The target ("target 2", "class 2") and the longest run of numbers as the logits; with the text they
    leave, where nothing else may read a target ("for 3 classes 1 2 3": the 3 counts the logits)."""
    out: dict = {}
    m = re.search(rf"\b(?:target|label|correct class|class|for class)\s*(?:=|:|is|index)?\s*({S})", norm)
    if m:
        out["target"] = _scalar(m.group(1), "softmax: target")
        norm = norm[: m.start()] + " " + norm[m.end() :]
    runs = [(_items(r.group(0), "softmax: activations"), r) for r in _RUN.finditer(norm)]
    if runs:  # the longest run of numbers; kept as text, so validation refuses nan, inf, 1e999 by name
        items, r = max(runs, key=lambda ir: len(ir[0]))
        out["activations"] = items
        norm = norm[: r.start()] + " " + norm[r.end() :]
    return out, norm


def _x_init_loss(norm: str) -> dict:
    for pat, n in ((r"cifar-?100\b", 100), (r"cifar-?10\b", 10), (r"imagenet", 1000), (r"mnist", 10)):
        if re.search(pat, norm):
            return {"classes": n}
    m = re.search(rf"\bn\s*=\s*({SB})", norm)
    return {"classes": _scalar(m.group(1), "init_loss: classes")} if m else {}


def _x_activations(norm: str) -> dict:
    m = re.search(rf"(?:between|from|range)\s*({SB})\s*(?:and|to|\.\.)\s*\+?({SB})", norm)
    if not m:
        return {}
    return {
        "x_min": _scalar(m.group(1), "activations: x_min"),
        "x_max": _scalar(m.group(2), "activations: x_max"),
    }


def _x_lr_finder(norm: str) -> dict:
    m = re.search(rf"from\s*({SB})\s*to\s*({SB})", norm)
    if not m:
        return {}
    return {
        "start_lr": _scalar(m.group(1), "lr_finder: start_lr"),
        "end_lr": _scalar(m.group(2), "lr_finder: end_lr"),
    }


def _x_optimizers(norm: str) -> dict:
    out: dict = {}
    m = re.search(rf"\bmomentum\s*(?:=|:|of|is)?\s*({SB})(?![\dx])", norm)  # "sgd with momentum 0.5": mu
    if m:
        out["momentum"] = _scalar(m.group(1), "optimizers: momentum")
    if re.search(r"sgd (with|\+) (nesterov )?momentum", norm):
        found = _generic(
            BY_NAME["optimizers"].param("optimizers"),
            norm.replace("sgd with", "").replace("sgd+", ""),
            "optimizers",
        )
        if found:
            out["optimizers"] = found
    return out


def _x_activation_stats(norm: str) -> dict:
    has_with = re.search(r"\bwith(?:out)? (?:and|or|&|vs\.?) with(?:out)?\b", norm)
    if has_with:
        return {"batchnorm": "both"}
    if re.search(r"\b(without|no) batch.?norm", norm):
        return {"batchnorm": "without"}
    if re.search(r"\bwith(?: a)? batch.?norm|\bbatch.?norm only", norm):
        return {"batchnorm": "with"}
    return {}


def _x_weight_init(norm: str) -> dict:
    out: dict = {}
    m = re.search(rf"({S})[\s-](?:hidden[\s-])?layers?\b", norm)  # "10 hidden layers" is a depth too
    if m:
        out["depth"] = _scalar(m.group(1), "weight_init: depth")
    return out


def _x_conv_as_matmul(norm: str) -> dict:
    out: dict = {}
    size, rest = _input_size(norm, "conv_as_matmul")
    if size is not None:
        out["size"] = size
    layers = _segment_layers(rest, "conv_as_matmul")
    if layers:
        first = layers[0]
        for k in ("kernel", "stride", "padding"):
            if re.search(
                {
                    "kernel": r"\d+x\d+|kernel|filter|\bf\b",
                    "stride": r"stride|\bs\s*=",
                    "padding": r"pad|same|\bp\s*=",
                }[k],
                rest,
            ):
                out[k] = first[k]
    return out


def _x_knn(norm: str) -> dict:
    ks = [k for k in re.findall(rf"({N})-?nn\b", norm) if float(k) != 1]  # "1-nn vs 5-nn": k is the other
    return {"k": _val(ks[0])} if ks else {}


def _x_dead_relu(norm: str) -> dict:
    out: dict = {}
    m = re.search(
        rf"(?:at|with|using|of) (?:an? )?(?:high |large |big )?(?:learning rate|lr)\s*(?:of|=|:)?\s*({SB})"
        rf"(?:\s*(?:vs\.?|versus|and|compared to|against)\s*({SB}))?",
        norm,
    )
    if m:
        a = str(_scalar(m.group(1), "dead_relu: lr_high"))
        b = None if m.group(2) is None else str(_scalar(m.group(2), "dead_relu: lr_normal"))
        if b is None:
            out["lr_high"] = a
        elif math.isfinite(float(a)) and math.isfinite(float(b)):
            out["lr_high"], out["lr_normal"] = (a, b) if float(a) >= float(b) else (b, a)
        else:  # nan has no order: each as given, for validation to refuse by name
            out["lr_high"], out["lr_normal"] = a, b
    return out


def _x_inverted_dropout(norm: str) -> dict:
    m = re.search(rf"\bdrop(?:out)?[\s_]?(?:rate|probability|prob)\s*(?:of|=|:|is)?\s*({SB}{PCT})", norm)
    if not m:
        return {}
    tok = str(_scalar(m.group(1), "inverted_dropout: the drop rate"))
    drop = float(tok[:-1]) / 100 if tok.endswith("%") else float(tok)  # a rate: 20% is 0.2
    keep = BY_NAME["inverted_dropout"].param("keep")
    lo, hi = round(1 - keep.hi, 12), round(1 - keep.lo, 12)
    if not lo <= drop <= hi:  # nan and inf included: never silently the default
        raise BadParameter(
            f"inverted_dropout: the drop rate must be between {lo:g} and {hi:g} "
            f"(keep = 1 - drop, {keep.range_text()}; got {_cut(m.group(1))})"
        )
    return {"keep": round(1 - drop, 12)}


# a shape: "(3, 1)", "[2,3]", "8x1x6x1", or dims with commas or alone ("3,4", "4")
_SHAPE = rf"[(\[]\s*+{NUM}(?:\s*+,\s*+{NUM})*+\s*+,?\s*+[)\]]|{N}(?:x{NUM})*+(?![\w.])(?:\s*+,\s*+{NUM}(?![\w.]))*+"


# after a lone number, a word that makes it a count of things, not a shape ("2 tensors", "3 rules")
_COUNTED = re.compile(
    r"\s*+(?!(?:and|with|vs|versus|to|against|by|plus|or|vector|tensor|array|matrix|shape)\b)[a-z]"
)


def _x_broadcasting(norm: str) -> dict:
    """Two shapes, in any of the forms of _SHAPE ("(3, 1)", "[2,3]", "8x1x6x1", "3,4", a lone "4"), except a
    lone number that counts something ("2 tensors"). One shape, or more than two, is refused: the demo never
    runs on the default shapes while the user wrote others."""
    shapes = [
        _ints(m.group(0), "broadcasting: a shape")
        for m in re.finditer(_SHAPE, norm)
        if not (re.fullmatch(NUM, m.group(0)) and _COUNTED.match(norm, m.end()))
    ]
    if not shapes:
        return {}
    if len(shapes) != 2:
        shown = " and ".join("(" + ", ".join(map(str, s)) + ")" for s in shapes[:4])
        raise BadParameter(
            f"broadcasting takes two shapes; I read {len(shapes)}: {_cut(shown, 120)}. "
            "Write them like “broadcast (3, 4) with (4,)” or “shapes 3x4 and 4”"
        )
    return {"shape_a": shapes[0], "shape_b": shapes[1]}


def _x_memory_estimate(norm: str) -> dict:
    out: dict = {}
    m = re.search(
        rf"({N})x\1\b|\b(?:image|input|resolution)s?(?: size)?\s*(?:=|:|of)?\s*({S})|({S})\s*(?:px|pixels?)\b",
        norm,
    )
    if m:
        out["image"] = _scalar(next(g for g in m.groups() if g is not None), "memory_estimate: image")
    m = re.search(rf"({S})\s*gb\b", norm)
    if m:
        out["budget_gb"] = _scalar(m.group(1), "memory_estimate: budget_gb")
    # "32 images of 224x224": how many images is the batch (a size is "224 px images", "224x224 images")
    m = re.search(rf"({S})\s+(?:images|pictures|samples|examples)\b", norm)
    if m:
        out["batch"] = _scalar(m.group(1), "memory_estimate: batch")
    return out


EXTRACTORS = {
    "receptive_field": _x_receptive_field,
    "conv_output": _x_conv_output,
    "param_count": _x_param_count,
    "conv_apply": _x_conv_apply,
    "softmax": _x_softmax,
    "init_loss": _x_init_loss,
    "activations": _x_activations,
    "lr_finder": _x_lr_finder,
    "optimizers": _x_optimizers,
    "activation_stats": _x_activation_stats,
    "weight_init": _x_weight_init,
    "conv_as_matmul": _x_conv_as_matmul,
    "knn": _x_knn,
    "dead_relu": _x_dead_relu,
    "inverted_dropout": _x_inverted_dropout,
    "broadcasting": _x_broadcasting,
    "memory_estimate": _x_memory_estimate,
}

# parameters whose generic extraction would misfire; the demo's extractor owns them
_SKIP_GENERIC = {
    ("param_count", "in_channels"),
    ("param_count", "out_channels"),
    ("param_count", "kernel"),
    ("param_count", "grid"),
    ("conv_output", "size"),
    ("conv_as_matmul", "size"),
    ("conv_as_matmul", "kernel"),
    ("conv_as_matmul", "stride"),
    ("conv_as_matmul", "padding"),
    ("softmax", "activations"),
    ("softmax", "target"),
    ("activation_stats", "batchnorm"),
    ("conv_apply", "digit"),
    ("memory_estimate", "image"),
    ("memory_estimate", "budget_gb"),
}


_PAIR = (
    r"(?:--([a-z_]++)(?:\s*+=\s*+|\s++)|\b([a-z_]++)\s*+=\s*+)(\[\[.*?\]\]|\[[^\]]*+\]|[^\s-]\S*+|-(?!-)\S++)"
)


def explicit_pairs(text: str, demo: str) -> tuple[dict, str]:
    """`key=value` for the demo's own parameter names (the structured form, also usable in chat); returns
    the pairs and the text with them cut out."""
    names = {p.name for p in BY_NAME[demo].params}
    out = {}
    rest = text
    for m in re.finditer(_PAIR, text):
        key = m.group(1) or m.group(2)
        if key in names:
            out[key] = m.group(3).strip().rstrip(",")
            rest = rest.replace(m.group(0), " ", 1)
    return out, rest


def parse(text: str) -> DemoRequest:
    """Plain-language request -> DemoRequest with the raw parameters it mentions (validation is separate)."""
    if not isinstance(text, str) or not text.strip():
        raise _unknown("", "empty request")
    if len(text) > MAX_TEXT:
        raise BadParameter(f"request too long ({len(text)} characters; the limit is {MAX_TEXT})")
    spaced = _SPACED_POWER.search(text)
    if spaced:
        raise BadParameter(
            f"“{_cut(spaced.group(0))}”: write a power without spaces (10**12 or 10^12); "
            "** between spaces reads as Markdown bold"
        )
    plain = _unmark(text).lower()  # what the user sees in Discord: **2** is 2
    chain = _POWER_CHAIN.search(plain)
    if chain:
        raise BadParameter(
            f"{_cut(chain.group(0))} is a chain of powers, which reads two ways (2^3^2 is 2^9 or 8^2); "
            "write one power, e.g. 2^9, or the number"
        )
    suffixed = _EXP_SUFFIX.search(plain)
    if suffixed:
        raise BadParameter(
            f"{_cut(suffixed.group(0))}: a k or m after a number in e-form reads two ways; "
            "write the number (1e-3, 0.001, 5000)"
        )
    norm = normalise(text)
    under = _DIGIT_UNDERSCORE.search(norm)
    if under:
        raise BadParameter(
            f"I can't read the number around {_cut(under.group(0))!r}: write it without underscores (1000), "
            "or group thousands as 1_000"
        )
    lead = re.match(r"^\s*([a-z_]+)\b", plain.strip())
    demo = lead.group(1) if lead and lead.group(1) in BY_NAME else detect(norm, text)
    spec = BY_NAME[demo]
    body = norm
    if lead and lead.group(1) == demo:
        body = norm[len(demo) :]
    kv, _ = explicit_pairs(plain, demo)
    _, free = explicit_pairs(body, demo)
    params: dict = {}
    for p in spec.params:
        if (demo, p.name) in _SKIP_GENERIC:
            continue
        v = _generic(p, free, demo)
        if v is not None:
            params[p.name] = v
    rest = free  # the text the demo's extractor did not consume
    if demo in EXTRACTORS:
        got = EXTRACTORS[demo](free)
        if isinstance(got, tuple):
            got, rest = got
        params.update(got)
    for p in spec.params:  # what the extractor left unset: "input channels 3", "target of 2", "width 64"
        if (demo, p.name) in _SKIP_GENERIC and p.name not in params and p.kind in ("int", "float"):
            words = tuple(w for w in p.words if w not in _PREPOSITIONS)
            plural = (demo, p.name) not in _SINGULAR
            v = _generic(dataclasses.replace(p, words=words, number_before=False), rest, demo, plural)
            if v is not None:
                params[p.name] = v
    params.update(kv)
    _refuse_stray_numbers(spec, free, params)
    return DemoRequest(demo=demo, params=params, text=text)


def _leaves(value: object):
    """Every number in extracted parameters: values, list items, layer fields, tokens in text values."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, str):
        yield from re.findall(NUM, value)
    else:
        yield value


def _refuse_stray_numbers(spec, free: str, params: dict) -> None:
    """A number written in the request is read by a parameter or refused, by two rules (free is the text
    left once key=value pairs are cut out):

    1. A number no parameter can take (inf, nan, past every bound, 480 digits) is refused with the ranges
       the demo takes, unless an extracted parameter holds such a number (validation then refuses it by
       name, with its range).
    2. A number written as the value of one of the demo's numeric parameters, right after one of its names
       ("lr 0.5", "momentum=0.5", "steps: 300", "image is 512"; not "steps to 0.1") or right before the name of a single-number parameter
       ("0.2 slope", "300 steps"; "4 logits" counts a list), must be a value some parameter took: "sgd lr 0.1 and lr 0.5" or "leaky relu with 0.2 slope" are refused, not
       run with the first value or the default. Prepositions the catalogue uses as names (of, to, from,
       in, out, every, ...) do not count, nor single letters before a number ("5 k").

    Any other in-range number is left alone: refusing every number no parameter took would refuse ordinary
    phrasings, where a number is part of a name ("1-NN", "2D surface", "-log(1/N)", "relu's 0", the
    "0.01" init) or describes what a demo does not model ("receptive field ... on a 224x224 image")."""
    if not any(_huge(v) for v in _leaves(params)):
        for tok in re.findall(S, free):
            for part in _parts(tok):
                if _huge(part):
                    raise BadParameter(
                        f"{spec.name}: {_cut(part)} is {_why_huge(part)}, and no parameter of {spec.name} "
                        f"takes it; it takes {_ranges(spec)}"
                    )
    _refuse_unread(spec, free, params)


_PREPOSITIONS = frozenset({"of", "to", "from", "in", "out", "at", "by", "for", "every", "is", "on", "with"})
_NUMERIC_KINDS = ("int", "float", "ints", "floats", "layers")


def _parts(tok: str) -> list[str]:
    """A scalar token's numbers: "1,200" is one, "3,4,5" three; a percentage sign is dropped."""
    tok = tok.rstrip("% ")
    if "," not in tok:
        return [tok]
    if _GROUPED.fullmatch(tok):
        return [tok.replace(",", "")]
    return re.findall(NUM, tok)


def _why_huge(tok: str) -> str:
    if re.search(r"inf|nan", tok):
        return "not a finite number"
    return f"too large (beyond every limit: the largest any demo takes is {LARGEST_BOUND})"


def _taken(params: dict, complements: bool = True) -> set[float]:
    """Every number the extracted parameters hold, as read from the text: values, list items, layer fields and
    layer counts, and (with ``complements``) a rate's complement (a drop rate 0.3 is read as keep 0.7)."""
    out: set[float] = set()
    for v in _leaves(params):
        try:
            f = float(v)
        except (TypeError, ValueError, OverflowError):
            continue
        out.add(f)
        if complements and 0 <= f <= 1:
            out.add(round(1 - f, 12))
    for v in params.values():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            out.add(float(len(v)))
    return out


def _is_taken(tok: str, taken: set[float]) -> bool:
    """Whether a token's number was read: "1,200" as 1200, or (a list) each of 3,224,224."""
    plain = tok.rstrip("% ")
    candidates = [_parts(tok)]
    if "," in plain:
        candidates.append(re.findall(NUM, plain))
    for parts in candidates:
        try:
            if all(float(x) in taken for x in parts):
                return True
        except (ValueError, OverflowError):
            return True  # not a number this check can judge: validation does
    return False


def _context(text: str, m: re.Match, width: int = 24) -> str:
    """The words around a match's number, for a message: “…with 0.5 and lr 0.9 …”."""
    a, b = m.span(1)
    lo, hi = max(0, a - width), min(len(text), b + width)
    while lo > 0 and text[lo - 1] != " ":
        lo -= 1
    while hi < len(text) and text[hi] != " ":
        hi += 1
    said = text[lo:hi].strip()
    return _cut(("…" if lo > 0 else "") + said + ("…" if hi < len(text) else ""), 80)


def _refuse_unread(spec, free: str, params: dict) -> None:
    """Rule 2 of _refuse_stray_numbers: a number next to a numeric parameter's name is read or refused.

    Right after a name ("lr 0.5", "keep: 0.3") the number is that parameter's: taken when no value was read
    for it, refused when another was ("lr 0.1 and lr 0.9"; each parameter is compared with its own values).
    Right before a single-number parameter's name ("128 batch size", "0.2 slope", "80% keep probability") it
    is taken when the parameter is unset and no other parameter read that number ("32 images" is a batch),
    and refused when it is neither this parameter's value nor another's. A refusal says which number was not
    understood, where, and the ranges the demo takes; it names a parameter only where the number is certainly
    that parameter's. ``params`` is updated with what is taken."""
    for p in spec.params:
        if p.kind not in _NUMERIC_KINDS:
            continue
        scalar = p.kind in ("int", "float")
        plural = (spec.name, p.name) not in _SINGULAR
        names = dict.fromkeys((*p.words, p.name, p.name.replace("_", " ")))
        for w in names:
            if w in _PREPOSITIONS:
                continue
            wr = _word_re(w, plural)
            after = rf"(?<![\w.]){wr}\s*(?:=|:|of|is)?\s*({SB}{PCT})(?![\dx])"  # not "steps to 0.1"
            # before a list's name a number counts its items ("4 logits 1 1 1 1"): not a value; nor is the
            # number before "3 classes" softmax's target, nor the count of "10 hidden layers"
            before = None
            if len(w) > 1 and scalar and plural:
                before = rf"({S}{PCT})\s*-?\s*{wr}\b{_NOT_LAYERS}"
            for pat, certain in ((after, True), (before, False)):
                if pat is None:
                    continue
                for m in re.finditer(pat, free):
                    _read_or_refuse(spec, p, free, m, certain, params)


def _read_or_refuse(spec, p: ParamSpec, free: str, m: re.Match, certain: bool, params: dict) -> None:
    tok = m.group(1)
    scalar = p.kind in ("int", "float")
    if p.name in params and _is_taken(tok, _taken({p.name: params[p.name]}, complements=False)):
        return
    # read by another parameter: "32 images" as a batch, the 64 of "5 layers 64 hidden" as the width, a
    # shape's 3,224,224; this parameter's own values are compared without complements ("keep 0.3 and keep
    # 0.7" is refused)
    if _is_taken(tok, _taken({k: v for k, v in params.items() if k != p.name})):
        return
    if scalar and p.name not in params:
        params[p.name] = _scalar(tok, f"{spec.name}: {p.name}")
        return
    said = _context(free, m)
    if certain and p.name in params:
        raise BadParameter(
            f"{spec.name}: {p.name} is {_cut(str(params[p.name]), 60)} here, and I did not understand the "
            f"number {_cut(tok)} in “{said}”; give {p.name} once ({p.name} {_range_of(p)})"
        )
    raise BadParameter(
        f"{spec.name}: I did not understand the number {_cut(tok)} in “{said}”; "
        f"{spec.name} takes {_ranges(spec)}"
    )


def _range_of(p: ParamSpec) -> str:
    if p.kind in ("ints", "floats"):
        return f"takes {p.min_len} to {p.max_len} numbers {p.range_text()}"
    if p.kind == "layers":
        return f"takes {p.min_len} to {p.max_len} layers"
    return f"must be {p.range_text()}"


def _ranges(spec) -> str:
    parts = []
    for p in spec.params:
        if p.kind in ("int", "float"):
            parts.append(f"{p.name} {p.range_text()}")
        elif p.kind in ("ints", "floats"):
            parts.append(f"{p.name}: {p.min_len} to {p.max_len} numbers {p.range_text()}")
        elif p.kind == "layers":
            parts.append(f"{p.name}: {p.min_len} to {p.max_len} layers")
    return "; ".join(parts) or "no numbers"
