"""One library call makes the whole report (``api.report``): the Report, the notes and
warnings the CLI prints on stderr, and the document's own sections (a suite's table, the overlap
split), each a ``ReportTable`` laid out by the same code in every format (text, markdown, CSV, JSON,
HTML). Also: a suite table's default score, the CSV's section blocks, and the gate's files written
by the library."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from evalkit import api
from evalkit.core.records import ReportTable
from evalkit.data.suites import load_suite
from tests.html_sections import html_sections
from tests.runfactory import make_sample, verdict_samples, write_run
from tests.test_overlap_split import _overlap_file

MEDREASON_COLUMNS = ["MedBullets (op4)", "MedBullets (op5)", "MedXpert", "MedQA", "MedMCQA", "PubMedQA"]


def suite_run(tmp_path, name="mr"):
    verdicts = {"medbullets_op4": [True, True], "medbullets_op5": [True, False], "medxpertqa": [False, False],
                "medqa": [True, True, True, False], "medmcqa": [True], "pubmedqa": [False, True, True, True]}
    samples = [s for bench, v in verdicts.items() for s in verdict_samples(bench, v)]
    return write_run(tmp_path, name, samples, extra_manifest={"suite": load_suite("medreason").to_manifest()})


def rich_text(doc) -> str:
    console = Console(width=300, record=True, file=io.StringIO())
    for renderable in api.render(doc, "rich"):
        console.print(renderable)
    return console.export_text()


def test_a_suite_table_is_a_section_of_the_document(tmp_path):
    doc = api.report([suite_run(tmp_path)])
    (section,) = [s.table for s in doc.sections]
    assert isinstance(section, ReportTable)
    assert section.title.startswith("Suite medreason: ") and section.title.endswith("(accuracy %)")
    assert list(section.header) == ["model / run", *MEDREASON_COLUMNS, "Avg"]
    assert list(section.rows[0]) == ["mr", "100.0", "50.0", "0.0", "75.0", "100.0", "75.0", "66.7"]
    assert section.rows[1][0] == "published: MedReason-8B" and section.label_columns == 1
    assert any("UCSC-VLAA/MedReason" in n for n in section.notes)


def test_the_suite_table_is_in_every_format(tmp_path):
    doc = api.report([suite_run(tmp_path)])
    expected = ["mr", "100.0", "50.0", "0.0", "75.0", "100.0", "75.0", "66.7"]
    page = html_sections(api.render(doc, "html"))  # the page had no suite table before
    title = next(t for t in page if t.startswith("Suite medreason"))
    header, rows, notes = page[title]
    assert header == ["model / run", *MEDREASON_COLUMNS, "Avg"] and rows[0] == expected
    assert rows[1][0] == "published: MedReason-8B" and any("UCSC-VLAA/MedReason" in n for n in notes)
    md = api.render(doc, "markdown").split("## Suite medreason", 1)[1]
    assert "| mr | 100.0 | 50.0 | 0.0 | 75.0 | 100.0 | 75.0 | 66.7 |" in md and "published: MedReason-8B" in md
    data = json.loads(api.render(doc, "json"))
    (table,) = data["suites"]  # the key JSON readers had: numbers, not text
    assert table["runs"][0]["scores"]["MedQA"] == pytest.approx(75.0)
    assert table["runs"][0]["average"] == pytest.approx(400 / 6) and table["score"] == "correct"
    assert data["sections"] == []  # the scorers' sections only, as before
    blocks = api.render(doc, "csv").split("\n\n")
    suite_block = next(rows for rows in (list(csv.reader(io.StringIO(b))) for b in blocks[1:])
                       if rows[0][0].startswith("Suite medreason"))
    assert suite_block[1] == ["model / run", *MEDREASON_COLUMNS, "Avg"] and suite_block[2] == expected
    text = rich_text(doc)
    assert "Suite medreason" in text and "published: MedReason-8B" in text and "66.7" in text


def test_published_rows_are_set_apart_from_the_runs(tmp_path):
    """The suite table marks where the published rows begin: dimmed in the terminal, a class on the page."""
    doc = api.report([suite_run(tmp_path)])
    (section,) = [s.table for s in doc.sections]
    assert section.reference_from == 1 and section.rows[1][0].startswith("published: ")
    page = api.render(doc, "html")
    suite_html = page.split("Suite medreason", 1)[1].split("</section>", 1)[0]
    assert suite_html.count('<tr class="reference">') == len(section.rows) - 1
    assert '<tr class="reference"><td class="">mr<' not in suite_html
    from evalkit.results.report import section_rich_table

    table = section_rich_table(section)
    assert [r.style for r in table.rows] == [None] + ["dim"] * (len(section.rows) - 1)
    assert table.rows[0].end_section  # a rule between the runs and the published rows


def longform_suite_run(tmp_path, name, *, with_score=True, table_score=None):
    """A suite of two benchmarks graded by a judge's axis ``grade`` (no multiple choice): on ``b`` no
    sample has the axis."""
    def sample(i, dataset, scores):
        return {"id": f"{dataset}-{i}", "dataset": dataset, "question": "Q?", "output": "an answer",
                "finish_reason": "stop", "scores": scores, "index": 0, "latency_s": 1.0}

    samples = [sample(i, "a", {"grade": {"value": v}} if with_score else {}) for i, v in enumerate([1.0, 0.5])]
    samples += [sample(i, "b", {}) for i in range(2)]
    suite = {"name": "lf-suite", "title": "Long form", "benchmarks": [{"name": "a", "column": "A"},
                                                                       {"name": "b", "column": "B"}]}
    if table_score:
        suite["score"] = table_score
    scoring = {"scorers": [{"name": "judge"}], "metrics": {"grade": {"name": "mean"}}}
    return write_run(tmp_path, name, samples, extra_manifest={"suite": suite, "scoring": scoring})


def test_a_suite_without_table_score_shows_its_scorers_primary_score(tmp_path):
    """Not multiple choice: the cells are the judge's first score (its mean), not a 0.0 accuracy; a
    benchmark without that score shows "-", and the run no average."""
    doc = api.report([longform_suite_run(tmp_path, "lf")])
    (section,) = [s.table for s in doc.sections]
    assert "score grade" in section.title
    assert list(section.rows[0]) == ["lf", "0.8", "-", "-"]
    (table,) = json.loads(api.render(doc, "json"))["suites"]
    assert table["score"] == "grade"
    assert table["runs"][0]["scores"] == {"A": pytest.approx(0.75), "B": None} and table["runs"][0]["average"] is None


def test_a_run_without_the_suite_score_shows_no_zero(tmp_path):
    """The table score is named; a run that has none of it shows "-" everywhere, never 0.0."""
    doc = api.report([longform_suite_run(tmp_path, "none", with_score=False, table_score="grade")])
    (section,) = [s.table for s in doc.sections]
    assert list(section.rows[0]) == ["none", "-", "-", "-"]
    assert "0.0" not in api.render(doc, "markdown").split("## Suite lf-suite", 1)[1]


def test_a_choice_suite_run_without_choice_scores_shows_no_zero(tmp_path):
    """A suite run whose samples carry no multiple-choice verdict (a judge graded them) and whose
    manifest names no metric: its cells are empty, not 0.0."""
    samples = [{"id": f"q{i}", "dataset": "medqa", "question": "Q?", "output": "x", "finish_reason": "stop",
                "scores": {}, "index": 0} for i in range(3)]
    run = write_run(tmp_path, "bare", samples, extra_manifest={"suite": load_suite("medreason").to_manifest()})
    (section,) = [s.table for s in api.report([run]).sections]
    assert list(section.rows[0]) == ["bare", *["-"] * 6, "-"]


def test_notes_and_warnings_come_with_the_document(tmp_path):
    good = write_run(tmp_path, "good", verdict_samples("medqa", [True, False]))
    empty = write_run(tmp_path, "empty", [])
    doc = api.report([good, empty])
    assert len(doc.warnings) == 1 and "empty" in doc.warnings[0]
    assert [r.run for r in doc.report.rows] == ["good"]
    with pytest.raises(ValueError, match="no run has a sample to report"):
        api.report([empty])


def test_an_outside_scorer_that_cannot_be_loaded_is_a_warning(tmp_path):
    """A run scored by a module:attr scorer that this installation lacks: the report still shows its scores,
    and says that the scorer's own section is left out, and why."""
    scoring = {"scorers": [{"name": "gone", "source": "tests.no_such_module:GoneScorer"}],
               "metrics": {"gone": {"name": "proportion"}}}
    samples = [dict(s, scores={"gone": {"value": v}}) for s, v in zip(verdict_samples("medqa", [True, False]),
                                                                        [True, True])]
    run = write_run(tmp_path, "outside", samples, extra_manifest={"scoring": scoring})
    doc = api.report([run])
    (warning,) = doc.warnings
    assert warning.startswith("scorer tests.no_such_module:GoneScorer") and "report section, if it has one, is left out" in warning
    assert "no_such_module" in warning.split("cannot be loaded here:", 1)[1]  # the loader's reason
    assert any("gone" in r.scores for r in doc.report.rows)  # its scores are still reported


def test_truncation_hints_come_with_the_document(tmp_path):
    run = write_run(tmp_path, "cut", [make_sample(f"q{i}", truncated=True) for i in range(4)],
                    extra_manifest={"generation": {"max_new_tokens": 8}})
    doc = api.report([run])
    (hint,) = doc.hints
    assert hint.startswith("medqa: 100.0%") and "--max-new-tokens 8" in hint
    assert "hint: medqa: 100.0%" in rich_text(doc)


def test_the_overlap_split_is_a_section_too(tmp_path):
    run = write_run(tmp_path, "cand", [make_sample(f"q{i}", correct=i >= 2) for i in range(4)])
    ov = _overlap_file(tmp_path / "overlap.jsonl", [("medqa", "q0"), ("medqa", "q1")],
                       [("medqa", "q2"), ("medqa", "q3")])
    doc = api.report([run], overlap_file=ov)
    (section,) = [s.table for s in doc.sections]
    assert section.title == "Accuracy by overlap with training data (medpalm rule)"
    assert section.rows[0][:4] == ("cand", "medqa", "4", "2 (50.0%)")
    md = api.render(doc, "markdown")
    assert "## Accuracy by overlap with training data (medpalm rule)" in md and "| cand | medqa | 4 | 2 (50.0%) |" in md
    lines = list(csv.DictReader(io.StringIO(api.render(doc, "csv"))))
    assert len(lines) == 1 and lines[0]["acc_clean"] == "1"  # columns on the row, no extra block
    assert json.loads(api.render(doc, "json"))["overlap"]["rows"][0]["acc_overlap"] == 0.0
    assert "Accuracy by overlap with training data" in rich_text(doc)


def test_csv_gets_the_scorers_sections_as_titled_blocks(tmp_path):
    from evalkit.results.report import Report

    doc = api.report([write_run(tmp_path, "r", verdict_samples("medqa", [True]))])
    doc.report = Report(rows=doc.report.rows, throughput=doc.report.throughput,
                        sections=[ReportTable("Answers naming A", ("run", "dataset", "named A"), [("r", "medqa", 3)],
                                              ["named A: says so"])])
    text = api.render(doc, "csv")
    main, block = text.split("\n\n")
    assert len(list(csv.DictReader(io.StringIO(main)))) == 1  # the per-row table is unchanged
    assert list(csv.reader(io.StringIO(block))) == [["Answers naming A"], ["run", "dataset", "named A"],
                                                     ["r", "medqa", "3"], ["note: named A: says so"]]


def test_csv_without_sections_is_one_block(tmp_path):
    doc = api.report([write_run(tmp_path, "r", verdict_samples("medqa", [True]))])
    assert "\n\n" not in api.render(doc, "csv")


def test_render_report_refuses_rich_and_unknown_formats(tmp_path):
    doc = api.report([write_run(tmp_path, "r", verdict_samples("medqa", [True]))])
    with pytest.raises(ValueError, match="unknown format"):
        api.render(doc, "pdf")


def test_the_gate_writes_its_files_in_the_library(tmp_path):
    base = write_run(tmp_path, "base", verdict_samples("medqa", [True] * 30))
    cand = write_run(tmp_path, "cand", verdict_samples("medqa", [True] * 30))
    result = api.gate(base, cand, n_resamples=100)
    json_path, junit_path = tmp_path / "new" / "gate.json", tmp_path / "other" / "gate.xml"
    written = result.write_reports(json_out=json_path, junit_out=junit_path)
    assert written == [json_path, junit_path]
    assert json.loads(json_path.read_text())["exit_code"] == 0
    assert ET.fromstring(junit_path.read_text()).tag in ("testsuite", "testsuites")
    assert result.write_reports(json_out="-") == []  # stdout is the caller's to print


def test_the_leaderboard_document_carries_its_sections_and_refuses_no_runs(tmp_path):
    root = tmp_path / "results"
    write_run(root, "base", [make_sample(f"q{i}") for i in range(4)], model="m-base")
    ov = _overlap_file(tmp_path / "overlap.jsonl", [("medqa", "q0")], [("medqa", f"q{i}") for i in (1, 2, 3)])
    doc = api.leaderboard(root, overlap_file=ov, n_resamples=100, index=False)
    (section,) = [s.table for s in doc.sections]
    assert section.title == "Accuracy on clean items (medpalm rule)" and section.rows[0][1].startswith("m-base")
    page = api.render(doc, "html")
    assert '<section id="overlap"><h2>Accuracy on clean items (medpalm rule)</h2>' in page
    assert "## Accuracy on clean items (medpalm rule)" in api.render(doc, "markdown")
    assert json.loads(api.render(doc, "json"))["overlap"]["rule"] == "medpalm"
    assert "\n\n" not in api.render(doc, "csv")  # the split is columns there, not a block
    with pytest.raises(ValueError, match=r"no run under .* matches the filters \(--model nobody\)"):
        api.leaderboard(root, models=["nobody"], index=False)
    with pytest.raises(ValueError, match="splits the multiple-choice verdict"):
        api.leaderboard(root, overlap_file=ov, score="grade", index=False)


def test_the_gate_reads_the_overlap_file_in_the_library(tmp_path):
    """api.gate(overlap_file=) gates only the clean items: the candidate lost only flagged ones."""
    base = write_run(tmp_path, "base", [make_sample(f"q{i}") for i in range(40)])
    cand = write_run(tmp_path, "cand", [make_sample(f"q{i}", correct=i >= 20) for i in range(40)])
    ov = _overlap_file(tmp_path / "overlap.jsonl", [("medqa", f"q{i}") for i in range(20)],
                       [("medqa", f"q{i}") for i in range(20, 40)])
    assert api.gate(base, cand, n_resamples=100).exit_code == 1
    assert api.gate(base, cand, n_resamples=100, overlap_file=ov).exit_code == 0


def test_an_output_that_cannot_be_written_is_named_not_a_traceback(tmp_path):
    from click.testing import CliRunner

    from evalkit.cli import main

    run = suite_run(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    r = CliRunner().invoke(main, ["report", str(run), "--format", "markdown", "-o", str(blocker / "r.md")])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert f"{blocker / 'r.md'}: cannot write the markdown output" in r.output
