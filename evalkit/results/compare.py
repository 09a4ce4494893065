"""Comparing runs item by item: the data behind ``evalkit compare`` (pure but for reading the runs).

Given two or more runs of the same benchmarks (checkpoints of a sweep, two prompts...),
``build_comparison`` works out:

- which settings differ between the runs (``comparable.configuration_of``: model and
  checkpoint hash, prompt, extractor, generation parameters, strategy, scorers);
- for each ordered pair of runs, the regression gate's verdict per dataset, computed by
  ``gate.compare_runs`` itself (McNemar or the paired bootstrap, Holm-adjusted), so the page
  and ``evalkit gate`` can never disagree;
- for each pair and item, the direction of change: fixed (wrong -> right), broken
  (right -> wrong), unchanged right, unchanged wrong, or left out of the pairing (a failed
  request, a missing score, an item one run lacks). Fixed and broken are the gate's own
  gained and lost items;
- for each run and item, its verdict (right, wrong, unparsed, error, not scored, absent).

Nothing here renders: ``pages.compare`` turns a ``Comparison`` into a page.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, GateSettings, field_default
from evalkit.results.comparable import SETTINGS, configuration_of
from evalkit.results.gate import GateResult, compare_runs, scored_pair, format_p
from evalkit.results.report import pct, run_labels
from evalkit.core.records import LEGACY_SCORE
from evalkit.run.rundir import ItemKey, Run, choice_answer, choice_verdict, load_run, sample_scores


if TYPE_CHECKING:
    from evalkit.results.overlap_split import OverlapSet

# Direction of one item between a baseline and a candidate (one character each, so a pair's
# directions over thousands of items embed as one short string).
FIXED, BROKEN, SAME_RIGHT, SAME_WRONG, SAME, LEFT_OUT = "F", "B", "R", "W", "S", "X"
DIRECTION_LABELS = OrderedDict([
    (FIXED, "fixed"), (BROKEN, "broken"), (SAME_RIGHT, "unchanged right"), (SAME_WRONG, "unchanged wrong"),
    (SAME, "unchanged"), (LEFT_OUT, "not paired"),
])
# Verdict of one run on one item.
RIGHT, WRONG, UNPARSED, ERROR, UNSCORED, ABSENT, SCORED = "r", "w", "u", "e", "n", "-", "s"
VERDICT_LABELS = OrderedDict([
    (RIGHT, "right"), (WRONG, "wrong"), (UNPARSED, "unparsed"), (ERROR, "error"), (UNSCORED, "not scored"),
    (ABSENT, "absent"), (SCORED, "scored"),
])
# Beyond this many runs only the pairs (earlier, later) are computed, not both orders.
MAX_RUNS_ALL_ORDERS = 6

BENCHMARKS = "benchmarks"  # a pseudo-setting of the comparison: the datasets each run covers
SETTING_LABELS = {
    BENCHMARKS: "benchmarks", "model": "model", "checkpoint": "checkpoint hash", "prompt": "prompt",
    "prompt_sha256": "prompt template sha256",
    "extractor": "extractor", "scorers": "scorers", "max_new_tokens": "max new tokens", "temperature": "temperature",
    "top_p": "top p", "strategy": "strategy", "samples": "samples", "refine_samples": "refine samples",
    "scoring_version": "scoring version", "controls": "request controls",
}
PAIR_HEADER = ["dataset", "n", "both right", "both wrong", "fixed 0\u21921", "broken 1\u21920", "baseline %",
               "candidate %", "diff pts", "CI", "McNemar p", "Holm p", "verdict"]


@dataclass
class PairComparison:
    """One ordered pair of runs: the gate's result and each item's direction (aligned with the items)."""

    baseline: int
    candidate: int
    gate: GateResult
    directions: str
    clean_gate: GateResult | None = None  # the gate on the clean items only (with an overlap file)


@dataclass
class Comparison:
    """Two or more runs side by side: settings that differ, items, verdicts and paired results."""

    runs: list[Run]
    labels: list[str]
    score: str
    settings: list[dict[str, Any]]
    differing: list[str]
    items: list[ItemKey]
    verdicts: list[str]  # per run: one VERDICT character per item
    pairs: dict[tuple[int, int], PairComparison] = field(default_factory=dict)
    overlap: "OverlapSet | None" = None
    overlap_marks: str | None = None  # per item: overlap_tables.OVERLAP, CLEAN or NOT_COVERED
    overlap_notes: list[str] = field(default_factory=list)  # what checking the runs against it said

    @property
    def mismatches(self) -> list[str]:
        """Why ``evalkit gate`` would call the first two runs (baseline, candidate) not comparable:
        different prompts, extractors or items, a benchmark only one of them has; [] when none."""
        first = self.pairs.get((0, 1))
        return list(first.gate.mismatches) if first is not None else []

    def pair(self, baseline: int, candidate: int) -> PairComparison:
        """The comparison of run BASELINE with run CANDIDATE (indices into ``runs``)."""
        try:
            return self.pairs[(baseline, candidate)]
        except KeyError:
            raise KeyError(f"the pair {self.labels[baseline]} -> {self.labels[candidate]} was not computed") from None

    @property
    def binary(self) -> bool:
        """True when the compared score is right/wrong (not a number on a scale)."""
        return not any(SCORED in v for v in self.verdicts)

    def items_going(self, baseline: int, candidate: int, direction: str) -> list[ItemKey]:
        """The items whose direction from BASELINE to CANDIDATE is DIRECTION (one of the direction letters)."""
        dirs = self.pair(baseline, candidate).directions
        return [key for key, d in zip(self.items, dirs) if d == direction]


def run_settings(runs: Sequence[Run]) -> tuple[list[dict[str, Any]], list[str]]:
    """Each run's configuration (the benchmarks it covers, model, checkpoint hash, prompt, generation
    settings, scorers...) and the names of the settings whose values are not all equal."""
    settings = [{BENCHMARKS: ", ".join(OrderedDict((d, None) for d, _ in r.items())),
                 **configuration_of(model=r.model, prompt=r.prompt, prompt_sha256=r.prompt_sha256,
                                    extractor=r.extractor, manifest=r.manifest, samples=r.samples).settings()}
                for r in runs]
    differing = [name for name in (BENCHMARKS, *SETTINGS) if len({repr(s[name]) for s in settings}) > 1]
    return settings, differing


def verdict_of(sample: Mapping[str, Any] | None, score: str = LEGACY_SCORE) -> str:
    """One run's verdict on one item under SCORE, read as the gate reads it.

    The multiple-choice verdict (``correct``) is ``rundir.choice_verdict``; a wrong one with no
    extracted letter (``rundir.choice_answer``) is "unparsed". Another binary score is right when
    True, else wrong; a numeric score is just "scored".
    """
    if sample is None:
        return ABSENT
    if sample.get("error"):
        return ERROR
    value = sample_scores(sample).get(score)
    if value is None:
        return UNSCORED
    if score == LEGACY_SCORE:
        value = bool(choice_verdict(sample))
    if isinstance(value, bool):
        if value:
            return RIGHT
        unparsed = score == LEGACY_SCORE and choice_answer(sample)[0] is None and sample.get("options")
        return UNPARSED if unparsed else WRONG
    return SCORED


def pair_directions(items: Sequence[ItemKey], baseline: Run, candidate: Run, gate: GateResult, score: str) -> str:
    """Each item's direction from BASELINE to CANDIDATE, one letter per item of ITEMS.

    Fixed and broken are the gate's gained and lost items; an item the gate did not pair
    (missing in either run, a failed request, no score) is LEFT_OUT; the rest are unchanged,
    right or wrong by the baseline's verdict (or just unchanged for a numeric score).
    """
    lost = {(v.dataset, f.id) for v in gate.datasets for f in v.lost_items}
    gained = {(v.dataset, i) for v in gate.datasets for i in v.gained_ids}
    paired = {v.dataset for v in gate.datasets}
    b_items, c_items = baseline.items(), candidate.items()
    out = []
    for key in items:
        b, c = b_items.get(key), c_items.get(key)
        if b is None or c is None or key[0] not in paired or not scored_pair(b, c, score):
            out.append(LEFT_OUT)
        elif key in lost:
            out.append(BROKEN)
        elif key in gained:
            out.append(FIXED)
        else:
            v = verdict_of(b, score)
            out.append(SAME_RIGHT if v == RIGHT else SAME_WRONG if v in (WRONG, UNPARSED) else SAME)
    return "".join(out)


def default_pairs(n_runs: int) -> list[tuple[int, int]]:
    """Which ordered pairs to compute: both orders of every pair for a few runs, else (earlier, later)."""
    if n_runs <= MAX_RUNS_ALL_ORDERS:
        return [(i, j) for i in range(n_runs) for j in range(n_runs) if i != j]
    return [(i, j) for i in range(n_runs) for j in range(i + 1, n_runs)]


def build_comparison(
    runs: Iterable["str | Path | Run"],
    *,
    score: str = field_default(GateSettings, "score"),
    max_drop: float = field_default(GateSettings, "max_drop"),
    alpha: float = field_default(GateSettings, "alpha"),
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    pairs: Sequence[tuple[int, int]] | None = None,
    overlap: "OverlapSet | None" = None,
) -> Comparison:
    """Compare two or more runs: settings, per-item verdicts, and the gate on each pair in PAIRS
    (default: ``default_pairs``). The gate's options mean what they mean for ``evalkit gate``.

    With OVERLAP (``overlap_split.read_overlap``), each item is marked overlapping, clean or not
    covered, and each pair is also gated on the clean items (``evalkit gate --clean-only``). Each run
    is checked against it first (``overlap_split.check_overlap``): an item whose text is not the one
    it flagged raises StaleOverlapError, or is marked not covered (``overlap_notes`` says so)."""
    loaded = [load_run(r) for r in runs]
    if len(loaded) < 2:
        raise ValueError("a comparison needs at least two runs")
    items: OrderedDict[ItemKey, None] = OrderedDict()
    for run in loaded:
        for key in run.items():
            items[key] = None
    keys = list(items)
    settings, differing = run_settings(loaded)
    verdicts = ["".join(verdict_of(run.items().get(k), score) for k in keys) for run in loaded]
    comparison = Comparison(runs=loaded, labels=run_labels(loaded), score=score, settings=settings,
                            differing=differing, items=keys, verdicts=verdicts)
    if overlap is not None:
        from evalkit.results.overlap_split import check_overlap
        from evalkit.results.overlap_tables import item_marks

        for run, label in zip(loaded, comparison.labels):  # items whose text changed: refused, or dropped
            overlap, notes = check_overlap(overlap, run.items(), label)
            comparison.overlap_notes.extend(n for n in notes if n not in comparison.overlap_notes)
        comparison.overlap, comparison.overlap_marks = overlap, item_marks(keys, overlap)
    for b, c in (pairs if pairs is not None else default_pairs(len(loaded))):
        if b == c or not (0 <= b < len(loaded) and 0 <= c < len(loaded)):
            raise ValueError(f"pair ({b}, {c}): two different run indices below {len(loaded)} are needed")
        options = dict(max_drop=max_drop, alpha=alpha, confidence=confidence, allow_mismatch=True,
                       n_resamples=n_resamples, seed=seed, score=score)
        gate = compare_runs(loaded[b], loaded[c], **options)
        clean = compare_runs(loaded[b], loaded[c], clean_only=overlap, **options) if overlap is not None else None
        comparison.pairs[(b, c)] = PairComparison(b, c, gate, pair_directions(keys, loaded[b], loaded[c], gate, score),
                                                  clean)
    return comparison


def pair_rows(gate: GateResult, binary: bool = True) -> list[list[str]]:
    """The paired result per dataset as the page shows it (PAIR_HEADER), formatted as ``evalkit gate`` does.

    Both right and both wrong follow from the gate's counts: both right = baseline right - broken,
    both wrong = n - both right - broken - fixed (binary scores only; "-" for a numeric score).
    """
    rows = []
    for v in gate.datasets:
        both_right = int(round(v.baseline_correct)) - v.lost if binary else None
        both_wrong = v.n - both_right - v.lost - v.gained if both_right is not None else None
        rows.append([
            v.dataset, str(v.n), "-" if both_right is None else str(both_right),
            "-" if both_wrong is None else str(both_wrong), str(v.gained), str(v.lost),
            pct(v.baseline_accuracy), pct(v.candidate_accuracy), f"{100 * v.diff:+.1f}",
            f"[{100 * v.diff_low:+.1f}, {100 * v.diff_high:+.1f}]", format_p(v.p_value), format_p(v.p_holm), v.status,
        ])
    return rows
