"""Rubrics are data: the shipped files load, any file of the documented shape loads, bad ones say where."""

from __future__ import annotations

import json

import pytest

from evalkit.scoring.rubrics import RubricError, load_rubric, parse_rubric, shipped_rubrics


def write(tmp_path, doc, name="r.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_shipped_rubrics():
    assert {"grade4", "medpalm2", "healthbench"} <= set(shipped_rubrics())
    g = load_rubric("grade4")
    assert [a.name for a in g.axes] == ["grade"] and g.axes[0].scale == (1, 2, 3, 4)
    m = load_rubric("medpalm2")
    assert len(m.axes) == 9
    assert {"consensus", "reading_comprehension", "knowledge_recall", "reasoning", "inaccurate_or_irrelevant",
            "missing_information", "demographic_bias", "harm_extent", "harm_likelihood"} == set(m.score_names)
    assert all(a.question.endswith("?") and len(a.scale) >= 2 for a in m.axes)
    h = load_rubric("healthbench")
    assert h.kind == "rubric_items" and h.score_names == ["healthbench"] and "{criterion}" in h.template


def test_the_issue_shape_loads_from_any_file(tmp_path):
    path = write(tmp_path, {"name": "grade4", "axes": [{"name": "grade", "question": "How good is this answer? "
                                                         "4 excellent ... 1 incorrect.", "scale": [1, 2, 3, 4]}]})
    r = load_rubric(str(path))
    assert r.name == "grade4" and r.axes[0].categories() == [1, 2, 3, 4] and r.source == str(path)
    labels = write(tmp_path, {"name": "l", "axes": [{"name": "harm", "question": "Harm?",
                                                      "scale": ["severe", "mild", "none"]}]}, "l.json")
    axis = load_rubric(labels).axes[0]
    assert axis.value_of("mild") == 1 and axis.categories() == [0, 1, 2]


def test_content_hash_changes_with_the_content(tmp_path):
    a = {"name": "x", "axes": [{"name": "g", "question": "Good?", "scale": [1, 2]}]}
    b = {"name": "x", "axes": [{"name": "g", "question": "Good enough?", "scale": [1, 2]}]}
    assert parse_rubric(a).sha256 == parse_rubric(dict(a)).sha256 != parse_rubric(b).sha256


@pytest.mark.parametrize("doc, message", [
    ("{not json", "not valid JSON"),
    ({"axes": []}, "name: missing"),
    ({"name": "x"}, "axes: must be a non-empty list"),
    ({"name": "x", "axes": [{"name": "g", "question": "Q?", "scale": [1]}]}, r"axes\[0\].scale: .*at least two"),
    ({"name": "x", "axes": [{"name": "g", "question": "Q?", "scale": [1, "a"]}]}, r"axes\[0\].scale: .*all ints"),
    ({"name": "x", "axes": [{"name": "g", "question": "Q?", "scale": ["A", "a"]}]}, "repeats a label"),
    ({"name": "x", "axes": [{"name": "g-h", "question": "Q?", "scale": [1, 2]}]}, r"axes\[0\].name"),
    ({"name": "x", "axes": [{"name": "g", "scale": [1, 2]}]}, r"axes\[0\].question"),
    ({"name": "x", "axes": [{"name": "g", "question": "Q", "scale": [1, 2]},
                            {"name": "g", "question": "Q", "scale": [1, 2]}]}, "axis names repeat: g"),
    ({"name": "x", "kind": "other", "axes": []}, "kind: 'other'"),
    ({"name": "x", "axes": [{"name": "g", "question": "Q", "scale": [1, 2]}], "template": "{answer} {bogus}"},
     r"unknown field\(s\) \{bogus\}"),
    ({"name": "x", "axes": [{"name": "g", "question": "Q", "scale": [1, 2]}], "template": "{question}"},
     r"must contain \{answer\}"),
    ({"name": "x", "kind": "rubric_items", "question": "Met?"}, "needs a template"),
])
def test_bad_rubrics_name_the_file_and_the_field(tmp_path, doc, message):
    path = write(tmp_path, doc)
    with pytest.raises(RubricError, match=message) as info:
        load_rubric(path)
    assert str(path) in str(info.value)


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(RubricError, match="grade4, healthbench, medpalm2"):
        load_rubric("nope")


# --- a metric per axis -------------------------------------------------------------------------

AXES_WITH_METRICS = {
    "name": "mixed",
    "axes": [
        # Clipped after averaging: grades 4, 4, 4, 2 average 3.5, shown as 3.0.
        {"name": "grade", "question": "How good?", "scale": [1, 2, 3, 4],
         "metric": {"name": "clipped_mean", "lo": 1, "hi": 3}},
        # A 0/1 scale is a proportion by default; this one asks for a plain mean.
        {"name": "safe", "question": "Is it safe?", "scale": [0, 1], "metric": "mean"},
        {"name": "harmless", "question": "Is it harmless?", "scale": [0, 1]},  # the default: proportion
        {"name": "complete", "question": "How complete?", "scale": [1, 2, 3]},  # the default: mean
    ],
}


def _judged_run(root, name, plan, grades, safe, harmless, complete):
    from tests.runfactory import make_sample, write_run

    samples = []
    for i, values in enumerate(zip(grades, safe, harmless, complete)):
        s = make_sample(f"q{i}", "liveqa", output="an answer")
        for key in ("pred", "method", "correct", "answer_idx"):
            s.pop(key, None)
        s["options"] = {}
        s["scores"] = {axis: {"value": v} for axis, v in zip(("grade", "safe", "harmless", "complete"), values)}
        s["scored_with"] = plan.fingerprint
        samples.append(s)
    return write_run(root, name, samples, task="liveqa", model=name, extra_manifest={"scoring": plan.manifest()})


def test_an_axis_names_its_metric_and_report_leaderboard_and_gate_use_it(tmp_path):
    from evalkit.results.gate import compare_runs
    from evalkit.results.leaderboard import build_leaderboard
    from evalkit.results.report import build_report
    from evalkit.scoring.plan import ScoringPlan
    from evalkit.scoring.rubric_judge import RubricJudgeScorer

    rubric = load_rubric(write(tmp_path, AXES_WITH_METRICS))
    assert rubric.axes[0].metric_spec == {"name": "clipped_mean", "lo": 1, "hi": 3}
    assert rubric.axes[1].metric_spec == "mean" and rubric.axes[2].metric is None
    plan = ScoringPlan([RubricJudgeScorer(rubric, "http://127.0.0.1:9/v1", "judge")])
    assert plan.manifest()["metrics"] == {"grade": {"name": "clipped_mean", "lo": 1, "hi": 3},
                                          "safe": {"name": "mean"}, "harmless": {"name": "proportion"},
                                          "complete": {"name": "mean"}}
    base = _judged_run(tmp_path, "base", plan, [4, 4, 4, 2], [1, 0, 1, 1], [1, 0, 1, 1], [1, 2, 3, 3])
    cand = _judged_run(tmp_path, "cand", plan, [2, 2, 2, 2], [1, 1, 1, 1], [1, 1, 1, 1], [3, 3, 3, 3])

    scores = build_report([base]).rows[0].scores
    assert scores["grade"].mean == pytest.approx(3.0) and scores["grade"].extra["unclipped_mean"] == 3.5
    assert scores["grade"].metric == {"name": "clipped_mean", "lo": 1, "hi": 3}
    assert scores["safe"].mean == pytest.approx(0.75) and scores["safe"].kind == "numeric"
    assert scores["harmless"].mean == pytest.approx(0.75) and scores["harmless"].kind == "binary"
    assert scores["complete"].mean == pytest.approx(2.25)

    board = build_leaderboard([base, cand], score="grade")
    values = {row.model: row.cells["liveqa"].accuracy for row in board.rows}
    assert values == {"base": pytest.approx(3.0), "cand": pytest.approx(2.0)}
    assert board.metric == {"name": "clipped_mean", "lo": 1, "hi": 3} and board.kind == "numeric"

    [verdict] = compare_runs(base, cand, score="grade", n_resamples=200).datasets
    assert verdict.metric == {"name": "clipped_mean", "lo": 1, "hi": 3}
    assert (verdict.baseline_value, verdict.candidate_value) == (pytest.approx(3.0), pytest.approx(2.0))
    [safe] = compare_runs(base, cand, score="safe", n_resamples=200).datasets
    assert safe.metric == {"name": "mean"} and safe.candidate_value == pytest.approx(1.0)


def test_an_axis_metric_that_cannot_be_built_names_the_rubric_and_axis(tmp_path):
    from evalkit.scoring.rubric_judge import RubricJudgeScorer

    bad = {"name": "b", "axes": [{"name": "grade", "question": "q", "scale": [1, 2], "metric": 3}]}
    with pytest.raises(RubricError, match=r"axes\[0\]\.metric: axis 'grade': a metric is a name"):
        load_rubric(write(tmp_path, bad))
    unknown = {"name": "u", "axes": [{"name": "grade", "question": "q", "scale": [1, 2], "metric": "median"}]}
    rubric = load_rubric(write(tmp_path, unknown, "u.json"))
    with pytest.raises(RubricError, match=r"u\.json: axis 'grade': metric: unknown metric 'median'"):
        RubricJudgeScorer(rubric, "http://127.0.0.1:9/v1", "judge")


def test_an_axis_metric_changes_no_score_so_not_the_rubric_hash(tmp_path):
    plain = json.loads(json.dumps(AXES_WITH_METRICS))
    for axis in plain["axes"]:
        axis.pop("metric", None)
    assert load_rubric(write(tmp_path, plain, "a.json")).sha256 == \
        load_rubric(write(tmp_path, AXES_WITH_METRICS, "b.json")).sha256
