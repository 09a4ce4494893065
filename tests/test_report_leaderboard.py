"""The leaderboard: rows per setup, one column per dataset, flags for incomparable cells."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.leaderboard import build_leaderboard, find_runs
from evalkit.results.report_document import format_leaderboard
from evalkit.core.stats import bootstrap_macro_ci, wilson_interval
from tests.runfactory import make_sample, verdict_samples, write_run, write_samples


def _write(root, model, task, verdicts, *, name=None, prefix=None, **kw):
    samples = verdict_samples(task, verdicts, prefix=prefix)
    return write_run(root, name or f"{model}-{task}", samples, task=task, model=model, **kw)


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    # One run per benchmark, as `evalkit run` lays them out.
    _write(root, "strong", "medqa", [True] * 8 + [False] * 2)
    _write(root, "strong", "pubmedqa", [True] * 9 + [False] * 1)
    _write(root, "weak", "medqa", [True] * 5 + [False] * 5)
    _write(root, "weak", "pubmedqa", [True] * 6 + [False] * 4)
    _write(root, "mid", "medqa", [True] * 7 + [False] * 3)
    _write(root, "mid", "pubmedqa", [True] * 7 + [False] * 3)
    return root


def test_rows_merge_runs_per_model_and_sort_by_macro(results):
    assert len(find_runs(results)) == 6
    lb = build_leaderboard(results, n_resamples=1000)
    assert lb.datasets == ["medqa", "pubmedqa"]
    assert [r.model for r in lb.rows] == ["strong", "mid", "weak"]
    strong = lb.rows[0]
    assert strong.macro == pytest.approx((0.8 + 0.9) / 2)
    assert (strong.macro_low, strong.macro_high) == bootstrap_macro_ci([(8, 10), (9, 10)], n_resamples=1000)
    cell = strong.cells["medqa"]
    assert (cell.n, cell.correct, cell.run) == (10, 8, "strong-medqa")
    assert (cell.ci_low, cell.ci_high) == wilson_interval(8, 10)
    assert all(r.comparable for r in lb.rows) and lb.notes == []


def test_different_item_sets_are_flagged_not_silently_averaged(results):
    # "best" scored only 4 medqa items (all right): its 100% must not top the board unflagged.
    _write(results, "best", "medqa", [True] * 4)
    _write(results, "best", "pubmedqa", [True] * 10)
    lb = build_leaderboard(results, n_resamples=500)
    best = [r for r in lb.rows if r.model == "best"][0]
    # like with like (issue 29): ranked in a table of its own, headed by the items it covers, below
    # the table of the rows scored on all 10
    assert best.group == 1 and lb.groups[1].items == {"medqa": 4, "pubmedqa": 10}
    assert [r.model for r in lb.groups[0].rows] == ["strong", "mid", "weak"]
    assert lb.rows[-1].model == "best"
    md = format_leaderboard(lb, "markdown")
    assert md.index("Ranked on medqa (10 items), pubmedqa (10 items)") < md.index(
        "Ranked on medqa (4 items), pubmedqa (10 items)")


def test_failed_items_make_a_different_answered_set(results):
    samples = verdict_samples("medqa", [True] * 9) + [make_sample("medqa-9", "medqa", error="timeout")]
    write_run(results, "flaky-medqa", samples, task="medqa", model="flaky")
    lb = build_leaderboard(results, n_resamples=200)
    flaky = [r for r in lb.rows if r.model == "flaky"][0]
    assert flaky.cells["medqa"].errors == 1 and flaky.cells["medqa"].n == 9
    assert flaky.group == 1 and lb.groups[1].items == {"medqa": 9}  # not ranked with the rows scored on 10


def test_latest_run_of_a_setup_wins_and_is_noted(results):
    _write(results, "weak", "medqa", [True] * 10, name="weak-medqa-rerun",
           finished_at="2025-02-01T00:00:00Z")
    lb = build_leaderboard(results, n_resamples=200)
    weak = [r for r in lb.rows if r.model == "weak"][0]
    assert weak.cells["medqa"].accuracy == 1.0 and weak.cells["medqa"].run == "weak-medqa-rerun"
    assert lb.notes == ["weak / medqa: run weak-medqa-rerun supersedes weak-medqa"]


def test_prompts_and_extractors_make_separate_rows(results):
    _write(results, "strong", "medqa", [True] * 6 + [False] * 4, name="strong-direct", prompt="direct")
    lb = build_leaderboard(results, n_resamples=200)
    setups = {(r.model, r.prompt, r.extractor) for r in lb.rows}
    assert ("strong", "direct", "evalkit") in setups and ("strong", "cot", "evalkit") in setups


def test_bare_samples_file_named_after_its_folder(tmp_path):
    write_samples(tmp_path / "rescored" / "samples.jsonl", verdict_samples("medqa", [True, False]))
    lb = build_leaderboard(tmp_path, n_resamples=200)
    assert [(r.model, r.prompt, r.extractor) for r in lb.rows] == [("rescored", None, "evalkit")]


def test_csv_and_json_formats(results):
    lb = build_leaderboard(results, n_resamples=200)
    rows = list(csv.DictReader(io.StringIO(format_leaderboard(lb, "csv"))))
    assert len(rows) == 3 * 3  # macro + 2 datasets per model
    assert rows[0]["model"] == "strong" and rows[0]["dataset"] == "macro"
    assert float(rows[0]["accuracy"]) == pytest.approx(0.85)
    assert rows[1]["dataset"] == "medqa" and rows[1]["n"] == "10"
    data = json.loads(format_leaderboard(lb, "json"))
    assert data["datasets"] == ["medqa", "pubmedqa"] and data["macro_ci_method"] == "bootstrap"
    assert data["rows"][0]["cells"]["pubmedqa"]["correct"] == 9


def test_leaderboard_cli(results, tmp_path):
    runner = CliRunner(env={"COLUMNS": "200"})
    res = runner.invoke(main, ["leaderboard", str(results), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "strong" in ln or "weak" in ln]
    assert "strong" in lines[0] and "85.0" in lines[0] and "weak" in lines[-1]
    out = tmp_path / "lb.md"
    res = runner.invoke(main, ["leaderboard", str(results), "--format", "markdown", "-o", str(out)])
    assert res.exit_code == 0 and out.read_text().startswith("## Leaderboard")
    (tmp_path / "empty").mkdir()
    res = runner.invoke(main, ["leaderboard", str(tmp_path / "empty")])
    assert res.exit_code == 1 and "no runs" in res.output


def test_multi_sample_runs_are_their_own_rows(tmp_path):
    from evalkit.results.report import load_run

    greedy = write_run(tmp_path, "greedy", verdict_samples("medqa", [True, False, True]), model="m", prompt="strict")
    sc = write_run(tmp_path, "sc", verdict_samples("medqa", [True, True, True]), model="m", prompt="strict",
                   extra_manifest={"strategy": "self-consistency", "samples": 5})
    assert load_run(greedy).prompt == "strict" and load_run(sc).prompt == "strict +SC5"
    lb = build_leaderboard(tmp_path)
    assert sorted(r.prompt for r in lb.rows) == ["strict", "strict +SC5"]
