"""A scorer's own report section (``report_extra`` / ``report_tables`` on its class): declared once,
laid out by every report format (text, markdown, JSON, HTML) with no code of the scorer's in them,
for a scorer defined outside evalkit too (``--scorer module:attr``, found through the run's manifest)."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from rich.console import Console

from evalkit.cli import main
from evalkit.core.records import ReportTable
from evalkit.results.report import build_report, report_tables
from evalkit.results.report_document import format_report
from tests.html_sections import html_sections


def test_a_report_table_checks_its_rows():
    t = ReportTable("T", ("a", "b"), [("x", 1)], ["n"])
    assert t.rows == (("x", "1"),) and t.to_dict() == {"title": "T", "header": ["a", "b"], "rows": [["x", "1"]],
                                                        "notes": ["n"], "label_columns": 2}
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        ReportTable("T", ("a", "b"), [("x",)])


def test_a_scorer_from_outside_evalkit_gets_its_section_in_every_format(tmp_path, items_file, loopback):
    lb = loopback()
    r = CliRunner().invoke(main, ["run", "--eval-file", str(items_file), "--endpoint", lb.url, "--scorer", "choice",
                                  "--scorer", "tests.toy_scorers:SectionScorer", "--results-dir",
                                  str(tmp_path / "res"), "--quiet"])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path / "res").glob("*/*")
    samples = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    named_a = sum("answer is A" in s["output"] for s in samples)
    report = build_report([run])
    (section,) = report.sections
    expected = [section.rows[0][0], "tiny", "12", str(named_a)]
    assert section.title == "Answers naming A" and list(section.rows[0]) == expected
    doc = json.loads(format_report(report, "json"))
    assert doc["sections"] == [section.to_dict()]
    md = format_report(report, "markdown").split("## Answers naming A", 1)[1]
    assert f"| tiny | 12 | {named_a} |" in md and "- named A: the reply says 'answer is A' <b>" in md
    page = tmp_path / "r.html"
    assert CliRunner().invoke(main, ["report", str(run), "--format", "html", "-o", str(page)]).exit_code == 0
    html = page.read_text(encoding="utf-8")
    assert html_sections(html)["Answers naming A"] == (["run", "dataset", "n", "named A"], [expected],
                                                        ["named A: the reply says 'answer is A' <b>"])
    assert "&lt;b&gt;" in html  # the scorer's text is escaped, never markup
    console = Console(width=300, record=True, file=io.StringIO())
    for table in report_tables(report):
        console.print(table)
    text = console.export_text().split("Answers naming A", 1)[1]
    line = next(x for x in text.splitlines() if "│ tiny " in x)
    assert [c.strip() for c in line.split("│")[2:5]] == ["tiny", "12", str(named_a)]
    assert "named A: the reply says 'answer is A' <b>" in text  # the notes, as the caption
