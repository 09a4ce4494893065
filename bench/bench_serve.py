"""Serving figures for the README: startup time and output tokens/s of the embedded
llama-server with 1 and 4 parallel slots, and of 1 and 2 replicas behind SGLang's router.

Each configuration is started with evalkit's own launcher, sent REQUESTS chat
completions CONCURRENT at a time (max_tokens fixed, temperature 0), and stopped.

Run: .venv/bin/python -m bench.bench_serve [--requests 32] [--concurrent 8] [--max-tokens 64]
     [--vllm-python PY --vllm-model DIR]   (adds vLLM on the CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalkit.serving import launch  # noqa: E402
from evalkit.serving.plan import plan, start  # noqa: E402
from evalkit.serving.request import ServeRequest  # noqa: E402

QUESTION = ("A 45-year-old man has crushing chest pain for an hour. Which test comes first? "
            "A. ECG B. Chest CT C. Troponin in 6 hours D. Echocardiogram. Explain briefly.")


def _one(url: str, model: str, max_tokens: int, i: int) -> int:
    body = json.dumps({"model": model, "max_tokens": max_tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": f"({i}) {QUESTION}"}]}).encode()
    req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return int(json.loads(r.read())["usage"]["completion_tokens"])


def measure(label: str, request: ServeRequest, args) -> dict:
    t0 = time.monotonic()
    handle = start(plan(request))
    startup = time.monotonic() - t0
    try:
        _one(handle.base_url, handle.model, 4, -1)  # warm
        t1 = time.monotonic()
        with ThreadPoolExecutor(args.concurrent) as pool:
            tokens = sum(pool.map(lambda i: _one(handle.base_url, handle.model, args.max_tokens, i),
                                  range(args.requests)))
        wall = time.monotonic() - t1
    finally:
        launch.stop_server(request.name)
    row = {"config": label, "startup_s": round(startup, 1), "tokens": tokens, "wall_s": round(wall, 1),
           "tokens_per_s": round(tokens / wall, 1)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=32)
    p.add_argument("--concurrent", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--vllm-python", default=os.environ.get("EVALKIT_VLLM_PYTHON"))
    p.add_argument("--vllm-model", default=os.environ.get("EVALKIT_VLLM_MODEL"))
    p.add_argument("--only", default=None, help="comma-separated config names (b1, b4, br, bv) to run")
    p.add_argument("--threads", type=int, default=None, help="llama-server threads of the 1-server configs "
                   "(default: evalkit's, cores - 1)")
    args = p.parse_args()
    os.environ.setdefault("EVALKIT_STATE_DIR", tempfile.mkdtemp(prefix="bench-serve-"))
    cores = os.cpu_count() or 1
    threads = args.threads or max(1, cores - 1)  # evalkit's default
    configs = [
        ("llama-server, 1 slot", ServeRequest(backend="llamacpp", name="b1", parallel=1, threads=threads)),
        ("llama-server, 4 slots", ServeRequest(backend="llamacpp", name="b4", parallel=4, threads=threads)),
        ("2 replicas x 4 slots behind the router",
         ServeRequest(backend="llamacpp", name="br", replicas=2, parallel=4)),
    ]
    if args.vllm_python and args.vllm_model:
        configs.append(("vLLM CPU, 1 replica", ServeRequest(
            backend="vllm", name="bv", model_path=args.vllm_model, engine_python=args.vllm_python)))
    wanted = set(args.only.split(",")) if args.only else None
    print(f"{cores} cores, {threads} thread(s) per single server; {args.requests} requests, {args.concurrent} at a time, max_tokens {args.max_tokens}")
    for label, req in configs:
        if wanted is None or req.name in wanted:
            measure(label, req, args)


if __name__ == "__main__":
    main()
