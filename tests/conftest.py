"""Shared fixtures: isolated server state, a loopback test double, small datasets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serverproc import ServerProcess, free_port  # noqa: F401 (re-exported to tests)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EVALKIT_SHARED", ROOT.parent / "shared"))


def shared_dir() -> Path:
    """``../shared`` beside the repository, or $EVALKIT_SHARED."""
    return SHARED


def run_evalkit(*args: str, env: dict | None = None, timeout: float = 2400) -> "subprocess.CompletedProcess[str]":
    """``python -m evalkit ARGS`` in a child process, its output captured (TIMEOUT guards a hang)."""
    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def skip_unless_embedded_backend() -> None:
    """Skip the calling test module when llama-server or the SmolLM2 GGUF is not installed,
    unless EVALKIT_REQUIRE_SERVER=1 (CI, ``make test``): there a missing backend fails the tests."""
    from evalkit.serving.backends import llamacpp
    from evalkit.serving import errors

    if os.environ.get("EVALKIT_REQUIRE_SERVER") == "1":
        return
    try:
        llamacpp.llama_server_binary()
        llamacpp.smollm2_gguf_path()
    except errors.ServerError as exc:
        pytest.skip(f"embedded backend not installed ({exc}): make install", allow_module_level=True)


@pytest.fixture(scope="session")
def model_outputs() -> Path:
    path = SHARED / "model_outputs"
    if not path.is_dir():
        pytest.skip(f"shared model outputs not found at {path} (set EVALKIT_SHARED)")
    return path


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory, monkeypatch):
    """Every test gets its own server-state directory, so none sees a user's servers."""
    d = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("EVALKIT_STATE_DIR", str(d))
    return d


class Loopback(ServerProcess):
    """A running loopback test double (see tests/loopback_server.py)."""

    def __init__(self, *args: str, port: int | None = None):
        super().__init__(ROOT / "tests" / "loopback_server.py", *args, port=port)


@pytest.fixture
def loopback():
    """Start a loopback double with the given fault flags: ``srv = loopback("--fail-500", "0.2")``.

    ``port=`` restarts one on the port of a stopped one.
    """
    started: list[Loopback] = []

    def start(*args: str, port: int | None = None) -> Loopback:
        lb = Loopback(*args, port=port)
        started.append(lb)
        return lb

    yield start
    for lb in started:
        lb.stop()


def wait_for(predicate, timeout: float, what: str, poll: float = 0.2):
    """PREDICATE's first true value, asked every POLL seconds; AssertionError naming WHAT after TIMEOUT."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def write_items(path: Path, n: int, *, n_options: int = 4, start: int = 0) -> Path:
    """Write N valid MedQA-shaped items, with distinct questions, to PATH."""
    letters = "ABCDEFGHIJ"[:n_options]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(start, start + n):
            opts = {L: f"option {L} of question {i}" for L in letters}
            fh.write(json.dumps({"question": f"Question number {i}: which option?", "options": opts,
                                 "answer_idx": letters[i % n_options], "meta_info": "step1"}) + "\n")
    return path


@pytest.fixture
def items_file(tmp_path):
    return write_items(tmp_path / "tiny.jsonl", 12)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real one-node Slurm (tests/slurm_cluster.py) for the session; $SLURM_CONF points at it while
    it runs. Skipped with the reason where Slurm cannot run here (not installed, not root), unless
    EVALKIT_REQUIRE_SLURM=1 (CI), where that is a failure."""
    from tests.slurm_cluster import SlurmUnavailable, start_cluster

    try:
        cluster = start_cluster()
    except SlurmUnavailable as exc:
        if os.environ.get("EVALKIT_REQUIRE_SLURM") == "1":
            pytest.fail(f"EVALKIT_REQUIRE_SLURM=1 but no Slurm cluster could start: {exc}")
        pytest.skip(f"no Slurm cluster here ({exc}); scripts/install_slurm.sh installs it (as root)")
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved


def pytest_terminal_summary(terminalreporter):
    """Say loudly at the end when the sweep tests against a real Slurm were skipped, and why (they need
    slurm-wlm, munge and root: scripts/install_slurm.sh, which `make test` runs where it may)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "no Slurm cluster here" in str(r.longrepr)]
    if skipped:
        reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else str(skipped[0].longrepr)
        terminalreporter.write_sep("!", f"{len(skipped)} sweep tests against Slurm were SKIPPED", yellow=True,
                                   bold=True)
        terminalreporter.write_line(f"why: {reason}")
