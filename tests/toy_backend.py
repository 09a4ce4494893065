"""A backend defined outside evalkit: ``evalkit serve --backend tests.toy_backend:ToyBackend``.

It serves tests/toy_server.py (a stdlib OpenAI-compatible script, no model) and answers the
``Backend`` protocol's questions: command, port, client concurrency, readiness (``/health``),
identity and load (from ``/health``). Nothing in evalkit names it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from evalkit.serving.backends.base import Listener, ServerBackend
from evalkit.serving import probe
from evalkit.serving.request import ServeRequest

TOY_SERVER = Path(__file__).with_name("toy_server.py")


def _health(base_url: str, api_key: str | None, timeout: float) -> dict | None:
    found = probe.get_json_quiet(base_url.removesuffix("/v1") + "/health", api_key=api_key, timeout=timeout)
    return found if isinstance(found, dict) and found.get("status") == "ok" else None


class ToyBackend(ServerBackend):
    name = "toy"
    default_port = 8399
    default_concurrency = 3

    def prepare(self, req: ServeRequest) -> str | None:
        return None  # no checkpoint: the toy has its answers built in

    def served_model(self, model_path: str | None, req: ServeRequest) -> str:
        return req.served_model_name or "toy-model"

    def command(self, req: ServeRequest, model_path: str | None, model: str, where: Listener) -> list[str]:
        return [sys.executable, str(TOY_SERVER), "--host", where.host, "--port", str(where.port), "--model", model,
                *req.extra_args]

    def ready(self, base_url: str, model: str, api_key: str | None, timeout: float) -> bool:
        return _health(base_url, api_key, timeout) is not None

    def identify(self, base_url: str, *, api_key: str | None, timeout: float, models: list[dict]) -> dict[str, Any]:
        health = _health(base_url, api_key, timeout)
        return {"engine": health["engine"], "engine_version": health["version"]} if health else {}

    def load(self, base_url: str, *, api_key: str | None, timeout: float) -> str | None:
        health = _health(base_url, api_key, timeout)
        return None if health is None else ("busy" if health.get("in_flight") else "ready")
