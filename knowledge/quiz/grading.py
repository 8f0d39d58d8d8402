"""Free-answer grading: semantic similarity to the reference plus key-term coverage, with factual overrides.

Why both signals: MiniLM similarity rewards a paraphrase ("the size of the mini batch" ~ "batch size", 0.75)
but cannot tell "[0,1]" from "[-1,1]" (0.70) or "76" from "75" (0.83); key terms (normalised numbers,
intervals, stems) catch exactly those and miss paraphrases. So

    score = SEMANTIC_WEIGHT * cosine(answer, reference) + (1 - SEMANTIC_WEIGHT) * coverage

where ``coverage`` is the share of the reference's key terms (at most ``COVERAGE_CAP`` of them, so a long
reference does not demand every word) found in the answer. Rules decide before the blend where the content is
unambiguous:

* normalised key terms equal, or a short reference fully covered -> correct (1.0): "cross-entropy loss",
  "Cross entropy loss" and "CE loss" are the same answer; "(-1, 1)", "[-1,1]" and "between -1 and 1" too.
* a numeric reference ("76", "[-1,1]", "5x5x3 + 1 for bias = 76") answered with other numbers -> wrong;
  with its result (the number after the last "=", or its only number) -> correct.
* a yes/no or true/false reference answered with the opposite polarity -> wrong; with the same polarity ->
  correct when the reference is only that word, at least "partly" otherwise.
* empty or "I don't know" -> wrong.

Verdicts: ``score >= CORRECT_MIN`` correct, ``>= PARTLY_MIN`` partly, else wrong. Cloze blanks are graded
leniently: both thresholds drop by ``CLOZE_LENIENCY``, and a multi-blank answer ("10; row of W") is graded
blank by blank.

Calibration: ``knowledge/quiz/data/grading_labels.jsonl`` holds 180 answers written for this purpose to 64
items of the bundled documents (77 correct, 38 partly, 65 wrong: paraphrases, short factual answers, cloze
blanks, near-misses such as "[0,1]" for "[-1,1]"). A grid search over the weight (0.4-0.8), both thresholds
(0.20-0.90) and the cloze leniency (0-0.12) chose SEMANTIC_WEIGHT 0.80, CORRECT_MIN 0.64, PARTLY_MIN 0.40,
CLOZE_LENIENCY 0.0 (cloze leniency comes from grading the blank alone, without its remark in parentheses and
without the prompt's own words, rather than from lower thresholds: any offset cost accuracy).
Accuracy 0.861 (155/180) on the set; 0.839 with 5-fold cross-validation by item (thresholds searched on the
other folds). Confusion (rows label, columns verdict; correct/partly/wrong): correct 72/4/1,
partly 4/22/12, wrong 1/3/61. Most misses are terse partial answers ("gamma", "an activation function")
graded wrong. Reproduce: ``tutor quiz --calibrate`` (``--search`` re-runs the grid and the cross-validation).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from knowledge.readable import terms_text
from knowledge.words import ABBREVIATIONS, BRITISH_SPELLINGS, NUMBER_WORDS, STOPWORDS, light_stem


class Verdict(StrEnum):
    """A typed answer's grade; a ``str``, so what SQLite and JSON hold is the plain value ("correct")."""

    CORRECT = "correct"
    PARTLY = "partly"
    WRONG = "wrong"


CORRECT, PARTLY, WRONG = Verdict.CORRECT, Verdict.PARTLY, Verdict.WRONG
VERDICTS = tuple(Verdict)

SEMANTIC_WEIGHT = 0.8
CORRECT_MIN = 0.64
PARTLY_MIN = 0.40
CLOZE_LENIENCY = 0.0
COVERAGE_CAP = 6

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Thresholds:
    semantic_weight: float = SEMANTIC_WEIGHT
    correct_min: float = CORRECT_MIN
    partly_min: float = PARTLY_MIN
    cloze_leniency: float = CLOZE_LENIENCY


@dataclass(frozen=True)
class Grade:
    """A verdict on one answer, with the evidence a learner can act on (what matched, what was missing)."""

    verdict: str
    score: float  # 0..1
    similarity: float | None  # cosine(answer, reference); None when a rule decided without the model
    coverage: float
    matched: tuple[str, ...]
    missing: tuple[str, ...]
    rule: str  # "exact", "numbers", "polarity", "blend", "empty"


# --- key terms ------------------------------------------------------------------------------------------
# The words an answer can drop: the shared stopwords, plus hedges, "called"/"refers to" and the like. Not
# "not", "no", "before", "after", "between", "few": in an answer they are content.
ANSWER_FILLERS = STOPWORDS | frozenset(
    """another either neither many may might often per via eg ie etc
    able called done make makes made uses refer refers referred lets ways kind lot sort type
    actually basically generally usually simply""".split()
)
# Pairs a sentence encoder scores as near-synonyms (cosine("bigger", "smaller") = 0.81); stems, both ways.
_ANTONYMS = {
    a: b
    for x, y in [
        ("larger", "smaller"), ("higher", "lower"), ("increas", "decreas"), ("more", "less"), ("positiv", "negativ"),
        ("train", "test"), ("linear", "nonlinear"), ("sparse", "dens"), ("max", "min"), ("maximum", "minimum"),
        ("early", "late"), ("overfit", "underfit"), ("fast", "slow"), ("stochastic", "batch"), ("wide", "narrow"),
        ("small", "larg"), ("column", "row"), ("input", "output"), ("first", "last"), ("local", "global"),
    ]
    for a, b in ((x, y), (y, x))
}  # fmt: skip
_DONT_KNOW = re.compile(
    r"^\s*(i\s*(do\s*n[o']?t|dont|have\s*no\s*idea)\s*(know|remember|idea)?|idk|dunno|no\s*idea|not\s*sure"
    r"|pass|skip|\?+|-+|\.+|n/?a|none)\s*[.!?]*\s*$",
    re.IGNORECASE,
)
_NUMBER_WORD = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b(?!-)")
_SYNONYMS = {"bigger": "larger", "greater": "larger"}  # the grader's own: one word for the _ANTONYMS above
_NUM = r"-?\d+(?:\.\d+)?"
_INTERVAL = re.compile(rf"[\[(]\s*({_NUM})\s*[,;]\s*({_NUM})\s*[\])]")
_RANGE_WORDS = re.compile(
    rf"\b(?:between|from)\s+({_NUM})\s+(?:and|to)\s+({_NUM})\b|({_NUM})\s+to\s+({_NUM})\b"
)
_TOKEN = re.compile(r"range[-\d.]+_[-\d.]+|-?\d+(?:\.\d+)?(?:x\d+(?:\.\d+)?)*|[a-z][a-z0-9_]*")
# Short forms and British spellings (``knowledge.words``) and the synonyms above, expanded on both sides so
# either spelling matches ("CE loss" is "cross entropy loss"), lower-cased and split as an answer is.
_EXPANSIONS = {
    short: tuple(_TOKEN.findall(long.lower()))
    for short, long in {**ABBREVIATIONS, **BRITISH_SPELLINGS, **_SYNONYMS}.items()
}
_POSITIVE = frozenset({"yes", "yeah", "yep", "true", "correct", "right"})
_NEGATIVE = frozenset({"no", "nope", "false", "not", "incorrect", "wrong", "never"})


def _num(text: str) -> str:
    value = float(text)
    return str(int(value)) if value == int(value) else repr(value)


def canonical_answer_text(text: str) -> str:
    """An answer or reference lower-cased, its numbers, intervals, dimensions and symbols spelled one way
    each (what key terms are read from): "between -1 and 1" and "(−1, 1)" are both " range-1_1 "."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = t.replace("−", "-").replace("–", "-").replace("—", " ").replace("×", "x").replace("∗", "*")
    t = re.sub(r"\\[a-z]+|[`$]", " ", t)
    t = re.sub(r"n't\b", " not", t)
    t = re.sub(r"'s\b", "", t)
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)  # 30,731 -> 30731
    t = _NUMBER_WORD.sub(lambda m: NUMBER_WORDS[m.group(1)], t)
    t = _INTERVAL.sub(lambda m: f" range{_num(m.group(1))}_{_num(m.group(2))} ", t)
    t = _RANGE_WORDS.sub(
        lambda m: f" range{_num(m.group(1) or m.group(3))}_{_num(m.group(2) or m.group(4))} ", t
    )
    t = re.sub(r"(?<=\d)\s*[x*]\s*(?=\d)", "x", t)  # 7 x 7, 7*7 -> 7x7
    t = re.sub(r"(?<=\d)\s*%", " percent", t)
    return t


def _stem(word: str) -> str:
    """Inflection, -ation and British spelling: "layers" ~ "layer", "normalising" ~ "normalization"; "bias"
    and "basis" keep their s."""
    return light_stem(word, ise_to_ize=True, keep_us_is_as=True, ation=True)


def _is_number(token: str) -> bool:
    return token.startswith("range") or bool(re.fullmatch(r"-?\d[\d.x]*", token))


def key_terms(text: str) -> list[str]:
    """Content tokens in order: stems of non-stopwords, normalised numbers and intervals."""
    return [term for term, _word, _listed in _terms_with_words(text)]


def _listed_terms(text: str) -> tuple[str, ...]:
    """The words of ``text``'s key terms a learner is shown (all missed when nothing was answered)."""
    return tuple(dict.fromkeys(word for _term, word, listed in _terms_with_words(text) if listed))


def _terms_with_words(text: str) -> list[tuple[str, str, bool]]:
    """(term, the word it came from, listed): feedback names "negative", not the stem "negativ".

    Terms come from the text as it reads (``knowledge.readable``): LaTeX markup is never a term. A
    matrix's cells count for grading (its numbers are its content) but are not *listed* as key terms:
    ``\\begin{bmatrix} -1 & ...`` grades on -1, 0, 1 and lists nothing, not "bmatrix, -1, 0, 1".
    """
    graded = _tokens(terms_text(text, matrix_cells=True))
    shown_text = terms_text(text)
    if shown_text == text:  # no LaTeX: every term is listed
        return [(term, word, True) for term, word in graded]
    shown = {term for term, _word in _tokens(shown_text)}
    return [(term, word, term in shown) for term, word in graded]


def _tokens(text: str) -> list[tuple[str, str]]:
    terms: list[tuple[str, str]] = []
    for token in _TOKEN.findall(canonical_answer_text(text)):
        parts = [token] if _is_number(token) else token.split("_")
        expanded = [w for part in parts if part for w in _EXPANSIONS.get(part, (part,))]
        for word in expanded:
            if _is_number(word):
                terms.append((word, word))
            elif word not in ANSWER_FILLERS and (len(word) > 1 or word in "wbxyzfpsnk"):
                terms.append((_stem(word), word))
    return terms


def _polarity(text: str) -> int:
    words = re.findall(r"[a-z']+", text.lower())
    if not words:
        return 0
    first = words[0].rstrip(".,!")
    if first in _POSITIVE:
        return 1
    if first in _NEGATIVE or first in {"doesn't", "isn't", "don't", "can't", "won't"}:
        return -1
    return 0


def _result_numbers(reference: str, terms: list[str]) -> set[str]:
    """The number(s) a numeric reference asks for: what follows the last "=", else all of them."""
    if "=" in reference:
        after = [t for t in key_terms(reference.rsplit("=", 1)[1]) if _is_number(t)]
        if after:
            return set(after)
    return {t for t in terms if _is_number(t)}


# --- grading ----------------------------------------------------------------------------------------------
class Grader:
    """Grades answers against references; ``embed`` is the shared sentence encoder (injected, thread-safe)."""

    def __init__(self, embed: Embed | object, thresholds: Thresholds | None = None):
        self._embed: Embed = embed.encode if hasattr(embed, "encode") else embed  # type: ignore[assignment]
        self.thresholds = thresholds or Thresholds()
        self._cache: dict[str, np.ndarray] = {}  # references repeat; bounded below
        self._cache_lock = threading.Lock()

    def with_thresholds(self, thresholds: Thresholds) -> Grader:
        """The same grader (sharing its embedding cache) with other thresholds: calibration's grid."""
        clone = Grader(self._embed, thresholds)
        clone._cache, clone._cache_lock = self._cache, self._cache_lock
        return clone

    def vectors(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Embeddings of ``texts`` through the cache (the trained grader shares it). Thread-safe."""
        with self._cache_lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
        todo = list(dict.fromkeys(t for t in texts if t not in found))
        if todo:
            fresh = dict(zip(todo, self._embed(todo), strict=True))  # outside the lock: encoding is slow
            found.update(fresh)
            with self._cache_lock:
                if len(self._cache) + len(fresh) > 20_000:
                    self._cache.clear()
                self._cache.update(fresh)
        return found

    def grade(self, reference: str, answer: str, *, question: str = "", cloze: bool = False) -> Grade:
        return self.grade_many([(reference, answer, cloze)], questions=[question])[0]

    def grade_many(
        self, cases: Sequence[tuple[str, str, bool]], questions: Sequence[str] | None = None
    ) -> list[Grade]:
        """Grade (reference, answer, cloze) triples with one batched encoder call.

        The question, when given, removes its own words from the reference's key terms: "What is stride?"
        need not be answered "stride is ...".
        """
        questions = list(questions) if questions is not None else [""] * len(cases)
        parts = [self._blanks(ref, ans, cloze) for ref, ans, cloze in cases]
        vectors = self.vectors(sorted({t for blanks in parts for pair in blanks for t in pair if t}))

        def cos(a: str, b: str) -> float:
            return float(vectors[a] @ vectors[b])

        out = []
        for (_ref, answer, cloze), blanks, question in zip(cases, parts, questions, strict=True):
            if _DONT_KNOW.match(answer) or not answer.strip():
                out.append(Grade(WRONG, 0.0, None, 0.0, (), _listed_terms(_ref), "empty"))
                continue
            given = set(key_terms(question))
            grades = [
                self._grade_one(ref, ans, cos, cloze, given)
                if ans
                else Grade(WRONG, 0.0, None, 0.0, (), _listed_terms(ref), "empty")
                for ref, ans in blanks
            ]
            out.append(grades[0] if len(grades) == 1 else self._combine(grades, cloze))
        return out

    @staticmethod
    def _blanks(reference: str, answer: str, cloze: bool) -> list[tuple[str, str]]:
        """One (reference, answer) pair per blank when both list the same number of blanks."""
        if cloze:  # the blank's answer only: "0 (only occurs in pathological setting of W=0)" -> "0"
            reference = re.sub(r"\s*\([^)]*\)", "", reference).strip() or reference
        if cloze and ";" in reference:
            refs = [r.strip() for r in reference.split(";") if r.strip()]
            answers = [a.strip() for a in re.split(r"[;,]|\band\b", answer) if a.strip()]
            if len(refs) > 1 and len(answers) <= len(refs):  # blanks in order; a missing one scores 0
                return list(zip(refs, answers + [""] * (len(refs) - len(answers)), strict=True))
        if not answer.strip() or _DONT_KNOW.match(answer):
            return []
        return [(reference.strip(), answer.strip())]

    def _combine(self, grades: list[Grade], cloze: bool) -> Grade:
        score = float(np.mean([g.score for g in grades]))
        sims = [g.similarity for g in grades if g.similarity is not None]
        return Grade(
            self._verdict(score, cloze, any(g.rule == "polarity+blend" for g in grades)),
            round(score, 3),
            round(float(np.mean(sims)), 3) if sims else None,
            round(float(np.mean([g.coverage for g in grades])), 3),
            tuple(t for g in grades for t in g.matched),
            tuple(t for g in grades for t in g.missing),
            "blanks",
        )

    def _verdict(self, score: float, cloze: bool, at_least_partly: bool = False) -> str:
        return verdict_for(score, self.thresholds, cloze, at_least_partly)

    def _grade_one(
        self, reference: str, answer: str, cos: Callable[[str, str], float], cloze: bool, given: set[str]
    ) -> Grade:
        words_of: dict[str, str] = {}  # term -> the first word it came from, in order
        listed: set[str] = set()  # terms a learner is shown (not a matrix's bare numbers)
        for term, word, shown in _terms_with_words(reference):
            words_of.setdefault(term, word)
            if shown:
                listed.add(term)
        all_ref_terms = list(words_of)
        ref_terms = [t for t in all_ref_terms if t not in given] or all_ref_terms
        ans_terms = set(key_terms(answer))
        found = [t for t in ref_terms if t in ans_terms]
        matched = tuple(words_of[t] for t in found if t in listed)
        missing = tuple(words_of[t] for t in ref_terms if t not in ans_terms and t in listed)
        coverage = len(found) / min(len(ref_terms), COVERAGE_CAP) if ref_terms else 0.0
        coverage = min(coverage, 1.0)

        def decided(verdict: str, score: float, rule: str) -> Grade:
            return Grade(verdict, score, None, round(coverage, 3), matched, missing, rule)

        # Factual rules first: content, not wording.
        ref_numbers = {t for t in ref_terms if _is_number(t)}  # numbers the question did not give
        ans_numbers = {t for t in ans_terms if _is_number(t) and t not in given}
        words = [t for t in ref_terms if not _is_number(t)]
        if ref_numbers and len(words) <= 1:  # a numeric reference: "76", "[-1,1]", "5x5x3 + 1 = 76"
            if ans_numbers & _result_numbers(reference, ref_terms):
                return decided(CORRECT, 1.0, "numbers")
            if ans_numbers:
                return decided(WRONG, 0.1, "numbers")
        elif (specific := ref_numbers - {"0", "1"}) and ans_numbers and len(specific) <= 2:
            # "... after two stride 2 convolutions, the receptive field is 7x7."
            if specific <= ans_numbers:
                return decided(CORRECT, 1.0, "numbers")
            if not ans_numbers & ref_numbers:
                return decided(WRONG, 0.1, "numbers")
        flipped = [t for t in ref_terms if _ANTONYMS.get(t) in ans_terms and t not in ans_terms]
        if flipped and len(ans_terms) <= 4:
            return decided(WRONG, 0.1, "antonym")
        ref_pol, ans_pol = _polarity(reference), _polarity(answer)
        if ref_pol and ans_pol and ref_pol != ans_pol:
            return decided(WRONG, 0.05, "polarity")
        if (
            ref_terms
            and (ans_terms >= set(ref_terms))
            and (len(ref_terms) <= 4 or len(ans_terms) <= 2 * len(ref_terms))
        ):
            return decided(CORRECT, 1.0, "exact")
        if ref_pol and ref_pol == ans_pol and len(ref_terms) <= 1:
            return decided(CORRECT, 1.0, "polarity")

        similarity = cos(reference, answer)
        w = self.thresholds.semantic_weight
        score = max(0.0, min(1.0, w * similarity + (1 - w) * coverage))
        same_polarity = bool(
            ref_pol and ref_pol == ans_pol
        )  # "No, because ..." answered "no": at least partly
        return Grade(
            self._verdict(score, cloze, same_polarity), round(score, 3), round(similarity, 3), round(coverage, 3),
            matched, missing, "polarity+blend" if same_polarity else "blend",
        )  # fmt: skip


def verdict_for(
    score: float, thresholds: Thresholds, cloze: bool = False, at_least_partly: bool = False
) -> str:
    slack = thresholds.cloze_leniency if cloze else 0.0
    if score >= thresholds.correct_min - slack:
        return CORRECT
    if score >= thresholds.partly_min - slack or at_least_partly:
        return PARTLY
    return WRONG
