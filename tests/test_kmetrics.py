"""pass@k, maj@k and avg@k against values computed by hand on a constructed run."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from evalkit.results.kmetrics import default_ks, k_sample_metrics, pass_at_k
from evalkit.results.report import build_report, report_json
from evalkit.scoring.choice import stage_summary
from evalkit.run.summary import is_correct
from tests.conftest import ROOT
from tests.runfactory import make_sample, write_run

# Four items, K = 4 generations each: (gold, letters of the 4 generations; None = unparsed).
ITEMS = [
    ("A", ["A", "B", "A", None]),   # c = 2; votes A2 B1 -> A (right)
    ("B", ["B", "C", "C", "D"]),    # c = 1; votes C2 B1 D1 -> C (wrong); first vote B (right)
    ("C", ["A", "B", "D", None]),   # c = 0
    ("D", ["D", "D", "D", "D"]),    # c = 4
]


def multi_sample(item_id: str, gold: str, preds: list[str | None], dataset: str = "medqa") -> dict:
    """A self-consistency record as the runner writes it, with its generations in one stage."""
    outputs = [{"k": k, "output": f"The answer is {p}." if p else "unsure", "pred": p,
                "method": "answer_is" if p else None, "finish_reason": "stop",
                "usage": {"completion_tokens": 10}, "latency_s": 0.1} for k, p in enumerate(preds)]
    stage = stage_summary("sample", "prompt", outputs)
    s = make_sample(item_id, dataset, gold=gold, correct=True)
    s.update(strategy="self-consistency", stages=[stage], votes=stage["votes"], pred=stage["pred"],
             correct=is_correct(stage["pred"], gold), method="majority_vote")
    return s


def constructed_samples() -> list[dict]:
    return [multi_sample(f"q{i}", gold, preds) for i, (gold, preds) in enumerate(ITEMS)]


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_is_one_minus_the_binomial_ratio(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected = 1 - math.comb(n - c, k) / math.comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_refuses_impossible_counts():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 2, 5)


def test_default_ks_are_1_and_K_plus_requested_ones_up_to_K():
    assert default_ks(4) == [1, 4]
    assert default_ks(4, [2, 9, 4]) == [1, 2, 4]
    assert default_ks(1) == [1]


def test_metrics_match_hand_computed_values():
    m = k_sample_metrics(constructed_samples(), ks=[2], n_resamples=2000)
    assert m["k_samples"] == 4 and m["k_items"] == 4
    # pass@1 = mean c/n = (2/4 + 1/4 + 0 + 4/4) / 4
    assert m["pass@1"] == pytest.approx(0.4375)
    # pass@2 = mean of 1 - C(n-c,2)/C(4,2): 1 - 1/6, 1 - 3/6, 0, 1
    assert m["pass@2"] == pytest.approx((5 / 6 + 0.5 + 0 + 1) / 4)
    # pass@4: any right generation among the 4
    assert m["pass@4"] == pytest.approx(0.75)
    # maj@1 = first generation right: A yes, B yes, A no, D yes
    assert m["maj@1"] == pytest.approx(0.75)
    # maj@2: [A,B] tie -> A right; [B,C] tie -> B right; [A,B] -> A wrong; D right
    assert m["maj@2"] == pytest.approx(0.75)
    # maj@4 is the run's own vote: A right, C wrong, A wrong, D right
    assert m["maj@4"] == pytest.approx(0.5)
    # avg@4 = mean accuracy of one generation; spread over positions 0.75, 0.25, 0.5, 0.25
    assert m["avg@4"] == pytest.approx(0.4375)
    assert m["avg@4_std"] == pytest.approx(math.sqrt(0.171875 / 3))
    for key in ("pass@1", "pass@2", "pass@4", "maj@1", "maj@2", "maj@4", "avg@4"):
        lo, hi = m[f"{key}_ci"]
        assert 0.0 <= lo <= m[key] <= hi <= 1.0, key
    assert m["pass@4_ci"][1] - m["pass@4_ci"][0] > 0.1  # four items: a wide interval


def test_single_sample_records_and_errors_are_left_out():
    samples = constructed_samples() + [make_sample("single", correct=True), make_sample("err", error="HTTP 500")]
    assert k_sample_metrics(samples)["k_items"] == 4
    assert k_sample_metrics([make_sample("single", correct=True)]) == {}


def test_ensemble_refinement_uses_the_deciding_stage():
    s = multi_sample("er", "A", ["B", "B", "B"])
    refine = stage_summary("refine", "p", [{"k": k, "output": "", "pred": "A", "finish_reason": "stop", "usage": {}}
                                            for k in range(2)])
    s["stages"].append(refine)
    m = k_sample_metrics([s])
    assert m["k_samples"] == 2 and m["pass@1"] == 1.0 and m["maj@2"] == 1.0


def test_report_json_rows_carry_the_metrics_with_their_cis(tmp_path):
    run = write_run(tmp_path, "sc4", constructed_samples(),
                    extra_manifest={"strategy": "self-consistency", "samples": 4})
    row = json.loads(report_json(build_report([run], ks=[2], n_resamples=1000)))["rows"][0]
    assert row["dataset"] == "medqa" and row["accuracy"] == pytest.approx(0.5)  # the majority vote, as before
    for key, value in (("pass@1", 0.4375), ("pass@2", (5 / 6 + 1.5) / 4), ("pass@4", 0.75), ("maj@4", 0.5),
                       ("avg@4", 0.4375)):
        assert row[key] == pytest.approx(value)
        assert isinstance(row[key], float)
        assert len(row[f"{key}_ci"]) == 2
    assert "avg@4_std" in row and row["k_samples"] == 4 and row["n"] == 4


def test_report_cli_prints_the_k_sample_table(tmp_path):
    run = write_run(tmp_path, "sc4", constructed_samples(),
                    extra_manifest={"strategy": "self-consistency", "samples": 4})
    out = subprocess.run([sys.executable, "-m", "evalkit", "report", str(run), "--k", "2"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "k-sample metrics" in out.stdout
    assert "pass@2 %" in out.stdout and "58.3" in out.stdout and "75.0" in out.stdout and "43.8" in out.stdout


def test_a_self_consistency_run_reports_its_k_sample_metrics(tmp_path, loopback, items_file):
    from evalkit.core.records import GenerationParams
    from evalkit.run.runner import RunConfig, run_eval

    srv = loopback()
    result = run_eval(RunConfig(eval_files=[str(items_file)], endpoint=srv.url, samples=4, concurrency=4,
                                params=GenerationParams(max_new_tokens=16, temperature=0.8, seed=3),
                                results_dir=str(tmp_path / "res")))
    row = build_report([result.run_dir], n_resamples=500).rows[0]
    e = row.extra
    assert e["k_samples"] == 4 and e["k_items"] == 12
    assert e["maj@4"] == pytest.approx(row.accuracy)  # maj@K is the run's own vote
    assert 0.0 <= e["pass@1"] <= e["pass@4"] <= 1.0
    assert e["avg@4"] == pytest.approx(e["pass@1"])  # both are the mean accuracy of one generation
