"""scripts/test_deps.sh (run by `make test`) installs Slurm for the sweep tests the way it installs
Chromium (root with apt-get), or says loudly that those tests will be skipped and why (issue 29,
item 17). apt-get, id and chromium are stand-ins here: nothing is installed."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Installed already (CI runs scripts/install_slurm.sh first): then there is nothing to install or to warn about.
SLURM_HERE = all(os.path.exists(f"/usr/sbin/{p}") for p in ("slurmctld", "slurmd", "munged"))


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run(tmp_path: Path, uid: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "apt.log"
    _stub(bin_, "id", f"echo {uid}")
    _stub(bin_, "apt-get", f'echo "$*" >> {log}')
    _stub(bin_, "chromium", "exit 0")
    env = {**os.environ, "PATH": f"{bin_}:/usr/bin:/bin"}
    res = subprocess.run(["bash", str(ROOT / "scripts" / "test_deps.sh")], capture_output=True, text=True,
                         env=env, timeout=60)
    return res, (log.read_text().splitlines() if log.exists() else [])


def test_as_root_with_apt_it_installs_slurm_and_munge_like_chromium(tmp_path):
    res, calls = _run(tmp_path, 0)
    assert res.returncode == 0, res.stderr
    if SLURM_HERE:  # already installed (CI): nothing to do
        assert calls == []
    else:
        assert "install -y -qq slurm-wlm munge" in calls and "installing slurm-wlm and munge" in res.stdout


def test_without_root_it_says_loudly_that_the_slurm_tests_are_skipped(tmp_path):
    res, calls = _run(tmp_path, 1000)
    assert res.returncode == 0 and calls == []
    if not SLURM_HERE:
        assert "WARNING" in res.stderr and "sweep tests against Slurm will be SKIPPED" in res.stderr
        assert "needs root with apt-get" in res.stderr
