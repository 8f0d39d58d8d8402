"""``tutor index train``: the retrieval model, rebuilt from the labelled messages shipped in ``index/data``.

Steps (fixed seeds; about ten minutes on a 2-core machine):

1. A reference knowledge base: the bundled sources ingested into a scratch store and indexed with the
   plain all-MiniLM-L6-v2 (entries are always embedded by the plain model).
2. Cross-fitting: the training authors are split into ``folds`` groups; for each, a LoRA adapter on the
   query encoder is trained on the other groups' messages and used to compute features for this group's,
   so the ranker and calibrator are fitted on scores from an encoder that never saw those messages (the
   way the shipped encoder meets a new author).
3. The adapter: cross-entropy of each message against every entry's two views (the multiple-negatives
   ranking loss with all entries as negatives), entries' vectors held fixed.
4. The ranker: logistic regression over per-entry features, right entry vs the other candidates.
5. The calibrator: logistic regression over the top entry's features; its regularisation chosen by
   grouped k-fold cross-validation (one author a fold), its out-of-fold probabilities kept.
6. The cut-offs on that probability minimise the cost below on the out-of-fold probabilities.
7. The shipped adapter is trained the same way on every training message.

Cost of one reply, in units of "a refusal of a question the notes answer": a confident wrong answer
(answered with a wrong entry, or answering a question the notes do not cover) costs ``cost_wrong`` (4:
a student who is told something wrong with confidence may learn it; a refusal only sends them to ask
again); a hedge (unsure) that misses costs 1, a hedge that hits 0.25 (the student has to check the
"did you mean" list), a refusal of an uncovered question 0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from index.evaluate import DATA, Query, load_queries
from index.model import (
    CALIBRATION_FEATURES,
    MODEL_DIR,
    MODEL_FILES,
    RANK_FEATURES,
    Linear,
    QueryRules,
    RetrievalModel,
)
from knowledge.files import sha256
from knowledge.finetune import lora_model, mean_pooled, save_factors
from knowledge.models import question_key

log = logging.getLogger(__name__)

MESSAGES_DIR = DATA / "messages"
VALIDATION_AUTHOR = "w5"
FEEDBACK_FILE = "feedback.jsonl"


@dataclass(frozen=True)
class TrainSettings:
    seed: int = 13
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.1
    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 5e-4
    scale: float = 20.0  # cosine -> logit, as sentence-transformers' MultipleNegativesRankingLoss
    max_tokens: int = 128
    folds: int = 2
    cost_wrong: float = 4.0
    cost_hedge_miss: float = 1.0
    cost_hedge_hit: float = 0.25
    rules: QueryRules = field(default_factory=QueryRules)

    def validate(self) -> None:
        for name in ("rank", "alpha", "epochs", "batch_size", "max_tokens", "folds"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0 < self.learning_rate < 1 or not 0 <= self.dropout < 1:
            raise ValueError("learning_rate must be in (0, 1) and dropout in [0, 1)")


@dataclass(frozen=True)
class Labelled:
    """A training message with the item ids that answer it (empty: the notes do not)."""

    query: Query
    targets: frozenset[int]


# --- data --------------------------------------------------------------------------------------------------


def message_files(exclude_authors: Sequence[str] = (), directory: Path = MESSAGES_DIR) -> list[Path]:
    files = sorted(p for p in directory.glob("*.jsonl") if p.stem not in set(exclude_authors))
    if not files:
        raise ValueError(f"no message files in {directory}")
    return files


def data_hash(files: Sequence[Path], settings: TrainSettings, extra: Sequence[Query] = ()) -> str:
    """What a model was trained from: the message files, any extra messages, and the settings."""
    digest = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
    for path in files:
        digest.update(path.name.encode() + b"\0" + Path(path).read_bytes())
    for q in extra:
        digest.update(json.dumps([q.query, q.expect], ensure_ascii=False).encode())
    return digest.hexdigest()


def label(queries: Sequence[Query], items) -> list[Labelled]:
    """Map each query's expected (source, question) pairs onto item ids of the reference store."""
    by_key: dict[tuple[str, str], int] = {(it.source, question_key(it.question)): it.id for it in items}
    out = []
    for q in queries:
        targets = frozenset(by_key[k] for k in q.expect if k in by_key)
        if q.expect and not targets:
            raise ValueError(f"no knowledge-base entry matches the labels of {q.query!r}")
        out.append(Labelled(q, targets))
    return out


def feedback_queries(store) -> list[Query]:
    """Helpful votes as training messages: the message asked, labelled with the entry that helped.

    Only entries of the bundled notes count (the model is trained against those); a vote on a server's
    own card or a deck a user added stays out.
    """
    from knowledge.loader import SOURCES_DIR

    bundled = {p.name for p in SOURCES_DIR.iterdir()}
    items = {it.id: it for it in store.items()}
    queries = []
    for row in store.feedback():
        item = items.get(row.get("item_id"))
        if row.get("helpful") and item is not None and item.source in bundled and row.get("query"):
            key = (item.source, question_key(item.question))
            queries.append(Query(str(row["query"]), (key,), "feedback", "feedback"))
    return queries


# --- the adapter -------------------------------------------------------------------------------------------


def train_adapter(
    texts: Sequence[str],
    positives: Sequence[Sequence[int]],
    documents: np.ndarray,
    settings: TrainSettings,
    out: Path,
    model_dir: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> dict:
    """Fit LoRA factors so each text's embedding points at its positive rows of ``documents``; save them.

    ``documents`` are fixed (n, dim) entry vectors; ``positives[i]`` the rows that answer ``texts[i]``.
    """
    import torch

    random.seed(settings.seed)
    tokenizer, model = lora_model(model_dir, settings.rank, settings.alpha, settings.dropout, settings.seed)
    model.train()
    docs = torch.from_numpy(np.ascontiguousarray(documents, dtype=np.float32))
    mask = torch.zeros((len(texts), len(docs)), dtype=torch.bool)
    for i, rows in enumerate(positives):
        mask[i, list(rows)] = True
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.01)
    steps_per_epoch = (len(texts) + settings.batch_size - 1) // settings.batch_size
    total = steps_per_epoch * settings.epochs
    warmup = max(1, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    generator = torch.Generator().manual_seed(settings.seed)
    started = time.perf_counter()
    losses = []
    for epoch in range(settings.epochs):
        order = torch.randperm(len(texts), generator=generator).tolist()
        epoch_loss = 0.0
        for start in range(0, len(order), settings.batch_size):
            rows = order[start : start + settings.batch_size]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=settings.max_tokens,
                return_tensors="pt",
            )
            vectors = mean_pooled(model, batch)
            logits = settings.scale * vectors @ docs.T
            positive = logits.masked_fill(~mask[rows], float("-inf"))
            loss = (torch.logsumexp(logits, 1) - torch.logsumexp(positive, 1)).mean()
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            epoch_loss += float(loss.detach()) * len(rows)
        losses.append(epoch_loss / len(texts))
        progress(f"  epoch {epoch + 1}/{settings.epochs}: loss {losses[-1]:.4f}")
    save_factors(model, out)
    return {"seconds": round(time.perf_counter() - started, 1), "losses": [round(x, 4) for x in losses]}


# --- features, ranker, calibrator, cut-offs ---------------------------------------------------------------


class CachedEncoder:
    """An encoder that remembers every vector it computed (features are recomputed per ranker)."""

    def __init__(self, encoder):
        self.inner = encoder
        self.model_id = encoder.model_id
        self.dim = encoder.dim
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.encode(missing, batch_size), strict=True))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def _standardised(names, x: np.ndarray, weights: np.ndarray, bias: float) -> Linear:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    return Linear(
        tuple(names), tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, weights)), bias
    )


def fit_linear(names, x: np.ndarray, y: np.ndarray, c: float, seed: int) -> Linear:
    """Logistic regression on standardised features, stored as a ``Linear``."""
    from sklearn.linear_model import LogisticRegression

    probe = _standardised(names, x, np.zeros(x.shape[1]), 0.0)
    z = (x - np.asarray(probe.mean)) / np.asarray(probe.scale)
    fitted = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(z, y)
    return replace(probe, weights=tuple(map(float, fitted.coef_[0])), bias=float(fitted.intercept_[0]))


def ranker_data(scorings, labelled: Sequence[Labelled], keys) -> tuple[np.ndarray, np.ndarray]:
    """Per-candidate features and whether the candidate is right, over messages the notes answer."""
    xs, ys = [], []
    for scoring, item, groups in zip(scorings, labelled, keys, strict=True):
        if scoring is None or not item.targets or not len(scoring.groups):
            continue
        right = [bool(ids & item.targets) for ids in groups]
        if not any(right):
            continue  # the right entry is not among the candidates: nothing to learn about ordering
        xs.append(scoring.features)
        ys.extend(right)
    return np.concatenate(xs), np.asarray(ys, dtype=int)


def calibration_data(scorings, labelled, keys) -> tuple[np.ndarray, np.ndarray]:
    """The top entry's features, and whether it is right (never, for a message the notes do not answer)."""
    xs, ys = [], []
    for scoring, item, groups in zip(scorings, labelled, keys, strict=True):
        if scoring is None or not len(scoring.groups):
            xs.append(np.zeros(len(CALIBRATION_FEATURES)))
            ys.append(0)
            continue
        xs.append(scoring.calibration)
        ys.append(int(bool(item.targets) and bool(groups[0] & item.targets)))
    return np.stack(xs), np.asarray(ys, dtype=int)


def fit_calibrator(
    x: np.ndarray, y: np.ndarray, groups: Sequence[str], seed: int
) -> tuple[Linear, np.ndarray, dict]:
    """The calibrator with C chosen by grouped k-fold log-loss, and its out-of-fold probabilities."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n_splits = min(5, len(set(groups)))
    if n_splits < 2:
        raise ValueError("the calibrator needs messages from at least two authors")
    folds = list(GroupKFold(n_splits=n_splits).split(x, y, groups))
    results = {}
    for c in (0.01, 0.1, 1.0, 10.0):
        oof = np.zeros(len(y))
        for train, test in folds:
            oof[test] = 1 / (
                1 + np.exp(-fit_linear(CALIBRATION_FEATURES, x[train], y[train], c, seed)(x[test]))
            )
        results[c] = (log_loss(y, np.clip(oof, 1e-6, 1 - 1e-6)), oof)
    best = min(results, key=lambda c: results[c][0])
    model = fit_linear(CALIBRATION_FEATURES, x, y, best, seed)
    return (
        model,
        results[best][1],
        {"C": best, "cv_log_loss": {str(c): round(v[0], 4) for c, v in results.items()}},
    )


def reply_cost(p: np.ndarray, right: np.ndarray, in_kb: np.ndarray, answer_min, unsure_min, s: TrainSettings):
    answered = p >= answer_min
    hedged = (p >= unsure_min) & ~answered
    refused = ~answered & ~hedged
    cost = np.where(answered & ~right, s.cost_wrong, 0.0)
    cost += np.where(hedged, np.where(right, s.cost_hedge_hit, s.cost_hedge_miss), 0.0)
    cost += np.where(refused & in_kb, 1.0, 0.0)
    return float(cost.sum())


def choose_cutoffs(
    p: np.ndarray, right: np.ndarray, in_kb: np.ndarray, s: TrainSettings
) -> tuple[float, float]:
    grid = np.round(np.linspace(0.0, 1.0, 101), 2)
    best = min(
        ((a, u) for a in grid for u in grid if u <= a),
        key=lambda au: (reply_cost(p, right, in_kb, au[0], au[1], s), -au[0], au[1]),
    )
    return float(best[0]), float(best[1])


# --- the whole run -----------------------------------------------------------------------------------------


@dataclass
class TrainRun:
    """Scratch state of one training run (reference store, index, fold adapters)."""

    workdir: Path
    store: object
    encoder: object
    index_dir: Path


def reference_kb(workdir: Path, encoder) -> TrainRun:
    from index import store_index
    from knowledge.loader import SOURCES_DIR, collect_paths, load_document
    from knowledge.store import Store

    store = Store(workdir / "reference.db")
    store.ingest([load_document(p) for p in collect_paths([SOURCES_DIR])], lambda t: encoder.encode(list(t)))
    index_dir = workdir / "index"
    store_index.build(store, encoder, index_dir)
    return TrainRun(workdir, store, encoder, index_dir)


def _retriever(run: TrainRun, model: RetrievalModel, query_encoder):
    from index.retriever import Retriever

    return Retriever(run.store, run.encoder, run.index_dir, model=model, query_encoder=query_encoder)


def _adapter_inputs(run: TrainRun, labelled: Sequence[Labelled], rules: QueryRules):
    """Cleaned texts, their positive rows in the flattened (item, view) matrix, and that matrix."""
    from index import store_index

    retriever = _retriever(run, RetrievalModel.plain(rules), run.encoder)
    views = retriever.index.views
    row_of = retriever.index.row_of
    texts, positives = [], []
    for item in labelled:
        if not item.targets:
            continue
        rows = [
            row_of[i] * store_index.N_VIEWS + v
            for i in item.targets
            if i in row_of
            for v in range(store_index.N_VIEWS)
        ]
        if rows:
            texts.append(retriever._clean(item.query.query, retriever._kb))
            positives.append(rows)
    return texts, positives, views.reshape(-1, views.shape[-1])


def folds_of(authors: Sequence[str], k: int) -> list[set[str]]:
    names = sorted(set(authors))
    k = max(1, min(k, len(names)))
    return [set(names[i::k]) for i in range(k)]


def score_labelled(
    run: TrainRun, model: RetrievalModel, encoder, labelled: Sequence[Labelled]
) -> tuple[list, list]:
    """Each message's scoring (None for an empty one) and its ranked groups as item ids."""
    retriever = _retriever(run, model, encoder)
    scorings = [scoring for _, scoring in retriever.ask_scored([item.query.query for item in labelled])]
    keys = [retriever.group_ids(scoring) if scoring is not None else [] for scoring in scorings]
    return scorings, keys


def fit_decision(
    run: TrainRun,
    labelled: Sequence[Labelled],
    authors: Sequence[str],
    encoders: dict,
    settings: TrainSettings,
) -> tuple[RetrievalModel, dict]:
    """Ranker, calibrator and cut-offs from cross-fitted query vectors (``encoders[author]``)."""
    by_author: dict[str, list[int]] = {}
    for i, a in enumerate(authors):
        by_author.setdefault(a, []).append(i)

    def scorings_with(model: RetrievalModel) -> tuple[list, list]:
        scorings: list = [None] * len(labelled)
        keys: list = [[] for _ in labelled]
        for author, rows in by_author.items():
            part_scorings, part_keys = score_labelled(
                run, model, encoders[author], [labelled[r] for r in rows]
            )
            for r, scoring, groups in zip(rows, part_scorings, part_keys, strict=True):
                scorings[r], keys[r] = scoring, groups
        return scorings, keys

    provisional = RetrievalModel.plain(settings.rules)
    scorings, keys = scorings_with(provisional)
    x, y = ranker_data(scorings, labelled, keys)
    ranker = fit_linear(RANK_FEATURES, x, y, 1.0, settings.seed)
    scorings, keys = scorings_with(replace(provisional, ranker=ranker))
    cx, cy = calibration_data(scorings, labelled, keys)
    calibrator, oof, cv = fit_calibrator(cx, cy, authors, settings.seed)
    in_kb = np.array([bool(it.targets) for it in labelled])
    right = cy.astype(bool)
    answer_min, unsure_min = choose_cutoffs(oof, right, in_kb, settings)
    model = RetrievalModel(ranker, calibrator, answer_min, unsure_min, settings.rules)
    cost = reply_cost(oof, right, in_kb, answer_min, unsure_min, settings)
    return model, {
        "in_notes": int(in_kb.sum()),
        "cv": cv,
        "oof_cost_per_message": round(cost / len(labelled), 4),
        "oof_top_right": round(float(right[in_kb].mean()), 4),
    }


def train(
    out_dir: Path = MODEL_DIR,
    files: Sequence[Path] | None = None,
    settings: TrainSettings = TrainSettings(),
    extra: Sequence[Query] = (),
    progress: Callable[[str], None] = print,
    workdir: Path | None = None,
) -> dict:
    """Train and write the model files into ``out_dir``; returns the figures of the run."""
    from index.encoder import MiniLMEncoder, default_model_dir

    settings.validate()
    started = time.perf_counter()
    files = list(files) if files is not None else message_files()
    queries = [q for path in files for q in load_queries(path)] + list(extra)
    scratch = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="tutor-train-"))
    scratch.mkdir(parents=True, exist_ok=True)
    model_dir = default_model_dir()
    run = None
    try:
        plain = MiniLMEncoder()
        run = reference_kb(scratch, plain)
        labelled = label(queries, run.store.items())
        authors = [item.query.author or "unknown" for item in labelled]
        progress(
            f"{len(labelled)} messages from {len(set(authors))} authors ({', '.join(sorted(set(authors)))})"
        )
        rules = settings.rules
        # Cross-fitted query vectors: each author group's messages embedded by an adapter trained without it.
        encoders: dict[str, CachedEncoder] = {}
        fold_stats = []
        for i, held in enumerate(folds_of(authors, settings.folds)):
            train_part = [it for it, a in zip(labelled, authors, strict=True) if a not in held]
            if not train_part:
                raise ValueError("cross-fitting needs at least two authors")
            progress(f"fold {i + 1}: adapter without {', '.join(sorted(held))}")
            texts, positives, documents = _adapter_inputs(run, train_part, rules)
            path = scratch / f"fold{i}.safetensors"
            fold_stats.append(train_adapter(texts, positives, documents, settings, path, model_dir, progress))
            encoder = CachedEncoder(MiniLMEncoder(adapter=path))
            for author in held:
                encoders[author] = encoder
        model, fit = fit_decision(run, labelled, authors, encoders, settings)
        progress(
            f"cut-offs on out-of-fold probabilities: answer >= {model.answer_min}, unsure >= {model.unsure_min}"
        )
        # The shipped adapter: every training message.
        progress("final adapter on every training message")
        texts, positives, documents = _adapter_inputs(run, labelled, rules)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        final_stats = train_adapter(
            texts, positives, documents, settings, out_dir / "adapter.safetensors", model_dir, progress
        )
        (out_dir / "model.json").write_text(json.dumps(model.to_json(), indent=2) + "\n")
        report = {
            "messages": len(labelled),
            "authors": sorted(set(authors)),
            **fit,
            "folds": fold_stats,
            "final": final_stats,
            "seconds": round(time.perf_counter() - started, 1),
        }
        manifest = {
            "data_hash": data_hash(files, settings, extra),
            "data_files": [p.name for p in files],
            "extra_messages": len(extra),
            "settings": asdict(settings),
            "base_model": MiniLMEncoder.model_id,
            "files": {name: sha256(out_dir / name) for name in MODEL_FILES},
            "report": report,
        }
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _export_graph(out_dir / "adapter.safetensors", model_dir, progress)
        progress(f"done in {report['seconds']} s: {out_dir}")
        return report
    finally:
        if run is not None:
            run.store.close()
        if workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _export_graph(adapter: Path, model_dir, progress) -> None:
    """The new adapter's exported encoder graph (torch is loaded already); if it fails, the built-in graph
    serves the adapter until ``python -m index.onnx_export`` succeeds."""
    from index import onnx_export
    from index.encoder import default_model_dir

    try:
        onnx_export.export(Path(model_dir) if model_dir else default_model_dir(), adapter)
        progress("exported the query encoder's graph")
    except onnx_export.ExportError as exc:
        progress(f"the query encoder's graph was not exported ({exc}); the built-in graph serves it")
