"""SGLang's router (``python -m sglang_router.launch_router``) in front of workers: those evalkit
started for ``--replicas N``, or, with ``--router --worker-urls``, workers started elsewhere.

Its Prometheus listener is bound explicitly (by default it takes 0.0.0.0:29000, and a second
router then fails on that port). Requests a worker fails while it is still listed are retried
by the router, and past that by evalkit's client.
"""

from __future__ import annotations

from typing import Any

from evalkit.serving.backends.base import Listener, ServerBackend, register_backend, reported_identity, require_module
from evalkit.serving import probe
from evalkit.serving.errors import ServerError
from evalkit.serving.request import ServeRequest
from evalkit.serving.state import root_url

UNKNOWN_MODEL = "unknown"  # what the router lists for workers that are not SGLang
POLICY = "round_robin"
HEALTH_CHECK_INTERVAL_S = 5  # a dead worker is dropped after this many failed checks (router default: 3 at 60 s)
HEALTH_FAILURE_THRESHOLD = 2


def router_workers(base_url: str, *, api_key: str | None = None, timeout: float = 5.0) -> list[str]:
    """The worker URLs an SGLang router at BASE_URL routes to (its /workers); [] for anything else."""
    data = probe.get_json_quiet(root_url(base_url) + "/workers", api_key=api_key, timeout=timeout)
    if not isinstance(data, dict) or not isinstance(data.get("workers"), list):
        return []
    return [w["url"].rstrip("/") for w in data["workers"] if isinstance(w, dict) and isinstance(w.get("url"), str)]


def models_behind(base_url: str, *, api_key: str | None = None, timeout: float = 5.0) -> list[str]:
    """The models the workers behind a router at BASE_URL list ([] when it is no router)."""
    behind: list[str] = []
    for url in router_workers(base_url, api_key=api_key, timeout=timeout):
        try:
            behind += [m for m in probe.list_models(url + "/v1", api_key=api_key, timeout=timeout) if m not in behind]
        except probe.PROBE_ERRORS:
            continue
    return behind


def served_models(base_url: str, *, api_key: str | None = None, timeout: float = 5.0) -> list[str]:
    """The model ids BASE_URL serves: its /v1/models, or, where SGLang's router lists only
    "unknown" (workers that do not describe themselves to it), what its workers list."""
    ids = probe.list_models(base_url, api_key=api_key, timeout=timeout)
    if ids == [UNKNOWN_MODEL]:
        return models_behind(base_url, api_key=api_key, timeout=timeout) or ids
    return ids


@register_backend
class RouterBackend(ServerBackend):
    """The router alone; its workers' URLs come from ``req.worker_urls``."""

    name = "router"
    default_port = 30080

    def prepare(self, req: ServeRequest) -> str | None:
        if not req.worker_urls:
            raise ServerError("--router needs --worker-urls URL [URL ...] (workers started elsewhere)")
        require_module(req.engine_python or "", "sglang_router", "pip install 'evalkit[router]'")
        return None

    def served_model(self, model_path: str | None, req: ServeRequest) -> str:
        """--served-model-name, else what the first worker lists."""
        if req.served_model_name:
            return req.served_model_name
        first = root_url(req.worker_urls[0]) + "/v1"
        try:
            return probe.list_models(first, api_key=req.api_key)[0]
        except (*probe.PROBE_ERRORS, IndexError) as exc:
            raise ServerError(f"cannot ask {req.worker_urls[0]} which model it serves ({exc}); "
                              "pass --served-model-name") from exc

    def command(self, req: ServeRequest, model_path: str | None, model: str, where: Listener) -> list[str]:
        return [
            req.engine_python or "", "-m", "sglang_router.launch_router",
            "--host", where.host,
            "--port", str(where.port),
            "--worker-urls", *[root_url(u) for u in req.worker_urls],
            "--policy", POLICY,
            "--prometheus-host", "127.0.0.1",
            "--prometheus-port", str(req.prometheus_port or probe.free_port("127.0.0.1")),
            "--health-check-interval-secs", str(HEALTH_CHECK_INTERVAL_S),
            "--health-failure-threshold", str(HEALTH_FAILURE_THRESHOLD),
        ]

    def environment(self, req: ServeRequest) -> dict[str, str]:
        return {}

    def ready(self, base_url: str, model: str, api_key: str | None, timeout: float) -> bool:
        """A router lists no worker's model by name: readiness is a chat completion alone."""
        return probe.answers(base_url, model, api_key=api_key, timeout=timeout, check_listed=False)

    def identify(self, base_url: str, *, api_key: str | None, timeout: float, models: list[dict]) -> dict[str, Any]:
        """The router reports nothing of the engine; its first worker does (whatever engine is behind it)."""
        workers = router_workers(base_url, api_key=api_key, timeout=timeout)
        if not workers:
            return {}
        behind = reported_identity(workers[0] + "/v1", api_key=api_key, timeout=timeout)
        router_lists_names = models and [m.get("id") for m in models] != [UNKNOWN_MODEL]
        out = {k: v for k, v in behind.items() if k != "models" or not router_lists_names}
        return {"router_workers": workers, **out, "router": "sglang-router"}

    def load(self, base_url: str, *, api_key: str | None, timeout: float) -> str | None:
        """Busy while any worker has requests in flight (the router's /workers loads)."""
        data = probe.get_json_quiet(root_url(base_url) + "/workers", api_key=api_key, timeout=timeout)
        if not (isinstance(data, dict) and isinstance(data.get("workers"), list)):
            return None
        loads = [w.get("load", 0) for w in data["workers"] if isinstance(w, dict)]
        return "busy" if any(isinstance(v, (int, float)) and v > 0 for v in loads) else "ready"
