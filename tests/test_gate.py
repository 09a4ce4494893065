"""The regression gate on constructed runs: exit codes, statistics, JSON and JUnit output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.gate import compare_runs, flips_table, gate_json, junit_xml
from evalkit.core.stats import mcnemar_exact
from tests.runfactory import make_sample, write_run


def paired_samples(dataset, *, both_right, lost, gained, both_wrong, **kw):
    """Baseline and candidate samples on the same items with the given 2x2 counts.

    Item order: both right, lost (1->0), gained (0->1), both wrong.
    """
    base_v = [True] * both_right + [True] * lost + [False] * gained + [False] * both_wrong
    cand_v = [True] * both_right + [False] * lost + [True] * gained + [False] * both_wrong
    ids = [f"{dataset}-{i:03d}" for i in range(len(base_v))]
    base = [make_sample(i, dataset, correct=v, **kw) for i, v in zip(ids, base_v)]
    cand = [make_sample(i, dataset, correct=v, **kw) for i, v in zip(ids, cand_v)]
    return base, cand


def write_pair(tmp_path, per_dataset, *, base_kw=None, cand_kw=None):
    base, cand = [], []
    for dataset, counts in per_dataset.items():
        b, c = paired_samples(dataset, **counts)
        base += b
        cand += c
    b_dir = write_run(tmp_path / "results", "baseline", base, **(base_kw or {}))
    c_dir = write_run(tmp_path / "results", "candidate", cand, **(cand_kw or {}))
    return b_dir, c_dir


def gate_cli(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, ["gate", *map(str, args)], catch_exceptions=False)


def test_clear_regression_fails_with_exit_1(tmp_path):
    b, c = write_pair(tmp_path, {"medqa": dict(both_right=150, lost=30, gained=2, both_wrong=18)})
    result = compare_runs(b, c, n_resamples=2000)
    (v,) = result.datasets
    assert (v.n, v.baseline_correct, v.candidate_correct, v.lost, v.gained) == (200, 180, 152, 30, 2)
    assert v.diff == pytest.approx(-28 / 200)
    assert v.p_value == mcnemar_exact(30, 2) < 1e-6
    assert v.diff_high < 0  # the whole interval is a drop
    assert v.failed and v.status == "REGRESSION"
    assert result.exit_code == 1 and result.verdict == "FAIL"
    assert [f.id for f in v.lost_items] == [f"medqa-{i:03d}" for i in range(150, 180)]

    run = gate_cli("--baseline", b, "--candidate", c, "--resamples", 500)
    assert run.exit_code == 1
    assert "REGRESSION" in run.output and "medqa-150" in run.output and "FAIL" in run.output


def test_non_significant_wobble_passes(tmp_path):
    # Drop of 1.5 points (> max-drop 1.0) on 6 lost vs 3 gained: p = 2*(1+9+36+84)/512 = 260/512.
    b, c = write_pair(tmp_path, {"medqa": dict(both_right=150, lost=6, gained=3, both_wrong=41)})
    result = compare_runs(b, c, n_resamples=2000)
    (v,) = result.datasets
    assert v.p_value == pytest.approx(float(Fraction(260, 512)))
    assert -100 * v.diff == pytest.approx(1.5)
    assert (v.status, v.failed, result.exit_code) == ("not significant", False, 0)
    assert v.diff_low < 0 < v.diff_high
    assert gate_cli("--baseline", b, "--candidate", c, "--resamples", 500).exit_code == 0


def test_improvement_passes(tmp_path):
    b, c = write_pair(tmp_path, {"medqa": dict(both_right=100, lost=2, gained=25, both_wrong=73)})
    result = compare_runs(b, c, n_resamples=2000)
    (v,) = result.datasets
    assert (v.status, result.exit_code) == ("improvement", 0)
    assert v.diff_low > 0


def test_significant_but_small_drop_passes_and_max_drop_threshold_applies(tmp_path):
    # 2000 items, 60 lost vs 20 gained: a 2-point drop that is clearly significant.
    b, c = write_pair(tmp_path, {"medqa": dict(both_right=1500, lost=60, gained=20, both_wrong=420)})
    assert compare_runs(b, c, n_resamples=500).exit_code == 1
    relaxed = compare_runs(b, c, max_drop=2.5, n_resamples=500)
    assert (relaxed.datasets[0].status, relaxed.exit_code) == ("small drop", 0)
    assert gate_cli("--baseline", b, "--candidate", c, "--max-drop", 2.5, "--resamples", 200).exit_code == 0


def test_holm_correction_over_datasets(tmp_path):
    # Alone, 12 lost vs 3 gained has p = 1152/32768 = 0.035 < 0.05 and would fail.
    alone_b, alone_c = write_pair(tmp_path / "one", {"medqa": dict(both_right=70, lost=12, gained=3, both_wrong=15)})
    assert compare_runs(alone_b, alone_c, n_resamples=500).exit_code == 1
    # With a second dataset (p = 2*3214/131072 = 0.049) Holm gives max(2*0.035, 0.049) = 0.070.
    b, c = write_pair(tmp_path / "two", {
        "medqa": dict(both_right=70, lost=12, gained=3, both_wrong=15),
        "pubmedqa": dict(both_right=70, lost=13, gained=4, both_wrong=13),
    })
    result = compare_runs(b, c, n_resamples=500)
    med, pub = result.datasets
    assert med.p_value == pytest.approx(1152 / 32768)
    assert pub.p_value == pytest.approx(2 * 3214 / 131072)
    assert med.p_holm == pytest.approx(2 * 1152 / 32768)
    assert pub.p_holm == pytest.approx(2 * 1152 / 32768)  # monotone step-down
    assert result.exit_code == 0 and {v.status for v in result.datasets} == {"not significant"}


def test_mismatched_items_exit_2_unless_allowed(tmp_path):
    base, cand = paired_samples("medqa", both_right=150, lost=30, gained=2, both_wrong=18)
    cand = cand[:-10] + [make_sample(f"other-{i}", "medqa") for i in range(5)]
    b = write_run(tmp_path, "baseline", base)
    c = write_run(tmp_path, "candidate", cand)
    result = compare_runs(b, c, n_resamples=500)
    assert result.exit_code == 2 and result.verdict == "NOT COMPARABLE"
    (reason,) = result.mismatches
    assert "190 shared" in reason and "10 only in the baseline" in reason and "5 only in the candidate" in reason
    run = gate_cli("--baseline", b, "--candidate", c)
    assert run.exit_code == 2 and "different items" in run.output

    allowed = compare_runs(b, c, allow_mismatch=True, n_resamples=500)
    assert allowed.datasets[0].n == 190
    assert allowed.exit_code == 1  # the regression is still there on the shared items
    assert gate_cli("--baseline", b, "--candidate", c, "--allow-mismatch", "--resamples", 200).exit_code == 1


def test_dataset_missing_from_candidate_is_a_mismatch(tmp_path):
    b, _ = write_pair(tmp_path / "x", {"medqa": dict(both_right=5, lost=0, gained=0, both_wrong=5),
                                       "pubmedqa": dict(both_right=5, lost=0, gained=0, both_wrong=5)})
    _, c = write_pair(tmp_path / "y", {"medqa": dict(both_right=5, lost=0, gained=0, both_wrong=5)})
    result = compare_runs(b, c, n_resamples=100)
    assert result.mismatches == ["pubmedqa: only in the baseline"]
    assert result.exit_code == 2
    assert compare_runs(b, c, n_resamples=100, allow_mismatch=True).exit_code == 0
    # Nothing in common: no override makes that comparable.
    _, other = write_pair(tmp_path / "z", {"mmlu": dict(both_right=5, lost=0, gained=0, both_wrong=5)})
    assert compare_runs(b, other, n_resamples=100, allow_mismatch=True).exit_code == 2


@pytest.mark.parametrize("field, value", [("prompt", "direct"), ("extractor", "regex-v2")])
def test_different_prompt_or_extractor_exit_2(tmp_path, field, value):
    b, c = write_pair(tmp_path, {"medqa": dict(both_right=50, lost=0, gained=0, both_wrong=50)},
                      cand_kw={field: value})
    result = compare_runs(b, c, n_resamples=100)
    assert result.exit_code == 2
    assert any(f"{field}s differ" in m for m in result.mismatches)


def test_different_prompt_text_without_manifests_exit_2(tmp_path):
    base, _ = paired_samples("medqa", both_right=5, lost=0, gained=0, both_wrong=5)
    _, cand = paired_samples("medqa", both_right=5, lost=0, gained=0, both_wrong=5, prompt="Another prompt")
    b = write_run(tmp_path, "b", base, manifest=False)
    c = write_run(tmp_path, "c", cand, manifest=False)
    result = compare_runs(b / "samples.jsonl", c / "samples.jsonl", n_resamples=100)
    assert result.exit_code == 2
    assert "prompt sent differs on 10 of 10" in result.mismatches[0]


def test_failed_requests_are_left_out_and_all_failed_cannot_compare(tmp_path):
    base, cand = paired_samples("medqa", both_right=40, lost=0, gained=0, both_wrong=10)
    cand[0] = make_sample(cand[0]["id"], "medqa", error="HTTP 503")
    b, c = write_run(tmp_path, "b", base), write_run(tmp_path, "c", cand)
    result = compare_runs(b, c, n_resamples=100)
    assert result.datasets[0].n == 49 and result.datasets[0].excluded_errors == 1
    assert result.exit_code == 0 and "1 items left out" in result.warnings[0]

    dead = [make_sample(s["id"], "medqa", error="connection refused") for s in base]
    d = write_run(tmp_path, "dead", dead)
    assert compare_runs(b, d, n_resamples=100).exit_code == 2


def test_json_and_junit_outputs(tmp_path):
    b, c = write_pair(tmp_path, {
        "medqa": dict(both_right=150, lost=30, gained=2, both_wrong=18),
        "pubmedqa": dict(both_right=50, lost=1, gained=1, both_wrong=8),
    })
    json_path, junit_path = tmp_path / "gate.json", tmp_path / "gate.xml"
    run = gate_cli("--baseline", b, "--candidate", c, "--json", json_path, "--junit", junit_path,
                   "--resamples", 300)
    assert run.exit_code == 1
    data = json.loads(json_path.read_text())
    assert data["verdict"] == "FAIL" and data["exit_code"] == 1 and data["failed_datasets"] == ["medqa"]
    med = data["datasets"][0]
    assert med["diff_points"] == pytest.approx(-14.0) and len(med["lost_items"]) == 30
    assert med["lost_items"][0] == {"dataset": "medqa", "id": "medqa-150", "gold": "A", "baseline_pred": "A",
                                    "candidate_pred": "B", "candidate_method": "answer_is"}

    root = ET.fromstring(junit_path.read_text())
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    cases = {tc.get("name"): tc for tc in suite.iter("testcase")}
    assert set(cases) == {"comparable", "medqa", "pubmedqa"}
    failure = cases["medqa"].find("failure")
    assert failure is not None and "-14.0 pts" in failure.get("message")
    assert "medqa-150: gold A, baseline A, candidate B" in failure.text
    assert cases["pubmedqa"].find("failure") is None

    # The JSON on stdout is the same document.
    run = gate_cli("--baseline", b, "--candidate", c, "--json", "-", "--resamples", 300)
    assert json.loads(run.output[run.output.index("{"):])["verdict"] == "FAIL"


def test_junit_for_mismatch_is_an_error(tmp_path):
    b, c = write_pair(tmp_path, {"medqa": dict(both_right=5, lost=0, gained=0, both_wrong=5)},
                      cand_kw={"extractor": "other"})
    root = ET.fromstring(junit_xml(compare_runs(b, c, n_resamples=100)))
    suite = root.find("testsuite")
    assert suite.get("errors") == "1"
    err = [tc for tc in suite.iter("testcase") if tc.get("name") == "comparable"][0].find("error")
    assert "extractors differ" in err.text


def test_flips_table_limits_rows(tmp_path):
    b, c = write_pair(tmp_path, {"medqa": dict(both_right=10, lost=5, gained=0, both_wrong=0)})
    result = compare_runs(b, c, n_resamples=100)
    from rich.console import Console

    console = Console(width=150, record=True, color_system=None)
    console.print(flips_table(result, limit=2))
    text = console.export_text()
    assert "medqa-010" in text and "medqa-011" in text and "medqa-012" not in text
    assert "and 3 more" in text
    assert json.loads(gate_json(result))["datasets"][0]["lost"] == 5
