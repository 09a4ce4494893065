"""Accuracy split by overlap with training data: the hooks ``evalkit report --overlap`` and
``evalkit gate --clean-only`` call.

``split_by_overlap`` is the pure core: a run's items (keyed by (dataset, id)) and the
set of overlapping keys in, the overlapping and the clean items out. ``overlap_rows``
turns a run's split into per-dataset rows: the overlap rate, accuracy on overlapping
and on clean items with Wilson intervals, and their difference (overlapping minus
clean) with Newcombe's interval (``evalkit.stats``). ``read_overlap`` reads an
``overlap.jsonl`` written by ``evalkit overlap``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from evalkit.config import DEFAULT_CONFIDENCE, OVERLAP_RULES, OverlapSettings, field_default
from evalkit.runs import choice_verdict
from evalkit.stats import newcombe_diff_interval, wilson_interval

ItemKey = tuple[str, str]
RULES = OVERLAP_RULES


@dataclass(frozen=True)
class OverlapSet:
    """The items an overlap file covers and those a rule flags."""

    rule: str
    covered: frozenset[ItemKey]
    overlapping: frozenset[ItemKey]


def read_overlap(path: str | Path, rule: str = field_default(OverlapSettings, "rule")) -> OverlapSet:
    """Read overlap.jsonl (``evalkit overlap -o``); RULE picks Med-PaLM 2's rule or the n-gram rule."""
    if rule not in RULES:
        raise ValueError(f"unknown overlap rule {rule!r} (choose from {', '.join(RULES)})")
    covered, flagged = set(), set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if "overlap_header" in row:
                    continue
                key = (str(row["dataset"]), str(row["id"]))
                hit = bool(row[f"{rule}_overlap"])
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: not an overlap.jsonl line ({e})") from e
            covered.add(key)
            if hit:
                flagged.add(key)
    return OverlapSet(rule, frozenset(covered), frozenset(flagged))


def split_by_overlap(items: Mapping[ItemKey, Any], overlap: OverlapSet
                     ) -> tuple[dict[ItemKey, Any], dict[ItemKey, Any], list[ItemKey]]:
    """ITEMS split into (overlapping, clean, not covered by the overlap file)."""
    hit: dict[ItemKey, Any] = {}
    clean: dict[ItemKey, Any] = {}
    missing: list[ItemKey] = []
    for key, value in items.items():
        if key not in overlap.covered:
            missing.append(key)
        elif key in overlap.overlapping:
            hit[key] = value
        else:
            clean[key] = value
    return hit, clean, missing


@dataclass
class OverlapRow:
    """One dataset of one run, split by overlap. Fractions, not percentages."""

    run: str
    dataset: str
    n: int
    overlapping: int
    overlap_rate: float
    acc_overlap: float | None
    acc_overlap_ci: tuple[float, float] | None
    acc_clean: float | None
    acc_clean_ci: tuple[float, float] | None
    diff: float | None
    diff_ci: tuple[float, float] | None
    not_covered: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _acc(items: Mapping[ItemKey, Mapping[str, Any]]) -> tuple[int, int]:
    answered = [s for s in items.values() if not s.get("error")]
    return sum(1 for s in answered if choice_verdict(s)), len(answered)


def overlap_rows(label: str, items: Mapping[ItemKey, Mapping[str, Any]], overlap: OverlapSet,
                 confidence: float = DEFAULT_CONFIDENCE) -> list[OverlapRow]:
    """Per dataset of one run's ITEMS: accuracy on overlapping vs clean items (binary ``correct``)."""
    per: OrderedDict[str, dict[ItemKey, Any]] = OrderedDict()
    for key, s in items.items():
        per.setdefault(key[0], {})[key] = s
    rows = []
    for dataset, its in per.items():
        hit, clean, missing = split_by_overlap(its, overlap)
        k1, n1 = _acc(hit)
        k2, n2 = _acc(clean)
        covered = len(hit) + len(clean)
        d = newcombe_diff_interval(k1, n1, k2, n2, confidence) if n1 and n2 else None
        rows.append(OverlapRow(
            run=label, dataset=dataset, n=covered, overlapping=len(hit),
            overlap_rate=len(hit) / covered if covered else 0.0,
            acc_overlap=k1 / n1 if n1 else None, acc_overlap_ci=wilson_interval(k1, n1, confidence) if n1 else None,
            acc_clean=k2 / n2 if n2 else None, acc_clean_ci=wilson_interval(k2, n2, confidence) if n2 else None,
            diff=d[0] if d else None, diff_ci=(d[1], d[2]) if d else None, not_covered=len(missing)))
    return rows


OVERLAP_HEADER = ["run", "dataset", "n", "overlap", "acc overlap [CI]", "acc clean [CI]",
                  "overlap − clean [CI]", "not in overlap file"]


def _pct_ci(x: float | None, ci: tuple[float, float] | None, signed: bool = False) -> str:
    if x is None or ci is None:
        return "-"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"{f.format(100 * x)} [{f.format(100 * ci[0])}, {f.format(100 * ci[1])}]"


def overlap_cells(r: OverlapRow) -> list[str]:
    """One table row, in percent."""
    return [r.run, r.dataset, str(r.n), f"{r.overlapping} ({100 * r.overlap_rate:.1f}%)",
            _pct_ci(r.acc_overlap, r.acc_overlap_ci), _pct_ci(r.acc_clean, r.acc_clean_ci),
            _pct_ci(r.diff, r.diff_ci, signed=True), str(r.not_covered)]
