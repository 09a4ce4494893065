"""One run directory has one writer whatever each process's lock method (flock, or the exclusive lock
file of EVALKIT_LOCK=excl), and a holder whose lock was taken over (it stalled past the stale age)
notices before its next write and stops, keeping what it wrote (issue 29, item 1)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess

import pytest

import evalkit.core.lock as lock_mod
from evalkit.core.lock import EXCL_LOCK_FILE, LOCK_FILE, LockLost, RunLocked, live_holder, try_lock_run_dir
from evalkit.core.store import SampleWriter, iter_samples, write_json
from tests.conftest import ROOT, write_items
from tests.test_faults import finish, runner_cmd, wait_for_lines


def _take(path, method, monkeypatch):
    monkeypatch.setenv("EVALKIT_LOCK", method)
    return try_lock_run_dir(path)


@pytest.mark.parametrize("first, second", [("excl", "flock"), ("flock", "excl")])
def test_a_holder_of_either_method_refuses_a_taker_of_the_other(tmp_path, monkeypatch, first, second):
    held = _take(tmp_path, first, monkeypatch)
    try:
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            _take(tmp_path, second, monkeypatch)
        # The refused taker left no lock file of its own behind.
        other = LOCK_FILE if second == "flock" else EXCL_LOCK_FILE
        assert not (tmp_path / other).exists()
        assert live_holder(tmp_path) is not None and live_holder(tmp_path).pid == os.getpid()
    finally:
        held.release()
    with _take(tmp_path, second, monkeypatch) as again:  # free once released
        assert again.held and again.took_over is None


def test_a_flock_taker_takes_over_a_dead_holders_exclusive_lock_file(tmp_path, monkeypatch):
    proc = subprocess.Popen(["true"])
    proc.wait()
    (tmp_path / EXCL_LOCK_FILE).write_text(json.dumps({"pid": proc.pid, "host": os.uname().nodename}))
    with _take(tmp_path, "flock", monkeypatch) as held:
        assert held.method == "flock" and held.took_over is not None and held.took_over.pid == proc.pid
        assert not (tmp_path / EXCL_LOCK_FILE).exists()


def test_an_exclusive_holder_taken_over_stops_before_its_next_write(tmp_path, monkeypatch):
    first = _take(tmp_path, "excl", monkeypatch)
    writer = SampleWriter(tmp_path / "samples.jsonl")
    writer.write({"id": "before"})
    first.check()  # still its own
    # This holder stalled past the stale age; another host's run set its file aside and wrote its own.
    path = tmp_path / EXCL_LOCK_FILE
    os.rename(path, tmp_path / "aside")
    (tmp_path / "aside").unlink()
    path.write_text(json.dumps({"pid": 4242, "host": "node-elsewhere", "started_at": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(LockLost, match="taken over by pid 4242 on host node-elsewhere") as lost:
        writer.write({"id": "after"})
    assert "stopped before writing more" in str(lost.value)
    with pytest.raises(LockLost):
        write_json(tmp_path / "summary.json", {"complete": True})
    writer.close()
    assert [s["id"] for s in iter_samples(tmp_path)] == ["before"]  # kept, and nothing after
    assert not (tmp_path / "summary.json").exists()
    first.release()  # never removes the new holder's record
    assert json.loads(path.read_text())["host"] == "node-elsewhere"
    write_json(tmp_path / "summary.json", {})  # released: this process no longer guards the directory


def test_a_flock_holder_whose_lock_file_was_replaced_stops_and_leaves_the_new_one(tmp_path, monkeypatch):
    first = _take(tmp_path, "flock", monkeypatch)
    (tmp_path / LOCK_FILE).unlink()  # removed by hand while held: the next taker makes and locks a new one
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(LockLost):
            first.check()
        with pytest.raises(LockLost):
            SampleWriter(tmp_path / "samples.jsonl")
        first.release()
        assert (tmp_path / LOCK_FILE).exists()  # the new holder's file stays
    finally:
        os.close(fd)


def _start(cmd, **env):
    """A runner process (its own process group) with ENV added to the environment."""
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, **env})


@pytest.mark.parametrize("first, second", [("excl", "auto"), ("auto", "excl")])
def test_two_runs_with_different_lock_methods_one_refuses(tmp_path, loopback, first, second):
    data = write_items(tmp_path / "d.jsonl", 200)
    srv = loopback("--delay-s", "0.1")  # a run of about 5 s: the second starts well inside it
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "4")
    samples = tmp_path / "results" / "loopback-model" / "r" / "samples.jsonl"
    holder = _start(cmd, EVALKIT_LOCK=first)
    wait_for_lines(samples, 3, holder)
    rc, _, err = finish(_start(cmd, EVALKIT_LOCK=second), timeout=60)
    assert rc == 4 and "in use by another evalkit run" in err and f"pid {holder.pid}" in err, err
    rc, _, err = finish(holder, timeout=60)
    assert rc == 0, err
    ids = [s["id"] for s in iter_samples(samples)]
    assert len(ids) == 200 == len(set(ids))
    assert sum(srv.stats()["prompts"].values()) == 200  # no item asked twice


def test_a_stalled_run_whose_lock_was_taken_over_writes_nothing_more(tmp_path, loopback, monkeypatch):
    data = write_items(tmp_path / "d.jsonl", 150)
    srv = loopback("--delay-s", "0.05")
    cmd = runner_cmd(tmp_path, srv.url, data, "--concurrency", "4")
    run_dir = tmp_path / "results" / "loopback-model" / "r"
    proc = _start(cmd, EVALKIT_LOCK="excl")
    wait_for_lines(run_dir / "samples.jsonl", 20, proc)
    os.killpg(proc.pid, signal.SIGSTOP)  # the holder stalls (suspended, swapped out, a frozen NFS client)
    try:
        # Past the stale age another host's run takes the lock over (the holder's heartbeat stopped).
        monkeypatch.setenv("EVALKIT_LOCK", "excl")
        monkeypatch.setattr(lock_mod, "excl_record_is_stale", lambda *a, **k: True)
        new = try_lock_run_dir(run_dir)
        at_takeover = (run_dir / "samples.jsonl").read_bytes().count(b"\n")
        manifest = (run_dir / "manifest.json").read_bytes()
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    try:
        rc, _, err = finish(proc, timeout=60)
        after = (run_dir / "samples.jsonl").read_bytes().count(b"\n")
        assert rc == 4 and "was taken over" in err and "stopped before writing more" in err, err
        assert "Traceback" not in err
        # A write already past its check when the process stalled may land; nothing after it does.
        assert after - at_takeover <= 1, (at_takeover, after)
        assert len(list(iter_samples(run_dir))) == after  # what it wrote is whole, and kept
        assert (run_dir / "manifest.json").read_bytes() == manifest and not (run_dir / "summary.json").exists()
        assert json.loads((run_dir / EXCL_LOCK_FILE).read_text())["pid"] == os.getpid()  # the new holder's record
    finally:
        new.release()
