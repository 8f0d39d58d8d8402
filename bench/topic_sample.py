"""The topic-tag reader check: 60 random quiz cards (fixed seed) with their tags, for a blind reader.

    .venv/bin/python bench/topic_sample.py OUT.json      # after `tutor kb ingest` (TUTOR_DATA_DIR)

The reader sees only OUT.json (questions, answers, tags and the tag vocabulary) and judges each tag right
or wrong; the same seed draws the same cards before and after a change. The issue 16 check is in
docs/first-hour/topic-check/ (33/60 right before, 54/60 after).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from knowledge.quiz.selection import GENERAL, build_catalogue, load_glossary
from knowledge.vectors import TextVectors
from tutor.services import encoder, open_store
from tutor.settings import load_settings

SEED, SIZE = 16, 60


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    store = open_store(load_settings().data_dir)
    try:
        catalogue = build_catalogue(store, TextVectors(store, encoder()))
    finally:
        store.close()
    cards = random.Random(SEED).sample(list(catalogue.cards), SIZE)
    vocabulary = sorted({entry.topic for entry in load_glossary().values()} | {GENERAL})
    items = [
        {"k": i, "question": c.question, "answer": c.answer[:400], "topic": c.topic}
        for i, c in enumerate(cards, 1)
    ]
    Path(sys.argv[1]).write_text(
        json.dumps({"topics": vocabulary, "items": items}, indent=1, ensure_ascii=False)
    )
    print(f"{len(items)} cards of {len(catalogue.cards)} written to {sys.argv[1]}")


if __name__ == "__main__":
    main()
