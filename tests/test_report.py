"""evalkit.results.report: loading runs, per-dataset numbers, throughput and the text formats."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rich.console import Console

from evalkit.results.report import (
    build_report,
    item_samples,
    load_run,
    render_summary_table,
    report_tables,
)
from evalkit.core.stats import bootstrap_proportion_ci, wilson_interval
from evalkit.results.report_document import format_report
from tests.runfactory import make_sample, verdict_samples, write_run, write_samples


def _render(table) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    return console.export_text()


@pytest.fixture
def medqa_run(tmp_path):
    # 10 answered items: 7 right, 2 wrong, 1 unparsed; 1 truncated; plus 2 failed requests.
    verdicts = [True] * 7 + [False, False, None]
    samples = [
        make_sample(f"q{i}", "medqa", correct=v, latency_s=float(i + 1), completion_tokens=10 * (i + 1),
                    truncated=(i == 8), meta={"meta_info": "step1" if i < 6 else "step2&3"})
        for i, v in enumerate(verdicts)
    ]
    samples += [make_sample(f"e{i}", "medqa", error="HTTP 500") for i in range(2)]
    samples += verdict_samples("pubmedqa", [True, False, True, True], latency_s=2.0)
    return write_run(tmp_path / "results", "run-a", samples, task="medqa", model="MedReason-8B",
                     prompt="cot-v1", extractor="evalkit", wall_s=8.0)


def test_load_run_directory_reads_manifest(medqa_run):
    run = load_run(medqa_run)
    assert (run.name, run.model, run.prompt, run.extractor, run.wall_s) == (
        "run-a", "MedReason-8B", "cot-v1", "evalkit", 8.0)
    assert len(run.samples) == 16
    # The samples file itself is the same run.
    assert load_run(medqa_run / "samples.jsonl").model == "MedReason-8B"


def test_bare_samples_file_without_manifest_falls_back(tmp_path):
    path = write_samples(tmp_path / "scored" / "samples.jsonl", verdict_samples("medqa", [True, False]))
    run = load_run(path)
    assert (run.name, run.model, run.prompt, run.extractor, run.wall_s) == ("scored", "scored", None, "evalkit", None)
    # A re-scored file beside a run's manifest is not that run: its own name, no manifest.
    other = write_samples(tmp_path / "scored" / "rescored.jsonl", verdict_samples("medqa", [True]))
    (tmp_path / "scored" / "manifest.json").write_text(json.dumps({"model": "m", "extractor": "old"}))
    r2 = load_run(other)
    assert (r2.name, r2.model, r2.manifest) == ("rescored", "rescored", None)


def test_manifest_with_nested_prompt_record(tmp_path):
    d = write_run(tmp_path, "r", verdict_samples("medqa", [True]),
                  extra_manifest={"prompt": {"name": "direct", "sha256": "abc"}, "extractor": {"name": "regex2"}})
    run = load_run(d)
    assert (run.prompt, run.prompt_sha256, run.extractor) == ("direct", "abc", "regex2")


def test_bad_input_names_file_and_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(make_sample("a")) + "\n{not json\n" + json.dumps(make_sample("b")) + "\n")
    with pytest.raises(ValueError, match=r"samples.jsonl:2"):
        load_run(path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "x").mkdir()
    write_samples(tmp_path / "x" / "samples.jsonl", [{"id": "1"}])
    with pytest.raises(ValueError, match="sample 1 lacks 'dataset'"):
        load_run(tmp_path / "x")


def test_item_samples_prefers_index_zero_and_a_successful_retry():
    samples = [
        make_sample("q1", error="timeout"),          # failed, then retried on resume
        make_sample("q2", correct=False, index=1),   # a later generation listed first
        make_sample("q1", correct=True),
        make_sample("q2", correct=True, index=0),
        make_sample("q1", correct=False, index=2),
    ]
    items = item_samples(samples)
    assert list(items) == [("medqa", "q1"), ("medqa", "q2")]
    assert items[("medqa", "q1")]["correct"] is True and not items[("medqa", "q1")]["error"]
    assert items[("medqa", "q2")]["index"] == 0 and items[("medqa", "q2")]["correct"] is True


def test_report_counts_and_wilson_ci(medqa_run):
    report = build_report([medqa_run])
    medqa, pubmedqa = report.rows
    assert (medqa.dataset, medqa.n, medqa.correct, medqa.errors) == ("medqa", 10, 7, 2)
    assert medqa.accuracy == 0.7
    assert (medqa.ci_low, medqa.ci_high) == wilson_interval(7, 10)
    assert (medqa.unparsed, medqa.unparsed_rate) == (1, 0.1)
    assert (medqa.truncated, medqa.truncated_rate) == (1, 0.1)
    # latencies 1..10 s: median 5.5, 95th percentile (linear) 9.55
    assert medqa.latency_p50 == pytest.approx(5.5)
    assert medqa.latency_p95 == pytest.approx(9.55)
    assert medqa.output_tokens_mean == pytest.approx(55.0)
    assert (pubmedqa.n, pubmedqa.correct, pubmedqa.errors) == (4, 3, 0)
    assert report.ci_label == "95% CI (wilson)"


def test_report_bootstrap_ci_is_stated_and_seeded(medqa_run):
    report = build_report([medqa_run], ci="bootstrap", seed=5, n_resamples=2000)
    assert report.ci_label == "95% CI (bootstrap)"
    row = report.rows[0]
    assert (row.ci_low, row.ci_high) == bootstrap_proportion_ci(7, 10, n_resamples=2000, seed=5)
    with pytest.raises(ValueError, match="unknown CI method"):
        build_report([medqa_run], ci="jeffreys")


def test_report_breakdown_by_meta_field(medqa_run):
    report = build_report([medqa_run], by=["meta_info"])
    groups = {(r.dataset, r.group): r for r in report.rows}
    step1 = groups[("medqa", "meta_info=step1")]
    step23 = groups[("medqa", "meta_info=step2&3")]
    assert (step1.n, step1.correct) == (6, 6)
    assert (step23.n, step23.correct) == (4, 1)
    # Error samples carry no meta here: they form their own group of errors only.
    none = groups[("medqa", "meta_info=(none)")]
    assert (none.n, none.errors) == (0, 2)
    # pubmedqa has no meta_info at all: no breakdown rows for it.
    assert [r.group for r in report.rows if r.dataset == "pubmedqa"] == [None]


def test_throughput_with_and_without_manifest(medqa_run, tmp_path):
    t = build_report([medqa_run]).throughput[0]
    # 16 lines = 16 requests over 8 s; tokens 10+20+...+100 + 4*100 = 950 over 8 s
    assert (t.requests, t.errors, t.wall_s) == (16, 2, 8.0)
    assert t.requests_per_s == pytest.approx(2.0)
    assert t.output_tokens == 950 and t.output_tokens_per_s == pytest.approx(950 / 8)
    bare = write_samples(tmp_path / "bare" / "samples.jsonl",
                         [make_sample("a", correct=True, latency_s=3.0), make_sample("b", correct=False, latency_s=5.0),
                          make_sample("c", correct=True, latency_s=0.0)])  # 0 = not measured: left out
    report = build_report([bare])
    tb = report.throughput[0]
    assert (tb.wall_s, tb.requests_per_s, tb.output_tokens_per_s, tb.latency_p50) == (None, None, None, 4.0)
    md = format_report(report, "markdown")
    bare_line = [line for line in md.splitlines() if line.startswith("| bare |") and "evalkit" in line][0]
    assert "| - |" in bare_line


def test_same_run_names_are_told_apart(tmp_path):
    a = write_run(tmp_path, "run1", verdict_samples("medqa", [True]), task="medqa")
    b = write_run(tmp_path, "run1", verdict_samples("pubmedqa", [False]), task="pubmedqa")
    report = build_report([a, b])
    assert [r.run for r in report.rows] == ["medqa/run1", "pubmedqa/run1"]


def test_markdown_csv_json_round_trip(medqa_run):
    report = build_report([medqa_run], by=["meta_info"])
    md = format_report(report, "markdown")
    assert "## Accuracy with 95% CI (wilson)" in md and "CI (wilson))" not in md  # no nested brackets (issue 29)
    assert "| run-a | medqa | 10 | 70.0 | [39.7, 89.2] | 10.0 | 10.0 | 2 |" in md
    assert "meta_info=step2&3" in md
    assert "| run-a | MedReason-8B | cot-v1 | evalkit | 16 | 2 | 8.0 | 2.00 | 118.8 |" in md

    rows = list(csv.DictReader(io.StringIO(format_report(report, "csv"))))
    assert rows[0]["dataset"] == "medqa" and rows[0]["group"] == "" and rows[0]["n"] == "10"
    assert float(rows[0]["accuracy"]) == 0.7 and rows[0]["ci_method"] == "wilson"
    assert float(rows[0]["run_requests_per_s"]) == 2.0

    data = json.loads(format_report(report, "json"))
    assert data["ci_method"] == "wilson" and data["by"] == ["meta_info"]
    assert data["rows"][0]["ci_low"] == pytest.approx(wilson_interval(7, 10)[0])
    assert data["runs"][0]["requests_per_s"] == 2.0

    with pytest.raises(ValueError, match="unknown format"):
        format_report(report, "xlsx")


def test_rich_tables_render(medqa_run):
    acc, speed = report_tables(build_report([medqa_run]))
    text = _render(acc)
    assert "95% CI (wilson)" in text and "[39.7, 89.2]" in text and "pubmedqa" in text
    text = _render(speed)
    assert "MedReason-8B" in text and "cot-v1" in text and "118.8" in text


def test_render_summary_table_from_samples_and_run(medqa_run):
    from evalkit.core.store import read_samples

    for source in (read_samples(medqa_run), medqa_run):
        text = _render(render_summary_table(source, title="medqa run"))
        line = [ln for ln in text.splitlines() if "medqa " in ln and "10" in ln][0]
        assert line.split() == ["│", "medqa", "│", "10", "│", "70.0", "│", "[39.7,", "89.2]", "│",
                                "1", "│", "1", "│", "2", "│"]


def test_report_cli_formats_and_bad_input(medqa_run, tmp_path):
    from click.testing import CliRunner

    from evalkit.cli import main

    runner = CliRunner(env={"COLUMNS": "200"})
    res = runner.invoke(main, ["report", str(medqa_run), "--by", "meta_info"])
    assert res.exit_code == 0, res.output
    assert "meta_info=step1" in res.output and "[39.7, 89.2]" in res.output and "118.8" in res.output
    res = runner.invoke(main, ["report", str(medqa_run), "--format", "json", "--ci", "bootstrap"])
    assert json.loads(res.output)["ci_method"] == "bootstrap"
    out = tmp_path / "r.csv"
    res = runner.invoke(main, ["report", str(medqa_run), "--format", "csv", "-o", str(out)])
    assert res.exit_code == 0 and out.read_text().startswith("run,model,prompt,extractor,dataset")
    res = runner.invoke(main, ["report", str(medqa_run), "-o", str(out)])
    assert res.exit_code == 2 and "--output needs --format" in res.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{oops\n{}\n")
    res = runner.invoke(main, ["report", str(broken)])
    assert res.exit_code == 1 and "broken.jsonl:1: not valid JSON" in res.output
