"""Plain language -> DemoRequest: which demo, then its parameters, then the rules for stray numbers.

Pipeline: refuse what reads two ways (a spaced "10 ** 12", a chain of powers, "1e-3m"), normalise
(`engine.parse.normalize_demo_request`), pick the demo by its spec's weighted keywords (or an explicit
leading demo name), then extract parameters: generic "word number" pairs from the parameter specs, the
demo's own extractor (its module's ``extract``: "two stride-2 convs", "W=227 F=11 S=4 P=0", "conv2d 3->64
kernel 7"), then explicit key=value pairs, which win. A number the request clearly gives that no parameter
took is refused by the rules in `_refuse_stray_numbers`. The result holds raw values; validation happens in
`engine.core`.
"""

from __future__ import annotations

import dataclasses
import math
import re

from engine.catalogue import BY_NAME, DEMOS, extractor, nearest, scores
from engine.errors import BadParameter, UnknownDemo
from engine.parse import (
    DIGIT_UNDERSCORE,
    EXP_SUFFIX,
    GROUPED,
    MAX_TEXT,
    NOT_LAYERS,
    NUM,
    PCT,
    POWER_CHAIN,
    PREPOSITIONS,
    SB,
    SPACED_POWER,
    S,
    cut_text,
    generic,
    normalize_demo_request,
    read_scalar,
    unmark,
    word_re,
)
from engine.spec import LAYER_BOUNDS, DemoRequest, ParamSpec

# the largest number any parameter takes (the seed, 2^31 - 1): past it, or not finite, a number in a request
# cannot mean anything the demos do, so it is refused rather than ignored (see _refuse_stray_numbers)
LARGEST_BOUND = max(
    [p.hi for d in DEMOS for p in d.params if p.hi is not None] + [hi for _, hi in LAYER_BOUNDS.values()]
)


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
    spaced = SPACED_POWER.search(text)
    if spaced:
        raise BadParameter(
            f"“{cut_text(spaced.group(0))}”: write a power without spaces (10**12 or 10^12); "
            "** between spaces reads as Markdown bold"
        )
    plain = unmark(text).lower()  # what the user sees in Discord: **2** is 2
    chain = POWER_CHAIN.search(plain)
    if chain:
        raise BadParameter(
            f"{cut_text(chain.group(0))} is a chain of powers, which reads two ways (2^3^2 is 2^9 or 8^2); "
            "write one power, e.g. 2^9, or the number"
        )
    suffixed = EXP_SUFFIX.search(plain)
    if suffixed:
        raise BadParameter(
            f"{cut_text(suffixed.group(0))}: a k or m after a number in e-form reads two ways; "
            "write the number (1e-3, 0.001, 5000)"
        )
    norm = normalize_demo_request(text)
    under = DIGIT_UNDERSCORE.search(norm)
    if under:
        raise BadParameter(
            f"I can't read the number around {cut_text(under.group(0))!r}: write it without underscores (1000), "
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
        if p.name in spec.own:
            continue
        v = generic(p, free, demo)
        if v is not None:
            params[p.name] = v
    rest = free  # the text the demo's extractor did not consume
    extract = extractor(demo)
    if extract is not None:
        got = extract(free)
        if isinstance(got, tuple):
            got, rest = got
        params.update(got)
    for p in spec.params:  # what the extractor left unset: "input channels 3", "target of 2", "width 64"
        if p.name in spec.own and p.name not in params and p.kind in ("int", "float"):
            words = tuple(w for w in p.words if w not in PREPOSITIONS)
            plural = p.name not in spec.singular
            v = generic(dataclasses.replace(p, words=words, number_before=False), rest, demo, plural)
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
                        f"{spec.name}: {cut_text(part)} is {_why_huge(part)}, and no parameter of {spec.name} "
                        f"takes it; it takes {_ranges(spec)}"
                    )
    _refuse_unread(spec, free, params)


_NUMERIC_KINDS = ("int", "float", "ints", "floats", "layers")


def _parts(tok: str) -> list[str]:
    """A scalar token's numbers: "1,200" is one, "3,4,5" three; a percentage sign is dropped."""
    tok = tok.rstrip("% ")
    if "," not in tok:
        return [tok]
    if GROUPED.fullmatch(tok):
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
    return cut_text(("…" if lo > 0 else "") + said + ("…" if hi < len(text) else ""), 80)


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
        plural = p.name not in spec.singular
        names = dict.fromkeys((*p.words, p.name, p.name.replace("_", " ")))
        for w in names:
            if w in PREPOSITIONS:
                continue
            wr = word_re(w, plural)
            after = rf"(?<![\w.]){wr}\s*(?:=|:|of|is)?\s*({SB}{PCT})(?![\dx])"  # not "steps to 0.1"
            # before a list's name a number counts its items ("4 logits 1 1 1 1"): not a value; nor is the
            # number before "3 classes" softmax's target, nor the count of "10 hidden layers"
            before = None
            if len(w) > 1 and scalar and plural:
                before = rf"({S}{PCT})\s*-?\s*{wr}\b{NOT_LAYERS}"
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
        params[p.name] = read_scalar(tok, f"{spec.name}: {p.name}")
        return
    said = _context(free, m)
    if certain and p.name in params:
        raise BadParameter(
            f"{spec.name}: {p.name} is {cut_text(str(params[p.name]), 60)} here, and I did not understand the "
            f"number {cut_text(tok)} in “{said}”; give {p.name} once ({p.name} {_range_of(p)})"
        )
    raise BadParameter(
        f"{spec.name}: I did not understand the number {cut_text(tok)} in “{said}”; "
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
