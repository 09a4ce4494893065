"""Statistics for accuracies and for comparing two runs. Pure functions, no I/O.

- ``wilson_interval``: score interval for a proportion (good at small n and near 0 or 1).
- ``bootstrap_proportion_ci`` / ``bootstrap_macro_ci``: percentile bootstrap of an
  accuracy, or of an unweighted mean of several datasets' accuracies.
- ``paired_bootstrap_diff``: percentile bootstrap of the accuracy difference of two
  runs scored on the same items.
- ``mcnemar_exact``: exact two-sided McNemar test on the discordant pairs.
- ``holm_adjust``: Holm step-down adjustment over several p-values.

Every verdict here is binary, so a bootstrap resample of n verdicts depends only
on how many of each kind it drew. We therefore draw those counts directly
(binomial for one run, multinomial over {lost, kept, gained} for a pair): the
same distribution as resampling item indices, at a cost that does not grow
with n, so a leaderboard of many runs stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np

from evalkit.config import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED  # noqa: F401 (their home)


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _check_count(successes: int, n: int) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")


def wilson_interval(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for ``successes / n``; (0.0, 1.0) when n is 0."""
    _check_count(successes, n)
    if n == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # Clamp rounding noise at the ends (the exact bounds are 0 and 1 there).
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def _percentile_interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def bootstrap_proportion_ci(
    successes: int,
    n: int,
    confidence: float = DEFAULT_CONFIDENCE,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of an accuracy ``successes / n``.

    Resampling n binary verdicts with replacement draws Binomial(n, successes/n)
    successes, which is what this samples (``numpy.random.default_rng(seed)``).
    """
    _check_count(successes, n)
    _z(confidence)
    if n == 0:
        return (0.0, 1.0)
    rng = np.random.default_rng(seed)
    draws = rng.binomial(n, successes / n, size=n_resamples) / n
    return _percentile_interval(draws, confidence)


def bootstrap_macro_ci(
    counts: Sequence[tuple[int, int]],
    confidence: float = DEFAULT_CONFIDENCE,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Bootstrap interval of the unweighted mean of several accuracies.

    ``counts`` holds (successes, n) per dataset; each dataset is resampled on its
    own (a stratified bootstrap) and the resampled accuracies are averaged.
    """
    counts = [(s, n) for s, n in counts if n > 0]
    for s, n in counts:
        _check_count(s, n)
    _z(confidence)
    if not counts:
        return (0.0, 1.0)
    rng = np.random.default_rng(seed)
    total = np.zeros(n_resamples)
    for s, n in counts:
        total += rng.binomial(n, s / n, size=n_resamples) / n
    return _percentile_interval(total / len(counts), confidence)


@dataclass(frozen=True)
class PairedDiff:
    """Candidate minus baseline accuracy on paired items, with its bootstrap interval.

    ``lost`` counts items the baseline got right and the candidate wrong;
    ``gained`` the reverse. Values are fractions (0.01 is one point).
    """

    n: int
    diff: float
    lo: float
    hi: float
    lost: int
    gained: int


def paired_bootstrap_diff(
    baseline: Sequence[bool],
    candidate: Sequence[bool],
    confidence: float = DEFAULT_CONFIDENCE,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> PairedDiff:
    """Paired percentile bootstrap of ``mean(candidate) - mean(baseline)``.

    ``baseline[i]`` and ``candidate[i]`` are the verdicts on the same item. Each
    resample draws n items with replacement; only the numbers of lost (1 -> 0)
    and gained (0 -> 1) items change the difference, so the counts are drawn
    as Multinomial(n; lost/n, kept/n, gained/n) from ``default_rng(seed)``.
    """
    if len(baseline) != len(candidate):
        raise ValueError(f"paired runs differ in length: {len(baseline)} vs {len(candidate)}")
    _z(confidence)
    n = len(baseline)
    lost = sum(1 for b, c in zip(baseline, candidate) if b and not c)
    gained = sum(1 for b, c in zip(baseline, candidate) if c and not b)
    if n == 0:
        return PairedDiff(0, 0.0, 0.0, 0.0, 0, 0)
    diff = (gained - lost) / n
    rng = np.random.default_rng(seed)
    kept = n - lost - gained
    draws = rng.multinomial(n, [lost / n, kept / n, gained / n], size=n_resamples)
    resampled = (draws[:, 2] - draws[:, 0]) / n
    lo, hi = _percentile_interval(resampled, confidence)
    return PairedDiff(n=n, diff=diff, lo=lo, hi=hi, lost=lost, gained=gained)


def binom_cdf_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), computed exactly in integers."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    # Integer sum then one division: exact up to the final float rounding.
    return sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)


def mcnemar_exact(lost: int, gained: int) -> float:
    """Exact two-sided McNemar p-value from the two discordant counts.

    Under no difference each discordant pair is a fair coin, so
    p = min(1, 2 * P(Binomial(lost + gained, 1/2) <= min(lost, gained))).
    """
    if lost < 0 or gained < 0:
        raise ValueError(f"discordant counts must be >= 0, got {lost}, {gained}")
    n = lost + gained
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * binom_cdf_half(min(lost, gained), n))


def holm_adjust(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order.

    Sorted ascending p_(1) <= ... <= p_(m), the adjusted value is
    max over j <= i of min(1, (m - j + 1) * p_(j)); rejecting where the adjusted
    value is <= alpha controls the family-wise error rate at alpha.
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        p = pvalues[i]
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value out of [0, 1]: {p}")
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


# --- scores on a scale or continuous ---------------------------------------------------------

@dataclass(frozen=True)
class MeanCI:
    """The mean of N values with a percentile bootstrap interval."""

    n: int
    mean: float | None
    lo: float | None
    hi: float | None


def _resampled_means(x: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """N_RESAMPLES means of X resampled with replacement, drawn in chunks so memory stays bounded."""
    n = len(x)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        means[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return means


def bootstrap_mean_ci(
    values: Sequence[float],
    confidence: float = DEFAULT_CONFIDENCE,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MeanCI:
    """Mean of VALUES with a percentile bootstrap interval (items resampled with replacement).

    Resamples are drawn in chunks so memory stays bounded for large n.
    """
    _z(confidence)
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return MeanCI(0, None, None, None)
    means = _resampled_means(x, np.random.default_rng(seed), n_resamples)
    lo, hi = _percentile_interval(means, confidence)
    return MeanCI(n=n, mean=float(x.mean()), lo=lo, hi=hi)


def paired_bootstrap_mean_diff(
    baseline: Sequence[float],
    candidate: Sequence[float],
    confidence: float = DEFAULT_CONFIDENCE,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> PairedDiff:
    """Paired percentile bootstrap of ``mean(candidate) - mean(baseline)`` for numeric scores.

    The per-item differences are resampled; ``lost`` / ``gained`` count items whose
    score went down / up.
    """
    if len(baseline) != len(candidate):
        raise ValueError(f"paired runs differ in length: {len(baseline)} vs {len(candidate)}")
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    d = c - b
    ci = bootstrap_mean_ci(d, confidence, n_resamples=n_resamples, seed=seed)
    if ci.n == 0:
        return PairedDiff(0, 0.0, 0.0, 0.0, 0, 0)
    return PairedDiff(n=ci.n, diff=float(ci.mean), lo=float(ci.lo), hi=float(ci.hi),
                      lost=int((d < 0).sum()), gained=int((d > 0).sum()))


def bootstrap_macro_mean_ci(
    groups: Sequence[Sequence[float]],
    confidence: float = DEFAULT_CONFIDENCE,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Bootstrap interval of the unweighted mean of several datasets' mean scores; each dataset is
    resampled on its own (a stratified bootstrap), as ``bootstrap_macro_ci`` does for accuracies."""
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    _z(confidence)
    if not groups:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    total = sum(_resampled_means(x, rng, n_resamples) for x in groups)
    return _percentile_interval(total / len(groups), confidence)


def newcombe_diff_interval(k1: int, n1: int, k2: int, n2: int,
                           confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float, float]:
    """``k1/n1 - k2/n2`` of two independent proportions, with Newcombe's hybrid score interval.

    Newcombe (1998), method 10: it combines the two Wilson intervals, so it behaves
    at small n and near 0 or 1 as they do. Returns (difference, low, high); with an
    empty group, (0.0, -1.0, 1.0).
    """
    _check_count(k1, n1)
    _check_count(k2, n2)
    if n1 == 0 or n2 == 0:
        return (0.0, -1.0, 1.0)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (d, max(-1.0, lo), min(1.0, hi))
