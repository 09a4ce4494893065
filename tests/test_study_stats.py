"""Study statistics on hand-computed cases."""

import numpy as np
import pytest

from evalkit.web.study.stats import cluster_resamples, krippendorff_alpha, majority, preference, randolph_kappa, shares


def test_randolph_kappa_by_hand():
    # unit 1: all three agree -> 1; unit 2: a,a,b -> (2*1 + 0) / (3*2) = 1/3; P_o = 2/3; q = 2 -> (2/3 - 1/2) / (1/2)
    assert randolph_kappa([["a", "a", "a"], ["a", "a", "b"]], 2) == pytest.approx(1 / 3)
    # q = 3: chance 1/3 -> (2/3 - 1/3) / (2/3) = 1/2; a unit with one rating is left out
    assert randolph_kappa([["a", "a", "a"], ["a", "a", "b"], ["c"]], 3) == pytest.approx(0.5)
    assert randolph_kappa([["a"]], 2) is None
    # all disagree with two raters and two categories: P_o = 0 -> -1
    assert randolph_kappa([["a", "b"], ["b", "a"]], 2) == pytest.approx(-1.0)


def test_krippendorff_alpha_by_hand():
    # two units of two coders: (a,a), (a,b). coincidences: o_aa = 2, o_ab = o_ba = 1; n_a = 3, n_b = 1, n = 4.
    # alpha = 1 - (n-1) * D_o / sum_{c!=k} n_c n_k = 1 - 3 * 2 / (2 * 3 * 1) = 0
    assert krippendorff_alpha([["a", "a"], ["a", "b"]]) == pytest.approx(0.0)
    assert krippendorff_alpha([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    assert krippendorff_alpha([["a", "a"], ["a"]]) is None  # no disagreement possible


def test_krippendorff_alpha_matches_the_package():
    import krippendorff  # the test extra
    rng = np.random.default_rng(4)
    cats = ["x", "y", "z"]
    units = [[cats[v] for v in rng.integers(0, 3, size=int(rng.integers(1, 5)))] for _ in range(40)]
    width = max(len(u) for u in units)
    data = np.full((width, len(units)), np.nan)
    for j, u in enumerate(units):
        for i, v in enumerate(u):
            data[i, j] = cats.index(v)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert krippendorff_alpha(units) == pytest.approx(expected, abs=1e-12)


def test_shares_bootstrap_is_clustered_and_fixed_by_seed():
    clusters = [["good", "good", "good"], ["bad", "bad", "bad"], ["good", "bad"], ["good"]]
    res = shares(clusters, ["good", "bad"], n_resamples=500, seed=7)
    assert res[0].share == pytest.approx(5 / 9) and res[0].count == 5 and res[0].n == 9
    # the replicates are the clusters drawn from seed 7, recomputed by hand
    draws = cluster_resamples(4, 500, 7)
    good = np.array([3, 0, 1, 1]); size = np.array([3, 3, 2, 1])
    rep = good[draws].sum(axis=1) / size[draws].sum(axis=1)
    assert res[0].ci == pytest.approx(tuple(np.quantile(rep, [0.025, 0.975])))
    assert shares(clusters, ["good", "bad"], n_resamples=500, seed=7) == res
    # identical clusters: every replicate the same share, the interval collapses
    flat = shares([["a", "b"]] * 5, ["a", "b"], n_resamples=200, seed=1)
    assert flat[0].ci == (0.5, 0.5)


def test_clustering_widens_the_interval_of_correlated_ratings():
    correlated = [["a"] * 5, ["b"] * 5] * 6
    independent = [[v] for c in correlated for v in c]
    wide = shares(correlated, ["a", "b"], n_resamples=2000, seed=0)[0].ci
    narrow = shares(independent, ["a", "b"], n_resamples=2000, seed=0)[0].ci
    assert wide[1] - wide[0] > 1.8 * (narrow[1] - narrow[0])


def test_permutation_p_exact_by_hand():
    # three pairs, X preferred in each (one rating each): T = 1. Of the 8 sign patterns only all + and
    # all - reach |T| = 1 -> p = 2/8
    pref = preference([[1], [1], [1]], n_resamples=100, seed=0)
    assert pref.exact and pref.p_value == pytest.approx(0.25)
    assert pref.x_rate == 1.0 and pref.y_rate == 0.0 and pref.tie_rate == 0.0
    # clusters (+1,+1), (-1), (0): sums 2, -1, 0 over n = 4; observed |T| = 1/4.
    # patterns of (s1, s2, s3): |2 s1 - s2| / 4 >= 1/4 always (values 1/4 or 3/4) -> p = 1
    assert preference([[1, 1], [-1], [0]], n_resamples=100, seed=0).p_value == pytest.approx(1.0)
    assert preference([]) is None


def test_permutation_sampled_when_many_clusters():
    pref = preference([[1]] * 30, n_resamples=999, seed=3)
    assert not pref.exact and pref.p_value == pytest.approx(1 / 1000)


def test_majority():
    assert majority(["a", "b", "a"]) == "a" and majority(["a", "b"]) is None and majority([]) is None
