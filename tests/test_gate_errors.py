"""`evalkit gate` exits 2 (not comparable), never 1 (the regression code), on every run it cannot read or
compare and on a report it cannot write: a CI job must not report a regression that is not one
(issue 20, item 8). The runs are real: made by `evalkit run` against the loopback double."""

import json
import shutil

import pytest

from tests.conftest import Loopback, run_evalkit, write_items


@pytest.fixture(scope="module")
def made_runs(tmp_path_factory):
    """Two finished runs of the same 12 items (baseline, candidate), made once."""
    root = tmp_path_factory.mktemp("gate-runs")
    data = write_items(root / "d.jsonl", 12)
    srv = Loopback()
    try:
        for name in ("base", "cand"):
            res = run_evalkit("run", "--eval-file", str(data), "--endpoint", srv.url, "--results-dir",
                              str(root / "results"), "--run-name", name, "--quiet")
            assert res.returncode == 0, res.stderr
    finally:
        srv.stop()
    return root / "results" / "loopback-model"


@pytest.fixture
def runs(made_runs, tmp_path):
    base, cand = tmp_path / "base", tmp_path / "cand"
    shutil.copytree(made_runs / "base", base)
    shutil.copytree(made_runs / "cand", cand)
    return base, cand


def gate(base, cand, *extra):
    return run_evalkit("gate", "--baseline", str(base), "--candidate", str(cand), *extra)


def lines_of(run):
    return (run / "samples.jsonl").read_text().splitlines()


def test_the_runs_as_made_pass(runs):
    res = gate(*runs)
    assert res.returncode == 0, res.stdout + res.stderr


def torn_manifest(run):
    text = (run / "manifest.json").read_text()
    (run / "manifest.json").write_text(text[:40])
    return "manifest.json"


def manifest_not_an_object(run):
    (run / "manifest.json").write_text("[1, 2]")
    return "manifest.json"


def manifest_nested_too_deep(run):
    (run / "manifest.json").write_text("[" * 5000 + "]" * 5000)
    return "manifest.json"


def torn_line_mid_file(run):
    lines = lines_of(run)
    lines[1] = lines[1][:30]
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return "samples.jsonl:2"


def line_without_id(run):
    lines = lines_of(run)
    record = json.loads(lines[2])
    del record["id"]
    lines[2] = json.dumps(record)
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return "sample 3 lacks"


def no_samples_file(run):
    (run / "samples.jsonl").unlink()
    return "no samples file"


def samples_not_utf8(run):
    (run / "samples.jsonl").write_bytes(b'{"dataset": "d", "id": "\xff\xfe"}\n')
    return "samples.jsonl"


def empty_samples(run):
    (run / "samples.jsonl").write_text("")
    return "holds no sample"


@pytest.mark.parametrize("damage", [torn_manifest, manifest_not_an_object, manifest_nested_too_deep,
                                    torn_line_mid_file, line_without_id, no_samples_file, samples_not_utf8,
                                    empty_samples])
@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_a_run_that_cannot_be_read_exits_2_naming_what_is_wrong(runs, damage, side):
    base, cand = runs
    said = damage(base if side == "baseline" else cand)
    res = gate(base, cand)
    assert res.returncode == 2, res.stdout + res.stderr
    assert said in res.stdout + res.stderr and "Traceback" not in res.stderr
    assert "NOT COMPARABLE" in res.stdout + res.stderr


def test_a_score_that_is_not_a_number_exits_2(runs):
    base, cand = runs
    for run, value in ((base, 1), (cand, "high")):
        records = [json.loads(line) for line in lines_of(run)]
        for r in records:
            r["scores"]["grade"] = {"value": value}
        (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    res = gate(base, cand, "--score", "grade")
    assert res.returncode == 2 and "high" in res.stderr and "Traceback" not in res.stderr, res.stdout + res.stderr


def test_a_report_that_cannot_be_written_exits_2_not_1(runs, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for flag in ("--json", "--junit"):
        res = gate(*runs, flag, str(blocker / "out"))
        assert res.returncode == 2 and str(blocker) in res.stderr and "Traceback" not in res.stderr, res.stderr
    res = gate(*runs, "--json", str(tmp_path / "new" / "dir" / "gate.json"))  # a missing folder is made
    assert res.returncode == 0 and json.loads((tmp_path / "new" / "dir" / "gate.json").read_text())


def test_a_dataset_name_that_looks_like_markup_is_compared_not_a_crash(runs):
    for run in runs:
        records = [json.loads(line) for line in lines_of(run)]
        for r in records:
            r["dataset"] = "[/oops]"
        (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    res = gate(*runs)
    assert res.returncode == 0 and "[/oops]" in res.stdout and "Traceback" not in res.stderr, res.stdout + res.stderr
