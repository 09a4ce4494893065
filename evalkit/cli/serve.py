"""``evalkit serve``, ``evalkit status``, ``evalkit stop``: a thin shell over the library API."""

from __future__ import annotations

import json
import os
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evalkit.api import (API_KEY_ENV, BACKENDS, ENGINE_PYTHON_ENV, ServePlan, ServeRequest, ServerError, list_states,
                         serve_detached, server_status, state_dir, stop_server)
from evalkit.cli import stdout_console
console = Console(stderr=True, soft_wrap=True)  # messages: never wrapped, so logs grep well


@click.command()
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", *BACKENDS]), help="auto: sglang when CUDA GPUs and sglang are present.")
@click.option("--model-path", default=None,
              help="Checkpoint folder or hub id (sglang, vllm) or GGUF file (llamacpp; default: embedded SmolLM2).")
@click.option("--name", default="default", show_default=True, help="Name under which the server is recorded.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None,
              help="Default: 30000 (sglang), 8000 (vllm), 8321 (llamacpp), 30080 (router), or a free port.")
@click.option("--served-model-name", default=None,
              help="Model id the server reports (default: the checkpoint's file stem, folder name or hub id).")
@click.option("--replicas", type=int, default=1, show_default=True,
              help="Start this many workers of the backend and SGLang's router in front of them.")
@click.option("--router", "router_only", is_flag=True,
              help="Start only SGLang's router, in front of --worker-urls started elsewhere.")
@click.option("--worker-urls", multiple=True, help="Workers for --router (repeatable, or space-separated).")
@click.option("--prometheus-port", type=int, default=None, help="Router's metrics port on 127.0.0.1 (default: free).")
@click.option("--dp", type=int, default=8, show_default=True, help="sglang data parallel size.")
@click.option("--tp", type=int, default=1, show_default=True, help="sglang tensor parallel size.")
@click.option("--mem-fraction-static", type=float, default=0.8, show_default=True, help="sglang KV-cache memory share.")
@click.option("--tensor-parallel-size", type=int, default=1, show_default=True, help="vllm.")
@click.option("--data-parallel-size", type=int, default=1, show_default=True, help="vllm.")
@click.option("--gpu-memory-utilization", type=float, default=None, help="vllm (default: vLLM's).")
@click.option("--max-model-len", type=int, default=None, help="vllm (default: vLLM's; 2048 on CPU).")
@click.option("--dtype", default=None, help="vllm (default: vLLM's; bfloat16 on CPU).")
@click.option("--reasoning-parser", default=None, help="vllm.")
@click.option("--enforce-eager", is_flag=True, help="vllm: no CUDA graphs / torch.compile (always on CPU).")
@click.option("--n-ctx", type=int, default=4096, show_default=True, help="llamacpp context per slot.")
@click.option("--parallel", type=int, default=4, show_default=True, help="llamacpp parallel slots per server.")
@click.option("--threads", type=int, default=None, help="llamacpp threads per server (default: (cores - 1) / replicas, at least 1).")
@click.option("--engine-python", default=None,
              help=f"Python that has sglang / vllm / sglang-router (default: ${ENGINE_PYTHON_ENV} or this one).")
@click.option("--api-key", envvar=API_KEY_ENV, default=None, help=f"Required of clients; or ${API_KEY_ENV}. Never saved.")
@click.option("--timeout", "timeout_s", type=float, default=900.0, show_default=True,
              help="Seconds to wait for the server to answer.")
@click.option("--log-dir", default=None, help="Where the server logs go (default: the state directory).")
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED)
def serve(backend, model_path, name, host, port, served_model_name, replicas, router_only, worker_urls,
          prometheus_port, dp, tp, mem_fraction_static, tensor_parallel_size, data_parallel_size,
          gpu_memory_utilization, max_model_len, dtype, reasoning_parser, enforce_eager, n_ctx, parallel, threads,
          engine_python, api_key, timeout_s, log_dir, extra_args):
    """Start a model server detached and wait until it answers.

    Arguments after `--` are passed to the server (each worker) unchanged
    (e.g. `-- --context-length 8192`).
    """
    def announce(plan: ServePlan) -> None:
        console.print(f"backend: [bold]{plan.backend}[/] ({escape(plan.why)})")
        console.print(f"starting {name} at {plan.base_url} serving {plan.model!r} "
                      f"({escape(plan.describe())}; logs: {escape(str(plan.log_dir))}) ...")

    try:
        request = ServeRequest(
            backend=backend, model_path=model_path, name=name, host=host, port=port,
            served_model_name=served_model_name, replicas=replicas, router_only=router_only,
            worker_urls=[u for arg in worker_urls for u in arg.split()], prometheus_port=prometheus_port,
            dp=dp, tp=tp, mem_fraction_static=mem_fraction_static, tensor_parallel_size=tensor_parallel_size,
            data_parallel_size=data_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len, dtype=dtype, reasoning_parser=reasoning_parser, enforce_eager=enforce_eager,
            n_ctx=n_ctx, parallel=parallel, threads=threads,
            engine_python=engine_python, api_key=api_key, timeout_s=timeout_s, log_dir=log_dir,
            extra_args=list(extra_args),
        )
        handle = serve_detached(request, on_plan=announce)
    except ServerError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    version = f", {handle.server_version}" if handle.server_version else ""
    console.print(f"[green]ready[/]: {handle.base_url} serves {handle.model!r} "
                  f"({len(handle.records())} process(es), pid {handle.pid}{escape(version)})")
    click.echo(handle.base_url)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Every process of every server, as JSON.")
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds a server has to answer the cheap probe.")
def status(as_json, timeout_s):
    """Show each recorded server and whether it answers (cheap probes only: no generation)."""
    handles = list_states()
    key = os.environ.get(API_KEY_ENV)
    rows = [server_status(h, api_key=key, timeout=timeout_s) for h in handles]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not handles:
        console.print(f"no server recorded in {state_dir()}")
        return
    table = Table(title="evalkit servers")
    for col in ("name", "backend", "endpoint", "model", "pid", "processes", "alive", "state", "started"):
        table.add_column(col)
    colour = {"ready": "green", "busy": "yellow"}
    for row in rows:
        st = row["state"]
        table.add_row(row["name"], row["backend"], row["endpoint"], row["model"], str(row["pid"]),
                      str(len(row["processes"])), "yes" if row["alive"] else "no",
                      f"[{colour.get(st, 'red')}]{st}[/]", row["started_at"])
    stdout_console().print(table)


@click.command()
@click.option("--name", default=None, help="Server to stop [default: the one named `default`].")
@click.option("--all", "stop_all", is_flag=True, help="Stop every recorded server.")
@click.option("--grace", type=float, default=10.0, show_default=True, help="Seconds between TERM and KILL.")
def stop(name, stop_all, grace):
    """Stop servers evalkit started (only processes it can prove it started; never by name).

    Exits non-zero when a named server was not running or not recorded.
    """
    if stop_all and name:
        console.print("[red]error:[/] give --name or --all, not both")
        sys.exit(2)
    names = [h.name for h in list_states()] if stop_all else [name or "default"]
    if not names:
        console.print("no server recorded; nothing to stop")
        return
    failed = False
    for n in names:
        try:
            result = stop_server(n, grace_s=grace)
        except ServerError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            failed = True
            continue
        if result is None:
            console.print(f"[yellow]no server named {escape(repr(n))} is recorded in {state_dir()}[/]")
            failed = True
        elif result.was_running:
            console.print(escape(result.message))
        else:
            console.print(f"[yellow]{escape(result.message)}[/]")
            failed = True
    sys.exit(1 if failed else 0)
