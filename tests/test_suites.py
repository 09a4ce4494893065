"""Suites: the medreason suite's data, its file checks, and the report layout (no server)."""

from __future__ import annotations

import json

import pytest

from evalkit.data.prompts import PromptTemplate, load_template
from evalkit.results.report import build_report, run_labels, load_runs
from evalkit.results.report import section_markdown
from evalkit.data.suites import SuiteError, check_prompt, load_suite, report_suite_tables, suite_section
from evalkit.data.registry import get_benchmark
from tests.conftest import SHARED
from tests.runfactory import verdict_samples, write_run


def test_medreason_suite_lists_the_tables_benchmarks_in_order():
    suite = load_suite("medreason")
    assert [b.name for b in suite.benchmarks] == ["medbullets_op4", "medbullets_op5", "medxpertqa", "medqa",
                                                  "medmcqa", "pubmedqa"]
    assert suite.prompt == "strict" and suite.generation["max_new_tokens"] == 2000
    assert next(b for b in suite.benchmarks if b.name == "pubmedqa").prompt_variant == "context"
    for b in suite.benchmarks:
        get_benchmark(b.name)  # every one is registered


def test_published_averages_are_the_means_of_their_rows():
    suite = load_suite("medreason")
    assert {p.model.split(" ")[0] for p in suite.published} >= {"MedReason-8B", "HuatuoGPT-o1-8B"}
    for p in suite.published:
        assert set(p.scores) == {b.name for b in suite.benchmarks}
        assert sum(p.scores.values()) / len(p.scores) == pytest.approx(p.average, abs=0.05)
    assert "UCSC-VLAA/MedReason" in suite.published_source


def test_unknown_suite_lists_the_known_ones():
    with pytest.raises(SuiteError, match="known: .*medreason"):
        load_suite("no-such-suite")


@pytest.mark.parametrize("bad", [["igakuqa"], 3, ""])
def test_a_table_score_that_is_not_a_score_name_is_refused_naming_the_file(tmp_path, bad):
    """A list or number as table_score used to load and fail only when a report hashed it."""
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"name": "s", "benchmarks": [{"name": "medqa"}], "table_score": bad}))
    with pytest.raises(SuiteError, match=r"s\.json: malformed suite .*'table_score' must be a score name"):
        load_suite(str(path))
    path.write_text(json.dumps({"name": "s", "benchmarks": [{"name": "medqa"}], "table_score": "correct"}))
    assert load_suite(str(path)).table_score == "correct"


def test_missing_files_are_named_with_the_fetch_command(tmp_path):
    with pytest.raises(SuiteError) as err:
        load_suite("medreason").files(tmp_path)
    msg = str(err.value)
    assert "medqa_test.jsonl" in msg and "evalkit data fetch medbullets_op4" in msg and "pubmedqa_pqal" in msg


@pytest.mark.skipif(not (SHARED / "eval_data" / "medqa_test.jsonl").exists(), reason="../shared/eval_data absent")
def test_files_resolve_under_the_shared_data_dir():
    files = load_suite("medreason").files(SHARED / "eval_data")
    assert [f.name for f in files][:4] == ["medbullets_op4.jsonl", "medbullets_op5.jsonl", "MedXpertQA_test.jsonl",
                                           "medqa_test.jsonl"]
    assert all(f.exists() for f in files)


def test_a_prompt_that_cannot_show_the_abstract_is_refused():
    suite = load_suite("medreason")
    check_prompt(suite, load_template("strict"))  # strict has a _context variant
    bare = PromptTemplate.from_text("Q: {question}\n{options}", name="bare")
    with pytest.raises(SuiteError, match="pubmedqa needs a prompt that shows the abstract"):
        check_prompt(suite, bare)


def suite_run(tmp_path, name="mr", verdicts_per_bench=None):
    suite = load_suite("medreason")
    samples = []
    for b in suite.benchmarks:
        samples += verdict_samples(b.name, verdicts_per_bench.get(b.name, [True, False]))
    return write_run(tmp_path, name, samples, extra_manifest={"suite": suite.to_manifest()})


def test_report_layout_has_one_column_per_benchmark_and_the_average(tmp_path):
    verdicts = {"medbullets_op4": [True, True], "medbullets_op5": [True, False], "medxpertqa": [False, False],
                "medqa": [True, True, True, False], "medmcqa": [True], "pubmedqa": [False, True, True, True]}
    run = suite_run(tmp_path, verdicts_per_bench=verdicts)
    runs = load_runs([run])
    report = build_report(runs)
    (table,) = report_suite_tables(runs, run_labels(runs), report.rows)
    assert table.columns == ["MedBullets (op4)", "MedBullets (op5)", "MedXpert", "MedQA", "MedMCQA", "PubMedQA"]
    (name, values, avg), = table.rows
    assert values == pytest.approx([100.0, 50.0, 0.0, 75.0, 100.0, 75.0])
    assert avg == pytest.approx(400 / 6)  # unweighted, as the published table averages
    assert [p[0] for p in table.published][0] == "MedReason-8B"
    assert table.published[0][1] == pytest.approx([57.5, 55.5, 19.0, 71.8, 60.7, 79.4])
    md = "\n".join(section_markdown(suite_section(table)))
    assert "| MedBullets (op4) |" in md and "| 66.7 |" in md and "published: MedReason-8B" in md
    doc = json.loads(json.dumps(table.to_dict()))
    assert doc["runs"][0]["scores"]["MedQA"] == pytest.approx(75.0)


def test_a_run_missing_a_benchmark_has_no_average(tmp_path):
    samples = verdict_samples("medqa", [True])
    run = write_run(tmp_path, "partial", samples, extra_manifest={"suite": load_suite("medreason").to_manifest()})
    runs = load_runs([run])
    (table,) = report_suite_tables(runs, run_labels(runs), build_report(runs).rows)
    values, avg = table.rows[0][1], table.rows[0][2]
    assert values[3] == 100.0 and values.count(None) == 5 and avg is None


def test_runs_without_a_suite_get_no_suite_table(tmp_path):
    run = write_run(tmp_path, "plain", verdict_samples("medqa", [True]))
    runs = load_runs([run])
    assert report_suite_tables(runs, run_labels(runs), build_report(runs).rows) == []


def _cli(*args: str):
    import subprocess
    import sys

    from tests.conftest import ROOT

    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_names_the_missing_files_and_how_to_fetch_them(tmp_path):
    out = _cli("run", "--suite", "medreason", "--data-dir", str(tmp_path), "--endpoint", "http://127.0.0.1:9/v1")
    assert out.returncode == 2
    assert "evalkit data fetch medbullets_op4" in out.stderr and str(tmp_path) in out.stderr


def test_cli_needs_files_or_a_suite():
    out = _cli("run", "--endpoint", "http://127.0.0.1:9/v1")
    assert out.returncode == 2 and "--eval-file FILE (repeatable) or --suite NAME" in out.stderr
    out = _cli("run", "--suite", "nope", "--endpoint", "http://127.0.0.1:9/v1")
    assert out.returncode == 2 and "unknown suite 'nope'" in out.stderr
