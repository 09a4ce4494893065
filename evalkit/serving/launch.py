"""Start processes detached, wait until each is ready, record them; stop them.

Every process is started in its own session and process group, carries a random token in
its environment, and is recorded (``state.py``) as soon as it starts. What a process runs,
how its readiness is checked and what it reports about itself come from its ``LaunchSpec``
and the caller; this module knows no engine.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from evalkit.config import ServeRequest, field_default
from evalkit.serving import probe
from evalkit.serving.errors import ServerError
from evalkit.serving.processes import (TOKEN_ENV, end_processes, proc_cmdline, proc_start_time, redact,
                                       server_processes, server_running)
from evalkit.serving.state import (DEFAULT_STOP_SCOPE, ProcessRecord, ServerHandle, load_state, remove_state,
                                   save_state)

ReadyCheck = Callable[[str, str, "str | None", float], bool]  # (base_url, model, api_key, timeout) -> ready?
IdentityProbe = Callable[[str, "str | None"], dict]  # (base_url, api_key) -> what the engine reports


def answers_chat(base_url: str, model: str, api_key: str | None, timeout: float) -> bool:
    """The default readiness check: the server lists MODEL and answers a one-token chat completion."""
    return probe.answers(base_url, model, api_key=api_key, timeout=timeout)


@dataclass
class LaunchSpec:
    """One process to start: its command, extra environment, listener, log and readiness check."""

    role: str
    command: list[str]
    host: str
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    ready: ReadyCheck = answers_chat

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def tail(path: str | Path, n: int = 30) -> str:
    """The last N lines of a log file (or "(no log)")."""
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


# Set by ``tied_to_this_process``: servers started meanwhile end when the process that started them does.
_TIED: ContextVar[bool] = ContextVar("evalkit_servers_tied", default=False)
PR_SET_PDEATHSIG = 1  # prctl(2)


@contextmanager
def tied_to_this_process() -> Iterator[None]:
    """Servers started inside the ``with`` (in this thread) get SIGTERM from the kernel when this process
    ends, however it ends (SIGKILL, an OOM kill): a sweep job's server dies with its job. Linux only
    (prctl's parent-death signal); elsewhere they are left as before, for the next try to stop. The
    signal follows the thread that started the server, so start it from a thread that lives as long as
    the process (the job's main thread). ``evalkit serve`` does not use this: its server outlives it."""
    token = _TIED.set(True)
    try:
        yield
    finally:
        _TIED.reset(token)


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec function that asks the kernel to SIGTERM the child when PARENT ends; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent ended before prctl: no signal will come
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _popen(spec: LaunchSpec, token: str, secret: str | None) -> tuple[subprocess.Popen, ProcessRecord]:
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    preexec = _die_with_parent(os.getpid()) if _TIED.get() else None
    with open(spec.log_path, "ab", buffering=0) as log:
        log.write(f"\n=== evalkit: starting {' '.join(redact(spec.command, secret))}\n".encode())
        proc = subprocess.Popen(
            spec.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own session and process group
            env={**os.environ, **spec.env, TOKEN_ENV: token},
            preexec_fn=preexec,
        )
    rec = ProcessRecord(role=spec.role, pid=proc.pid, pgid=os.getpgid(proc.pid),
                        start_time=proc_start_time(proc.pid), argv=redact(spec.command, secret),
                        host=spec.host, port=spec.port, log_path=str(spec.log_path))
    return proc, rec


class _Launch:
    """The processes of one ``launch`` call while they start: record, wait, and undo on failure."""

    def __init__(self, handle: ServerHandle, api_key: str | None):
        self.handle, self.api_key = handle, api_key
        self.procs: list[subprocess.Popen] = []

    def start(self, spec: LaunchSpec) -> subprocess.Popen:
        proc, rec = _popen(spec, self.handle.token, self.api_key)
        self.procs.append(proc)
        self.handle.processes.append(asdict(rec))
        if rec.role != "worker":
            self.handle.pid, self.handle.pgid, self.handle.start_time = rec.pid, rec.pgid, rec.start_time
        save_state(self.handle)
        return proc

    def fail(self, msg: str, log_path: Path) -> ServerError:
        end_processes(self.handle, grace_s=5.0)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        remove_state(self.handle.name)
        return ServerError(f"{msg}\nLast lines of {log_path}:\n{tail(log_path)}")

    def wait_ready(self, waiting: list[tuple[subprocess.Popen, LaunchSpec]], deadline: float,
                   timeout_s: float) -> None:
        while waiting:
            for proc, spec in list(waiting):
                code = proc.poll()
                if code is not None:
                    raise self.fail(f"the {spec.role} exited with code {code} before answering at {spec.base_url}.",
                                    spec.log_path)
                if spec.ready(spec.base_url, self.handle.model, self.api_key, 30.0):
                    waiting.remove((proc, spec))
            if waiting and time.monotonic() > deadline:
                spec = waiting[0][1]
                raise self.fail(f"the {spec.role} did not answer at {spec.base_url} within {timeout_s:.0f}s; "
                                f"stopped it.", spec.log_path)
            if waiting:
                time.sleep(0.5)


def launch(specs: Sequence[LaunchSpec], *, name: str, backend: str, model: str, api_key: str | None = None,
           timeout_s: float = field_default(ServeRequest, "timeout_s"), model_path: str | None = None,
           model_hash: dict | None = None,
           worker_urls: Sequence[str] = (), identify: IdentityProbe | None = None,
           stop_scope: Sequence[str] = DEFAULT_STOP_SCOPE) -> ServerHandle:
    """Start SPECS (workers first, the last one the front) and wait until each is ready.

    Workers are started together and waited for; the front starts once they are ready.
    Each process is recorded as soon as it starts. On any failure everything started is
    stopped, the record removed, and a ServerError carries the failing log's last lines.
    IDENTIFY (the backend's identity probe) is asked what the first worker reports.
    """
    ensure_name_free(name)
    front = specs[-1]
    handle = ServerHandle(
        name=name, backend=backend, pid=0, pgid=0, host=front.host, port=front.port, model=model,
        command=redact(front.command, api_key), log_path=str(front.log_path),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        token=f"{name}-{secrets.token_hex(8)}", model_path=model_path, model_hash=dict(model_hash or {}),
        worker_urls=list(worker_urls), stop_scope=list(stop_scope),
    )
    run = _Launch(handle, api_key)
    deadline = time.monotonic() + timeout_s
    try:
        for stage in (list(specs[:-1]), [front]):
            run.wait_ready([(run.start(spec), spec) for spec in stage], deadline, timeout_s)
    except BaseException as exc:
        if isinstance(exc, ServerError):
            raise
        raise run.fail(f"starting {name!r} was interrupted ({type(exc).__name__})", front.log_path) from exc
    # Now that each answers, record the command line as /proc shows it (an engine may
    # retitle itself at startup): that is what the ownership check compares.
    for rec in handle.processes:
        live = proc_cmdline(rec["pid"])
        if live:
            rec["argv"] = redact(live, api_key)
    if identify is not None:
        worker = next((s for s in specs if s.role == "worker"), front)
        reported = identify(worker.base_url, api_key)
        handle.server_version = reported.get("engine_version")
        handle.extra["reported_engine"] = reported.get("engine")
    save_state(handle)
    return handle


def start_server(command: Sequence[str], *, name: str, backend: str, host: str, port: int, model: str,
                 log_path: str | Path, api_key: str | None = None,
                 timeout_s: float = field_default(ServeRequest, "timeout_s"),
                 env: dict[str, str] | None = None, model_path: str | None = None,
                 model_hash: dict | None = None, identify: IdentityProbe | None = None) -> ServerHandle:
    """Start one server COMMAND detached in its own process group and wait until it answers.

    On failure (the process exits, or TIMEOUT_S passes) everything it started is stopped
    and a ServerError carries the last lines of the log. Nothing is left running.
    """
    spec = LaunchSpec(role="server", command=list(command), host=host, port=port, log_path=Path(log_path),
                      env=dict(env or {}))
    return launch([spec], name=name, backend=backend, model=model, api_key=api_key, timeout_s=timeout_s,
                  model_path=model_path, model_hash=model_hash, identify=identify)


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
    match the record; its companions are found through the record's stop scope. Where
    nothing matches, nothing is signalled and the record is removed: it was not running.
    """
    handle = load_state(name)
    if handle is None:
        return None
    owned, pids = server_processes(handle)
    if not pids:
        remove_state(name)
        return StopResult(name, False, 0, f"{name} was not running (its record is removed; nothing was signalled)")
    n, survivors = end_processes(handle, grace_s=grace_s)
    if survivors:
        raise ServerError(f"processes {sorted(survivors)} of server {name!r} survived SIGKILL")
    remove_state(name)
    if not owned:
        return StopResult(name, False, n, f"{name} was not running; ended {n} leftover process(es) it had started")
    return StopResult(name, True, n, f"stopped {name} ({n} process{'es' if n != 1 else ''})")

