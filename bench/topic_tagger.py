"""How well the quiz files cards under topics, against hand labels, and how its settings were chosen.

    .venv/bin/python bench/topic_tagger.py [--data-dir DIR] [--search] [--json]

``knowledge/quiz/data/topic_labels.jsonl`` gives, for every card of the bundled knowledge base, the topics a
reader would accept (the first is the best; "general" where no topic of the vocabulary fits; how it was made:
``knowledge/quiz/data/topic_labels.md``). The bundled notes are ingested into a temporary folder (or
``--data-dir`` names one already ingested) and the tagger of ``knowledge.quiz.selection`` files every card.

Reported: accuracy of the shipped settings (``TOPIC_SETTINGS``), of the tagger the quiz had before (nearest
bare topic name among the card's own document's topics), and the cards per topic. ``--search`` reruns the
grid search that chose the settings: every combination of the grid, scored by accuracy on the labels, with
5-fold cross-validation (folds drawn with a fixed seed; each fold's settings chosen on the other four) for an
estimate on cards the settings never saw, then the best combination on all labels.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

import index.offline  # noqa: F401 - the Hugging Face environment, before those libraries load
from knowledge.loader import SOURCES_DIR, collect_paths, load_document
from knowledge.quiz.selection import (
    GENERAL,
    TOPIC_SETTINGS,
    TopicSettings,
    build_catalogue,
    choose_topics,
    topic_evidence,
    topic_scores,
    topic_vocabulary,
)
from knowledge.store import Store
from knowledge.vectors import TextVectors

LABELS = Path(__file__).resolve().parent.parent / "knowledge" / "quiz" / "data" / "topic_labels.jsonl"
GRID = {
    "question_weight": (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "term_bonus": (0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3),
    "document_prior": (0.0, 0.025, 0.05, 0.1),
}
THRESHOLDS = tuple(round(0.025 * i, 3) for i in range(25))  # min_score 0 .. 0.6
FOLDS, SEED = 5, 0


def load_labels() -> dict[tuple[str, int], list[str]]:
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {(r["source"], r["n"]): r["topics"] for r in rows}


def old_topics(cards, documents, embed) -> list[str]:
    """The tagger before: the nearest bare topic name, among the card's own document's topics."""
    vectors = embed([f"{c.question} {c.answer[:150]}" for c in cards])
    names = sorted({t for d in documents.values() for t in d.topics})
    topic_vectors = dict(zip(names, embed(names), strict=True))
    out = []
    for card, vector in zip(cards, vectors, strict=True):
        doc = documents.get(card.source)
        own = [t for t in (doc.topics if doc else ()) if t in topic_vectors]
        out.append(max(own, key=lambda t: float(vector @ topic_vectors[t])) if own else card.title)
    return out


def search(vocabulary, evidence, accepted: list[set[str]]) -> dict:
    """Grid search: per-card correctness of every combination, then cross-validated choice."""
    combos = []
    names = np.array([*vocabulary.names, GENERAL], dtype=object)
    ok_topic = np.array([[n in acc for n in names] for acc in accepted])  # (cards, topics + 1)
    rows = np.arange(len(accepted))
    thresholds = np.array(THRESHOLDS)[:, None]
    correct = []
    for values in itertools.product(*GRID.values()):
        combo = dict(zip(GRID, values, strict=True))
        scores = topic_scores(evidence, TopicSettings(**combo, min_score=0.0))
        best = scores.argmax(axis=1)
        kept = scores[rows, best][None, :] >= thresholds  # (thresholds, cards)
        correct.append(np.where(kept, ok_topic[rows, best], ok_topic[:, -1]))
        combos += [{**combo, "min_score": float(t)} for t in THRESHOLDS]
    correct = np.concatenate(correct)
    order = list(range(len(accepted)))
    random.Random(SEED).shuffle(order)
    folds = [sorted(order[f::FOLDS]) for f in range(FOLDS)]
    held_out = []
    for fold in folds:
        train = np.ones(len(accepted), dtype=bool)
        train[fold] = False
        k = int(correct[:, train].sum(axis=1).argmax())
        held_out.append(int(correct[k, fold].sum()))
    best = int(correct.sum(axis=1).argmax())
    return {
        "combinations": len(combos),
        "cv_accuracy": round(sum(held_out) / len(accepted), 3),
        "cv_per_fold": [round(h / len(f), 3) for h, f in zip(held_out, folds, strict=True)],
        "best_settings": combos[best],
        "best_accuracy_on_all": round(float(correct[best].mean()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="a tutor data folder already ingested (default: a temporary one)")
    parser.add_argument("--search", action="store_true", help="rerun the cross-validated grid search")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cards", action="store_true", help="list every card with its old and new topic")
    args = parser.parse_args()

    from tutor.services import encoder

    enc = encoder()
    tmp = None
    if args.data_dir:
        store = Store(Path(args.data_dir) / "tutor.db")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="topic-tagger-")
        store = Store(Path(tmp.name) / "tutor.db")
        store.ingest([load_document(p) for p in collect_paths([SOURCES_DIR])], enc.encode)
    try:
        embed = TextVectors(store, enc)
        catalogue = build_catalogue(store, embed)
        cards = catalogue.cards
        documents = {d.source: d for d in store.documents()}
        vocabulary = topic_vocabulary([d.topics for d in documents.values()])
        evidence = topic_evidence(
            vocabulary, cards, embed([c.question for c in cards]), catalogue.answer_vectors, documents, embed
        )
        before = old_topics(cards, documents, embed)
    finally:
        store.close()
        if tmp is not None:
            tmp.cleanup()
    labels = load_labels()
    accepted = [set(labels.get((c.source, c.n), ())) for c in cards]
    labelled = [i for i, a in enumerate(accepted) if a]
    after = [c.topic for c in cards]
    assert after == choose_topics(vocabulary, evidence, TOPIC_SETTINGS, fallbacks=after)  # the shipped tagger

    def accuracy(tags: list[str]) -> float:
        return round(sum(tags[i] in accepted[i] for i in labelled) / max(len(labelled), 1), 3)

    report = {
        "cards": len(cards),
        "labelled": len(labelled),
        "settings": TOPIC_SETTINGS.__dict__,
        "accuracy_before": accuracy(before),
        "accuracy_after": accuracy(after),
        "cards_per_topic_before": dict(Counter(before).most_common()),
        "cards_per_topic_after": dict(Counter(after).most_common()),
    }
    if args.search:
        report["search"] = search(vocabulary, evidence, [accepted[i] for i in labelled] if labelled else [])
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{len(cards)} cards, {len(labelled)} labelled; settings {TOPIC_SETTINGS}")
    print(f"accuracy before (own document's nearest topic name): {report['accuracy_before']:.3f}")
    print(f"accuracy after  (glossary, whole vocabulary, fallback): {report['accuracy_after']:.3f}")
    if "search" in report:
        s = report["search"]
        print(
            f"grid search over {s['combinations']} settings: {FOLDS}-fold CV accuracy {s['cv_accuracy']:.3f}"
        )
        print(
            f"  per fold {s['cv_per_fold']}; best on all labels {s['best_accuracy_on_all']:.3f}: {s['best_settings']}"
        )
    names = sorted(set(before) | set(after), key=lambda t: (-Counter(after)[t], t))
    print(f"\n{'topic':<24} {'before':>6} {'after':>6}")
    for t in names:
        print(f"{t[:24]:<24} {Counter(before)[t]:>6} {Counter(after)[t]:>6}")
    if args.cards:
        print()
        for i, c in enumerate(cards):
            mark = " " if after[i] in accepted[i] else "x"
            print(
                f"{mark} {c.source[:3]}#{c.n:<3} {before[i][:20]:<20} -> {after[i][:20]:<20} {c.question[:70]}"
            )


if __name__ == "__main__":
    main()
