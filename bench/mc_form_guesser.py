"""Can a multiple-choice question be answered from the options' form alone? Guessers that never read meaning.

    .venv/bin/python bench/mc_form_guesser.py [--data-dir DIR] [--seeds 0 1 2 3 4] [--json]

The bundled knowledge base is ingested into a temporary data folder (or ``--data-dir`` names one already
ingested) and the quiz's own code builds every card's options (``multiple_choice``: the right answer and
``distractors``, shuffled) once per seed. Each guesser then picks an option by its form only:

* **overlap**: the option sharing the most words with the question (lower-cased words, stopwords removed;
  ties broken at random with a fixed seed);
* **longest** / **shortest**: the option with the most / fewest characters (ties at random);
* **least_overlap**: the option sharing the fewest words (a builder that only dodged "overlap" would feed it).

Chance is the mean of 1/options. A fair builder keeps every guesser near chance (the target: no more than 10
points above it). Two populations: every card (``--mode mc`` asks any card as multiple choice) and the cards
``--mode auto`` asks as multiple choice (answers of ``AUTO_MC_MIN_WORDS`` words or more whose options can
hide the right one: ``gives_itself_away``).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from pathlib import Path

import index.offline  # noqa: F401 - the Hugging Face environment, before those libraries load
from knowledge.loader import SOURCES_DIR, collect_paths, load_document
from knowledge.quiz.selection import (
    AUTO,
    MC,
    build_catalogue,
    multiple_choice,
    resolve_mode,
)
from knowledge.store import Store
from knowledge.vectors import TextVectors

SEEDS = (0, 1, 2, 3, 4)
# A plain English stopword list (the guesser's own, independent of the product's key terms).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers him his how i if in into is it its itself just me more most my no nor not now
    of off on once only or other our out over own same she should so some such than that the their them
    then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours s t don t’s what’s""".split()
)
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def _pick(scores: list[float], rng: random.Random) -> int:
    best = max(scores)
    return rng.choice([i for i, s in enumerate(scores) if s == best])


def guess_overlap(question: str, options: list[str], rng: random.Random) -> int:
    asked = words(question)
    return _pick([len(asked & words(o)) for o in options], rng)


def guess_longest(question: str, options: list[str], rng: random.Random) -> int:
    return _pick([len(o) for o in options], rng)


def guess_shortest(question: str, options: list[str], rng: random.Random) -> int:
    return _pick([-len(o) for o in options], rng)


def guess_least_overlap(question: str, options: list[str], rng: random.Random) -> int:
    """The reverse guess: a builder that only avoided the overlap guesser would feed this one."""
    asked = words(question)
    return _pick([-len(asked & words(o)) for o in options], rng)


GUESSERS = {
    "overlap": guess_overlap,
    "longest": guess_longest,
    "shortest": guess_shortest,
    "least_overlap": guess_least_overlap,
}


def open_store(data_dir: str | None, embed) -> tuple[Store, tempfile.TemporaryDirectory | None]:
    if data_dir:
        return Store(Path(data_dir) / "tutor.db"), None
    tmp = tempfile.TemporaryDirectory(prefix="mc-guesser-")
    store = Store(Path(tmp.name) / "tutor.db")
    store.ingest([load_document(p) for p in collect_paths([SOURCES_DIR])], embed)
    return store, tmp


def measure(catalogue, seeds) -> dict[str, dict]:
    populations = {
        "all cards (--mode mc)": list(catalogue.cards),
        "auto mode's MC cards": [c for c in catalogue.cards if resolve_mode(c, AUTO, catalogue) == MC],
    }
    results = {}
    for name, cards in populations.items():
        hits = dict.fromkeys(GUESSERS, 0)
        chance = 0.0
        trials = 0
        for seed in seeds:
            rng = random.Random(f"options-{seed}")
            tie_rng = random.Random(f"ties-{seed}")
            for card in cards:
                options, right = multiple_choice(catalogue, card, rng)
                chance += 1 / len(options)
                trials += 1
                for g, guess in GUESSERS.items():
                    hits[g] += guess(card.question, options, tie_rng) == right
        results[name] = {
            "cards": len(cards),
            "trials": trials,
            "chance": round(chance / max(trials, 1), 3),
            **{g: round(h / max(trials, 1), 3) for g, h in hits.items()},
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="a tutor data folder already ingested (default: a temporary one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = parser.parse_args()

    from tutor.services import encoder

    enc = encoder()
    enc.encode(["warm up"])
    started = time.perf_counter()
    store, tmp = open_store(args.data_dir, enc.encode)
    try:
        catalogue = build_catalogue(store, TextVectors(store, enc))
        built = time.perf_counter()
        results = measure(catalogue, args.seeds)
    finally:
        store.close()
        if tmp is not None:
            tmp.cleanup()
    timing = {"setup_s": round(built - started, 1), "measure_s": round(time.perf_counter() - built, 1)}
    if args.json:
        print(json.dumps({"seeds": args.seeds, "populations": results, **timing}, indent=2))
        return
    header = f"{'population':<24} {'cards':>5} {'chance':>7} " + " ".join(f"{g:>9}" for g in GUESSERS)
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        cells = " ".join(f"{r[g]:>9.3f}" for g in GUESSERS)
        print(f"{name:<24} {r['cards']:>5} {r['chance']:>7.3f} {cells}")
    print(f"\nseeds {args.seeds}; ingest + catalogue {timing['setup_s']} s, guessing {timing['measure_s']} s")


if __name__ == "__main__":
    main()
