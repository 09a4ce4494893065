"""The overlap split where the pages are: `report --overlap` in json, csv and html, `leaderboard
--overlap` (the clean-accuracy table), and `compare --overlap` (items marked and filtered, the
paired result on clean items), the last driven in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.overlap_split import overlap_rows, read_overlap
from evalkit.run.rundir import load_run
from tests.runfactory import make_sample, write_run
from tests.test_compare import _open, _shown_stats, browser_page, needs_browser  # noqa: F401
from tests.test_overlap_split import _overlap_file

FLAGGED = [("medqa", f"q{i}") for i in range(20)]
CLEAN = [("medqa", f"q{i}") for i in range(20, 40)]


def _runs(tmp_path):
    """base right on all 40; cand loses the 20 overlapping items, and 2 clean ones (q20, q21)."""
    base = [make_sample(f"q{i}", "medqa", correct=True) for i in range(40)]
    cand = [make_sample(f"q{i}", "medqa", correct=i >= 22) for i in range(40)]
    root = tmp_path / "results"
    b = write_run(root, "base", base, model="m-base")
    c = write_run(root, "cand", cand, model="m-cand")
    ov = _overlap_file(tmp_path / "overlap.jsonl", FLAGGED, CLEAN)
    return b, c, ov


def _invoke(*args: str):
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


def test_report_overlap_json_csv_html(tmp_path):
    _, c, ov = _runs(tmp_path)
    want = overlap_rows("cand", load_run(c).items(), read_overlap(ov))[0]
    assert (want.overlapping, want.acc_overlap, want.acc_clean) == (20, 0.0, 0.9)

    doc = json.loads(_invoke("report", str(c), "--overlap", str(ov), "--format", "json"))
    assert doc["overlap"]["rule"] == "medpalm"
    (row,) = doc["overlap"]["rows"]
    assert row["acc_clean"] == 0.9 and row["acc_clean_ci"] == list(want.acc_clean_ci)
    assert row["diff"] == pytest.approx(-0.9) and row["diff_ci"] == list(want.diff_ci)
    assert "rows" in doc and doc["rows"][0]["dataset"] == "medqa"  # the report itself is unchanged

    lines = list(csv.DictReader(io.StringIO(_invoke("report", str(c), "--overlap", str(ov), "--format", "csv"))))
    assert len(lines) == 1
    assert (lines[0]["overlap_items"], lines[0]["acc_clean"], lines[0]["acc_overlap"]) == ("20", "0.9", "0")
    assert float(lines[0]["acc_clean_ci_low"]) == pytest.approx(want.acc_clean_ci[0], abs=1e-5)
    assert lines[0]["accuracy"] == "0.45"

    page = tmp_path / "report.html"
    _invoke("report", str(c), "--overlap", str(ov), "--format", "html", "-o", str(page))
    html = page.read_text(encoding="utf-8")
    section = re.search(r'<section id="overlap">(.*?)</section>', html, re.S).group(1)
    assert "medpalm rule" in section and "90.0 [" in section and "20 (50.0%)" in section


def test_report_overlap_csv_leaves_group_rows_blank(tmp_path):
    _, _, ov = _runs(tmp_path)
    c = write_run(tmp_path / "r2", "grouped", [make_sample(f"q{i}", "medqa", correct=i % 3 > 0,
                                                           meta={"meta_info": "step1" if i % 2 else "step2"})
                                               for i in range(40)])
    lines = list(csv.DictReader(io.StringIO(_invoke("report", str(c), "--overlap", str(ov), "--format", "csv",
                                                   "--by", "meta_info"))))
    assert len(lines) == 3 and sum(1 for x in lines if x["group"]) == 2
    assert [bool(x["overlap_rule"]) for x in lines] == [not x["group"] for x in lines]


def test_leaderboard_clean_table(tmp_path):
    b, c, ov = _runs(tmp_path)
    root = str(tmp_path / "results")
    text = _invoke("leaderboard", root, "--overlap", str(ov), "--format", "markdown")
    section = text.split("## Accuracy on clean items (medpalm rule)")[1]
    assert re.search(r"m-base.*\| 100\.0 \[\d+\.\d, 100\.0\] \(20 clean, 50% overlap\)", section)
    assert re.search(r"m-cand.*\| 90\.0 \[", section)

    doc = json.loads(_invoke("leaderboard", root, "--overlap", str(ov), "--format", "json"))
    cells = {r["configuration"].split(" ")[0]: r["cells"]["medqa"] for r in doc["overlap"]["rows"]}
    assert cells["m-cand"]["acc_clean"] == 0.9 and cells["m-base"]["acc_clean"] == 1.0
    assert [r["rank"] for r in doc["overlap"]["rows"]] == [str(r["rank"]) for r in doc["rows"]]

    lines = list(csv.DictReader(io.StringIO(_invoke("leaderboard", root, "--overlap", str(ov), "--format", "csv"))))
    assert {(x["model"], x["dataset"], x["acc_clean"]) for x in lines} == {
        ("m-base", "macro", ""), ("m-base", "medqa", "1"), ("m-cand", "macro", ""), ("m-cand", "medqa", "0.9")}

    page = tmp_path / "lb.html"
    _invoke("leaderboard", root, "--overlap", str(ov), "--format", "html", "-o", str(page))
    section = re.search(r'<section id="overlap">(.*?)</section>', page.read_text(encoding="utf-8"), re.S).group(1)
    assert "90.0 [" in section and "m-cand" in section

    res = CliRunner().invoke(main, ["leaderboard", root, "--overlap", str(ov), "--score", "accuracy"])
    assert res.exit_code == 2 and "--overlap" in res.output


def test_compare_marks_items_and_gates_clean_items(tmp_path):
    from evalkit.results.compare import build_comparison
    from evalkit.results.pages.compare import comparison_payload
    from evalkit.results.gate import compare_runs

    b, c, ov = _runs(tmp_path)
    overlap = read_overlap(ov)
    comp = build_comparison([b, c], n_resamples=200, overlap=overlap)
    assert comp.overlap_marks == "o" * 20 + "c" * 20
    clean = comp.pair(0, 1).clean_gate
    want = compare_runs(b, c, n_resamples=200, allow_mismatch=True, clean_only=overlap)
    assert clean.to_dict() == want.to_dict() and clean.datasets[0].lost == 2 and clean.datasets[0].n == 20
    payload = comparison_payload(comp)
    assert payload["overlap"]["marks"] == comp.overlap_marks and payload["overlap"]["rule"] == "medpalm"
    assert payload["pairs"]["0-1"]["clean"]["rows"][0][5] == "2"  # broken on clean items
    assert "overlap" not in comparison_payload(build_comparison([b, c], n_resamples=200))


@needs_browser
def test_browser_compare_overlap_filter_and_clean_pair(tmp_path, browser_page):  # noqa: F811
    b, c, ov = _runs(tmp_path)
    page_file = tmp_path / "compare.html"
    res = CliRunner().invoke(main, ["compare", str(b), str(c), "--overlap", str(ov), "-o", str(page_file),
                                    "--resamples", "500"])
    assert res.exit_code == 0, res.output
    gate_out = tmp_path / "clean.json"
    res = CliRunner().invoke(main, ["gate", "--baseline", str(b), "--candidate", str(c), "--clean-only",
                                    "--overlap", str(ov), "--json", str(gate_out), "--resamples", "500"])
    assert res.exit_code in (0, 1), res.output
    gate = json.loads(gate_out.read_text(encoding="utf-8"))["datasets"][0]
    page = browser_page
    _open(page, page_file)

    clean_rows = page.eval_on_selector_all(
        "#pair-clean-stats tr", "trs => trs.map(tr => Array.from(tr.children).map(td => td.textContent))")
    assert [r[:6] for r in clean_rows] == [["medqa", str(gate["n"]), "18", "0", "0", "2"]]
    assert float(clean_rows[0][8]) == round(gate["diff_points"], 1)
    assert _shown_stats(page)["medqa"][5] == "22"  # all items: 22 broken

    page.select_option("#f-overlap", "c")
    ids = page.eval_on_selector_all("#items tr", "trs => trs.map(tr => tr.children[1].textContent)")
    assert sorted(ids) == sorted(i for _, i in CLEAN)
    page.select_option("#f-dir", "B")  # clean and broken
    ids = page.eval_on_selector_all("#items tr", "trs => trs.map(tr => tr.children[1].textContent)")
    assert sorted(ids) == ["q20", "q21"]
    page.select_option("#f-overlap", "o")
    marks = page.eval_on_selector_all("#items tr td.ov", "tds => tds.map(td => td.textContent)")
    assert len(marks) == 20 and set(marks) == {"overlapping"}
    assert "overlap" in page.text_content("#overlap")
    assert page.errors == []
