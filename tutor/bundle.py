"""``make vectors``: write the shipped vectors of the bundled notes (``knowledge/data/bundled_vectors.npz``).

The bundled notes are ingested into a scratch store, then indexed and made into quiz cards there, exactly
as a fresh install does; every text vector those steps asked for is written out. Run it after editing a
bundled source or changing how entries are embedded (a test fails until then).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from knowledge.vectors import BUNDLED_VECTORS, TextVectors, write_bundled


def build_bundle(target: Path = BUNDLED_VECTORS) -> int:
    from index import store_index
    from knowledge.loader import SOURCES_DIR, collect_paths, load_document
    from knowledge.quiz.service import QuizService
    from knowledge.store import Store
    from tutor.services import encoder

    with tempfile.TemporaryDirectory(prefix="tutor-bundle-") as scratch:
        store = Store.open(scratch)
        try:
            vectors = TextVectors(store, encoder(), bundled=None)
            store.ingest([load_document(p) for p in collect_paths([SOURCES_DIR])], vectors)
            store_index.build(store, vectors, Path(scratch) / "index")
            quiz = QuizService(store, vectors.encoder)
            try:
                quiz.catalogue()
            finally:
                quiz.close()
            return write_bundled(store, target)
        finally:
            store.close()


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else BUNDLED_VECTORS
    print(f"{build_bundle(target)} vectors written to {target}")


if __name__ == "__main__":
    main()
