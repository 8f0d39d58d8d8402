"""How ingest scales: peak memory, the longest write transaction and total time for N generated entries.

    python -m bench.ingest_scale                      # 100,000 entries in 10 TSV decks
    python -m bench.ingest_scale --files 1            # ... in one deck (the per-file bound)
    python -m bench.ingest_scale --answer-sets 10     # 10 decks asking the same questions (many duplicates)

The encoder is a stand-in: a deterministic pseudo-random unit vector of dimension 384 per distinct text
(identical texts get identical vectors, so repeated questions are exact duplicates), fast enough that the
numbers measure the store and the analysis, not the model. Every write transaction is timed
(``time.perf_counter`` around ``Store.transaction``, COMMIT included), and a second connection probes the
write lock the whole time from another process, as the bot's quiz writes would: its longest wait is what a
concurrent writer saw.
Peak memory is the process's peak RSS (``ru_maxrss``), imports included.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the test helpers (``tests.stores``) import only from the root
    sys.exit("run it from the repository root as a module: python -m bench.ingest_scale")

from knowledge.loader import load_document
from tests.stores import TimedStore, random_embed

DIM = 384


def fake_embed(texts) -> np.ndarray:
    return random_embed(texts, DIM)


def probe_lock(path: str, stop, longest) -> None:
    """In another process (no shared GIL): take and release the write lock in a loop; keep the longest wait."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    while not stop.is_set():
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        waited = time.perf_counter() - started
        conn.execute("ROLLBACK")
        if waited > longest.value:
            longest.value = waited
        time.sleep(0.005)
    conn.close()


def write_decks(directory: Path, entries: int, files: int, answer_sets: int) -> list[Path]:
    """``files`` TSV decks; with ``answer_sets`` > 1, that many decks share each question (answers differ)."""
    paths = []
    per_file = -(-entries // files)
    for f in range(files):
        path = directory / f"deck_{f:03d}.tsv"
        first = (f % (files // answer_sets if answer_sets > 1 else files)) * per_file
        count = min(per_file, entries - f * per_file)
        lines = [f"q{first + i} what is {first + i}?\ta{f}-{first + i}\n" for i in range(count)]
        path.write_text("".join(lines), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--answer-sets", type=int, default=1, help="decks sharing each question")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = write_decks(work, args.entries, args.files, args.answer_sets)
        store = TimedStore(work / "tutor.db")
        store.durations = []  # the ingest's, not the migrations'
        stop, longest = multiprocessing.Event(), multiprocessing.Value("d", 0.0)
        probe = multiprocessing.Process(target=probe_lock, args=(str(store.path), stop, longest), daemon=True)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        probe.start()
        started = time.perf_counter()
        documents = [load_document(p) for p in paths]
        parsed = time.perf_counter() - started
        report = store.ingest(documents, fake_embed)
        total = time.perf_counter() - started
        stop.set()
        probe.join()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        groups = store.db.execute("SELECT COUNT(*) FROM groups WHERE size > 1").fetchone()[0]
        live = store.db.execute("SELECT COUNT(*) FROM items WHERE retired_at IS NULL").fetchone()[0]
        store.close()

    print(f"entries               {sum(len(d.entries) for d in documents):,} in {len(paths)} files")
    print(f"stored                {live:,} items ({report.added:,} added), {groups:,} duplicate groups")
    print(f"peak RSS              {peak:,.0f} MB (before ingest: {rss_before:,.0f} MB, imports included)")
    print(f"transactions          {len(store.durations)}")
    print(f"longest transaction   {max(store.durations, default=0.0):.3f} s")
    print(f"longest lock wait     {longest.value:.3f} s (another process's BEGIN IMMEDIATE)")
    print(f"parse                 {parsed:.1f} s")
    print(f"total                 {total:.1f} s")


if __name__ == "__main__":
    main()
