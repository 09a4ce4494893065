"""Fault tests with real processes: `evalkit run` and the loopback double, each in its own process.

Every wait is bounded: a hung runner fails the test instead of hanging CI.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_items
from evalkit.core.store import iter_samples, read_json
from tests.loopback_server import choose_letter, prompt_key


def runner_cmd(tmp_path, url, data, *extra):
    return [sys.executable, "-m", "evalkit", "run", "--eval-file", str(data), "--endpoint", url,
            "--results-dir", str(tmp_path / "results"), "--run-name", "r", "--quiet", *extra]


def _default_sigint() -> None:
    # A test suite started in the background of a script (`cmd &`) inherits SIGINT ignored,
    # and Python keeps an ignored SIGINT ignored; the runner must see the Ctrl-C these tests send.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_runner(cmd):
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint)


def finish(proc, timeout=60):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"runner did not finish within {timeout}s:\n{err}")
    return proc.returncode, out, err


def run_to_end(cmd, timeout=60):
    return finish(start_runner(cmd), timeout)


def wait_for_lines(path: Path, n: int, proc, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"runner exited early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.02)
    pytest.fail(f"{path} did not reach {n} lines in {timeout}s")


def start_300_item_run(tmp_path, loopback, *, lines: int):
    """A runner process on 300 slow-ish items, returned once LINES samples are saved."""
    data = write_items(tmp_path / "d.jsonl", 300)
    srv = loopback("--delay-s", "0.02")
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "8")
    proc = start_runner(cmd)
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    wait_for_lines(samples, lines, proc)
    return srv, cmd, proc, samples


def complete_lines_are_valid(path: Path) -> list[dict]:
    """Every complete line parses; only a last line without newline may be torn."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    parsed = [json.loads(line) for line in lines[:-1] if line.strip()]
    return parsed


def final_ok(run_dir: Path) -> list[dict]:
    ok = [s for s in iter_samples(run_dir) if not s.get("error")]
    ids = [s["id"] for s in ok]
    assert len(ids) == len(set(ids)), "an item was saved twice"
    return ok


def test_server_killed_mid_run_then_resume_completes_every_item_once(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 400)
    srv = loopback("--delay-s", "0.01")
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "4", "--max-attempts", "2")
    proc = start_runner(cmd)
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    wait_for_lines(samples, 40, proc)
    srv.stop()  # SIGKILL: connections reset, then refused
    rc, _, err = finish(proc)
    assert rc == 1
    assert "stopped answering" in err and "resume with: evalkit run" in err and "retries" in err
    first = [s for s in complete_lines_are_valid(samples) if not s.get("error")]
    assert 40 <= len(first) < 400
    manifest = read_json(samples.parent / "manifest.json")
    assert manifest["status"] == "endpoint-down" and manifest["retries"] > 0

    again = loopback(port=srv.port)  # the server comes back where it was
    rc, out, err = run_to_end(cmd)
    assert rc == 0, err
    assert f"resuming {samples.parent}: {len(first)} of 400" in err
    ok = final_ok(samples.parent)
    assert len(ok) == 400
    # The restarted server was asked only for what was not finished before, each once.
    asked = again.stats()["prompts"]
    done_before = {prompt_key(s["prompt"]) for s in first}
    assert not done_before & set(asked) and sum(asked.values()) == 400 - len(first)
    assert read_json(samples.parent / "summary.json")["complete"] is True


def test_runner_sigkilled_mid_run_resumes_without_repeating_finished_items(tmp_path, loopback):
    srv, cmd, proc, samples = start_300_item_run(tmp_path, loopback, lines=60)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    finished = complete_lines_are_valid(samples)
    assert 60 <= len(finished) < 300

    rc, _, err = run_to_end(cmd)
    assert rc == 0, err
    ok = final_ok(samples.parent)
    assert len(ok) == 300
    assert samples.read_bytes().count(b"\n") == 300  # one line per item, nothing repeated
    asked = srv.stats()["prompts"]
    for s in finished:
        assert asked[prompt_key(s["prompt"])] == 1, "a finished item was requested again"


def test_torn_last_line_is_dropped_and_redone(tmp_path, loopback):
    data = write_items(tmp_path / "d.jsonl", 20)
    srv = loopback()
    cmd = runner_cmd(tmp_path, srv.url, data, "--limit", "10")
    assert run_to_end(cmd)[0] == 0
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    lines = samples.read_bytes().split(b"\n")
    # Simulate a kill in the middle of writing the 10th line.
    samples.write_bytes(b"\n".join(lines[:9]) + b"\n" + lines[9][:40])
    rc, _, err = run_to_end(runner_cmd(tmp_path, srv.url, data))
    assert rc == 0, err
    assert "9 of 20 samples already done" in err
    assert len(final_ok(samples.parent)) == 20
    assert samples.read_bytes().count(b"\n") == 20 and samples.read_bytes().endswith(b"\n")


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, loopback):
    srv, cmd, proc, samples = start_300_item_run(tmp_path, loopback, lines=40)
    proc.send_signal(signal.SIGINT)
    rc, _, err = finish(proc, timeout=20)
    assert rc == 130
    assert "stopped" in err and "resume with: evalkit run" in err
    kept = complete_lines_are_valid(samples)
    assert samples.read_bytes().endswith(b"\n")  # nothing half-written
    manifest = read_json(samples.parent / "manifest.json")
    assert manifest["status"] == "interrupted" and manifest["finished_at"]
    summary = read_json(samples.parent / "summary.json")
    assert summary["complete"] is False and summary["datasets"]["d"]["n"] == len(kept)

    rc, _, err = run_to_end(cmd)
    assert rc == 0, err
    assert len(final_ok(samples.parent)) == 300
    asked = srv.stats()["prompts"]
    assert all(asked[prompt_key(s["prompt"])] == 1 for s in kept)


@pytest.mark.parametrize("faults", [
    ("--fail-500", "0.15"),
    ("--fail-429", "0.15"),
    ("--stall", "0.06", "--stall-s", "5"),
    ("--drop", "0.15"),
    ("--fail-500", "0.05", "--fail-429", "0.05", "--stall", "0.03", "--stall-s", "5", "--drop", "0.05"),
], ids=["500", "429", "stall", "drop", "mixed"])
def test_transient_faults_complete_with_correct_results_and_counted_retries(tmp_path, loopback, faults):
    data = write_items(tmp_path / "d.jsonl", 120)
    srv = loopback(*faults, "--seed", "11")
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "16", "--timeout", "1", "--max-attempts", "10")
    rc, _, err = run_to_end(cmd)
    assert rc == 0, err
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    ok = final_ok(run_dir)
    assert len(ok) == 120
    for s in ok:
        assert s["pred"] == choose_letter(s["prompt"])  # the answer the server gave, not a corrupted one
    stats = srv.stats()
    injected = stats["500"] + stats["429"] + stats["stall"] + stats["drop"]
    assert injected > 0
    manifest = read_json(run_dir / "manifest.json")
    # Each injected fault cost exactly one retry, and the count reached the user.
    assert manifest["retries"] == injected
    assert f"{injected} retries" in err
    assert stats["requests"] == 120 + injected
