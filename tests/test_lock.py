"""The run-directory lock: one run writes a run directory at a time; a dead holder's lock is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from evalkit.core.lock import LOCK_FILE, RunLocked, took_over_message, try_lock_run_dir
from evalkit.core.store import iter_samples, read_json
from tests.conftest import write_items
from tests.test_faults import finish, run_to_end, runner_cmd, start_300_item_run, start_runner


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_held_lock_refuses_a_second_taker_naming_pid_and_host(tmp_path):
    with try_lock_run_dir(tmp_path) as lock:
        assert lock.held and lock.took_over is None
        with pytest.raises(RunLocked) as err:
            try_lock_run_dir(tmp_path)
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in str(err.value)
        assert "--wait-for-lock" in str(err.value)
    assert not (tmp_path / LOCK_FILE).exists()  # a clean release leaves nothing behind
    with try_lock_run_dir(tmp_path) as again:
        assert again.took_over is None


def test_the_lock_of_a_dead_holder_is_taken_over_and_said_so(tmp_path):
    pid = dead_pid()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                                  "started_at": "2026-01-01T00:00:00+00:00"}))
    with try_lock_run_dir(tmp_path) as lock:
        assert lock.took_over is not None and lock.took_over.pid == pid
        message = took_over_message(lock)
        assert f"pid {pid}" in message and "no longer running" in message and "stale lock" in message
        record = json.loads((tmp_path / LOCK_FILE).read_text())
        assert record["pid"] != pid  # the record now names the new holder


def _two_runs_together(tmp_path, loopback, *extra):
    data = write_items(tmp_path / "d.jsonl", 150)
    srv = loopback("--delay-s", "0.12")  # a run of about 4.5 s: both start well inside it
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "4", *extra)
    procs = [start_runner(cmd), start_runner(cmd)]
    results = [finish(p, timeout=120) for p in procs]
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    return srv, procs, results, run_dir


def _every_item_once(srv, run_dir, n):
    samples = list(iter_samples(run_dir))
    ids = [s["id"] for s in samples]
    assert len(ids) == n and len(set(ids)) == n, "an item was written twice (or missing)"
    asked = srv.stats()["prompts"]
    assert len(asked) == n and set(asked.values()) == {1}, "an item was answered twice"
    summary = read_json(run_dir / "summary.json")
    assert summary["complete"] is True
    assert summary["datasets"]["d"]["n"] == n
    assert summary["datasets"]["d"]["correct"] == sum(s["correct"] for s in samples)


def test_two_identical_runs_at_once_one_refuses_naming_the_holder(tmp_path, loopback):
    srv, procs, results, run_dir = _two_runs_together(tmp_path, loopback)
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 4], results
    winner, loser = (0, 1) if results[0][0] == 0 else (1, 0)
    err = results[loser][2]
    assert f"pid {procs[winner].pid} on host {socket.gethostname()}" in err and "in use" in err
    assert "Traceback" not in err
    _every_item_once(srv, run_dir, 150)


def test_two_identical_runs_with_wait_for_lock_end_with_every_item_once(tmp_path, loopback):
    srv, procs, results, run_dir = _two_runs_together(tmp_path, loopback, "--wait-for-lock")
    assert [rc for rc, _, _ in results] == [0, 0], results
    # One ran everything; the other waited, then found all 150 done and asked for nothing.
    errs = [err for _, _, err in results]
    assert sum("150 of 150 samples already done" in e for e in errs) == 1, errs
    assert any("in use by another evalkit run" in e for e in errs)
    _every_item_once(srv, run_dir, 150)
    assert not (run_dir / LOCK_FILE).exists()


def test_a_run_killed_while_holding_the_lock_is_taken_over_on_resume(tmp_path, loopback):
    srv, cmd, proc, samples = start_300_item_run(tmp_path, loopback, lines=30)
    lock_file = samples.parent / LOCK_FILE
    assert json.loads(lock_file.read_text())["pid"] == proc.pid
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    rc, _, err = run_to_end(cmd)
    assert rc == 0, err
    assert f"took over the stale lock of {samples.parent}" in err and f"pid {proc.pid}" in err
    assert "no longer running" in err
    assert not lock_file.exists()
    ids = [s["id"] for s in iter_samples(samples)]
    assert len(ids) == 300 == len(set(ids))
