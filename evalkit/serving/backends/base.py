"""What an engine is to evalkit: the ``Backend`` protocol, a base class with the usual
answers, and the one registry of backends (filled by ``@register_backend`` as the package's
``__init__`` imports each engine; a backend from outside the package is loaded from
``module:attr``). This module imports no engine. Besides the registry, it asks the engines what
an endpoint is when no record says which one serves it (``reported_identity``, ``probe_status``).

A backend says how to launch its engine (command, environment, default port), how many
requests a client should keep in flight by default, how to tell that it is ready, what it
reports about itself (identity) and how busy it is, and which processes belong to it when it
is stopped. Starting, recording, probing and stopping processes is done by evalkit.serving,
which knows no engine.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import shutil
import sys
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from evalkit.config import NEEDS_KEY  # noqa: F401 (a server's state; its home is config, where the CLI reads it)
from evalkit.core.plugins import load_attr
from evalkit.serving import probe
from evalkit.serving.checkpoint import name_from_path
from evalkit.serving.errors import ServerError
from evalkit.serving.request import ServeRequest
from evalkit.serving.state import DEFAULT_STOP_SCOPE, root_url


@dataclass(frozen=True)
class Listener:
    """Where one process of a backend listens, and how many processes share the machine."""

    host: str
    port: int
    role: str = "server"  # "server", "worker" or "router"
    share: int = 1  # processes of this backend started together (replicas), for CPU-thread shares

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


@runtime_checkable
class Backend(Protocol):
    """An engine evalkit can serve with. ``name`` is its registry name."""

    name: str
    default_port: int
    default_concurrency: int | None  # requests a client keeps in flight by default (None: the run's default)
    stop_scope: tuple[str, ...]  # which companions of its recorded processes are stopped with them

    def prepare(self, req: ServeRequest) -> str | None:
        """Check that the engine is installed and REQ can work; the model path to serve."""
        ...

    def served_model(self, model_path: str | None, req: ServeRequest) -> str:
        """The model id the server will list."""
        ...

    def command(self, req: ServeRequest, model_path: str | None, model: str, where: Listener) -> list[str]:
        """The command line of one server process listening at WHERE."""
        ...

    def environment(self, req: ServeRequest) -> dict[str, str]:
        """Extra environment of each server process (an API key the engine reads there)."""
        ...

    def replicas_command(self, req: ServeRequest, model_path: str | None, model: str,
                         where: Listener) -> list[str] | None:
        """The engine's own command for ``req.replicas`` replicas behind one front, or None
        (then evalkit starts that many workers and SGLang's router in front of them)."""
        ...

    def ready(self, base_url: str, model: str, api_key: str | None, timeout: float) -> bool:
        """True once the server at BASE_URL serves MODEL."""
        ...

    def identify(self, base_url: str, *, api_key: str | None, timeout: float, models: list[dict]) -> dict[str, Any]:
        """What the engine reports about itself ({} when BASE_URL is not this engine):
        ``engine``, ``engine_version`` and whatever else it tells. MODELS: its /v1/models entries."""
        ...

    def load(self, base_url: str, *, api_key: str | None, timeout: float) -> str | None:
        """"busy" or "ready" from a cheap probe (no generation), or None when it cannot tell."""
        ...


class ServerBackend:
    """The usual answers of the protocol; an engine's file overrides what differs."""

    name = ""
    default_port = 8000
    default_concurrency: int | None = None
    stop_scope: tuple[str, ...] = DEFAULT_STOP_SCOPE
    api_key_env: str | None = None  # where the engine reads its API key (None: only a flag, or nowhere)

    def prepare(self, req: ServeRequest) -> str | None:
        if not req.model_path:
            raise ServerError(f"--model-path is required for the {self.name} backend")
        return req.model_path

    def served_model(self, model_path: str | None, req: ServeRequest) -> str:
        if req.served_model_name:
            return req.served_model_name
        if not model_path:
            raise ServerError(f"the {self.name} backend needs --model-path or --served-model-name")
        return name_from_path(model_path)

    def command(self, req: ServeRequest, model_path: str | None, model: str, where: Listener) -> list[str]:
        raise NotImplementedError(f"backend {self.name!r} does not say how to start its server")

    def environment(self, req: ServeRequest) -> dict[str, str]:
        return {self.api_key_env: req.api_key} if (req.api_key and self.api_key_env) else {}

    def replicas_command(self, req: ServeRequest, model_path: str | None, model: str,
                         where: Listener) -> list[str] | None:
        return None

    def ready(self, base_url: str, model: str, api_key: str | None, timeout: float) -> bool:
        return probe.answers(base_url, model, api_key=api_key, timeout=timeout)

    def identify(self, base_url: str, *, api_key: str | None, timeout: float, models: list[dict]) -> dict[str, Any]:
        return {}

    def load(self, base_url: str, *, api_key: str | None, timeout: float) -> str | None:
        return None


# ---------------------------------------------------------------- machine look-ups shared by engines


def cuda_gpus_visible() -> int:
    """How many CUDA GPUs this process may use (0 when none or no driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    gpus_dir = Path("/proc/driver/nvidia/gpus")
    count = len(list(gpus_dir.iterdir())) if gpus_dir.is_dir() else 0
    if count == 0 and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
            count = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
        except (OSError, subprocess.TimeoutExpired):
            count = 0
    if visible is not None and count:
        count = min(count, len([v for v in visible.split(",") if v.strip()]))
    return count


def has_module(python: str, module: str) -> bool:
    """True when PYTHON can import MODULE (another environment: true when that Python exists;
    its own imports are checked when the engine starts)."""
    if os.path.abspath(python) == os.path.abspath(sys.executable):  # not realpath: venvs link one binary
        return importlib.util.find_spec(module) is not None
    return Path(python).exists()


def require_module(python: str, module: str, install: str) -> None:
    """Raise ServerError saying how to install MODULE when PYTHON cannot import it."""
    if not has_module(python, module):
        raise ServerError(f"{module} is not installed in this environment: {install} "
                          f"(or point --engine-python at a Python that has it)")


def metrics_load(base_url: str, metric: str, *, api_key: str | None, timeout: float) -> str | None:
    """"busy" while the Prometheus gauge METRIC at /metrics is above 0, "ready" at 0, None without it."""
    text = probe.get_text_quiet(root_url(base_url) + "/metrics", api_key=api_key, timeout=timeout)
    running = re.findall(rf"^{re.escape(metric)}\{{[^}}]*\}}\s+([0-9.e+]+)", text or "", re.M)
    if not running:
        return None
    return "busy" if any(float(v) > 0 for v in running) else "ready"


# ---------------------------------------------------------------- the registry

# Filled as each engine's module is imported: the package's __init__ imports every built-in one, and
# importing any module of the package (this one included) runs that __init__ first.
BACKENDS: dict[str, type] = {}
AUTO_ORDER = ("sglang", "llamacpp")  # what `--backend auto` tries, in order (each says why or why not)


def register_backend(cls: type) -> type:
    """Class decorator: make a backend available as ``--backend cls.name``."""
    BACKENDS[cls.name] = cls
    return cls


def backend_names() -> list[str]:
    """The built-in backends' names."""
    return sorted(BACKENDS)


def get_backend(name: str) -> Backend:
    """The backend called NAME: a built-in name, or ``module:attr`` (a class, built with no
    arguments, or an instance) defined outside evalkit."""
    if ":" in name:
        found = _load_attr(name)
    else:
        try:
            found = BACKENDS[name]
        except KeyError:
            raise ServerError(f"unknown backend {name!r}: choose one of auto, {', '.join(sorted(BACKENDS))}, "
                              "or give one as module:attr") from None
    backend = found() if inspect.isclass(found) else found
    missing = [a for a in ("name", "default_port", "default_concurrency", "stop_scope", "prepare", "served_model",
                           "command", "environment", "replicas_command", "ready", "identify", "load")
               if not hasattr(backend, a)]
    if missing:
        raise ServerError(f"{name!r} is not a backend: it lacks {', '.join(missing)} "
                          "(see evalkit.serving.backends.base.Backend; ServerBackend has the usual answers)")
    return backend


def _load_attr(ref: str) -> Any:
    return load_attr(ref, "backend", ServerError)


def choose_backend(requested: str = "auto") -> tuple[Backend, str]:
    """Resolve REQUESTED (a name, ``module:attr`` or ``auto``) to a backend; returns (backend, reason)."""
    if requested != "auto":
        return get_backend(requested), f"--backend {requested} was given"
    reasons = []
    for name in AUTO_ORDER:
        backend = get_backend(name)
        fits, why = backend.auto_check()  # type: ignore[attr-defined]
        if fits:
            return backend, ": ".join([*reasons, why])
        reasons.append(why)
    raise ServerError(f"no backend fits this machine ({'; '.join(reasons)}): pass --backend")


def default_concurrency(name: str | None) -> int | None:
    """The requests in flight a client keeps by default against backend NAME; None when
    NAME is unknown, cannot be loaded here, or has no opinion."""
    if not name:
        return None
    try:
        return get_backend(name).default_concurrency
    except ServerError:
        return None


# ---------------------------------------------------------------- what an endpoint is, asked of every engine

# The order in which an unknown endpoint is asked what it is: the router first (it fronts the others).
PROBE_ORDER = ("router", "llamacpp", "vllm", "sglang")
MODEL_FIELDS = ("id", "owned_by", "max_model_len", "root", "meta")


def _candidates(backend: Backend | None) -> list[Backend]:
    """BACKEND first (where known), then every built-in: a front the record does not describe
    (SGLang's co-launched router) is still recognised."""
    builtins = [get_backend(n) for n in PROBE_ORDER]
    if backend is None:
        return builtins
    return [backend, *(b for b in builtins if b.name != backend.name)]


def reported_identity(base_url: str, *, api_key: str | None = None, timeout: float = 3.0,
                      backend: Backend | None = None) -> dict[str, Any]:
    """What an endpoint reports about itself: its /v1/models entries and what its engine tells
    (BACKEND's identity probe first, then each built-in's, until one recognises it)."""
    out: dict[str, Any] = {}
    models = probe.model_entries(base_url, api_key=api_key, timeout=timeout)
    if models is not None:
        out["models"] = [{k: v for k, v in m.items() if k in MODEL_FIELDS} for m in models]
    for candidate in _candidates(backend):
        found = candidate.identify(base_url, api_key=api_key, timeout=timeout, models=out.get("models", []))
        if found:
            out.update(found)
            break
    return out


def probe_status(base_url: str, *, api_key: str | None = None, timeout: float = 10.0,
                 backend: Backend | None = None) -> str:
    """How a server is doing, from cheap endpoints only (no generation): "not answering" when
    /v1/models does not answer within TIMEOUT, NEEDS_KEY when it answers that it wants an API key
    (none, or another, was given), else "busy" or "ready" as its engine tells (BACKEND's load probe
    first, then each built-in's), "ready" when none tells."""
    try:
        probe.http_json(base_url.rstrip("/") + "/models", api_key=api_key, timeout=timeout)
    except probe.PROBE_ERRORS as exc:
        return NEEDS_KEY if probe.refuses_key(exc) else "not answering"
    for candidate in _candidates(backend):
        state = candidate.load(base_url, api_key=api_key, timeout=timeout)
        if state is not None:
            return state
    return "ready"
