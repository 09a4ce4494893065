"""Agreement of a judge's grades with human grades. Pure functions, no I/O.

``agreement(human, judge, categories)`` pairs the two lists answer by answer and
gives n, Spearman's rho, Kendall's tau-b and the quadratic-weighted kappa, each
with a percentile bootstrap interval over answers, and the confusion matrix
(rows human, columns judge). An answer counts toward n only when both grades are
on the scale; a missing judge grade (a judge error) or one off the scale is
counted in ``judge_errors``, a human grade off the scale (LiveQA's -2) in
``human_off_scale``. ``length_baseline`` turns answer lengths into grades on the
same scale, the trivial judge a real one has to beat.

A statistic that is undefined (fewer than two answers, or one side constant) is
None, never a made-up number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_SEED, JudgeSettings, field_default

DEFAULT_RESAMPLES = field_default(JudgeSettings, "n_resamples")  # the judge's agreement figures


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing the mean of their positions."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's correlation of the average ranks. None when undefined."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"paired grades differ in length: {len(a)} vs {len(b)}")
    if len(a) < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    return None if denom == 0 else float((ra * rb).sum()) / denom


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties in x) (n0 - ties in y)). None when undefined.

    Counted on the table of distinct values (grades take few values), so a
    bootstrap of a few thousand answers stays fast.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"paired grades differ in length: {len(a)} vs {len(b)}")
    n = len(a)
    if n < 2:
        return None
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    table = np.zeros((len(ua), len(ub)))
    np.add.at(table, (ia, ib), 1)
    # above_right[i, j]: answers with a larger x and a larger y than cell (i, j); above_left: larger x, smaller y.
    rev = table[::-1, ::-1].cumsum(axis=0).cumsum(axis=1)[::-1, ::-1]
    above_right = np.zeros_like(table)
    above_right[:-1, :-1] = rev[1:, 1:]
    left = table[::-1, :].cumsum(axis=0)[::-1, :].cumsum(axis=1)
    above_left = np.zeros_like(table)
    above_left[:-1, 1:] = left[1:, :-1]
    s = float((table * above_right).sum() - (table * above_left).sum())
    n0 = n * (n - 1) / 2
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    untied_a = n0 - float((rows * (rows - 1) / 2).sum())
    untied_b = n0 - float((cols * (cols - 1) / 2).sum())
    denom = math.sqrt(untied_a * untied_b)
    return None if denom == 0 else s / denom


def _table(human: Sequence[int], judge: Sequence[int], categories: Sequence[int]) -> np.ndarray:
    cats = np.asarray(categories)
    h, j = np.asarray(human), np.asarray(judge)
    m = np.zeros((len(cats), len(cats)))
    if len(h):
        hi, ji = (h[:, None] == cats[None, :]), (j[:, None] == cats[None, :])
        if not (hi.any(axis=1).all() and ji.any(axis=1).all()):
            raise ValueError(f"a grade is not one of the categories {list(categories)}")
        np.add.at(m, (hi.argmax(axis=1), ji.argmax(axis=1)), 1)
    return m


def confusion_matrix(human: Sequence[int], judge: Sequence[int], categories: Sequence[int]) -> list[list[int]]:
    """Counts: row i is human grade categories[i], column j judge grade categories[j]."""
    return [[int(v) for v in row] for row in _table(human, judge, categories)]


def quadratic_weighted_kappa(human: Sequence[int], judge: Sequence[int], categories: Sequence[int]) -> float | None:
    """Cohen's kappa with quadratic weights ((i - j) / (k - 1))^2 over CATEGORIES' positions.

    1 - sum(w * observed) / sum(w * expected), expected from the two marginals.
    None when undefined (no answers, or expected disagreement zero).
    """
    k = len(categories)
    if k < 2:
        raise ValueError("a kappa needs at least two categories")
    observed = _table(human, judge, categories)
    n = observed.sum()
    if n == 0:
        return None
    pos = np.arange(k, dtype=float)
    weights = ((pos[:, None] - pos[None, :]) / (k - 1)) ** 2
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    disagree_expected = float((weights * expected).sum())
    if disagree_expected == 0:
        return None
    return 1.0 - float((weights * observed).sum()) / disagree_expected


def bootstrap_ci(stat: Any, x: Sequence[float], y: Sequence[float], *, confidence: float = DEFAULT_CONFIDENCE,
                 n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[float, float] | None:
    """Percentile bootstrap interval of STAT(x, y) over resampled answer pairs.

    Resamples where STAT is undefined (None) are left out; None when fewer than
    half of the resamples give a value.
    """
    a, b = np.asarray(x), np.asarray(y)
    n = len(a)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        v = stat(a[idx], b[idx])
        if v is not None:
            values.append(v)
    if len(values) < n_resamples / 2:
        return None
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(np.asarray(values), [tail, 1.0 - tail])
    return (float(lo), float(hi))


@dataclass
class Agreement:
    """A judge's agreement with human grades on one axis."""

    n: int
    spearman: float | None
    kendall: float | None
    qwk: float | None
    spearman_ci: tuple[float, float] | None
    kendall_ci: tuple[float, float] | None
    qwk_ci: tuple[float, float] | None
    confusion: list[list[int]]
    categories: list[int]
    judge_errors: int = 0
    human_off_scale: int = 0
    ungraded: int = 0  # answers with no human grade at all
    baseline: "Agreement | None" = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The --json form: each statistic a number (None when undefined), CIs under their own keys."""
        d: dict[str, Any] = {
            "n": self.n, "spearman": self.spearman, "kendall": self.kendall, "qwk": self.qwk,
            "judge_errors": self.judge_errors,
            "spearman_ci": list(self.spearman_ci) if self.spearman_ci else None,
            "kendall_ci": list(self.kendall_ci) if self.kendall_ci else None,
            "qwk_ci": list(self.qwk_ci) if self.qwk_ci else None,
            "human_off_scale": self.human_off_scale, "ungraded": self.ungraded,
            "categories": self.categories, "confusion": self.confusion,
        }
        if self.baseline is not None:
            b = self.baseline.to_dict()
            d["length_baseline"] = {k: b[k] for k in ("n", "spearman", "kendall", "qwk", "spearman_ci",
                                                       "kendall_ci", "qwk_ci", "confusion")}
        d.update(self.extra)
        return d


def agreement(human: Sequence[Any], judge: Sequence[Any], categories: Sequence[int], *,
              lengths: Sequence[int] | None = None, confidence: float = DEFAULT_CONFIDENCE,
              n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Agreement:
    """Agreement of JUDGE with HUMAN grades (same answers, same order) on the scale CATEGORIES.

    A None human grade is an ungraded answer; a human grade off the scale is
    counted apart; a None or off-scale judge grade is a judge error. With LENGTHS
    (one per answer), ``baseline`` holds the same figures for the answer-length judge.
    """
    if len(human) != len(judge):
        raise ValueError(f"paired grades differ in length: {len(human)} vs {len(judge)}")
    if lengths is not None and len(lengths) != len(human):
        raise ValueError(f"{len(lengths)} lengths for {len(human)} answers")
    cats = list(categories)
    on_scale = set(cats)
    h_kept: list[int] = []
    j_kept: list[int] = []
    kept_idx: list[int] = []
    judge_errors = human_off = ungraded = 0
    for i, (h, j) in enumerate(zip(human, judge)):
        if j is None or j not in on_scale or isinstance(j, bool):
            judge_errors += 1
        if h is None:
            ungraded += 1
            continue
        if h not in on_scale:
            human_off += 1
            continue
        if j is None or j not in on_scale or isinstance(j, bool):
            continue
        h_kept.append(h)
        j_kept.append(j)
        kept_idx.append(i)
    result = _figures(h_kept, j_kept, cats, confidence, n_resamples, seed)
    result.judge_errors, result.human_off_scale, result.ungraded = judge_errors, human_off, ungraded
    if lengths is not None:
        # The baseline grades every answer with a human grade on the scale, judge error or not.
        graded = [(i, h) for i, h in enumerate(human) if h is not None and h in on_scale]
        h_all = [h for _, h in graded]
        base_grades = length_baseline([lengths[i] for i, _ in graded], h_all, cats)
        result.baseline = _figures(h_all, base_grades, cats, confidence, n_resamples, seed)
    return result


def _figures(h: list[int], j: list[int], cats: list[int], confidence: float, n_resamples: int,
             seed: int) -> Agreement:
    def kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
        return quadratic_weighted_kappa(list(a), list(b), cats)

    opts = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    return Agreement(
        n=len(h), spearman=spearman(h, j), kendall=kendall_tau_b(h, j), qwk=kappa(h, j) if h else None,
        spearman_ci=bootstrap_ci(spearman, h, j, **opts), kendall_ci=bootstrap_ci(kendall_tau_b, h, j, **opts),
        qwk_ci=bootstrap_ci(kappa, h, j, **opts), confusion=confusion_matrix(h, j, cats), categories=cats)


def length_baseline(lengths: Sequence[int], human: Sequence[int], categories: Sequence[int]) -> list[int]:
    """Grades from answer length alone: the shortest answers get the lowest grade, in the humans' proportions.

    Answers sorted by length (ties in file order) are cut into runs as long as the
    counts of each human grade, lowest first; so the baseline's marginal equals the
    humans' and only the ordering by length is tested.
    """
    counts = [sum(1 for h in human if h == c) for c in categories]
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    grades = [categories[0]] * len(lengths)
    pos = 0
    for cat, count in zip(categories, counts):
        for i in order[pos:pos + count]:
            grades[i] = cat
        pos += count
    return grades
