"""The five source documents parse into exactly their questionnaire entries (counts checked by hand)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from knowledge.flags import static_flags
from knowledge.loader import SOURCES_DIR, collect_paths, load_document
from knowledge.models import CLOZE, PLACEHOLDER, UNANSWERED, question_key
from knowledge.parsers.questionnaire import parse_bullets, parse_lines, parse_numbered

CH13, CH4, CH13_B, CH5, CS231N = (
    "000_bc2d647321f7b90f.txt",
    "001_3c8b6b165987452c.txt",
    "002_0e03a6d0dc41612b.txt",
    "003_9e7b146b1097a2d2.txt",
    "004_0cc870b9a54faf0e.txt",
)
# Counted by hand: ch13 has 43 "- " lines of which 3 are bullets inside answers; ch4 runs 1..37;
# the second ch13 set 1..9; ch5 has 23 questions (the "Further Research" header is not one);
# the flash cards are 224 lines after the title line, i.e. 112 prompt/answer pairs.
EXPECTED_COUNTS = {CH13: 40, CH4: 37, CH13_B: 9, CH5: 23, CS231N: 112}
DEV_QUERIES = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev_queries.jsonl"


@pytest.fixture(scope="module")
def docs():
    return {p.name: load_document(p) for p in collect_paths([SOURCES_DIR])}


def entry(docs, source, n):
    return docs[source].entries[n - 1]


def test_per_document_counts(docs):
    assert {name: len(doc.entries) for name, doc in docs.items()} == EXPECTED_COUNTS


def test_no_empty_question_and_sources_unchanged(docs):
    for doc in docs.values():
        assert all(e.question.strip() for e in doc.entries)
    seeds = Path(__file__).resolve().parents[2] / "shared" / "seeds"
    if seeds.exists():
        for name in EXPECTED_COUNTS:
            assert (SOURCES_DIR / name).read_bytes() == (seeds / name).read_bytes()


def test_questions_broken_around_inline_code_are_rejoined(docs):
    assert entry(docs, CH13, 8).question == (
        "What are the shapes of the `input` and`weight` parameters to PyTorch’s 2D convolution?"
    )
    assert (
        entry(docs, CH13, 13).question
        == "What is `Flatten`? Where does it need to be included in the MNIST CNN? Why?"
    )
    assert entry(docs, CH13, 22).question == "What method can we use to see that data in `DataLoaders`?"
    assert (
        entry(docs, CH13, 36).question == "What does one column of pixels in the `color_dim` plot represent?"
    )
    assert entry(docs, CH13, 13).answer.startswith("It’s basically the same as PyTorch’s `squeeze` method")


def test_answers_keep_their_own_bullet_lists(docs):
    conv = entry(docs, CH13, 10)
    assert conv.question == "What is the relationship between a convolution and a matrix multiplication?"
    assert (
        "- It has various zeros\n- Some of the weights are equal. This is referred to as shared weights"
        in conv.answer
    )
    benefits = entry(docs, CH13, 32)
    assert benefits.answer.count("\n- By training with higher learning rates") == 2
    # the next bullet after the answer's list is a question again
    assert entry(docs, CH13, 11).question == "What is a “convolutional neural network”?"


def test_latex_unanswered_and_placeholders(docs):
    assert entry(docs, CH13, 2).answer.startswith(r"\begin{bmatrix} -1 & -1 & -1")
    no_answer = entry(docs, CH13, 3)
    assert no_answer.answer == "" and static_flags(no_answer.question, no_answer.answer) == {UNANSWERED}
    for n in (7, 18, 19):  # "To be completed by the reader", "Excel sheet is not available."
        e = entry(docs, CH13, n)
        assert PLACEHOLDER in static_flags(e.question, e.answer), e
    assert static_flags("What is padding?", "Padding is extra pixels around the image.") == set()


def test_numbered_with_indented_answers(docs):
    first = entry(docs, CH4, 1)
    assert first.question == "How is a greyscale image represented on a computer? How about a color image?"
    assert first.answer.startswith("For greyscale, 1 number")
    assert entry(docs, CH4, 37).question.startswith("The universal approximation theorem")


def test_numbered_with_ans_markers_and_stray_lines(docs):
    assert (
        entry(docs, CH13_B, 6).question
        == "Draw up the benefits and drawbacks of practicing in larger batches?"
    )
    seventh = entry(docs, CH13_B, 7)
    assert "completed later" not in seventh.answer and "completed later" not in seventh.question
    assert seventh.answer.startswith("A learning rate that is too large")
    assert entry(docs, CH13_B, 2).answer.startswith(
        "How does kernel size affect CNN?\n\nIncreasing kernel size"
    )
    assert all("Assignment 03" not in e.question for e in docs[CH13_B].entries)


def test_unmarked_lines_with_wrapped_questions_and_header(docs):
    ch5 = docs[CH5].entries
    assert ch5[5].question == "What method does fastai provide to view the data in a DataLoaders?"
    assert ch5[5].answer == "show_batch()"
    assert (
        ch5[2].question
        == "Look up the documentation for L and try using a few of the new methods that it adds."
    )
    assert ch5[2].answer == ""
    assert ch5[20].question == "What is the difference between resnet50 and resnet101?"
    assert ch5[16].answer == "??"  # an answer made of punctuation is not a question
    assert ch5[14].answer.splitlines()[0] == "- Get the rate that is 1 order of magnitude below the min loss."
    assert all(e.question != "Further Research" and "Further Research" not in e.answer for e in ch5)
    assert ch5[-1].question.startswith("Find the paper by Leslie Smith") and ch5[-1].answer == ""


def test_flashcards_terms_and_cloze(docs):
    cards = docs[CS231N].entries
    assert cards[0].question == "Formula for calculating output width/height"
    assert cards[0].answer == "(W−F+2P)/S+1"
    assert cards[-1].answer == "yes"
    cloze = [e for e in cards if CLOZE in static_flags(e.question, e.answer)]
    assert len(cloze) == 20
    assert "with softmax, we replace hinge loss with ____" in {e.question for e in cloze}
    assert "L-BFGS" in {e.question for e in cards}  # a bare term is still a prompt


def test_every_dev_query_expectation_is_an_item(docs):
    """The parsers keep question text intact: every expected entry of the dev set exists."""
    if not DEV_QUERIES.exists():
        pytest.skip("shared/eval not beside the checkout")
    keys = {(name, question_key(e.question)) for name, doc in docs.items() for e in doc.entries}
    for line in DEV_QUERIES.read_text().splitlines():
        for expected in json.loads(line)["expect"]:
            assert (expected["source"], question_key(expected["question"])) in keys, expected


@pytest.mark.parametrize("parser", [parse_bullets, parse_numbered, parse_lines])
def test_parsers_reject_documents_without_entries(parser):
    from knowledge.errors import ParseError

    with pytest.raises(ParseError):
        parser("\n\n", "empty.txt")


def test_bullets_edge_cases():
    text = "Intro:\n\n- What is\n`x`\n\n?\n\nIt is:\n\n- one\n- two\n\n- Why?\n- Next one?\n\nYes."
    entries = parse_bullets(text)
    assert [e.question for e in entries] == ["What is `x`?", "Why?", "Next one?"]
    assert entries[0].answer == "It is:\n\n- one\n- two"
    assert entries[1].answer == ""
    assert entries[2].answer == "Yes."


def test_numbered_rejects_out_of_sequence_numbers():
    text = "1. First?\n    Answer with\n    3. not an entry\n2. Second?\n    B"
    entries = parse_numbered(text)
    assert [e.question for e in entries] == ["First?", "Second?"]
    assert "3. not an entry" in entries[0].answer
    assert re.search(r"Answer with", entries[0].answer)
