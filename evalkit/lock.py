"""The run-directory lock: one ``evalkit run`` writes a run directory at a time.

The lock is an advisory ``flock`` on ``<run-dir>/.evalkit.lock``, so the kernel
drops it when its holder dies, however it dies (SIGKILL included). The file also
records who holds it (pid, host, start time, command line without secrets): a
second run refuses with those details, and a run that finds the record of a
holder that died without releasing says that it takes the lock over.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from evalkit.store import parse_json
from evalkit.server import process_alive  # one liveness rule (a zombie is dead) for locks and servers

LOCK_FILE = ".evalkit.lock"
POLL_S = 0.2  # how often a waiting run tries the lock again
# A reader's probe (live_holder) holds a shared lock for microseconds; a run that meets one
# tries again for this long before it says the directory is in use.
PROBE_GRACE_S = 0.05
# flock errors of filesystems that have no locks (some FUSE and old NFS mounts): run unlocked, say so.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a run directory's lock, as its lock file records it."""

    pid: int | None
    host: str | None
    started_at: str | None = None

    @classmethod
    def from_text(cls, text: str) -> "LockHolder | None":
        """The holder recorded in a lock file's text; None for an empty or unreadable record."""
        try:
            doc = parse_json(text)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        pid = doc.get("pid")
        return cls(pid=pid if isinstance(pid, int) else None, host=_str_or_none(doc.get("host")),
                   started_at=_str_or_none(doc.get("started_at")))

    def describe(self) -> str:
        since = f", since {self.started_at}" if self.started_at else ""
        return f"pid {self.pid if self.pid is not None else '?'} on host {self.host or '?'}{since}"


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class RunLocked(RuntimeError):
    """Another process holds the run directory's lock."""

    def __init__(self, run_dir: Path, holder: LockHolder | None):
        who = holder.describe() if holder else "another process (its record is unreadable)"
        super().__init__(f"{run_dir} is in use by another evalkit run: {who}. Wait for it to finish, "
                         "or pass --wait-for-lock to wait and then resume")
        self.run_dir = run_dir
        self.holder = holder


class RunLock:
    """A held run-directory lock; release it with ``release()`` or by leaving ``with``."""

    def __init__(self, run_dir: Path, fd: int | None, took_over: LockHolder | None, *, supported: bool = True):
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = fd
        self.took_over = took_over  # the dead holder whose lock this one replaced, if any
        self.supported = supported  # False where the filesystem has no flock: nothing is held

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock and remove the lock file (a clean exit leaves no record behind)."""
        if self._fd is None:
            return
        try:
            # Unlink while still holding it: a waiter that then gets the old inode sees it is
            # no longer the path's file and tries again (see try_lock_run_dir).
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder_record() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def try_lock_run_dir(run_dir: str | Path) -> RunLock:
    """Take RUN_DIR's lock now, or raise RunLocked naming its holder.

    A lock file left with a record but not locked belongs to a holder that died
    (its kernel lock went with it); the lock is taken over and ``took_over``
    names that holder.
    """
    run_dir = Path(run_dir)
    path = run_dir / LOCK_FILE
    give_up = time.monotonic() + PROBE_GRACE_S
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = LockHolder.from_text(_read_fd(fd))
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                if time.monotonic() < give_up:
                    time.sleep(0.005)  # perhaps a reader's probe (see live_holder): try again
                    continue
                raise RunLocked(run_dir, holder) from None
            if exc.errno in _NO_LOCKS:
                return RunLock(run_dir, None, None, supported=False)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder released (and removed) it between our open and our flock
            os.close(fd)
            continue
        previous = LockHolder.from_text(_read_fd(fd))
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_record().encode(), 0)
        return RunLock(run_dir, fd, took_over=previous)


def live_holder(run_dir: str | Path) -> LockHolder | None:
    """Who holds RUN_DIR's lock now (a live writer), else None; takes nothing and writes nothing.

    For readers (report, score, gate) that must say when what they read is a partial snapshot.
    The probe is a shared lock that fails while a writer holds the exclusive one; held for
    an instant when it succeeds, it never makes a starting run refuse (see PROBE_GRACE_S).
    """
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None  # no lock file: nobody has held it since the last clean release
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return LockHolder.from_text(_read_fd(fd)) or LockHolder(pid=None, host=None)
            return None  # a filesystem without locks: nothing can be told
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return ""


async def lock_run_dir(run_dir: str | Path, *, wait: bool = False,
                       on_wait: Callable[[RunLocked], None] | None = None) -> RunLock:
    """Take RUN_DIR's lock; with WAIT, poll until its holder lets go (ON_WAIT is told once).

    Polling (rather than a blocking flock) keeps the event loop free, so Ctrl-C
    still stops a waiting run.
    """
    told = False
    while True:
        try:
            return try_lock_run_dir(run_dir)
        except RunLocked as exc:
            if not wait:
                raise
            if not told and on_wait is not None:
                on_wait(exc)
            told = True
        await asyncio.sleep(POLL_S)


def took_over_message(lock: RunLock) -> str | None:
    """What to tell the user when LOCK replaced the record of a holder that died (or could not
    be taken at all on this filesystem), else None."""
    if not lock.supported:
        return (f"the filesystem of {lock.run_dir} does not support file locks: nothing stops another run "
                "from writing the same run directory at the same time")
    dead = lock.took_over
    if dead is None:
        return None
    here = socket.gethostname()
    state = ""
    if dead.pid is not None and dead.host == here and not process_alive(dead.pid):
        state = " (no longer running)"
    return f"took over the stale lock of {lock.run_dir}: its holder, {dead.describe()}, ended without releasing it{state}"


__all__ = ["LOCK_FILE", "LockHolder", "RunLock", "RunLocked", "live_holder", "lock_run_dir",
           "took_over_message", "try_lock_run_dir"]
