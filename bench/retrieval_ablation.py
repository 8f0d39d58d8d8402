"""Every hand rule of the query path on and off, judged on the validation author.

    .venv/bin/python bench/retrieval_ablation.py --work /tmp/ablation [--model DIR]

Trains (or reuses, from ``--work``) the cross-fitted fold adapters and a final adapter without the
validation author, then for each variant of ``QueryRules`` refits ranker, calibrator and cut-offs on the
training authors only and reports the validation author's figures. The adapters stay those trained with
the default rules (retraining them per variant would take an hour); the plain-MiniLM row uses the
untrained encoder with one cut-off chosen on the training authors by the same cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from index.encoder import MiniLMEncoder
from index.evaluate import VALIDATION_QUERIES, by_style, load_queries, run_eval, summarize
from index.model import QueryRules, RetrievalModel
from index.train import (
    VALIDATION_AUTHOR,
    CachedEncoder,
    TrainSettings,
    _retriever,
    calibration_data,
    fit_decision,
    folds_of,
    label,
    message_files,
    reference_kb,
    reply_cost,
    score_labelled,
    train,
)

VARIANTS = {
    "trained (shipped rules)": {},
    "question sentence only (no context)": {"keep_context": False},
    "no glossary": {"glossary": False},
    "no typo correction": {"typos": False},
}


def with_typos(queries, seed: int = 0):
    """The same messages with one slip (swap, drop or double a letter) in up to two words of 5+ letters.

    The validation author's own typos are mild; this measures what typo correction does for the sloppier
    typists a Discord server has, without fitting anything to them.
    """
    import random
    import re

    rng = random.Random(seed)

    def slip(word: str) -> str:
        i = rng.randrange(1, len(word) - 2)
        kind = rng.choice(("swap", "drop", "double"))
        if kind == "swap":
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == "drop":
            return word[:i] + word[i + 1 :]
        return word[:i] + word[i] + word[i:]

    out = []
    for q in queries:
        words = list(re.finditer(r"[A-Za-z]{5,}", q.query))
        text = q.query
        for m in sorted(rng.sample(words, min(2, len(words))), key=lambda m: -m.start()):
            text = text[: m.start()] + slip(m.group(0)) + text[m.end() :]
        out.append(dataclasses.replace(q, query=text))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (fold adapters are kept)")
    parser.add_argument("--model", type=Path, help="a model trained without the validation author")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    settings = TrainSettings()
    files = message_files([VALIDATION_AUTHOR])
    model_dir = args.model or args.work / "model"
    if not (model_dir / "manifest.json").is_file():
        train(model_dir, files, settings, workdir=args.work)
    plain = MiniLMEncoder()
    run = reference_kb(args.work / "ablation", plain)
    labelled = label([q for f in files for q in load_queries(f)], run.store.items())
    authors = [it.query.author for it in labelled]
    encoders = {}
    for i, held in enumerate(folds_of(authors, settings.folds)):
        encoder = CachedEncoder(MiniLMEncoder(adapter=args.work / f"fold{i}.safetensors"))
        encoders.update({a: encoder for a in held})
    final = CachedEncoder(MiniLMEncoder(adapter=model_dir / "adapter.safetensors"))
    validation = load_queries(VALIDATION_QUERIES)
    sloppy = with_typos(validation)
    rows = []
    for name, change in VARIANTS.items():
        rules = dataclasses.replace(QueryRules(), **change)
        model, fit = fit_decision(
            run, labelled, authors, encoders, dataclasses.replace(settings, rules=rules)
        )
        retriever = _retriever(run, model, final)
        rows.append(_row(name, run_eval(retriever, validation), fit))
        rows.append(_row("  same, validation with typos", run_eval(retriever, sloppy), fit))
    baseline = _retriever(run, _plain(run, labelled, settings), plain)
    rows.append(_row("plain MiniLM, one cut-off", run_eval(baseline, validation), {}))
    rows.append(_row("  same, validation with typos", run_eval(baseline, sloppy), {}))
    header = f"{'variant':<38} {'served@1':>8} {'wrong':>6} {'refused':>7} {'rank@1':>6} {'MRR':>6} {'near-miss ans':>13} {'off-topic ans':>13} {'min style':>9} {'train cost':>10}"
    print(header)
    for r in rows:
        print(
            f"{r['variant']:<38} {r['served']:8.3f} {r['wrong']:6.3f} {r['refused']:7.3f} {r['rank1']:6.3f} {r['mrr']:6.3f}"
            f" {r['near_miss']:13.3f} {r['off_topic']:13.3f} {r['min_style']:9.3f} {r.get('cost', float('nan')):10.4f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    run.store.close()


def _plain(run, labelled, settings) -> RetrievalModel:
    """Plain MiniLM with the one cut-off the cost picks on the training authors."""
    model = RetrievalModel.plain()
    scorings, keys = score_labelled(run, model, run.encoder, labelled)
    features, right = calibration_data(scorings, labelled, keys)
    p = np.array([model.probability(x) for x in features])
    in_kb = np.array([bool(it.targets) for it in labelled])
    grid = np.round(np.linspace(0, 1, 101), 2)
    cut = min(grid, key=lambda c: reply_cost(p, right.astype(bool), in_kb, c, c, settings))
    return dataclasses.replace(model, answer_min=float(cut), unsure_min=float(cut))


def _row(name: str, outcomes, fit: dict) -> dict:
    overall = summarize(outcomes)
    styles = by_style(outcomes)
    in_styles = [r.served for s, r in styles.items() if r.n_in]
    return {
        "variant": name,
        **overall.as_dict(),
        "near_miss": styles["near_miss"].out_answered if "near_miss" in styles else float("nan"),
        "off_topic": styles["off_topic"].out_answered if "off_topic" in styles else float("nan"),
        "min_style": min(in_styles) if in_styles else float("nan"),
        "styles": {s: r.as_dict() for s, r in styles.items()},
        "cost": fit.get("oof_cost_per_message", float("nan")),
    }


if __name__ == "__main__":
    main()
