"""Answers as people read them: LaTeX turned into text, hard-wrapped lines joined into paragraphs.

The sources are copied from web pages and flash cards, so an answer can be raw LaTeX (the ch. 13 top-edge
kernel is ``\\begin{bmatrix} -1 & -1 & -1\\\\ 0 & 0 & 0 \\\\ 1 & 1 & 1 \\end{bmatrix}``) or carry line
breaks in the middle of a sentence. The stored text stays as the source has it; every front end shows it
through this module:

* :func:`readable`: the answer as markdown, for Discord (which renders markdown itself), ``tutor ask --json``
  and as the input of the two terminal renderers. LaTeX becomes text (``$\\frac{1}{N}$`` -> ``1/N``,
  ``\\alpha`` -> ``α``), a matrix becomes a small aligned grid in a code block, one row a line; wrapped
  lines are joined, paragraph breaks, list items and code blocks kept.
* :func:`readable_line`: the same on one line (multiple-choice options, titles); a matrix reads
  ``[[-1, -1, -1], [0, 0, 0], [1, 1, 1]]``.
* :func:`terms_text`: what the quiz grader takes key terms from: LaTeX markup ignored (never "bmatrix"),
  a matrix left out (what is *listed* to a learner) or reduced to its cells (what numbers are graded on).
* :func:`to_plain` (a pipe: markers removed, prose wrapped, no ANSI codes) and :func:`to_terminal` (rich's
  markdown, imported only then) render :func:`readable`'s markdown for the terminal.

Only what is clearly LaTeX is converted, never text inside code spans or code blocks: a known math
environment (``\\begin{bmatrix}`` ... ``\\end{bmatrix}``), ``\\(...\\)``, ``\\[...\\]``, ``$$...$$``,
``$...$`` when it reads as math (pandoc's rule: no space inside the dollars, no digit right after the
closing one, so "$5 and $10" stays; and a command, a sub/superscript, a single symbol or a formula inside),
and a few common commands standing alone (``\\alpha``, ``\\times``, ``\\frac{a}{b}``, not ``C:\\new`` or
``\\n``). Text without LaTeX and without wrapped lines comes back unchanged, and :func:`readable` of its
own output changes nothing. pylatexenc is imported the first time something needs converting.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
import threading
from collections.abc import Callable

__all__ = [
    "has_latex",
    "latex_to_text",
    "readable",
    "readable_line",
    "reflow",
    "render",
    "stdout_is_terminal",
    "terminal_width",
    "terms_text",
    "to_plain",
    "to_terminal",
]

# --- what counts as LaTeX -----------------------------------------------------------------------------
MATRIX_DELIMITERS = {
    "matrix": ("", ""),
    "smallmatrix": ("", ""),
    "array": ("", ""),
    "bmatrix": ("[", "]"),
    "pmatrix": ("(", ")"),
    "vmatrix": ("|", "|"),
    "Vmatrix": ("‖", "‖"),
    "Bmatrix": ("{", "}"),
}
_ROW_ENVIRONMENTS = ("cases", "aligned", "align", "align*", "split", "gather", "gather*", "eqnarray")
_LINE_ENVIRONMENTS = ("equation", "equation*", "displaymath", "math")
_ENVIRONMENTS = (*MATRIX_DELIMITERS, *_ROW_ENVIRONMENTS, *_LINE_ENVIRONMENTS)
_ENV_NAMES = "|".join(re.escape(e) for e in sorted(_ENVIRONMENTS, key=len, reverse=True))

# Commands converted even outside math, when they stand alone (after a space or an opening bracket).
_BARE_COMMANDS = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi rho "
    "sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega "
    "times cdot div pm leq geq neq approx sim propto infty partial nabla sum prod sqrt frac dfrac tfrac "
    "log exp max min argmax argmin rightarrow leftarrow mapsto notin subset ldots cdots"
).split()  # not two-letter ones such as \\in, \\to, \\le: inside math only
# Commands that take an argument: a space after them is not a word boundary to keep.
_TAKES_ARGUMENT = frozenset(
    "frac dfrac tfrac sqrt text textrm textbf textit texttt mathrm mathbf mathit mathcal mathbb mathsf "
    "mathtt mathfrak operatorname hat bar tilde vec dot ddot widehat widetilde overline underline "
    "boldsymbol bm left right big Big bigg Bigg bigl bigr Bigl Bigr begin end mbox hbox".split()
)

_CODE = re.compile(
    r"(?P<fence>^[ \t]{0,3}(?P<ticks>`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}(?P=ticks)[ \t]*$|\Z))"
    r"|(?P<span>(?P<bt>`+)(?:(?!\n[ \t]*\n).)+?(?<!`)(?P=bt)(?!`))",
    re.M | re.S,
)
_MATH = re.compile(
    rf"(?<!\\)(?P<env>\\begin\{{(?P<name>{_ENV_NAMES})\}}(?P<body>[^`]*?)\\end\{{(?P=name)\}})"
    r"|(?<![\\$\w])\$\$(?P<display>(?:(?!\n[ \t]*\n)[^$`])+?)\$\$(?![\w$])"
    r"|(?<!\\)\\\[(?P<bracket>(?:(?!\n[ \t]*\n)[^`])+?)\\\]"
    r"|(?<!\\)\\\((?P<paren>(?:(?!\n[ \t]*\n)[^`])+?)\\\)"
    r"|(?<![\\$\w])\$(?![\s$])(?P<dollar>(?:\\\$|[^$\n`])+?)(?<![\s\\])\$(?![\d$\w])"
    rf"|(?<![\w\\:/.'\"`])(?P<bare>\\(?:{'|'.join(sorted(_BARE_COMMANDS, key=len, reverse=True))})"
    r"(?![A-Za-z])(?:\{[^{}\n]*\}){0,2}(?:[_^](?:\{[^{}\n]*\}|[A-Za-z0-9]))*)",
    re.S,
)
_QUICK = re.compile(r"\\[A-Za-z\[\(]|\$")  # nothing of the above can match without one of these
_COMMAND = re.compile(r"\\[A-Za-z]+")
_SCRIPT = re.compile(r"(?<=[A-Za-z0-9)}\]|])[_^](?:\{|[A-Za-z0-9](?![A-Za-z0-9]))")
_SYMBOL = re.compile(r"[A-Za-z](?:_?[0-9])?'*")
_FORMULA = re.compile(r"[\w(\-][\w\s+\-*/=<>().,|!]*[\w)!]")


def _looks_like_math(content: str) -> bool:
    """Inline math, not prose between two dollar signs ("costs $5 or $10", "$HOME/bin:$PATH")."""
    content = content.strip()
    if not content or len(content) > 400:
        return False
    if _COMMAND.search(content) or _SCRIPT.search(content) or _SYMBOL.fullmatch(content):
        return True
    return bool(
        len(content) <= 80
        and _FORMULA.fullmatch(content)
        and re.search(r"[=<>+*/^-]", content)
        and re.search(r"[A-Za-z0-9]", content)
        and not re.search(r"[A-Za-z]{3,}\s+[A-Za-z]{3,}", content)  # two words: prose
    )


def has_latex(text: str) -> bool:
    """Whether ``text`` (outside its code) holds something :func:`latex_to_text` would convert."""
    return latex_to_text(text) != text


# --- pylatexenc, set up once ----------------------------------------------------------------------------
_SPACE = "\ue000"  # a space pylatexenc must keep (it drops the space after a command)
_setup_lock = threading.Lock()
_context = None


def _latex_context():
    global _context
    if _context is not None:
        return _context
    with _setup_lock:
        if _context is None:
            from pylatexenc.latex2text import MacroTextSpec, get_default_latex_context_db

            spaced = {
                "times": "×", "cdot": "·", "div": "÷", "pm": "±", "leq": "≤", "le": "≤", "geq": "≥",
                "ge": "≥", "neq": "≠", "ne": "≠", "approx": "≈", "sim": "∼", "propto": "∝", "in": "∈",
                "notin": "∉", "subset": "⊂", "to": "→", "rightarrow": "→", "leftarrow": "←", "mapsto": "↦",
                "Rightarrow": "⇒", "iff": "⇔", "mid": "|", "odot": "⊙", "otimes": "⊗", "circ": "∘",
            }  # fmt: skip
            macros = [MacroTextSpec(name, f"{_SPACE}{sign}{_SPACE}") for name, sign in spaced.items()]
            macros += [MacroTextSpec(name, simplify_repl=_fraction) for name in ("frac", "dfrac", "tfrac")]
            macros += [MacroTextSpec("sqrt", simplify_repl=_root), MacroTextSpec("|", "‖")]
            macros += [
                MacroTextSpec(name, "%(1)s")
                for name in ("mathbf", "mathrm", "mathit", "mathsf", "mathtt", "boldsymbol", "bm", "text",
                             "textrm", "textit", "textbf", "texttt", "operatorname", "mbox")
            ]  # fmt: skip
            macros += [MacroTextSpec(name, name) for name in ("argmax", "argmin")]
            db = get_default_latex_context_db()
            db.add_context_category("dl-tutor", macros=macros, prepend=True)
            _context = db
    return _context


def _argument_texts(node, l2tobj) -> list[str]:
    args = node.nodeargd.argnlist if node.nodeargd is not None else []
    return [l2tobj.nodelist_to_text([a]).strip() if a is not None else "" for a in args]


def _grouped(text: str) -> str:
    """``text`` in parentheses where an operator inside would otherwise bind wrongly (``1/(1+e^-x)``)."""
    plain = text.replace(_SPACE, " ").strip()
    if re.fullmatch(r"-?[\w.′']+|\(.*\)|\[.*\]", plain):
        return plain
    return f"({plain})"


def _fraction(node, l2tobj) -> str:
    numerator, denominator = [*_argument_texts(node, l2tobj), "", ""][:2]
    return f"{_grouped(numerator)}/{_grouped(denominator)}"


def _root(node, l2tobj) -> str:
    parts = [p for p in _argument_texts(node, l2tobj) if p]
    radicand = parts[-1] if parts else ""
    return f"√{_grouped(radicand)}" if len(parts) < 2 else f"{parts[0]}√{_grouped(radicand)}"


def _script_group(match: re.Match) -> str:
    """``e^{-x}`` -> ``e^(-x)``, ``W_{ij}`` -> ``W_ij``: a group pylatexenc would flatten ambiguously."""
    mark, body = match.group(1), match.group(2)
    if re.fullmatch(r"\s*(?:[A-Za-z0-9]+|\\[A-Za-z]+)\s*", body):
        return f"{mark}{{{body.strip()}}}"
    return f"{mark}{{({body})}}"


def _math_text(source: str, matrices: str = "inline") -> str:
    """One formula as text; ``matrices``: "inline" (``[[1, 0], [0, 1]]``), "cells" (``1 0 0 1``) or "drop"."""
    source = _MATH.sub(lambda m: _nested(m, matrices), source) if "\\begin" in source else source
    source = re.sub(r"([_^])\{([^{}]*)\}", _script_group, source)

    def keep_space(match: re.Match) -> str:
        name = match.group(1)
        return match.group(0) if name in _TAKES_ARGUMENT else f"\\{name}{_SPACE}"

    source = re.sub(r"\\([A-Za-z]+)\s+(?![{\[])", keep_space, source)
    source = re.sub(r"(?<=[^\\\s])[ \t]+(?=[^\s{\[])", _SPACE, source)  # spaces between symbols stay
    try:
        from pylatexenc.latex2text import LatexNodes2Text

        text = LatexNodes2Text(
            latex_context=_latex_context(), math_mode="text", strict_latex_spaces="based-on-source"
        ).latex_to_text(source)
    except Exception:  # pylatexenc is tolerant; anything it still rejects stays as written
        return source.replace(_SPACE, " ")
    text = text.replace(_SPACE, " ")
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", text))
    return text.strip()


def _nested(match: re.Match, matrices: str) -> str:
    """An environment inside a formula: on one line."""
    if match.group("env") is None:
        return match.group(0)
    name, body = match.group("name"), match.group("body")
    rows = _cells(name, body)
    if name in MATRIX_DELIMITERS:
        if matrices != "inline":
            return " " + (" ".join(c for row in rows for c in row) if matrices == "cells" else "") + " "
        return "[" + ", ".join("[" + ", ".join(row) + "]" for row in rows) + "]"
    return "; ".join(" ".join(c for c in row if c) for row in rows)


def _cells(name: str, body: str) -> list[list[str]]:
    """The rows of an environment, each a list of its cells as text."""
    if name == "array":
        body = re.sub(r"^\s*\{[^{}]*\}", "", body)
    body = re.sub(r"\\hline|\\toprule|\\midrule|\\bottomrule", "", body)
    rows = []
    for raw_row in re.split(r"\\\\(?:\[[^\]]*\])?", body):
        if not raw_row.strip():
            continue
        rows.append([_math_text(cell) for cell in re.split(r"(?<!\\)&", raw_row)])
    return rows


def _grid(name: str, rows: list[list[str]]) -> list[str]:
    """A matrix as aligned lines: ``[-1 -1 -1]`` / ``[ 0  0  0]``, numbers right-aligned per column."""
    left, right = MATRIX_DELIMITERS[name]
    columns = max((len(r) for r in rows), default=0)
    rows = [r + [""] * (columns - len(r)) for r in rows]
    widths = [max(len(r[c]) for r in rows) for c in range(columns)]
    return [f"{left}{' '.join(cell.rjust(widths[c]) for c, cell in enumerate(row))}{right}" for row in rows]


# --- LaTeX in a whole text ------------------------------------------------------------------------------
_BLOCK = "\ue001{}\ue001"  # a block (a matrix grid) placed on its own between paragraphs, filled in last
# A block with the blank lines and spaces around it (not the indentation of the line after it).
_BLOCK_RE = re.compile(r"[ \t]*(?:\n[ \t]*)*\ue001(\d+)\ue001[ \t]*(?:\n(?=[ \t]*\n)[ \t]*)*\n?")
_ALONE = re.compile(rf"\s*\\begin\{{(?P<name>{_ENV_NAMES})\}}(?P<body>.*)\\end\{{(?P=name)\}}\s*", re.S)


def _convert(text: str, mode: str) -> str:
    """LaTeX in ``text`` (outside its code) converted.

    ``mode``: "block" (a matrix as a code-block grid), "inline" (``[[a, b], [c, d]]``), "cells" (a matrix's
    cells, space-separated) or "drop" (matrices left out).
    """
    if not _QUICK.search(text):
        return text
    blocks: list[str] = []
    pieces, pos = [], 0
    for code in _CODE.finditer(text):
        pieces.append(_convert_prose(text[pos : code.start()], mode, blocks))
        pieces.append(code.group(0))
        pos = code.end()
    pieces.append(_convert_prose(text[pos:], mode, blocks))
    out = "".join(pieces)
    if not blocks:
        return out
    out = _BLOCK_RE.sub(lambda m: "\n\n" + blocks[int(m.group(1))] + "\n\n", out)
    return out.strip("\n") if text == text.strip("\n") else out


def _convert_prose(text: str, mode: str, blocks: list[str]) -> str:
    if not _QUICK.search(text):
        return text

    def replace(match: re.Match) -> str:
        if match.group("env") is not None:
            return _environment(match.group("name"), match.group("body"), mode, blocks)
        if match.group("bare") is not None:
            return _math_text(match.group("bare"), _matrices(mode))
        kind = next(g for g in ("display", "bracket", "paren", "dollar") if match.group(g) is not None)
        content = match.group(kind)
        if not _looks_like_math(content):
            return match.group(0)
        alone = _ALONE.fullmatch(content)
        if alone is not None and kind in ("display", "bracket"):  # \[ \begin{bmatrix}...\end{bmatrix} \]
            return _environment(alone.group("name"), alone.group("body"), mode, blocks)
        return _math_text(content, _matrices(mode))

    return _MATH.sub(replace, text)


def _environment(name: str, body: str, mode: str, blocks: list[str]) -> str:
    rows = _cells(name, body)
    if not rows:
        return " "
    if name in MATRIX_DELIMITERS:
        if mode in ("cells", "drop"):
            return " " + (" ".join(c for row in rows for c in row) if mode == "cells" else "") + " "
        if mode == "inline" or len(rows) == 1:
            return "[" + ", ".join("[" + ", ".join(row) + "]" for row in rows) + "]"
        lines = _grid(name, rows)
    else:
        lines = [" ".join(c for c in row if c) for row in rows]
        if mode != "block" or len(lines) == 1:
            return "; ".join(lines) if mode == "inline" else " ".join(lines)
    blocks.append("```\n" + "\n".join(lines) + "\n```")
    return _BLOCK.format(len(blocks) - 1)


def _matrices(mode: str) -> str:
    return "inline" if mode in ("block", "inline") else mode


def latex_to_text(text: str) -> str:
    """``text`` with its LaTeX converted (matrices as code-block grids); everything else as it was."""
    return _convert(text, "block")


# --- paragraphs -------------------------------------------------------------------------------------------
_FENCE_LINE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_BLOCK_START = re.compile(
    r"^\s*(?:[-*+•]\s|\d+[.)]{1,2}\s|\(?[a-zA-Z]\)\s|#{1,6}\s|>|\||```|~~~|$)"
    r"|^\s*([-*_])(?:\s*\1){2,}\s*$"
)
_ENDS_SENTENCE = re.compile(r"[.!?:;]['\")\]]*$")


def reflow(text: str) -> str:
    """Wrapped lines joined into paragraphs; blank lines, list items, headings, tables, code kept.

    A line is joined to the one before when that one does not end a sentence or a line-break mark (two
    spaces, a backslash) and the line goes on with it: it starts in lower case, or follows a comma, or the
    line before is long (a hard wrap, not a short label such as "Input: 32x32x3").
    """
    if "\n" not in text:
        return text
    out: list[list[str]] = []  # per output line, the source lines joined into it (linear, not quadratic)
    joinable = False  # whether out[-1] is a prose line a continuation may join
    fence: str | None = None
    code = False  # inside an indented code block
    for line in text.split("\n"):
        stripped = line.strip()
        if fence is not None:
            out.append([line])
            if _FENCE_LINE.match(line) and stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = None
            continue
        if (opening := _FENCE_LINE.match(line)) is not None:
            fence, joinable, code = opening.group(1), False, False
            out.append([line])
            continue
        if not stripped:
            out.append([line])
            joinable = False  # an indented code block goes on after a blank line
            continue
        indented = line.startswith(("    ", "\t"))
        if indented and (code or not out or not out[-1][-1].strip()):
            code, joinable = True, False  # an indented code block (after a blank line)
            out.append([line])
            continue
        code = False
        if joinable and _continues(out[-1][-1], line):
            out[-1][-1] = out[-1][-1].rstrip()
            out[-1].append(stripped)
            continue
        out.append([line])
        joinable = not _BLOCK_START.match(line) or bool(re.match(r"^\s*([-*+•]|\d+[.)]{1,2})\s", line))
        joinable = joinable and not re.match(r"^\s*(#{1,6}\s|\||>)", line)
    return "\n".join(" ".join(parts) for parts in out)


def _continues(previous: str, line: str) -> bool:
    """``previous``: the source line before (the last one joined so far), not the whole paragraph."""
    if previous.endswith(("  ", "\\")) or _BLOCK_START.match(line):
        return False
    before = previous.rstrip()
    if _ENDS_SENTENCE.search(before[-8:]):
        return False
    first = line.lstrip()[:1]
    return first.islower() or before.endswith(",") or len(before) >= 60


# --- the three views ----------------------------------------------------------------------------------
def readable(text: str | None) -> str:
    """The answer as shown (markdown): LaTeX as text, matrices as code-block grids, wrapped lines joined."""
    if not text:
        return text or ""
    return reflow(latex_to_text(text))


def readable_line(text: str | None) -> str:
    """:func:`readable` on one line (whitespace collapsed), a matrix as ``[[a, b], [c, d]]``."""
    if not text:
        return text or ""
    return " ".join(_convert(text, "inline").split())


def terms_text(text: str, *, matrix_cells: bool = False) -> str:
    """The text key terms are taken from: LaTeX as text with its markup ignored (never "bmatrix"), and a
    matrix left out, or with ``matrix_cells`` its cells only ("-1 -1 -1 0 0 0 1 1 1": what a grader
    compares numbers with). Text without LaTeX comes back unchanged."""
    return _convert(text, "cells" if matrix_cells else "drop")


# --- the terminal ---------------------------------------------------------------------------------------
def stdout_is_terminal() -> bool:
    """Whether to render for a terminal: stdout is one, and TERM is not "dumb"."""
    try:
        return sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # a closed or replaced stdout
        return False


def terminal_width(cap: int = 100, indent: int = 0) -> int:
    """Columns to render in: the terminal's width less ``indent``, at most ``cap`` (and at least 40)."""
    import shutil

    return max(40, min(cap, shutil.get_terminal_size((cap + indent, 24)).columns - indent))


_LIST_ITEM = re.compile(r"^(\s*)([-*+•]|\d+[.)]{1,2})\s+")


def to_plain(markdown: str, width: int = 100, indent: str = "  ") -> str:
    """Markdown for a pipe or a file: prose wrapped to ``width`` with ``indent``, list items hanging,
    code blocks indented without their fences and never wrapped, ``**bold**`` markers removed (``__init__``
    stays); no ANSI."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        stripped = line.strip()
        if fence is not None:
            if _FENCE_LINE.match(line) and stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = None
            else:
                out.append(f"{indent}  {line}".rstrip())
            continue
        if (opening := _FENCE_LINE.match(line)) is not None:
            fence = opening.group(1)
            continue
        if not stripped:
            out.append("")
            continue
        if line.startswith(("    ", "\t")):
            out.append(f"{indent}{line}".rstrip())
            continue
        prose = re.sub(r"(?<![\w*])\*\*(?=[^\s*])(.+?)(?<=[^\s*])\*\*(?![\w*])", r"\1", stripped)
        prose = re.sub(r"^#{1,6}\s+", "", prose)
        item = _LIST_ITEM.match(line)
        if item is not None:
            lead = indent + item.group(1) + item.group(2) + " "
            body = prose[len(item.group(2)) :].strip() if prose.startswith(item.group(2)) else prose
            out.append(_fill(body, width, lead, " " * len(lead)))
        else:
            out.append(_fill(prose, width, indent, indent))
    return "\n".join(out)


def _fill(text: str, width: int, first: str, rest: str) -> str:
    return textwrap.fill(
        text,
        width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def to_terminal(markdown: str, width: int = 100, indent: str = "  ") -> str:
    """Markdown rendered by rich for a terminal (ANSI styles), ``indent`` to its left, ``width`` wide."""
    import io

    from rich.console import Console
    from rich.markdown import Markdown
    from rich.padding import Padding

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, highlight=False, emoji=False)
    console.print(Padding(Markdown(markdown, hyperlinks=False), (0, 0, 0, len(indent))))
    return "\n".join(re.sub(r" +$", "", line) for line in buffer.getvalue().rstrip("\n").split("\n"))


def render(markdown: str, *, color: bool, width: int = 100, indent: str = "  ") -> str:
    """:func:`to_terminal` when ``color`` (stdout is a terminal), else :func:`to_plain`."""
    render_with: Callable[..., str] = to_terminal if color else to_plain
    return render_with(markdown, width=width, indent=indent)
