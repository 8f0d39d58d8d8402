"""Retrieval quality on a labelled query set (format: ``shared/eval/README.md``).

Hit@k and MRR are computed over in-knowledge-base queries, counting a hit when the answered group
contains any expected entry (source file + question compared as lowercase letters and digits), so a
duplicate group citing both chapter-13 answer sets counts once. Abstention is the share of
out-of-knowledge-base queries answered ``no_match``; false abstention the share of in-base queries not
``answered``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.answer import ANSWERED, NO_MATCH, Answer
from knowledge.models import normalize_question

DEFAULT_QUERIES = Path("../shared/eval/dev_queries.jsonl")
CALIBRATION_QUERIES = Path(__file__).parent / "data" / "calibration_queries.jsonl"


@dataclass(frozen=True)
class Query:
    query: str
    expect: tuple[tuple[str, str], ...]  # (source, normalized question)

    @property
    def in_kb(self) -> bool:
        return bool(self.expect)


@dataclass
class Report:
    n_in: int = 0
    n_out: int = 0
    hit1: float = 0.0
    hit3: float = 0.0
    mrr: float = 0.0
    abstention: float = 0.0
    false_abstention: float = 0.0
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
            expect = tuple((e["source"], normalize_question(e["question"])) for e in obj.get("expect", []))
            queries.append(Query(obj["query"], expect))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a query line ({exc})") from None
    return queries


def evaluate(
    queries: Sequence[Query], answers: Sequence[Answer], ranked_groups: Sequence[list[set]]
) -> Report:
    """``ranked_groups[i]``: for query i, the ranked groups as sets of (source, normalized question)."""
    report = Report()
    for query, answer, groups in zip(queries, answers, ranked_groups, strict=True):
        if not query.in_kb:
            report.n_out += 1
            report.abstention += answer.status == NO_MATCH
            if answer.status != NO_MATCH:
                report.misses.append(
                    {"query": query.query, "got": answer.status, "question": answer.question}
                )
            continue
        report.n_in += 1
        expected = set(query.expect)
        rank = next((i for i, g in enumerate(groups, start=1) if g & expected), None)
        report.hit1 += rank == 1
        report.hit3 += rank is not None and rank <= 3
        report.mrr += 1 / rank if rank else 0.0
        report.false_abstention += answer.status != ANSWERED
        if rank != 1 or answer.status != ANSWERED:
            report.misses.append(
                {"query": query.query, "rank": rank, "status": answer.status, "got": answer.question}
            )
    if report.n_in:
        for name in ("hit1", "hit3", "mrr", "false_abstention"):
            setattr(report, name, getattr(report, name) / report.n_in)
    if report.n_out:
        report.abstention /= report.n_out
    return report


def run_eval(retriever, queries: Sequence[Query]) -> Report:
    """Ask every query and score the answers; ranks come from the same scoring the answers use."""
    answers = retriever.ask_many([q.query for q in queries])
    ranked_groups = [retriever.ranked_groups(q.query) for q in queries]
    return evaluate(queries, answers, ranked_groups)
