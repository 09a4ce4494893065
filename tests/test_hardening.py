"""Hardening: no key printed or written, nothing outside --results-dir, range-checked numbers,
one-line errors on write failures, a torn manifest named, long input lines refused."""

import json
import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import main
from evalkit.cli.run import without_secrets
from evalkit.data.datasets import DatasetError, load_dataset
from evalkit.results.leaderboard import build_leaderboard
from evalkit.core.records import GenerationParams
from evalkit.run.runner import RunConfig, run_eval, slug
from evalkit.run.plan import validate_config
from evalkit.core.store import iter_samples
from tests.conftest import ROOT, write_items
from tests.runfactory import verdict_samples, write_run
from tests.test_faults import finish, run_to_end, runner_cmd, start_runner, wait_for_lines

KEY = "sk-test-5ecret-0123456789"


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


# --- the API key -------------------------------------------------------------------------------

def test_without_secrets_drops_the_key_in_both_spellings():
    argv = ["run", "--api-key", KEY, "--limit", "3", f"--api-key={KEY}", "--model", "m"]
    assert without_secrets(argv) == (["run", "--limit", "3", "--model", "m"], True)
    assert without_secrets(["run", "--limit", "3"]) == (["run", "--limit", "3"], False)


def test_ctrl_c_and_endpoint_down_messages_never_show_the_key(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 300)
    srv = loopback("--delay-s", "0.02", "--require-key", KEY)
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "4", "--max-attempts", "2", "--api-key", KEY)
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    proc = start_runner(cmd)
    wait_for_lines(samples, 20, proc)
    proc.send_signal(signal.SIGINT)
    rc, out, err = finish(proc, timeout=20)
    assert rc == 130 and "resume with: evalkit run" in err and "$EVALKIT_API_KEY" in err
    assert KEY not in out + err

    proc = start_runner(cmd)
    wait_for_lines(samples, 40, proc)
    srv.stop()
    rc, out, err = finish(proc)
    assert rc == 1 and "resume with: evalkit run" in err
    assert KEY not in out + err
    assert files_containing(tmp_path / "results", KEY) == []


def test_a_server_echoing_the_key_has_it_masked_in_errors_and_files(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 5)
    srv = loopback("--require-key", "the-right-key")
    rc, out, err = run_to_end(runner_cmd(tmp_path, srv.url, data, "--api-key", KEY))
    assert rc == 3 and srv.stats()["401"] == 5
    errors = [s["error"] for s in iter_samples(tmp_path / "results" / "loopback-model" / "r")]
    assert len(errors) == 5 and all("HTTP 401" in e and "***" in e for e in errors)
    assert KEY not in out + err
    assert files_containing(tmp_path / "results", KEY) == []


# --- results stay inside --results-dir -----------------------------------------------------------

@pytest.mark.parametrize("flag, value", [
    ("--task-folder", "../../x"), ("--task-folder", "ABSOLUTE"), ("--task-folder", ".."),
    ("--run-name", "../.."), ("--run-name", "a/b"), ("--run-name", ""), ("--task-folder", "a\\b"),
])
def test_names_that_would_leave_the_results_dir_are_refused(tmp_path, loopback, flag, value):
    srv = loopback()
    outside = tmp_path.parent / f"{tmp_path.name}-escaped"
    value = str(outside) if value == "ABSOLUTE" else value
    data = write_items(tmp_path / "d.jsonl", 3)
    results = tmp_path / "a" / "b" / "results"
    res = CliRunner().invoke(main, ["run", "--eval-file", str(data), "--endpoint", srv.url, "--quiet",
                                    "--results-dir", str(results), flag, value])
    assert res.exit_code == 2, res.output
    assert flag.lstrip("-").replace("-", "_") in res.output
    assert srv.stats()["requests"] == 0
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["d.jsonl"]  # nothing written anywhere
    assert not outside.exists()


def test_a_model_id_of_dot_dot_stays_inside_the_results_dir(tmp_path, loopback):
    srv = loopback("--model", "..")
    data = write_items(tmp_path / "d.jsonl", 3)
    results = tmp_path / "a" / "results"
    rc, _, err = run_to_end([*runner_cmd(tmp_path, srv.url, data)[:-5], "--results-dir", str(results), "--quiet"])
    assert rc == 0, err
    written = [p for p in tmp_path.rglob("samples.jsonl")]
    assert len(written) == 1 and results in written[0].parents
    assert written[0].parent.parent.name == "model"
    assert slug("..") == "model" and slug(".hidden/x") == "hidden-x" and slug("org/m-1.5") == "org-m-1.5"


# --- numeric flags -----------------------------------------------------------------------------

@pytest.mark.parametrize("args, flag", [
    (["--timeout", "0"], "--timeout"), (["--timeout", "nan"], "--timeout"), (["--timeout", "-5"], "--timeout"),
    (["--limit", "-1"], "--limit"), (["--limit", "0"], "--limit"), (["--concurrency", "0"], "--concurrency"),
    (["--max-attempts", "0"], "--max-attempts"), (["--samples", "0"], "--samples"), (["--rps", "0"], "--rps"),
    (["--max-new-tokens", "0"], "--max-new-tokens"), (["--temperature", "-1"], "--temperature"),
    (["--top-p", "0"], "--top-p"), (["--top-p", "1.5"], "--top-p"), (["--refine-samples", "0"], "--refine-samples"),
    (["--fewshot-k", "-1"], "--fewshot-k"), (["--max-response-mb", "0"], "--max-response-mb"),
    (["--max-record-mb", "-1"], "--max-record-mb"),
])
def test_out_of_range_numbers_are_refused_before_anything_is_sent(tmp_path, loopback, args, flag):
    srv = loopback()
    data = write_items(tmp_path / "d.jsonl", 3)
    res = CliRunner().invoke(main, ["run", "--eval-file", str(data), "--endpoint", srv.url, "--quiet",
                                    "--results-dir", str(tmp_path / "r"), *args])
    assert res.exit_code == 2, res.output
    assert flag in res.output and "must be" in res.output
    assert srv.stats()["requests"] == 0 and not (tmp_path / "r").exists()


def test_the_library_config_checks_the_same_ranges(tmp_path):
    base = dict(eval_files=["x"], endpoint="http://127.0.0.1:9/v1")
    for bad in (dict(timeout_s=0), dict(limit=0), dict(limit=-1), dict(concurrency=0), dict(max_attempts=0),
                dict(params=GenerationParams(max_new_tokens=0)), dict(params=GenerationParams(top_p=0)),
                dict(task_folder="../x"), dict(run_name="/abs"), dict(retry_base_delay_s=-1)):
        with pytest.raises(ValueError, match="must"):
            validate_config(RunConfig(**base, **bad))
    validate_config(RunConfig(**base, limit=1, timeout_s=0.5))  # in range: fine


# --- write failures ----------------------------------------------------------------------------

def _limit_file_size(max_bytes):
    def preexec():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
    return preexec


def test_a_full_disk_mid_run_is_one_line_that_says_what_was_kept_and_resume_completes(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 200)
    srv = loopback()
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "4")
    # The file-size limit stands in for a full disk: samples.jsonl stops growing at 40 kB.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_limit_file_size(40_000))
    rc, out, err = finish(proc)
    assert rc == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "cannot write results:" in err and "samples.jsonl: File too large" in err
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    kept = len(list(iter_samples(samples)))
    assert 0 < kept < 200 and f"kept {kept} of 200" in err and "resume with: evalkit run" in err

    rc, _, err = run_to_end(cmd)
    assert rc == 0, err
    ids = [s["id"] for s in iter_samples(samples)]
    assert len(ids) == 200 == len(set(ids))


def test_a_results_dir_that_cannot_be_created_is_one_line_not_a_traceback(tmp_path, loopback):
    srv = loopback()
    data = write_items(tmp_path / "d.jsonl", 3)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rc, _, err = run_to_end([*runner_cmd(tmp_path, srv.url, data)[:-5], "--results-dir", str(blocker / "results"),
                             "--run-name", "r", "--quiet"])
    assert rc == 1 and "Traceback" not in err
    assert "cannot write results:" in err and "nothing was written" in err and str(blocker) in err


def test_a_read_only_run_directory_is_one_line_naming_the_file(tmp_path, loopback, monkeypatch):
    # As root, permissions do not stop writes; stand the failure in where the lock file is opened.
    srv = loopback()
    data = write_items(tmp_path / "d.jsonl", 3)
    import evalkit.core.lock as lock

    real_open = os.open

    def read_only(path, flags, *a):
        if str(path).endswith(lock.LOCK_FILE):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *a)

    monkeypatch.setattr(lock.os, "open", read_only)
    res = CliRunner().invoke(main, ["run", "--eval-file", str(data), "--endpoint", srv.url, "--quiet",
                                    "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 1, res.output
    assert "cannot write results:" in res.output and "Permission denied" in res.output
    assert "nothing was written" in res.output and srv.stats()["requests"] == 0


# --- torn manifest -----------------------------------------------------------------------------

def test_a_torn_manifest_blocks_resume_with_an_error_naming_the_file(tmp_path, loopback):
    srv = loopback()
    data = write_items(tmp_path / "d.jsonl", 5)
    cmd = runner_cmd(tmp_path, srv.url, data)
    assert run_to_end(cmd)[0] == 0
    manifest = tmp_path / "results" / "loopback-model" / "r" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    rc, _, err = run_to_end(cmd)
    assert rc == 1 and f"{manifest}:" in err and "not valid JSON" in err and "Traceback" not in err


def test_the_leaderboard_skips_a_run_with_a_torn_manifest_and_warns(tmp_path):
    root = tmp_path / "results"
    write_run(root, "good", verdict_samples("medqa", [True, False, True]), model="m1")
    bad = write_run(root, "torn", verdict_samples("medqa", [True, True, True]), task="other", model="m2")
    (bad / "manifest.json").write_text('{"model": "m2", "pro')
    lb = build_leaderboard(root, n_resamples=200)
    assert [r.model for r in lb.rows] == ["m1"]
    assert len(lb.skipped) == 1 and str(bad / "manifest.json") in lb.skipped[0]
    assert any("skipped" in n and "manifest.json" in n for n in lb.notes)
    res = CliRunner().invoke(main, ["leaderboard", str(root), "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert f"warning: skipped {bad / 'manifest.json'}" in res.output and "m1" in res.output


# --- long input lines --------------------------------------------------------------------------

def test_a_record_line_over_the_cap_is_an_error_at_its_line(tmp_path):
    f = write_items(tmp_path / "d.jsonl", 3)
    lines = f.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["question"] = "long " * 2000
    lines[1] = json.dumps(rec)
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(f, max_line_bytes=4096)
    assert f"{f}:2: line is longer than" in str(err.value)
    assert len(err.value.problems) == 1
    ok = load_dataset(f, max_line_bytes=4096, skip_invalid=True)
    assert len(ok.items) == 2 and [p.line for p in ok.skipped] == [2]
    assert len(load_dataset(f).items) == 3  # under the default cap


def test_run_refuses_a_file_with_a_line_over_max_record_mb(tmp_path, loopback):
    srv = loopback()
    f = write_items(tmp_path / "d.jsonl", 3)
    f.write_text(f.read_text() + json.dumps({"question": "q" * 3000, "options": {"A": "a", "B": "b"},
                                             "answer_idx": "A"}) + "\n")
    res = CliRunner().invoke(main, ["run", "--eval-file", str(f), "--endpoint", srv.url, "--quiet",
                                    "--results-dir", str(tmp_path / "r"), "--max-record-mb", "0.001"])
    assert res.exit_code == 2 and f"{f}:4: line is longer than" in res.output
    assert srv.stats()["requests"] == 0


def test_run_eval_library_refuses_paths_outside(tmp_path):
    with pytest.raises(ValueError, match="single folder name"):
        run_eval(RunConfig(eval_files=["x"], endpoint="http://127.0.0.1:9/v1", results_dir=str(tmp_path),
                           task_folder="a/../../b"))
