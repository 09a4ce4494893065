"""Messages agree across commands: what --skip-invalid skipped, accuracy in percent, how to fetch
offline, registered names wherever a benchmark file is asked for."""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil

from click.testing import CliRunner

from evalkit.cli import main
from evalkit.data.registry import get_benchmark
from tests.conftest import free_port, write_items
from tests.runfactory import verdict_samples, write_run


def test_skip_invalid_prints_the_count_and_the_first_reasons(tmp_path, loopback):
    srv = loopback()
    f = write_items(tmp_path / "some.jsonl", 4)
    bad = ['{"question": "no options"}'] * 3 + ["{torn"] * 4  # lines 5-11
    f.write_text(f.read_text() + "\n".join(bad) + "\n")
    res = CliRunner().invoke(main, ["run", "--eval-file", str(f), "--endpoint", srv.url, "--quiet", "--skip-invalid",
                                    "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "skipped 7 invalid records (--skip-invalid)" in res.output and "manifest.json" in res.output
    for line in range(5, 10):  # the first five, each as file:line: reason
        assert f"{f}:{line}:" in res.output
    assert f"{f}:10:" not in res.output and "... and 2 more" in res.output
    assert f"{f}:5: missing options; missing answer" in res.output  # one line per record, every reason


def test_run_without_invalid_records_says_nothing_about_skipping(tmp_path, loopback):
    srv = loopback()
    f = write_items(tmp_path / "fine.jsonl", 3)
    res = CliRunner().invoke(main, ["run", "--eval-file", str(f), "--endpoint", srv.url, "--quiet", "--skip-invalid",
                                    "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "skipped" not in res.output


def test_score_prints_accuracy_in_percent(tmp_path):
    run = write_run(tmp_path, "r", verdict_samples("medqa", [True, True, True, False]), model="m")
    res = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["score", str(run), "-o", str(tmp_path / "out.jsonl")])
    assert res.exit_code == 0, res.output
    assert "acc %" in res.output and " 75.0 " in res.output and "0.7500" not in res.output
    assert "[30.1, 95.4]" in res.output  # the Wilson interval, as `evalkit run` and `report` print it


def test_fetch_offline_suggests_a_mirror(tmp_path, monkeypatch):
    unreachable = f"http://127.0.0.1:{free_port()}/medqa_test.jsonl"  # nothing listens there
    bench = dataclasses.replace(get_benchmark("medqa"), url=unreachable)
    # api.data.plan reads the fetch plan from its module when called
    monkeypatch.setattr(importlib.import_module("evalkit.data.fetch"), "plan", lambda names: [bench])
    res = CliRunner().invoke(main, ["data", "fetch", "medqa", "--data-dir", str(tmp_path)])
    assert res.exit_code == 1
    assert unreachable in res.output and "evalkit data fetch medqa --from DIR_OR_URL" in res.output


def test_fetch_from_a_bad_mirror_does_not_suggest_a_mirror(tmp_path):
    res = CliRunner().invoke(main, ["data", "fetch", "medqa", "--from", str(tmp_path), "--data-dir",
                                    str(tmp_path / "d")])
    assert res.exit_code == 1 and "is not in mirror" in res.output and "--from DIR_OR_URL" not in res.output


def test_run_accepts_a_registered_name_like_data_check(tmp_path, monkeypatch, loopback):
    srv = loopback()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "eval_data").mkdir()
    shutil.copy(write_items(tmp_path / "five.jsonl", 5), tmp_path / "eval_data" / "medqa_test.jsonl")
    check = CliRunner().invoke(main, ["data", "check", "medqa"])
    assert check.exit_code == 0 and "5 items" in check.output
    res = CliRunner().invoke(main, ["run", "--eval-file", "medqa", "--endpoint", srv.url, "--quiet"])
    assert res.exit_code == 0, res.output
    manifest = json.loads(next((tmp_path / "results").glob("*/*/manifest.json")).read_text())
    assert manifest["data"][0]["path"] == "eval_data/medqa_test.jsonl" and manifest["data"][0]["items"] == 5


def test_run_with_a_registered_name_not_fetched_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["run", "--eval-file", "medqa", "--endpoint", "http://127.0.0.1:9/v1", "--quiet"])
    assert res.exit_code == 2
    assert "eval_data/medqa_test.jsonl" in res.output and "evalkit data fetch medqa" in res.output
