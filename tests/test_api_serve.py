"""The library starts, uses and stops a server the way the CLI does (a notebook's path).

Starts the real embedded llama.cpp server (SmolLM2-135M) on 127.0.0.1.
"""

from __future__ import annotations

import pytest

from evalkit import api
from evalkit.serving.backends import llamacpp
from evalkit.run.plan import config_on_server, resolve_config
from evalkit.serving import errors, probe, processes
from tests.conftest import ROOT, free_port, skip_unless_embedded_backend

pytestmark = pytest.mark.server

skip_unless_embedded_backend()


def test_serve_evaluate_and_stop_from_python(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("EVALKIT_API_KEY", raising=False)
    with api.served(backend="llamacpp", name="nb", port=free_port(), timeout_s=300) as server:
        assert server.backend == "llamacpp" and server.model == llamacpp.SMOLLM2_ALIAS
        assert probe.answers(server.base_url, server.model, timeout=30)
        (status,) = api.servers()
        assert status["name"] == "nb" and status["alive"] and status["state"] in ("ready", "busy")
        with pytest.raises(errors.ServerError, match="nb"):
            api.serve(backend="llamacpp", name="nb", port=free_port())  # the name is taken
        # The config picks the endpoint, model and backend defaults from the handle.
        config = config_on_server(server, eval_files=[str(ROOT / "eval_data" / "sample_medqa.jsonl")],
                                  limit=3, params=api.GenerationParams(max_new_tokens=8), results_dir=str(tmp_path / "results"))
        assert resolve_config(config).concurrency == 4  # the llama.cpp backend's default, as `evalkit run` has it
        result = api.evaluate(config)
        pid = server.pid
    assert result.total == 3 and result.errors == 0
    assert sum(d.n for d in result.summary.values()) == 3
    assert len(api.samples_frame(result.run_dir)) == 3
    assert not processes.process_alive(pid)  # stopped when the block ended
    assert api.servers() == []
