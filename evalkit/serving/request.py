"""``ServeRequest``: every setting of ``evalkit serve`` and its one default.

The CLI builds its flags from these fields (name, type, default and the ``help`` in each
field's metadata), so ``--help`` shows exactly these defaults. A field whose default depends
on the machine or the environment is None here and resolved where it is used (its help
says how).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

API_KEY_ENV = "EVALKIT_API_KEY"
ENGINE_PYTHON_ENV = "EVALKIT_ENGINE_PYTHON"


def _setting(default: Any = None, help: str = "", **cli: Any) -> Any:
    """A ServeRequest field: its default, its --help text, and CLI details (``flag``, ``multiple``)."""
    if isinstance(default, list):
        return field(default_factory=list, metadata={"help": help, **cli})
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class ServeRequest:
    """The settings of ``evalkit serve`` (see its --help); every default is here.

    ``engine_python`` (the Python that has sglang / vllm / sglang-router) defaults to
    $EVALKIT_ENGINE_PYTHON, else this one; ``api_key`` to $EVALKIT_API_KEY.
    """

    backend: str = _setting("auto", "A built-in backend, or module:attr for one defined outside evalkit; "
                                    "auto: sglang when CUDA GPUs and sglang are present, else llamacpp.")
    model_path: str | None = _setting(None, "Checkpoint folder or hub id (sglang, vllm) or GGUF file "
                                            "(llamacpp; default: the embedded SmolLM2).")
    name: str = _setting("default", "Name under which the server is recorded.")
    host: str = _setting("127.0.0.1", "Address every listener binds.")
    port: int | None = _setting(None, "Default: the backend's own port, or a free one when that is taken.")
    served_model_name: str | None = _setting(None, "Model id the server reports (default: the checkpoint's file "
                                                   "stem, folder name or hub id).")
    replicas: int = _setting(1, "Start this many workers of the backend and SGLang's router in front of them.")
    router_only: bool = _setting(False, "Start only SGLang's router, in front of --worker-urls started elsewhere.",
                                 flag="--router")
    worker_urls: list[str] = _setting([], "Workers for --router (repeatable, or space-separated).", multiple=True)
    prometheus_port: int | None = _setting(None, "Router's metrics port on 127.0.0.1 (default: a free one).")
    dp: int = _setting(8, "sglang data parallel size (--dp-size).")
    tp: int = _setting(1, "sglang tensor parallel size (--tp-size).")
    mem_fraction_static: float = _setting(0.8, "sglang KV-cache memory share.")
    tensor_parallel_size: int = _setting(1, "vllm.")
    data_parallel_size: int = _setting(1, "vllm.")
    gpu_memory_utilization: float | None = _setting(None, "vllm (default: vLLM's).")
    max_model_len: int | None = _setting(None, "vllm (default: vLLM's; 2048 on CPU).")
    dtype: str | None = _setting(None, "vllm (default: vLLM's; bfloat16 on CPU).")
    reasoning_parser: str | None = _setting(None, "vllm.")
    enforce_eager: bool = _setting(False, "vllm: no CUDA graphs / torch.compile (always on CPU).")
    n_ctx: int = _setting(4096, "llamacpp context per slot.")
    parallel: int = _setting(4, "llamacpp parallel slots per server.")
    threads: int | None = _setting(None, "llamacpp threads per server (default: (cores - 1) / replicas, at least 1).")
    engine_python: str | None = _setting(None, f"Python that has sglang / vllm / sglang-router "
                                                f"(default: ${ENGINE_PYTHON_ENV} or this one).")
    api_key: str | None = _setting(None, f"Required of clients; or ${API_KEY_ENV}. Never saved.", envvar=API_KEY_ENV)
    timeout_s: float = _setting(900.0, "Seconds to wait for the server to answer.", flag="--timeout")
    log_dir: str | None = _setting(None, "Where the server logs go (default: the state directory).")
    extra_args: list[str] = _setting([], "Arguments after `--`, passed to the server (each worker) unchanged.",
                                     argument=True)

    def __post_init__(self) -> None:
        self.engine_python = self.engine_python or os.environ.get(ENGINE_PYTHON_ENV) or sys.executable
        self.api_key = self.api_key or os.environ.get(API_KEY_ENV) or None
