"""A real SGLang router in front of two real llama.cpp workers: `serve --replicas 2`,
`status --json`, a run that survives a worker killed mid-run, `stop`, and `--router
--worker-urls` in front of workers started elsewhere."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.serving.backends import Listener, llamacpp
from evalkit.serving import errors, probe, processes
from evalkit.serving.request import ServeRequest
from evalkit.core.store import read_samples
from tests.conftest import free_port, run_evalkit, write_items

pytestmark = pytest.mark.server


def _missing() -> str | None:
    if importlib.util.find_spec("sglang_router") is None:
        return "sglang-router is not installed: pip install -e '.[router]'"
    try:
        llamacpp.llama_server_binary()
        llamacpp.smollm2_gguf_path()
    except errors.ServerError as exc:
        return str(exc)
    return None


if (why := _missing()) and os.environ.get("EVALKIT_REQUIRE_SERVER") != "1":
    pytest.skip(why, allow_module_level=True)


def _can_listen(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listeners_of(pid: int) -> set[str]:
    """Local addresses PID listens on (from /proc/net/tcp via its socket inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                host_hex, port_hex = f[1].split(":")
                out.add(f"{host_hex}:{int(port_hex, 16)}")
    return out


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "EVALKIT_STATE_DIR": str(tmp_path / "state")}


def test_two_replicas_behind_the_router_survive_a_worker_killed_mid_run(tmp_path, env):
    port = free_port()
    out = run_evalkit("serve", "--backend", "llamacpp", "--replicas", "2", "--threads", "1", "--parallel", "2",
                  "--name", "rr", "--port", str(port), "--timeout", "300", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"http://127.0.0.1:{port}/v1"
    try:
        (row,) = json.loads(run_evalkit("status", "--json", env=env).stdout)
        roles = sorted(p["role"] for p in row["processes"])
        assert roles == ["router", "worker", "worker"] and all(p["alive"] for p in row["processes"])
        for p in row["processes"]:  # every listener, Prometheus included, on loopback only
            listens = _listeners_of(p["pid"])
            assert listens and all(a.startswith("0100007F:") for a in listens), (p["role"], listens)

        data = write_items(tmp_path / "forty.jsonl", 40)
        res = tmp_path / "res"
        run = subprocess.Popen([sys.executable, "-m", "evalkit", "run", "--eval-file", str(data), "--server", "rr",
                                "--max-new-tokens", "12", "--concurrency", "4", "--max-attempts", "10",
                                "--results-dir", str(res), "--quiet"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        victim = next(p for p in row["processes"] if p["role"] == "worker")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = sum(len(f.read_text().splitlines()) for f in res.glob("*/*/samples.jsonl"))
            if done >= 10:
                break
            assert run.poll() is None, run.communicate()
            time.sleep(0.2)
        os.kill(victim["pid"], signal.SIGKILL)  # a worker evalkit's test started, by its recorded pid
        stdout, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr
        (run_dir,) = res.glob("*/*")
        samples = read_samples(run_dir)
        ids = [s["id"] for s in samples]
        assert len(ids) == 40 and len(set(ids)) == 40
        assert all(not s.get("error") and s["output"] for s in samples)
        ports = [int(p["endpoint"].split(":")[2].split("/")[0]) for p in row["processes"]]
    finally:
        out = run_evalkit("stop", "--name", "rr", env=env)
    assert "stopped rr" in out.stderr
    for p in row["processes"]:
        assert not processes.process_alive(p["pid"])
    assert all(_can_listen(p) for p in ports)


def test_router_in_front_of_workers_started_elsewhere(tmp_path, env):
    wport = free_port()
    worker_cmd = llamacpp.LlamaCppBackend().command(ServeRequest(threads=1, parallel=2), None, llamacpp.SMOLLM2_ALIAS,
                                                     Listener("127.0.0.1", wport))
    worker = subprocess.Popen(worker_cmd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not probe.answers(f"http://127.0.0.1:{wport}/v1", llamacpp.SMOLLM2_ALIAS, timeout=10):
            assert worker.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        port = free_port()
        out = run_evalkit("serve", "--router", "--worker-urls", f"http://127.0.0.1:{wport}", "--name", "front",
                      "--port", str(port), "--timeout", "120", env=env)
        assert out.returncode == 0, out.stderr
        assert f"'{llamacpp.SMOLLM2_ALIAS}'" in out.stderr  # the model name asked of the worker
        handle = json.loads((Path(env["EVALKIT_STATE_DIR"]) / "front.json").read_text())
        assert handle["backend"] == "router" and handle["worker_urls"] == [f"http://127.0.0.1:{wport}"]
        assert [p["role"] for p in handle["processes"]] == ["router"]
        data = write_items(tmp_path / "few.jsonl", 3)
        out = run_evalkit("run", "--eval-file", str(data), "--server", "front", "--max-new-tokens", "8",
                      "--results-dir", str(tmp_path / "res"), "--quiet", env=env)
        assert out.returncode == 0, out.stderr
        out = run_evalkit("stop", "--name", "front", env=env)
        assert out.returncode == 0 and "stopped front" in out.stderr
        assert worker.poll() is None  # the router's stop leaves the worker it did not start alone
    finally:
        worker.terminate()
        worker.wait(timeout=30)
