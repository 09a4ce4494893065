"""``evalkit serve``, ``evalkit status``, ``evalkit stop``: a thin shell over evalkit.api.

The serve flags are built from ``ServeRequest``'s fields (name, type, default, help), so
every default lives there and ``--help`` shows it; status and stop take theirs from
``ServerControlSettings``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evalkit import api
from evalkit.cli.common import stdout_console
from evalkit.cli.options import config_option, field_options
from evalkit.config import API_KEY_ENV, NEEDS_KEY, ServeRequest, ServerControlSettings, field_default

DEFAULT_NAME = field_default(ServeRequest, "name")  # the server a command without --name means

console = Console(stderr=True, soft_wrap=True)  # messages: never wrapped, so logs grep well


def serve_request_options(command: Callable) -> Callable:
    """Decorate COMMAND with one click parameter per ServeRequest field, in field order."""
    ports = ", ".join(f"{n} {b.default_port}" for n, b in api.backends().items())
    return field_options(api.ServeRequest, {"backend": f" Built in: {', '.join(api.backends())}.",
                                            "port": f" ({ports})"})(command)


@click.command()
@serve_request_options
def serve(**settings: Any) -> None:
    """Start a model server detached and wait until it answers.

    Arguments after `--` are passed to the server (each worker) unchanged
    (e.g. `-- --context-length 8192`).
    """
    settings["worker_urls"] = [u for arg in settings["worker_urls"] for u in arg.split()]
    settings["extra_args"] = list(settings["extra_args"])
    request = api.ServeRequest(**settings)

    def announce(plan: Any) -> None:
        console.print(f"backend: [bold]{escape(plan.backend)}[/] ({escape(plan.why)})")
        console.print(f"starting {escape(request.name)} at {plan.base_url} serving {escape(repr(plan.model))} "
                      f"({escape(plan.describe())}; logs: {escape(str(plan.log_dir))}) ...")

    try:
        handle = api.serve(request, on_plan=announce)
    except api.ServerError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    print_ready(handle, sys.stdout.isatty())


def print_ready(handle: Any, stdout_is_terminal: bool) -> None:
    """The ready line (stderr), and the URL alone on stdout for a script (``URL=$(evalkit serve ...)``);
    not on a terminal, where the ready line already shows it."""
    version = f", {handle.server_version}" if handle.server_version else ""
    console.print(f"[green]ready[/]: {handle.base_url} serves {escape(repr(handle.model))} "
                  f"({len(handle.records())} process(es), pid {handle.pid}{escape(version)})")
    if not stdout_is_terminal:
        click.echo(handle.base_url)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Every process of every server, as JSON.")
@config_option("--timeout", "timeout_s", type=float, source=(ServerControlSettings, "status_timeout_s"),
               help="Seconds a server has to answer the cheap probe.")
def status(as_json: bool, timeout_s: float) -> None:
    """Show each recorded server and whether it answers (cheap probes only: no generation)."""
    rows = api.servers(timeout=timeout_s)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"no server recorded in {api.ServerHandle.records_dir()}")
        return
    table = Table(title="evalkit servers")
    for col in ("name", "backend", "endpoint", "model", "pid", "processes", "alive", "state", "started"):
        table.add_column(col)
    colour = {"ready": "green", "busy": "yellow", NEEDS_KEY: "yellow"}
    for row in rows:
        st = row["state"]
        table.add_row(escape(row["name"]), escape(row["backend"]), row["endpoint"], escape(row["model"]),
                      str(row["pid"]), str(len(row["processes"])), "yes" if row["alive"] else "no",
                      f"[{colour.get(st, 'red')}]{st}[/]", row["started_at"])
    stdout_console().print(table)
    locked = [row["name"] for row in rows if row["state"] == NEEDS_KEY]
    if locked:
        given = "the key in $" + API_KEY_ENV + " is refused" if os.environ.get(API_KEY_ENV) else "no key was given"
        console.print(f"[yellow]note:[/] {escape(', '.join(locked))} answers but wants an API key ({given}): set "
                      f"${API_KEY_ENV} to the key it was started with (`evalkit serve --api-key`) to see its state")


@click.command()
@click.option("--name", default=None, help=f"Server to stop [default: the one named `{DEFAULT_NAME}`].")
@click.option("--all", "stop_all", is_flag=True, help="Stop every recorded server.")
@config_option("--grace", type=float, source=(ServerControlSettings, "stop_grace_s"),
               help="Seconds between TERM and KILL.")
def stop(name: str | None, stop_all: bool, grace: float) -> None:
    """Stop servers evalkit started (only processes it can prove it started; never by name).

    Exits non-zero when a named server was not running or not recorded.
    """
    if stop_all and name:
        console.print("[red]error:[/] give --name or --all, not both")
        sys.exit(2)
    names = [s["name"] for s in api.servers(probe=False)] if stop_all else [name or DEFAULT_NAME]
    if not names:
        console.print("no server recorded; nothing to stop")
        return
    failed = False
    for n in names:
        try:
            result = api.stop(n, grace_s=grace)
        except api.ServerError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            failed = True
            continue
        if result is None:
            console.print(f"[yellow]no server named {escape(repr(n))} is recorded in {api.ServerHandle.records_dir()}[/]")
            failed = True
        elif result.was_running:
            console.print(escape(result.message))
        else:
            console.print(f"[yellow]{escape(result.message)}[/]")
            failed = True
    sys.exit(1 if failed else 0)
