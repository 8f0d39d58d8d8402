"""The shared word tables (knowledge.words): each use's stopwords exactly as before, one stemmer that is both
old stemmers, one glossary both the retriever and the grader expand the same way."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.parse import _WORDS as ENGINE_NUMBER_WORDS
from index.evaluate import default_query_files
from index.lexical import QUERY_FILLERS, terms
from index.text import QUERY_EXPANSIONS, expand_abbreviations, retrieval_query
from knowledge.loader import SOURCES_DIR
from knowledge.quiz.calibrate import ANSWERS_DIR, FRESH_DIR, LABELS
from knowledge.quiz.grading import (
    _EXPANSIONS,
    _TOKEN,
    ANSWER_FILLERS,
    _stem,
    canonical_answer_text,
    key_terms,
)
from knowledge.words import ABBREVIATIONS, BRITISH_SPELLINGS, NUMBER_WORDS, STOPWORDS, light_stem

ROOT = Path(__file__).resolve().parent.parent

# The two stopword lists as they were before knowledge.words (index/lexical.py, knowledge/quiz/grading.py).
OLD_QUERY_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each even ever every few for from further get gets
    getting give given go going got had has have having he her here hers him his how i if in into is it its
    itself just know let like me mean means meant more most much must my need no nor not now of off on once
    one only or other our out over own please really same say she should show so some such tell than thanks
    that the their them then there these they thing things this those through to too under until up us use
    used using very want was way we well were what whats when where which while who whom why will with would
    yes yet you your yours quick question hey hi hello bot explained explain work works does vs versus""".split()
)
OLD_ANSWER_STOPWORDS = frozenset(
    """a an the of to in on at by for with from and or but is are was were be been being it its this that these
    those as into than then so such can could would should will may might do does did done have has had
    there their they them we our you your i my me he she his her which who whom what when where why how also
    just only very much more most some any each every all both either neither other another same own about
    over under again further once here eg ie etc via per up down out off if because while
    called basically generally usually often make makes made get gets got use used uses using refer refers
    referred many way ways thing things able lot kind type sort actually simply really well let lets like""".split()
)


# The two stemmers as they were (index.lexical.light_stem, knowledge.quiz.grading._stem).
def old_query_stem(word: str) -> str:
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def old_answer_stem(word: str) -> str:
    word = re.sub(r"is(e|ed|es|ing|ation|ations)$", r"iz\1", word)
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "as")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    if len(word) > 7 and word.endswith("ation"):
        word = word[:-5]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


@pytest.fixture(scope="module")
def data_words() -> set[str]:
    """Every word of the bundled sources and the labelled data, as the retriever and the grader split it."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(SOURCES_DIR.glob("*.txt"))]
    labelled = [
        LABELS,
        *FRESH_DIR.glob("*.jsonl"),
        *ANSWERS_DIR.glob("*.jsonl"),
        *(ROOT / "index" / "data").glob("**/*.jsonl"),
        *(p for p in default_query_files() if p.is_file()),
    ]
    for path in labelled:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.extend(_strings(json.loads(line)))
    found: set[str] = set()
    for text in texts:
        found |= terms(text)
        for token in _TOKEN.findall(canonical_answer_text(text)):
            found |= {token, *(part for part in token.split("_") if part)}
    assert len(found) > 3000  # the data is there
    return found


def test_each_use_drops_exactly_the_words_it_dropped_before():
    assert QUERY_FILLERS == OLD_QUERY_STOPWORDS
    assert ANSWER_FILLERS == OLD_ANSWER_STOPWORDS
    assert STOPWORDS == OLD_QUERY_STOPWORDS & OLD_ANSWER_STOPWORDS  # the core: what both drop


def test_one_stemmer_is_both_old_ones(data_words):
    assert [w for w in data_words if light_stem(w) != old_query_stem(w)] == []
    # the grader's tokens never hold an apostrophe (its tokens are [a-z][a-z0-9_]*)
    assert [w for w in data_words if "'" not in w and _stem(w) != old_answer_stem(w)] == []


def test_stemmer_options():
    assert light_stem("relus") == "relu" and light_stem("transformers") != light_stem("transformation")
    assert light_stem("model's") == "model"
    assert _stem("normalising") == _stem("normalization") == _stem("normalize")
    assert _stem("bias") == "bias" and light_stem("bias") == "bia"
    assert _stem("layers") == _stem("layer")


def test_one_glossary_expanded_the_same_way_by_both_uses():
    for short, long in ABBREVIATIONS.items():
        assert short == short.lower()
        # the retriever spells it out with the same words (keeping a short form the notes also write)
        assert QUERY_EXPANSIONS[short].startswith(long), short
        # the grader spells it out with the same words, lower-cased and split as it splits an answer
        assert _EXPANSIONS[short] == tuple(_TOKEN.findall(long.lower())), short
    for british, american in BRITISH_SPELLINGS.items():
        assert QUERY_EXPANSIONS[british] == american
        assert _EXPANSIONS[british] == (american,)
    assert expand_abbreviations("lr and sgd") == "learning rate and stochastic gradient descent SGD"
    assert key_terms("CE loss") == key_terms("cross-entropy loss")
    assert key_terms("train the convs with sgd") == key_terms(
        "train the convolutions with stochastic gradient descent"
    )
    assert retrieval_query("std of a colour image") == "standard deviation of a color image"


def test_expansion_never_inside_dotted_code():
    assert expand_abbreviations("params.data -= lr*params.grad; dls.show_batch()") == (
        "params.data -= learning rate*params.grad; dls.show_batch()"
    )
    assert expand_abbreviations("nn.ReLU or F.relu") == "nn.ReLU or F.relu"


def test_number_words_agree_with_the_engines():
    assert canonical_answer_text("two or twenty") == "2 or 20"
    shared = NUMBER_WORDS.keys() & ENGINE_NUMBER_WORDS.keys()
    assert len(shared) >= 15
    assert {w: NUMBER_WORDS[w] for w in shared} == {w: str(ENGINE_NUMBER_WORDS[w]) for w in shared}
