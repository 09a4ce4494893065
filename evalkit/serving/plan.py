"""What ``evalkit serve`` starts: from a ``ServeRequest`` to the processes to launch, asking the
backend registry (evalkit.serving.backends) what each engine needs; and what a recorded server is
doing now (``server_status``) and what served a run (``endpoint_identity``).

``plan`` is pure but for looking at the machine (free ports, installed engines, the
checkpoint's files); ``start`` launches a plan through ``launch.launch``. No engine is named
here but SGLang's router, which fronts replicas of any engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from evalkit.serving.backends import Backend, Listener, choose_backend, get_backend, probe_status, reported_identity
from evalkit.serving.checkpoint import checkpoint_hash
from evalkit.serving.errors import ServerError
from evalkit.serving.launch import LaunchSpec, ensure_name_free, launch
from evalkit.serving.probe import free_port, port_is_free
from evalkit.serving.processes import owns_process
from evalkit.serving.request import ServeRequest
from evalkit.serving.state import ServerHandle, find_handle, state_dir

ROUTER = "router"  # the backend that fronts replicas


@dataclass
class ServePlan:
    """The processes to start, workers first and the front (what clients talk to) last.

    ``backend`` is what the record keeps (a registry name or ``module:attr``); ``engine`` the
    backend object that planned the workers."""

    name: str
    backend: str
    engine: Backend
    why: str
    model: str
    specs: list[LaunchSpec]
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
        if not port_is_free(host, wanted):
            raise ServerError(f"port {wanted} on {host} is already in use; pick another --port")
        return wanted
    return default if port_is_free(host, default) else free_port(host)


def _spec(backend: Backend, req: ServeRequest, model_path: str | None, model: str, where: Listener,
          log_path: Path, command: list[str] | None = None) -> LaunchSpec:
    return LaunchSpec(role=where.role, command=command or backend.command(req, model_path, model, where),
                      host=where.host, port=where.port, log_path=log_path, env=backend.environment(req),
                      ready=backend.ready)


def plan(req: ServeRequest) -> ServePlan:
    """Resolve REQ into the processes to start; raises ServerError on a setting that cannot work."""
    log_dir = Path(req.log_dir or state_dir())
    if req.replicas < 1:
        raise ServerError(f"--replicas must be at least 1, not {req.replicas}")
    if req.router_only:
        backend, key, why = get_backend(ROUTER), ROUTER, "--router was given"
    else:
        backend, why = choose_backend(req.backend)
        key = req.backend if ":" in req.backend else backend.name
    model_path = backend.prepare(req)
    model = backend.served_model(model_path, req)
    common: dict[str, Any] = dict(name=req.name, backend=key, engine=backend, why=why, model=model, log_dir=log_dir,
                                  api_key=req.api_key, timeout_s=req.timeout_s, model_path=model_path,
                                  model_hash=checkpoint_hash(model_path) if model_path else {})
    if req.router_only:
        where = Listener(req.host, _pick_port(req.host, req.port, backend.default_port), role="router")
        spec = _spec(backend, req, None, model, where, log_dir / f"{req.name}.router.log")
        return ServePlan(specs=[spec], **{**common, "worker_urls": list(req.worker_urls)})
    if req.replicas == 1:
        where = Listener(req.host, _pick_port(req.host, req.port, backend.default_port))
        return ServePlan(specs=[_spec(backend, req, model_path, model, where, log_dir / f"{req.name}.log")], **common)
    where = Listener(req.host, _pick_port(req.host, req.port, backend.default_port), share=req.replicas)
    own = backend.replicas_command(req, model_path, model, where)
    if own is not None:  # the engine starts its replicas and their front itself
        return ServePlan(specs=[_spec(backend, req, model_path, model, where, log_dir / f"{req.name}.log", own)],
                         **common)
    return _router_in_front(req, backend, model_path, model, log_dir, common)


def _router_in_front(req: ServeRequest, backend: Backend, model_path: str | None, model: str, log_dir: Path,
                     common: dict[str, Any]) -> ServePlan:
    """``req.replicas`` workers of BACKEND on free ports, and SGLang's router in front of them."""
    router = get_backend(ROUTER)
    specs = []
    for i in range(req.replicas):
        where = Listener(req.host, free_port(req.host), role="worker", share=req.replicas)
        specs.append(_spec(backend, req, model_path, model, where, log_dir / f"{req.name}.worker{i}.log"))
    worker_urls = [f"http://{s.host}:{s.port}" for s in specs]
    front_req = replace(req, worker_urls=worker_urls)
    router.prepare(front_req)
    front = Listener(req.host, _pick_port(req.host, req.port, router.default_port), role="router")
    specs.append(_spec(router, front_req, None, model, front, log_dir / f"{req.name}.router.log"))
    return ServePlan(specs=specs, worker_urls=worker_urls, **common)


def serve(req: ServeRequest, *, on_plan: Callable[[ServePlan], None] | None = None) -> ServerHandle:
    """Start what REQ asks for, detached, and wait until it answers: ``evalkit serve``.

    The name must be free (no live server recorded under it); ON_PLAN sees the plan before
    anything starts. Raises ServerError with the reason (and the log's tail) on failure.
    """
    ensure_name_free(req.name)
    p = plan(req)
    if on_plan is not None:
        on_plan(p)
    return start(p)


def start(p: ServePlan) -> ServerHandle:
    """Launch plan P and wait until its front answers; see ``launch.launch``."""
    def identify(base_url: str, api_key: str | None) -> dict:
        reported = reported_identity(base_url, api_key=api_key, backend=p.engine)
        # An engine that can tell its version better from its binary than the server does (llama.cpp
        # built without git says "b0-unknown") is asked, with the command that started the worker.
        local = getattr(p.engine, "local_version", None)
        if local is not None:
            worker = next((s for s in p.specs if s.role == "worker"), p.specs[-1])
            version = local(worker.command, reported.get("engine_version"))
            if version:
                reported = {**reported, "engine_version": version}
        return reported

    return launch(p.specs, name=p.name, backend=p.backend, model=p.model, api_key=p.api_key, timeout_s=p.timeout_s,
                  model_path=p.model_path, model_hash=p.model_hash, worker_urls=p.worker_urls, identify=identify,
                  stop_scope=p.engine.stop_scope)


def _backend_for(handle: ServerHandle, role: str) -> Backend | None:
    """The backend that answers for HANDLE's process of ROLE; None when it cannot be loaded here
    (then every built-in's probe is tried)."""
    try:
        return get_backend(ROUTER if role == "router" else handle.backend)
    except ServerError:
        return None


def server_status(handle: ServerHandle, *, api_key: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """One recorded server as ``status --json`` shows it: every process with its pid and
    whether it is still the one evalkit started, and the front's state from a cheap probe."""
    procs = []
    for r in handle.records():
        alive = owns_process(r)
        state = probe_status(r.base_url, api_key=api_key, timeout=timeout,
                             backend=_backend_for(handle, r.role)) if alive else "dead"
        procs.append({"role": r.role, "pid": r.pid, "pgid": r.pgid, "endpoint": r.base_url, "alive": alive,
                      "state": state, "log": r.log_path})
    front_alive = any(p["alive"] for p in procs if p["role"] != "worker") or (
        all(p["role"] == "worker" for p in procs) and any(p["alive"] for p in procs))
    front = next((p for p in procs if p["role"] != "worker"), procs[0] if procs else None)
    return {
        "name": handle.name, "backend": handle.backend, "endpoint": handle.base_url, "model": handle.model,
        "pid": handle.pid, "alive": front_alive, "state": front["state"] if front else "dead",
        "started_at": handle.started_at, "model_path": handle.model_path, "server_version": handle.server_version,
        "worker_urls": handle.worker_urls, "processes": procs,
    }


def endpoint_identity(base_url: str, handle: ServerHandle | None = None, *, api_key: str | None = None,
                      timeout: float = 3.0) -> dict[str, Any]:
    """What identifies the model and engine behind BASE_URL, for a run's manifest.

    From the state record where evalkit started that server (model path, content hash,
    engine version, launch command with secrets redacted, every process), and from what
    the endpoint reports about itself (always tried; the only source for ``--endpoint``).
    """
    handle = handle or find_handle(base_url)
    out: dict[str, Any] = {"base_url": base_url}
    backend = None
    if handle is not None:
        out.update(
            source="evalkit serve", name=handle.name, backend=handle.backend, model=handle.model,
            model_path=handle.model_path, model_hash=handle.model_hash, server_version=handle.server_version,
            command=list(handle.command), worker_urls=list(handle.worker_urls),
            processes=[{"role": r.role, "port": r.port, "argv": r.argv} for r in handle.records()],
        )
        here = next((r for r in handle.records() if r.base_url.rstrip("/") == base_url.rstrip("/")), None)
        backend = _backend_for(handle, here.role if here else "server")
    else:
        out["source"] = "endpoint"
    out["reported"] = reported_identity(base_url, api_key=api_key, timeout=timeout, backend=backend)
    return out
