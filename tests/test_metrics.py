"""The metrics a scorer declares (evalkit.scoring.metrics): values checked against hand-computed cases."""

from __future__ import annotations

import pytest

from evalkit.scoring.metrics import (ClippedMean, Mean, MetricError, MetricValue, Proportion, WeightedProportion,
                                     default_metric, get_metric, metric_of, with_options)
from evalkit.core.stats import bootstrap_mean_ci, wilson_interval


def _scores(*values, **meta_of):
    return [{"value": v} for v in values]


def test_proportion_is_the_share_of_true_with_wilson_and_leaves_out_unscored():
    scores = [{"value": True}, {"value": False}, {"value": True}, {"value": None, "error": "judge gave up"},
              {"value": True}]
    got = Proportion().aggregate(scores)
    assert got.value == 0.75 and got.n == 4
    assert got.ci == pytest.approx(wilson_interval(3, 4))
    assert got.extra == {"successes": 3, "errors": 1}
    assert Proportion().aggregate([]) == MetricValue(None, None, 0, {"successes": 0, "errors": 0})


def test_proportion_refuses_values_that_are_not_true_or_false():
    with pytest.raises(MetricError, match="0.5"):
        Proportion().aggregate([{"value": 0.5}])


def test_mean_with_bootstrap_interval():
    got = Mean(n_resamples=500, seed=3).aggregate(_scores(1, 2, 3, 4))
    assert got.value == 2.5 and got.n == 4
    ref = bootstrap_mean_ci([1, 2, 3, 4], n_resamples=500, seed=3)
    assert got.ci == (ref.lo, ref.hi)


def test_clipped_mean_healthbench_negative_mean_is_zero():
    # Three conversations scored by HealthBench's rule (points met / positive points):
    #   (-6)/4 = -1.5,  (2)/4 = 0.5,  (2-5)/3 = -1.0   -> mean -2/3 -> clipped to 0.
    got = ClippedMean(0, 1).aggregate(_scores(-1.5, 0.5, -1.0))
    assert got.value == 0.0
    assert got.extra["unclipped_mean"] == pytest.approx(-2 / 3)
    assert got.n == 3 and got.ci is not None and got.ci[0] == 0.0 and got.ci[1] >= 0.0
    # Clipped AFTER averaging: a per-item clip would give mean(0, 0.5, 0) = 1/6, not 0.
    assert got.value != pytest.approx(1 / 6)


def test_clipped_mean_inside_the_range_and_above_it():
    assert ClippedMean(0, 1).aggregate(_scores(0.5, 0.25)).value == pytest.approx(0.375)
    assert ClippedMean(0, 1).aggregate(_scores(1.5, 1.0)).value == 1.0
    assert ClippedMean(0, 1).spec() == {"name": "clipped_mean", "lo": 0, "hi": 1}
    with pytest.raises(MetricError):
        ClippedMean(1, 0)


def test_weighted_proportion_excludes_weight_zero():
    scores = [
        {"value": True, "meta": {"weight": 3}},
        {"value": False, "meta": {"weight": 1}},
        {"value": True, "meta": {"weight": 0}},  # excluded: would raise the figure if counted
        {"value": False, "meta": {"weight": 0}},
        {"value": None, "error": "no reply", "meta": {"weight": 5}},
        {"value": True},                          # no weight: counts as 1
    ]
    got = WeightedProportion(n_resamples=400).aggregate(scores)
    assert got.value == pytest.approx((3 + 1) / (3 + 1 + 1))
    assert got.n == 3
    assert got.extra == {"weight_total": 5.0, "excluded": 2, "errors": 1}
    lo, hi = got.ci
    assert 0.0 <= lo <= got.value <= hi <= 1.0
    with pytest.raises(MetricError, match="weight"):
        WeightedProportion().aggregate([{"value": True, "meta": {"weight": -1}}])


def test_get_metric_by_name_spec_and_module_attr():
    assert isinstance(get_metric("proportion"), Proportion)
    m = get_metric({"name": "clipped_mean", "lo": 0, "hi": 1})
    assert isinstance(m, ClippedMean) and m.spec() == {"name": "clipped_mean", "lo": 0, "hi": 1}
    assert get_metric(m.spec()) == m  # a spec round-trips
    own = get_metric("tests.toy_scorers:MedianMetric")
    assert own.aggregate(_scores(1, 5, 2)).value == 2
    with pytest.raises(MetricError, match="unknown metric"):
        get_metric("median")
    with pytest.raises(MetricError, match="cannot build"):
        get_metric({"name": "mean", "lo": 1})


def test_default_metric_and_recorded_metric():
    assert isinstance(default_metric([True, None, False]), Proportion)
    assert isinstance(default_metric([1, 2.5]), Mean)
    assert isinstance(metric_of("grade", None, [1, 2]), Mean)
    assert isinstance(metric_of("overall", {"overall": {"name": "clipped_mean", "lo": 0, "hi": 1}}, [0.2]),
                      ClippedMean)


def test_with_options_sets_report_options_but_not_the_spec():
    m = with_options(Proportion(), ci_method="bootstrap", confidence=0.9, n_resamples=100, unknown=1)
    assert (m.ci_method, m.confidence, m.n_resamples) == ("bootstrap", 0.9, 100)
    assert m.spec() == {"name": "proportion"}
    own = get_metric("tests.toy_scorers:MedianMetric")
    assert with_options(own, confidence=0.9) is own


def test_only_metrics_that_are_a_function_of_the_plain_mean_convert_a_streamed_mean():
    """A streamed summary keeps the plain mean; a weighted figure cannot come from it."""
    from evalkit.scoring.metrics import get_metric, value_of_mean

    assert value_of_mean(get_metric("proportion"), 0.25) == 0.25
    assert value_of_mean(get_metric("mean"), -0.5) == -0.5
    assert value_of_mean(get_metric({"name": "clipped_mean", "lo": 0, "hi": 1}), -0.5) == 0.0
    assert value_of_mean(get_metric("weighted_proportion"), 0.25) is None
