"""Agreement statistics against values computed by hand on a small constructed set."""

from __future__ import annotations

import pytest

from evalkit.scoring.agreement import (agreement, bootstrap_ci, confusion_matrix, kendall_tau_b, length_baseline,
                               quadratic_weighted_kappa, spearman)

# Six answers: human and judge grades on 1-4 (worked through in the comments of each test).
HUMAN = [1, 2, 3, 4, 2, 3]
JUDGE = [1, 3, 3, 4, 2, 2]
CATS = [1, 2, 3, 4]


def test_spearman_by_hand():
    # average ranks: human [1, 2.5, 4.5, 6, 2.5, 4.5], judge [1, 4.5, 4.5, 6, 2.5, 2.5];
    # centred products sum to 12.5, each sum of squares is 16.5: rho = 25/33.
    assert spearman(HUMAN, JUDGE) == pytest.approx(25 / 33)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_kendall_tau_b_by_hand():
    # 15 pairs: 10 concordant, 1 discordant, 2 tied in human only, 2 tied in judge only:
    # (10 - 1) / sqrt(13 * 13) = 9/13.
    assert kendall_tau_b(HUMAN, JUDGE) == pytest.approx(9 / 13)


def test_qwk_by_hand():
    # Observed disagreement 2 * (1/3)^2 = 2/9; expected from the marginals [1, 2, 2, 1] is 66/54:
    # kappa = 1 - (2/9) / (11/9) = 9/11.
    assert quadratic_weighted_kappa(HUMAN, JUDGE, CATS) == pytest.approx(9 / 11)
    assert quadratic_weighted_kappa([1, 2, 3, 4], [1, 2, 3, 4], CATS) == pytest.approx(1.0)


def test_confusion_matrix_rows_are_human():
    assert confusion_matrix(HUMAN, JUDGE, CATS) == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]]


def test_undefined_statistics_are_none_not_numbers():
    assert spearman([1, 2, 3], [2, 2, 2]) is None  # a constant judge has no ranking
    assert kendall_tau_b([1, 2, 3], [2, 2, 2]) is None
    assert spearman([1], [1]) is None
    assert quadratic_weighted_kappa([], [], CATS) is None
    assert quadratic_weighted_kappa([2, 2], [2, 2], CATS) is None  # no expected disagreement


def test_judge_errors_and_off_scale_values_are_counted_apart():
    human = HUMAN + [2, -2, 4, None]
    judge = JUDGE + [None, 3, 7, 2]  # a judge error, a human -2, an off-scale judge value, an ungraded answer
    a = agreement(human, judge, CATS, n_resamples=200)
    assert a.n == 6
    assert a.spearman == pytest.approx(25 / 33) and a.kendall == pytest.approx(9 / 13)
    assert a.qwk == pytest.approx(9 / 11)
    assert a.judge_errors == 2 and a.human_off_scale == 1 and a.ungraded == 1
    assert a.confusion == confusion_matrix(HUMAN, JUDGE, CATS)
    d = a.to_dict()
    assert {"n", "spearman", "kendall", "qwk", "judge_errors", "spearman_ci", "kendall_ci", "qwk_ci"} <= set(d)
    lo, hi = d["spearman_ci"]
    assert -1.0 <= lo <= hi <= 1.0


def test_bootstrap_ci_brackets_a_strong_correlation_and_is_seeded():
    x = list(range(40))
    y = [v + (3 if v % 2 else -3) for v in x]
    ci = bootstrap_ci(spearman, x, y, n_resamples=300, seed=1)
    assert ci is not None and ci[0] <= spearman(x, y) <= ci[1] and ci[0] > 0.9
    assert ci == bootstrap_ci(spearman, x, y, n_resamples=300, seed=1)


def test_length_baseline_by_hand():
    # Human counts 1:2, 2:2, 3:1; by length (10, 20, 30, 40, 50) -> 1, 1, 2, 2, 3.
    assert length_baseline([50, 10, 30, 40, 20], [1, 1, 2, 3, 2], CATS) == [3, 1, 2, 2, 1]


def test_baseline_figures_ride_with_the_judge_figures():
    lengths = [10, 20, 30, 40, 25, 35]
    a = agreement(HUMAN, JUDGE, CATS, lengths=lengths, n_resamples=100)
    # by length: 10->1, 20->2, 25->2, 30->3, 35->3, 40->4: the humans' grades exactly.
    assert a.baseline is not None and a.baseline.n == 6
    assert a.baseline.spearman == pytest.approx(1.0) and a.baseline.qwk == pytest.approx(1.0)
    assert a.to_dict()["length_baseline"]["n"] == 6


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="differ in length"):
        agreement([1, 2], [1], CATS)


def test_kendall_matches_the_pairwise_definition_on_random_grades():
    import random

    rng = random.Random(3)
    for _ in range(20):
        n = rng.randint(2, 30)
        x = [rng.randint(1, 4) for _ in range(n)]
        y = [rng.choice([1, 2, 3, 4, 2.5]) for _ in range(n)]
        c = d = tx = ty = 0
        for i in range(n):
            for j in range(i + 1, n):
                sx, sy = (x[i] > x[j]) - (x[i] < x[j]), (y[i] > y[j]) - (y[i] < y[j])
                c += sx * sy > 0
                d += sx * sy < 0
                tx += sx == 0
                ty += sy == 0
        n0 = n * (n - 1) // 2
        expected = None if (n0 - tx) * (n0 - ty) == 0 else (c - d) / ((n0 - tx) * (n0 - ty)) ** 0.5
        got = kendall_tau_b(x, y)
        assert (got is None and expected is None) or got == pytest.approx(expected)
