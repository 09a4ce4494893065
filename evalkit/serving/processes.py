"""Process control from /proc: who a process is, which processes belong to a recorded server,
and ending them (TERM, then KILL). Knows no engine, and never looks for a process by name.

A recorded process is ours only while its pid, its start time (``/proc/PID/stat`` field 22)
and its command line all still match the record. Its companions are found through the
record's ``stop_scope``: its process ``group``, its ``descendants`` (by parent pid), and every
process that carries the server's ``token`` in its environment (inherited by every child,
re-parented or not).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Sequence

from evalkit.core.liveness import proc_start_time, process_alive, stat_fields
from evalkit.serving.state import ProcessRecord, ServerHandle

REDACTED = "***"
TOKEN_ENV = "EVALKIT_SERVER_ID"


def redact(command: Sequence[str], secret: str | None) -> list[str]:
    """The command with the API key replaced, fit to be written to a file or printed."""
    return [part.replace(secret, REDACTED) if secret and secret in part else part for part in command]


def proc_cmdline(pid: int) -> list[str] | None:
    """PID's command line, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []


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
    return bool(_group_members(pgid))


def _group_members(pgid: int) -> set[int]:
    return {p for p in _all_pids() if (f := stat_fields(p)) and int(f[2]) == pgid and f[0] != "Z"}


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


def tagged(token: str) -> set[int]:
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
        f = stat_fields(pid)
        if f:
            children.setdefault(int(f[1]), []).append(pid)
    out, todo = set(), list(roots)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def server_processes(handle: ServerHandle) -> tuple[list[ProcessRecord], set[int]]:
    """(owned records, every live pid of the server): the owned records and what the
    handle's ``stop_scope`` adds to them (their groups, the token's carriers, descendants)."""
    owned = [r for r in handle.records() if owns_process(r)]
    scope = set(handle.stop_scope)
    pids = {r.pid for r in owned}
    if "token" in scope:
        pids |= tagged(handle.token)
    if "group" in scope:
        for r in owned:
            pids |= _group_members(r.pgid)
    if "descendants" in scope:
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


def _still_ours(targets: dict[int, int | None]) -> dict[int, int | None]:
    return {p: s for p, s in targets.items() if process_alive(p) and proc_start_time(p) == s}


def end_processes(handle: ServerHandle, *, grace_s: float) -> tuple[int, set[int]]:
    """TERM every process of HANDLE, KILL what is left after GRACE_S, and keep looking for
    children spawned meanwhile. Returns (how many were signalled, survivors)."""
    _, pids = server_processes(handle)
    targets = {p: proc_start_time(p) for p in pids}
    if not targets:
        return 0, set()
    _signal_all(targets, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _, more = server_processes(handle)
        new = {p: proc_start_time(p) for p in more if p not in targets}
        if new:
            targets.update(new)
            _signal_all(new, signal.SIGTERM)
        if not any(process_alive(p) for p in targets):
            return len(targets), set()
        time.sleep(0.1)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        _, more = server_processes(handle)
        targets.update({p: proc_start_time(p) for p in more if p not in targets})
        alive = _still_ours(targets)
        if not alive:
            return len(targets), set()
        _signal_all(alive, signal.SIGKILL)
        time.sleep(0.05)
    return len(targets), set(_still_ours(targets))
