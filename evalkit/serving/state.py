"""State files: one JSON record per server evalkit started, under the state directory.

A record (``ServerHandle``) says how to reach the server and how to prove, later, that its
processes are still the ones evalkit started (pid, start time, command line, a token in
their environment). Nothing here knows an engine.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from evalkit.serving.errors import ServerError

DEFAULT_STOP_SCOPE = ("group", "descendants", "token")


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

    ``backend`` is the backend's registry name, or the ``module:attr`` it was loaded from.
    ``pid``/``pgid``/``command`` are the front process's (the router where there is one);
    ``processes`` lists every process started, front included. ``stop_scope`` says which
    other processes belong to it (see ``processes.server_processes``).
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
    stop_scope: list[str] = field(default_factory=lambda: list(DEFAULT_STOP_SCOPE))

    @staticmethod
    def records_dir() -> Path:
        """The folder where every server evalkit started is recorded (``state_dir``)."""
        return state_dir()

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
    """Write HANDLE's record atomically; returns its path."""
    path = _state_file(handle.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(handle.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_state(name: str) -> ServerHandle | None:
    """The server recorded as NAME, or None."""
    path = _state_file(name)
    if not path.exists():
        return None
    return ServerHandle.from_dict(json.loads(path.read_text(encoding="utf-8")))


def list_states() -> list[ServerHandle]:
    """Every readable record, by name; a torn or foreign file is named on stderr and skipped."""
    d = state_dir()
    if not d.is_dir():
        return []
    handles = []
    for p in sorted(d.glob("*.json")):
        try:
            handles.append(ServerHandle.from_dict(json.loads(p.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError) as exc:
            print(f"warning: skipping unreadable server record {p}: {exc}", file=sys.stderr)
    return handles


def remove_state(name: str) -> None:
    _state_file(name).unlink(missing_ok=True)


def root_url(base_url: str) -> str:
    """A server's root from its OpenAI base URL (``.../v1`` dropped)."""
    return base_url.rstrip("/").removesuffix("/v1")


def find_handle(base_url: str) -> ServerHandle | None:
    """The recorded server (front or any worker) that listens at BASE_URL, if one is recorded."""
    want = root_url(base_url)
    for h in list_states():
        if root_url(h.base_url) == want or any(root_url(r.base_url) == want for r in h.records()):
            return h
    return None


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
