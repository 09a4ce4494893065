"""The launcher: the commands it builds, and the lifecycle of the processes it starts."""

import os
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from evalkit import server as srv


def test_sglang_command_defaults_and_passthrough():
    cmd = srv.build_sglang_command("/ckpt/MedReason-8B", port=30000, extra_args=["--context-length", "8192"],
                                   python="python")
    assert cmd == ["python", "-m", "sglang.launch_server", "--model-path", "/ckpt/MedReason-8B", "--dp", "8",
                   "--tp", "1", "--host", "127.0.0.1", "--port", "30000", "--mem-fraction-static", "0.8",
                   "--context-length", "8192"]


def test_sglang_command_settings_and_key_redaction():
    cmd = srv.build_sglang_command("m", dp=2, tp=4, mem_fraction_static=0.7, host="0.0.0.0", port=1234,
                                   served_model_name="medreason", api_key="s3cret", python="py")
    assert cmd[cmd.index("--dp") + 1] == "2" and cmd[cmd.index("--tp") + 1] == "4"
    assert cmd[cmd.index("--mem-fraction-static") + 1] == "0.7"
    assert cmd[cmd.index("--served-model-name") + 1] == "medreason"
    assert cmd[cmd.index("--api-key") + 1] == "s3cret"
    shown = srv.redact(cmd, "s3cret")
    assert "s3cret" not in shown and shown[shown.index("--api-key") + 1] == srv.REDACTED


def test_llamacpp_command_is_llama_server_with_parallel_slots_and_no_key():
    cmd = srv.build_llamacpp_command("/m.gguf", port=9, n_ctx=2048, parallel=4, n_threads=2, binary="llama-server")
    assert cmd[0] == "llama-server"
    assert cmd[cmd.index("-m") + 1] == "/m.gguf"
    assert cmd[cmd.index("--alias") + 1] == srv.SMOLLM2_ALIAS
    assert cmd[cmd.index("--parallel") + 1] == "4"
    assert cmd[cmd.index("-c") + 1] == str(2048 * 4)  # llama-server splits -c between its slots
    assert cmd[cmd.index("--port") + 1] == "9" and cmd[cmd.index("-t") + 1] == "2"
    assert not any("key" in part.lower() for part in cmd)
    assert srv.api_key_env("llamacpp", "s3cret") == {"LLAMA_API_KEY": "s3cret"}
    assert srv.api_key_env("vllm", "s3cret") == {"VLLM_API_KEY": "s3cret"}
    assert srv.api_key_env("sglang", "s3cret") == {}  # SGLang takes it only as --api-key


def test_auto_backend_without_gpus_is_llamacpp(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    backend, why = srv.choose_backend("auto")
    assert backend == "llamacpp" and "no CUDA GPU" in why
    assert srv.choose_backend("sglang")[0] == "sglang"
    assert srv.choose_backend("vllm")[0] == "vllm"
    with pytest.raises(srv.ServerError, match="unknown backend"):
        srv.choose_backend("nope")


def _loopback_command(port: int) -> list[str]:
    return [sys.executable, str(ROOT / "tests" / "loopback_server.py"), "--port", str(port)]


def test_start_records_state_and_stop_ends_the_whole_group(tmp_path):
    port = free_port()
    handle = srv.start_server(_loopback_command(port), name="t", backend="llamacpp", host="127.0.0.1", port=port,
                              model="loopback-model", log_path=tmp_path / "t.log", api_key="k3y", timeout_s=30)
    state = Path(os.environ["EVALKIT_STATE_DIR"]) / "t.json"
    assert state.exists() and "k3y" not in state.read_text()
    assert srv.resolve_endpoint().base_url == f"http://127.0.0.1:{port}/v1"
    assert os.getpgid(handle.pid) == handle.pgid == handle.pid  # its own process group
    assert srv.answers(handle.base_url, "loopback-model")
    assert srv.stop_server("t", grace_s=5).was_running
    assert not srv.group_alive(handle.pgid)
    assert not state.exists()
    assert srv.stop_server("t") is None


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
    handle = srv.start_server(cmd, name="s", backend="llamacpp", host="127.0.0.1", port=port,
                              model="loopback-model", log_path=tmp_path / "s.log", timeout_s=30)
    t0 = time.monotonic()
    assert srv.stop_server("s", grace_s=1.0).was_running
    assert time.monotonic() - t0 < 15
    assert not srv.group_alive(handle.pgid)


def test_a_server_that_exits_gives_its_log_and_leaves_nothing(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('model file not found: /nope.gguf'); sys.exit(3)"]
    with pytest.raises(srv.ServerError) as err:
        srv.start_server(cmd, name="x", backend="llamacpp", host="127.0.0.1", port=free_port(), model="m",
                         log_path=tmp_path / "x.log", timeout_s=30)
    assert "exited with code 3" in str(err.value) and "model file not found" in str(err.value)
    assert srv.list_states() == []


def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path):
    cmd = [sys.executable, "-c", "import time; print('loading...', flush=True); time.sleep(600)"]
    t0 = time.monotonic()
    with pytest.raises(srv.ServerError, match="did not answer .* within 2s") as err:
        srv.start_server(cmd, name="y", backend="llamacpp", host="127.0.0.1", port=free_port(), model="m",
                         log_path=tmp_path / "y.log", timeout_s=2)
    assert "loading..." in str(err.value)
    assert time.monotonic() - t0 < 15
    assert srv.list_states() == []


def test_serve_sglang_without_sglang_installed_says_how_to_install(tmp_path):
    import importlib.util

    from click.testing import CliRunner

    from evalkit.cli import main

    if importlib.util.find_spec("sglang") is not None:
        pytest.skip("sglang is installed here")
    res = CliRunner().invoke(main, ["serve", "--backend", "sglang", "--model-path", "/ckpt/x", "--port",
                                    str(free_port())])
    assert res.exit_code == 1 and "pip install 'evalkit[sglang]'" in res.output
    assert srv.list_states() == []


def test_serve_sglang_needs_a_model_path():
    from click.testing import CliRunner

    from evalkit.cli import main

    res = CliRunner().invoke(main, ["serve", "--backend", "sglang", "--port", str(free_port())])
    assert res.exit_code == 1 and "--model-path is required" in res.output
