"""The test Slurm cluster itself: a job array runs through sbatch, and stopping leaves no daemon."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.slurm_cluster import _alive, _read_pid, slurm_conf_text

pytestmark = pytest.mark.slurm


def test_conf_names_its_own_ports_and_folder(tmp_path):
    text = slurm_conf_text(tmp_path, "node1", ctld_port=7001, slurmd_port=7002, cpus=2, memory_mb=1000)
    assert "SlurmctldPort=7001" in text and "SlurmdPort=7002" in text
    assert f"AuthInfo=socket={tmp_path / 'munge.socket'}" in text
    assert "NodeName=node1 NodeAddr=127.0.0.1 CPUs=2" in text


def test_job_array_runs(slurm_cluster, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID\n")
    out = slurm_cluster.command("sbatch", "--array=0-2", "-c", "1", "-o", str(tmp_path / "o_%a.txt"), str(script))
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(tmp_path.glob("o_*.txt"))) < 3:
        time.sleep(0.3)
    while time.monotonic() < deadline and any(s != "COMPLETED" for s in slurm_cluster.queue().values()):
        time.sleep(0.3)
    texts = sorted(p.read_text().strip() for p in tmp_path.glob("o_*.txt"))
    assert texts == ["task 0", "task 1", "task 2"]


def test_pid_files_name_live_daemons(slurm_cluster):
    for daemon, pid_file in slurm_cluster.started:
        pid = _read_pid(Path(pid_file))
        assert pid is not None and _alive(pid), daemon
