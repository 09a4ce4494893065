"""A real one-node Slurm cluster for the tests: munged, slurmctld and slurmd on 127.0.0.1.

Everything lives in one temporary folder of its own: a munge key and socket, a
``slurm.conf`` with ports picked free, the daemons' state, pid and log files. Slurm's
commands find the cluster through ``$SLURM_CONF``; munge through ``AuthInfo=socket=``,
so a munged the machine may already run is neither used nor disturbed. The daemons are
stopped by the pids in their pid files, never by name.

It needs Debian's ``slurm-wlm`` and ``munge`` (``scripts/install_slurm.sh``) and root:
the daemons run as root and so do the jobs. ``start_cluster`` raises ``SlurmUnavailable``
with the reason where that is not so.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "squeue", "scancel", "sinfo", "srun", "munge")


class SlurmUnavailable(RuntimeError):
    """Slurm cannot run here (not installed, not root, or a daemon did not come up)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)),
                                       None)
    if not found:
        raise SlurmUnavailable(f"{name} is not installed (scripts/install_slurm.sh installs slurm-wlm and munge)")
    return found


def slurm_conf_text(root: Path, node: str, *, ctld_port: int, slurmd_port: int, cpus: int, memory_mb: int) -> str:
    """The cluster's slurm.conf: one node, one partition, all state under ROOT, no cgroups or accounting."""
    return "\n".join([
        "ClusterName=evalkit-test",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={slurmd_port}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root / 'munge.socket'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill",
        "MpiDefault=none",
        "SlurmUser=root",
        "SlurmdUser=root",
        "ReturnToService=2",
        "KillWait=15",  # seconds between scancel's SIGTERM and SIGKILL: the job stops its server
        "MinJobAge=600",  # finished jobs stay visible to squeue/scontrol this long
        "InactiveLimit=0",
        f"StateSaveLocation={root / 'ctld-state'}",
        f"SlurmdSpoolDir={root / 'slurmd-spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        f"PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


@dataclass
class SlurmCluster:
    """A running one-node cluster; ``env`` holds the variables Slurm's commands need."""

    root: Path
    node: str
    conf: Path
    started: list[tuple[str, Path]] = field(default_factory=list)  # (daemon, its pid file)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def command(self, *args: str, timeout: float = 30) -> "subprocess.CompletedProcess[str]":
        """Run a Slurm command against this cluster (output captured)."""
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env})

    def node_state(self) -> str:
        out = self.command("sinfo", "-h", "-N", "-o", "%T").stdout.strip()
        return out.splitlines()[0].strip() if out else ""

    def queue(self) -> dict[str, str]:
        """Job id -> state of the jobs the controller knows (finished ones for MinJobAge)."""
        out = self.command("squeue", "-h", "-t", "all", "-r", "-o", "%i %T").stdout
        return dict(line.split(None, 1) for line in out.splitlines() if line.strip())

    def log_tail(self, n: int = 20) -> str:
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            p = self.root / name
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-n:]
                parts.append(f"--- {p}\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel what is still queued, then stop the daemons (last started first) by their pid files."""
        try:
            self.command("scancel", "--full", "-u", str(os.getuid()), timeout=15)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(s in ("RUNNING", "COMPLETING", "PENDING")
                                                      for s in self.queue().values()):
                time.sleep(0.5)
        except (OSError, subprocess.SubprocessError):
            pass
        for daemon, pid_file in reversed(self.started):
            _stop_by_pid_file(daemon, pid_file)
        self.started.clear()
        shutil.rmtree(self.root, ignore_errors=True)  # its key, state and logs (a failed start quotes the logs)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _stop_by_pid_file(daemon: str, pid_file: Path, grace_s: float = 10.0) -> None:
    pid = _read_pid(pid_file)
    if pid is None or not _alive(pid):
        return
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return
    if comm != daemon[:15]:  # the pid was reused by another program: leave it alone
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _wait_for(what: str, check, timeout: float, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise SlurmUnavailable(f"{what} did not happen within {timeout:.0f} s\n{cluster.log_tail()}")


def _start_munged(root: Path) -> Path:
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    pid_file = root / "munged.pid"
    subprocess.run([_binary("munged"), "--force", f"--socket={root / 'munge.socket'}", f"--key-file={key}",
                    f"--pid-file={pid_file}", f"--log-file={root / 'munged.log'}",
                    f"--seed-file={root / 'munged.seed'}"], check=True, capture_output=True, timeout=30)
    return pid_file


def start_cluster(root: str | Path | None = None, *, timeout: float = 60.0) -> SlurmCluster:
    """Start munged, slurmctld and slurmd in ROOT (a fresh /tmp folder by default: munge's socket
    path must stay short) and wait until the node is idle; raises SlurmUnavailable with the reason."""
    if os.geteuid() != 0:
        raise SlurmUnavailable("a test Slurm cluster needs root (its daemons and jobs run as root)")
    for name in DAEMONS + COMMANDS:
        _binary(name)
    root = Path(root or tempfile.mkdtemp(prefix="evk-slurm-", dir="/tmp"))
    root.chmod(0o755)  # munged checks that its socket's folder is not writable by others
    for sub in ("ctld-state", "slurmd-spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    node = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf_text(root, node, ctld_port=free_port(), slurmd_port=free_port(), cpus=cpus,
                                    memory_mb=2000))
    cluster = SlurmCluster(root=root, node=node, conf=conf)
    try:
        cluster.started.append(("munged", _start_munged(root)))
        env = {**os.environ, **cluster.env}
        subprocess.run([_binary("slurmctld"), "-f", str(conf)], check=True, capture_output=True, timeout=30, env=env)
        cluster.started.append(("slurmctld", root / "slurmctld.pid"))
        subprocess.run([_binary("slurmd"), "-f", str(conf), "-N", node], check=True, capture_output=True,
                       timeout=30, env=env)
        cluster.started.append(("slurmd", root / "slurmd.pid"))
        _wait_for("the node becoming idle", lambda: cluster.node_state() in ("idle", "mixed"), timeout, cluster)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        cluster.stop()
        raise SlurmUnavailable(f"a Slurm daemon did not start: {exc} {detail}\n{cluster.log_tail()}") from exc
    except SlurmUnavailable:
        cluster.stop()
        raise
    return cluster
