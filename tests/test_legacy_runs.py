"""Run directories written by main at 3620882 (tests/data/legacy_v2, made by its generate.py with that
code) load, report, rescore and gate with the figures that code gave, apart from the two fixes of
issue 21, asserted here: a choice scorer given ``--scorer-arg choice.extractor=medreason`` is labelled
``medreason``, and a HealthBench run reports HealthBench's overall figure (the clipped mean)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.leaderboard import build_leaderboard, leaderboard_json
from evalkit.results.report import build_report
from evalkit.run.rundir import load_run, sample_scores
from evalkit.core.store import read_samples
from tests.conftest import ROOT

V2 = ROOT / "tests" / "data" / "legacy_v2"
RUNS = ["mcq_evalkit", "mcq_scorer_arg", "mcq_extractor", "mcq_t07", "healthbench"]
ROW_KEYS = ("dataset", "n", "correct", "accuracy", "ci_low", "ci_high", "unparsed", "truncated", "errors",
            "output_tokens_mean")
CELL_KEYS = ("n", "mean", "ci_low", "ci_high", "errors")


@pytest.fixture
def v2(tmp_path) -> Path:
    root = tmp_path / "LEGACY_V2"
    for name in RUNS:
        shutil.copytree(V2 / name, root / name)
    return root


def _expected(name: str) -> dict:
    return json.loads((V2 / name).read_text())


def test_runs_of_main_3620882_load_with_their_fields(v2):
    for name in RUNS:
        run = load_run(v2 / name)
        assert run.samples and run.manifest is not None
        for s in run.samples:  # the sample lines keep their fields
            assert {"id", "dataset", "output", "scores", "scored_with"} <= set(s)
            assert set(sample_scores(s)) == set(s["scores"])
    assert load_run(v2 / "mcq_evalkit").samples[0].keys() >= {"pred", "method", "correct"}
    # The typed manifest names what produced the scores and how they aggregate, for runs that predate both.
    info = load_run(v2 / "mcq_scorer_arg").info
    assert info.extractor == "medreason" and info.metrics == {"correct": {"name": "proportion"}}
    assert load_run(v2 / "healthbench").info.metrics == {"healthbench": {"name": "clipped_mean", "lo": 0.0,
                                                                        "hi": 1.0}}


def test_they_report_the_same_figures(v2):
    report = build_report([v2 / n for n in RUNS]).to_dict()
    want = _expected("expected_report.json")
    for got, exp in zip(report["rows"], want["rows"], strict=True):
        assert {k: got[k] for k in ROW_KEYS} == pytest.approx({k: exp[k] for k in ROW_KEYS})
        for name, cell in exp["scores"].items():
            if name == "healthbench":
                continue  # the one figure issue 21 changes, checked below
            assert {k: got["scores"][name][k] for k in CELL_KEYS} == pytest.approx({k: cell[k] for k in CELL_KEYS})
    labels = {r["run"]: r["extractor"] for r in report["rows"]}
    assert labels == {"mcq_evalkit": "evalkit", "mcq_scorer_arg": "medreason", "mcq_extractor": "medreason",
                      "mcq_t07": "evalkit", "healthbench": "evalkit"}
    hb = report["rows"][-1]["scores"]["healthbench"]
    # (-1.5 + 0.5 - 1.0) / 3 = -2/3 per HealthBench's rule, clipped to [0, 1] after averaging: 0.
    assert want["rows"][-1]["scores"]["healthbench"]["mean"] == pytest.approx(-2 / 3)
    assert hb["mean"] == 0.0 and hb["metric"] == {"name": "clipped_mean", "lo": 0.0, "hi": 1.0}


def test_they_rescore_to_the_same_verdicts_and_scores(v2, tmp_path):
    out = tmp_path / "re.jsonl"
    res = CliRunner().invoke(main, ["score", str(v2 / "mcq_evalkit"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    want = {s["id"]: s for s in read_samples(V2 / "rescored.jsonl")}
    for s in read_samples(out):
        w = want[s["id"]]
        assert (s["pred"], s["method"], s["correct"]) == (w["pred"], w["method"], w["correct"])
        assert s["scores"] == w["scores"] and s["scored_with"] == w["scored_with"]


@pytest.mark.parametrize("score,expected", [(None, "expected_gate.json"), ("letters_named",
                                                                            "expected_gate_numeric.json")])
def test_they_gate_the_same(v2, tmp_path, score, expected):
    args = ["gate", "--baseline", str(v2 / "mcq_evalkit"), "--candidate", str(v2 / "mcq_t07"),
            "--json", str(tmp_path / "g.json")] + (["--score", score] if score else [])
    res = CliRunner().invoke(main, args)
    want = _expected(expected)
    got = json.loads((tmp_path / "g.json").read_text())
    assert res.exit_code == want["exit_code"], res.output
    assert got["verdict"] == want["verdict"]
    for g, w in zip(got["datasets"], want["datasets"], strict=True):
        assert {k: g.get(k) for k in w} == w  # same seed, same resamples: the very same figures


def test_the_leaderboard_gives_the_same_cells_and_the_true_extractor(v2):
    lb = json.loads(leaderboard_json(build_leaderboard(v2)))
    want = _expected("expected_leaderboard.json")
    got_cells = {c["run"]: c for r in lb["rows"] for c in r["cells"].values()}
    keys = ("n", "correct", "accuracy", "ci_low", "ci_high", "errors")
    want_cells = {c["run"]: c for r in want["rows"] for c in r["cells"].values()}
    same_config = {"mcq_scorer_arg", "mcq_extractor"}  # one configuration now (below): either may hold the row
    # The HealthBench run has no multiple-choice verdict: its cell was empty; it now shows its primary
    # score, the rubric judge's clipped mean (issue 29: each benchmark's primary score).
    assert got_cells["healthbench"]["score"] == "healthbench" and got_cells["healthbench"]["n"] == 3
    for run, cell in want_cells.items():
        if run in same_config or run == "healthbench":
            continue
        assert {k: got_cells[run][k] for k in keys} == pytest.approx({k: cell[k] for k in keys})
    [shown] = same_config & set(got_cells)
    assert {k: got_cells[shown][k] for k in keys} == pytest.approx({k: want_cells["mcq_extractor"][k] for k in keys})
    # Main labelled the --scorer-arg run "evalkit", a row apart from the --extractor run; both used
    # MedReason's extractor, so they are now one configuration, labelled medreason.
    [row] = [r for r in want["rows"] if "mcq_scorer_arg" in {c["run"] for c in r["cells"].values()}]
    assert row["extractor"] == "evalkit"
    [medreason] = [r for r in lb["rows"] if r["extractor"] == "medreason"]
    assert medreason["cells"]["v2_items"]["run"] in ("mcq_scorer_arg", "mcq_extractor")
    assert any("mcq_scorer_arg" in note and "mcq_extractor" in note for note in lb["notes"])
    assert "mcq_scorer_arg" not in {c["run"] for r in lb["rows"] if r["extractor"] == "evalkit"
                                    for c in r["cells"].values()}
