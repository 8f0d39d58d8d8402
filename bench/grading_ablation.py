"""Each feature group of the trained grader on and off, judged on the validation author (a4).

    .venv/bin/python bench/grading_ablation.py [--json]

Every variant is fitted on the training authors a1-a3 only, with ``GraderSettings`` unchanged, and judged
on a4 three ways: all of its answers; its *novel* answers (no answer to the same reference in the bank at
cosine >= 0.9: blind writers often phrase an answer almost as another did, which flatters the neighbour
features); and with the bank emptied (a new or corrected entry). The 180 older calibration answers are one
more validation set. The rule grader (key terms and similarity, tuned on those 180) is the baseline.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from index.encoder import MiniLMEncoder
from knowledge.quiz.calibrate import ANSWERS_DIR, LABELS, load_labels
from knowledge.quiz.grading import VERDICTS, Grader
from knowledge.quiz.learned import FEATURES, case_features, reference_key
from knowledge.quiz.train import (
    GraderSettings,
    embed_texts,
    figures,
    fit_grader,
    load_training,
    training_data,
)

VALIDATION = "a4"
NOVEL_BELOW = 0.9
GROUPS = {
    "rule grader features": [f for f in FEATURES if f.startswith("rule_") or f in ("coverage", "cloze")],
    "other-reference similarity": ["other_similarity", "margin_over_other"],
    "question similarity": ["question_similarity"],
    "neighbours' vote": ["vote_correct", "vote_partly", "vote_wrong"],
    "all neighbour features": [
        "has_examples", "nearest_correct", "nearest_partly", "nearest_wrong", "correct_minus_wrong",
        "correct_minus_partly", "partly_minus_wrong", "vote_correct", "vote_partly", "vote_wrong",
    ],
}  # fmt: skip


# Answers that are no answer to any card: each is graded against every validation reference.
OFF_TOPIC = (
    "banana", "asdf", "lol idk maybe", "¯\\_(ツ)_/¯", "我不知道", "the mitochondria is the powerhouse of the cell",
    "Paris is the capital of France", "42", "yes", "I like turtles",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per variant")
    args = parser.parse_args()
    settings = GraderSettings()
    encoder = MiniLMEncoder()
    rules = Grader(encoder)
    train = load_training([VALIDATION])
    val = load_labels(ANSWERS_DIR / f"{VALIDATION}.jsonl")
    older = load_labels(LABELS)
    data = training_data(train, encoder, settings)
    bank, vectors = data.bank, data.vectors
    vectors.update(embed_texts(encoder, [*val, *older]))
    cards = sorted({(c.reference, c.question, c.cloze) for c in val})
    junk = [(ref, text, cloze, q) for ref, q, cloze in cards for text in OFF_TOPIC]
    vectors.update(dict(zip(OFF_TOPIC, encoder.encode(list(OFF_TOPIC)), strict=True)))

    def rows(triples, with_bank: bool) -> np.ndarray:
        grades = rules.grade_many([(r, a, z) for r, a, z, _ in triples], [q for *_, q in triples])
        out = []
        for (reference, answer, cloze, question), rule in zip(triples, grades, strict=True):
            out.append(
                case_features(bank, vectors, rule, reference, answer, question, cloze, neighbours=with_bank)
                if rule.rule != "empty" else [0.0] * len(FEATURES)
            )  # fmt: skip
        return np.array(out)

    def triples(cases):
        return [(c.reference, c.answer, c.cloze, c.question) for c in cases]

    Xv, Xv_empty, Xo, Xj = (
        rows(triples(val), True),
        rows(triples(val), False),
        rows(triples(older), True),
        rows(junk, True),
    )
    yv = np.array([VERDICTS.index(c.label) for c in val])
    yo = np.array([VERDICTS.index(c.label) for c in older])
    in_bank = set(bank.references)
    closest = np.array(
        [
            float((bank.example_vectors[bank.example_reference == bank.references.index(reference_key(c.reference))]
                   @ vectors[c.answer]).max()) if reference_key(c.reference) in in_bank else 0.0
            for c in val
        ]
    )  # fmt: skip
    novel = closest < NOVEL_BELOW

    def judge(name: str, verdicts_v, verdicts_empty, verdicts_o, verdicts_j) -> dict:
        return {
            "variant": name,
            "a4": figures(verdicts_v, yv),
            "a4_novel": figures(verdicts_v[novel], yv[novel]),
            "a4_empty_bank": figures(verdicts_empty, yv),
            "older_180": figures(verdicts_o, yo),
            "off_topic_graded_wrong": round(float((verdicts_j == 2).mean()), 3),
        }

    results = []
    grade_idx = [
        np.array([VERDICTS.index(g.verdict) for g in rules.grade_many([(r, a, z) for r, a, z, _ in t], [q for *_, q in t])])
        for t in (triples(val), triples(older), junk)
    ]  # fmt: skip
    results.append(judge("rule grader (baseline)", grade_idx[0], grade_idx[0], grade_idx[1], grade_idx[2]))
    n = data.answers

    def variant(name: str, drop=(), cost: float = settings.cost_far, rows=None, gate: bool = True) -> None:
        columns = [i for i, f in enumerate(FEATURES) if f not in drop]
        fitted = fit_grader(data, settings, rows=rows, columns=columns, gate=gate)

        def verdicts(M):
            return fitted.verdicts(M, cost)

        results.append(judge(name, verdicts(Xv), verdicts(Xv_empty), verdicts(Xo), verdicts(Xj)))

    index = np.arange(len(data.y))
    variant("trained grader (shipped design)")
    for group, names in GROUPS.items():
        variant(f"without {group}", drop=names)
    variant("without the empty-bank training rows", rows=(index < n) | data.is_moved)
    variant("without the off-topic gate", gate=False)
    variant("most probable grade instead of least cost", cost=1.0)
    if args.json:
        for r in results:
            print(json.dumps(r))
        return
    print(
        f"a4: {len(val)} answers, {int(novel.sum())} novel (closest bank answer < {NOVEL_BELOW}); older: {len(older)}"
    )
    print(
        "figures: three-way / correct-vs-not / correct graded wrong / wrong graded correct; off-topic: share wrong"
    )
    for r in results:
        cells = "  ".join(
            "{three_way:.3f} {correct_vs_not:.3f} {correct_graded_wrong:.3f} {wrong_graded_correct:.3f}".format(
                **r[k]
            )
            for k in ("a4", "a4_novel", "a4_empty_bank", "older_180")
        )
        print(f"  {r['variant']:<44} {cells}  {r['off_topic_graded_wrong']:.3f}")
    print(f"  {'':<44} {'a4':<24}  {'a4 novel':<24}  {'a4 empty bank':<24}  {'older 180':<24}  off-topic")


if __name__ == "__main__":
    main()
