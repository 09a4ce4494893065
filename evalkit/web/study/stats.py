"""A rating study's statistics. Pure functions, no I/O; every interval and test is on a fixed seed.

- ``randolph_kappa``: free-marginal multirater kappa (Randolph 2005), Med-PaLM 2's agreement figure,
  chosen there over Krippendorff's alpha because several axes have low base rates.
- ``krippendorff_alpha``: nominal alpha from the coincidence matrix (units with one value dropped).
- ``shares``: per category the share of ratings with a percentile bootstrap interval that resamples
  answers (clusters), not single ratings: one answer's ratings are not independent.
- ``preference``: two systems compared on pairs: the share of ratings preferring each and of ties,
  intervals clustered by pair, and a permutation test of "no preference" that swaps the two systems
  within whole clusters (exact when there are few clusters).

A statistic that is undefined (no unit with two ratings; one category) is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_SEED, StudySettings, field_default

DEFAULT_RESAMPLES = field_default(StudySettings, "n_resamples")
EXACT_LIMIT = 12  # up to 2**12 sign patterns the permutation test enumerates them all


def randolph_kappa(units: Sequence[Sequence[Hashable]], n_categories: int) -> float | None:
    """Randolph's free-marginal kappa of UNITS (each the values its raters gave; units with fewer
    than two are left out) over N_CATEGORIES possible values: (P_o - 1/q) / (1 - 1/q), P_o the mean over
    units of the share of agreeing ordered rater pairs."""
    if n_categories < 2:
        return None
    agree = []
    for values in units:
        n = len(values)
        if n < 2:
            continue
        counts = np.unique(np.asarray([str(v) for v in values]), return_counts=True)[1]
        agree.append(float((counts * (counts - 1)).sum()) / (n * (n - 1)))
    if not agree:
        return None
    chance = 1.0 / n_categories
    return (float(np.mean(agree)) - chance) / (1.0 - chance)


def krippendorff_alpha(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal values: 1 - (n - 1) * D_o / sum over c != k of n_c * n_k, from the
    coincidence matrix of the units with at least two values (None when there is no disagreement to expect)."""
    pairable = [[str(v) for v in values] for values in units if len(values) >= 2]
    cats = sorted({v for values in pairable for v in values})
    if not pairable or len(cats) < 2:
        return None
    index = {c: i for i, c in enumerate(cats)}
    o = np.zeros((len(cats), len(cats)))
    for values in pairable:
        m = len(values)
        counts = np.zeros(len(cats))
        for v in values:
            counts[index[v]] += 1
        o += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    observed = o.sum() - np.trace(o)
    expected = n_c.sum() ** 2 - (n_c ** 2).sum()
    return float(1.0 - (n - 1) * observed / expected)


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    return float(lo), float(hi)


def cluster_resamples(n_clusters: int, n_resamples: int, seed: int) -> np.ndarray:
    """The clusters drawn in each bootstrap replicate (rows), with replacement, from SEED."""
    return np.random.default_rng(seed).integers(0, n_clusters, size=(n_resamples, n_clusters))


@dataclass(frozen=True)
class Share:
    """The share of ratings with one value: the estimate, its interval, and the counts."""

    value: str
    share: float
    ci: tuple[float, float]
    count: int
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "share": self.share, "ci": list(self.ci), "count": self.count, "n": self.n}


def shares(clusters: Sequence[Sequence[str]], categories: Sequence[str], *,
           n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
           confidence: float = DEFAULT_CONFIDENCE) -> list[Share]:
    """For each of CATEGORIES the share of all ratings in CLUSTERS (one list per answer) that chose it,
    with a percentile interval from resampling whole clusters (each replicate's share: its ratings of the
    category over all its ratings)."""
    clusters = [c for c in clusters if c]
    if not clusters:
        return []
    counts = np.array([[sum(1 for v in c if v == cat) for cat in categories] for c in clusters], dtype=float)
    sizes = np.array([len(c) for c in clusters], dtype=float)
    draws = cluster_resamples(len(clusters), n_resamples, seed)
    rep = counts[draws].sum(axis=1) / sizes[draws].sum(axis=1)[:, None]
    total = sizes.sum()
    return [Share(str(cat), float(counts[:, j].sum() / total), _interval(rep[:, j], confidence),
                  int(counts[:, j].sum()), int(total)) for j, cat in enumerate(categories)]


@dataclass(frozen=True)
class Preference:
    """Two systems X and Y on one axis: the shares of ratings preferring X, Y, or neither (tie), with
    intervals clustered by pair, and the permutation p-value of no preference."""

    x_rate: float
    y_rate: float
    tie_rate: float
    x_ci: tuple[float, float]
    y_ci: tuple[float, float]
    p_value: float
    n: int
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x_rate, "y": self.y_rate, "tie": self.tie_rate, "x_ci": list(self.x_ci),
                "y_ci": list(self.y_ci), "p_value": self.p_value, "n": self.n, "exact": self.exact}


def preference(clusters: Sequence[Sequence[int]], *, n_resamples: int = DEFAULT_RESAMPLES,
               seed: int = DEFAULT_SEED, confidence: float = DEFAULT_CONFIDENCE) -> Preference | None:
    """CLUSTERS: per pair of answers, each rating's outcome as +1 (X preferred), -1 (Y preferred) or 0 (tie).
    The statistic is the mean outcome over all ratings; under no preference X and Y are exchangeable within
    a pair, so each cluster's signs flip together: all 2**clusters patterns when few, else N_RESAMPLES
    random ones. p = share of patterns with |statistic| at least the observed one (the observed one
    counted among them when sampled)."""
    clusters = [np.asarray(c, dtype=float) for c in clusters if len(c)]
    if not clusters:
        return None
    sums = np.array([c.sum() for c in clusters])
    sizes = np.array([len(c) for c in clusters], dtype=float)
    wins = np.array([(c > 0).sum() for c in clusters], dtype=float)
    losses = np.array([(c < 0).sum() for c in clusters], dtype=float)
    n = sizes.sum()
    observed = abs(sums.sum() / n)
    exact = len(clusters) <= EXACT_LIMIT
    if exact:
        signs = np.array(list(product((1.0, -1.0), repeat=len(clusters))))
        stats = np.abs(signs @ sums / n)
        p = float(np.mean(stats >= observed - 1e-12))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(n_resamples, len(clusters)))
        stats = np.abs(signs @ sums / n)
        p = float((1 + np.sum(stats >= observed - 1e-12)) / (1 + n_resamples))
    draws = cluster_resamples(len(clusters), n_resamples, seed)
    rep_n = sizes[draws].sum(axis=1)
    return Preference(x_rate=float(wins.sum() / n), y_rate=float(losses.sum() / n),
                      tie_rate=float((n - wins.sum() - losses.sum()) / n),
                      x_ci=_interval(wins[draws].sum(axis=1) / rep_n, confidence),
                      y_ci=_interval(losses[draws].sum(axis=1) / rep_n, confidence), p_value=p, n=int(n), exact=exact)


def majority(values: Sequence[str]) -> str | None:
    """The value most raters gave (None on a tie for first, or no value)."""
    if not values:
        return None
    cats, counts = np.unique(np.asarray(values), return_counts=True)
    top = counts.max()
    return str(cats[counts.argmax()]) if (counts == top).sum() == 1 else None


def group(rows: Sequence[Mapping[str, Any]], key: str) -> dict[Any, list[Mapping[str, Any]]]:
    """ROWS grouped by their KEY field, first-seen order."""
    out: dict[Any, list[Mapping[str, Any]]] = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return out
