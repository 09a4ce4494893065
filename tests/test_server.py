"""The launcher: the commands it builds, and the lifecycle of the processes it starts."""

import os
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from evalkit.serving.backends import Listener, backend_names, choose_backend, get_backend, llamacpp
from evalkit.config import DEFAULT_CONCURRENCY
from evalkit.run.plan import backend_concurrency
from evalkit.serving import errors, launch, probe, processes, state
from evalkit.serving.request import ServeRequest


def _sglang_command(**settings) -> list[str]:
    req = ServeRequest(backend="sglang", **{"engine_python": "python", **settings})
    return get_backend("sglang").command(req, req.model_path, "medreason", Listener(req.host, req.port or 30000))


def test_sglang_command_uses_sglangs_declared_flag_names_and_passes_extra_args():
    cmd = _sglang_command(model_path="/ckpt/MedReason-8B", extra_args=["--context-length", "8192"])
    assert cmd == ["python", "-m", "sglang.launch_server", "--model-path", "/ckpt/MedReason-8B", "--dp-size", "8",
                   "--tp-size", "1", "--host", "127.0.0.1", "--port", "30000", "--mem-fraction-static", "0.8",
                   "--served-model-name", "medreason", "--context-length", "8192"]
    assert "--dp" not in cmd and "--tp" not in cmd  # argparse abbreviations SGLang never declared


def test_sglang_command_settings_and_key_redaction():
    cmd = _sglang_command(model_path="m", dp=2, tp=4, mem_fraction_static=0.7, host="0.0.0.0", port=1234,
                          api_key="s3cret", engine_python="py")
    assert cmd[0] == "py" and cmd[cmd.index("--host") + 1] == "0.0.0.0" and cmd[cmd.index("--port") + 1] == "1234"
    assert cmd[cmd.index("--dp-size") + 1] == "2" and cmd[cmd.index("--tp-size") + 1] == "4"
    assert cmd[cmd.index("--mem-fraction-static") + 1] == "0.7"
    assert cmd[cmd.index("--served-model-name") + 1] == "medreason"
    assert cmd[cmd.index("--api-key") + 1] == "s3cret"
    shown = processes.redact(cmd, "s3cret")
    assert "s3cret" not in shown and shown[shown.index("--api-key") + 1] == processes.REDACTED


def test_llamacpp_command_is_llama_server_with_parallel_slots_and_no_key(monkeypatch):
    monkeypatch.setenv("EVALKIT_LLAMA_SERVER", "llama-server")
    req = ServeRequest(backend="llamacpp", n_ctx=2048, parallel=4, threads=2, api_key="s3cret")
    cmd = get_backend("llamacpp").command(req, "/m.gguf", llamacpp.SMOLLM2_ALIAS, Listener("127.0.0.1", 9))
    assert cmd[0] == "llama-server"
    assert cmd[cmd.index("-m") + 1] == "/m.gguf"
    assert cmd[cmd.index("--alias") + 1] == llamacpp.SMOLLM2_ALIAS
    assert cmd[cmd.index("--parallel") + 1] == "4"
    assert cmd[cmd.index("-c") + 1] == str(2048 * 4)  # llama-server splits -c between its slots
    assert cmd[cmd.index("--port") + 1] == "9" and cmd[cmd.index("-t") + 1] == "2"
    assert not any("key" in part.lower() for part in cmd)
    keyed = ServeRequest(api_key="s3cret")
    assert get_backend("llamacpp").environment(keyed) == {"LLAMA_API_KEY": "s3cret"}
    assert get_backend("vllm").environment(keyed)["VLLM_API_KEY"] == "s3cret"
    assert get_backend("sglang").environment(keyed) == {}  # SGLang takes it only as --api-key


def test_llamacpp_threads_are_the_cores_but_one_shared_among_replicas(monkeypatch):
    monkeypatch.setenv("EVALKIT_LLAMA_SERVER", "llama-server")
    monkeypatch.setattr("os.cpu_count", lambda: 9)
    backend = get_backend("llamacpp")
    threads = [backend.command(ServeRequest(), "/m.gguf", "m", Listener("127.0.0.1", 9, share=n))[-1]
               for n in (1, 2, 16)]
    assert threads == ["8", "4", "1"]


def test_auto_backend_without_gpus_is_llamacpp(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    backend, why = choose_backend("auto")
    assert backend.name == "llamacpp" and "no CUDA GPU" in why
    assert choose_backend("sglang")[0].name == "sglang"
    assert choose_backend("vllm")[0].name == "vllm"
    with pytest.raises(errors.ServerError, match="unknown backend"):
        choose_backend("nope")


def test_a_backend_reference_that_is_not_a_backend_is_refused_by_name():
    with pytest.raises(errors.ServerError, match="cannot import 'no_such_module'"):
        get_backend("no_such_module:Thing")
    with pytest.raises(errors.ServerError, match="has no attribute 'Nope'"):
        get_backend("tests.toy_backend:Nope")
    with pytest.raises(errors.ServerError, match="'tests.toy_backend:TOY_SERVER' is not a backend: it lacks default_port"):
        get_backend("tests.toy_backend:TOY_SERVER")
    assert get_backend("tests.toy_backend:ToyBackend").name == "toy"


def test_each_backend_declares_its_port_and_client_concurrency():
    ports = {name: get_backend(name).default_port for name in backend_names()}
    assert ports == {"llamacpp": 8321, "router": 30080, "sglang": 30000, "vllm": 8000}
    assert get_backend("llamacpp").default_concurrency == 4
    assert backend_concurrency("llamacpp") == 4 and backend_concurrency("sglang") == DEFAULT_CONCURRENCY
    assert backend_concurrency(None) == backend_concurrency("no.such.module:Thing") == DEFAULT_CONCURRENCY
    assert backend_concurrency("tests.toy_backend:ToyBackend") == 3  # a backend from outside evalkit



ENTRY_POINTS = {
    "the base alone": "from evalkit.serving.backends.base import backend_names, get_backend",
    "an engine's module": "from evalkit.serving.backends.vllm import VLLMBackend\n"
                          "from evalkit.serving.backends.base import backend_names, get_backend",
    "a backend from outside evalkit": "from tests.toy_backend import ToyBackend\n"
                                      "from evalkit.serving.backends.base import backend_names, get_backend",
    "the serving plan": "from evalkit.serving.plan import get_backend\n"
                        "from evalkit.serving.backends.base import backend_names",
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_way_in_finds_the_built_in_engines(entry):
    """The base imports no engine: the package's __init__ lists them, and importing any module of the
    package runs it first. A fresh process (a job, a server's child) finds them whichever module it
    imports first; a ``module:attr`` backend loads beside them."""
    import subprocess

    body = (ENTRY_POINTS[entry] + "\nprint(backend_names(), get_backend('llamacpp').name, "
            "get_backend('tests.toy_backend:ToyBackend').name)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "['llamacpp', 'router', 'sglang', 'vllm'] llamacpp toy"

def _loopback_command(port: int) -> list[str]:
    return [sys.executable, str(ROOT / "tests" / "loopback_server.py"), "--port", str(port)]


def test_start_records_state_and_stop_ends_the_whole_group(tmp_path):
    port = free_port()
    handle = launch.start_server(_loopback_command(port), name="t", backend="llamacpp", host="127.0.0.1", port=port,
                                 model="loopback-model", log_path=tmp_path / "t.log", api_key="k3y", timeout_s=30)
    record = Path(os.environ["EVALKIT_STATE_DIR"]) / "t.json"
    try:
        assert record.exists() and "k3y" not in record.read_text()
        assert state.resolve_endpoint().base_url == f"http://127.0.0.1:{port}/v1"
        assert os.getpgid(handle.pid) == handle.pgid == handle.pid  # its own process group
        assert probe.answers(handle.base_url, "loopback-model")
    finally:
        result = launch.stop_server("t", grace_s=5)  # stopped even when an assertion above fails
    assert result.was_running
    assert not processes.group_alive(handle.pgid)
    assert not record.exists()
    assert launch.stop_server("t") is None


def test_stop_kills_a_group_that_ignores_term(tmp_path):
    # A leader that ignores SIGTERM and has a child: both must be gone after stop.
    port = free_port()
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal, subprocess, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"subprocess.Popen([sys.executable, '-c', 'import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        f"import runpy; sys.argv = ['x', '--port', '{port}']\n"
        f"runpy.run_path({str(ROOT / 'tests' / 'loopback_server.py')!r}, run_name='__main__')\n"
    )
    cmd = [sys.executable, str(script)]
    handle = launch.start_server(cmd, name="s", backend="llamacpp", host="127.0.0.1", port=port,
                              model="loopback-model", log_path=tmp_path / "s.log", timeout_s=30)
    t0 = time.monotonic()
    assert launch.stop_server("s", grace_s=1.0).was_running
    assert time.monotonic() - t0 < 15
    assert not processes.group_alive(handle.pgid)


def test_a_server_that_exits_gives_its_log_and_leaves_nothing(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('model file not found: /nope.gguf'); sys.exit(3)"]
    with pytest.raises(errors.ServerError) as err:
        launch.start_server(cmd, name="x", backend="llamacpp", host="127.0.0.1", port=free_port(), model="m",
                         log_path=tmp_path / "x.log", timeout_s=30)
    assert "exited with code 3" in str(err.value) and "model file not found" in str(err.value)
    assert state.list_states() == []


def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path):
    cmd = [sys.executable, "-c", "import time; print('loading...', flush=True); time.sleep(600)"]
    t0 = time.monotonic()
    with pytest.raises(errors.ServerError, match="did not answer .* within 2s") as err:
        launch.start_server(cmd, name="y", backend="llamacpp", host="127.0.0.1", port=free_port(), model="m",
                         log_path=tmp_path / "y.log", timeout_s=2)
    assert "loading..." in str(err.value)
    assert time.monotonic() - t0 < 15
    assert state.list_states() == []


def test_serve_sglang_without_sglang_installed_says_how_to_install(tmp_path):
    import importlib.util

    from click.testing import CliRunner

    from evalkit.cli import main

    if importlib.util.find_spec("sglang") is not None:
        pytest.skip("sglang is installed here")
    res = CliRunner().invoke(main, ["serve", "--backend", "sglang", "--model-path", "/ckpt/x", "--port",
                                    str(free_port())])
    assert res.exit_code == 1 and "pip install 'evalkit[sglang]'" in res.output
    assert state.list_states() == []


def test_serve_sglang_needs_a_model_path():
    from click.testing import CliRunner

    from evalkit.cli import main

    res = CliRunner().invoke(main, ["serve", "--backend", "sglang", "--port", str(free_port())])
    assert res.exit_code == 1 and "--model-path is required" in res.output
