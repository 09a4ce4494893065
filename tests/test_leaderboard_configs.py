"""The leaderboard compares like with like: one row per configuration, ranks only over shared coverage."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.comparable import checkpoint_hash, choose_ranked, configuration_of, run_status, scoring_version
from evalkit.results.leaderboard import build_leaderboard
from evalkit.results.report_document import format_leaderboard
from tests.runfactory import verdict_samples, write_run

DATASETS = ("medqa", "pubmedqa", "medbullets")


def _manifest(max_new_tokens=256, *, status="complete", temperature=0.0, **extra):
    """What `evalkit run` writes about a run's settings."""
    return {"generation": {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": 1.0,
                           "seed": None},
            "strategy": "single", "samples": 1, "evalkit_version": "0.1.0", "prompt_sha256": "p" * 64,
            "status": status, **extra}


def _runs(root, model, verdicts_per_dataset, *, task=None, name=None, **manifest):
    for dataset, verdicts in verdicts_per_dataset.items():
        write_run(root, f"{name or model}-{dataset}", verdict_samples(dataset, verdicts), task=task or model,
                  model=model, prompt="strict", extra_manifest=_manifest(**manifest))


@pytest.fixture
def board(tmp_path):
    """Five configurations: two that differ only in max new tokens, a lower one, one that covers
    only one dataset, and a partial (interrupted) run."""
    root = tmp_path / "results"
    _runs(root, "smol", {d: [True] * 7 + [False] * 3 for d in DATASETS}, name="smol-256", max_new_tokens=256)
    _runs(root, "smol", {d: [True] * 4 + [False] * 6 for d in DATASETS}, name="smol-96", max_new_tokens=96)
    _runs(root, "base", {d: [True] * 5 + [False] * 5 for d in DATASETS})
    _runs(root, "narrow", {"medqa": [True] * 10})  # 100% on one dataset of three
    _runs(root, "killed", {"medqa": [True] * 3, "pubmedqa": [True] * 2}, status="interrupted")
    return root


def _row(lb, model, **settings):
    rows = [r for r in lb.rows if r.model == model
            and all(getattr(r.config, k) == v for k, v in settings.items())]
    assert len(rows) == 1, [r.config for r in lb.rows]
    return rows[0]


def test_runs_that_differ_only_in_max_new_tokens_are_two_rows_with_the_setting_shown(board):
    lb = build_leaderboard(board, n_resamples=300)
    long, short = _row(lb, "smol", max_new_tokens=256), _row(lb, "smol", max_new_tokens=96)
    assert long is not short
    assert long.macro == pytest.approx(0.7) and short.macro == pytest.approx(0.4)
    assert lb.varying == ["max_new_tokens"]  # the only setting that differs between rows
    md = format_leaderboard(lb, "markdown")
    line_256 = next(ln for ln in md.splitlines() if "max_new_tokens=256" in ln and "| smol |" in ln)
    line_96 = next(ln for ln in md.splitlines() if "max_new_tokens=96" in ln and "| smol |" in ln)
    assert "| 70.0 [" in line_256 and "| 40.0 [" in line_96


def test_ranks_rows_with_the_rows_that_cover_the_same_datasets(board):
    lb = build_leaderboard(board, n_resamples=300)
    assert lb.ranked_datasets == sorted(DATASETS)
    first = lb.groups[0]
    assert [(r.rank, r.model, r.config.max_new_tokens) for r in first.rows] == [
        (1, "smol", 256), (2, "base", 256), (3, "smol", 96)]
    narrow = _row(lb, "narrow")
    # 100% on one dataset must not rank first against rows measured on three: it heads a table of its own
    # (like with like, issue 29), below the one that covers more.
    assert narrow.group == 1 and lb.groups[1].datasets == ["medqa"] and lb.groups[1].items == {"medqa": 10}
    assert narrow.rank == 1 and not narrow.partial and not narrow.flags
    assert narrow.cells["medqa"].accuracy == 1.0
    assert lb.rows.index(narrow) > max(lb.rows.index(r) for r in first.rows)


def test_a_partial_run_is_marked_and_never_ranked(board):
    lb = build_leaderboard(board, n_resamples=300)
    killed = _row(lb, "killed")
    assert killed.partial and killed.rank is None and killed.macro is None
    assert killed.cells["medqa"].status == "interrupted" and killed.cells["medqa"].partial
    assert any(f.startswith("partial: ") and "interrupted" in f for f in killed.flags)
    assert lb.rows[-1] is killed  # partial rows come last
    md = format_leaderboard(lb, "markdown")
    line = next(ln for ln in md.splitlines() if "| killed |" in ln)
    assert line.startswith("| partial |") and "100.0!" in line


def test_summary_complete_false_marks_a_run_partial_without_a_status(tmp_path):
    run = write_run(tmp_path, "old", verdict_samples("medqa", [True] * 4), model="old")
    (run / "summary.json").write_text(json.dumps({"complete": False, "datasets": {}}))
    lb = build_leaderboard(tmp_path, n_resamples=200)
    assert lb.rows[0].partial and lb.rows[0].cells["medqa"].status == "incomplete" and lb.ranked_rows == []
    assert run_status(None, {"complete": True}) == "complete" and run_status({"status": "endpoint-down"}, None) \
        == "endpoint-down"


def test_a_row_that_covers_more_is_ranked_on_the_shared_datasets(tmp_path):
    root = tmp_path / "results"
    for model, verdicts in (("a", [True] * 6 + [False] * 4), ("b", [True] * 5 + [False] * 5),
                            ("c", [True] * 9 + [False] * 1)):
        _runs(root, model, {"medqa": verdicts, "pubmedqa": verdicts})
    _runs(root, "a", {"medbullets": [True] * 10}, name="a-extra")  # only "a" has a third dataset
    lb = build_leaderboard(root, n_resamples=200)
    assert lb.ranked_datasets == ["medqa", "pubmedqa"] and lb.datasets[-1] == "medbullets"
    a = _row(lb, "a")
    assert a.rank == 2 and a.macro == pytest.approx(0.6)  # not lifted by its extra 100%
    assert a.cells["medbullets"].in_macro is False and a.cells["medqa"].in_macro is True
    assert "medbullets (not in macro)" in format_leaderboard(lb, "markdown")


def test_different_items_on_a_ranked_dataset_keep_a_row_apart(tmp_path):
    root = tmp_path / "results"
    _runs(root, "a", {"medqa": [True] * 6 + [False] * 4})
    _runs(root, "b", {"medqa": [True] * 5 + [False] * 5})
    write_run(root, "c-medqa", verdict_samples("medqa", [True] * 10, prefix="other"), task="c", model="c",
              prompt="strict", extra_manifest=_manifest())
    lb = build_leaderboard(root, n_resamples=200)
    assert [r.model for r in lb.groups[0].rows] == ["a", "b"]
    c = _row(lb, "c")  # other items: ranked in a table of its own, never against a and b
    assert c.group == 1 and [r.model for r in lb.groups[1].rows] == ["c"]


def test_a_checkpoint_hash_in_the_server_record_separates_rows(tmp_path):
    root = tmp_path / "results"
    for name, sha in (("v1", "1" * 64), ("v2", "2" * 64)):
        server = {"source": "evalkit serve", "model_path": f"/ckpt/{name}.gguf",
                  "model_hash": {"kind": "file", "sha256": sha, "bytes": 1000}}
        write_run(root, name, verdict_samples("medqa", [True, False]), task="ft", model="my-finetune",
                  extra_manifest=_manifest(server=server))
    lb = build_leaderboard(root, n_resamples=200)
    assert sorted(r.config.checkpoint for r in lb.rows) == ["1" * 64, "2" * 64]
    assert "checkpoint" in lb.varying
    assert "checkpoint=111111111111" in format_leaderboard(lb, "markdown")
    folder = {"server": {"model_hash": {"kind": "hf-folder", "config_sha256": "c1", "weight_index_sha256": "w1"}}}
    assert checkpoint_hash(folder) == "config:c1+index:w1"
    assert checkpoint_hash({"server": {"model_hash": {"kind": "hub-id"}}}) is None and checkpoint_hash(None) is None


def test_the_scoring_version_separates_rows():
    a = configuration_of(model="m", prompt="p", prompt_sha256=None, extractor="evalkit",
                         manifest={"evalkit_version": "0.1.0"})
    b = configuration_of(model="m", prompt="p", prompt_sha256=None, extractor="evalkit",
                         manifest={"evalkit_version": "0.2.0"})
    assert a != b and a.scoring_version == "evalkit 0.1.0"
    judged = configuration_of(model="m", prompt="p", prompt_sha256=None, extractor="evalkit",
                              manifest={"scoring": {"fingerprint": "f2", "scorers": [{"name": "choice", "spec": {}},
                                                                                     {"name": "judge", "spec": {}}]}})
    assert judged.scorers == "choice+judge" and judged.scoring_version == "f2"
    assert scoring_version({"scoring": {"fingerprint": "abc", "scorers": []}}) == "abc"
    assert scoring_version({"scoring": {"fingerprint": "abc"}}, [{"scored_with": "new"}]) == "new"  # rescored
    assert scoring_version({"evalkit_version": "0.1.0"}, [{"scored_with": "f1"}, {"scored_with": "f1"}]) == "f1"


def test_choose_ranked_prefers_the_widest_comparison():
    full = {d: frozenset({"1", "2"}) for d in ("x", "y", "z")}
    coverages = {"a": full, "b": full, "c": full, "d": {"x": frozenset({"1", "2"})}}
    assert choose_ranked(coverages, list(coverages)) == (["x", "y", "z"], ["a", "b", "c"])
    # Three rows that share only x and y: ranked on those two, all three of them.
    three = {"a": {"x": full["x"], "y": full["y"], "z": full["z"]}, "b": {"x": full["x"], "y": full["y"]},
             "c": {"x": full["x"], "y": full["y"], "w": full["x"]}}
    assert choose_ranked(three, list(three)) == (["x", "y"], ["a", "b", "c"])
    assert choose_ranked({}, []) == ([], [])


def test_filters_by_task_folder_model_prompt_and_run_name(board):
    only = build_leaderboard(board, models=["smol"], n_resamples=200)
    assert {r.model for r in only.rows} == {"smol"} and only.filters == {"model": ["smol"]}
    assert {r.model for r in build_leaderboard(board, task_folders=["base", "narrow"], n_resamples=200).rows} \
        == {"base", "narrow"}
    short = build_leaderboard(board, run_names=["smol-96-*"], n_resamples=200)
    assert [r.config.max_new_tokens for r in short.rows] == [96]
    assert build_leaderboard(board, prompts=["cot"], n_resamples=200).rows == []
    assert len(build_leaderboard(board, prompts=["str*"], n_resamples=200).rows) == 5


def test_json_carries_what_a_script_needs(board):
    data = json.loads(format_leaderboard(build_leaderboard(board, n_resamples=200), "json"))
    assert data["ranked_datasets"] == sorted(DATASETS) and data["varying_settings"] == ["max_new_tokens"]
    first = data["rows"][0]
    assert first["rank"] == 1 and first["ranked"] and not first["partial"]
    assert first["settings"]["max_new_tokens"] == 256 and first["settings"]["temperature"] == 0.0
    assert first["settings"]["strategy"] == "single" and first["settings"]["scoring_version"] == "evalkit 0.1.0"
    cell = first["cells"]["medqa"]
    assert cell["in_macro"] and cell["status"] == "complete" and cell["run"] == "smol-256-medqa"
    assert cell["run_path"].endswith("smol-256-medqa") and cell["n"] == 10 and cell["correct"] == 7
    killed = next(r for r in data["rows"] if r["model"] == "killed")
    assert killed["rank"] is None and killed["partial"] and killed["cells"]["medqa"]["status"] == "interrupted"


def test_csv_rows_carry_rank_status_and_settings(board):
    rows = list(csv.DictReader(io.StringIO(format_leaderboard(build_leaderboard(board, n_resamples=200), "csv"))))
    macro = [r for r in rows if r["dataset"] == "macro"]
    assert [(r["rank"], r["status"], r["model"], r["max_new_tokens"], r["table"]) for r in macro] == [
        ("1", "ranked", "smol", "256", "1"), ("2", "ranked", "base", "256", "1"), ("3", "ranked", "smol", "96", "1"),
        ("1", "ranked", "narrow", "256", "2"), ("", "partial", "killed", "256", "3")]
    killed = [r for r in rows if r["model"] == "killed" and r["dataset"] == "medqa"][0]
    assert killed["run_status"] == "interrupted" and killed["in_macro"] == "0"


def test_leaderboard_cli_filters_and_reports_an_empty_selection(board):
    runner = CliRunner(env={"COLUMNS": "250"})
    res = runner.invoke(main, ["leaderboard", str(board), "--model", "smol", "--format", "json", "--resamples", "200"])
    assert res.exit_code == 0, res.output
    assert {r["model"] for r in json.loads(res.output)["rows"]} == {"smol"}
    res = runner.invoke(main, ["leaderboard", str(board), "--run-name", "nothing-*"])
    assert res.exit_code == 1 and "no run under" in res.output and "nothing-*" in res.output
    res = runner.invoke(main, ["leaderboard", str(board), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    assert "partial" in res.output and "max_new_tokens=96" in res.output and "covers less" not in res.output


def test_runs_from_evalkit_run_split_by_max_new_tokens_and_mark_a_failed_run_partial(tmp_path, loopback, items_file):
    """Through `evalkit run` itself: the manifest it writes is what the leaderboard reads."""
    srv = loopback()
    results = tmp_path / "results"
    runner = CliRunner()
    for tokens in ("96", "256"):
        res = runner.invoke(main, ["run", "--eval-file", str(items_file), "--endpoint", srv.url, "--quiet",
                                   "--max-new-tokens", tokens, "--results-dir", str(results)])
        assert res.exit_code == 0, res.output
    flaky = loopback("--fail-500", "0.5")
    res = runner.invoke(main, ["run", "--eval-file", str(items_file), "--endpoint", flaky.url, "--quiet",
                               "--max-attempts", "1", "--task-folder", "flaky", "--results-dir", str(results)])
    assert res.exit_code in (1, 3), res.output  # some samples failed (or the endpoint was given up on)
    lb = build_leaderboard(results, n_resamples=200)
    assert [(r.rank, r.config.max_new_tokens) for r in lb.ranked_rows] in ([(1, 96), (2, 256)], [(1, 256), (2, 96)])
    assert lb.varying == ["max_new_tokens"]
    [partial] = lb.apart_rows
    assert partial.partial and partial.cells["tiny"].status in ("incomplete", "endpoint-down")
    assert partial.config.max_new_tokens == 1024 and partial.config.temperature == 0.0


def test_leaderboard_html_lists_rows_apart(board):
    from evalkit.results.pages.report import render_leaderboard_html

    html = render_leaderboard_html(build_leaderboard(board, n_resamples=200))
    assert "ranks and macro averages over medbullets, medqa, pubmedqa" in html
    assert html.count('<tr class="flagged">') == 1 and "partial" in html and "max_new_tokens=96" in html
    assert html.count('<h3 class="lb-group">') == 3 and "3. Listed apart, unranked" in html


def test_a_complete_run_beats_a_later_partial_one_of_the_same_configuration(tmp_path):
    root = tmp_path / "results"
    write_run(root, "full", verdict_samples("medqa", [True] * 6 + [False] * 4), task="m", model="m",
              prompt="strict", finished_at="2025-01-01T00:00:00Z", extra_manifest=_manifest())
    write_run(root, "rerun", verdict_samples("medqa", [True] * 2), task="m", model="m", prompt="strict",
              finished_at="2025-06-01T00:00:00Z", extra_manifest=_manifest(status="interrupted"))
    lb = build_leaderboard(root, n_resamples=200)
    [row] = lb.rows
    assert row.cells["medqa"].run == "full" and row.rank == 1 and not row.partial
    assert lb.notes == ["m / medqa: run full supersedes rerun"]


def test_a_run_without_the_ranked_score_is_shown_empty_not_as_zero(tmp_path):
    root = tmp_path / "results"
    _runs(root, "mcq", {"medqa": [True] * 3 + [False]})
    judged = verdict_samples("medqa", [True] * 4)
    for s in judged:  # a judge-only run: named scores, no multiple-choice verdict
        s.pop("correct"), s.pop("pred"), s.pop("method")
        s["scores"] = {"judge": {"value": 4}}
    write_run(root, "judged-medqa", judged, task="judged", model="judged", prompt="strict",
              extra_manifest=_manifest())
    lb = build_leaderboard(root, n_resamples=200)
    assert [r.model for r in lb.ranked_rows] == ["mcq"]
    judged_row = _row(lb, "judged")
    assert judged_row.cells["medqa"].n == 0 and judged_row.rank is None
    line = next(ln for ln in format_leaderboard(lb, "markdown").splitlines() if "| judged |" in ln)
    assert line.rstrip().endswith("| - |") and "0.0" not in line
