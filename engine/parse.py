"""Plain language -> DemoRequest, with regular expressions only: user text is never evaluated.

Pipeline: normalise (number words, unicode arrows, "3 x 3"), pick the demo by weighted keywords (or an
explicit leading demo name), then extract parameters: demo-specific shapes first ("two stride-2 convs",
"W=227 F=11 S=4 P=0", "conv2d 3->64 kernel 7"), then generic "word number" pairs from the parameter specs,
then explicit key=value pairs, which win. The result holds raw values; validation happens in `engine.core`.
"""

from __future__ import annotations

import difflib
import math
import re

from engine.catalogue import BY_NAME, DEMOS
from engine.errors import BadParameter, UnknownDemo
from engine.spec import LAYER_BOUNDS, NUM_RE, DemoRequest, ParamSpec

MAX_TEXT = 500
# Numbers are read whole (NUM_RE is possessive): "1e12", "1.5", "-3", "inf" and "nan" are one token each, so
# no pattern takes "1" out of "1e12" or "9" out of "10^9". An extractor hands the token on as text unless it
# is a plain integer; validation (engine.spec) then converts it and refuses it with the parameter's range.
NUM = NUM_RE
N = rf"(?<![\w.])(?:{NUM})"  # a number token that does not continue a word or another number
INT = rf"{N}(?![\dx.])"
LIST = rf"{INT}(?:\s*+(?:,|\band\b|&)?\s*+{INT})*+"
FLIST = rf"{NUM}(?:\s*+(?:,|\band\b|&)?\s*+{NUM})*+"
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
_POWER = re.compile(r"(?<![\w.])(\d++(?:\.\d++)?+)\s*+(?:\^|\*\*)\s*+([-+]?+\d++(?:\.\d++)?+)(?!\.?\d)")
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
    """ "10^12", "2**10", "10^-3" as the number they stand for; never big-integer arithmetic."""
    try:
        return _number_text(float(m.group(1)) ** float(m.group(2)))
    except OverflowError:
        return "inf"
    except ZeroDivisionError:  # 0^-1
        return "inf"


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

    Numbers written for humans become one token the parser reads: "10^12", "2**10" and "3 x 10^8" as their
    value, "two million" as 2000000, "infinity" and "∞" as inf. Nothing here does work proportional to a
    number's value: powers are float arithmetic, huge results are written in scientific form."""
    t = text.lower().strip()
    t = t.replace("×", "x").replace("→", "->").replace("=>", "->").replace("–", "-").replace("—", "-")
    t = t.replace("−", "-").replace("∞", "inf").replace("’", "'").replace("“", '"').replace("”", '"')
    t = re.sub(r"(?<![a-z])infinity(?![a-z])", "inf", t)
    t = re.sub(r"\b(one|1)[\s-]?cycle\b", "onecycle", t)
    t = re.sub(r"\bone[\s-]nn\b", "1-nn", t)
    for word, n in sorted(_WORDS.items(), key=lambda kv: -len(kv[0])):
        t = re.sub(rf"\b{word}\b", str(n), t)
    t = _TIMES_TEN.sub(_times_ten, t)
    for _ in range(t.count("^") + t.count("**")):  # right to left would be 2^(3^2); a chain is rare
        t, n = _POWER.subn(_power, t, count=1)
        if not n:
            break
    t = _SCALED.sub(_scaled, t)
    t = re.sub(r"(\d)\s*x\s*(\d)", r"\1x\2", t)
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


def _ints(s: str) -> list[int | str]:
    return [_val(x) for x in re.findall(NUM, s)]


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


def _word_re(w: str) -> str:
    base = w[:-1] if w.endswith("s") and not w.endswith("ss") else w
    return r"\s*".join(re.escape(part) for part in base.split()) + r"(?:e?s)?"


def _generic(spec: ParamSpec, norm: str) -> object | None:
    """`word number` (and `number word` where allowed), or a mentioned choice."""
    if spec.kind in ("int", "float"):
        for w in spec.words:
            m = re.search(rf"(?<![\w.]){_word_re(w)}\s*(?:=|:|of|is|at|to|rate)?\s*({NUM})(?![\dx])", norm)
            if m:
                return m.group(1)
        if spec.number_before:
            for w in spec.words:
                m = re.search(rf"(?<!every )(?<![\w.\-])({NUM})\s*-?\s*{_word_re(w)}\b", norm)
                if m:
                    return m.group(1)
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
                return re.findall(NUM, m.group(1))
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
    rf"(?<!stride )(?<!dilation )(?<!padding )(?<!kernel )(?<!pad )(?<![\w.=])({NUM})\s+"
    rf"(?:(?:stride\s*+{_UNSIGNED}|{_UNSIGNED}x{_UNSIGNED}|dilated|same|padded|more|conv(?:olutional)?|strided|-)"
    r"\s*+)*(?:convs?|convolutions?|layers?)\b"
)


def _layer_count(tok: str, demo: str, max_layers: int) -> int:
    """ "3 convs" -> 3; a count past the limit (or not a whole number) is refused before anything is built."""
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
            lists[key] = _ints(mm.group(1))
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


def _input_size(norm: str) -> tuple[int | str | None, str]:
    """Find the input size ("W=227", "32x32 input", "input of 28") and cut it out of the text."""
    pats = [
        rf"\bw\s*=\s*({NUM})",
        rf"({N})x\1\s*(?:input|image|grid|px|pixel|picture)s?",
        rf"\b(?:input|image|picture)(?:\s*(?:size|width|of|is|=|:))*\s*({N})(?:x{NUM})?",
        rf"\b(?:on|of|for) an? ({N})x\1\b",
        rf"\bsize\s*(?:=|:|of)?\s*({N})(?:x{NUM})?",
        rf"({N})x\1\b(?!\s*(?:convs?|convolutions?|kernels?|filters?|layers?|stride|dilat|pad))",
    ]
    for p in pats:
        m = re.search(p, norm)
        if m:
            return _val(m.group(1)), norm[: m.start()] + " " + norm[m.end() :]
    return None, norm


def _max_layers(demo: str) -> int:
    return BY_NAME[demo].param("layers").max_len


def _x_receptive_field(norm: str) -> dict:
    layers = parse_layers(norm, "receptive_field", _max_layers("receptive_field"))
    return {"layers": layers} if layers else {}


def _x_conv_output(norm: str) -> dict:
    out: dict = {}
    size, rest = _input_size(norm)
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
    m = re.search(rf"({N})\s*->\s*({N})", norm) or re.search(
        rf"from ({N}) to ({N})(?: channels| features)?", norm
    )
    if m:
        out["in_channels"], out["out_channels"] = _val(m.group(1)), _val(m.group(2))
    m = re.search(rf"({N})\s*(?:input|in)[\s_](?:channels?|features?)|({N})\s*inputs?\b", norm)
    if m:
        out["in_channels"] = _val(m.group(1) or m.group(2))
    m = re.search(rf"({N})\s*(?:output|out)[\s_](?:channels?|features?)|({N})\s*outputs?\b", norm)
    if m:
        out["out_channels"] = _val(m.group(1) or m.group(2))
    m = re.search(rf"({N})\s+(?:{N}x{NUM}\s+)?(?:filters|kernels)\b", norm)
    if m:
        out["out_channels"] = _val(m.group(1))
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
    m = re.search(rf"\b(?:kernel|filter)(?:\s*size)?\s*(?:=|:|of)?\s*({N})(?![\dx])", norm)
    if m:
        out["kernel"] = _val(m.group(1))
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
        rf"\b(?:digit|number)\s*(?:=|:)?\s*({N})(?![\w.])|\b(?:on|to) (?:an?|the) (\d)\b|\b(?:an?|the) (\d)s?$",
        norm,
    )
    if m:
        out["digit"] = _val(next(g for g in m.groups() if g is not None))
    return out


_RUN = re.compile(rf"{N}(?:(?:\s*+(?:,|\band\b)\s*+|\s++){NUM})++")


def _x_softmax(norm: str) -> dict:
    out: dict = {}
    m = re.search(rf"\b(?:target|label|correct class|class|for class)\s*(?:=|:|is|index)?\s*({N})", norm)
    if m:
        out["target"] = _val(m.group(1))
        norm = norm[: m.start()] + " " + norm[m.end() :]
    runs = [re.findall(NUM, r) for r in _RUN.findall(norm)]
    if runs:  # the longest run of numbers; kept as text, so validation refuses nan, inf, 1e999 by name
        out["activations"] = max(runs, key=len)
    return out


def _x_init_loss(norm: str) -> dict:
    for pat, n in ((r"cifar-?100\b", 100), (r"cifar-?10\b", 10), (r"imagenet", 1000), (r"mnist", 10)):
        if re.search(pat, norm):
            return {"classes": n}
    m = re.search(rf"\bn\s*=\s*({NUM})", norm)
    return {"classes": _val(m.group(1))} if m else {}


def _x_activations(norm: str) -> dict:
    m = re.search(rf"(?:between|from|range)\s*({NUM})\s*(?:and|to|\.\.)\s*\+?({NUM})", norm)
    return {"x_min": m.group(1), "x_max": m.group(2)} if m else {}


def _x_lr_finder(norm: str) -> dict:
    m = re.search(rf"from\s*({NUM})\s*to\s*({NUM})", norm)
    return {"start_lr": m.group(1), "end_lr": m.group(2)} if m else {}


def _x_optimizers(norm: str) -> dict:
    if re.search(r"sgd (with|\+) (nesterov )?momentum", norm):
        found = _generic(
            BY_NAME["optimizers"].param("optimizers"), norm.replace("sgd with", "").replace("sgd+", "")
        )
        return {"optimizers": found} if found else {}
    return {}


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
    m = re.search(rf"({N})[\s-]layers?\b", norm)
    if m:
        out["depth"] = _val(m.group(1))
    return out


def _x_conv_as_matmul(norm: str) -> dict:
    out: dict = {}
    size, rest = _input_size(norm)
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
        rf"(?:at|with|using|of) (?:an? )?(?:high |large |big )?(?:learning rate|lr)\s*(?:of|=|:)?\s*({NUM})"
        rf"(?:\s*(?:vs\.?|versus|and|compared to|against)\s*({NUM}))?",
        norm,
    )
    if m:
        a, b = m.group(1), m.group(2)
        if b is None:
            out["lr_high"] = a
        elif math.isfinite(float(a)) and math.isfinite(float(b)):
            out["lr_high"], out["lr_normal"] = (a, b) if float(a) >= float(b) else (b, a)
        else:  # nan has no order: each as given, for validation to refuse by name
            out["lr_high"], out["lr_normal"] = a, b
    return out


def _x_inverted_dropout(norm: str) -> dict:
    m = re.search(rf"\bdrop(?:out)?[\s_]?(?:rate|probability|prob)\s*(?:of|=|:|is)?\s*({NUM})", norm)
    if not m:
        return {}
    drop, keep = float(m.group(1)), BY_NAME["inverted_dropout"].param("keep")
    lo, hi = round(1 - keep.hi, 12), round(1 - keep.lo, 12)
    if not lo <= drop <= hi:  # nan and inf included: never silently the default
        raise BadParameter(
            f"inverted_dropout: the drop rate must be between {lo:g} and {hi:g} "
            f"(keep = 1 - drop, {keep.range_text()}; got {_cut(m.group(1))})"
        )
    return {"keep": round(1 - drop, 12)}


_SHAPE = rf"[(\[]\s*+{NUM}(?:\s*+,\s*+{NUM})*+\s*+,?\s*+[)\]]|{N}(?:x{NUM})++(?![\w.])"
_DIMS = rf"{N}(?:\s*+,\s*+{NUM})*+"


def _x_broadcasting(norm: str) -> dict:
    shapes = [_ints(m.group(0)) for m in re.finditer(_SHAPE, norm)]
    if len(shapes) < 2:  # "shapes 3,4 and 4": comma lists joined by and/with/vs
        m = re.search(rf"({_DIMS})\s+(?:and|with|vs\.?|to|\+|-|\*)\s+({_DIMS})", norm)
        if m:
            shapes = [_ints(m.group(1)), _ints(m.group(2))]
    out: dict = {}
    if len(shapes) >= 2:
        out["shape_a"], out["shape_b"] = shapes[0], shapes[1]
    return out


def _x_memory_estimate(norm: str) -> dict:
    out: dict = {}
    m = re.search(rf"({N})x\1\b|\b(?:image|input|resolution)s?(?: size)?\s*(?:=|:|of)?\s*({N})", norm)
    if m:
        out["image"] = _val(m.group(1) or m.group(2))
    m = re.search(rf"({N})\s*gb\b", norm)
    if m:
        out["budget_gb"] = m.group(1)
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
    norm = normalise(text)
    lead = re.match(r"^\s*([a-z_]+)\b", text.strip().lower())
    demo = lead.group(1) if lead and lead.group(1) in BY_NAME else detect(norm, text)
    spec = BY_NAME[demo]
    body = norm
    if lead and lead.group(1) == demo:
        body = norm[len(demo) :]
    kv, _ = explicit_pairs(text.lower(), demo)
    _, free = explicit_pairs(body, demo)
    params: dict = {}
    for p in spec.params:
        if (demo, p.name) in _SKIP_GENERIC:
            continue
        v = _generic(p, free)
        if v is not None:
            params[p.name] = v
    if demo in EXTRACTORS:
        params.update(EXTRACTORS[demo](free))
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
    """A number no parameter can take (inf, nan, past every bound) is refused, never silently dropped.

    When an extracted parameter holds one, validation refuses it by name with its range; otherwise the number
    was in the text but went nowhere, and this says so with the ranges the demo does take."""
    if any(_huge(v) for v in _leaves(params)):
        return
    for tok in re.findall(N, free):
        if _huge(tok):
            what = "not a finite number" if not math.isfinite(float(tok)) else "beyond every limit"
            raise BadParameter(
                f"{spec.name}: {_cut(tok)} is {what}, and no parameter of {spec.name} takes it; "
                f"it takes {_ranges(spec)}"
            )


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
