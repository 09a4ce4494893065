"""A run whose samples.jsonl is empty though its manifest says complete: the leaderboard lists it apart
with the reason, and `evalkit report` says what is wrong, failing when no run has a sample (issue 20, item 7)."""

import json

from evalkit.core.store import read_json
from tests.conftest import run_evalkit, write_items


def finished_run(tmp_path, url, data, task: str):
    res = run_evalkit("run", "--eval-file", str(data), "--endpoint", url, "--results-dir", str(tmp_path / "results"),
                      "--task-folder", task, "--run-name", "r", "--quiet")
    assert res.returncode == 0, res.stderr
    return tmp_path / "results" / task / "r"


def test_an_emptied_complete_run_is_listed_apart_on_the_leaderboard_with_the_reason(tmp_path, loopback):
    srv = loopback()
    data = write_items(tmp_path / "d.jsonl", 8)
    finished_run(tmp_path, srv.url, data, "good")
    emptied = finished_run(tmp_path, srv.url, data, "emptied")  # the same configuration as the good one
    (emptied / "samples.jsonl").write_text("")
    assert read_json(emptied / "manifest.json")["status"] == "complete"

    res = run_evalkit("leaderboard", str(tmp_path / "results"), "--format", "markdown")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    empty_rows = [line for line in lines if line.startswith("| empty |")]
    assert len(empty_rows) == 1 and lines.index(empty_rows[0]) > lines.index(next(l for l in lines if l.startswith("| 1 |")))
    assert f"{emptied / 'samples.jsonl'} holds no sample, though its manifest says 'complete'" in res.stdout

    res = run_evalkit("leaderboard", str(tmp_path / "results"), "--format", "json")
    rows = json.loads(res.stdout)["rows"]
    assert [r["ranked"] for r in rows] == [True, False] and "holds no sample" in rows[1]["flags"][0]



def test_report_names_an_emptied_run_and_fails_when_no_run_has_a_sample(tmp_path, loopback):
    srv = loopback()
    data = write_items(tmp_path / "d.jsonl", 8)
    good = finished_run(tmp_path, srv.url, data, "good")
    emptied = finished_run(tmp_path, srv.url, data, "emptied")
    (emptied / "samples.jsonl").write_text("")

    res = run_evalkit("report", str(emptied))
    assert res.returncode == 1 and "no run has a sample to report" in res.stderr, res.stderr
    assert f"{emptied / 'samples.jsonl'} holds no sample" in res.stderr and "Traceback" not in res.stderr

    res = run_evalkit("report", str(good), str(emptied), "--format", "markdown")
    assert res.returncode == 0, res.stderr
    assert f"warning: {emptied / 'samples.jsonl'} holds no sample" in res.stderr
    assert "| good/r | d | 8 |" in res.stdout
