"""A backend from outside the package (tests/toy_backend.py, serving tests/toy_server.py) goes
through serve -> status -> run -> stop with no edit to evalkit."""

from __future__ import annotations

import json
import os
from pathlib import Path

from evalkit.core.liveness import process_alive
from evalkit.core.store import read_json, read_samples
from tests.conftest import ROOT, free_port, run_evalkit

TOY = "tests.toy_backend:ToyBackend"


def _env(state: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "EVALKIT_STATE_DIR": str(state), "PYTHONPATH": path}
    env.pop("EVALKIT_API_KEY", None)
    return env


def test_a_backend_from_outside_evalkit_serves_runs_and_stops(tmp_path, isolated_state):
    env = _env(isolated_state)
    port = free_port()
    out = run_evalkit("serve", "--backend", TOY, "--name", "toy", "--port", str(port), "--timeout", "60", env=env,
                      timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"http://127.0.0.1:{port}/v1"
    assert "0.1-toy" in out.stderr  # the version its identity probe read from /health
    record = json.loads((isolated_state / "toy.json").read_text())
    assert record["backend"] == TOY and record["model"] == "toy-model" and record["server_version"] == "0.1-toy"
    (proc,) = record["processes"]
    try:
        (row,) = json.loads(run_evalkit("status", "--json", env=env, timeout=60).stdout)
        assert row["name"] == "toy" and row["backend"] == TOY and row["alive"] and row["state"] == "ready"

        results = tmp_path / "results"
        out = run_evalkit("run", "--eval-file", str(ROOT / "eval_data" / "sample_medqa.jsonl"), "--limit", "4",
                          "--server", "toy", "--results-dir", str(results), "--quiet", env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        (run_dir,) = {p.parent for p in results.rglob("manifest.json")}
        manifest = read_json(run_dir / "manifest.json")
        assert manifest["backend"] == TOY and manifest["model"] == "toy-model"
        assert manifest["concurrency"] == 3  # the toy backend's default, not evalkit's
        assert manifest["server"]["source"] == "evalkit serve" and manifest["server"]["reported"]["engine"] == "toy"
        samples = read_samples(run_dir)
        assert len(samples) == 4 and all(s["output"].startswith("The answer is ") for s in samples)
        assert all(s["pred"] in "ABCDE" and not s.get("error") for s in samples)
    finally:
        out = run_evalkit("stop", "--name", "toy", env=env, timeout=60)
    assert out.returncode == 0 and "stopped toy" in out.stderr
    assert not process_alive(proc["pid"]) and not (isolated_state / "toy.json").exists()
    assert run_evalkit("status", "--json", env=env, timeout=60).stdout.strip() == "[]"
