"""The exclusive-lock-file fallback of the run-directory lock (NFS without working flock, Lustre,
EVALKIT_LOCK=excl): one holder at a time, a dead holder's file taken over, another host's file
only once its heartbeat stopped, and detection of NFS mounts whose flock is local to each client."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import subprocess
import sys
import time

import pytest

import evalkit.core.lock as lock_mod
from evalkit.core.lock import (EXCL_LOCK_FILE, LOCK_FILE, LockHolder, RunLocked, excl_record_is_stale,
                          flock_is_local_only, lock_method, mount_of, took_over_message, try_lock_run_dir)
from evalkit.core.liveness import proc_start_time

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
fs1:/export /shared nfs4 rw,vers=4.2,local_lock=none,addr=10.0.0.1 0 0
fs2:/scratch /shared/scratch nfs rw,vers=3,nolock,addr=10.0.0.2 0 0
fs3:/old /old\\040data nfs rw,vers=3,local_lock=all 0 0
"""


@pytest.fixture
def excl(monkeypatch):
    monkeypatch.setenv("EVALKIT_LOCK", "excl")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_nfs_mounts_whose_flock_is_local_are_detected():
    assert mount_of("/shared/scratch/run1", MOUNTS)[0] == "/shared/scratch"  # the longest mount point
    assert mount_of("/shared/run1", MOUNTS)[1] == "nfs4"
    assert mount_of("/old data/x", MOUNTS)[0] == "/old data"
    assert [flock_is_local_only(*mount_of(p, MOUNTS)[1:]) for p in ("/shared/r", "/shared/scratch/r", "/old data/r",
                                                                     "/home/r")] == [False, True, True, False]


def test_lock_method_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_LOCK", "excl")
    assert lock_method(tmp_path)[0] == "excl"
    monkeypatch.setenv("EVALKIT_LOCK", "flock")
    assert lock_method(tmp_path) == ("flock", None)
    monkeypatch.delenv("EVALKIT_LOCK")
    assert lock_method(tmp_path) == ("flock", None)  # a local filesystem


def test_an_exclusive_lock_file_refuses_a_second_taker_and_is_removed_on_release(tmp_path, excl):
    with try_lock_run_dir(tmp_path) as held:
        assert held.held and held.method == "excl" and not (tmp_path / LOCK_FILE).exists()
        record = json.loads((tmp_path / EXCL_LOCK_FILE).read_text())
        assert record["pid"] == os.getpid() and record["pid_start"] == proc_start_time(os.getpid())
        with pytest.raises(RunLocked, match=f"pid {os.getpid()} on host {socket.gethostname()}"):
            try_lock_run_dir(tmp_path)
    assert not (tmp_path / EXCL_LOCK_FILE).exists()
    with try_lock_run_dir(tmp_path) as again:
        assert again.took_over is None


def test_a_dead_holders_lock_file_is_taken_over_and_said_so(tmp_path, excl):
    pid = _dead_pid()
    (tmp_path / EXCL_LOCK_FILE).write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                                       "started_at": "2026-01-01T00:00:00+00:00"}))
    with try_lock_run_dir(tmp_path) as held:
        assert held.took_over.pid == pid
        assert "stale lock" in took_over_message(held)
        assert json.loads((tmp_path / EXCL_LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not list(tmp_path.glob(EXCL_LOCK_FILE + ".stale.*"))


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path, excl):
    # Our own pid, but with another start time: the process that held it is gone.
    (tmp_path / EXCL_LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                       "pid_start": (proc_start_time(os.getpid()) or 0) + 1}))
    with try_lock_run_dir(tmp_path) as held:
        assert held.took_over is not None


def test_another_hosts_lock_file_is_stale_only_once_its_heartbeat_stopped(tmp_path, excl):
    path = tmp_path / EXCL_LOCK_FILE
    path.write_text(json.dumps({"pid": 1, "host": "node-elsewhere", "started_at": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(RunLocked, match="node-elsewhere"):
        try_lock_run_dir(tmp_path)
    old = time.time() - lock_mod.STALE_AFTER_S - 5
    os.utime(path, (old, old))
    with try_lock_run_dir(tmp_path) as held:
        assert held.took_over.host == "node-elsewhere"


def test_staleness_rule():
    here = socket.gethostname()
    alive = LockHolder(pid=os.getpid(), host=here, pid_start=proc_start_time(os.getpid()))
    assert not excl_record_is_stale(alive, 10_000, here=here)  # alive here: never stale, however old
    assert excl_record_is_stale(LockHolder(pid=_dead_pid(), host=here), 0, here=here)
    assert not excl_record_is_stale(LockHolder(pid=5, host="other"), 30, here=here)
    assert excl_record_is_stale(LockHolder(pid=5, host="other"), lock_mod.STALE_AFTER_S + 1, here=here)
    assert not excl_record_is_stale(None, 1, here=here)  # a record being written right now


def test_the_holder_keeps_its_file_fresh(tmp_path, excl, monkeypatch):
    monkeypatch.setattr(lock_mod, "HEARTBEAT_S", 0.1)
    with try_lock_run_dir(tmp_path):
        path = tmp_path / EXCL_LOCK_FILE
        os.utime(path, (1, 1))
        deadline = time.time() + 5
        while time.time() < deadline and path.stat().st_mtime < 10:
            time.sleep(0.05)
        assert path.stat().st_mtime > time.time() - 60


def test_a_filesystem_refusing_flock_falls_back_to_the_lock_file(tmp_path, monkeypatch):
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with try_lock_run_dir(tmp_path) as held:
        assert held.method == "excl" and (tmp_path / EXCL_LOCK_FILE).exists()
        assert "ENOLCK" in took_over_message(held)
        with pytest.raises(RunLocked):
            try_lock_run_dir(tmp_path)


def test_one_winner_among_processes_racing_for_a_stale_lock(tmp_path):
    pid = _dead_pid()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / EXCL_LOCK_FILE).write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    release = tmp_path / "release"
    script = ("import os, sys, time; from evalkit.core.lock import try_lock_run_dir, RunLocked\n"
              "try:\n    l = try_lock_run_dir(sys.argv[1]); print('won', flush=True)\n"
              "    while not os.path.exists(sys.argv[2]): time.sleep(0.05)\n    l.release()\n"
              "except RunLocked:\n    print('refused', flush=True)\n")
    env = {**os.environ, "EVALKIT_LOCK": "excl"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(run_dir), str(release)], stdout=subprocess.PIPE,
                              text=True, env=env) for _ in range(4)]
    try:
        outs = [p.stdout.readline().strip() for p in procs]  # every one has tried while the winner holds it
    finally:
        release.touch()
        for p in procs:
            p.communicate(timeout=60)
    assert sorted(outs) == ["refused", "refused", "refused", "won"]
    assert not (run_dir / EXCL_LOCK_FILE).exists()
