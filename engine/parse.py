"""Reading numbers and parameters out of plain language, with regular expressions only: text is never
evaluated. The helpers every demo's extractor shares; the request pipeline itself (which demo, then its
parameters, then the stray-number rules) is `engine.request`.

`normalize_demo_request` drops Markdown emphasis, spells number words, unicode arrows, "3 x 3", 10^12,
2.5k and 1,000 as one token each; `generic` reads a parameter from its words ("lr 0.1", "10 classes") or a
mentioned choice; `parse_layers` reads conv stacks ("two stride-2 convs", "W=227 F=11 S=4 P=0"). Extracted
values are raw; validation happens in `engine.core`.

A number is read whole or refused, never read in part: where one number is read, "1,200" is 1200 and "1,5"
is refused (`read_scalar`); where a list is read, commas separate items (kernels 3,3,3; a shape 3,224,224);
a chain of powers and a spaced "10 ** 12" are refused.
"""

from __future__ import annotations

import math
import re

from engine.errors import BadParameter
from engine.spec import GROUPED_RE, LAYER_BOUNDS, MAX_LAYERS, NUM_RE, ParamSpec

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
# space after them, so that "1,200" is read whole as 1200 and "1,5" or "3,4,5" is refused (read_scalar), never
# read as its first part. Where a LIST is read (kernels 3,3,3, a shape 3,224,224, logits 2,1,0.1) commas
# separate items. "1,000" (a group that starts with 0) is a thousands separator everywhere: see
# normalize_demo_request.
SB = rf"(?:{NUM})(?:,\d++(?:\.\d++)?+)*+"  # the same after a separator that marks its start ("=", "..")


S = rf"(?<![\w.])(?<!\d,){SB}"


PCT = r"(?: ?%)?+"  # a percentage sign after a number: "20%", "20 %"


GROUPED = re.compile(rf"{GROUPED_RE}{PCT}")


# Number words and phrases a request spells out. Not knowledge.words.NUMBER_WORDS (the quiz grader's, zero to
# twenty): engine imports none of the other packages, and a request also says "a couple of", "twice", "fifty".
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


# a power: "10^12", "10 ^ -3" ("**" has become "^" by then, see unmark); a whole chain "2^3^2" is one match,
# so no part of it is read on its own (parse() refuses a chain: 2^3^2 is 512 to some and 64 to others). Not
# after "e+": the exponent of 1.5e+19 is not a base.
_POWER_OP = r"\s*+\^\s*+"


_POWER = re.compile(rf"(?<![\w.])(?<!e[-+])\d++(?:\.\d++)?+(?:{_POWER_OP}[-+]?+\d++(?:\.\d++)?+(?!\.?\d))++")


POWER_CHAIN = re.compile(rf"\d++(?:\.\d++)?+(?:{_POWER_OP}[-+]?+\d++(?:\.\d++)?+){{2,}}+")


# 2.5k, 1m (2.5 thousand, 1 million); never after an exponent ("1e-3m" is refused by parse(), not 1e-3000000)
_SUFFIXED = re.compile(r"(?<![\w.])(?<!e[-+])(\d++(?:\.\d++)?+)([km])\b")


# a k/m suffix right after a number in e-form: "1e-3m" is not 1e-3 million to everyone
EXP_SUFFIX = re.compile(r"\d(?:\.\d*+)?+e[-+]?+\d++[km]\b")


# "1_000" (Python's digit groups): read whole; any other "_" between digits is refused by parse()
_UNDERSCORED = re.compile(r"(?<![\w.])[1-9]\d{0,2}(?:_\d{3})++(?!\w)")


DIGIT_UNDERSCORE = re.compile(r"\d_++\d")


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
SPACED_POWER = re.compile(r"\d[\d.]*+\s++\*\*\s++[-+]?+\d[\d.]*+")


_MD_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\w*])")


_MD_UNDERSCORE = re.compile(r"(?<![\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?!\w)")


def unmark(text: str) -> str:
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


def normalize_demo_request(text: str) -> str:
    """A demo request as the parameter extractors read it: lower-case, arrows and multiplication signs
    unified, numbers spelled as digits.

    Markdown emphasis is dropped first (**2** is 2). Numbers written for humans become one token the parser
    reads: "10^12", "2**10" and "3 x 10^8" as their value, "two million" and "2m" as 2000000, "2.5k" as 2500,
    "1,000" as 1000 (a group that starts with 0 is never a list), "infinity" and "∞" as inf. Nothing here
    does work proportional to a number's value: powers are float arithmetic, huge results are written in
    scientific form."""
    t = unmark(text).lower().strip()
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


# -- parameter extraction -----------------------------------------------------------------------------------
def num_value(tok: str) -> int | str:
    """A number token as a parameter value: a plain integer as int, anything else ("1e12", "2.5", "inf") as
    its text, which validation converts and refuses with the parameter's range if it is out of it."""
    return int(tok) if tok.isascii() and tok.isdigit() and len(tok) <= 30 else tok


def cut_text(tok: str, limit: int = 40) -> str:
    """A number as written, for a message: a 400-digit one is cut short."""
    return tok if len(tok) <= limit else f"{tok[: limit - 1]}… ({len(tok)} characters)"


def read_scalar(tok: str, where: str) -> int | str:
    """A number read where one number is expected, whole: "1,200" is 1200 and "20%" stays "20%" (validation
    reads it as 0.2 for a rate, refuses it elsewhere); a comma that does not separate thousands ("1,5",
    "1,2000", "3,4,5") is refused, never read in part."""
    if "," in tok and not GROUPED.fullmatch(tok):
        raise BadParameter(
            f"{where} takes one number (got {cut_text(tok)}); write a thousand as 1000 or 1,000 "
            "and a decimal with a point (1.5)"
        )
    return num_value(tok.replace(",", ""))


def list_items(s: str, where: str = "a list") -> list[str]:
    """The numbers of a list as written; an item with a leading zero ("3,1,000", "1,05") is no list item
    anyone writes, but a thousands group or a decimal comma, so it is refused rather than read as 0 or 5."""
    toks = re.findall(NUM, s)
    odd = next((t for t in toks if re.match(r"[-+]?0\d", t)), None)
    if odd is not None:
        raise BadParameter(
            f"{where}: I can't read {cut_text(s.strip())} as a list (an item {odd!r} starts with 0); "
            "write thousands without commas (1000) and decimals with a point (1.05)"
        )
    return toks


def int_items(s: str, where: str = "a list") -> list[int | str]:
    return [num_value(x) for x in list_items(s, where)]


def word_re(w: str, plural: bool = True) -> str:
    """A parameter's name as a pattern, with its plural unless ``plural`` is false ("class 2" is a target,
    "3 classes" or "classes 2 1 0" count or list them)."""
    if not plural:
        return r"\s*".join(re.escape(part) for part in w.split())
    base = w[:-1] if w.endswith("s") and not w.endswith("ss") else w
    return r"\s*".join(re.escape(part) for part in base.split()) + r"(?:e?s)?"


NOT_LAYERS = r"(?!\s*layers?\b)"


def generic(spec: ParamSpec, norm: str, demo: str = "", plural: bool = True) -> object | None:
    """`word number` (and `number word` where allowed), or a mentioned choice. A number is read whole
    ("1,200 steps" is 1200, "20%" a percentage) or refused (see read_scalar)."""
    where = f"{demo}: {spec.name}" if demo else spec.name
    if spec.kind in ("int", "float"):
        after = before = None
        for w in spec.words:
            after = re.search(
                rf"(?<![\w.]){word_re(w, plural)}\s*(=|:|of|is|at|to|rate)?\s*({SB}{PCT})(?![\dx])", norm
            )
            if after:
                break
        if spec.number_before:
            for w in spec.words:
                # "10 hidden layers" counts layers, not hidden units
                before = re.search(rf"(?<!every )(?<!-)({S})\s*-?\s*{word_re(w)}\b{NOT_LAYERS}", norm)
                if before:
                    break
        # "3 blocks at 128px", "300 steps to 0.1": the number right before the word wins over one after a
        # preposition; "steps 300", "lr=0.1" (nothing or = or : between) win over a number before
        if after and (after.group(1) in (None, "=", ":") or not before):
            return read_scalar(after.group(2), where)
        if before:
            return read_scalar(before.group(1), where)
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
            m = re.search(rf"(?<![\w.]){word_re(w)}\s*(?:=|:|of|are)?\s*({FLIST})", norm)
            if m:
                return list_items(m.group(1), where)
    return None


def parse_layers(text: str, demo: str = "receptive_field", max_layers: int = MAX_LAYERS) -> list[dict] | None:
    """Conv stacks in words: "two stride-2 convs", "3 3x3 convs then a 5x5 conv", "dilation 1, 2 and 4".

    Each segment's layer count is checked against ``max_layers`` before its layers are built, so the work
    is bounded by the text's length, never by a number in it."""
    layers: list[dict] = []
    for seg in re.split(r"\bthen\b|\bfollowed by\b|;|\bafter that\b", text):
        layers += segment_layers(seg, demo, max_layers)
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
    tok = str(read_scalar(tok, f"{demo}: the number of layers"))
    v = float(tok)
    if v > max_layers:  # inf included
        raise BadParameter(f"{demo}: at most {max_layers} layers (you asked for {cut_text(tok)})")
    if not (v.is_integer() and v >= 1):  # nan, 2.5, 0, -3
        raise BadParameter(
            f"{demo}: a number of layers is a whole number from 1 to {max_layers} (got {cut_text(tok)})"
        )
    return int(v)


def _in_bounds(v: int | str, field: str) -> bool:
    lo, hi = LAYER_BOUNDS[field]
    return isinstance(v, int) and lo <= v <= hi


def segment_layers(seg: str, demo: str = "receptive_field", max_layers: int = MAX_LAYERS) -> list[dict]:
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
            lists[key] = int_items(mm.group(1), f"{demo}: {key}")
    if "kernel" not in lists:
        sq = re.findall(rf"({N})x({NUM})(?!\s*(?:input|image|grid|px|pixel))", seg)
        if sq:
            if any(a != b for a, b in sq):
                shown = ", ".join(f"{cut_text(a)}x{cut_text(b)}" for a, b in sq[:4]) + (
                    ", …" if len(sq) > 4 else ""
                )
                raise BadParameter(f"only square kernels are supported (got {shown})")
            lists["kernel"] = [num_value(a) for a, _ in sq]
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


def input_size(norm: str, demo: str = "conv_output") -> tuple[int | str | None, str]:
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
            return read_scalar(m.group(1), f"{demo}: size"), norm[: m.start()] + " " + norm[m.end() :]
    return None, norm


# words that are parameter names in the catalogue and prepositions too: the stray-number rules and the
# second reading of a demo's own parameters (see `engine.request`) pass over them
PREPOSITIONS = frozenset({"of", "to", "from", "in", "out", "at", "by", "for", "every", "is", "on", "with"})
