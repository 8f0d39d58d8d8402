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
from knowledge.quiz.learned import FEATURES, NO_NEIGHBOURS, decide, feature_row, reference_key
from knowledge.quiz.train import (
    GraderSettings,
    build_bank,
    embed_texts,
    figures,
    fit_trees,
    load_training,
    training_rows,
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
    vectors = embed_texts(encoder, [*train, *val, *older])
    bank = build_bank(train, vectors)
    X, y = training_rows(rules, train, vectors, bank)
    n = len(train)

    def rows(cases, with_bank: bool) -> np.ndarray:
        grades = rules.grade_many(
            [(c.reference, c.answer, c.cloze) for c in cases], [c.question for c in cases]
        )
        out = []
        for c, rule in zip(cases, grades, strict=True):
            a, key = vectors[c.answer], reference_key(c.reference)
            out.append(
                feature_row(
                    rule, float(a @ vectors[c.reference]), bank.other_similarity(key, a),
                    float(a @ vectors[c.question]), c.cloze, bank.neighbours(key, a) if with_bank else NO_NEIGHBOURS,
                )
            )  # fmt: skip
        return np.array(out)

    Xv, Xv_empty, Xo = rows(val, True), rows(val, False), rows(older, True)
    yv = np.array([VERDICTS.index(c.label) for c in val])
    yo = np.array([VERDICTS.index(c.label) for c in older])
    closest = np.array(
        [
            float((bank.example_vectors[bank.example_reference == bank.references.index(reference_key(c.reference))]
                   @ vectors[c.answer]).max())
            for c in val
        ]
    )  # fmt: skip
    novel = closest < NOVEL_BELOW

    def judge(name: str, verdicts_v, verdicts_empty, verdicts_o) -> dict:
        return {
            "variant": name,
            "a4": figures(verdicts_v, yv),
            "a4_novel": figures(verdicts_v[novel], yv[novel]),
            "a4_empty_bank": figures(verdicts_empty, yv),
            "older_180": figures(verdicts_o, yo),
        }

    results = []
    baseline = [
        np.array([VERDICTS.index(g.verdict) for g in rules.grade_many(
            [(c.reference, c.answer, c.cloze) for c in cases], [c.question for c in cases])])
        for cases in (val, older)
    ]  # fmt: skip
    results.append(judge("rule grader (baseline)", baseline[0], baseline[0], baseline[1]))

    def variant(name: str, drop: list[str] = (), cost: float = settings.cost_far, rows_kept=None) -> None:
        keep = [i for i, f in enumerate(FEATURES) if f not in drop]
        XT, yT = (X, y) if rows_kept is None else (X[rows_kept], y[rows_kept])
        model = fit_trees(XT[:, keep], yT, settings)

        def verdicts(M):
            return decide(model.predict_proba(M[:, keep]), cost)

        results.append(judge(name, verdicts(Xv), verdicts(Xv_empty), verdicts(Xo)))

    variant("trained grader (shipped design)")
    for group, names in GROUPS.items():
        variant(f"without {group}", drop=names)
    variant("without the empty-bank training rows", rows_kept=np.arange(len(y)) < n)
    variant("most probable grade instead of least cost", cost=1.0)
    if args.json:
        for r in results:
            print(json.dumps(r))
        return
    print(
        f"a4: {len(val)} answers, {int(novel.sum())} novel (closest bank answer < {NOVEL_BELOW}); older: {len(older)}"
    )
    print("figures: three-way / correct-vs-not / correct graded wrong / wrong graded correct")
    for r in results:
        cells = "  ".join(
            "{three_way:.3f} {correct_vs_not:.3f} {correct_graded_wrong:.3f} {wrong_graded_correct:.3f}".format(
                **r[k]
            )
            for k in ("a4", "a4_novel", "a4_empty_bank", "older_180")
        )
        print(f"  {r['variant']:<44} {cells}")
    print(f"  {'':<44} {'a4':<24}  {'a4 novel':<24}  {'a4 empty bank':<24}  older 180")


if __name__ == "__main__":
    main()
