"""Engines as backends: one file per engine (``llamacpp``, ``vllm``, ``sglang``, ``router``), each a
class following ``base.Backend`` and registered with ``@register_backend``; ``--backend
module:attr`` loads one defined outside evalkit.

Besides the registry, this module asks the backends what an endpoint is when no record says
which engine serves it (``reported_identity``, ``probe_status``, ``served_models``).
"""

from __future__ import annotations

from typing import Any

from evalkit.serving.backends.base import (BACKENDS, Backend, Listener, ServerBackend, backend_names, choose_backend,
                                   cuda_gpus_visible, default_concurrency, get_backend, register_backend)
from evalkit.serving import probe

__all__ = ["BACKENDS", "NEEDS_KEY", "Backend", "Listener", "ServerBackend", "backend_names", "choose_backend",
           "cuda_gpus_visible", "default_concurrency", "get_backend", "probe_status", "register_backend",
           "reported_identity", "served_models"]

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


from evalkit.config import NEEDS_KEY  # noqa: E402 (the state of a server that refuses a request without its key)


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


def served_models(base_url: str, *, api_key: str | None = None, timeout: float = 5.0) -> list[str]:
    """The model ids BASE_URL serves: its /v1/models, or, where SGLang's router lists only
    "unknown" (workers that do not describe themselves to it), what its workers list."""
    from evalkit.serving.backends.router import UNKNOWN_MODEL, models_behind

    ids = probe.list_models(base_url, api_key=api_key, timeout=timeout)
    if ids == [UNKNOWN_MODEL]:
        return models_behind(base_url, api_key=api_key, timeout=timeout) or ids
    return ids
