"""Rubrics are data: the shipped files load, any file of the documented shape loads, bad ones say where."""

from __future__ import annotations

import json

import pytest

from evalkit.rubrics import RubricError, load_rubric, parse_rubric, shipped_rubrics


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
