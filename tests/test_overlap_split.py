"""Accuracy split by overlap: the pure split, the report table, gate --clean-only."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.results.gate import compare_runs
from evalkit.results.overlap_split import OverlapSet, overlap_rows, read_overlap, split_by_overlap
from evalkit.core.stats import newcombe_diff_interval, wilson_interval
from tests.runfactory import make_sample, write_run


def _overlap_file(path, flagged, clean, rule="medpalm"):
    lines = [{"overlap_header": {"ngram": 13}}]
    for ds, i in flagged:
        lines.append({"dataset": ds, "id": i, "medpalm_overlap": rule == "medpalm", "ngram_overlap": True})
    for ds, i in clean:
        lines.append({"dataset": ds, "id": i, "medpalm_overlap": False, "ngram_overlap": False})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_split_by_overlap_is_a_partition():
    ov = OverlapSet("medpalm", frozenset({("d", "1"), ("d", "2")}), frozenset({("d", "1")}))
    hit, clean, missing = split_by_overlap({("d", "1"): "a", ("d", "2"): "b", ("d", "3"): "c"}, ov)
    assert (list(hit), list(clean), missing) == ([("d", "1")], [("d", "2")], [("d", "3")])


def test_newcombe_interval_brackets_the_difference_and_matches_a_known_value():
    d, lo, hi = newcombe_diff_interval(56, 70, 48, 80)
    # Newcombe (1998), table II example: 56/70 - 48/80 = 0.2, hybrid score CI 0.0524 to 0.3339
    assert d == pytest.approx(0.2)
    assert (lo, hi) == (pytest.approx(0.0524, abs=1e-4), pytest.approx(0.3339, abs=1e-4))


def test_overlap_rows_per_dataset(tmp_path):
    items = {("d", str(i)): make_sample(str(i), "d", correct=i < 8 or i % 2 == 0) for i in range(20)}
    flagged = {("d", str(i)) for i in range(10)}
    ov = OverlapSet("medpalm", frozenset(items), frozenset(flagged))
    (row,) = overlap_rows("run", items, ov)
    k1 = sum(1 for i in range(10) if i < 8 or i % 2 == 0)
    k2 = sum(1 for i in range(10, 20) if i % 2 == 0)
    assert (row.n, row.overlapping, row.overlap_rate) == (20, 10, 0.5)
    assert row.acc_overlap == k1 / 10 and row.acc_clean == k2 / 10
    assert row.acc_overlap_ci == wilson_interval(k1, 10)
    assert row.diff == pytest.approx(k1 / 10 - k2 / 10)
    assert row.diff_ci[0] < row.diff < row.diff_ci[1]


def test_report_and_gate_read_the_overlap_file(tmp_path):
    base = [make_sample(f"q{i}", "medqa", correct=True) for i in range(40)]
    # the candidate loses every overlapping item (q0..q19) and keeps every clean one
    cand = [make_sample(f"q{i}", "medqa", correct=i >= 20) for i in range(40)]
    b = write_run(tmp_path / "results", "base", base)
    c = write_run(tmp_path / "results", "cand", cand)
    ov = _overlap_file(tmp_path / "overlap.jsonl", [("medqa", f"q{i}") for i in range(20)],
                       [("medqa", f"q{i}") for i in range(20, 40)])
    assert read_overlap(ov).overlapping == frozenset(("medqa", f"q{i}") for i in range(20))
    out = CliRunner().invoke(main, ["report", str(c), "--overlap", str(ov), "--format", "markdown"])
    assert out.exit_code == 0, out.output
    section = out.output.split("## Accuracy by overlap with training data (medpalm rule)")[1]
    line = next(x for x in section.splitlines() if x.startswith("| cand | medqa | 40 |"))
    assert "20 (50.0%)" in line and "| 0.0 [" in line and "| 100.0 [" in line and "-100.0 [" in line
    assert compare_runs(b, c).exit_code == 1
    clean = compare_runs(b, c, clean_only=read_overlap(ov))
    assert clean.exit_code == 0 and clean.datasets[0].n == 20
    assert any("20 overlapping items left out" in w for w in clean.warnings)
    out = CliRunner().invoke(main, ["gate", "--baseline", str(b), "--candidate", str(c), "--clean-only",
                                    "--overlap", str(ov)])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(main, ["gate", "--baseline", str(b), "--candidate", str(c), "--clean-only"])
    assert out.exit_code == 2 and "go together" in out.output


def test_a_broken_overlap_file_names_its_line(tmp_path):
    p = tmp_path / "o.jsonl"
    p.write_text('{"overlap_header": {}}\n{"dataset": "d"}\n')
    with pytest.raises(ValueError, match=r"o.jsonl:2"):
        read_overlap(p)
