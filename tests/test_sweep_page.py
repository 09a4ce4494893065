"""`evalkit sweep report --format html`: the trend page built from the sweep report's own figures,
driven in a real headless Chromium (skips as tests/test_compare.py's browser tests do, unless
EVALKIT_REQUIRE_CHROMIUM=1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from tests.test_compare import _check_stats_equal_gate, _open, _shown_stats, browser_page, needs_browser  # noqa: F401
from tests.test_sweep import _written_sweep

VERDICTS = {300: [i % 2 == 0 for i in range(40)], 100: [i % 8 != 0 for i in range(40)], 200: [True] * 39 + [False]}


def _report(sweep_dir, *args: str):
    return CliRunner().invoke(main, ["sweep", "report", str(sweep_dir), *args])


def test_html_needs_two_scored_checkpoints_and_output_goes_with_html(tmp_path):
    state = _written_sweep(tmp_path, {100: [True, False]})
    res = _report(state.settings.sweep_dir, "--format", "html", "-o", str(tmp_path / "t.html"))
    assert res.exit_code == 2 and "only one run" in res.stderr
    res = _report(state.settings.sweep_dir, "--format", "json", "-o", str(tmp_path / "t.html"))
    assert res.exit_code == 2 and "--format html" in res.stderr


def test_trend_points_are_the_reports_figures(tmp_path):
    from evalkit.sweep.report import sweep_trend, trend_points

    state = _written_sweep(tmp_path, VERDICTS)
    trend = sweep_trend(state)
    points, notes = trend_points(trend)
    assert notes == []
    doc = json.loads(_report(state.settings.sweep_dir, "--format", "json").stdout)
    want = {(r["step"], d, c["mean"], c["ci_low"], c["ci_high"], r["run_dir"])
            for r in doc["rows"] for d, c in r["scores"].items()}
    assert {(p.step, p.benchmark, p.score, p.low, p.high, str(p.run)) for p in points} == want
    assert len(want) == 6


@needs_browser
def test_browser_sweep_page_points_and_two_clicks(tmp_path, browser_page):  # noqa: F811
    state = _written_sweep(tmp_path, VERDICTS)
    doc = json.loads(_report(state.settings.sweep_dir, "--format", "json").stdout)
    page_file = tmp_path / "out" / "trend.html"
    res = _report(state.settings.sweep_dir, "--format", "html", "-o", str(page_file))
    assert res.exit_code == 0, res.stderr
    page = browser_page
    _open(page, page_file)

    shown = page.eval_on_selector_all(
        "svg.trend circle[data-run]",
        "cs => cs.map(c => [Number(c.dataset.step), c.dataset.benchmark, Number(c.dataset.score),"
        " Number(c.dataset.low), Number(c.dataset.high), Number(c.dataset.run)])")
    want = {(r["step"], d, c["mean"], c["ci_low"], c["ci_high"]) for r in doc["rows"] for d, c in r["scores"].items()}
    assert {tuple(s[:5]) for s in shown} == want and len(shown) == 6
    run_of_step = {s[0]: s[5] for s in shown}
    dir_of_step = {r["step"]: r["run_dir"] for r in doc["rows"]}

    page.click(f"svg.trend circle[data-run='{run_of_step[300]}'] >> nth=-1")  # the topmost of the step's points
    page.click(f"svg.trend circle[data-run='{run_of_step[100]}'] >> nth=-1")
    assert page.input_value("#pair-a") == str(run_of_step[100])
    assert page.input_value("#pair-b") == str(run_of_step[300])
    assert "steps 100 and 300" in page.text_content("#trend-note")
    # The comparison shown is the gate of those two runs (the baseline: the earlier step).
    out = tmp_path / "gate.json"
    res = CliRunner().invoke(main, ["gate", "--baseline", dir_of_step[100], "--candidate", dir_of_step[300],
                                    "--json", str(out)])
    assert res.exit_code in (0, 1), res.output
    gate = json.loads(out.read_text(encoding="utf-8"))
    _check_stats_equal_gate(_shown_stats(page), gate)
    broken = gate["datasets"][0]["lost"]
    assert broken > 0
    assert page.errors == []


def test_a_checkpoint_without_step_is_left_off_the_plot_with_a_note(tmp_path):
    from evalkit.sweep.state import Checkpoint
    from evalkit.sweep.report import sweep_trend, trend_points
    from tests.runfactory import verdict_samples, write_run

    state = _written_sweep(tmp_path, {100: [True, False], 200: [True, True]})
    state.add([Checkpoint.at(tmp_path / "train" / "final")])
    job = next(j for j in state.jobs() if j.checkpoint.step is None)
    write_run(Path(job.settings.results_dir), job.run_name, verdict_samples("medqa", [True]), task=job.task_folder,
              extra_manifest={"status": "complete", "checkpoint": job.identity()})
    state.save()
    points, notes = trend_points(sweep_trend(state))
    assert sorted({p.step for p in points}) == [100, 200]
    assert len(notes) == 1 and "final" in notes[0] and "no training step" in notes[0]
    res = _report(state.settings.sweep_dir, "--format", "html", "-o", str(tmp_path / "t.html"))
    assert res.exit_code == 0 and "no training step" in res.stderr


@needs_browser
def test_browser_a_gate_on_a_partial_run_is_provisional(tmp_path, browser_page):  # noqa: F811
    """Issue 29 item 8: the page does not show a plain `gate: PASS` for a run still going."""
    from tests.test_sweep import _partial_sweep

    state = _partial_sweep(tmp_path)
    page_file = tmp_path / "trend.html"
    res = _report(state.settings.sweep_dir, "--format", "html", "-o", str(page_file))
    assert res.exit_code == 0, res.stderr
    page = browser_page
    _open(page, page_file)
    assert "step 300 (running)" in page.text_content("#trend-partial")
    run_of_step = dict(page.eval_on_selector_all(
        "svg.trend circle[data-run]", "cs => cs.map(c => [Number(c.dataset.step), Number(c.dataset.run)])"))
    assert page.eval_on_selector_all("svg.trend circle[data-partial]", "cs => cs.length") == 2

    def pick(a: int, b: int) -> str:
        page.click(f"svg.trend circle[data-run='{run_of_step[a]}'] >> nth=-1")
        page.click(f"svg.trend circle[data-run='{run_of_step[b]}'] >> nth=-1")
        return page.text_content("#pair-verdict")

    verdict = pick(100, 300)
    assert verdict.startswith("gate: ") and "PROVISIONAL: step 300 (running) not complete" in verdict
    assert "PROVISIONAL" not in pick(100, 200)
    assert "PROVISIONAL" in pick(200, 300)
    assert page.errors == []
