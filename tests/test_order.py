"""Length-aware dispatch (evalkit.run.order): predictions from a run, LPT order, the rule for unknown items,
choosing the source run with ``auto``."""

import json
import random

import pytest

from evalkit.run.order import (UNKNOWN_FIRST, UNKNOWN_MEDIAN, dispatch_order, find_auto_source, item_key,
                           plan_dispatch, predicted_lengths)
from evalkit.core.records import Item
from tests.runfactory import make_sample


def items(n, dataset="medqa"):
    return [Item(id=f"q{i}", dataset=dataset, question=f"Question {i}?", options={"A": "a", "B": "b"},
                 answer_idx="A") for i in range(n)]


def preds(lengths, dataset="medqa"):
    """Predictions for items q<i> from {i: tokens}."""
    return {(dataset, f"q{i}", 0): t for i, t in lengths.items()}


def ids(ordered):
    return [it.id for it in ordered]


def write_run(run_dir, samples, **manifest):
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "samples.jsonl", "w") as fh:
        for s in samples:
            fh.write(json.dumps(s) + "\n")
    if manifest:
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


# --- dispatch_order -------------------------------------------------------------------------------

def test_known_items_go_longest_first_and_ties_keep_file_order():
    its = items(6)
    order = dispatch_order(its, preds({0: 10, 1: 500, 2: 40, 3: 500, 4: 2000, 5: 40}))
    assert ids(order) == ["q4", "q1", "q3", "q2", "q5", "q0"]


def test_the_order_is_a_permutation_and_sorted_by_prediction_on_a_random_workload():
    rng = random.Random(7)
    its = items(1000)
    p = preds({i: rng.randint(1, 3000) for i in range(1000)})
    order = dispatch_order(its, p)
    assert sorted(ids(order)) == sorted(ids(its))
    lengths = [p[item_key(it)] for it in order]
    assert lengths == sorted(lengths, reverse=True)


def test_unknown_items_go_first_in_file_order_by_default():
    its = items(6)
    order = dispatch_order(its, preds({0: 10, 2: 900, 3: 50, 5: 400}))
    assert ids(order) == ["q1", "q4", "q2", "q5", "q3", "q0"]
    assert ids(dispatch_order(its, preds({0: 10, 2: 900, 3: 50, 5: 400}), UNKNOWN_FIRST)) == ids(order)


def test_unknown_items_by_the_median_rule_rank_at_the_median_known_length():
    its = items(7)
    # known lengths 10, 50, 300, 400, 900: the median is 300; unknown q1, q4 go after the known 300
    order = dispatch_order(its, preds({0: 10, 2: 900, 3: 50, 5: 400, 6: 300}), UNKNOWN_MEDIAN)
    assert ids(order) == ["q2", "q5", "q6", "q1", "q4", "q3", "q0"]


def test_with_no_prediction_at_all_the_order_is_file_order():
    its = items(5)
    assert ids(dispatch_order(its, {}, UNKNOWN_MEDIAN)) == ids(its)
    assert ids(dispatch_order(its, preds({}, dataset="other"))) == ids(its)


def test_predictions_match_by_dataset_as_well_as_id():
    its = items(2, "a") + items(2, "b")
    order = dispatch_order(its, {("b", "q1", 0): 100, ("a", "q0", 0): 50, ("a", "q1", 0): 10, ("b", "q0", 0): 5})
    assert [(it.dataset, it.id) for it in order] == [("b", "q1"), ("a", "q0"), ("a", "q1"), ("b", "q0")]


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="last"):
        dispatch_order(items(2), preds({0: 1}), "last")


# --- predicted_lengths ----------------------------------------------------------------------------

def test_predicted_lengths_take_completion_tokens_of_the_sample_that_counts(tmp_path):
    run = write_run(tmp_path / "run", [
        make_sample("q0", completion_tokens=120),
        make_sample("q1", error="timeout"),                         # failed: no prediction
        make_sample("q2", error="timeout"),
        make_sample("q2", completion_tokens=700),                   # retried on resume: the success counts
        make_sample("q3", completion_tokens=50),
        make_sample("q3", error="timeout"),                         # an error never beats a success
        make_sample("q4", completion_tokens=9),
        make_sample("q4", completion_tokens=11),                    # a later success beats an earlier
    ])
    assert predicted_lengths(run) == {("medqa", "q0", 0): 120, ("medqa", "q2", 0): 700, ("medqa", "q3", 0): 50,
                                      ("medqa", "q4", 0): 11}
    assert predicted_lengths(run / "samples.jsonl") == predicted_lengths(run)


def test_a_multi_sample_record_predicts_its_total_over_generations(tmp_path):
    s = make_sample("q0", completion_tokens=0)
    s.update(strategy="self-consistency", usage={"prompt_tokens": 500, "completion_tokens": 3 * 400})
    assert predicted_lengths(write_run(tmp_path / "run", [s])) == {("medqa", "q0", 0): 1200}


def test_a_sample_without_usage_gives_no_prediction(tmp_path):
    s = make_sample("q0")
    s["usage"] = {}
    t = make_sample("q1")
    t["usage"] = {"completion_tokens": "many"}
    assert predicted_lengths(write_run(tmp_path / "run", [s, t, make_sample("q2", completion_tokens=3)])) == {
        ("medqa", "q2", 0): 3}


def test_a_missing_run_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        predicted_lengths(tmp_path / "nowhere")


def test_a_named_run_without_lengths_or_without_these_items_is_an_error(tmp_path):
    empty = make_sample("q0")
    empty["usage"] = {}
    run = write_run(tmp_path / "nolen", [empty])
    with pytest.raises(ValueError, match="completion_tokens"):
        plan_dispatch(str(run), UNKNOWN_FIRST, results_dir=tmp_path, data_sha256=[], prompt_sha256="", limit=None)
    other = write_run(tmp_path / "other", [make_sample("zz", "pubmedqa", completion_tokens=5)])
    plan = plan_dispatch(str(other), UNKNOWN_FIRST, results_dir=tmp_path, data_sha256=[], prompt_sha256="",
                         limit=None)
    with pytest.raises(ValueError, match="other data"):
        plan.order(items(3))


def test_a_plan_counts_predicted_and_unpredicted_items_and_says_where_they_go(tmp_path):
    run = write_run(tmp_path / "run", [make_sample("q0", completion_tokens=5), make_sample("q2", completion_tokens=9)])
    plan = plan_dispatch(str(run), UNKNOWN_FIRST, results_dir=tmp_path, data_sha256=[], prompt_sha256="", limit=None)
    assert ids(plan.order(items(4))) == ["q1", "q3", "q2", "q0"]
    assert (plan.predicted, plan.unpredicted) == (2, 2)
    doc = plan.to_dict()
    assert doc["source"] == str(run) and doc["auto"] is False and doc["unpredicted_rule"] == "first"
    assert str(run) in plan.describe() and "2 without a prediction placed first" in plan.describe()
    none = plan_dispatch(None, UNKNOWN_FIRST, results_dir=tmp_path, data_sha256=[], prompt_sha256="", limit=None)
    assert ids(none.order(items(3))) == ["q0", "q1", "q2"] and none.to_dict()["by"] == "file order"


# --- auto -----------------------------------------------------------------------------------------

def manifest(data=("d1",), prompt="p1", status="complete", finished="2026-01-02T10:00:00+00:00", limit=None,
             model="m"):
    return dict(status=status, prompt_sha256=prompt, data=[{"sha256": d} for d in data], finished_at=finished,
                limit=limit, model=model)


def test_auto_picks_the_latest_complete_run_over_the_same_items_and_prompt_of_any_model(tmp_path):
    res = tmp_path / "results"
    sample = [make_sample("q0", completion_tokens=1)]
    write_run(res / "m1" / "old", sample, **manifest(finished="2026-01-01T10:00:00+00:00"))
    latest = write_run(res / "m2" / "new", sample, **manifest(finished="2026-01-03T09:00:00+00:00", model="other"))
    write_run(res / "m1" / "running", sample, **manifest(status="running", finished="2026-01-09T00:00:00+00:00"))
    write_run(res / "m1" / "stopped", sample, **manifest(status="interrupted", finished="2026-01-09T00:00:00+00:00"))
    write_run(res / "m1" / "otherprompt", sample, **manifest(prompt="p2", finished="2026-01-09T00:00:00+00:00"))
    write_run(res / "m1" / "otherdata", sample, **manifest(data=("d1", "d2"), finished="2026-01-09T00:00:00+00:00"))
    write_run(res / "m1" / "fewer", sample, **manifest(limit=10, finished="2026-01-09T00:00:00+00:00"))
    write_run(res / "m1" / "broken", sample)
    (res / "m1" / "broken" / "manifest.json").write_text("{not json")  # passed over, not an error
    assert find_auto_source(res, data_sha256=["d1"], prompt_sha256="p1", limit=None) == latest
    # a run limited to 10 items covers a run of 5, not one of all items
    assert find_auto_source(res, data_sha256=["d1"], prompt_sha256="p1", limit=5) == res / "m1" / "fewer"
    assert find_auto_source(res, data_sha256=["d1"], prompt_sha256="p1", limit=None, exclude=latest) == \
        res / "m1" / "old"
    assert find_auto_source(res, data_sha256=["d9"], prompt_sha256="p1", limit=None) is None


def test_auto_with_nothing_to_go_on_is_file_order_and_says_so(tmp_path):
    plan = plan_dispatch("auto", UNKNOWN_FIRST, results_dir=tmp_path / "none", data_sha256=["d1"],
                         prompt_sha256="p1", limit=None)
    assert plan.source is None and ids(plan.order(items(3))) == ["q0", "q1", "q2"]
    assert "found no finished run" in plan.describe()
