"""Plain language -> DemoRequest, with regular expressions only: user text is never evaluated.

Pipeline: normalise (number words, unicode arrows, "3 x 3"), pick the demo by weighted keywords (or an
explicit leading demo name), then extract parameters: demo-specific shapes first ("two stride-2 convs",
"W=227 F=11 S=4 P=0", "conv2d 3->64 kernel 7"), then generic "word number" pairs from the parameter specs,
then explicit key=value pairs, which win. The result holds raw values; validation happens in `engine.core`.
"""

from __future__ import annotations

import difflib
import re

from engine.catalogue import BY_NAME, DEMOS
from engine.errors import BadParameter, UnknownDemo
from engine.spec import NUM_RE, DemoRequest, ParamSpec

MAX_TEXT = 500
NUM = NUM_RE
INT = r"\d+(?![\dx.])"
LIST = rf"{INT}(?:\s*(?:,|\band\b|&)?\s*{INT})*"
FLIST = rf"{NUM}(?:\s*(?:,|\band\b|&)?\s*{NUM})*"

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
    "hundred": 100,
    "thousand": 1000,
    "single": 1,
    "a single": 1,
    "a pair of": 2,
    "a couple of": 2,
    "couple of": 2,
    "twice": 2,
}


def normalise(text: str) -> str:
    """Lower-case, unify arrows and multiplication signs, spell numbers as digits."""
    t = text.lower().strip()
    t = t.replace("×", "x").replace("→", "->").replace("=>", "->").replace("–", "-").replace("—", "-")
    t = t.replace("’", "'").replace("“", '"').replace("”", '"')
    t = re.sub(r"\b(one|1)[\s-]?cycle\b", "onecycle", t)
    t = re.sub(r"\bone[\s-]nn\b", "1-nn", t)
    for word, n in sorted(_WORDS.items(), key=lambda kv: -len(kv[0])):
        t = re.sub(rf"\b{word}\b", str(n), t)
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


def nearest(text: str, n: int = 3) -> tuple[str, ...]:
    """Demos closest to a request: keyword scores first, then string similarity to names and examples."""
    norm = normalise(text)
    ranked = [name for s, name in scores(norm) if s > 0]
    sim = sorted(
        DEMOS,
        key=lambda d: (
            -max(
                difflib.SequenceMatcher(None, norm, x.lower()).ratio()
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


def detect(norm: str, original: str) -> str:
    ranked = scores(norm)
    (best, name), (second, other) = ranked[0], ranked[1]
    if best < 3:
        raise _unknown(original, f"I couldn't tell which demo {original!r} asks for")
    if best - second < 2 and best < 2 * second:
        near = (name, other)
        ex = tuple(BY_NAME[n].examples[0] for n in near)
        raise UnknownDemo(
            f"{original!r} is ambiguous between {name} and {other}; say which, e.g. “{ex[0]}” or “{ex[1]}”",
            near,
            ex,
        )
    return name


# -- parameter extraction -----------------------------------------------------------------------------------
def _ints(s: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", s)]


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
                return [float(x) for x in re.findall(NUM, m.group(1))]
    return None


def parse_layers(text: str) -> list[dict] | None:
    """Conv stacks in words: "two stride-2 convs", "3 3x3 convs then a 5x5 conv", "dilation 1, 2 and 4"."""
    layers: list[dict] = []
    for seg in re.split(r"\bthen\b|\bfollowed by\b|;|\bafter that\b", text):
        layers += _segment_layers(seg)
    return layers or None


def _segment_layers(seg: str) -> list[dict]:
    count = None
    m = re.search(
        r"(?<!stride )(?<!dilation )(?<!padding )(?<!kernel )(?<!pad )(?<![x=\d.])\b(\d+)\s+"
        r"(?:(?:stride\s*\d+|\d+x\d+|dilated|same|padded|more|conv(?:olutional)?|strided|-)\s*)*"
        r"(?:convs?|convolutions?|layers?)\b",
        seg,
    )
    if m:
        count = int(m.group(1))
    lists: dict[str, list[int]] = {}
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
        sq = re.findall(r"(?<![\w.])(\d+)x(\d+)(?!\s*(?:input|image|grid|px|pixel))", seg)
        if sq:
            if any(a != b for a, b in sq):
                raise BadParameter(
                    "only square kernels are supported (got " + ", ".join(f"{a}x{b}" for a, b in sq) + ")"
                )
            lists["kernel"] = [int(a) for a, _ in sq]
    same = bool(re.search(r"\bsame\b|\bpadded\b", seg))
    n = max([count or 0] + [len(v) for v in lists.values()])
    if n == 0 and not same:
        return []
    n = max(n, 1)
    out = []
    for i in range(n):
        layer = {"kernel": 3, "stride": 1, "padding": 0, "dilation": 1}
        for key, vals in lists.items():
            if len(vals) not in (1, n):
                raise BadParameter(f"got {len(vals)} {key} values for {n} layers; give one or {n}")
            layer[key] = vals[0] if len(vals) == 1 else vals[i]
        if same and "padding" not in lists:
            layer["padding"] = layer["dilation"] * (layer["kernel"] - 1) // 2
        out.append(layer)
    return out


def _input_size(norm: str) -> tuple[int | None, str]:
    """Find the input size ("W=227", "32x32 input", "input of 28") and cut it out of the text."""
    pats = [
        r"\bw\s*=\s*(\d+)",
        r"(?<![\w.])(\d+)x\1\s*(?:input|image|grid|px|pixel|picture)s?",
        r"\b(?:input|image|picture)(?:\s*(?:size|width|of|is|=|:))*\s*(\d+)(?:x\d+)?",
        r"\b(?:on|of|for) an? (\d+)x\1\b",
        r"\bsize\s*(?:=|:|of)?\s*(\d+)(?:x\d+)?",
        r"(?<![\w.])(\d+)x\1\b(?!\s*(?:convs?|convolutions?|kernels?|filters?|layers?|stride|dilat|pad))",
    ]
    for p in pats:
        m = re.search(p, norm)
        if m:
            return int(m.group(1)), norm[: m.start()] + " " + norm[m.end() :]
    return None, norm


def _x_receptive_field(norm: str) -> dict:
    layers = parse_layers(norm)
    return {"layers": layers} if layers else {}


def _x_conv_output(norm: str) -> dict:
    out: dict = {}
    size, rest = _input_size(norm)
    if size is not None:
        out["size"] = size
    layers = parse_layers(rest)
    if layers:
        out["layers"] = layers
    return out


def _x_param_count(norm: str) -> dict:
    out: dict = {}
    if re.search(r"\b(linear|fully[\s-]?connected|fc|dense)\b", norm):
        out["layer"] = "linear"
    m = re.search(r"(\d+)\s*->\s*(\d+)", norm) or re.search(
        r"from (\d+) to (\d+)(?: channels| features)?", norm
    )
    if m:
        out["in_channels"], out["out_channels"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"(\d+)\s*(?:input|in)[\s_](?:channels?|features?)|(\d+)\s*inputs?\b", norm)
    if m:
        out["in_channels"] = int(m.group(1) or m.group(2))
    m = re.search(r"(\d+)\s*(?:output|out)[\s_](?:channels?|features?)|(\d+)\s*outputs?\b", norm)
    if m:
        out["out_channels"] = int(m.group(1) or m.group(2))
    m = re.search(r"(?<![x\d.])(\d+)\s+(?:\d+x\d+\s+)?(?:filters|kernels)\b", norm)
    if m:
        out["out_channels"] = int(m.group(1))
    if re.search(r"\brgb\b|colou?r image", norm):
        out.setdefault("in_channels", 3)
    if re.search(r"gr[ae]yscale|black and white|mnist", norm):
        out.setdefault("in_channels", 1)
    m = re.search(r"(?<![\w.])(\d+)x(\d+)(?!\s*(?:grid|output|input|image|activation))", norm)
    if m:
        if m.group(1) != m.group(2):
            raise BadParameter(f"only square kernels are supported (got {m.group(1)}x{m.group(2)})")
        out["kernel"] = int(m.group(1))
    m = re.search(r"\b(?:kernel|filter)(?:\s*size)?\s*(?:=|:|of)?\s*(\d+)(?![\dx])", norm)
    if m:
        out["kernel"] = int(m.group(1))
    m = re.search(r"(?:on an? |over an? )?(\d+)x\1\s*(?:grid|output|activation)", norm)
    if m:
        out["grid"] = int(m.group(1))
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
        r"\b(?:digit|number)\s*(?:=|:)?\s*(\d+)\b|\b(?:on|to) (?:an?|the) (\d)\b|\b(?:an?|the) (\d)s?$", norm
    )
    if m:
        out["digit"] = int(next(g for g in m.groups() if g is not None))
    return out


def _x_softmax(norm: str) -> dict:
    out: dict = {}
    m = re.search(r"\b(?:target|label|correct class|class|for class)\s*(?:=|:|is|index)?\s*(\d+)", norm)
    if m:
        out["target"] = int(m.group(1))
        norm = norm[: m.start()] + " " + norm[m.end() :]
    runs = re.findall(rf"{NUM}(?:\s*(?:,|\band\b|\s)\s*{NUM})+", norm)
    runs = [r for r in runs if len(re.findall(NUM, r)) >= 2]
    if runs:
        best = max(runs, key=lambda r: len(re.findall(NUM, r)))
        out["activations"] = [float(x) for x in re.findall(NUM, best)]
    return out


def _x_init_loss(norm: str) -> dict:
    for pat, n in ((r"cifar-?100\b", 100), (r"cifar-?10\b", 10), (r"imagenet", 1000), (r"mnist", 10)):
        if re.search(pat, norm):
            return {"classes": n}
    m = re.search(r"\bn\s*=\s*(\d+)", norm)
    return {"classes": int(m.group(1))} if m else {}


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
    m = re.search(r"(\d+)[\s-]layers?\b", norm)
    if m:
        out["depth"] = int(m.group(1))
    return out


def _x_conv_as_matmul(norm: str) -> dict:
    out: dict = {}
    size, rest = _input_size(norm)
    if size is not None:
        out["size"] = size
    layers = _segment_layers(rest)
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
    ks = [int(k) for k in re.findall(r"\b(\d+)-?nn\b", norm) if int(k) != 1]
    return {"k": ks[0]} if ks else {}


def _x_dead_relu(norm: str) -> dict:
    out: dict = {}
    m = re.search(
        rf"(?:at|with|using|of) (?:an? )?(?:high |large |big )?(?:learning rate|lr)\s*(?:of|=|:)?\s*({NUM})"
        rf"(?:\s*(?:vs\.?|versus|and|compared to|against)\s*({NUM}))?",
        norm,
    )
    if m:
        a = float(m.group(1))
        b = float(m.group(2)) if m.group(2) else None
        if b is not None:
            out["lr_high"], out["lr_normal"] = max(a, b), min(a, b)
        else:
            out["lr_high"] = a
    return out


def _x_inverted_dropout(norm: str) -> dict:
    m = re.search(rf"\bdrop(?:out)?[\s_]?(?:rate|probability|prob)\s*(?:of|=|:|is)?\s*({NUM})", norm)
    if m and float(m.group(1)) < 1:
        return {"keep": round(1 - float(m.group(1)), 12)}
    return {}


_SHAPE = r"[(\[]\s*\d+(?:\s*,\s*\d+)*\s*,?\s*[)\]]|(?<![\w.])\d+(?:x\d+)+(?![\w.])"


def _x_broadcasting(norm: str) -> dict:
    shapes = [_ints(m.group(0)) for m in re.finditer(_SHAPE, norm)]
    if len(shapes) < 2:  # "shapes 3,4 and 4": comma lists joined by and/with/vs
        m = re.search(r"(\d+(?:\s*,\s*\d+)*)\s+(?:and|with|vs\.?|to|\+|-|\*)\s+(\d+(?:\s*,\s*\d+)*)", norm)
        if m:
            shapes = [_ints(m.group(1)), _ints(m.group(2))]
    out: dict = {}
    if len(shapes) >= 2:
        out["shape_a"], out["shape_b"] = shapes[0], shapes[1]
    return out


def _x_memory_estimate(norm: str) -> dict:
    out: dict = {}
    m = re.search(
        r"(?<![\w.])(\d+)x\1\b|\b(?:image|input|resolution)s?(?: size)?\s*(?:=|:|of)?\s*(\d+)", norm
    )
    if m:
        out["image"] = int(m.group(1) or m.group(2))
    m = re.search(rf"({NUM})\s*gb\b", norm)
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


_PAIR = r"(?:--([a-z_]+)\s*[=\s]\s*|\b([a-z_]+)\s*=\s*)(\[\[.*?\]\]|\[[^\]]*\]|[^\s-]\S*|-\d\S*)"


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
    return DemoRequest(demo=demo, params=params, text=text)
