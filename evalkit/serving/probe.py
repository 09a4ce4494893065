"""HTTP probes of an OpenAI-compatible endpoint, and free TCP ports. Knows no engine: what an
engine says about itself beyond the OpenAI routes is asked by its backend (evalkit.serving.backends)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

from evalkit.config import ServeRequest, field_default

PROBE_ERRORS = (OSError, ValueError, urllib.error.URLError)
KEY_REFUSED = (401, 403)  # a server that wants an API key (or another one) answers these


def refuses_key(exc: BaseException) -> bool:
    """True when EXC (a probe's failure) is the server answering that it wants an API key, or another one."""
    return isinstance(exc, urllib.error.HTTPError) and exc.code in KEY_REFUSED


def key_refused_message(status: int, *, given: bool, where: str, who: str = "the server") -> str:
    """What to say when WHO refused a request for want of a key (HTTP STATUS, one of KEY_REFUSED):
    GIVEN tells whether one was sent; WHERE names the option and variable that give it."""
    if given:
        return f"{who} refuses the API key given (HTTP {status}): check the key ({where})"
    return f"{who} needs an API key (HTTP {status}): give it with {where}"


def http_json(url: str, *, data: dict | None = None, api_key: str | None = None, timeout: float = 5.0) -> Any:
    """GET (or POST DATA to) URL and parse the JSON answer; raises on any failure."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def get_json_quiet(url: str, *, api_key: str | None = None, timeout: float = 3.0) -> Any:
    """``http_json`` that answers None instead of raising (for optional self-description routes)."""
    try:
        return http_json(url, api_key=api_key, timeout=timeout)
    except PROBE_ERRORS:
        return None


def get_text_quiet(url: str, *, api_key: str | None = None, timeout: float = 3.0, limit: int = 1 << 20) -> str | None:
    """The first LIMIT bytes of URL as text (a /metrics page), or None."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            return resp.read(limit).decode("utf-8", errors="replace")
    except PROBE_ERRORS:
        return None


def list_models(base_url: str, *, api_key: str | None = None, timeout: float = 5.0) -> list[str]:
    """The model ids an OpenAI-compatible server lists at /v1/models (raises when it does not answer)."""
    data = http_json(base_url.rstrip("/") + "/models", api_key=api_key, timeout=timeout)
    return [m.get("id", "") for m in data.get("data", [])]


def model_entries(base_url: str, *, api_key: str | None = None, timeout: float = 3.0) -> list[dict] | None:
    """The /v1/models entries (id, owned_by, ...) or None when the endpoint does not answer."""
    models = get_json_quiet(base_url.rstrip("/") + "/models", api_key=api_key, timeout=timeout)
    if isinstance(models, dict) and isinstance(models.get("data"), list):
        return [m for m in models["data"] if isinstance(m, dict)]
    return None


def answers_models(base_url: str, *, api_key: str | None = None, timeout: float = 10.0) -> bool:
    """True when /v1/models answers within TIMEOUT (a cheap probe: no generation)."""
    try:
        http_json(base_url.rstrip("/") + "/models", api_key=api_key, timeout=timeout)
    except PROBE_ERRORS:
        return False
    return True


def answers(base_url: str, model: str, *, api_key: str | None = None, timeout: float = 60.0,
            check_listed: bool = True) -> bool:
    """True when the server returns a one-token chat completion for MODEL (and, with
    CHECK_LISTED, lists it at /v1/models)."""
    try:
        if check_listed and model not in list_models(base_url, api_key=api_key, timeout=min(timeout, 5.0)):
            return False
        out = http_json(
            base_url.rstrip("/") + "/chat/completions",
            data={"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0},
            api_key=api_key,
            timeout=timeout,
        )
        return bool(out.get("choices"))
    except PROBE_ERRORS:
        return False


def port_is_free(host: str, port: int) -> bool:
    """True when PORT on HOST can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = field_default(ServeRequest, "host")) -> int:
    """A port on HOST that the kernel says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
