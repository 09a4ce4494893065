"""Accuracy split by overlap with training data: the hooks ``evalkit report --overlap`` and
``evalkit gate --clean-only`` call.

``split_by_overlap`` is the pure core: a run's items (keyed by (dataset, id)) and the
set of overlapping keys in, the overlapping and the clean items out. ``overlap_rows``
turns a run's split into per-dataset rows: the overlap rate, accuracy on overlapping
and on clean items with Wilson intervals, and their difference (overlapping minus
clean) with Newcombe's interval (``evalkit.core.stats``). ``read_overlap`` reads an
``overlap.jsonl`` written by ``evalkit overlap``.

A flag holds for the text that was searched for. An overlap file records each item's
fingerprint (the sha256 of its question and of its context: ``overlap.text_fingerprint``)
and each benchmark file's sha256; ``check_overlap`` compares a run's items with it (the
question and context each sample stores) and refuses an item whose text changed since
(a ``StaleOverlapError``), or, with ``stale="ignore"``, leaves it out as not covered, with
a note. Every consumer (report, leaderboard, gate, compare) checks each run before it
splits it, and ``overlap_rows`` checks again. An overlap file written before fingerprints were recorded cannot
be checked: it is used as it is, with a note that says so.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from evalkit.config import (DEFAULT_CONFIDENCE, OVERLAP_RULES, OVERLAP_STALE, OverlapSettings,
                            field_default)
from evalkit.data.overlap import text_fingerprint
from evalkit.run.rundir import choice_verdict
from evalkit.core.stats import newcombe_diff_interval, wilson_interval

ItemKey = tuple[str, str]
RULES = OVERLAP_RULES


class StaleOverlapError(ValueError):
    """A run's items are not the text the overlap file flagged (the benchmark changed since)."""


@dataclass(frozen=True)
class OverlapSet:
    """The items an overlap file covers and those a rule flags.

    ``fingerprints``: each covered item's text fingerprint (None: the file records none, so it
    cannot be checked); ``stale``: what ``check_overlap`` does with an item whose text differs
    (``refuse`` or ``ignore``); ``caveats``: what a reader should know whatever the runs (a file
    without fingerprints, one made from a partial scan); ``source``: the file, for messages."""

    rule: str
    covered: frozenset[ItemKey]
    overlapping: frozenset[ItemKey]
    fingerprints: Mapping[ItemKey, Mapping[str, str]] | None = field(default=None, compare=False, hash=False)
    stale: str = field_default(OverlapSettings, "stale")
    caveats: tuple[str, ...] = ()
    source: str = "the overlap file"
    made_from: str = ""  # the benchmark files (and their sha256) the file was made from, for messages


def read_overlap(path: str | Path, rule: str = field_default(OverlapSettings, "rule"),
                 stale: str = field_default(OverlapSettings, "stale")) -> OverlapSet:
    """Read overlap.jsonl (``evalkit overlap -o``); RULE picks Med-PaLM 2's rule or the n-gram rule,
    STALE what to do with a run's item whose text is not the one the file flagged (``check_overlap``)."""
    if rule not in RULES:
        raise ValueError(f"unknown overlap rule {rule!r} (choose from {', '.join(RULES)})")
    if stale not in OVERLAP_STALE:
        raise ValueError(f"unknown --overlap-stale {stale!r} (choose from {', '.join(OVERLAP_STALE)})")
    covered, flagged = set(), set()
    prints: dict[ItemKey, Mapping[str, str]] = {}
    header: dict[str, Any] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if "overlap_header" in row:
                    header = row["overlap_header"] if isinstance(row["overlap_header"], dict) else {}
                    continue
                key = (str(row["dataset"]), str(row["id"]))
                hit = bool(row[f"{rule}_overlap"])
                fingerprint = row.get("fingerprint")
                if fingerprint is not None and not isinstance(fingerprint.get("question"), str):
                    raise TypeError("its fingerprint has no question sha256")
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ValueError(f"{path}:{lineno}: not an overlap.jsonl line ({e})") from e
            covered.add(key)
            if fingerprint is not None:
                prints[key] = fingerprint
            if hit:
                flagged.add(key)
    made_from = ", ".join(f"{b.get('path')} (sha256 {str(b.get('sha256'))[:12]}...)"
                          for b in header.get("benchmarks") or () if isinstance(b, dict))
    return OverlapSet(rule, frozenset(covered), frozenset(flagged), prints or None, stale,
                      _caveats(str(path), header, bool(prints)), str(path), made_from)


def _caveats(path: str, header: Mapping[str, Any], fingerprinted: bool) -> tuple[str, ...]:
    out = []
    if not fingerprinted:
        out.append(f"{path} records no item fingerprints (made before evalkit recorded them): whether its flags "
                   "are for these items' text cannot be checked; rerun evalkit overlap to make it checkable")
    missed = [*(header.get("incomplete") or {}), *(header.get("unreadable") or {})]
    if missed:
        out.append(f"{path} was made from a partial scan ({len(missed)} training files incomplete or unreadable, "
                   f"e.g. {missed[0]}): overlap in what was not read is not flagged")
    return tuple(out)


def stale_items(items: Mapping[ItemKey, Mapping[str, Any]], overlap: OverlapSet) -> list[ItemKey]:
    """The keys of ITEMS (samples) that OVERLAP covers whose text is not the text it flagged: the
    question differs, or the context a sample stores does. A sample storing no question, or no
    context where the file has one (a run made before samples stored it), is checked on what it has."""
    if overlap.fingerprints is None:
        return []
    out = []
    for key, sample in items.items():
        want = overlap.fingerprints.get(key)
        question = sample.get("question")
        if want is None or key not in overlap.covered or not question:
            continue
        got = text_fingerprint(str(question), sample.get("context") or None)
        if got["question"] != want.get("question") or ("context" in got and got["context"] != want.get("context")):
            out.append(key)
    return out


def check_overlap(overlap: OverlapSet, items: Mapping[ItemKey, Mapping[str, Any]], whose: str = ""
                  ) -> tuple[OverlapSet, list[str]]:
    """OVERLAP as it may be used for ITEMS (one run's samples; WHOSE names the run in messages),
    and the notes to show with it (its caveats, the items left out).

    An item the file covers whose text changed (``stale_items``) raises StaleOverlapError, or with
    ``overlap.stale == "ignore"`` is dropped from the set (so it counts as not covered)."""
    notes = list(overlap.caveats)
    stale = stale_items(items, overlap)
    if not stale:
        return overlap, notes
    shown = ", ".join(f"{d}/{i}" for d, i in stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    made_from = f", made from {overlap.made_from}" if overlap.made_from else ""
    what = (f"{len(stale)} items{' of ' + whose if whose else ''} are not the text {overlap.source} flagged "
            f"({shown}): the benchmark changed since the overlap file was made{made_from}")
    if overlap.stale != "ignore":
        raise StaleOverlapError(f"{what}; rerun evalkit overlap on this version of the benchmark, or pass "
                                "--overlap-stale ignore to leave those items out of the split")
    drop = frozenset(stale)
    notes.append(f"{what}; left out of the split as not covered (--overlap-stale ignore)")
    return replace(overlap, covered=overlap.covered - drop, overlapping=overlap.overlapping - drop), notes


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
    """Per dataset of one run's ITEMS: accuracy on overlapping vs clean items (binary ``correct``).
    StaleOverlapError when an item's text is not the one OVERLAP flagged (``check_overlap``)."""
    overlap, _ = check_overlap(overlap, items, label)  # the callers show the notes: they checked first
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
