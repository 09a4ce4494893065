"""The scoring stage (issue 12): named scores, scorers from outside evalkit, rescoring without requests,
resumable model-judge passes, statistics per score, and runs written by earlier versions."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.core.records import GenerationParams, Item, References, SampleRecord, Score, target_to_json
from evalkit.results.report import build_report
from evalkit.run.runner import RunConfig, run_eval
from evalkit.run.plan import resolve_config, validate_config
from evalkit.run.rundir import load_run, sample_scores, to_dataframe
from evalkit.scoring import ScorerError, get_scorer
from evalkit.scoring.stage import ScoringPlan, score_samples
from evalkit.core.store import read_json, read_samples
from tests.conftest import ROOT, write_items

LEGACY = ROOT / "tests" / "data" / "legacy_v1"


def _config(tmp_path, url, files, **kw):
    kw.setdefault("concurrency", 8)
    return RunConfig(eval_files=[str(f) for f in files], endpoint=url, results_dir=str(tmp_path / "results"),
                     params=GenerationParams(max_new_tokens=16), **kw)


# --- the library pieces ----------------------------------------------------------------------

def test_score_record_round_trips_and_drops_empty_fields():
    s = Score(0.5, answer="3", meta={"method": "x"})
    assert s.to_dict() == {"value": 0.5, "answer": "3", "meta": {"method": "x"}}
    assert Score.from_dict(s.to_dict()) == s
    assert Score(None, error="no reply").to_dict() == {"value": None, "error": "no reply"}


def test_items_without_options_carry_a_target():
    item = Item(id="1", dataset="liveqa", question="What is gout?", target=References(("...",)))
    assert not item.is_choice and item.options == {} and item.answer_idx is None
    rec = SampleRecord(id="1", dataset="liveqa", question="q", options={}, answer_idx=None, prompt="p",
                       output="answer", finish_reason="stop", target=target_to_json(item.target))
    line = rec.to_dict()
    assert "pred" not in line and "correct" not in line and line["target"] == ["..."]
    assert SampleRecord.from_dict(line).item().target == item.target


def test_scorers_by_name_and_from_module_attr():
    choice = get_scorer("choice", extractor="medreason")
    assert choice.spec() == {"extractor": "medreason"}
    toy = get_scorer("tests.toy_scorers:ToyScorer", weight=2.0)
    assert toy.spec()["weight"] == 2.0
    inst = get_scorer("tests.toy_scorers:TOY_INSTANCE")
    assert inst.weight == 0.5
    with pytest.raises(ScorerError, match="unknown scorer 'nope'"):
        get_scorer("nope")
    with pytest.raises(ScorerError, match="cannot import"):
        get_scorer("no_such_module_xyz:Thing")
    with pytest.raises(ScorerError, match="not a scorer"):
        get_scorer("tests.conftest:ROOT")


def test_a_scorer_that_needs_options_fails_before_any_request(tmp_path):
    rows = [{"id": "1", "question": "What is gout?"}]
    f = tmp_path / "lf.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _config(tmp_path, "http://127.0.0.1:9/v1", [f], scorers=["choice"], adapter="tests.test_scoring:question_only")
    with pytest.raises(ScorerError, match="needs 'options'"):
        run_eval(cfg)


def question_only(record, *, dataset, key=None, allow=frozenset()):
    """An adapter from outside evalkit: a long-form record with a question only."""
    return Item(id=str(record["id"]), dataset=dataset, question=record["question"])


def test_runconfig_defaults_live_in_the_library():
    cfg = resolve_config(RunConfig(eval_files=["x"], endpoint="http://h/v1", strategy="ensemble-refinement"))
    validate_config(cfg)  # greedy ER would be refused; the library picks the sampled default
    assert (cfg.samples, cfg.params.temperature, cfg.prompt, cfg.concurrency) == (11, 0.7, "er_sample", 512)
    one = resolve_config(RunConfig(eval_files=["x"], endpoint="http://h/v1", backend="llamacpp"))
    assert (one.samples, one.params.temperature, one.prompt, one.concurrency) == (1, 0.0, "strict", 4)


# --- through the runner ----------------------------------------------------------------------

def test_changing_only_the_scorer_requests_nothing(tmp_path, loopback, items_file):
    srv = loopback()
    first = run_eval(_config(tmp_path, srv.url, [items_file]))
    asked = srv.stats()["requests"]
    assert asked == 12
    again = run_eval(_config(tmp_path, srv.url, [items_file], scorers=["choice", "tests.toy_scorers:ToyScorer"],
                             extractor="medreason"))
    assert again.run_dir == first.run_dir and srv.stats()["requests"] == asked  # nothing requested again
    samples = read_samples(again.run_dir)
    assert len(samples) == 12
    manifest = read_json(again.run_dir / "manifest.json")
    assert manifest["rescored"] == 12
    assert [s["name"] for s in manifest["scoring"]["scorers"]] == ["choice", "toy"]
    for s in samples:
        assert set(s["scores"]) == {"correct", "letters_named"}
        assert s["scored_with"] == manifest["scoring"]["fingerprint"]
        assert s["scores"]["correct"]["meta"]["method"] is not None and s["pred"] in s["options"]
    summary = read_json(again.run_dir / "summary.json")["datasets"]["tiny"]
    assert summary["scores"]["letters_named"]["kind"] == "numeric" and summary["n"] == 12
    # The same scorers a third time: nothing to rescore.
    third = run_eval(_config(tmp_path, srv.url, [items_file], scorers=["choice", "tests.toy_scorers:ToyScorer"],
                             extractor="medreason"))
    assert read_json(third.run_dir / "manifest.json")["rescored"] == 0 and srv.stats()["requests"] == asked


def _evalkit(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def test_external_scorer_through_run_and_score_gives_a_report_row_with_a_mean_and_ci(tmp_path, loopback,
                                                                                     items_file):
    srv = loopback()
    res = _evalkit("run", "--eval-file", str(items_file), "--endpoint", srv.url, "--results-dir",
                   str(tmp_path / "r"), "--scorer", "choice", "--scorer", "tests.toy_scorers:ToyScorer",
                   "--scorer-arg", "tests.toy_scorers:ToyScorer.weight=0.5", "--max-new-tokens", "16", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "letters_named" in res.stdout  # the end-of-run table names the score
    run_dir = next((tmp_path / "r").rglob("samples.jsonl")).parent
    report = build_report([run_dir])
    cell = report.rows[0].scores["letters_named"]
    assert cell.kind == "numeric" and cell.n == 12
    assert cell.ci_low is not None and cell.ci_low <= cell.mean <= cell.ci_high
    values = [s["scores"]["letters_named"]["value"] for s in read_samples(run_dir)]
    assert cell.mean == pytest.approx(sum(values) / 12) and max(values) <= 0.5
    rep = _evalkit("report", str(run_dir), "--format", "json")
    assert rep.returncode == 0, rep.stderr
    row = json.loads(rep.stdout)["rows"][0]
    assert row["scores"]["letters_named"]["mean"] == pytest.approx(cell.mean)

    # evalkit score: the same scorer on saved generations, no server at all.
    out = tmp_path / "rescored.jsonl"
    res = _evalkit("score", str(run_dir), "--scorer", "tests.toy_scorers:ToyScorer", "-o", str(out))
    assert res.returncode == 0, res.stderr
    rescored = build_report([out]).rows[0].scores["letters_named"]
    assert rescored.n == 12 and rescored.mean == pytest.approx(2 * cell.mean)  # weight 1 instead of 0.5
    assert rescored.ci_low <= rescored.mean <= rescored.ci_high


def test_an_async_scoring_pass_killed_midway_asks_no_score_twice(tmp_path, monkeypatch):
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("TOY_CALLS_FILE", str(calls))
    monkeypatch.setenv("TOY_FAIL_AFTER", "4")
    plan = ScoringPlan([get_scorer("tests.toy_scorers:CountingAsyncScorer")])
    journal = tmp_path / "scores.jsonl"

    def pairs():
        out = []
        for i in range(10):
            rec = SampleRecord(id=str(i), dataset="d", question="q", options={}, answer_idx=None, prompt="p",
                               output="x" * i, finish_reason="stop")
            out.append((rec.item(), rec))
        return out

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(score_samples(pairs(), plan, journal=journal, concurrency=1))
    journaled = [json.loads(line)["id"] for line in journal.read_text().splitlines()]
    assert len(journaled) == 4
    calls.write_text("")
    monkeypatch.setenv("TOY_FAIL_AFTER", "0")
    done = asyncio.run(score_samples(pairs(), plan, journal=journal, concurrency=1))
    second = calls.read_text().split()
    assert not set(second) & set(journaled) and len(second) == 6  # each sample scored exactly once overall
    assert all(r.scores["length_ok"]["value"] == (len(r.output) > 5) for r in done)


def test_a_judge_like_scorer_in_run_is_a_pass_after_generation(tmp_path, loopback, items_file, monkeypatch):
    monkeypatch.setenv("TOY_CALLS_FILE", str(tmp_path / "calls.txt"))
    srv = loopback()
    result = run_eval(_config(tmp_path, srv.url, [items_file],
                              scorers=["choice", "tests.toy_scorers:CountingAsyncScorer"]))
    samples = read_samples(result.run_dir)
    assert all({"correct", "length_ok"} <= set(s["scores"]) for s in samples)
    assert not (result.run_dir / "scores.jsonl").exists()  # the journal goes once the pass is over
    assert len((tmp_path / "calls.txt").read_text().split()) == 12


def test_to_dataframe_has_a_column_per_score(tmp_path, loopback, items_file):
    srv = loopback()
    result = run_eval(_config(tmp_path, srv.url, [items_file], scorers=["choice", "tests.toy_scorers:ToyScorer"]))
    df = to_dataframe(result.run_dir)
    assert len(df) == 12 and {"score:correct", "score:letters_named", "output", "id"} <= set(df.columns)
    assert df["score:correct"].sum() == sum(s["correct"] for s in read_samples(result.run_dir))


# --- runs written by earlier versions --------------------------------------------------------

def _legacy_copy(tmp_path) -> Path:
    dst = tmp_path / "RESULTS"
    for name in ("single", "sc3", "single_t"):
        shutil.copytree(LEGACY / name, dst / name)
    return dst


def test_runs_of_the_previous_format_report_the_same_figures(tmp_path):
    root = _legacy_copy(tmp_path)
    expected = json.loads((LEGACY / "expected_report.json").read_text())
    report = build_report([root / "single", root / "sc3", root / "single_t"]).to_dict()
    keys = ("run", "dataset", "n", "correct", "accuracy", "ci_low", "ci_high", "unparsed", "truncated", "errors",
            "output_tokens_mean")
    for got, want in zip(report["rows"], expected["rows"], strict=True):
        assert {k: got[k] for k in keys} == pytest.approx({k: want[k] for k in keys})
    for s in read_samples(root / "single"):
        assert sample_scores(s) == {"correct": s["correct"]}


@pytest.mark.parametrize("candidate,expected_file", [("single_t", "expected_gate.json"),
                                                     ("sc3", "expected_gate_sc.json")])
def test_runs_of_the_previous_format_gate_the_same(tmp_path, candidate, expected_file):
    root = _legacy_copy(tmp_path)
    res = CliRunner().invoke(main, ["gate", "--baseline", str(root / "single"), "--candidate", str(root / candidate),
                                    "--json", str(tmp_path / "g.json")])
    want = json.loads((LEGACY / expected_file).read_text())
    got = json.loads((tmp_path / "g.json").read_text())
    assert res.exit_code == want["exit_code"]
    assert got["verdict"] == want["verdict"]
    for g, w in zip(got["datasets"], want["datasets"], strict=True):
        assert {k: g.get(k) for k in w} == w  # same seed, same resamples: the very same figures


def test_previous_format_rescores_to_the_same_verdicts(tmp_path):
    root = _legacy_copy(tmp_path)
    before = {s["id"]: (s["pred"], s["correct"]) for s in read_samples(root / "single")}
    res = CliRunner().invoke(main, ["score", str(root / "single"), "-o", str(tmp_path / "re.jsonl")])
    assert res.exit_code == 0, res.output
    after = {s["id"]: (s["pred"], s["correct"]) for s in read_samples(tmp_path / "re.jsonl")}
    assert after == before
    assert load_run(root / "sc3").info.strategy == "self-consistency"


def _numeric_run(root: Path, name: str, values: list[float]) -> Path:
    run = root / name
    run.mkdir(parents=True)
    lines = [{"id": f"q{i}", "dataset": "lf", "question": "q", "options": {}, "answer_idx": None, "prompt": "p",
              "output": "o", "finish_reason": "stop", "usage": {}, "latency_s": 0.1, "index": 0,
              "scores": {"grade": {"value": v}}} for i, v in enumerate(values)]
    (run / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


def test_gate_on_a_numeric_score_uses_a_paired_bootstrap(tmp_path):
    from evalkit.results.gate import compare_runs

    base = _numeric_run(tmp_path, "base", [4, 4, 3, 4, 3, 4, 4, 3, 4, 4] * 4)
    worse = _numeric_run(tmp_path, "worse", [2, 3, 2, 3, 2, 3, 3, 2, 3, 2] * 4)
    same = _numeric_run(tmp_path, "same", [4, 4, 3, 4, 3, 4, 4, 3, 4, 4] * 4)
    bad = compare_runs(base, worse, score="grade")
    v = bad.datasets[0]
    assert v.n == 40 and v.diff == pytest.approx(-1.2) and v.diff_high < 0 and v.p_value < 0.01
    assert bad.exit_code == 1 and v.status == "REGRESSION" and v.lost == 40
    ok = compare_runs(base, same, score="grade")
    assert ok.exit_code == 0 and ok.datasets[0].status == "no change"
    missing = compare_runs(base, same, score="nope")
    assert missing.exit_code == 2  # nothing scored with that name: cannot compare
    res = CliRunner().invoke(main, ["gate", "--baseline", str(base), "--candidate", str(worse), "--score", "grade"])
    assert res.exit_code == 1 and "grade" in res.output


def test_report_rows_give_a_bootstrap_mean_ci_for_a_scale_score(tmp_path):
    run = _numeric_run(tmp_path, "r", [1, 2, 3, 4] * 10)
    cell = build_report([run]).rows[0].scores["grade"]
    assert (cell.kind, cell.n, cell.mean) == ("numeric", 40, 2.5)
    assert 2.1 < cell.ci_low < 2.5 < cell.ci_high < 2.9


def test_the_library_api_runs_loads_and_analyses(tmp_path, loopback, items_file):
    from evalkit import api

    srv = loopback()
    result = api.evaluate(api.RunConfig(eval_files=[str(items_file)], endpoint=srv.url,
                                        results_dir=str(tmp_path / "results"), concurrency=4))
    df = api.samples_frame(result.run_dir)
    rows = api.report([result.run_dir]).rows
    assert len(df) == 12 and rows[0].n == 12 and rows[0].correct == int(df["score:correct"].sum())
    again = api.rescore(result.run_dir, scorers=["tests.toy_scorers:ToyScorer"])
    assert all("letters_named" in s["scores"] for s in again.samples)
    # one rescoring entry point: api.rescore is rescore.rescore, its samples written beside the run
    assert not hasattr(api, "rescore_run") and not hasattr(api, "rescore_to_file")
    from evalkit.run.rescore import rescore
    assert again.samples == rescore(result.run_dir, scorers=["tests.toy_scorers:ToyScorer"])
    assert again.output.parent == result.run_dir and again.output.is_file()
    assert api.gate(result.run_dir, result.run_dir).exit_code == 0


def test_leaderboard_ranks_by_a_numeric_named_score(tmp_path):
    from evalkit.results.leaderboard import build_leaderboard
    from evalkit.results.report_document import format_leaderboard

    root = tmp_path / "results" / "lf"
    hi = _numeric_run(root, "good", [4, 3, 4, 4] * 5)
    lo = _numeric_run(root, "poor", [2, 1, 2, 2] * 5)
    for run, model in ((hi, "strong"), (lo, "weak")):
        (run / "manifest.json").write_text(json.dumps({"model": model, "prompt": "medpalm_longform",
                                                       "status": "complete"}))
    lb = build_leaderboard(tmp_path / "results", score="grade")
    assert lb.kind == "numeric" and [r.model for r in lb.ranked_rows] == ["strong", "weak"]
    best = lb.ranked_rows[0]
    assert best.macro == pytest.approx(3.75) and best.macro_low <= 3.75 <= best.macro_high
    text = format_leaderboard(lb, "markdown")
    assert "mean grade" in text and "3.750" in text


def test_rescoring_in_place_keeps_lone_surrogates_and_untouched_lines_byte_for_byte(tmp_path):
    from evalkit.scoring.stage import score_run_dir

    run = tmp_path / "run"
    run.mkdir()
    lines = [json.dumps({"id": str(i), "dataset": "d", "question": "q", "options": {"A": "a", "B": "b"},
                         "answer_idx": "B", "output": "The answer is B. \ud800", "scored_with": "old"})
             for i in range(3)]
    raw = ("\n".join(lines) + "\n").encode()
    (run / "samples.jsonl").write_bytes(raw)
    plan = ScoringPlan([get_scorer("choice")])
    n = asyncio.run(score_run_dir(run, plan, counting=lambda lineno, s: lineno != 2))
    assert n == 2
    out = (run / "samples.jsonl").read_bytes().splitlines(keepends=True)
    assert out[1] == raw.splitlines(keepends=True)[1]  # a line not selected is not rewritten
    again = read_samples(run)
    assert again[0]["output"] == "The answer is B. \ud800" and again[0]["correct"] is True
    assert again[0]["scored_with"] == plan.fingerprint and again[1]["scored_with"] == "old"


def test_report_counts_a_judges_requests_once_per_sample_apart_from_the_answerer(tmp_path):
    run = tmp_path / "judged"
    run.mkdir()
    meta = {"judge_prompt": "Rate it.", "judge_reply": '{"a": 3, "b": 2}', "latency_s": 1.5, "attempts": 2,
            "judge_tokens": {"prompt_tokens": 100, "completion_tokens": 10}}
    lines = [{"id": str(i), "dataset": "lf", "question": "q", "output": "o", "usage": {"completion_tokens": 50},
              "latency_s": 2.0, "index": 0,
              "scores": {"a": {"value": 3, "meta": meta}, "b": {"value": 2, "meta": meta}}} for i in range(4)]
    (run / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    from evalkit.results.report_document import format_report

    report = build_report([run])
    j = report.throughput[0].judge
    assert (j.requests, j.attempts, j.prompt_tokens, j.completion_tokens) == (4, 8, 400, 40)
    assert j.seconds == pytest.approx(6.0) and report.throughput[0].output_tokens == 200
    assert "## Judge" in format_report(report, "markdown")
