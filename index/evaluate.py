"""Answer quality on labelled message sets (format: ``shared/eval/README.md``, plus optional ``style``).

For messages the notes answer (``expect`` not empty):

* served@1: answered, no_answer or unsure, with the right entry on top (the student gets it, hedged or not);
* wrong: answered or no_answer (confidently) with a wrong entry on top;
* refused: no_match; the rest (unsure with a wrong top entry) is a hedge that missed;
* rank@1 and MRR of the ranking alone.

For messages the notes do not answer: the share answered (confidently) and the share hedged (unsure).
A hit is any expected entry in the top group (source file + question compared as lowercase letters and
digits), so a duplicate group citing both chapter-13 answer sets counts once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.answer import ANSWERED, NO_ANSWER, NO_MATCH, UNSURE, Answer
from knowledge.models import question_key

DATA = Path(__file__).parent / "data"
DEV_QUERIES = Path("../shared/eval/dev_queries.jsonl")
VALIDATION_QUERIES = DATA / "messages" / "w5.jsonl"
CALIBRATION_QUERIES = DATA / "calibration_queries.jsonl"
PROBE_QUERIES = DATA / "probe_queries.jsonl"
CONFIDENT = frozenset({ANSWERED, NO_ANSWER})
SERVED = frozenset({ANSWERED, NO_ANSWER, UNSURE})


def default_query_files() -> list[Path]:
    """What `tutor eval` reads without arguments: the validation author, then the older sets."""
    return [p for p in (VALIDATION_QUERIES, DEV_QUERIES, CALIBRATION_QUERIES, PROBE_QUERIES) if p.is_file()]


@dataclass(frozen=True)
class Query:
    query: str
    expect: tuple[tuple[str, str], ...]  # (source, question key)
    style: str = ""
    author: str = ""

    @property
    def in_kb(self) -> bool:
        return bool(self.expect)


@dataclass(frozen=True)
class Outcome:
    """One message's result: its rank of the right entry (None: absent or out of the notes) and status."""

    query: Query
    status: str
    rank: int | None
    probability: float
    got: str | None

    @property
    def top_right(self) -> bool:
        return self.rank == 1


@dataclass
class Report:
    n_in: int = 0
    n_out: int = 0
    served: float = 0.0
    wrong: float = 0.0
    refused: float = 0.0
    rank1: float = 0.0
    mrr: float = 0.0
    out_answered: float = 0.0
    out_unsure: float = 0.0
    misses: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "misses"
        }


def load_queries(path: Path) -> list[Query]:
    queries = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            expect = tuple((e["source"], question_key(e["question"])) for e in obj.get("expect", []))
            queries.append(Query(obj["query"], expect, str(obj.get("style", "")), str(obj.get("author", ""))))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a query line ({exc})") from None
    return queries


def outcome(query: Query, answer: Answer, groups: Sequence[set]) -> Outcome:
    expected = set(query.expect)
    rank = next((i for i, g in enumerate(groups, start=1) if g & expected), None) if expected else None
    return Outcome(query, str(answer.status), rank, answer.score, answer.question)


def summarize(outcomes: Iterable[Outcome]) -> Report:
    report = Report()
    for o in outcomes:
        if not o.query.in_kb:
            report.n_out += 1
            report.out_answered += o.status in CONFIDENT
            report.out_unsure += o.status == UNSURE
            if o.status != NO_MATCH:
                report.misses.append({"query": o.query.query, "status": o.status, "got": o.got})
            continue
        report.n_in += 1
        report.served += o.status in SERVED and o.top_right
        report.wrong += o.status in CONFIDENT and not o.top_right
        report.refused += o.status == NO_MATCH
        report.rank1 += o.top_right
        report.mrr += 1 / o.rank if o.rank else 0.0
        if not (o.status in SERVED and o.top_right):
            report.misses.append({"query": o.query.query, "rank": o.rank, "status": o.status, "got": o.got})
    if report.n_in:
        for name in ("served", "wrong", "refused", "rank1", "mrr"):
            setattr(report, name, getattr(report, name) / report.n_in)
    if report.n_out:
        report.out_answered /= report.n_out
        report.out_unsure /= report.n_out
    return report


def by_style(outcomes: Sequence[Outcome]) -> dict[str, Report]:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.query.style or ("in notes" if o.query.in_kb else "not in notes")].append(o)
    return {style: summarize(items) for style, items in sorted(groups.items())}


def run_eval(retriever, queries: Sequence[Query]) -> list[Outcome]:
    """Ask every query; ranks come from the same scoring the answers use."""
    results = retriever.ask_scored([q.query for q in queries])
    return [
        outcome(q, answer, retriever.group_keys(scoring) if scoring is not None else [])
        for q, (answer, scoring) in zip(queries, results, strict=True)
    ]


def risk_coverage(outcomes: Sequence[Outcome]) -> tuple[list[float], list[float]]:
    """Answering every message whose probability clears a cut-off, for every cut-off: (coverage, risk).

    Coverage is the share of all messages answered; risk the share of those answered wrong (a wrong top
    entry, or any answer to a message the notes do not cover).
    """
    ranked = sorted(outcomes, key=lambda o: -o.probability)
    coverage, risk, wrong = [], [], 0
    for i, o in enumerate(ranked, start=1):
        wrong += not o.top_right
        coverage.append(i / len(ranked))
        risk.append(wrong / i)
    return coverage, risk


def plot_risk_coverage(
    outcomes: Sequence[Outcome], cutoffs: dict[str, float], path: Path, title: str = ""
) -> Path:
    """Draw the risk-coverage curve with the model's cut-offs marked; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coverage, risk = risk_coverage(outcomes)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.plot(coverage, risk, color="#1f77b4", lw=1.8, label="answer everything above a cut-off")
    probabilities = sorted((o.probability for o in outcomes), reverse=True)
    for (name, cut), colour in zip(cutoffs.items(), ("#d62728", "#ff7f0e"), strict=False):
        n = sum(p >= cut for p in probabilities)
        if n:
            ax.scatter([coverage[n - 1]], [risk[n - 1]], color=colour, zorder=3, s=40)
            ax.annotate(
                f"{name} (p >= {cut:.2f}): coverage {coverage[n - 1]:.2f}, risk {risk[n - 1]:.3f}",
                (coverage[n - 1], risk[n - 1]),
                textcoords="offset points",
                xytext=(-10, 12),
                ha="right",
                fontsize=8,
                color=colour,
            )
    in_kb = sum(o.query.in_kb for o in outcomes) / max(1, len(outcomes))
    top = max(0.05, max(risk) * 1.05)
    ax.axvline(in_kb, color="grey", ls=":", lw=1)
    ax.text(
        in_kb - 0.01, top * 0.97, "share the notes answer", fontsize=7, color="grey", ha="right", va="top"
    )
    ax.set_xlabel("coverage (share of messages answered)")
    ax.set_ylabel("risk (share of answers that are wrong)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, top)
    ax.set_title(title or "Risk-coverage of the calibrated probability", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
