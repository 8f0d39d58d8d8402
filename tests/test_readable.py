"""Answers as shown: LaTeX as text, wrapped lines joined, markdown for the terminal or a pipe (no model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from index.answer import ANSWERED, Answer, Citation
from knowledge.loader import SOURCES_DIR, load_document
from knowledge.readable import (
    latex_to_text,
    readable,
    readable_line,
    reflow,
    terms_text,
    to_plain,
    to_terminal,
)

TOP_EDGE = r"\begin{bmatrix} -1 & -1 & -1\\ 0 & 0 & 0 \\ 1 & 1 & 1 \end{bmatrix}"  # source 000, entry 2
TOP_EDGE_QUESTION = "Write out the convolutional kernel matrix for a top edge detector."
GRID = "```\n[-1 -1 -1]\n[ 0  0  0]\n[ 1  1  1]\n```"


# --- LaTeX ----------------------------------------------------------------------------------------------
def test_the_top_edge_kernel_reads_as_a_grid_one_row_a_line():
    assert readable(TOP_EDGE) == GRID
    assert readable_line(TOP_EDGE) == "[[-1, -1, -1], [0, 0, 0], [1, 1, 1]]"
    assert terms_text(TOP_EDGE).strip() == ""  # no "bmatrix", no bare numbers
    assert terms_text(TOP_EDGE, matrix_cells=True).split() == ["-1", "-1", "-1", "0", "0", "0", "1", "1", "1"]


def test_a_matrix_inside_a_paragraph_gets_its_own_block():
    text = (
        "If we want to create the following matrix:\n\n\\begin{bmatrix} 0 & 1 & -2\\\\ 3 & 4 & 5 \\\\ 6 & 7 & 8 "
        "\\end{bmatrix} here is one way to do so:`>>> print(x) [[0 1 2]]`"
    )
    assert readable(text) == (
        "If we want to create the following matrix:\n\n```\n[0 1 -2]\n[3 4  5]\n[6 7  8]\n```\n\n"
        "here is one way to do so:`>>> print(x) [[0 1 2]]`"
    )


@pytest.mark.parametrize(
    ("latex", "text"),
    [
        (r"The loss at init is $-\log(1/N)$.", "The loss at init is -log(1/N)."),
        (r"sigmoid is $\frac{1}{1+e^{-x}}$", "sigmoid is 1/(1+e^(-x))"),
        (r"the weight \(W_{ij}\) and $x_i^2$", "the weight W_ij and x_i^2"),
        (r"for $N$ classes", "for N classes"),
        (r"$a \times b \leq c$", "a × b ≤ c"),
        (r"$$\sum_{i=1}^{N} L_i + \lambda R(W)$$", "∑_(i=1)^N L_i + λ R(W)"),
        (r"the rate \eta and \alpha, \frac{1}{2} of it", "the rate η and α, 1/2 of it"),
        (r"$\sqrt{d_k}$ and $\mathbf{x} \cdot \mathbf{w}$", "√d_k and x · w"),
        (r"\[ A = \begin{pmatrix} a & b \\ c & d \end{pmatrix} \]", "A = [[a, b], [c, d]]"),
    ],
)
def test_inline_math_and_common_commands(latex, text):
    assert readable(latex) == text


@pytest.mark.parametrize(
    "text",
    [
        "It costs $5 and $10, or $5-$10 in all.",
        "export PATH=$HOME/bin:$PATH",
        r"Saved to C:\new\table and C:\Users\alpha\notes.txt",
        r"\\server\share\times",
        r"use `\alpha` or `$x$` in code, print('\n'), \n and \t",
        "```latex\n\\begin{bmatrix} 1 & 0 \\\\ 0 & 1 \\end{bmatrix}\n```",
        "snake_case, __init__, _private, a__b, x_1",
        r"see \[1\] and the escaped \(parens\)",
        "(W−F+2P)/S+1",
        "5x5x3 + 1 for bias = 76",
        "-log(1/N)",
        "1.) saturated neurons kill gradients, 2.) outputs not zero-centered",
        "- It has various zeros\n- Some of the weights are equal.",
        "Pros:\nfast\nCons:\nslow",
        "Input: 32x32x3\nOutput: 10",
        "",
    ],
)
def test_text_without_latex_or_wrapped_lines_is_unchanged(text):
    assert readable(text) == text
    assert terms_text(text) == text
    assert latex_to_text(text) == text


def test_every_bundled_entry_without_latex_is_unchanged():
    changed = []
    for path in sorted(SOURCES_DIR.glob("*.txt")):
        for entry in load_document(path).entries:
            for text in (entry.question, entry.answer):
                if readable(text) != text:
                    changed.append(text)
    assert changed and all("\\begin{bmatrix}" in text for text in changed), changed


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\\$\n\r"), max_size=200))
def test_text_without_backslash_dollar_or_newline_is_unchanged(text):
    assert readable(text) == text and terms_text(text) == text


FRAGMENTS = [
    TOP_EDGE, "$x_i$", r"\(a+b\)", r"\alpha ", "$5", " `code $x$` ", "\n", "\n\n", "\n```\n", "- item ", "word ",
    "lower ", "Upper. ", " \\ ",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12))
def test_readable_is_idempotent(parts):
    once = readable("".join(parts))
    assert readable(once) == once


# --- paragraphs ----------------------------------------------------------------------------------------
def test_wrapped_lines_are_joined_and_real_breaks_kept():
    wrapped = "Look up the documentation for L\nand try using a few of the new methods that it adds."
    assert reflow(wrapped) == wrapped.replace("\n", " ")
    text = (
        "A convolution is a matrix multiplication. This (weight) matrix has\ntwo properties:\n\n"
        "- It has various zeros\n- Some of the weights are equal. This is referred to as\nshared weights\n\n"
        "```python\nx = conv(\n    y)\n```\n\nThe end of a line that is long enough to be a hard wrap of the text\nText"
    )
    assert reflow(text) == (
        "A convolution is a matrix multiplication. This (weight) matrix has two properties:\n\n"
        "- It has various zeros\n- Some of the weights are equal. This is referred to as shared weights\n\n"
        "```python\nx = conv(\n    y)\n```\n\nThe end of a line that is long enough to be a hard wrap of the text Text"
    )
    assert reflow("a line ending in a hard break  \nnext") == "a line ending in a hard break  \nnext"
    assert reflow("# Heading\nnext line") == "# Heading\nnext line"


# --- the terminal --------------------------------------------------------------------------------------
def test_plain_output_has_no_ansi_and_keeps_code_unwrapped():
    markdown = readable("Some **bold** text.\n\n" + TOP_EDGE + "\n\n```\n" + "x = 1; " * 30 + "\n```")
    plain = to_plain(markdown, width=40)
    assert "\x1b" not in plain and "```" not in plain and "**" not in plain
    assert "    [-1 -1 -1]\n    [ 0  0  0]\n    [ 1  1  1]" in plain
    assert ("x = 1; " * 30).rstrip() in plain  # code is never wrapped
    assert all(len(line) <= 40 for line in plain.splitlines() if "x = 1" not in line)


def test_terminal_output_is_rich_markdown():
    shown = to_terminal(readable("Some **bold** text.\n\n- one\n- two"), width=60)
    assert "\x1b[" in shown and "bold" in shown and "•" in shown and "**" not in shown


class _OneAnswer:
    """A retriever that knows one entry: the top-edge kernel."""

    def ask(self, text):
        return Answer(
            ANSWERED, text, TOP_EDGE, TOP_EDGE_QUESTION, 2, "000_bc2d647321f7b90f.txt", 2, 1.0,
            (Citation("000_bc2d647321f7b90f.txt", 2, "Fastbook ch. 13", 2),),
        )  # fmt: skip


def test_tutor_ask_piped_is_plain_and_json_keeps_its_shape(monkeypatch):
    import tutor.ask

    monkeypatch.setattr(tutor.ask, "_retriever", lambda model_dir=None: _OneAnswer())
    result = CliRunner().invoke(tutor.ask.ask, ["top edge kernel?"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "bmatrix" not in result.output
    assert "    [-1 -1 -1]\n    [ 0  0  0]\n    [ 1  1  1]\n" in result.output
    shown = json.loads(CliRunner().invoke(tutor.ask.ask, ["--json", "top edge kernel?"]).output)
    assert list(shown) == list(_OneAnswer().ask("x").to_json()) and shown["answer"] == GRID


# --- grading -------------------------------------------------------------------------------------------
def test_key_terms_come_from_the_readable_text():
    from knowledge.quiz.grading import Grader, key_terms

    assert "bmatrix" not in key_terms(TOP_EDGE)
    assert key_terms(r"the loss $-\log(1/N)$") == key_terms("the loss -log(1/N)")

    def embed(texts):  # every text the same vector: the grade comes from the rules and the blend
        return np.ones((len(texts), 4), np.float32) / 2

    grader = Grader(embed)
    for answer in ("negative weights on the top row, positive on the bottom", "I don't know", ""):
        grade = grader.grade(TOP_EDGE, answer, question=TOP_EDGE_QUESTION)
        assert grade.missing == (), (answer, grade)  # was ("bmatrix", "-1", "0", "1")
    # The matrix's numbers still grade: its own numbers are right, other numbers wrong.
    right, other = "[[-1,-1,-1],[0,0,0],[1,1,1]]", "[[2,2,2],[5,5,5],[3,3,3]]"
    assert grader.grade(TOP_EDGE, right, question=TOP_EDGE_QUESTION).verdict == "correct"
    assert grader.grade(TOP_EDGE, other, question=TOP_EDGE_QUESTION).verdict == "wrong"
    # Words around a formula are still listed.
    prose = r"The softmax loss at init is $-\log(1/N)$ for N classes"
    assert "softmax" in grader.grade(prose, "no idea really", question="loss at init?").missing


# --- Discord -------------------------------------------------------------------------------------------
def test_discord_keeps_markdown_and_the_matrix_rows():
    from datetime import UTC, datetime

    from bot.exts.ask._embeds import answer_embeds
    from bot.exts.quiz._embeds import graded_embed, question_embed
    from knowledge.quiz.models import Graded, Question

    assert answer_embeds(_OneAnswer().ask("kernel?")).first.description == GRID
    graded = Graded(
        "s", 0, 1, 2, "free", "partly", 0.47, "negative on top", TOP_EDGE, None, None, (), (), False, 2, 2,
        "grade", datetime.now(UTC), "in 6 minutes", "000_bc2d647321f7b90f.txt", 2, "Fastbook ch. 13",
    )  # fmt: skip
    fields = {f.name: f.value for f in graded_embed(graded, None).fields}
    assert fields["Reference answer"] == GRID and "Key terms you missed" not in fields
    question = Question(
        "s", 0, 3, 1, 2, "mc", "Which kernel finds top edges?", (TOP_EDGE, "A zero matrix."), False, True,
        "kernels", "000_bc2d647321f7b90f.txt", 2, "Fastbook ch. 13", "asking",
    )  # fmt: skip
    description = question_embed(question).description
    assert "**A)** [[-1, -1, -1], [0, 0, 0], [1, 1, 1]]\n**B)** A zero matrix." in description
