"""SGLang (``python -m sglang.launch_server``): the production backend for GPU nodes.

Flags are SGLang's declared names: ``--tp-size`` and ``--dp-size``. Its ``ServerArgs`` derives
each flag from a field name (``tp_size`` -> ``--tp-size``) and adds only the aliases
``--tensor-parallel-size`` / ``--data-parallel-size`` (``python/sglang/srt/server_args.py``, in
newer trees ``srt/arg_groups/fields/parallel.py``); ``--tp`` / ``--dp`` only ever worked as
argparse abbreviations, which break as soon as another flag shares the prefix. SGLang reads its API key only from ``--api-key``, so a key is
on its command line; evalkit redacts it from everything it writes.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from evalkit.serving.backends.base import (Listener, ServerBackend, cuda_gpus_visible, metrics_load, register_backend,
                                   require_module)
from evalkit.serving import probe
from evalkit.serving.request import ServeRequest
from evalkit.serving.state import root_url

ROUTER_INSTALL = "pip install 'evalkit[router]'"


@register_backend
class SGLangBackend(ServerBackend):
    """One SGLang server (dp x tp GPUs); with replicas, the router's co-launch of dp workers."""

    name = "sglang"
    default_port = 30000

    def auto_check(self) -> tuple[bool, str]:
        """Fits where CUDA GPUs are visible and sglang is importable."""
        gpus = cuda_gpus_visible()
        if not gpus:
            return False, "no CUDA GPU visible"
        if importlib.util.find_spec("sglang") is None:
            return False, "sglang is not installed (pip install 'evalkit[sglang]')"
        return True, f"{gpus} CUDA GPU(s) visible and sglang is installed"

    def prepare(self, req: ServeRequest) -> str | None:
        model_path = super().prepare(req)
        require_module(req.engine_python or "", "sglang", "pip install 'evalkit[sglang]'")
        if req.replicas > 1:
            require_module(req.engine_python or "", "sglang_router", ROUTER_INSTALL)
        return model_path

    def command(self, req: ServeRequest, model_path: str | None, model: str, where: Listener) -> list[str]:
        cmd = [
            req.engine_python or "", "-m", "sglang.launch_server",
            "--model-path", model_path or "",
            "--dp-size", str(req.dp),
            "--tp-size", str(req.tp),
            "--host", where.host,
            "--port", str(where.port),
            "--mem-fraction-static", str(req.mem_fraction_static),
            "--served-model-name", model,
        ]
        if req.api_key:
            cmd += ["--api-key", req.api_key]
        return cmd + list(req.extra_args)

    def replicas_command(self, req: ServeRequest, model_path: str | None, model: str,
                         where: Listener) -> list[str] | None:
        """SGLang's documented way: ``python -m sglang_router.launch_server`` starts ``replicas``
        data-parallel workers and its router in one command (router flags take a ``--router-``
        prefix there); every listener on --host, the metrics one on loopback."""
        cmd = [req.engine_python or "", "-m", "sglang_router.launch_server", "--model-path", model_path or "",
               "--dp-size", str(req.replicas), "--tp-size", str(req.tp), "--host", where.host,
               "--port", str(where.port), "--mem-fraction-static", str(req.mem_fraction_static),
               "--served-model-name", model, "--router-policy", "round_robin",
               "--router-prometheus-host", "127.0.0.1",
               "--router-prometheus-port", str(req.prometheus_port or probe.free_port("127.0.0.1"))]
        if req.api_key:
            cmd += ["--api-key", req.api_key]
        return cmd + list(req.extra_args)

    def identify(self, base_url: str, *, api_key: str | None, timeout: float, models: list[dict]) -> dict[str, Any]:
        """SGLang tells its version and model at /get_server_info (and lists models as owned by "sglang")."""
        out: dict[str, Any] = {}
        if "sglang" in {m.get("owned_by") for m in models}:
            out["engine"] = "sglang"
            version = probe.get_json_quiet(root_url(base_url) + "/version", api_key=api_key, timeout=timeout)
            if isinstance(version, dict) and "version" in version:
                out["engine_version"] = str(version["version"])
        info = probe.get_json_quiet(root_url(base_url) + "/get_server_info", api_key=api_key, timeout=timeout)
        if isinstance(info, dict) and ("model_path" in info or "version" in info):
            out["engine"] = "sglang"
            if "version" in info:
                out["engine_version"] = str(info["version"])
            if "model_path" in info:
                out["model_path"] = info["model_path"]
        return out

    def load(self, base_url: str, *, api_key: str | None, timeout: float) -> str | None:
        return metrics_load(base_url, "sglang:num_running_reqs", api_key=api_key, timeout=timeout)
