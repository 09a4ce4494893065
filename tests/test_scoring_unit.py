"""The scoring unit of issue 21: one scoring plan whose record names what produced the scores and how
they aggregate, whichever flag chose the scorer; the multiple-choice verdict read from one place."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.leaderboard import build_leaderboard
from evalkit.results.report import build_report
from evalkit.run.rundir import choice_answer, choice_verdict, load_run
from evalkit.scoring.plan import plan_scoring
from evalkit.core.store import read_json


def _run(tmp_path, url, items_file, name, *flags):
    res = CliRunner().invoke(main, ["run", "--eval-file", str(items_file), "--endpoint", url, "--results-dir",
                                    str(tmp_path / "r"), "--task-folder", "t", "--run-name", name,
                                    "--max-new-tokens", "16", "--quiet", *flags])
    assert res.exit_code == 0, res.output
    return tmp_path / "r" / "t" / name


def test_scorer_arg_and_extractor_flag_give_the_same_labels(tmp_path, loopback, items_file):
    srv = loopback()
    by_arg = _run(tmp_path, srv.url, items_file, "by_arg", "--scorer", "choice",
                  "--scorer-arg", "choice.extractor=medreason")
    by_flag = _run(tmp_path, srv.url, items_file, "by_flag", "--extractor", "medreason")
    plain = _run(tmp_path, srv.url, items_file, "plain")
    manifests = [read_json(d / "manifest.json") for d in (by_arg, by_flag)]
    for m in manifests:
        assert m["extractor"] == "medreason" and m["scoring"]["extractor"] == "medreason"
        assert m["scoring"]["metrics"] == {"correct": {"name": "proportion"}}
    assert manifests[0]["scoring"] == manifests[1]["scoring"]
    assert read_json(plain / "manifest.json")["extractor"] == "evalkit"

    report = build_report([by_arg, by_flag, plain])
    assert [r.extractor for r in report.rows] == ["medreason", "medreason", "evalkit"]
    assert report.rows[0].scores["correct"].metric == {"name": "proportion"}
    lb = build_leaderboard(tmp_path / "r")
    assert sorted(r.extractor for r in lb.rows) == ["evalkit", "medreason"]  # by_arg and by_flag: one row

    # evalkit score names the extractor the choice scorer used, whichever flag chose it.
    out = CliRunner().invoke(main, ["score", str(plain), "--scorer", "choice",
                                    "--scorer-arg", "choice.extractor=medreason", "-o", str(tmp_path / "x.jsonl")])
    assert out.exit_code == 0, out.output
    assert "'medreason' extractor" in out.output and "'evalkit' extractor" not in out.output


def test_the_plan_records_each_scores_metric_and_extractor():
    plan = plan_scoring(["choice", "judge"], extractor="medreason",
                        scorer_options={"judge": {"rubric": "healthbench", "endpoint": "http://127.0.0.1:9/v1",
                                                  "model": "m"}})
    record = plan.manifest()
    assert record["extractor"] == "medreason"
    assert record["metrics"] == {"correct": {"name": "proportion"},
                                 "healthbench": {"name": "clipped_mean", "lo": 0.0, "hi": 1.0}}
    assert [s["name"] for s in record["scorers"]] == ["choice", "judge"]
    assert plan_scoring(["judge"], scorer_options={"judge": {"endpoint": "http://127.0.0.1:9/v1", "model": "m"}}
                        ).manifest()["extractor"] is None


def test_a_healthbench_run_reports_healthbenchs_overall_figure(tmp_path):
    run = tmp_path / "hb"
    run.mkdir()
    values = [-1.5, 0.5, -1.0]  # hand-computed per-conversation scores: mean -2/3
    lines = [{"id": f"p{i}", "dataset": "hb", "output": "o", "index": 0, "scores": {"healthbench": {"value": v}}}
             for i, v in enumerate(values)]
    (run / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    metrics = {"healthbench": {"name": "clipped_mean", "lo": 0.0, "hi": 1.0}}
    (run / "manifest.json").write_text(json.dumps({"scoring": {"fingerprint": "f", "scorers": [], "metrics": metrics}}))
    cell = build_report([run]).rows[0].scores["healthbench"]
    assert cell.mean == 0.0 and cell.kind == "numeric" and cell.extra["unclipped_mean"] == -2 / 3
    assert load_run(run).metric("healthbench").spec() == metrics["healthbench"]
    # The same lines without the record: the default metric, a plain mean.
    (run / "manifest.json").unlink()
    assert build_report([run]).rows[0].scores["healthbench"].mean == -2 / 3


def test_the_verdict_is_read_from_the_score_and_from_old_lines():
    new = {"scores": {"correct": {"value": True, "answer": "B", "meta": {"method": "answer_is"}}},
           "correct": False, "pred": "C"}  # the score is what counts; the compat fields are for old readers
    assert choice_verdict(new) is True and choice_answer(new) == ("B", "answer_is")
    old = {"correct": True, "pred": "A", "method": "last_letter"}
    assert choice_verdict(old) is True and choice_answer(old) == ("A", "last_letter")
    assert choice_verdict({"error": "timeout", "correct": False}) is None
    assert choice_verdict({"scores": {"grade": {"value": 3}}}) is None  # not multiple choice


def test_the_end_of_run_summary_gives_each_score_by_its_declared_metric():
    from evalkit.run.summary import summarize
    from evalkit.scoring.metrics import ClippedMean

    lines = [{"id": f"p{i}", "dataset": "hb", "scores": {"healthbench": {"value": v}, "ok": {"value": v > 0}}}
             for i, v in enumerate([-1.5, 0.5, -1.0])]
    hb = summarize(lines, {"healthbench": ClippedMean(0.0, 1.0)})["hb"].scores
    assert hb["healthbench"].mean == -2 / 3 and hb["healthbench"].value == 0.0
    assert hb["healthbench"].to_dict()["metric"] == {"name": "clipped_mean", "lo": 0.0, "hi": 1.0}
    assert hb["ok"].binary and hb["ok"].to_dict()["metric"] == {"name": "proportion"}  # default metric
    assert summarize(lines)["hb"].scores["healthbench"].value == -2 / 3  # no declared metric: the mean


def test_the_html_report_shows_each_score_by_its_metric():
    from evalkit.results.pages.report import render_html
    from evalkit.run.rundir import load_run
    from tests.conftest import ROOT

    run = load_run(ROOT / "tests" / "data" / "legacy_v2" / "healthbench")
    page = render_html(build_report([run]), [run])
    section = page.split('<section id="scores">', 1)[1].split("</section>", 1)[0]
    assert "clipped_mean [0, 1]" in section and "<td class=\"num\">0.000</td>" in section


def test_extractors_register_like_scorers_and_load_from_module_attr():
    from evalkit.scoring.extract import EXTRACTORS, get_extractor
    from evalkit.core.records import Item, SampleRecord

    assert set(EXTRACTORS) >= {"evalkit", "medreason"}
    plan = plan_scoring(["choice"], extractor="tests.toy_scorers:first_letter_extractor")
    assert plan.manifest()["extractor"] == "tests.toy_scorers:first_letter_extractor"
    item = Item(id="1", dataset="d", question="q", options={"A": "a", "B": "b"}, answer_idx="B")
    sample = SampleRecord(id="1", dataset="d", question="q", options=item.options, answer_idx="B", prompt="p",
                          output="xx B then A", finish_reason="stop")
    [scorer] = plan.scorers
    assert scorer.score(item, sample)["correct"].value is True
    with pytest.raises(ValueError, match="module:attr"):
        get_extractor("nope")


def test_the_manifest_names_a_metric_for_every_score_of_the_run(tmp_path, loopback, items_file):
    srv = loopback()
    run = _run(tmp_path, srv.url, items_file, "toy", "--scorer", "choice", "--scorer", "tests.toy_scorers:ToyScorer")
    metrics = read_json(run / "manifest.json")["scoring"]["metrics"]
    assert metrics == {"correct": {"name": "proportion"}, "letters_named": {"name": "mean"}}  # toy declares none


def test_the_gate_compares_healthbench_runs_by_the_clipped_figure(tmp_path):
    from evalkit.results.gate import compare_runs

    metrics = {"healthbench": {"name": "clipped_mean", "lo": 0.0, "hi": 1.0}}

    def run(name, values):
        d = tmp_path / name
        d.mkdir()
        lines = [{"id": f"p{i}", "dataset": "hb", "output": "o", "index": 0, "prompt": "p",
                  "scores": {"healthbench": {"value": v}}} for i, v in enumerate(values)]
        (d / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (d / "manifest.json").write_text(json.dumps({"scoring": {"scorers": [], "metrics": metrics}}))
        return d

    # Both plain means are below 0 (-0.5 and -0.9): HealthBench's figure is 0 for both, no change.
    base = run("base", [-1.0, 0.0, 0.5, -1.0] * 5)
    cand = run("cand", [-1.0, -1.0, 0.5, -2.1] * 5)
    [v] = compare_runs(base, cand, n_resamples=500, score="healthbench").datasets
    assert v.metric == metrics["healthbench"] and v.baseline_value == 0.0 and v.candidate_value == 0.0
    assert v.diff == 0.0 and v.diff_low == 0.0 and v.diff_high == 0.0 and not v.failed
    # A plain mean difference would have called it a significant drop of 0.4.
    assert v.lost > 0
