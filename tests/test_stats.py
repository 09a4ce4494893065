"""Statistics checked against values worked out by hand (or by an independent route)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from evalkit.core.stats import (
    binom_cdf_half,
    bootstrap_macro_ci,
    bootstrap_proportion_ci,
    holm_adjust,
    mcnemar_exact,
    paired_bootstrap_diff,
    wilson_interval,
)


# --- Wilson --------------------------------------------------------------------------

def test_wilson_8_of_10_matches_hand_computation():
    # p=0.8, z=1.959964: centre=(0.8+z^2/20)/(1+z^2/10), half=z*sqrt(0.016+z^2/400)/(1+z^2/10)
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=5e-5)
    assert hi == pytest.approx(0.9433, abs=5e-5)


def test_wilson_zero_successes_has_closed_form_upper_bound():
    # At p=0 the upper bound is z^2 / (n + z^2).
    z2 = 1.959963984540054 ** 2
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(z2 / (10 + z2), rel=1e-12)
    assert wilson_interval(10, 10)[1] == 1.0


def test_wilson_narrower_at_lower_confidence_and_empty_n():
    lo95, hi95 = wilson_interval(45, 60)
    lo80, hi80 = wilson_interval(45, 60, confidence=0.80)
    assert lo95 < lo80 < 0.75 < hi80 < hi95
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


# --- McNemar -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "lost, gained, expected",
    [
        # n=10, k=1: 2*(C(10,0)+C(10,1))/2^10 = 22/1024
        (1, 9, Fraction(22, 1024)),
        (9, 1, Fraction(22, 1024)),
        # n=15, k=3: 2*(1+15+105+455)/2^15 = 1152/32768
        (3, 12, Fraction(1152, 32768)),
        # n=6, k=0: 2/64
        (0, 6, Fraction(2, 64)),
        # balanced: 2*P(X<=5; 10) > 1, capped at 1
        (5, 5, Fraction(1)),
        (0, 0, Fraction(1)),
        # n=1: 2 * 1/2 = 1
        (1, 0, Fraction(1)),
    ],
)
def test_mcnemar_exact_against_hand_computed(lost, gained, expected):
    assert mcnemar_exact(lost, gained) == pytest.approx(float(expected), rel=1e-12)


def test_mcnemar_exact_close_to_continuity_corrected_chi2_at_large_n():
    b, c = 400, 500
    chi2 = (abs(b - c) - 1) ** 2 / (b + c)
    p_approx = math.erfc(math.sqrt(chi2 / 2))  # chi-square with 1 df
    assert mcnemar_exact(b, c) == pytest.approx(p_approx, rel=0.05)


def test_binom_cdf_half_is_exact():
    assert binom_cdf_half(2, 4) == 11 / 16
    assert binom_cdf_half(-1, 4) == 0.0
    assert binom_cdf_half(4, 4) == 1.0


# --- Holm ----------------------------------------------------------------------------

def test_holm_step_down_by_hand():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> kept monotone at 0.06
    adjusted = holm_adjust([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_single_is_unchanged():
    assert holm_adjust([0.6, 0.7]) == [1.0, 1.0]
    assert holm_adjust([0.02]) == [0.02]
    assert holm_adjust([]) == []


# --- bootstraps ----------------------------------------------------------------------

def _percentile(values, q):
    """Linear-interpolation percentile, written out (numpy's default method)."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _paired_case():
    # 137 items: 71 right in both, 9 lost (1->0), 4 gained (0->1), 53 wrong in both.
    base = [True] * 71 + [True] * 9 + [False] * 4 + [False] * 53
    cand = [True] * 71 + [False] * 9 + [True] * 4 + [False] * 53
    return base, cand


def test_paired_bootstrap_fixed_seed_reproducible_to_the_digit():
    base, cand = _paired_case()
    r = paired_bootstrap_diff(base, cand, n_resamples=5000, seed=7)
    assert (r.n, r.lost, r.gained) == (137, 9, 4)
    assert r.diff == pytest.approx((4 - 9) / 137)
    # Reference written from the definition: draw (lost, kept, gained) counts
    # of 137 resampled items with default_rng(7), take the 2.5/97.5 percentiles.
    rng = np.random.default_rng(7)
    counts = rng.multinomial(137, [9 / 137, 124 / 137, 4 / 137], size=5000)
    diffs = [(int(g) - int(l)) / 137 for l, _, g in counts]
    assert r.lo == pytest.approx(_percentile(diffs, 0.025), abs=1e-12)
    assert r.hi == pytest.approx(_percentile(diffs, 0.975), abs=1e-12)
    # Pinned: the same call gives the same digits on any machine (PCG64 is specified).
    again = paired_bootstrap_diff(base, cand, n_resamples=5000, seed=7)
    assert (again.lo, again.hi) == (r.lo, r.hi)
    # (Both ends fall on the grid of k/137: -12 and +2 items.)
    assert r.lo == pytest.approx(-12 / 137, abs=1e-12)
    assert r.hi == pytest.approx(2 / 137, abs=1e-12)


def test_paired_bootstrap_matches_index_resampling_in_distribution():
    # The definition of a paired bootstrap resamples item indices; ours draws the
    # counts. Same distribution: the intervals agree within Monte-Carlo noise.
    base, cand = _paired_case()
    rng = np.random.default_rng(123)
    b = np.array(base, dtype=float)
    c = np.array(cand, dtype=float)
    idx = rng.integers(0, len(b), size=(4000, len(b)))
    by_index = (c[idx] - b[idx]).mean(axis=1)
    r = paired_bootstrap_diff(base, cand, n_resamples=4000, seed=1)
    assert r.lo == pytest.approx(np.quantile(by_index, 0.025), abs=0.0075)
    assert r.hi == pytest.approx(np.quantile(by_index, 0.975), abs=0.0075)


def test_paired_bootstrap_identical_runs_and_length_mismatch():
    same = [True, False, True, True]
    r = paired_bootstrap_diff(same, same)
    assert (r.diff, r.lo, r.hi, r.lost, r.gained) == (0.0, 0.0, 0.0, 0, 0)
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap_diff([True], [True, False])


def test_bootstrap_proportion_matches_wilson_roughly_and_is_seeded():
    lo, hi = bootstrap_proportion_ci(412, 600, seed=3)
    wlo, whi = wilson_interval(412, 600)
    assert lo == pytest.approx(wlo, abs=0.006) and hi == pytest.approx(whi, abs=0.006)
    assert bootstrap_proportion_ci(412, 600, seed=3) == (lo, hi)
    rng = np.random.default_rng(3)
    draws = rng.binomial(600, 412 / 600, size=10_000) / 600
    assert lo == pytest.approx(_percentile(draws, 0.025), abs=1e-12)
    assert hi == pytest.approx(_percentile(draws, 0.975), abs=1e-12)


def test_bootstrap_macro_ci_brackets_the_macro_mean():
    counts = [(80, 100), (30, 60), (9, 10)]
    macro = (0.8 + 0.5 + 0.9) / 3
    lo, hi = bootstrap_macro_ci(counts, seed=0)
    assert lo < macro < hi
    # Its width is about that of the normal approximation of a mean of independent parts.
    se = math.sqrt(sum((s / n) * (1 - s / n) / n for s, n in counts)) / 3
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.1)
    # Empty datasets are ignored.
    assert bootstrap_macro_ci(counts + [(0, 0)], seed=0) == (lo, hi)
