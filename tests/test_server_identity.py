"""What was served: the model's name from its checkpoint, its content hash, the engine's
version, and the server's state as `status` tells it."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.serving import backends
from evalkit.serving.backends import Listener, get_backend, llamacpp
from evalkit.serving import checkpoint, launch, plan, processes, state
from evalkit.serving.request import ServeRequest
from evalkit.cli import main
from tests.conftest import ROOT, free_port


def test_served_name_comes_from_the_checkpoint(tmp_path):
    gguf = tmp_path / "my-finetune.Q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    folder = tmp_path / "MedReason-8B"
    folder.mkdir()
    assert checkpoint.name_from_path(str(gguf)) == "my-finetune.Q8_0"
    assert checkpoint.name_from_path(str(folder) + "/") == "MedReason-8B"
    assert checkpoint.name_from_path("UCSC-VLAA/MedReason-8B") == "UCSC-VLAA/MedReason-8B"
    for name in ("llamacpp", "vllm", "sglang"):
        backend = get_backend(name)
        assert backend.served_model(str(gguf), ServeRequest()) == "my-finetune.Q8_0"
        assert backend.served_model(str(gguf), ServeRequest(served_model_name="mine")) == "mine"


def test_the_embedded_name_only_for_the_embedded_file(tmp_path):
    embedded = llamacpp.smollm2_gguf_path()
    backend = get_backend("llamacpp")
    assert backend.served_model(None, ServeRequest()) == llamacpp.SMOLLM2_ALIAS
    assert backend.served_model(str(embedded), ServeRequest()) == llamacpp.SMOLLM2_ALIAS
    copy = tmp_path / "renamed.gguf"
    copy.write_bytes(embedded.read_bytes()[:1024])
    assert backend.served_model(str(copy), ServeRequest()) == "renamed"
    assert get_backend("vllm").served_model(str(embedded), ServeRequest()) == embedded.stem  # only llama.cpp's alias


def test_checkpoint_hash_of_a_file_and_of_an_hf_folder(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"weights" * 1000)
    assert checkpoint.checkpoint_hash(f) == {"kind": "file", "sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
                                      "bytes": 7000}
    d = tmp_path / "hf"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}')
    (d / "model.safetensors.index.json").write_text('{"weight_map": {}}')
    h = checkpoint.checkpoint_hash(d)
    assert h["config_sha256"] == hashlib.sha256(b'{"model_type": "llama"}').hexdigest()
    assert h["weight_index_sha256"] == hashlib.sha256(b'{"weight_map": {}}').hexdigest()
    (d / "config.json").write_text('{"model_type": "qwen"}')
    assert checkpoint.checkpoint_hash(d)["config_sha256"] != h["config_sha256"]
    assert checkpoint.checkpoint_hash("org/some-model") == {"kind": "hub-id"}


def test_plan_for_a_renamed_gguf_names_and_hashes_that_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_LLAMA_SERVER", "/opt/llama-server")
    gguf = tmp_path / "my-finetune.gguf"
    gguf.write_bytes(b"not really a model")
    p = plan.plan(ServeRequest(backend="llamacpp", model_path=str(gguf), port=free_port(),
                                          api_key="sk-secret"))
    assert p.model == "my-finetune" and p.model_hash["sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    (spec,) = p.specs
    assert spec.command[0] == "/opt/llama-server" and "sk-secret" not in " ".join(spec.command)
    assert spec.env == {"LLAMA_API_KEY": "sk-secret"}
    assert spec.command[spec.command.index("--alias") + 1] == "my-finetune"


def test_plan_for_replicas_puts_every_listener_on_loopback(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_LLAMA_SERVER", "/opt/llama-server")
    p = plan.plan(ServeRequest(backend="llamacpp", replicas=2, threads=1))
    workers, router = p.specs[:-1], p.specs[-1]
    assert [w.role for w in workers] == ["worker", "worker"] and router.role == "router"
    assert all(w.command[w.command.index("-t") + 1] == "1" for w in workers)
    cmd = router.command
    assert cmd[1:3] == ["-m", "sglang_router.launch_router"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--prometheus-host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--prometheus-port") + 1] != "29000"
    urls = cmd[cmd.index("--worker-urls") + 1: cmd.index("--policy")]
    assert urls == [f"http://127.0.0.1:{w.port}" for w in workers] == p.worker_urls
    assert cmd[cmd.index("--policy") + 1] == "round_robin"


def test_vllm_command_has_its_users_flags(tmp_path):
    req = ServeRequest(backend="vllm", model_path="/ckpt/m", tensor_parallel_size=2, data_parallel_size=4,
                       gpu_memory_utilization=0.85, max_model_len=8192, dtype="bfloat16", reasoning_parser="deepseek_r1",
                       enforce_eager=True, extra_args=["--seed", "1"], engine_python="py", api_key="sk-v")
    cmd = get_backend("vllm").command(req, "/ckpt/m", "m", Listener("127.0.0.1", 8001))
    assert cmd[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    flags = dict(zip(cmd[3::1], cmd[4::1]))
    assert flags["--model"] == "/ckpt/m" and flags["--tensor-parallel-size"] == "2"
    assert flags["--data-parallel-size"] == "4" and flags["--gpu-memory-utilization"] == "0.85"
    assert flags["--max-model-len"] == "8192" and flags["--dtype"] == "bfloat16"
    assert flags["--reasoning-parser"] == "deepseek_r1" and flags["--served-model-name"] == "m"
    assert "--enforce-eager" in cmd and cmd[-2:] == ["--seed", "1"]
    assert not any("key" in c.lower() for c in cmd)


class _FakeEngine(BaseHTTPRequestHandler):
    """llama-server's self-description endpoints, with slots that say they are busy."""

    busy = False

    def do_GET(self):  # noqa: N802
        routes = {
            "/v1/models": {"object": "list", "data": [{"id": "fake-model", "owned_by": "llamacpp"}]},
            "/props": {"build_info": "b9999-abcdef", "model_path": "/m/fake.gguf", "total_slots": 4},
            "/slots": [{"id": 0, "is_processing": self.busy}, {"id": 1, "is_processing": False}],
        }
        if self.path not in routes:
            self.send_error(404)
            return
        body = json.dumps(routes[self.path]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_engine():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FakeEngine)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()
    _FakeEngine.busy = False


def test_endpoint_identity_from_what_the_endpoint_reports(fake_engine):
    ident = plan.endpoint_identity(fake_engine)
    assert ident["source"] == "endpoint"
    rep = ident["reported"]
    assert rep["engine"] == "llama.cpp" and rep["engine_version"] == "b9999-abcdef"
    assert rep["models"] == [{"id": "fake-model", "owned_by": "llamacpp"}]
    assert rep["props"]["model_path"] == "/m/fake.gguf"


def test_endpoint_identity_of_an_unreachable_endpoint_is_just_its_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert plan.endpoint_identity(url, timeout=1) == {"base_url": url, "source": "endpoint", "reported": {}}


def test_endpoint_identity_from_the_state_record(tmp_path):
    port = free_port()
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"abc")
    launch.start_server([sys.executable, str(ROOT / "tests" / "loopback_server.py"), "--port", str(port)], name="idn",
                     backend="llamacpp", host="127.0.0.1", port=port, model="loopback-model",
                     log_path=tmp_path / "i.log", api_key="sk-hidden", model_path=str(gguf),
                     model_hash=checkpoint.checkpoint_hash(gguf))
    try:
        ident = plan.endpoint_identity(f"http://127.0.0.1:{port}/v1")
        assert ident["source"] == "evalkit serve" and ident["name"] == "idn"
        assert ident["model_path"] == str(gguf) and ident["model_hash"]["sha256"] == hashlib.sha256(b"abc").hexdigest()
        assert ident["command"][1].endswith("loopback_server.py") and "sk-hidden" not in json.dumps(ident)
    finally:
        launch.stop_server("idn")


def test_status_says_busy_from_a_cheap_probe(fake_engine):
    assert backends.probe_status(fake_engine) == "ready"
    _FakeEngine.busy = True
    assert backends.probe_status(fake_engine) == "busy"
    assert backends.probe_status(f"http://127.0.0.1:{free_port()}/v1", timeout=1) == "not answering"


def test_status_json_lists_every_process(tmp_path):
    port = free_port()
    h = launch.start_server([sys.executable, str(ROOT / "tests" / "loopback_server.py"), "--port", str(port)],
                         name="st", backend="llamacpp", host="127.0.0.1", port=port, model="loopback-model",
                         log_path=tmp_path / "s.log")
    try:
        res = CliRunner().invoke(main, ["status", "--json"])
        assert res.exit_code == 0, res.output
        (row,) = json.loads(res.output)
        assert row["name"] == "st" and row["alive"] and row["state"] == "ready"
        assert [(p["role"], p["pid"], p["alive"]) for p in row["processes"]] == [("server", h.pid, True)]
    finally:
        launch.stop_server("st")
    res = CliRunner().invoke(main, ["status", "--json"])
    assert json.loads(res.output) == []


def test_a_state_record_written_before_processes_existed_still_loads(tmp_path):
    d = Path(state.state_dir())
    d.mkdir(parents=True, exist_ok=True)
    (d / "old.json").write_text(json.dumps({
        "name": "old", "backend": "llamacpp", "pid": 1, "pgid": 1, "host": "127.0.0.1", "port": 1, "model": "m",
        "command": ["x"], "log_path": "", "started_at": "", "extra": {}}))
    (h,) = state.list_states()
    assert h.records()[0].start_time is None and not processes.server_running(h)  # never signalled: unprovable


def test_sglang_replicas_use_the_routers_co_launch_with_every_listener_on_loopback():
    req = ServeRequest(backend="sglang", model_path="/ckpt/MedReason-8B", replicas=4, api_key="sk-x",
                       engine_python="py")
    cmd = get_backend("sglang").replicas_command(req, "/ckpt/MedReason-8B", "MedReason-8B",
                                                 Listener("127.0.0.1", 30000, share=4))
    assert cmd[:3] == ["py", "-m", "sglang_router.launch_server"]
    assert cmd[cmd.index("--dp-size") + 1] == "4" and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--tp-size") + 1] == "1" and "--tp" not in cmd
    assert cmd[cmd.index("--router-prometheus-host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--served-model-name") + 1] == "MedReason-8B"
    assert cmd[cmd.index("--api-key") + 1] == "sk-x"  # SGLang has no environment variable for it


class _Routes(BaseHTTPRequestHandler):
    """GET routes from the class's ``routes`` (path -> (content type, body))."""

    routes: dict[str, tuple[str, str]] = {}

    def do_GET(self):  # noqa: N802
        if self.path not in self.routes:
            self.send_error(404)
            return
        ctype, text = self.routes[self.path]
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve_routes(routes: dict[str, tuple[str, str]]) -> tuple[ThreadingHTTPServer, str]:
    handler = type("Handler", (_Routes,), {"routes": routes})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def test_each_engines_load_probe_reads_its_own_endpoint():
    models = ("application/json", json.dumps({"data": [{"id": "m", "owned_by": "vllm"}]}))
    metrics = "# HELP x\nvllm:num_requests_running{model_name=\"m\"} 3.0\n"
    httpd, url = _serve_routes({"/v1/models": models, "/metrics": ("text/plain", metrics),
                                "/version": ("application/json", '{"version": "0.99"}')})
    try:
        assert get_backend("vllm").load(url, api_key=None, timeout=2) == "busy"
        assert get_backend("sglang").load(url, api_key=None, timeout=2) is None  # not its gauge
        assert backends.probe_status(url, timeout=2) == "busy"  # engine unknown: every probe in turn
        assert backends.reported_identity(url, timeout=2)["engine_version"] == "0.99"
    finally:
        httpd.shutdown()
        httpd.server_close()
    workers = json.dumps({"workers": [{"url": "http://127.0.0.1:1", "load": 2}]})
    httpd, url = _serve_routes({"/v1/models": models, "/workers": ("application/json", workers)})
    try:
        assert get_backend("router").load(url, api_key=None, timeout=2) == "busy"
        assert backends.probe_status(url, timeout=2, backend=get_backend("llamacpp")) == "busy"  # a front it does not describe
    finally:
        httpd.shutdown()
        httpd.server_close()
